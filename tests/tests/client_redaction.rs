//! The API key (and URL userinfo) never appears in any `Debug`, `Display` or
//! log line of the client. Log lines are captured by a process-wide tracing
//! subscriber: this suite has a binary of its own for that reason.

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::Duration;

use relukko::{AcquireOptions, Client, ClientSettings, Error, RetryPolicy};
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_e2e::raw::unique;
use relukko_server::TestServer;

const KEY: &str = "sEcReT-KEY-7f3a9";
const WRONG: &str = "wr0ng-SECRET-51c2";
const PASSWORD: &str = "pAsSwOrD-userinfo";

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| Capture)
            .init();
    });
}

fn assert_clean(what: &str, text: &str) {
    for secret in [KEY, WRONG, PASSWORD] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

#[tokio::test]
async fn secrets_never_reach_debug_display_or_logs() {
    capture_logs();
    let server = TestServer::builder().api_key(KEY).start();
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    let url = format!("http://user:{PASSWORD}@{}", proxy.addr());

    let builder = Client::builder(&url)
        .api_key(KEY)
        .poll_max(Duration::from_millis(200));
    assert_clean("ClientBuilder Debug", &format!("{builder:?}"));
    let c = builder.build().unwrap();
    assert_clean("Client Debug", &format!("{c:?}"));
    assert_clean("base_url", c.base_url());
    let env = [
        ("RELUKKO_URL", url.clone()),
        ("RELUKKO_API_KEY", KEY.to_owned()),
    ];
    let settings =
        ClientSettings::from_lookup(|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
            .unwrap();
    assert_clean("ClientSettings Debug", &format!("{settings:?}"));

    // Work that logs: create, wait with the WebSocket, release.
    let x = unique("redact");
    let held = c.create(&x, None).await.unwrap().lock().unwrap();
    let cc = c.clone();
    let name = x.clone();
    let waiter = tokio::spawn(async move {
        cc.acquire(
            &name,
            AcquireOptions::new().timeout(Duration::from_secs(30)),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.delete(held.id).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    c.delete(got.id).await.unwrap();

    // Every error class, with a key on the request.
    let mut errors = Vec::new();
    let wrong = Client::builder(&url).api_key(WRONG).build().unwrap();
    errors.push(wrong.list().await.unwrap_err());
    errors.push(c.get(uuid::Uuid::new_v4()).await.unwrap_err());
    let stub = Proxy::stub(500, "{}");
    let on = |base: String| {
        Client::builder(base.replacen("http://", &format!("http://u:{PASSWORD}@"), 1))
            .api_key(KEY)
            .request_timeout(Duration::from_millis(300))
            .retry(RetryPolicy::never())
            .build()
            .unwrap()
    };
    errors.push(on(stub.base_url()).list().await.unwrap_err());
    let junk = Proxy::stub(200, "junk");
    errors.push(on(junk.base_url()).list().await.unwrap_err());
    let stall = Proxy::start(server.addr(), Mode::Stall);
    errors.push(on(stall.base_url()).list().await.unwrap_err());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    errors.push(
        on(format!("http://127.0.0.1:{port}"))
            .list()
            .await
            .unwrap_err(),
    );
    let held = c.create(&x, None).await.unwrap().lock().unwrap();
    errors.push(
        c.acquire(&x, AcquireOptions::new().timeout(Duration::ZERO))
            .await
            .unwrap_err(),
    );
    errors.push(wrong.acquire(&x, AcquireOptions::new()).await.unwrap_err());
    c.delete(held.id).await.unwrap();
    // Each push above made the error class it was meant to (a call that
    // unexpectedly succeeded, or failed otherwise, would prove less).
    let classes: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            Error::NotAuthorised { .. } => "not-authorised",
            Error::NotFound { .. } => "not-found",
            Error::Server { .. } => "server",
            Error::Decode { .. } => "decode",
            Error::Timeout { .. } => "timeout",
            Error::Transport { .. } => "transport",
            Error::WaitTimeout { .. } => "wait-timeout",
            _ => "other",
        })
        .collect();
    assert_eq!(
        classes,
        [
            "not-authorised",
            "not-found",
            "server",
            "decode",
            "timeout",
            "transport",
            "wait-timeout",
            "not-authorised"
        ],
        "{errors:?}"
    );
    for e in &errors {
        assert_clean("error Display", &e.to_string());
        assert_clean("error Debug", &format!("{e:?}"));
    }

    let log = String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned();
    assert!(
        log.contains("relukko::client"),
        "the client logged something: {log}"
    );
    assert_clean("log", &log);
}
