//! Expiry: the grace period, the periodic clean-up pass and its broadcast.

use std::time::{Duration, Instant};

use relukko_e2e::raw::{Api, assert_error, next_event_for, unique, ws_connect};
use relukko_server::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Sets `expires_at` of lock `id` to now + `offset_secs`.
async fn expire_in(api: &Api, id: uuid::Uuid, offset_secs: i64) {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    api.lock_call(
        Method::PUT,
        &format!("/v1/locks/{id}"),
        Some(json!({"expires_at": at})),
    )
    .await;
}

#[tokio::test]
async fn an_expired_lock_is_taken_until_the_grace_is_over() {
    // A long grace: the lock stays, expired, for the whole test.
    let server = TestServer::builder()
        .grace(Duration::from_secs(600))
        .cleanup_interval(Duration::from_millis(50))
        .start();
    let api = Api::new(&server);
    let name = unique("grace");
    let lock = api.create(&name).await;
    expire_in(&api, lock.id, -60).await;
    // A marker expired longer than the grace: once a clean-up pass has
    // removed it, that pass has also seen (and must have kept) the lock.
    let marker = api.create(&unique("grace-marker")).await;
    expire_in(&api, marker.id, -700).await;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = api
            .call(Method::GET, &format!("/v1/locks/{}", marker.id), None)
            .await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(Instant::now() < until, "no clean-up pass ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = api
        .call(Method::POST, "/v1/locks/", Some(json!({"lock_name": name})))
        .await;
    assert_error(status, &body, 409);
    let (status, _) = api
        .call(Method::GET, &format!("/v1/locks/{}", lock.id), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_cleanup_pass_removes_and_broadcasts_expired_locks() {
    let server = TestServer::builder()
        .grace(Duration::from_secs(1))
        .cleanup_interval(Duration::from_millis(200))
        .start();
    let api = Api::new(&server);
    let mut ws = ws_connect(server.base_url(), Some(server.api_key()))
        .await
        .unwrap();
    let (expired, alive) = (unique("expired"), unique("alive"));
    let lock = api.create(&expired).await;
    let kept = api.create(&alive).await;
    expire_in(&api, lock.id, -2).await; // expired longer than the grace already
    let start = Instant::now();

    let (kind, _) = next_event_for(&mut ws, &expired).await; // created
    assert_eq!(kind, "created");
    let (kind, _) = next_event_for(&mut ws, &expired).await;
    assert_eq!(kind, "updated");
    let (kind, deleted) = next_event_for(&mut ws, &expired).await;
    assert_eq!(kind, "deleted");
    assert_eq!(deleted.id, lock.id);
    assert!(start.elapsed() < Duration::from_secs(10));

    let (status, body) = api
        .call(Method::GET, &format!("/v1/locks/{}", lock.id), None)
        .await;
    assert_error(status, &body, 404);
    api.create(&expired).await;
    // The unexpired lock is untouched.
    let still = api
        .lock_call(Method::GET, &format!("/v1/locks/{}", kept.id), None)
        .await;
    assert_eq!(still, kept);
}

#[tokio::test]
async fn a_lock_becomes_free_only_after_expiry_plus_grace() {
    let server = TestServer::builder()
        .grace(Duration::from_secs(2))
        .cleanup_interval(Duration::from_millis(100))
        .start();
    let api = Api::new(&server);
    let name = unique("later");
    let lock = api.create(&name).await;
    // Expires in 1 s, so it may go 3 s from now, not before.
    expire_in(&api, lock.id, 1).await;
    let start = Instant::now();
    let freed_after = loop {
        let (status, body) = api
            .call(Method::POST, "/v1/locks/", Some(json!({"lock_name": name})))
            .await;
        match status.as_u16() {
            201 => break start.elapsed(),
            409 => {}
            other => panic!("unexpected {other}: {body}"),
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Not before the second of expiry plus the two of grace (`start` is taken
    // just after the PUT; half a second of slack for that).
    assert!(
        freed_after >= Duration::from_millis(2500),
        "freed after {freed_after:?}"
    );
}
