//! Many tests in several processes contend for one resource; the history
//! file proves no two ever held it at once. Against the embedded local
//! backend (a fresh lock folder) and against a Relukko server (the fixture).
//!
//! The `worker_*` tests are ignored and do nothing unless `RELUKKO_E2E_WORKER`
//! names a history file: the drivers run this binary again, with it set and
//! `--ignored`.

use std::time::{Duration, Instant};

use relukko::{Client, Locker, locked};
use relukko_e2e::history::{History, WORKER_VAR, fresh_dir, output_text, worker};
use relukko_server::TestServer;

const RESOURCE: &str = "e2e-contention";
const HOLD: Duration = Duration::from_millis(15);
/// Worker tests per process (`worker_1` .. `worker_6`).
const WORKERS: usize = 6;

fn work(who: &str) {
    if let Some(h) = History::from_env() {
        h.hold(RESOURCE, who, HOLD);
    }
}

/// Not locked: says that its process is up (it sorts first, so it starts
/// with the first test threads of its process).
#[test]
#[ignore = "a worker: its driver runs it"]
fn worker_0_ready() {
    if let Some(h) = History::from_env() {
        h.note("ready");
    }
}

#[test]
#[locked("e2e-contention")]
#[ignore = "a worker: its driver runs it"]
fn worker_1() {
    work("worker_1");
}

#[locked("e2e-contention")]
#[test]
#[ignore = "a worker: its driver runs it"]
fn worker_2() {
    work("worker_2");
}

#[test]
#[locked("e2e-contention", timeout = "5m")]
#[ignore = "a worker: its driver runs it"]
fn worker_3() {
    work("worker_3");
}

#[tokio::test]
#[locked("e2e-contention")]
#[ignore = "a worker: its driver runs it"]
async fn worker_4() {
    tokio::task::yield_now().await;
    work("worker_4");
}

#[locked("e2e-contention")]
#[tokio::test]
#[ignore = "a worker: its driver runs it"]
async fn worker_5() {
    work("worker_5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[locked("e2e-contention")]
#[ignore = "a worker: its driver runs it"]
async fn worker_6() {
    work("worker_6");
}

/// Runs `procs` worker processes with `threads` test threads each, all at
/// once. The driver holds the resource (through `gate`) until every process
/// is up, so they all contend from the start instead of one after another.
fn contend(procs: usize, threads: usize, gate: &Locker, env: &[(&str, String)]) -> History {
    let history = History::create("contention");
    let held = gate
        .lock_blocking(RESOURCE)
        .expect("the driver holds the gate");
    let mut env = env.to_vec();
    env.push((WORKER_VAR, history.path().display().to_string()));
    let children: Vec<_> = (0..procs)
        .map(|_| {
            worker("worker_", false, threads, &env)
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(60);
    while history.notes().len() < procs && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    held.release_blocking()
        .expect("the driver releases the gate");
    for child in children {
        let out = child.wait_with_output().expect("wait for worker");
        assert!(
            out.status.success(),
            "a worker process failed:\n{}",
            output_text(&out)
        );
    }
    assert_eq!(history.notes().len(), procs, "every process came up");
    history
}

fn check(history: &History, procs: usize) {
    let s = history.summary();
    assert_eq!(
        s.entries,
        procs * WORKERS,
        "every worker held the resource once: {s:?}"
    );
    assert_eq!(
        s.max_per_resource,
        1,
        "two holders at once: see {}",
        history.path().display()
    );
    // The processes really contended: their holds interleaved, rather than
    // each process taking all of its turns in one block.
    let runs = history.process_runs();
    assert!(
        runs > procs,
        "the processes never interleaved ({runs} runs): see {}",
        history.path().display()
    );
}

#[test]
fn local_backend_serializes_processes_and_threads() {
    let dir = fresh_dir("contention-local");
    let gate = Locker::local(dir.path());
    let env = [("RELUKKO_LOCAL_DIR", dir.display().to_string())];
    let history = contend(4, 3, &gate, &env);
    check(&history, 4);
}

#[test]
fn relukko_backend_serializes_processes_and_threads() {
    let server = TestServer::start();
    let env = [
        ("RELUKKO_URL", server.base_url().to_owned()),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
    ];
    let client = Client::builder(server.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let history = contend(3, 3, &Locker::relukko(client), &env);
    check(&history, 3);
}
