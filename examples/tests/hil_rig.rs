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

use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The rig itself, simulated by a file that one holder at a time occupies
/// with a non-blocking file lock: a second test on the rig at the same time,
/// in this process or another (`cargo nextest` runs each test in its own),
/// finds it occupied. The kernel frees it if a holder dies. One file per lock
/// configuration, so runs that lock in separate places do not see each other.
fn the_rig() -> File {
    let config = (
        std::env::var("RELUKKO_LOCAL_DIR").unwrap_or_default(),
        std::env::var("RELUKKO_URL").unwrap_or_default(),
    );
    let tag = BuildHasherDefault::<DefaultHasher>::default().hash_one(config);
    let path: PathBuf = std::env::temp_dir().join(format!("hil-rig-3-{tag:016x}.rig"));
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// What every test does with the rig: occupy it for a moment, failing if
/// anyone else is on it.
fn use_the_rig(step: &str) {
    let start = Instant::now();
    let rig = the_rig();
    match rig.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => panic!("two tests held hil-rig-3 at once"),
        Err(TryLockError::Error(e)) => panic!("cannot occupy the rig: {e}"),
    }
    println!("[{step}] holds hil-rig-3");
    std::thread::sleep(Duration::from_millis(200));
    drop(rig); // off the rig
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
