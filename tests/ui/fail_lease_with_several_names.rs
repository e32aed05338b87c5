#[relukko::locked("ui-a", "ui-b")]
fn which_one(lease: relukko::Lease) {
    let _ = lease;
}

fn main() {}
