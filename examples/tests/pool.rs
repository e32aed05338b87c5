//! A pool of interchangeable resources: the test takes whichever is free
//! first and learns which from its `Lease` parameter.
//!
//! ```sh
//! cargo test -p relukko-examples --test pool -- --nocapture
//! ```
//!
//! With three rigs, up to three of these tests run at once; a fourth waits for
//! the first rig to come free. The macro removes the `lease` parameter, so the
//! function is still a plain `#[test]` (put `#[locked]` above `#[test]`).

use relukko::{Lease, locked};

const RIGS: [&str; 3] = [
    "example-lab-rig-1",
    "example-lab-rig-2",
    "example-lab-rig-3",
];

/// What each test does: use the rig it got.
fn flash(lease: &Lease, image: &str) {
    assert!(RIGS.contains(&lease.name()), "got {}", lease.name());
    println!("flashing {image} on {}", lease.name());
}

#[locked(any_of("example-lab-rig-1", "example-lab-rig-2", "example-lab-rig-3"))]
#[test]
fn flashes_the_bootloader(lease: Lease) {
    flash(&lease, "bootloader.bin");
}

#[locked(any_of("example-lab-rig-1", "example-lab-rig-2", "example-lab-rig-3"))]
#[test]
fn flashes_the_application(lease: Lease) {
    flash(&lease, "app.bin");
}

#[locked(
    any_of("example-lab-rig-1", "example-lab-rig-2", "example-lab-rig-3"),
    timeout = "10m"
)]
#[test]
fn flashes_the_recovery_image(lease: Lease) {
    flash(&lease, "recovery.bin");
}

#[locked(any_of("example-lab-rig-1", "example-lab-rig-2", "example-lab-rig-3"))]
#[test]
fn flashes_the_factory_image(lease: Lease) {
    flash(&lease, "factory.bin");
}
