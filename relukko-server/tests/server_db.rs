//! `relukko-server --db`: locks survive a `kill -9` under load.
//!
//! Several clients create, extend and delete locks while the server is killed
//! with SIGKILL; the server started again on the same file must hold every lock
//! that was answered as created (exactly as last answered), none answered as
//! deleted, and no lock twice.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use relukko_e2e::child::{Running, STEP, TempDir, get, request, start, wait_exit};

/// The server binary with none of the caller's `RELUKKO_*` settings.
fn command() -> std::process::Command {
    relukko_e2e::child::command(env!("CARGO_BIN_EXE_relukko-server"))
}

const KEY: &str = "db-test-key";
const WORKERS: usize = 4;
/// Answered requests before the kill: enough that every kind of change is on disk.
const OPS_BEFORE_KILL: usize = 120;
/// A bound on each worker, should the server outlive the wait.
const MAX_OPS_PER_WORKER: usize = 5_000;

fn server(db: &Path, grace: &str) -> Running {
    let mut cmd = command();
    cmd.env("RELUKKO_API_KEY", KEY).env("RELUKKO_DB", db).args([
        "--port",
        "0",
        "--grace",
        grace,
        "--cleanup-interval",
        "100ms",
    ]);
    start(cmd)
}

/// What one client was told.
#[derive(Debug, Default)]
struct Ledger {
    /// Every name it tried to create.
    attempted: HashSet<String>,
    /// The last answer about each lock it created (by name).
    answered: HashMap<String, Value>,
    /// Ids of the locks whose deletion was answered.
    deleted: HashSet<String>,
    /// Names with a request that got no answer: either outcome is right.
    unsure: HashSet<String>,
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Creates, extends and deletes its own locks until the server stops answering.
fn worker(n: usize, addr: SocketAddr, answered_ops: Arc<AtomicUsize>) -> Ledger {
    let mut ledger = Ledger::default();
    let mut live: Vec<String> = Vec::new();
    let mut rng = fastrand::Rng::with_seed(n as u64);
    for i in 0..MAX_OPS_PER_WORKER {
        let roll = rng.u8(0..10);
        let (name, result) = if live.is_empty() || roll < 5 {
            let name = format!("db-w{n}-{i}");
            ledger.attempted.insert(name.clone());
            let body = format!(r#"{{"lock_name":"{name}","creator":"worker {n}"}}"#);
            let r = request(addr, "POST", "/v1/locks/", Some(KEY), Some(&body));
            if let Ok((status, body)) = &r {
                assert_eq!(*status, 201, "{body}");
                ledger.answered.insert(name.clone(), json(body));
                live.push(name.clone());
            }
            (name, r.map(|_| ()))
        } else if roll < 8 {
            let name = live[rng.usize(..live.len())].clone();
            let id = ledger.answered[&name]["id"].as_str().unwrap().to_owned();
            let body = format!(r#"{{"seconds":{}}}"#, 600 + i);
            let path = format!("/v1/locks/{id}/keep_alive");
            let r = request(addr, "PUT", &path, Some(KEY), Some(&body));
            if let Ok((status, body)) = &r {
                assert_eq!(*status, 200, "{body}");
                ledger.answered.insert(name.clone(), json(body));
            }
            (name, r.map(|_| ()))
        } else {
            let name = live.swap_remove(rng.usize(..live.len()));
            let id = ledger.answered[&name]["id"].as_str().unwrap().to_owned();
            let r = request(addr, "DELETE", &format!("/v1/locks/{id}"), Some(KEY), None);
            if let Ok((status, body)) = &r {
                assert_eq!(*status, 200, "{body}");
                ledger.deleted.insert(id);
            }
            (name, r.map(|_| ()))
        };
        if result.is_err() {
            // The server died with this request open.
            ledger.unsure.insert(name);
            break;
        }
        answered_ops.fetch_add(1, Ordering::Relaxed);
    }
    ledger
}

fn list(addr: SocketAddr) -> Vec<Value> {
    let (status, body) = get(addr, "/v1/locks/", Some(KEY));
    assert_eq!(status, 200, "{body}");
    match json(&body) {
        Value::Array(locks) => locks,
        other => panic!("not a list: {other}"),
    }
}

fn by_id(locks: &[Value]) -> HashMap<String, Value> {
    let mut map = HashMap::new();
    let mut names = HashSet::new();
    for lock in locks {
        let id = lock["id"].as_str().unwrap().to_owned();
        let name = lock["lock_name"].as_str().unwrap().to_owned();
        assert!(
            names.insert(name.clone()),
            "lock name {name} twice: {locks:?}"
        );
        assert!(
            map.insert(id.clone(), lock.clone()).is_none(),
            "id {id} twice"
        );
    }
    map
}

fn kill_9(server: &mut Running) {
    server.child.kill().expect("SIGKILL");
    let status = wait_exit(&mut server.child);
    assert_eq!(status.code(), None, "killed by a signal: {status:?}");
}

#[test]
fn locks_survive_kill_9_under_load() {
    let dir = TempDir::new("server-db");
    let db = dir.path().join("locks.redb");
    let mut first = server(&db, "1h");

    // A lock that expired a minute ago: the first server's long grace keeps it.
    let (status, body) = request(
        first.addr,
        "POST",
        "/v1/locks/",
        Some(KEY),
        Some(r#"{"lock_name":"db-stale","creator":"gone"}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let stale = json(&body);
    let stale_id = stale["id"].as_str().unwrap().to_owned();
    let created = time::OffsetDateTime::parse(
        stale["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let past = (created - time::Duration::minutes(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, body) = request(
        first.addr,
        "PUT",
        &format!("/v1/locks/{stale_id}"),
        Some(KEY),
        Some(&format!(r#"{{"expires_at":"{past}"}}"#)),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    let ops = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|n| {
            let (addr, ops) = (first.addr, ops.clone());
            std::thread::spawn(move || worker(n, addr, ops))
        })
        .collect();
    let start_wait = Instant::now();
    while ops.load(Ordering::Relaxed) < OPS_BEFORE_KILL {
        assert!(
            start_wait.elapsed() < STEP * 3,
            "only {} answers in time",
            ops.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_9(&mut first);
    let ledgers: Vec<Ledger> = workers.into_iter().map(|w| w.join().unwrap()).collect();

    // Started again on the same file, with a short grace: the stale lock goes.
    let mut second = server(&db, "1s");
    let after = list(second.addr);
    let present = by_id(&after);
    let mut kept = 0;
    for ledger in &ledgers {
        for (name, last) in &ledger.answered {
            let id = last["id"].as_str().unwrap();
            if ledger.deleted.contains(id) {
                assert!(!present.contains_key(id), "deleted lock {name} is back");
            } else if !ledger.unsure.contains(name) {
                assert_eq!(present.get(id), Some(last), "lock {name} as last answered");
                kept += 1;
            }
        }
    }
    for lock in &after {
        let name = lock["lock_name"].as_str().unwrap();
        assert!(
            name == "db-stale" || ledgers.iter().any(|l| l.attempted.contains(name)),
            "a lock nobody created: {lock}"
        );
    }
    let deleted: usize = ledgers.iter().map(|l| l.deleted.len()).sum();
    eprintln!(
        "after kill -9: {} locks back, {kept} checked as last answered, {deleted} deletions checked",
        after.len()
    );
    assert!(kept > 0 && deleted > 0, "the load made and deleted locks");

    // The clean-up goes on with the loaded expiry.
    let start_wait = Instant::now();
    while get(second.addr, &format!("/v1/locks/{stale_id}"), Some(KEY)).0 != 404 {
        assert!(
            start_wait.elapsed() < STEP,
            "the stale lock was not cleaned up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // One file, one server: a second one on it refuses to start.
    let mut other = command();
    other
        .env("RELUKKO_API_KEY", KEY)
        .args(["--port", "0", "--db"])
        .arg(&db);
    let output = other.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("database"), "{stderr}");
    assert!(output.stdout.is_empty(), "it must not claim to listen");

    // The clean-up's deletion is durable too.
    let before = list(second.addr);
    kill_9(&mut second);
    let third = server(&db, "1s");
    let again = list(third.addr);
    assert!(
        !by_id(&again).contains_key(&stale_id),
        "the stale lock is back"
    );
    assert_eq!(by_id(&again), by_id(&before));
}
