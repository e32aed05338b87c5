//! TLS for real: a CA made in the test, a TLS-terminating proxy presenting a
//! certificate it signed; the client connects (HTTPS and WSS) with the CA given,
//! and refuses without it.

use std::collections::HashMap;
use std::time::Duration;

use relukko::{AcquireOptions, Client, ClientSettings, Error, LockOptions, Locker};
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_e2e::raw::unique;
use relukko_e2e::setup::{BOUND, bounded};
use relukko_e2e::temp::TempDir;
use relukko_e2e::tls::{TestCa, TlsProxy};
use relukko_server::TestServer;

/// A fresh folder under the system temp dir holding `ca.pem`, removed when
/// dropped.
fn ca_dir(ca: &TestCa) -> TempDir {
    let dir = TempDir::new("tls-ca");
    std::fs::write(dir.join("ca.pem"), &ca.cert_pem).unwrap();
    dir
}

#[tokio::test]
async fn https_and_wss_work_with_the_ca_given() {
    let server = TestServer::start();
    let ca = TestCa::new();
    let tls = TlsProxy::start(server.addr(), &ca);
    let plain = Client::builder(server.base_url())
        .api_key(server.api_key())
        .build()
        .unwrap();
    let c = Client::builder(tls.base_url())
        .api_key(server.api_key())
        .add_root_certificate_pem(ca.cert_pem.as_bytes())
        .poll_max(Duration::from_secs(3600))
        .build()
        .unwrap();
    bounded(c.health()).await.unwrap();
    let x = unique("tls");
    let held = bounded(plain.create(&x, None))
        .await
        .unwrap()
        .lock()
        .unwrap();
    assert_eq!(bounded(c.get(held.id)).await.unwrap(), held);

    // The waiter's watcher runs over WSS; the release must reach it as a push.
    let cc = c.clone();
    let name = x.clone();
    let task = tokio::spawn(async move {
        cc.acquire(&name, AcquireOptions::new().timeout(BOUND))
            .await
    });
    let until = std::time::Instant::now() + BOUND;
    while c.__watch_stats().connects == 0 {
        assert!(
            std::time::Instant::now() < until,
            "the WSS watcher never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bounded(plain.delete(held.id)).await.unwrap();
    let got = bounded(task).await.unwrap().unwrap();
    assert_eq!(got.lock_name, x);
    while c.__watch_stats().deletions == 0 {
        assert!(
            std::time::Instant::now() < until,
            "no deletion came over WSS"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bounded(c.delete(got.id)).await.unwrap();
}

#[tokio::test]
async fn without_the_ca_the_server_is_refused() {
    let server = TestServer::start();
    let ca = TestCa::new();
    let tls = TlsProxy::start(server.addr(), &ca);
    let c = Client::builder(tls.base_url())
        .api_key(server.api_key())
        .retry(relukko::RetryPolicy::never())
        .build()
        .unwrap();
    let e = bounded(c.list()).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(
        text.to_lowercase().contains("certificate"),
        "says why: {text}"
    );

    // Another CA does not help either.
    let other = TestCa::new();
    let c = Client::builder(tls.base_url())
        .add_root_certificate_pem(other.cert_pem.as_bytes())
        .retry(relukko::RetryPolicy::never())
        .build()
        .unwrap();
    assert!(matches!(
        bounded(c.list()).await,
        Err(Error::Transport { .. })
    ));
}

#[tokio::test]
async fn ca_bundles_from_a_file_a_folder_and_the_environment() {
    let server = TestServer::start();
    let ca = TestCa::new();
    let tls = TlsProxy::start(server.addr(), &ca);
    let dir = ca_dir(&ca);
    for bundle in [dir.join("ca.pem"), dir.to_path_buf()] {
        let c = Client::builder(tls.localhost_url())
            .api_key(server.api_key())
            .ca_bundle(&bundle)
            .build()
            .unwrap();
        bounded(c.list())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", bundle.display()));
    }
    for var in ["RELUKKO_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
        let env = HashMap::from([
            ("RELUKKO_URL", tls.base_url()),
            ("RELUKKO_API_KEY", server.api_key().to_owned()),
            (var, dir.display().to_string()),
        ]);
        let settings = ClientSettings::from_lookup(|n| env.get(n).cloned()).unwrap();
        let c = settings.into_builder().build().unwrap();
        bounded(c.list())
            .await
            .unwrap_or_else(|e| panic!("{var}: {e}"));
    }
    std::fs::write(dir.join("junk.crt"), "not a certificate").unwrap();
    let env = HashMap::from([
        ("RELUKKO_URL", tls.base_url()),
        ("CURL_CA_BUNDLE", dir.display().to_string()),
    ]);
    let settings = ClientSettings::from_lookup(|n| env.get(n).cloned()).unwrap();
    match settings.into_builder().build() {
        Err(Error::Config { name, reason }) => {
            assert_eq!(name, "CURL_CA_BUNDLE");
            assert!(reason.contains("junk.crt"), "{reason}");
        }
        other => panic!("expected a Config error naming CURL_CA_BUNDLE, got {other:?}"),
    }
}

/// `https://` to a server speaking plain HTTP: one attempt (no retries),
/// and the error says to use `http://`.
#[tokio::test]
async fn https_to_a_plain_http_server_says_to_use_http() {
    let server = TestServer::start();
    let url = server.base_url().replacen("http://", "https://", 1);
    let c = Client::builder(&url)
        .retry(relukko::RetryPolicy::never())
        .build()
        .unwrap();
    let e = bounded(c.list()).await.unwrap_err();
    assert!(matches!(e, Error::NotTls { .. }), "{e}");
    assert!(
        e.to_string().contains(
            "does not speak TLS (it answered in plain HTTP): use http:// instead of https://"
        ),
        "{e}"
    );
}

/// The same through the whole locking path, as a user meets it: settings
/// from the environment (`RELUKKO_URL=https://...`, the default retry
/// policy), a blocking lock with a long timeout. It fails on the first
/// connection, long before the retry budget (about 11 s) or the wait's
/// timeout, and says to use `http://`.
#[test]
fn https_to_a_plain_http_server_fails_at_once_when_locking() {
    let server = TestServer::start();
    // Counts the connections: a retry would be a second one.
    let proxy = Proxy::start(server.addr(), Mode::Raw);
    let env = HashMap::from([
        (
            "RELUKKO_URL",
            proxy.base_url().replacen("http://", "https://", 1),
        ),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
        // The watcher would connect on its own: only the lock's calls count.
        ("RELUKKO_WEBSOCKET", "off".to_owned()),
    ]);
    let settings = ClientSettings::from_lookup(|n| env.get(n).cloned()).unwrap();
    let locker = Locker::relukko(settings.into_builder().build().unwrap());
    let started = std::time::Instant::now();
    let e = locker
        .lock_blocking(LockOptions::new(unique("plain")).timeout(Duration::from_secs(60)))
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, Error::NotTls { .. }), "{e}");
    assert!(
        e.to_string().contains("use http:// instead of https://"),
        "{e}"
    );
    assert_eq!(proxy.accepted(), 1, "not retried: {e}");
    // The retries alone would take about 11 s; generous for a loaded machine.
    assert!(took < Duration::from_secs(6), "failed fast: {took:?}");
}
