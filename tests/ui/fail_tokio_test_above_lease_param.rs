// A `Lease` parameter needs `#[locked]` above the test attribute: below it,
// the test attribute sees the parameter first and rejects the function.
// (`#[test]` does the same in test builds; trybuild builds no tests, so the
// check is shown with `#[tokio::test]`, which expands in every build.)
use relukko::Lease;

#[tokio::test]
#[relukko::locked("ui-rig")]
async fn needs_the_lease(lease: Lease) {
    let _ = lease.name();
}

fn main() {}
