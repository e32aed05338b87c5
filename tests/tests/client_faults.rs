//! The client when things go wrong: a server down at the start, down for a
//! while, answering 500 for a while, or accepting and never answering.

use std::time::{Duration, Instant};

use relukko::server::TestServer;
use relukko::{AcquireOptions, Client, Error};
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_e2e::raw::unique;

const BOUND: Duration = Duration::from_secs(30);

async fn bounded<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, fut)
        .await
        .expect("bounded step took too long")
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
    let c = Client::builder(format!("http://127.0.0.1:{port}"))
        .api_key("k")
        .build()
        .unwrap();
    let started = Instant::now();
    let e = bounded(c.acquire(
        &unique("down"),
        AcquireOptions::new().timeout(Duration::from_secs(2)),
    ))
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
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
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
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
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        clone.__watch_stats().connects,
        1,
        "a clone keeps it running"
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
