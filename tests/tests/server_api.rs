//! The server's HTTP API, endpoint by endpoint and error by error, over real
//! HTTP with `reqwest` (not the project's client).

use std::sync::Arc;

use relukko_e2e::raw::{Api, assert_error, lock, unique};
use relukko_server::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;
use time::Duration;

#[tokio::test]
async fn healthchecker_is_open() {
    let server = TestServer::start();
    let api = Api::at(server.base_url(), "");
    let response = api
        .http
        .get(format!("{}/healthchecker", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn create_answers_201_with_a_ten_minute_lock() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let name = unique("create");
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/locks/",
            Some(json!({"lock_name": name, "creator": "me"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let lock = lock(body.clone());
    assert_eq!(lock.lock_name, name);
    assert_eq!(lock.creator.as_deref(), Some("me"));
    assert_eq!(lock.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(lock.created_at, lock.updated_at);
    assert_eq!(lock.expires_at - lock.created_at, Duration::minutes(10));
    assert_eq!(
        lock.created_at.nanosecond() % 1_000,
        0,
        "microsecond precision"
    );
    for field in ["expires_at", "created_at", "updated_at"] {
        let text = body[field].as_str().unwrap();
        assert!(text.ends_with('Z'), "{field} = {text}");
        assert!(
            !text.contains('.') || !text.trim_end_matches('Z').ends_with('0'),
            "trailing zeros trimmed: {text}"
        );
    }
    let now = time::OffsetDateTime::now_utc();
    assert!(
        (now - lock.created_at).abs() < Duration::minutes(1),
        "created_at is now"
    );
}

#[tokio::test]
async fn creator_may_be_null_or_absent() {
    let server = TestServer::start();
    let api = Api::new(&server);
    for body in [
        json!({"lock_name": unique("null"), "creator": null}),
        json!({"lock_name": unique("absent")}),
    ] {
        let (status, answer) = api.call(Method::POST, "/v1/locks/", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(lock(answer).creator, None);
    }
}

#[tokio::test]
async fn a_taken_name_answers_409_and_names_are_case_sensitive() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let name = unique("pylock");
    api.create(&name).await;
    let (status, body) = api
        .call(Method::POST, "/v1/locks/", Some(json!({"lock_name": name})))
        .await;
    assert_error(status, &body, 409);
    api.create(&name.to_uppercase()).await;
}

#[tokio::test]
async fn list_with_and_without_trailing_slash() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let a = api.create(&unique("list-a")).await;
    let b = api.create(&unique("list-b")).await;
    for path in ["/v1/locks/", "/v1/locks"] {
        let (status, body) = api.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let all: Vec<relukko::Lock> = serde_json::from_value(body).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.contains(&a) && all.contains(&b));
    }
    let (status, body) = api
        .call(
            Method::POST,
            "/v1/locks",
            Some(json!({"lock_name": unique("no-slash")})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn get_after_post_answers_the_same_object() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let (_, posted) = api
        .call(
            Method::POST,
            "/v1/locks/",
            Some(json!({"lock_name": unique("same"), "creator": "c"})),
        )
        .await;
    let id = posted["id"].as_str().unwrap().to_owned();
    let (status, got) = api
        .call(Method::GET, &format!("/v1/locks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, posted, "the same JSON, field for field");
}

#[tokio::test]
async fn delete_answers_the_lock_as_stored_and_frees_the_name() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let name = unique("delete");
    let created = api.create(&name).await;
    let path = format!("/v1/locks/{}", created.id);
    let deleted = api.lock_call(Method::DELETE, &path, None).await;
    assert_eq!(deleted, created);
    let (status, body) = api.call(Method::GET, &path, None).await;
    assert_error(status, &body, 404);
    let (status, body) = api.call(Method::DELETE, &path, None).await;
    assert_error(status, &body, 404);
    api.create(&name).await;
}

#[tokio::test]
async fn put_changes_only_the_given_fields() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let created = api.create(&unique("put")).await;
    let path = format!("/v1/locks/{}", created.id);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let renamed = api
        .lock_call(
            Method::PUT,
            &path,
            Some(json!({"creator": "new", "expires_at": null})),
        )
        .await;
    assert_eq!(renamed.creator.as_deref(), Some("new"));
    assert_eq!(renamed.expires_at, created.expires_at);
    assert!(renamed.updated_at > created.updated_at, "updated_at moves");

    // `+00:00` and `Z` are both accepted; sub-microsecond digits are cut.
    let past = api
        .lock_call(
            Method::PUT,
            &path,
            Some(json!({"creator": null, "expires_at": "2020-01-02T03:04:05.123456789+00:00"})),
        )
        .await;
    assert_eq!(past.creator.as_deref(), Some("new"));
    assert_eq!(
        past.expires_at,
        time::macros::datetime!(2020-01-02 03:04:05.123456 UTC)
    );
    let future = api
        .lock_call(
            Method::PUT,
            &path,
            Some(json!({"expires_at": "2099-12-31T23:59:59Z"})),
        )
        .await;
    assert_eq!(
        future.expires_at,
        time::macros::datetime!(2099-12-31 23:59:59 UTC)
    );
    // Other offsets are converted to UTC.
    let offset = api
        .lock_call(
            Method::PUT,
            &path,
            Some(json!({"expires_at": "2099-12-31T23:59:59+02:00"})),
        )
        .await;
    assert_eq!(
        offset.expires_at,
        time::macros::datetime!(2099-12-31 21:59:59 UTC)
    );

    let (_, stored) = api.call(Method::GET, &path, None).await;
    assert_eq!(stored["expires_at"], "2099-12-31T21:59:59Z");
    assert_eq!(lock(stored), offset);
}

#[tokio::test]
async fn keep_alive_sets_now_plus_five_minutes_or_n_seconds() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let created = api.create(&unique("keep")).await;
    let path = format!("/v1/locks/{}/keep_alive", created.id);

    let kept = api.lock_call(Method::GET, &path, None).await;
    assert_eq!(kept.expires_at - kept.updated_at, Duration::minutes(5));
    assert!(kept.updated_at >= created.updated_at);
    assert_eq!(kept.created_at, created.created_at);

    let kept = api
        .lock_call(Method::PUT, &path, Some(json!({"seconds": 42})))
        .await;
    assert_eq!(kept.expires_at - kept.updated_at, Duration::seconds(42));

    // Negative seconds are accepted: the lock then expired in the past.
    let kept = api
        .lock_call(Method::PUT, &path, Some(json!({"seconds": -60})))
        .await;
    assert_eq!(kept.expires_at - kept.updated_at, Duration::seconds(-60));
}

#[tokio::test]
async fn add_to_expire_at_adds_to_the_old_time() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let created = api.create(&unique("add")).await;
    let path = format!("/v1/locks/{}/add_to_expire_at", created.id);

    let added = api.lock_call(Method::GET, &path, None).await;
    assert_eq!(added.expires_at, created.expires_at + Duration::minutes(5));
    assert!(added.updated_at >= created.updated_at);

    let again = api
        .lock_call(Method::PUT, &path, Some(json!({"seconds": 7})))
        .await;
    assert_eq!(again.expires_at, added.expires_at + Duration::seconds(7));

    let back = api
        .lock_call(Method::PUT, &path, Some(json!({"seconds": -907})))
        .await;
    assert_eq!(back.expires_at, again.expires_at - Duration::seconds(907));
    assert!(back.expires_at < created.expires_at);

    let (status, body) = api
        .call(Method::PUT, &path, Some(json!({"seconds": i64::MAX})))
        .await;
    assert_error(status, &body, 422);
}

#[tokio::test]
async fn concurrent_creation_has_exactly_one_winner() {
    let server = TestServer::start();
    let api = Arc::new(Api::new(&server));
    let name = unique("race");
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (api, name, barrier) = (api.clone(), name.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            api.call(Method::POST, "/v1/locks/", Some(json!({"lock_name": name})))
                .await
        });
    }
    let (mut won, mut lost) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result.unwrap();
        match status.as_u16() {
            201 => won += 1,
            409 => {
                assert_error(status, &body, 409);
                lost += 1
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((won, lost), (1, 63));
}

#[test]
fn works_from_a_sync_test_and_restarts_on_the_same_port() {
    let server = TestServer::builder().api_key("k").start();
    let addr = server.addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let api = Api::at(server.base_url(), "k");
    let name = unique("restart");
    rt.block_on(api.create(&name));
    server.stop();
    // A restart forgets every lock.
    let again = TestServer::builder().api_key("k").port(addr.port()).start();
    assert_eq!(again.addr(), addr);
    let api = Api::at(again.base_url(), "k");
    rt.block_on(api.create(&name));
}
