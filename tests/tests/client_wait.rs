//! Waiting for a lock: woken by the WebSocket, by polling alone, progress and
//! timeouts, and cancel safety (dropped futures and lost answers leave no lock).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relukko::{AcquireOptions, Client, Create, Error, Lock, WaitProgress};
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_e2e::raw::{self, unique};
use relukko_e2e::setup::{BOUND, bounded, builder, eventually};
use relukko_server::TestServer;
use tokio::task::JoinHandle;

/// How often `eventually` looks again.
const POLL: Duration = Duration::from_millis(50);

/// `client` waits for `name` (at most `BOUND`) in a task of its own.
fn spawn_acquire(client: &Client, name: &str) -> JoinHandle<relukko::Result<Lock>> {
    let (client, name) = (client.clone(), name.to_owned());
    tokio::spawn(async move {
        client
            .acquire(&name, AcquireOptions::new().timeout(BOUND))
            .await
    })
}

/// Like [`spawn_acquire`], and returns only once the waiter has found `name`
/// taken and is waiting for it (its first progress report), so that what
/// happens next happens to a waiting caller.
async fn spawn_waiting(client: &Client, name: &str) -> JoinHandle<relukko::Result<Lock>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = AcquireOptions::new()
        .timeout(BOUND)
        .progress_after(Duration::from_millis(100))
        .on_progress(move |p: &WaitProgress| {
            let _ = tx.send(p.holder.is_some());
        });
    let (client, name) = (client.clone(), name.to_owned());
    let task = tokio::spawn(async move { client.acquire(&name, opts).await });
    let held_by_someone = bounded(rx.recv())
        .await
        .expect("the waiter reports that it waits");
    assert!(held_by_someone, "the report names the holder");
    assert!(!task.is_finished(), "still waiting");
    task
}

#[tokio::test]
async fn websocket_wakes_only_waiters_of_the_deleted_name() {
    let server = TestServer::start();
    let holder = builder(server.base_url(), &server).build().unwrap();
    // A poll cap of an hour (naps of 9 s and more): a prompt wake-up has to come from the push.
    let waiter = builder(server.base_url(), &server)
        .poll_max(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (x, y) = (unique("wait-ws-x"), unique("wait-ws-y"));
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();

    let task = spawn_acquire(&waiter, &x);
    eventually("the watcher connects", POLL, async || {
        waiter.__watch_stats().connects >= 1
    })
    .await;

    // A deletion of another name wakes nobody.
    let other = holder.create(&y, None).await.unwrap().lock().unwrap();
    holder.delete(other.id).await.unwrap();
    // Long enough for the re-poll that follows the connect to pass, even on
    // a loaded machine; the next nap is 9 s or more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        waiter.__watch_stats().deletions >= 1,
        "the deletion of y was pushed"
    );
    assert_eq!(waiter.__watch_stats().push_wakeups, 0);
    assert!(!task.is_finished());

    holder.delete(held.id).await.unwrap();
    let got = bounded(task).await.unwrap().unwrap();
    assert_eq!(got.lock_name, x);
    assert_eq!(waiter.__watch_stats().push_wakeups, 1, "woken by the push");
    waiter.delete(got.id).await.unwrap();
}

#[tokio::test]
async fn polling_alone_acquires_with_websocket_off() {
    let server = TestServer::start();
    let holder = builder(server.base_url(), &server).build().unwrap();
    let waiter = builder(server.base_url(), &server)
        .websocket(false)
        .poll_max(Duration::from_millis(300))
        .build()
        .unwrap();
    let x = unique("wait-poll");
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();
    let task = spawn_waiting(&waiter, &x).await;
    holder.delete(held.id).await.unwrap();
    let got = bounded(task).await.unwrap().unwrap();
    assert_eq!(got.lock_name, x);
    assert_eq!(waiter.__watch_stats().connects, 0, "no WebSocket at all");
}

#[tokio::test]
async fn polling_takes_over_when_the_server_has_no_room_for_another_websocket() {
    let server = TestServer::builder().max_websockets(0).start();
    let holder = builder(server.base_url(), &server).build().unwrap();
    let waiter = builder(server.base_url(), &server)
        .poll_max(Duration::from_millis(300))
        .build()
        .unwrap();
    let x = unique("wait-ws-full");
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();
    let task = spawn_waiting(&waiter, &x).await;
    holder.delete(held.id).await.unwrap();
    let got = bounded(task).await.unwrap().unwrap();
    assert_eq!(got.lock_name, x);
    assert_eq!(
        waiter.__watch_stats().connects,
        0,
        "every upgrade was refused"
    );
    waiter.delete(got.id).await.unwrap();
}

#[tokio::test]
async fn polling_takes_over_when_a_proxy_blocks_the_websocket() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    proxy.block_websocket(true);
    let holder = builder(server.base_url(), &server).build().unwrap();
    let waiter = builder(proxy.base_url(), &server)
        .poll_max(Duration::from_millis(500))
        .build()
        .unwrap();
    let x = unique("wait-blocked");
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();
    let task = spawn_waiting(&waiter, &x).await;
    eventually("the upgrade is refused", POLL, async || {
        proxy.replied() >= 1
    })
    .await;
    holder.delete(held.id).await.unwrap();
    let got = bounded(task).await.unwrap().unwrap();
    assert_eq!(got.lock_name, x);
    assert_eq!(waiter.__watch_stats().connects, 0);
}

#[tokio::test]
async fn the_watcher_reconnects_and_still_wakes() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    let holder = builder(server.base_url(), &server).build().unwrap();
    let waiter = builder(proxy.base_url(), &server)
        .poll_max(Duration::from_secs(3600))
        .build()
        .unwrap();
    let x = unique("wait-reconnect");
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();
    let task = spawn_acquire(&waiter, &x);
    eventually("the watcher connects", POLL, async || {
        waiter.__watch_stats().connects >= 1
    })
    .await;
    proxy.cut();
    eventually("the watcher reconnects", POLL, async || {
        waiter.__watch_stats().connects >= 2
    })
    .await;
    assert!(!task.is_finished(), "still waiting before the delete");
    holder.delete(held.id).await.unwrap();
    let got = bounded(task).await.unwrap().unwrap();
    assert_eq!(got.lock_name, x);
}

#[tokio::test]
async fn a_crowd_of_waiters_takes_turns() {
    let server = TestServer::start();
    let c = builder(server.base_url(), &server).build().unwrap();
    let x = unique("wait-crowd");
    let inside = Arc::new(Mutex::new(0u32));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (c, x, inside) = (c.clone(), x.clone(), Arc::clone(&inside));
        tasks.push(tokio::spawn(async move {
            let lock = c
                .acquire(&x, AcquireOptions::new().timeout(BOUND))
                .await
                .unwrap();
            {
                let mut n = inside.lock().unwrap();
                *n += 1;
                assert_eq!(*n, 1, "two holders at once");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            *inside.lock().unwrap() -= 1;
            c.delete(lock.id).await.unwrap();
        }));
    }
    for t in tasks {
        bounded(t).await.unwrap();
    }
}

#[tokio::test]
async fn timeout_names_the_holder_and_progress_is_reported() {
    let server = TestServer::start();
    let holder = builder(server.base_url(), &server)
        .creator("alice@rig")
        .build()
        .unwrap();
    let waiter = builder(server.base_url(), &server).build().unwrap();
    let x = unique("wait-timeout");
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();
    let reports: Arc<Mutex<Vec<WaitProgress>>> = Arc::default();
    let sink = Arc::clone(&reports);
    let opts = AcquireOptions::new()
        .timeout(Duration::from_millis(1500))
        .progress_after(Duration::from_millis(200))
        .progress_every(Duration::from_millis(300))
        .on_progress(move |p| sink.lock().unwrap().push(p.clone()));
    let started = Instant::now();
    let e = bounded(waiter.acquire(&x, opts)).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(1400));
    match &e {
        Error::WaitTimeout {
            resource,
            waited,
            holder: Some(h),
        } => {
            assert_eq!(resource, &x);
            assert!(*waited >= Duration::from_millis(1400));
            assert!(
                h.starts_with("alice@rig since ") && h.contains(" until "),
                "{h}"
            );
        }
        other => panic!("expected WaitTimeout with a holder, got {other:?}"),
    }
    let first = reports
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("at least one progress report");
    assert_eq!(first.resource, x);
    assert_eq!(first.holder.as_ref().map(|l| l.id), Some(held.id));
    // A zero timeout tries once.
    let e = bounded(waiter.acquire(&x, AcquireOptions::new().timeout(Duration::ZERO)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::WaitTimeout { .. }), "{e:?}");
}

/// No progress report before `progress_after` (a first report due at once
/// left every suite green).
#[tokio::test]
async fn no_progress_report_before_progress_after() {
    let server = TestServer::start();
    let holder = builder(server.base_url(), &server).build().unwrap();
    let waiter = builder(server.base_url(), &server).build().unwrap();
    let x = unique("wait-no-early-report");
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();
    let reports: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let sink = Arc::clone(&reports);
    let opts = AcquireOptions::new()
        .timeout(Duration::from_millis(1500))
        .progress_after(Duration::from_secs(3600))
        .on_progress(move |p: &WaitProgress| sink.lock().unwrap().push(p.waited));
    let e = bounded(waiter.acquire(&x, opts)).await.unwrap_err();
    assert!(matches!(e, Error::WaitTimeout { .. }), "{e:?}");
    let seen = reports.lock().unwrap().clone();
    assert!(seen.is_empty(), "reports before progress_after: {seen:?}");
    bounded(holder.delete(held.id)).await.unwrap();
}

/// Without a healthy WebSocket nothing tells a waiter that its lock changed
/// hands: each progress report asks who holds it (a report that kept naming
/// the first holder left every suite green).
#[tokio::test]
async fn progress_without_a_websocket_asks_who_holds_each_time() {
    let server = TestServer::start();
    let holder = builder(server.base_url(), &server)
        .creator("alice@rig")
        .build()
        .unwrap();
    let waiter = builder(server.base_url(), &server)
        .websocket(false)
        .build()
        .unwrap();
    let x = unique("wait-holder-changes");
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = AcquireOptions::new()
        .timeout(BOUND)
        .progress_after(Duration::from_millis(100))
        .progress_every(Duration::from_millis(100))
        .on_progress(move |p: &WaitProgress| {
            let creator = p.holder.as_ref().and_then(|l| l.creator.clone());
            let _ = tx.send(creator.map(|c| relukko::creator_without_token(&c).to_owned()));
        });
    let task = {
        let (waiter, x) = (waiter.clone(), x.clone());
        tokio::spawn(async move { waiter.acquire(&x, opts).await })
    };
    let mut named = async |who: &str| {
        while let Some(named) = bounded(rx.recv()).await {
            if named.as_deref() == Some(who) {
                return;
            }
        }
        panic!("the wait ended before a report named {who}");
    };
    named("alice@rig").await;
    // The same lock, now someone else's (a handover by hand, say).
    bounded(holder.update(held.id, Some("bob@rig"), None))
        .await
        .unwrap();
    named("bob@rig").await;
    bounded(holder.delete(held.id)).await.unwrap();
    let got = bounded(task).await.unwrap().unwrap();
    bounded(waiter.delete(got.id)).await.unwrap();
}

#[tokio::test]
async fn an_acquire_dropped_mid_wait_leaves_no_lock() {
    let server = TestServer::start();
    let holder = builder(server.base_url(), &server).build().unwrap();
    let waiter = builder(server.base_url(), &server)
        .poll_max(Duration::from_millis(200))
        .build()
        .unwrap();
    let x = unique("wait-dropped");
    let held = holder.create(&x, None).await.unwrap().lock().unwrap();
    let waited = tokio::time::timeout(
        Duration::from_millis(700),
        waiter.acquire(&x, AcquireOptions::new().timeout(BOUND)),
    )
    .await;
    assert!(waited.is_err(), "still waiting when dropped");
    holder.delete(held.id).await.unwrap();
    // The dropped waiter must not grab it: it stays free for a while.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(holder.holder(&x).await.unwrap(), None);
    }
}

#[tokio::test]
async fn an_acquire_or_create_dropped_mid_request_leaves_no_lock() {
    let server = TestServer::start();
    let observer = builder(server.base_url(), &server).build().unwrap();
    let proxy = Proxy::start(server.addr(), Mode::Delay(Duration::from_millis(600)));
    let slow = builder(proxy.base_url(), &server)
        .websocket(false)
        .build()
        .unwrap();
    let mut ws = raw::ws_connect(server.base_url(), Some(server.api_key()))
        .await
        .unwrap();

    let x = unique("wait-midreq");
    let dropped = tokio::time::timeout(
        Duration::from_millis(200),
        slow.acquire(&x, AcquireOptions::new().timeout(BOUND)),
    )
    .await;
    assert!(
        dropped.is_err(),
        "dropped while the request was held by the proxy"
    );
    let (kind, _) = bounded(raw::next_event_for(&mut ws, &x)).await;
    assert_eq!(kind, "created", "the request reached the server");
    let (kind, _) = bounded(raw::next_event_for(&mut ws, &x)).await;
    assert_eq!(kind, "deleted", "and its lock was released");
    assert_eq!(observer.holder(&x).await.unwrap(), None);

    // A fresh client: the proxy delays only the first request of a connection.
    let slow = builder(proxy.base_url(), &server).build().unwrap();
    let y = unique("create-midreq");
    let dropped = tokio::time::timeout(Duration::from_millis(200), slow.create(&y, None)).await;
    assert!(dropped.is_err());
    let (kind, _) = bounded(raw::next_event_for(&mut ws, &y)).await;
    assert_eq!(kind, "created");
    let (kind, _) = bounded(raw::next_event_for(&mut ws, &y)).await;
    assert_eq!(kind, "deleted");
}

#[tokio::test]
async fn a_lost_answer_is_adopted_by_its_token() {
    let server = TestServer::start();
    let observer = builder(server.base_url(), &server).build().unwrap();
    let proxy = Proxy::start(server.addr(), Mode::LoseAnswers);
    let c = builder(proxy.base_url(), &server)
        .request_timeout(Duration::from_millis(700))
        .retry(relukko::RetryPolicy::default().first_delay(Duration::from_millis(300)))
        .build()
        .unwrap();
    let x = unique("lost-adopt");
    let cc = c.clone();
    let name = x.clone();
    let task = tokio::spawn(async move { cc.create(&name, Some("adopter")).await });
    eventually("the lost create reached the server", POLL, async || {
        observer.holder(&x).await.unwrap().is_some()
    })
    .await;
    eventually("the answer to the create was lost", POLL, async || {
        proxy.lost() >= 1
    })
    .await;
    proxy.set_mode(Mode::Forward);
    let Create::Acquired(lock) = bounded(task).await.unwrap().unwrap() else {
        panic!("our own lock must be adopted, not reported as taken")
    };
    assert_eq!(
        observer.holder(&x).await.unwrap().map(|l| l.id),
        Some(lock.id)
    );
    assert!(lock.creator.as_deref().unwrap().starts_with("adopter [rl:"));
    c.delete(lock.id).await.unwrap();
}

#[tokio::test]
async fn a_create_that_gives_up_after_a_lost_answer_cleans_up() {
    let server = TestServer::start();
    let observer = builder(server.base_url(), &server).build().unwrap();
    let proxy = Proxy::start(server.addr(), Mode::LoseAnswers);
    let c = builder(proxy.base_url(), &server)
        .request_timeout(Duration::from_millis(500))
        .retry(relukko::RetryPolicy::never())
        .build()
        .unwrap();
    let x = unique("lost-cleanup");
    let e = bounded(c.create(&x, None)).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        observer.holder(&x).await.unwrap().is_some(),
        "the lock was made, its answer lost"
    );
    assert!(proxy.lost() >= 1, "the answer was thrown away");
    proxy.set_mode(Mode::Forward);
    eventually(
        "the orphan is deleted in the background",
        POLL,
        async || observer.holder(&x).await.unwrap().is_none(),
    )
    .await;
}
