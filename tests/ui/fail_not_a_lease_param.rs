#[relukko::locked("ui-rig")]
#[test]
fn takes_a_number(n: u32) {
    let _ = n;
}

#[relukko::locked("ui-rig")]
fn borrows_the_lease(lease: &relukko::Lease) {
    let _ = lease;
}

fn main() {}
