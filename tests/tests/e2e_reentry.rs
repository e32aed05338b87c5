//! A locked test asking for its own resource again (a fixture calling
//! `lock_blocking` for the test's rig) fails at once, naming the test,
//! instead of waiting for itself until the timeout; other threads of the
//! process still wait for it as usual. On both backends: the workers run in
//! child processes with the backend's environment.

use std::time::{Duration, Instant};

use relukko::{Error, LockOptions, locked};
use relukko_e2e::history::{History, WORKER_VAR, fresh_dir, output_text, worker};
use relukko_server::TestServer;

const RIG: &str = "e2e-self";

/// A long timeout: failing within a fraction of it shows nothing waited.
fn again() -> LockOptions {
    LockOptions::new(RIG).timeout(Duration::from_secs(20))
}

fn assert_held_by(err: Error, test: &str, started: Instant) {
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?} for itself: {err}",
        started.elapsed()
    );
    assert!(
        matches!(&err, Error::HeldByThisTest { resource, .. } if resource == RIG),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!(
            "{RIG} is already held by this same test (e2e_reentry::{test})"
        )),
        "{err}"
    );
}

#[test]
#[locked("e2e-self")]
#[ignore = "a worker: its driver runs it"]
fn worker_self_sync() {
    let t0 = Instant::now();
    assert_held_by(
        relukko::lock_blocking(again()).unwrap_err(),
        "worker_self_sync",
        t0,
    );
}

#[locked("e2e-self")]
#[tokio::test]
#[ignore = "a worker: its driver runs it"]
async fn worker_self_async() {
    let t0 = Instant::now();
    assert_held_by(
        relukko::lock(again()).await.unwrap_err(),
        "worker_self_async",
        t0,
    );
    assert_held_by(
        relukko::lock_blocking(again()).unwrap_err(),
        "worker_self_async",
        t0,
    );
}

/// Another thread of the process is another holder: it waits (and here
/// times out) rather than failing at once.
#[test]
#[locked("e2e-self")]
#[ignore = "a worker: its driver runs it"]
fn worker_self_other_thread_waits() {
    let err = std::thread::spawn(|| {
        relukko::lock_blocking(LockOptions::new(RIG).timeout(Duration::from_secs(2))).unwrap_err()
    })
    .join()
    .unwrap();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
}

/// The same name in another lock folder is another resource: the test
/// takes it at once rather than being told it holds it (two folders taken
/// for one place left every suite green).
#[test]
#[locked("e2e-self")]
#[ignore = "a worker: its driver runs it"]
fn worker_self_other_folder_is_another_resource() {
    let elsewhere = fresh_dir("self-elsewhere");
    relukko::Locker::local(elsewhere.path())
        .lock_blocking(LockOptions::new(RIG).timeout(Duration::ZERO))
        .expect("another folder's lock is another resource")
        .release_blocking()
        .unwrap();
}

/// After the test, the resource is free again for the same thread.
#[test]
#[ignore = "a worker: its driver runs it"]
fn worker_self_after_the_test() {
    worker_self_sync();
    relukko::lock_blocking(again())
        .unwrap()
        .release_blocking()
        .unwrap();
}

fn run(env: &[(&str, String)]) {
    let history = History::create("self");
    let mut env = env.to_vec();
    env.push((WORKER_VAR, history.path().display().to_string()));
    let out = worker("worker_self_", false, 1, &env)
        .output()
        .expect("run workers");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("5 passed; 0 failed"), "{text}");
}

#[test]
fn local_the_same_test_fails_at_once() {
    let dir = fresh_dir("self");
    run(&[("RELUKKO_LOCAL_DIR", dir.display().to_string())]);
}

#[test]
fn relukko_the_same_test_fails_at_once() {
    let server = TestServer::start();
    run(&[
        ("RELUKKO_URL", server.base_url().to_owned()),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
    ]);
}
