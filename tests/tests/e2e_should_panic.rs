//! A `#[should_panic]` test must never pass because locking failed: it
//! cannot lock (server down, bad setting), its wait times out, or its lock
//! is lost while the body runs (whether the body then panics or returns).
//! Each case runs the worker tests below, written with `#[should_panic]` on
//! either side of `#[locked]`, with and without `expected`, as a real test
//! binary in a child process, and reads libtest's verdict.

use std::time::{Duration, Instant};

use relukko::{Client, Lease, LeaseState, Locker, locked};
use relukko_e2e::history::{History, WORKER_VAR, fresh_dir, output_text, worker};
use relukko_server::TestServer;

/// The resource every worker locks.
const RIG: &str = "e2e-sp";
/// `lost-panic` or `lost-return`: the lost workers wait until their lock is
/// gone, then panic as expected or return.
const MODE_VAR: &str = "RELUKKO_E2E_SP_MODE";

/// Every worker's body: in a worker process it records that it holds the
/// rig and, in the lost modes, waits for the driver to delete it. Then it
/// panics as its test expects (in a normal run of this suite too, so the
/// workers pass there), or in mode `lost-return` returns.
fn body(name: &str, lease: Option<&Lease>) {
    if let Some(h) = History::from_env() {
        h.enter(RIG, name);
        let mode = std::env::var(MODE_VAR).unwrap_or_default();
        if let (Some(lease), true) = (lease, mode.starts_with("lost")) {
            let end = Instant::now() + Duration::from_secs(60);
            while lease.state() != LeaseState::Lost && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            if mode == "lost-return" {
                return;
            }
        }
    }
    panic!("device not found");
}

#[should_panic]
#[test]
#[locked("e2e-sp", timeout = "3s")]
#[ignore = "a worker: its driver runs it"]
fn worker_sp_above() {
    body("worker_sp_above", None);
}

#[test]
#[should_panic(expected = "device not found")]
#[locked("e2e-sp", timeout = "3s")]
#[ignore = "a worker: its driver runs it"]
fn worker_sp_between_expected() {
    body("worker_sp_between_expected", None);
}

#[locked("e2e-sp", timeout = "3s")]
#[test]
#[should_panic]
#[ignore = "a worker: its driver runs it"]
fn worker_sp_below() {
    body("worker_sp_below", None);
}

#[test]
#[locked("e2e-sp", timeout = "3s")]
#[should_panic(expected = "device not found")]
#[ignore = "a worker: its driver runs it"]
fn worker_sp_below_expected() {
    body("worker_sp_below_expected", None);
}

#[should_panic(expected = "device not found")]
#[tokio::test]
#[locked("e2e-sp", timeout = "3s")]
#[ignore = "a worker: its driver runs it"]
async fn worker_sp_async_above_expected() {
    body("worker_sp_async_above_expected", None);
}

#[locked("e2e-sp", timeout = "3s")]
#[tokio::test]
#[should_panic]
#[ignore = "a worker: its driver runs it"]
async fn worker_sp_async_below() {
    body("worker_sp_async_below", None);
}

#[should_panic]
#[locked("e2e-sp", timeout = "3s", lease = "3s")]
#[test]
#[ignore = "a worker: its driver runs it"]
fn worker_sp_lost_above(lease: Lease) {
    body("worker_sp_lost_above", Some(&lease));
}

#[locked("e2e-sp", timeout = "3s", lease = "3s")]
#[test]
#[should_panic(expected = "device not found")]
#[ignore = "a worker: its driver runs it"]
fn worker_sp_lost_below_expected(lease: Lease) {
    body("worker_sp_lost_below_expected", Some(&lease));
}

#[should_panic(expected = "device not found")]
#[locked("e2e-sp", timeout = "3s", lease = "3s")]
#[tokio::test]
#[ignore = "a worker: its driver runs it"]
async fn worker_sp_lost_async_above_expected(lease: Lease) {
    body("worker_sp_lost_async_above_expected", Some(&lease));
}

/// Every worker above.
const WORKERS: [&str; 9] = [
    "worker_sp_above",
    "worker_sp_between_expected",
    "worker_sp_below",
    "worker_sp_below_expected",
    "worker_sp_async_above_expected",
    "worker_sp_async_below",
    "worker_sp_lost_above",
    "worker_sp_lost_below_expected",
    "worker_sp_lost_async_above_expected",
];

/// Runs every worker in one process (4 test threads) with `env`.
fn run_all(env: &[(&str, String)]) -> (std::process::Output, History) {
    let history = History::create("sp");
    let mut env = env.to_vec();
    env.push((WORKER_VAR, history.path().display().to_string()));
    let out = worker("worker_sp_", false, 4, &env)
        .output()
        .expect("run workers");
    (out, history)
}

/// Every worker failed, the harness saying it did not panic, our line saying
/// why; and no body ran.
fn assert_all_failed_without_running(out: &std::process::Output, history: &History, why: &str) {
    let text = output_text(out);
    assert!(!out.status.success(), "{text}");
    for name in WORKERS {
        assert!(
            text.contains(&format!("test {name} - should panic ... FAILED")),
            "{name}: {text}"
        );
        assert!(
            text.contains(&format!(
                "relukko: test e2e_should_panic::{name} could not lock {RIG}: {why}"
            )),
            "{name}: {text}"
        );
    }
    assert!(text.contains("0 passed; 9 failed"), "{text}");
    assert_eq!(
        text.matches("did not panic as expected").count(),
        // Said by our line and by the harness for each test.
        2 * WORKERS.len(),
        "{text}"
    );
    assert_eq!(history.summary().entries, 0, "a body ran: {text}");
}

fn local_env() -> (Vec<(&'static str, String)>, relukko_e2e::temp::TempDir) {
    let dir = fresh_dir("sp-local");
    (vec![("RELUKKO_LOCAL_DIR", dir.display().to_string())], dir)
}

/// The control: with the lock held, every worker passes (its body panics as
/// expected), so the failures below come from locking alone.
#[test]
fn should_panic_tests_pass_when_locked() {
    let (env, _dir) = local_env();
    let (out, history) = run_all(&env);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("9 passed; 0 failed"), "{text}");
    assert_eq!(history.summary().entries, 9, "{text}");
}

#[test]
fn should_panic_tests_fail_when_the_server_is_down() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut env, _dir) = local_env();
    env.push(("RELUKKO_URL", format!("http://127.0.0.1:{port}")));
    let (out, history) = run_all(&env);
    assert_all_failed_without_running(&out, &history, "");
    let text = output_text(&out);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
}

#[test]
fn should_panic_tests_fail_on_a_bad_setting() {
    let (mut env, _dir) = local_env();
    env.push(("RELUKKO_TIMEOUT", "abc".to_owned()));
    let (out, history) = run_all(&env);
    assert_all_failed_without_running(&out, &history, "");
    assert!(output_text(&out).contains("RELUKKO_TIMEOUT"));
}

#[test]
fn should_panic_tests_fail_when_the_wait_times_out() {
    let (env, dir) = local_env();
    let held = Locker::local(dir.path())
        .creator("the e2e driver")
        .lock_blocking(RIG)
        .unwrap();
    let (out, history) = run_all(&env);
    assert_all_failed_without_running(&out, &history, "timed out after 3.");
    held.release_blocking().unwrap();
}

/// The driver deletes the lock of worker `name` once it holds it; in mode
/// `lost-panic` the body then panics as expected, in `lost-return` it
/// returns. Both fail.
fn lost_lock_fails(name: &str, mode: &str) {
    let server = TestServer::start();
    let history = History::create(name);
    let env = [
        ("RELUKKO_URL", server.base_url().to_owned()),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
        (MODE_VAR, mode.to_owned()),
        (WORKER_VAR, history.path().display().to_string()),
    ];
    let child = worker(name, true, 1, &env).spawn().expect("spawn worker");
    assert!(
        history.wait_for_entries(1, Duration::from_secs(60)),
        "{name} never held {RIG}"
    );
    let client = Client::builder(server.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let lock = client
                .holder(RIG)
                .await
                .unwrap()
                .expect("the worker holds it");
            client.delete(lock.id).await.unwrap();
        });
    let out = child.wait_with_output().unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{name} {mode}: {text}");
    assert!(
        text.contains(&format!("test {name} - should panic ... FAILED")),
        "{name} {mode}: {text}"
    );
    assert!(
        text.contains(&format!(
            "relukko: test e2e_should_panic::{name} lost its lock while it ran: {RIG}: deleted by someone else"
        )),
        "{name} {mode}: {text}"
    );
    assert_eq!(
        text.matches("did not panic as expected").count(),
        2,
        "{name} {mode}: {text}"
    );
}

#[test]
fn should_panic_tests_fail_when_the_lock_is_lost_and_the_body_panics() {
    for name in WORKERS.iter().filter(|n| n.contains("_lost_")) {
        lost_lock_fails(name, "lost-panic");
    }
}

#[test]
fn should_panic_tests_fail_when_the_lock_is_lost_and_the_body_returns() {
    for name in WORKERS.iter().filter(|n| n.contains("_lost_")) {
        lost_lock_fails(name, "lost-return");
    }
}
