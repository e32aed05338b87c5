//! Many tests in several processes contend for one resource; the history
//! file proves no two ever held it at once. Against the embedded local
//! backend (a fresh lock folder) and against a Relukko server (the fixture).
//!
//! The `worker_*` tests do nothing unless `RELUKKO_E2E_WORKER` names a
//! history file: the drivers run this binary again with it set.

use std::time::Duration;

use relukko::locked;
use relukko::server::TestServer;
use relukko_e2e::history::{History, fresh_dir, run_workers};

const RESOURCE: &str = "e2e-contention";
const HOLD: Duration = Duration::from_millis(15);
/// Worker tests per process (`worker_1` .. `worker_6`).
const WORKERS: usize = 6;

fn work(who: &str) {
    if let Some(h) = History::from_env() {
        h.hold(RESOURCE, who, HOLD);
    }
}

#[test]
#[locked("e2e-contention")]
fn worker_1() {
    work("worker_1");
}

#[locked("e2e-contention")]
#[test]
fn worker_2() {
    work("worker_2");
}

#[test]
#[locked("e2e-contention", timeout = "5m")]
fn worker_3() {
    work("worker_3");
}

#[tokio::test]
#[locked("e2e-contention")]
async fn worker_4() {
    tokio::task::yield_now().await;
    work("worker_4");
}

#[locked("e2e-contention")]
#[tokio::test]
async fn worker_5() {
    work("worker_5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[locked("e2e-contention")]
async fn worker_6() {
    work("worker_6");
}

/// Runs `procs` worker processes with `threads` test threads each, all at once.
fn contend(procs: usize, threads: usize, env: &[(&str, String)]) -> History {
    let history = History::create("contention");
    run_workers("worker_", procs, threads, env, &history);
    history
}

fn check(history: &History, expected: usize) {
    let s = history.summary();
    assert_eq!(
        s.entries, expected,
        "every worker held the resource once: {s:?}"
    );
    assert_eq!(
        s.max_per_resource,
        1,
        "two holders at once: see {}",
        history.path().display()
    );
}

#[test]
fn local_backend_serializes_processes_and_threads() {
    let dir = fresh_dir("contention-local");
    let history = contend(4, 3, &[("RELUKKO_LOCAL_DIR", dir.display().to_string())]);
    check(&history, 4 * WORKERS);
}

#[test]
fn relukko_backend_serializes_processes_and_threads() {
    let server = TestServer::start();
    let env = [
        ("RELUKKO_URL", server.base_url().to_owned()),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
    ];
    let history = contend(3, 3, &env);
    check(&history, 3 * WORKERS);
}
