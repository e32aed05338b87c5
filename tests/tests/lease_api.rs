//! The non-macro API in-process: `Locker`, `LockOptions`, `Lease` (state,
//! release, drop, loss, heartbeat), with explicit lockers so no environment
//! variable is needed.

use std::time::{Duration, Instant};

use relukko::{Client, Error, LeaseState, LockOptions, Locker, RetryPolicy};
use relukko_e2e::history::{WORKER_VAR, fresh_dir, output_text, worker};
use relukko_e2e::setup::{client, rt};
use relukko_e2e::temp::TempDir;
use relukko_server::TestServer;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A local locker in a folder of its own, removed when the guard drops.
fn local() -> (Locker, TempDir) {
    let dir = fresh_dir("lease-api");
    (Locker::local(dir.path()), dir)
}

/// Runs the worker test `name` of this binary in a child process with its
/// stderr captured: it must pass and print each of `lines` (warnings meant
/// for users, expected in these tests).
fn in_child(name: &str, lines: &[&str]) {
    let out = worker(name, true, 1, &[(WORKER_VAR, "1".to_owned())])
        .output()
        .expect("run the worker");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the worker ran: {text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in lines {
        assert!(stderr.contains(line), "{line:?} on stderr: {text}");
    }
}

#[test]
fn lock_wait_timeout_release_and_drop() {
    let (locker, _dir) = local();
    let lease = locker
        .clone()
        .creator("first holder")
        .lock_blocking("r")
        .unwrap();
    assert_eq!((lease.name(), lease.state()), ("r", LeaseState::Held));

    let err = locker
        .lock_blocking(LockOptions::new("r").timeout(Duration::from_millis(100)))
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("waiting for r, held by first holder since "),
        "{err}"
    );

    let clone = lease.clone();
    lease.release_blocking().unwrap();
    assert_eq!(clone.state(), LeaseState::Released);
    clone.release_blocking().unwrap(); // already released: nothing to do

    let again = locker
        .lock_blocking(LockOptions::new("r").timeout(secs(5)))
        .unwrap();
    drop(again); // dropping releases too
    let _lease = locker
        .lock_blocking(LockOptions::new("r").timeout(secs(5)))
        .unwrap();
}

#[test]
fn several_names_in_canonical_order_and_pools() {
    let (locker, _dir) = local();
    let lease = locker
        .lock_blocking(LockOptions::all_of(["b", "a", "b"]))
        .unwrap();
    assert_eq!(lease.names(), ["a", "b"]);
    let quick = |o: LockOptions| o.timeout(Duration::from_millis(50));
    assert!(locker.lock_blocking(quick(LockOptions::new("a"))).is_err());
    assert!(locker.lock_blocking(quick(LockOptions::new("b"))).is_err());

    let p1 = locker
        .lock_blocking(LockOptions::any_of(["a", "p", "q"]).timeout(secs(5)))
        .unwrap();
    assert_eq!(p1.name(), "p");
    let p2 = locker
        .lock_blocking(LockOptions::any_of(["a", "p", "q"]).timeout(secs(5)))
        .unwrap();
    assert_eq!(p2.name(), "q");
    let err = locker
        .lock_blocking(quick(LockOptions::any_of(["a", "p", "q"])))
        .unwrap_err();
    assert!(err.to_string().contains("any of a, p, q"), "{err}");
    drop(lease);
    let p3 = locker
        .lock_blocking(LockOptions::any_of(["a", "p", "q"]).timeout(secs(5)))
        .unwrap();
    assert_eq!(p3.name(), "a");
}

#[test]
fn names_taken_are_given_back_when_a_later_one_times_out() {
    let (locker, _dir) = local();
    let z = locker.lock_blocking("z").unwrap();
    let err = locker
        .lock_blocking(LockOptions::all_of(["a", "z"]).timeout(Duration::from_millis(200)))
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    // "a" was taken first (canonical order), then given back: free at once.
    let a = locker
        .lock_blocking(LockOptions::new("a").timeout(Duration::ZERO))
        .expect("a was given back");
    drop((a, z));
}

#[test]
fn opposite_orders_of_the_same_names_never_deadlock() {
    let (locker, _dir) = local();
    let threads: Vec<_> = [["x", "y"], ["y", "x"]]
        .into_iter()
        .map(|names| {
            let locker = locker.clone();
            std::thread::spawn(move || {
                for _ in 0..30 {
                    // A deadlock would show as a wait that times out.
                    let lease = locker
                        .lock_blocking(LockOptions::all_of(names).timeout(secs(30)))
                        .unwrap();
                    std::thread::yield_now();
                    lease.release_blocking().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn several_names_are_released_in_reverse_order() {
    let server = TestServer::start();
    let rt = rt();
    let mut ws = rt
        .block_on(relukko_e2e::raw::ws_connect(
            server.base_url(),
            Some(server.api_key()),
        ))
        .unwrap();
    let lease = Locker::relukko(client(&server))
        .lock_blocking(LockOptions::all_of(["rev-b", "rev-c", "rev-a"]))
        .unwrap();
    lease.release_blocking().unwrap();
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let event = rt.block_on(relukko_e2e::raw::next_event(&mut ws));
        let (kind, lock) = event.as_object().unwrap().iter().next().unwrap();
        if kind.as_str() != "updated" {
            seen.push(format!("{kind} {}", lock["lock_name"].as_str().unwrap()));
        }
    }
    assert_eq!(
        seen,
        [
            "created rev-a",
            "created rev-b",
            "created rev-c",
            "deleted rev-c",
            "deleted rev-b",
            "deleted rev-a"
        ]
    );
}

#[test]
fn prefix_applies_to_the_locked_name() {
    let dir = fresh_dir("prefix");
    let team = Locker::local(dir.path()).prefix("team-");
    let lease = team.lock_blocking("rig").unwrap();
    assert_eq!((lease.name(), lease.resource()), ("rig", "team-rig"));
    let plain = Locker::local(dir.path());
    assert!(
        plain
            .lock_blocking(LockOptions::new("team-rig").timeout(Duration::from_millis(50)))
            .is_err()
    );
    let _lease = plain
        .lock_blocking(LockOptions::new("rig").timeout(secs(5)))
        .unwrap();
}

#[test]
fn bad_options_are_config_errors() {
    let (locker, _dir) = local();
    let err = locker
        .lock_blocking(LockOptions::new("x").lease(Duration::from_millis(10)))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { name, .. } if name == "lease"),
        "{err}"
    );
    let err = locker
        .lock_blocking(LockOptions::all_of(Vec::<String>::new()))
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(locker.lock_blocking("").is_err());
}

#[test]
fn async_lock_works_on_any_runtime_and_a_dropped_wait_leaves_nothing() {
    let (locker, _dir) = local();
    rt().block_on(async {
        let held = locker.lock("r").await.unwrap();
        let waiting = locker.lock(LockOptions::new("r").timeout(secs(60)));
        assert!(
            tokio::time::timeout(Duration::from_millis(200), waiting)
                .await
                .is_err()
        );
        held.release().await.unwrap();
        // The dropped wait did not take the lock behind our back.
        let again = locker
            .lock(LockOptions::new("r").timeout(secs(5)))
            .await
            .unwrap();
        again.release().await.unwrap();
    });
}

/// The create requests (`POST /v1/locks`, taken or not) the server has
/// answered, from its metrics.
async fn creates_asked(api: &relukko_e2e::raw::Api) -> u64 {
    api.requests_answered(|l| l.contains("route=\"/v1/locks") && l.contains("method=\"POST\""))
        .await
}

/// Dropping a waiting `lock` future ends the wait itself, not only the
/// caller's interest in it: the abandoned waiter stops asking the server
/// (else it would take the lock once free, behind everybody's back).
#[test]
fn relukko_dropped_wait_stops_asking() {
    let server = TestServer::start();
    let api = relukko_e2e::raw::Api::new(&server);
    // Polling only: a waiter still running asks again at least once a second.
    let c = relukko::Client::builder(server.base_url())
        .api_key(server.api_key())
        .websocket(false)
        .poll_max(secs(1))
        .build()
        .unwrap();
    let locker = Locker::relukko(c);
    rt().block_on(async {
        let held = locker.lock("dropped-wait").await.unwrap();
        let waiting = locker.lock(LockOptions::new("dropped-wait").timeout(secs(120)));
        assert!(
            tokio::time::timeout(Duration::from_millis(300), waiting)
                .await
                .is_err()
        );
        // A create in flight when the wait was dropped may still be answered;
        // after that, quiet: three seconds without a create, within 30 s.
        let until = Instant::now() + secs(30);
        let (mut last, mut since) = (creates_asked(&api).await, Instant::now());
        while since.elapsed() < secs(3) {
            assert!(
                Instant::now() < until,
                "the dropped wait still asks for the lock ({last} creates)"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = creates_asked(&api).await;
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        held.release().await.unwrap();
    });
}

#[test]
#[ignore = "a worker: its driver runs it"]
fn skip_locker_never_waits_worker() {
    if std::env::var_os(WORKER_VAR).is_none() {
        return;
    }
    let locker = Locker::skip();
    let a = locker.lock_blocking("s").unwrap();
    let b = locker
        .lock_blocking(LockOptions::new("s").timeout(Duration::ZERO))
        .unwrap();
    assert_eq!(b.state(), LeaseState::Held);
    drop((a, b));
}

#[test]
fn relukko_heartbeat_keeps_a_short_lease_alive() {
    let server = TestServer::start();
    let c = client(&server);
    let lease = Locker::relukko(c.clone())
        .lease(secs(2))
        .lock_blocking("hb")
        .unwrap();
    let first = rt().block_on(c.holder("hb")).unwrap().expect("held");
    // Keep-alives move the expiry on: wait (bounded) until it lies two
    // leases past the first one, so the lock has outlived its first lease.
    let until = Instant::now() + secs(60);
    let lock = loop {
        // Held, or for a moment Uncertain if one keep-alive was slow (a
        // loaded machine); never Lost.
        assert!(
            matches!(lease.state(), LeaseState::Held | LeaseState::Uncertain),
            "{:?}",
            lease.lost_reason()
        );
        let lock = rt().block_on(c.holder("hb")).unwrap().expect("still held");
        assert_eq!(lock.id, first.id, "the same lock all along");
        if lock.expires_at >= first.expires_at + time::Duration::seconds(4) {
            break lock;
        }
        assert!(
            Instant::now() < until,
            "the expiry never moved on: {lock:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let left = lock.expires_at - time::OffsetDateTime::now_utc();
    assert!(
        left <= time::Duration::seconds(3),
        "expiry follows the lease, not 10 minutes: {left}"
    );
    lease.release_blocking().unwrap();
    assert_eq!(rt().block_on(c.holder("hb")).unwrap(), None);
}

#[test]
#[ignore = "a worker: its driver runs it"]
fn relukko_deleted_lock_is_lost_and_release_says_so_worker() {
    if std::env::var_os(WORKER_VAR).is_none() {
        return;
    }
    let server = TestServer::start();
    let c = client(&server);
    let lease = Locker::relukko(c.clone())
        .lease(secs(3))
        .lock_blocking("gone")
        .unwrap();
    rt().block_on(async {
        let lock = c.holder("gone").await.unwrap().unwrap();
        c.delete(lock.id).await.unwrap();
        let err = tokio::time::timeout(secs(30), lease.lost())
            .await
            .expect("loss noticed");
        assert!(err.to_string().contains("deleted by someone else"), "{err}");
    });
    assert_eq!(lease.state(), LeaseState::Lost);
    let reason = lease.lost_reason().unwrap();
    assert!(reason.contains("404"), "{reason}");
    // How long it was held: about a heartbeat period (1 s), never nothing.
    assert!(
        reason.contains(" after it was acquired") && !reason.contains(", 0ms after it was"),
        "{reason}"
    );
    let err = lease.release_blocking().unwrap_err();
    assert!(matches!(err, Error::LockLost { .. }), "{err}");
}

#[test]
#[ignore = "a worker: its driver runs it"]
fn relukko_unreachable_server_makes_the_lease_uncertain_then_lost_worker() {
    if std::env::var_os(WORKER_VAR).is_none() {
        return;
    }
    let server = TestServer::start();
    let c = client(&server);
    let lease = Locker::relukko(c.clone())
        .lease(secs(3))
        .lock_blocking("cut")
        .unwrap();
    // Until the first heartbeat, the server keeps a new lock 10 minutes, and
    // the lease stays merely uncertain that long: wait for the heartbeat.
    let shortened = rt().block_on(async {
        for _ in 0..100 {
            let lock = c.holder("cut").await.unwrap().unwrap();
            if lock.expires_at - time::OffsetDateTime::now_utc() < time::Duration::seconds(5) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(shortened, "the first heartbeat never came");
    server.stop();
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < secs(30) {
        let s = lease.state();
        if seen.last() != Some(&s) {
            seen.push(s);
        }
        if s == LeaseState::Lost {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen.last(), Some(&LeaseState::Lost), "{seen:?}");
    assert!(seen.contains(&LeaseState::Uncertain), "{seen:?}");
    let reason = lease.lost_reason().unwrap();
    assert!(reason.contains("not kept alive"), "{reason}");
}

/// Its worker prints what users must see on stderr; here it is captured and
/// checked instead of cluttering a green run.
#[test]
fn skip_locker_never_waits() {
    in_child(
        "skip_locker_never_waits_worker",
        &["relukko: locking is skipped"],
    );
}

/// Its worker prints what users must see on stderr; here it is captured and
/// checked instead of cluttering a green run.
#[test]
fn relukko_deleted_lock_is_lost_and_release_says_so() {
    in_child(
        "relukko_deleted_lock_is_lost_and_release_says_so_worker",
        &["relukko: lost gone: deleted by someone else"],
    );
}

/// Its worker prints what users must see on stderr; here it is captured and
/// checked instead of cluttering a green run.
#[test]
fn relukko_unreachable_server_makes_the_lease_uncertain_then_lost() {
    in_child(
        "relukko_unreachable_server_makes_the_lease_uncertain_then_lost_worker",
        &[
            "relukko: lost cut: not kept alive",
            "relukko: could not release cut",
        ],
    );
}

/// A pool wait on a Relukko server that times out names who holds each of
/// its names (a message without them left every suite green).
#[test]
fn relukko_pool_timeout_names_every_holder() {
    let server = TestServer::start();
    let c = client(&server);
    let keeper = Locker::relukko(c.clone()).creator("pool keeper");
    let a = keeper.lock_blocking("pool-a").unwrap();
    let b = keeper.lock_blocking("pool-b").unwrap();
    let err = Locker::relukko(c)
        .lock_blocking(LockOptions::any_of(["pool-a", "pool-b"]).timeout(secs(1)))
        .unwrap_err();
    match &err {
        Error::WaitTimeout {
            holder: Some(h), ..
        } => {
            assert!(
                h.contains("pool-a: pool keeper since ")
                    && h.contains("pool-b: pool keeper since "),
                "{h}"
            );
        }
        other => panic!("expected WaitTimeout naming the holders, got {other:?}"),
    }
    a.release_blocking().unwrap();
    b.release_blocking().unwrap();
}

/// A server found unreachable fails the next locks of this process at once
/// for a while, and only its own: a locker of another server still asks that
/// server (one memory for every server left every suite green). In a child:
/// the memory is process-wide.
#[test]
fn an_unreachable_server_stops_only_its_own_locks() {
    in_child("an_unreachable_server_stops_only_its_own_locks_worker", &[]);
}

#[test]
#[ignore = "a worker: its driver runs it"]
fn an_unreachable_server_stops_only_its_own_locks_worker() {
    if std::env::var_os(WORKER_VAR).is_none() {
        return;
    }
    let closed = {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", port.local_addr().unwrap())
    };
    let dead = Locker::relukko(
        Client::builder(&closed)
            .api_key("unused")
            .websocket(false)
            .retry(RetryPolicy::never())
            .build()
            .unwrap(),
    )
    .timeout(secs(30));
    let err = dead.lock_blocking("unreachable").unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    let err = dead.lock_blocking("unreachable").unwrap_err();
    assert!(err.to_string().contains("not tried again"), "{err}");

    let server = TestServer::start();
    let lease = Locker::relukko(client(&server))
        .timeout(Duration::ZERO)
        .lock_blocking("reachable")
        .expect("another server is asked");
    lease.release_blocking().unwrap();
}

/// Several names share one deadline: a request that waited for its first
/// name has only what is left of its timeout for the next, not the whole
/// timeout again.
#[test]
fn several_names_share_one_deadline() {
    let (locker, _dir) = local();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder_locker = locker.clone();
    let holder = std::thread::spawn(move || {
        let a = holder_locker
            .lock_blocking(LockOptions::new("dl-a"))
            .unwrap();
        let b = holder_locker
            .lock_blocking(LockOptions::new("dl-b"))
            .unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(secs(3));
        drop(a); // dl-a frees after 3 s, dl-b stays held
        let _ = done_rx.recv_timeout(secs(30));
        drop(b);
    });
    held_rx.recv_timeout(secs(30)).unwrap();
    let start = Instant::now();
    let err = locker
        .lock_blocking(LockOptions::all_of(["dl-a", "dl-b"]).timeout(secs(4)))
        .unwrap_err();
    let waited = start.elapsed();
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    // 4 s in all (3 s for dl-a, 1 s left for dl-b); 3 s + 4 s = 7 s if each
    // name got the whole timeout.
    assert!(
        waited >= Duration::from_millis(3900),
        "gave up early: {waited:?}"
    );
    assert!(waited < secs(6), "the deadline was not shared: {waited:?}");
}

/// Courtesy: a process that lets a contended name go and at once asks for
/// it again pauses a few milliseconds (5 at least) before its first try, so
/// that the waiters of other processes woken by the release can take it; a
/// process asking at once would beat them every time. Only the lower bound
/// is checked: load makes the second take slower, never faster.
fn takes_a_contended_name_again_only_after_a_pause(
    locker: &Locker,
    name: &str,
    asynchronous: bool,
) {
    let lease = locker.lock_blocking(name).unwrap();
    // A wait here meets the holder: the name is contended.
    let err = locker
        .lock_blocking(LockOptions::new(name).timeout(Duration::ZERO))
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    if asynchronous {
        rt().block_on(lease.release()).unwrap();
    } else {
        lease.release_blocking().unwrap();
    }
    let started = Instant::now();
    let again = locker
        .lock_blocking(LockOptions::new(name).timeout(secs(10)))
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(3),
        "{name}: taken again at once ({took:?}), before a waiter woken by the release could take it"
    );
    again.release_blocking().unwrap();
}

#[test]
fn a_contended_name_released_here_is_taken_again_only_after_a_pause() {
    let (locker, _dir) = local();
    takes_a_contended_name_again_only_after_a_pause(&locker, "courtesy", false);
    let server = TestServer::start();
    let locker = Locker::relukko(client(&server));
    takes_a_contended_name_again_only_after_a_pause(&locker, "courtesy-blocking", false);
    takes_a_contended_name_again_only_after_a_pause(&locker, "courtesy-async", true);
}

/// The threads of this process waiting for a local lock file.
#[cfg(target_os = "linux")]
fn lock_waiting_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("list this process's threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "relukko-flock")
        .count()
}

/// A local wait that ended, by its timeout or by dropping its future, leaves
/// no thread behind still queued for the lock while its holder (of this
/// process) keeps it: such a thread would take the lock the moment it is
/// freed, for nobody, ahead of every real waiter.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "a worker: its driver runs it"]
fn an_ended_local_wait_leaves_no_waiting_thread_worker() {
    if std::env::var_os(WORKER_VAR).is_none() {
        return;
    }
    let (locker, _dir) = local();
    let held = locker.lock_blocking("ended").unwrap();
    assert_eq!(lock_waiting_threads(), 0);
    let err = locker
        .lock_blocking(LockOptions::new("ended").timeout(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
    relukko_e2e::setup::wait_until(
        "a timed-out wait leaves no thread waiting for the lock",
        secs(20),
        || lock_waiting_threads() == 0,
    );

    rt().block_on(async {
        let waiting = locker.lock(LockOptions::new("ended").timeout(secs(120)));
        assert!(
            tokio::time::timeout(Duration::from_millis(300), waiting)
                .await
                .is_err()
        );
    });
    relukko_e2e::setup::wait_until(
        "a dropped wait leaves no thread waiting for the lock",
        secs(20),
        || lock_waiting_threads() == 0,
    );
    held.release_blocking().unwrap();
}

/// Alone in a process of its own: the threads it counts are its own.
#[cfg(target_os = "linux")]
#[test]
fn an_ended_local_wait_leaves_no_waiting_thread() {
    in_child("an_ended_local_wait_leaves_no_waiting_thread_worker", &[]);
}

/// The names of this process's threads, sorted.
#[cfg(target_os = "linux")]
fn threads() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("list this process's threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// An uncontended `lock_blocking` on lock files and its release run on the
/// caller's thread: they do not start the background runtime, whose three
/// threads (`relukko-bg`) would cost every fresh test process about half a
/// millisecond. (Other threads may start: the signal listener of the first
/// lease, named or not depending on the harness.)
#[cfg(target_os = "linux")]
#[test]
#[ignore = "a worker: its driver runs it"]
fn a_local_blocking_lock_starts_no_thread_worker() {
    if std::env::var_os(WORKER_VAR).is_none() {
        return;
    }
    let runtime_threads = || {
        threads()
            .into_iter()
            .filter(|name| name == "relukko-bg")
            .count()
    };
    let (locker, _dir) = local();
    assert_eq!(runtime_threads(), 0, "{:?}", threads());
    let lease = locker.lock_blocking("no-thread").unwrap();
    assert_eq!(runtime_threads(), 0, "after lock_blocking: {:?}", threads());
    lease.release_blocking().unwrap();
    assert_eq!(
        runtime_threads(),
        0,
        "after release_blocking: {:?}",
        threads()
    );
}

/// Alone in a process of its own: the threads it counts are its own.
#[cfg(target_os = "linux")]
#[test]
fn a_local_blocking_lock_starts_no_thread() {
    in_child("a_local_blocking_lock_starts_no_thread_worker", &[]);
}

/// `lock_blocking` and `release_blocking` called from inside a runtime (the
/// body of a `#[tokio::test]`) wait on the library's runtime: on a server
/// too, the caller's one thread blocks, and the lock is still taken, waited
/// for, released, and freed when a lease is dropped there.
#[test]
fn blocking_calls_inside_a_current_thread_runtime_on_a_server() {
    let server = TestServer::start();
    let locker = Locker::relukko(client(&server)).timeout(secs(10));
    rt().block_on(async {
        let lease = locker.lock_blocking("in-runtime").unwrap();
        assert_eq!(lease.state(), LeaseState::Held);
        let err = locker
            .lock_blocking(LockOptions::new("in-runtime").timeout(Duration::from_millis(300)))
            .unwrap_err();
        assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
        lease.release_blocking().unwrap();
        let again = locker.lock_blocking("in-runtime").unwrap();
        drop(again);
        let last = locker.lock_blocking("in-runtime").unwrap();
        assert_eq!(last.state(), LeaseState::Held);
        last.release_blocking().unwrap();
    });
}
