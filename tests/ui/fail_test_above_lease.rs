// `#[test]` written above `#[locked]` expands first: in a test build it
// rejects the `Lease` parameter and takes itself off the function, so
// `#[locked]` sees the function below as it is here (trybuild builds without
// `--test`, where `#[test]` would remove the function altogether). A
// `#[should_panic]` or `#[ignore]` left below `#[locked]` without a `#[test]`
// is the trace of that order, and the error names the fix.

#[relukko::locked("ui-rig")]
#[should_panic(expected = "boom")]
fn takes_the_lease(lease: relukko::Lease) {
    let _ = lease;
}

#[relukko::locked("ui-rig")]
#[ignore = "needs the rig"]
fn takes_the_lease_too(lease: relukko::Lease) {
    let _ = lease;
}

fn main() {}
