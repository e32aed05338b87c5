//! The client against the real server: every call of the protocol, and every
//! error class.

use std::time::Duration;

use relukko::{AcquireOptions, Client, Create, Error};
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_e2e::raw::unique;
use relukko_e2e::setup::{BOUND, bounded};
use relukko_server::TestServer;
use time::OffsetDateTime;

fn client(server: &TestServer) -> Client {
    Client::builder(server.base_url())
        .api_key(server.api_key())
        .creator("client_api")
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_call_round_trips() {
    let server = TestServer::start();
    let c = client(&server);
    bounded(c.health()).await.unwrap();
    let name = unique("api-every");

    let Create::Acquired(lock) = bounded(c.create(&name, None)).await.unwrap() else {
        panic!("a fresh name is free")
    };
    assert_eq!(lock.lock_name, name);
    assert_eq!(
        relukko::creator_without_token(lock.creator.as_deref().unwrap()),
        "client_api"
    );
    assert_eq!(
        lock.expires_at - lock.created_at,
        time::Duration::minutes(10)
    );

    assert_eq!(
        bounded(c.create(&name, Some("other"))).await.unwrap(),
        Create::Taken
    );
    assert_eq!(
        bounded(c.get(lock.id)).await.unwrap(),
        lock,
        "GET answers the stored lock"
    );
    assert!(bounded(c.list()).await.unwrap().contains(&lock));
    assert_eq!(bounded(c.holder(&name)).await.unwrap(), Some(lock.clone()));
    assert_eq!(
        bounded(c.holder(&name.to_uppercase())).await.unwrap(),
        None,
        "names are exact"
    );

    let past = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let updated = bounded(c.update(lock.id, Some("renamed"), Some(past)))
        .await
        .unwrap();
    assert_eq!(updated.creator.as_deref(), Some("renamed"));
    assert_eq!(
        relukko::format_timestamp(updated.expires_at),
        relukko::format_timestamp(past)
    );
    let kept = bounded(c.update(lock.id, None, None)).await.unwrap();
    assert_eq!(
        kept.creator.as_deref(),
        Some("renamed"),
        "null leaves a field alone"
    );

    let now = OffsetDateTime::now_utc();
    let alive = bounded(c.keep_alive(lock.id)).await.unwrap();
    assert!(
        (alive.expires_at - now - time::Duration::minutes(5)).abs() < time::Duration::seconds(30)
    );
    let alive = bounded(c.keep_alive_for(lock.id, Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        (alive.expires_at - now - time::Duration::minutes(1)).abs() < time::Duration::seconds(30)
    );
    let later = bounded(c.add_to_expire_at(lock.id)).await.unwrap();
    assert_eq!(
        later.expires_at - alive.expires_at,
        time::Duration::minutes(5)
    );
    let later2 = bounded(c.add_to_expire_at_by(lock.id, Duration::from_millis(1500)))
        .await
        .unwrap();
    assert_eq!(
        later2.expires_at - later.expires_at,
        time::Duration::seconds(2),
        "rounded up"
    );

    let deleted = bounded(c.delete(lock.id)).await.unwrap();
    assert_eq!(deleted, later2, "DELETE answers the lock as stored");
    assert_eq!(bounded(c.holder(&name)).await.unwrap(), None);

    let again = bounded(c.acquire(&name, AcquireOptions::new().timeout(Duration::from_secs(5))))
        .await
        .unwrap();
    assert_eq!(again.lock_name, name);
    bounded(c.delete(again.id)).await.unwrap();
}

/// The creator given to one acquire is recorded instead of the client's
/// (dropping it, and the options with it, left every suite green).
#[tokio::test]
async fn acquire_records_its_own_creator() {
    let server = TestServer::start();
    let c = client(&server);
    let name = unique("api-acquire-creator");
    let opts = AcquireOptions::new()
        .timeout(Duration::from_secs(5))
        .creator("nightly fixture");
    let lock = bounded(c.acquire(&name, opts)).await.unwrap();
    assert_eq!(
        relukko::creator_without_token(lock.creator.as_deref().unwrap()),
        "nightly fixture"
    );
    bounded(c.delete(lock.id)).await.unwrap();
}

#[test]
fn works_from_many_runtimes_and_sync_code() {
    let server = TestServer::start();
    let c = client(&server);
    let name = unique("api-runtimes");
    // Each short-lived runtime uses the same client: its pooled connections
    // live on the library's runtime, not on these.
    for _ in 0..3 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let lock = c
                .acquire(&name, AcquireOptions::new().timeout(BOUND))
                .await
                .unwrap();
            c.delete(lock.id).await.unwrap();
        });
    }
}

#[tokio::test]
async fn wrong_key_is_not_authorised_and_not_retried() {
    let server = TestServer::start();
    let c = Client::builder(server.base_url())
        .api_key("wrong-key")
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let e = bounded(c.list()).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotAuthorised {
                status: 401 | 403,
                ..
            }
        ),
        "{e:?}"
    );
    let e = bounded(c.acquire("x", AcquireOptions::new().timeout(BOUND)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotAuthorised { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a 401 is final"
    );
    assert!(!format!("{e} {e:?}").contains("wrong-key"));
    // Health needs no key.
    bounded(c.health()).await.unwrap();
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let server = TestServer::start();
    let c = client(&server);
    let id = uuid::Uuid::new_v4();
    for e in [
        bounded(c.get(id)).await.unwrap_err(),
        bounded(c.delete(id)).await.unwrap_err(),
        bounded(c.update(id, Some("x"), None)).await.unwrap_err(),
        bounded(c.keep_alive(id)).await.unwrap_err(),
        bounded(c.add_to_expire_at_by(id, Duration::from_secs(1)))
            .await
            .unwrap_err(),
    ] {
        match &e {
            Error::NotFound { url, .. } => assert!(url.contains(&id.to_string()), "{e}"),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn out_of_range_values_are_rejected_with_the_servers_message() {
    let server = TestServer::start();
    let c = client(&server);
    let lock = bounded(c.create(&unique("api-reject"), None))
        .await
        .unwrap()
        .lock()
        .unwrap();
    let e = bounded(c.add_to_expire_at_by(lock.id, Duration::from_secs(i64::MAX as u64)))
        .await
        .unwrap_err();
    match &e {
        Error::Rejected {
            status, message, ..
        } => {
            assert!(matches!(status, 400 | 422), "{e}");
            assert!(
                !message.is_empty() && !message.starts_with('{'),
                "the server's message: {message}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    bounded(c.delete(lock.id)).await.unwrap();
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let stub = Proxy::stub(500, r#"{"status":500,"message":"database on fire"}"#);
    let c = Client::builder(stub.base_url())
        .retry(
            relukko::RetryPolicy::default()
                .first_delay(Duration::from_millis(10))
                .max_tries(3),
        )
        .build()
        .unwrap();
    let e = bounded(c.list()).await.unwrap_err();
    match &e {
        Error::Server {
            status: 500,
            body,
            url,
        } => {
            assert!(
                body.contains("database on fire") && url.ends_with("/v1/locks/"),
                "{e}"
            );
        }
        other => panic!("expected Server, got {other:?}"),
    }
    assert_eq!(stub.replied(), 3, "three tries in all");
}

#[tokio::test]
async fn junk_answers_are_decode_errors() {
    let stub = Proxy::stub(200, "<html>surprise</html>");
    let c = Client::builder(stub.base_url()).build().unwrap();
    let e = bounded(c.get(uuid::Uuid::new_v4())).await.unwrap_err();
    match &e {
        Error::Decode {
            status: 200, body, ..
        } => assert!(body.contains("surprise"), "{e}"),
        other => panic!("expected Decode, got {other:?}"),
    }
    assert_eq!(stub.replied(), 1, "decode errors are not retried");
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error_naming_url_and_cause() {
    // Bind then drop: a port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Client::builder(format!("http://127.0.0.1:{port}"))
        .retry(relukko::RetryPolicy::default().max_tries(2))
        .build()
        .unwrap();
    let e = bounded(c.list()).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}/v1/locks/")),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains("refused"),
        "names the cause: {text}"
    );
}

#[tokio::test]
async fn a_stalling_server_times_out() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Stall);
    let c = Client::builder(proxy.base_url())
        .api_key(server.api_key())
        .request_timeout(Duration::from_millis(500))
        .retry(relukko::RetryPolicy::never())
        .build()
        .unwrap();
    let e = bounded(c.list()).await.unwrap_err();
    match &e {
        Error::Timeout { what, after, .. } => {
            assert_eq!(what, "GET /v1/locks/");
            assert!(*after >= Duration::from_millis(400), "{after:?}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn skip_switch_asks_nothing() {
    let c = Client::builder("http://127.0.0.1:9")
        .trust_me_it_is_locked(true)
        .build()
        .unwrap();
    assert!(c.is_skip());
    let lock = bounded(c.acquire("anything", AcquireOptions::new()))
        .await
        .unwrap();
    assert_eq!(lock, relukko::Lock::dummy());
    assert_eq!(
        bounded(c.list()).await.unwrap(),
        vec![relukko::Lock::dummy()]
    );
}

/// URL mistakes say what to write: a missing scheme, the API's own path at
/// the end of the base URL, and a base URL where no Relukko server answers
/// (a 404 on the list of locks is not a missing lock).
#[tokio::test]
async fn base_url_mistakes_say_what_to_write() {
    let server = TestServer::start();
    let base = server.base_url().to_owned();
    let e = Client::builder(base.trim_start_matches("http://"))
        .build()
        .unwrap_err();
    assert!(
        e.to_string().contains("has no scheme") && e.to_string().contains(&format!("\"{base}\"")),
        "{e}"
    );
    let e = Client::builder(format!("{base}/v1/locks"))
        .build()
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("ends in the API's own path /v1/locks")
            && e.to_string().contains(&format!("\"{base}\"")),
        "{e}"
    );
    let c = Client::builder(format!("{base}/api"))
        .api_key(server.api_key())
        .build()
        .unwrap();
    for e in [
        c.create(&unique("wrong-base"), None).await.unwrap_err(),
        c.list().await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::WrongBaseUrl { .. }), "{e}");
        assert!(
            e.to_string().contains("is not the server's base URL"),
            "{e}"
        );
    }
}
