//! Async tests with `#[tokio::test]`.
//!
//! ```sh
//! cargo test -p relukko-examples --test async_test
//! ```
//!
//! Put `#[relukko::locked]` below `#[tokio::test]` to await the lock inside the
//! test's runtime (the waiting itself runs on the library's own runtime, so a
//! current-thread test runtime is fine), or above it to hold the lock around
//! the whole runtime. To take a `Lease` parameter, `#[locked]` must be on top.
//! `#[relukko::test]` on an `async fn` is both: it runs the test on a tokio
//! current-thread runtime of its own.

use std::time::Duration;

use relukko::locked;

/// The test attribute, the runtime and the lock in one attribute.
#[relukko::test("example-device-farm-slot")]
async fn lists_the_devices_of_the_slot(lease: relukko::Lease) {
    assert_eq!(lease.name(), "example-device-farm-slot");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
#[locked("example-device-farm-slot")]
async fn uploads_a_build_to_the_device_farm() {
    // Any async work; the slot is ours until the function returns.
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[locked("example-device-farm-slot", timeout = "5m")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_smoke_test_on_the_slot(lease: relukko::Lease) {
    assert_eq!(lease.name(), "example-device-farm-slot");
    // Await the loss of the lock next to the work: if someone force-releases
    // it (or the server forgets it), stop early instead of finishing blind.
    tokio::select! {
        err = lease.lost() => panic!("lost the slot: {err}"),
        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
    }
}
