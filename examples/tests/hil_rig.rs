//! The main job: several tests contend for one hardware rig.
//!
//! ```sh
//! cargo test -p relukko-examples --test hil_rig -- --nocapture
//! ```
//!
//! libtest runs these tests on several threads at once (and `cargo nextest`
//! runs each in its own process), yet `#[relukko::locked("hil-rig-3")]` lets
//! only one of them hold the rig at a time. With no `RELUKKO_URL` set they lock
//! through the embedded local backend; point `RELUKKO_URL` at a Relukko server
//! and the same tests serialize across every machine that uses it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many tests are on the rig right now, in this process: never above 1.
static ON_THE_RIG: AtomicUsize = AtomicUsize::new(0);

/// What every test does with the rig: occupy it for a moment and check that
/// nobody else is on it.
fn use_the_rig(step: &str) {
    let start = Instant::now();
    let before = ON_THE_RIG.fetch_add(1, Ordering::SeqCst);
    println!("[{step}] holds hil-rig-3 (others on the rig: {before})");
    std::thread::sleep(Duration::from_millis(200));
    let after = ON_THE_RIG.fetch_sub(1, Ordering::SeqCst);
    assert_eq!((before, after), (0, 1), "two tests held hil-rig-3 at once");
    println!("[{step}] releases hil-rig-3 after {:?}", start.elapsed());
}

#[test]
#[relukko::locked("hil-rig-3")]
fn flashes_firmware() {
    use_the_rig("flash firmware");
}

#[test]
#[relukko::locked("hil-rig-3")]
fn boots_to_shell() {
    use_the_rig("boot to shell");
}

#[test]
#[relukko::locked("hil-rig-3", timeout = "1m")]
fn reads_sensors() {
    use_the_rig("read sensors");
}

#[test]
#[relukko::locked("hil-rig-3")]
fn power_cycles() {
    use_the_rig("power cycle");
}
