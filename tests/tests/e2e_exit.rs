//! A holder that dies: killed with SIGKILL (local: the kernel frees the lock
//! at once; Relukko: it frees once the lease and the server's grace pass), or
//! calling `std::process::exit` with a lease still held (the exit handler
//! releases it, so the lock is free as soon as the process is gone).

use std::time::{Duration, Instant};

use relukko::{LockOptions, Locker, locked};
use relukko_e2e::history::{History, WORKER_VAR, fresh_dir, output_text, worker};
use relukko_e2e::setup::client;
use relukko_server::TestServer;

#[test]
#[locked("e2e-kill")]
#[ignore = "a worker: its driver runs it"]
fn kill_worker() {
    if let Some(h) = History::from_env() {
        h.enter("e2e-kill", "kill_worker");
        // Killed long before this ends.
        std::thread::sleep(Duration::from_secs(120));
    }
}

#[test]
#[ignore = "a worker: its driver runs it"]
fn exit_worker() {
    if let Some(h) = History::from_env() {
        let lease = relukko::lock_blocking("e2e-exit").expect("lock e2e-exit");
        h.enter("e2e-exit", "exit_worker");
        assert_eq!(lease.state(), relukko::LeaseState::Held);
        // No destructor runs: only the exit handler can release it.
        std::process::exit(0);
    }
}

#[test]
#[ignore = "a worker: its driver runs it"]
fn leak_worker() {
    if let Some(h) = History::from_env() {
        let lease = relukko::lock_blocking("e2e-leak").expect("lock e2e-leak");
        h.enter("e2e-leak", "leak_worker");
        // Leaked: never released by a destructor; the test (and the process) ends normally.
        std::mem::forget(lease);
    }
}

#[test]
#[ignore = "a worker: its driver runs it"]
fn leak_after_another_ended_worker() {
    if let Some(h) = History::from_env() {
        let kept = relukko::lock_blocking("e2e-leak-kept").expect("lock e2e-leak-kept");
        // Another lease comes and goes while the first lives.
        relukko::lock_blocking("e2e-leak-brief")
            .expect("lock e2e-leak-brief")
            .release_blocking()
            .unwrap();
        h.enter("e2e-leak-kept", "leak_after_another_ended_worker");
        std::mem::forget(kept);
    }
}

/// Starts `kill_worker`, waits until it holds the lock, kills it with SIGKILL.
fn kill_a_holder(env: &[(&str, String)]) {
    let history = History::create("kill");
    let mut env = env.to_vec();
    env.push((WORKER_VAR, history.path().display().to_string()));
    let mut child = worker("kill_worker", true, 1, &env)
        .spawn()
        .expect("spawn worker");
    let holds = history.wait_for_entries(1, Duration::from_secs(60));
    child.kill().expect("SIGKILL the worker");
    let out = child.wait_with_output().unwrap();
    assert!(
        holds,
        "the worker never held the lock: {}",
        output_text(&out)
    );
}

#[test]
fn local_sigkill_frees_the_lock_at_once() {
    let dir = fresh_dir("kill-local");
    kill_a_holder(&[("RELUKKO_LOCAL_DIR", dir.display().to_string())]);
    // "At once": no wait is needed; the bound is only for a loaded machine.
    let lease = Locker::local(dir.path())
        .lock_blocking(LockOptions::new("e2e-kill").timeout(Duration::from_secs(5)))
        .expect("free right after the kill");
    lease.release_blocking().unwrap();
}

#[test]
fn relukko_sigkill_frees_the_lock_after_lease_and_grace() {
    let server = TestServer::builder()
        .grace(Duration::from_secs(1))
        .cleanup_interval(Duration::from_millis(200))
        .start();
    let env = [
        ("RELUKKO_URL", server.base_url().to_owned()),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
        ("RELUKKO_LEASE", "3s".to_owned()),
    ];
    kill_a_holder(&env);
    let killed = Instant::now();
    let lease = Locker::relukko(client(&server))
        .lock_blocking(LockOptions::new("e2e-kill").timeout(Duration::from_secs(60)))
        .expect("free once the lease and grace pass");
    let freed = killed.elapsed();
    eprintln!("free {freed:?} after the kill");
    // Not before: the last keep-alive (at most a third of the 3 s lease
    // before the kill) moved the expiry 3 s ahead, and the grace adds 1 s.
    // A lock freed at once, by anything but expiry, must fail this.
    assert!(
        freed >= Duration::from_secs(2),
        "freed {freed:?} after the kill: before its lease and grace ran out"
    );
    lease.release_blocking().unwrap();
}

fn exit_while_holding(env: &[(&str, String)]) {
    let history = History::create("exit");
    let mut env = env.to_vec();
    env.push((WORKER_VAR, history.path().display().to_string()));
    let out = worker("exit_worker", true, 1, &env)
        .output()
        .expect("run worker");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(history.summary().entries, 1, "{text}");
}

#[test]
fn local_exit_while_holding_frees_the_lock() {
    let dir = fresh_dir("exit-local");
    exit_while_holding(&[("RELUKKO_LOCAL_DIR", dir.display().to_string())]);
    let lease = Locker::local(dir.path())
        .lock_blocking(LockOptions::new("e2e-exit").timeout(Duration::from_secs(5)))
        .expect("free right after the exit");
    lease.release_blocking().unwrap();
}

#[test]
fn relukko_exit_while_holding_releases_at_exit() {
    let server = TestServer::start();
    exit_while_holding(&[
        ("RELUKKO_URL", server.base_url().to_owned()),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
    ]);
    // Released by the exit handler, not by expiry (the lease is 60 s and the
    // grace 3 minutes): the lock is gone right away.
    let c = client(&server);
    let holder = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(c.holder("e2e-exit"))
        .unwrap();
    assert_eq!(holder, None, "the exit handler did not release e2e-exit");
}

/// Runs `worker_name`, which leaks a lease of `name` and ends normally: the
/// exit handler has released it once the process is gone.
fn leaked_is_released_at_exit(worker_name: &str, name: &str) {
    let server = TestServer::start();
    let history = History::create("leak");
    let env = [
        ("RELUKKO_URL", server.base_url().to_owned()),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
        (WORKER_VAR, history.path().display().to_string()),
    ];
    let out = worker(worker_name, true, 1, &env)
        .output()
        .expect("run worker");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(history.summary().entries, 1, "the worker held it: {text}");
    // The lease is 60 s and the grace 3 minutes: only the exit handler can
    // have freed it by now.
    let holder = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client(&server).holder(name))
        .unwrap();
    assert_eq!(
        holder, None,
        "the leaked lease outlived its process: {text}"
    );
}

#[test]
fn relukko_leaked_lease_is_released_at_exit() {
    leaked_is_released_at_exit("leak_worker", "e2e-leak");
}

/// A lease that ended before the process did takes only itself off the list
/// the exit handler walks, not a lease still alive (every lease with the same
/// key left every suite green).
#[test]
fn relukko_a_lease_ending_leaves_another_on_the_exit_list() {
    leaked_is_released_at_exit("leak_after_another_ended_worker", "e2e-leak-kept");
}
