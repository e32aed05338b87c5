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
//!
//! The first test on the rig in a run prepares it for that run (power on,
//! load the run's image), which takes a while; the others wait, and a test that has waited two
//! seconds says so on stderr, past the test capture, naming who holds the
//! rig:
//!
//! ```text
//! relukko: test hil_rig::boots_to_shell waiting 2.0s for hil-rig-3 (lock files in
//!   /tmp/relukko-0), held by ci@rig-host test=hil_rig::flashes_firmware pid=4242
//!   since 2026-12-07T18:51:26Z; giving up in 9m 57s
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{Read, Seek, Write};
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
        .read(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// How long preparing the rig for a run takes: longer than the two seconds
/// after which a waiting test says whom it waits for.
const PREPARING: Duration = Duration::from_millis(2500);

/// How long a test then uses the rig.
const ON_THE_RIG: Duration = Duration::from_millis(200);

/// The run this process is part of: nextest's (it runs each test in a
/// process of its own), else this process.
fn this_run() -> String {
    std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("pid {}", std::process::id()))
}

/// What every test does with the rig: occupy it, failing if anyone else is
/// on it; prepare it for this run if no test did yet (the rig file
/// remembers the run it was prepared for); use it for a moment.
fn use_the_rig(step: &str) {
    let start = Instant::now();
    let mut rig = the_rig();
    match rig.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => panic!("two tests held hil-rig-3 at once"),
        Err(TryLockError::Error(e)) => panic!("cannot occupy the rig: {e}"),
    }
    println!("[{step}] holds hil-rig-3");
    let mut prepared_for = String::new();
    rig.read_to_string(&mut prepared_for)
        .expect("the rig answers");
    if prepared_for != this_run() {
        println!("[{step}] prepares hil-rig-3 for this run (power on, load the image)");
        std::thread::sleep(PREPARING);
        rig.set_len(0).expect("the rig answers");
        rig.rewind().expect("the rig answers");
        rig.write_all(this_run().as_bytes())
            .expect("the rig answers");
    }
    std::thread::sleep(ON_THE_RIG);
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

/// The output this file promises, checked: its four tests run as the
/// README's command runs them (one process, a thread each), in a child
/// process with a lock folder of its own; they take turns, and at least one
/// says whom it waits for.
#[test]
fn the_main_job_shows_a_wait() {
    const CHILD: &str = "HIL_RIG_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return; // the child runs the four tests only
    }
    let dir = std::env::temp_dir().join(format!("hil-rig-{}", std::process::id()));
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--nocapture", "--test-threads", "4"])
        .args(["--skip", "the_main_job_shows_a_wait"])
        .env(CHILD, "1")
        .env("RELUKKO_LOCAL_DIR", &dir)
        .output()
        .expect("the test binary runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("--- stdout:\n{stdout}\n--- stderr:\n{stderr}");
    assert!(out.status.success(), "{text}");
    assert!(stdout.contains("4 passed"), "{text}");
    assert!(
        stderr.lines().any(|l| l.contains(" waiting ")
            && l.contains(" for hil-rig-3 ")
            && l.contains(", held by ")),
        "no waiting line: {text}"
    );
}
