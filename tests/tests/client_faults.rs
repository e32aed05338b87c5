//! The client when things go wrong: a server down at the start, down for a
//! while, answering 500 for a while, or accepting and never answering.

use std::time::{Duration, Instant};

use relukko::{AcquireOptions, Client, Error, RetryPolicy};
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_e2e::raw::unique;
use relukko_e2e::setup::{BOUND, bounded};
use relukko_server::TestServer;

/// What a deadline may be overrun by: one request (the attempt under way
/// when it passes) plus slack for a loaded machine.
const SLACK: Duration = Duration::from_secs(2);

/// Retries that would run far past a 2 s deadline if they ignored it: up to
/// 60 tries, each after up to half a second (about 15 s on average).
fn many_retries() -> RetryPolicy {
    RetryPolicy::default()
        .first_delay(Duration::from_millis(500))
        .max_delay(Duration::from_millis(500))
        .max_tries(60)
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_server_down_at_the_start_fails_by_the_deadline_naming_url_and_cause() {
    let port = closed_port();
    let request_timeout = Duration::from_secs(1);
    let c = Client::builder(format!("http://127.0.0.1:{port}"))
        .api_key("k")
        .request_timeout(request_timeout)
        .retry(many_retries())
        .build()
        .unwrap();
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let e = bounded(c.acquire(&unique("down"), AcquireOptions::new().timeout(timeout)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took < timeout + request_timeout + SLACK,
        "retries must stop at the deadline: took {took:?}"
    );
    let text = e.to_string();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}/v1/locks/")),
        "names the URL: {text}"
    );
    assert!(
        text.to_lowercase().contains("refused"),
        "names the cause: {text}"
    );
    assert!(!text.contains("\"k\""));
}

/// A client of a server that refuses every connection, retrying by `retry`.
fn refused_with(retry: RetryPolicy) -> Client {
    Client::builder(format!("http://127.0.0.1:{}", closed_port()))
        .api_key("k")
        .retry(retry)
        .build()
        .unwrap()
}

/// Ten hours: a pause that, if waited, outlives any bound of these tests.
const HOURS: Duration = Duration::from_secs(36_000);

/// A pause before the next try that would end past the caller's deadline
/// is not waited: the wait fails with the last error at once. (With pauses
/// of up to half a second the deadline test above could not tell.)
#[tokio::test]
async fn a_retry_pause_ending_past_the_deadline_is_not_waited() {
    let c = refused_with(
        RetryPolicy::default()
            .first_delay(HOURS)
            .max_delay(HOURS)
            .max_tries(10),
    );
    let options = AcquireOptions::new().timeout(Duration::from_secs(1));
    let e = bounded(c.acquire(&unique("long-pause"), options))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
}

/// The first retry waits at most the policy's first delay (here 1 ms); the
/// pauses grow from there. Counted one step ahead, the first pause could
/// be hours long.
#[tokio::test]
async fn the_first_retry_waits_at_most_the_first_delay() {
    let c = refused_with(
        RetryPolicy::default()
            .first_delay(Duration::from_millis(1))
            .factor(1e7)
            .max_delay(HOURS)
            .max_tries(2),
    );
    let e = bounded(c.list()).await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
}

#[tokio::test]
async fn a_server_down_for_a_moment_is_waited_out() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Drop);
    let c = Client::builder(proxy.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let x = unique("blip");
    let cc = c.clone();
    let name = x.clone();
    let task = tokio::spawn(async move {
        cc.acquire(&name, AcquireOptions::new().timeout(BOUND))
            .await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(proxy.accepted() >= 1, "the client kept trying");
    proxy.set_mode(Mode::Forward);
    let lock = bounded(task).await.unwrap().unwrap();
    assert_eq!(lock.lock_name, x);
}

#[tokio::test]
async fn answers_of_500_for_a_while_then_recovery() {
    let server = TestServer::start();
    let proxy = Proxy::start(
        server.addr(),
        Mode::Reply(500, r#"{"status":500,"message":"busy"}"#.into()),
    );
    let c = Client::builder(proxy.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let x = unique("recover");
    let cc = c.clone();
    let name = x.clone();
    let task = tokio::spawn(async move {
        cc.acquire(&name, AcquireOptions::new().timeout(BOUND))
            .await
    });
    let until = Instant::now() + BOUND;
    while proxy.replied() < 2 {
        assert!(Instant::now() < until, "the client never retried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.set_mode(Mode::Forward);
    let lock = bounded(task).await.unwrap().unwrap();
    assert_eq!(lock.lock_name, x);
    c.delete(lock.id).await.unwrap();
}

#[tokio::test]
async fn a_stalling_proxy_cannot_hang_a_caller_past_its_deadline() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Stall);
    let c = Client::builder(proxy.base_url())
        .api_key(server.api_key())
        .request_timeout(Duration::from_secs(60))
        .retry(many_retries())
        .build()
        .unwrap();
    let started = Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(20),
        c.acquire(
            &unique("stall"),
            AcquireOptions::new().timeout(Duration::from_secs(2)),
        ),
    )
    .await
    .expect("no hang past the deadline")
    .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    // The attempt under way at the deadline is cut to the time left (at
    // least a quarter second), not given its 60 s request timeout.
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2) + SLACK,
        "the stalled attempt must end at the deadline: took {took:?}"
    );
}

#[tokio::test]
async fn the_watcher_stops_with_the_last_clone() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    let c = Client::builder(proxy.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let clone = c.clone();
    let lock = bounded(c.acquire(&unique("stop"), AcquireOptions::new()))
        .await
        .unwrap();
    let until = Instant::now() + BOUND;
    while c.__watch_stats().connects == 0 {
        assert!(Instant::now() < until, "the watcher never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.delete(lock.id).await.unwrap();
    // The server's push of that deletion reaches the watcher.
    while clone.__watch_stats().deletions < 1 {
        assert!(Instant::now() < until, "the deletion was never pushed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open_before = proxy.open();
    drop(c);
    // A clone keeps it running: a deletion made after the drop still
    // arrives, on the same connection, which stays open.
    let again = bounded(clone.acquire(&unique("stop-again"), AcquireOptions::new()))
        .await
        .unwrap();
    clone.delete(again.id).await.unwrap();
    while clone.__watch_stats().deletions < 2 {
        assert!(
            Instant::now() < until,
            "a clone keeps the watcher running, but it missed a deletion: {:?}",
            clone.__watch_stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(clone.__watch_stats().connects, 1, "no reconnect was needed");
    assert!(
        proxy.open() >= open_before,
        "a connection closed when one of two clones was dropped: {} < {open_before}",
        proxy.open()
    );
    drop(clone);
    while proxy.open() > 0 {
        assert!(
            Instant::now() < until,
            "{} connections still open",
            proxy.open()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Refused on a loopback address cannot change with a retry (nothing
/// listens on that port of this machine): the call fails at once, with the
/// default retries, and says what to check. It once spent 6 s retrying.
#[tokio::test]
async fn a_closed_loopback_port_fails_at_once_saying_what_to_check() {
    let port = closed_port();
    let c = Client::builder(format!("http://127.0.0.1:{port}"))
        .api_key("k")
        .build()
        .unwrap();
    let started = Instant::now();
    let e = bounded(c.acquire(&unique("closed"), AcquireOptions::new().timeout(BOUND)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    let text = e.to_string();
    assert!(took < Duration::from_secs(3), "took {took:?}: {text}");
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    for advice in [
        &format!("http://127.0.0.1:{port}/v1/locks/"),
        "not retried: nothing listens on that port of this machine",
        "relukko health",
        "RELUKKO_URL",
        "HTTPS_PROXY",
        "NO_PROXY",
    ] {
        assert!(text.contains(advice), "{advice:?} missing: {text}");
    }
}

/// A 503 can change: it is still retried (up to the policy's tries).
#[tokio::test]
async fn a_503_is_still_retried() {
    let stub = Proxy::stub(503, r#"{"status":503,"message":"starting"}"#);
    let c = Client::builder(stub.base_url())
        .api_key("k")
        .retry(
            RetryPolicy::default()
                .first_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(10))
                .max_tries(3),
        )
        .build()
        .unwrap();
    let e = bounded(c.list()).await.unwrap_err();
    assert!(matches!(e, Error::Server { status: 503, .. }), "{e:?}");
    assert_eq!(stub.replied(), 3, "every try was made: {e}");
}
