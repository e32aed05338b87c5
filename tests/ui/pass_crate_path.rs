// A renamed dependency: `crate = path` points the expansion at it.
use ::relukko as rk;

#[rk::locked("ui-pass-renamed", crate = rk)]
fn renamed(lease: rk::Lease) {
    let _ = lease;
}

mod nested {
    #[::relukko::locked("ui-pass-absolute", crate = ::relukko)]
    pub fn absolute() {}
}

fn main() {
    renamed();
    nested::absolute();
}
