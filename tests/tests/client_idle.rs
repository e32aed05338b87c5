//! What an idle waiter costs the server. With its WebSocket up, a waiter asks
//! only as a slow safety net (a deletion is pushed to it); with the WebSocket
//! refused, or once its link drops, it falls back to polling about every
//! second. Requests are counted by the server itself (`/metrics`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use relukko::{AcquireOptions, Client, Lock};
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_e2e::raw::{Api, unique};
use relukko_server::TestServer;
use tokio::task::JoinHandle;

const BOUND: Duration = Duration::from_secs(30);
/// The window over which requests are counted. Polling about every second
/// (the fallback) asks about 5 to 10 times in it; the safety net (every 12
/// to 18 s) at most once.
const WINDOW: Duration = Duration::from_secs(5);

/// Requests the server answered so far, `/metrics` itself left out.
async fn requests(api: &Api) -> u64 {
    api.requests_answered(|l| !l.contains("route=\"/metrics\""))
        .await
}

/// The requests the server answers over [`WINDOW`].
async fn requests_over_window(api: &Api) -> u64 {
    let before = requests(api).await;
    tokio::time::sleep(WINDOW).await;
    requests(api).await - before
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < until, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Returns once the request count stands still: the one poll right after
/// a waiter's link came up (a push may have been missed before it) and its
/// first holder lookups are behind us.
async fn settled(api: &Api) {
    let mut last = requests(api).await;
    let until = Instant::now() + BOUND;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = requests(api).await;
        if now == last {
            return;
        }
        assert!(Instant::now() < until, "the waiter never stops asking");
        last = now;
    }
}

fn spawn_acquire(client: &Client, name: &str) -> JoinHandle<relukko::Result<Lock>> {
    let (client, name) = (client.clone(), name.to_owned());
    tokio::spawn(async move {
        client
            .acquire(&name, AcquireOptions::new().timeout(BOUND * 2))
            .await
    })
}

/// A holder (on the server directly, without a WebSocket) of a new name.
async fn held(server: &TestServer, prefix: &str) -> (Client, Lock) {
    let holder = Client::builder(server.base_url())
        .api_key(server.api_key())
        .websocket(false)
        .build()
        .unwrap();
    let lock = holder
        .create(&unique(prefix), None)
        .await
        .unwrap()
        .lock()
        .unwrap();
    (holder, lock)
}

/// Releases `lock`; the waiter then gets it.
async fn hand_over(holder: &Client, lock: &Lock, waiter: JoinHandle<relukko::Result<Lock>>) {
    holder.delete(lock.id).await.unwrap();
    let got = tokio::time::timeout(BOUND, waiter)
        .await
        .expect("the waiter gets the lock")
        .unwrap()
        .unwrap();
    assert_eq!(got.lock_name, lock.lock_name);
}

#[tokio::test]
async fn an_idle_waiter_with_its_websocket_up_asks_only_as_a_safety_net() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let (holder, lock) = held(&server, "idle-ws").await;
    let waiter = Client::builder(server.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let task = spawn_acquire(&waiter, &lock.lock_name);
    eventually("the waiter's WebSocket connects", || {
        waiter.__watch_stats().connects >= 1
    })
    .await;
    settled(&api).await;
    let asked = requests_over_window(&api).await;
    assert!(
        asked <= 1,
        "an idle waiter with its WebSocket up asked {asked} times in {WINDOW:?}; \
         its safety net asks every 12 to 18 s"
    );
    // The push still hands the lock over.
    hand_over(&holder, &lock, task).await;
}

/// Progress reports of a waiter whose WebSocket is up name the holder it
/// last looked up: with no push, the holder is the same, so the reports ask
/// nothing (asking for each report left every suite green).
#[tokio::test]
async fn progress_reports_of_a_waiter_with_its_websocket_up_ask_nothing() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let (holder, lock) = held(&server, "idle-progress").await;
    let waiter = Client::builder(server.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let reports = Arc::new(AtomicUsize::new(0));
    let named = Arc::new(AtomicUsize::new(0));
    let (r, n) = (Arc::clone(&reports), Arc::clone(&named));
    let opts = AcquireOptions::new()
        .timeout(BOUND * 2)
        .progress_after(Duration::from_millis(100))
        .progress_every(Duration::from_millis(100))
        .on_progress(move |p| {
            r.fetch_add(1, Ordering::SeqCst);
            if p.holder.is_some() {
                n.fetch_add(1, Ordering::SeqCst);
            }
        });
    let task = {
        let (waiter, name) = (waiter.clone(), lock.lock_name.clone());
        tokio::spawn(async move { waiter.acquire(&name, opts).await })
    };
    eventually("the waiter's WebSocket connects", || {
        waiter.__watch_stats().connects >= 1
    })
    .await;
    eventually("a report names the holder", || {
        named.load(Ordering::SeqCst) >= 1
    })
    .await;
    settled(&api).await;
    let before = reports.load(Ordering::SeqCst);
    let asked = requests_over_window(&api).await;
    let reported = reports.load(Ordering::SeqCst) - before;
    // One every 100 ms: about 50, never more (a report made again at once
    // would come thousands of times).
    assert!(
        (10..=100).contains(&reported),
        "{reported} reports in {WINDOW:?}, one every 100 ms"
    );
    assert!(
        asked <= 1,
        "a waiter with its WebSocket up asked {asked} times in {WINDOW:?} \
         for {reported} progress reports; the holder is known"
    );
    hand_over(&holder, &lock, task).await;
}

#[tokio::test]
async fn a_waiter_whose_websocket_is_refused_polls_about_every_second() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    proxy.block_websocket(true);
    let (holder, lock) = held(&server, "idle-refused").await;
    let waiter = Client::builder(proxy.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let task = spawn_acquire(&waiter, &lock.lock_name);
    eventually("the upgrade is refused", || proxy.replied() >= 1).await;
    let asked = requests_over_window(&api).await;
    assert!(
        asked >= 3,
        "a waiter without a WebSocket asked only {asked} times in {WINDOW:?}: \
         it must fall back to polling about every second"
    );
    assert_eq!(waiter.__watch_stats().connects, 0);
    hand_over(&holder, &lock, task).await;
}

#[tokio::test]
async fn a_waiter_whose_websocket_drops_falls_back_to_polling() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    let (holder, lock) = held(&server, "idle-dropped").await;
    let waiter = Client::builder(proxy.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let task = spawn_acquire(&waiter, &lock.lock_name);
    eventually("the waiter's WebSocket connects", || {
        waiter.__watch_stats().connects >= 1
    })
    .await;
    // From now on every upgrade is refused, and the link is cut.
    proxy.block_websocket(true);
    proxy.cut();
    eventually("a new upgrade is refused", || proxy.replied() >= 1).await;
    let asked = requests_over_window(&api).await;
    assert!(
        asked >= 3,
        "a waiter whose WebSocket dropped asked only {asked} times in {WINDOW:?}: \
         it must poll about every second until the link is back"
    );
    assert_eq!(waiter.__watch_stats().connects, 1);
    hand_over(&holder, &lock, task).await;
}
