//! A pool of 3 serves 6 tests: never more than 3 at once, never two on one
//! member. Local backend and Relukko backend, several processes.

use std::time::Duration;

use relukko::{Lease, locked};
use relukko_e2e::history::{History, fresh_dir, run_workers};
use relukko_server::TestServer;

const HOLD: Duration = Duration::from_millis(300);

fn work(lease: &Lease, who: &str) {
    assert!(lease.name().starts_with("e2e-pool-"), "{lease:?}");
    if let Some(h) = History::from_env() {
        h.hold(lease.name(), who, HOLD);
    }
}

#[locked(any_of("e2e-pool-1", "e2e-pool-2", "e2e-pool-3"))]
#[test]
#[ignore = "a worker: its driver runs it"]
fn pool_worker_1(lease: Lease) {
    work(&lease, "1");
}

#[locked(any_of("e2e-pool-1", "e2e-pool-2", "e2e-pool-3"))]
#[test]
#[ignore = "a worker: its driver runs it"]
fn pool_worker_2(lease: Lease) {
    work(&lease, "2");
}

#[locked(any_of("e2e-pool-1", "e2e-pool-2", "e2e-pool-3"))]
#[test]
#[ignore = "a worker: its driver runs it"]
fn pool_worker_3(lease: Lease) {
    work(&lease, "3");
}

#[locked(any_of("e2e-pool-1", "e2e-pool-2", "e2e-pool-3"))]
#[tokio::test]
#[ignore = "a worker: its driver runs it"]
async fn pool_worker_4(lease: Lease) {
    work(&lease, "4");
}

#[locked(any_of("e2e-pool-1", "e2e-pool-2", "e2e-pool-3"))]
#[test]
#[ignore = "a worker: its driver runs it"]
fn pool_worker_5(lease: Lease) {
    work(&lease, "5");
}

#[locked(any_of("e2e-pool-1", "e2e-pool-2", "e2e-pool-3"))]
#[test]
#[ignore = "a worker: its driver runs it"]
fn pool_worker_6(lease: Lease) {
    work(&lease, "6");
}

fn serve_pool(procs: usize, env: &[(&str, String)]) {
    let history = History::create("pool");
    run_workers("pool_worker_", procs, 6, env, &history);
    let s = history.summary();
    eprintln!("pool history: {s:?}");
    assert_eq!(s.entries, 6 * procs, "{s:?}");
    assert_eq!(
        s.max_per_resource,
        1,
        "two tests on one pool member: {}",
        history.path().display()
    );
    assert!(s.max_total <= 3, "more than 3 at once: {s:?}");
    assert!(
        s.per_resource.keys().all(|k| k.starts_with("e2e-pool-")),
        "{s:?}"
    );
    // 12 tests want the pool at once and each holds a member for a while: a
    // pool that serves them one at a time, or always hands out the same
    // member, must not pass.
    assert_eq!(
        s.per_resource.len(),
        3,
        "every member served: {s:?} in {}",
        history.path().display()
    );
    assert!(
        s.max_total >= 2,
        "tests never held the pool at the same time: {s:?}"
    );
}

#[test]
fn local_pool_of_three_serves_six_tests() {
    let dir = fresh_dir("pool-local");
    serve_pool(2, &[("RELUKKO_LOCAL_DIR", dir.display().to_string())]);
}

#[test]
fn relukko_pool_of_three_serves_six_tests() {
    let server = TestServer::start();
    serve_pool(
        2,
        &[
            ("RELUKKO_URL", server.base_url().to_owned()),
            ("RELUKKO_API_KEY", server.api_key().to_owned()),
        ],
    );
}
