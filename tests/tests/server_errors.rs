//! The server's error answers: authentication, unknown ids, routes and
//! methods, malformed bodies; each with the body `{"status": N, "message": ...}`.

use relukko_e2e::raw::{Api, assert_error, unique};
use relukko_server::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn every_id_route_answers_404_for_an_unknown_or_malformed_id() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let seconds = Some(json!({"seconds": 1}));
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_owned(),
        "1234".to_owned(),
    ] {
        let cases = [
            (Method::GET, format!("/v1/locks/{id}"), None),
            (
                Method::PUT,
                format!("/v1/locks/{id}"),
                Some(json!({"creator": "x"})),
            ),
            (Method::DELETE, format!("/v1/locks/{id}"), None),
            (Method::GET, format!("/v1/locks/{id}/keep_alive"), None),
            (
                Method::PUT,
                format!("/v1/locks/{id}/keep_alive"),
                seconds.clone(),
            ),
            (
                Method::GET,
                format!("/v1/locks/{id}/add_to_expire_at"),
                None,
            ),
            (
                Method::PUT,
                format!("/v1/locks/{id}/add_to_expire_at"),
                seconds.clone(),
            ),
        ];
        for (method, path, body) in cases {
            let (status, answer) = api.call(method.clone(), &path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
            assert_error(status, &answer, 404);
        }
    }
}

#[tokio::test]
async fn authentication_is_required_on_every_v1_route() {
    let server = TestServer::builder().api_key("the-right-key").start();
    let api = Api::new(&server);
    let created = api.create(&unique("auth")).await;
    let id = created.id;
    let paths = [
        (Method::GET, "/v1/locks/".to_owned()),
        (Method::GET, "/v1/locks".to_owned()),
        (Method::POST, "/v1/locks/".to_owned()),
        (Method::GET, format!("/v1/locks/{id}")),
        (Method::PUT, format!("/v1/locks/{id}")),
        (Method::DELETE, format!("/v1/locks/{id}")),
        (Method::GET, format!("/v1/locks/{id}/keep_alive")),
        (Method::PUT, format!("/v1/locks/{id}/keep_alive")),
        (Method::GET, format!("/v1/locks/{id}/add_to_expire_at")),
        (Method::PUT, format!("/v1/locks/{id}/add_to_expire_at")),
    ];
    for (method, path) in paths {
        let url = format!("{}{path}", server.base_url());
        let body = json!({"lock_name": "x", "seconds": 1});
        let without = api.http.request(method.clone(), &url).json(&body);
        let (status, answer) = Api::send(without).await;
        assert_error(status, &answer, 401);
        for wrong in ["the-right-ke", "the-right-key2", "THE-RIGHT-KEY", "x"] {
            let with_wrong = api
                .http
                .request(method.clone(), &url)
                .header("X-API-Key", wrong)
                .json(&body);
            let (status, answer) = Api::send(with_wrong).await;
            assert_error(status, &answer, 401);
            assert!(
                !answer.to_string().contains("the-right-key"),
                "never echo the key"
            );
        }
    }
    // Nothing was changed by the refused requests.
    let still = api
        .lock_call(Method::GET, &format!("/v1/locks/{id}"), None)
        .await;
    assert_eq!(still, created);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_have_error_bodies() {
    let server = TestServer::start();
    let api = Api::new(&server);
    for path in ["/nope", "/v1/nope", "/v1/locks/a/b/c", "/v2/locks/"] {
        let (status, body) = api.call(Method::GET, path, None).await;
        assert_error(status, &body, 404);
    }
    let id = uuid::Uuid::new_v4();
    for (method, path) in [
        (Method::PATCH, "/v1/locks/".to_owned()),
        (Method::DELETE, "/v1/locks".to_owned()),
        (Method::POST, format!("/v1/locks/{id}")),
        (Method::DELETE, format!("/v1/locks/{id}/keep_alive")),
        (Method::POST, "/healthchecker".to_owned()),
    ] {
        let (status, body) = api.call(method, &path, None).await;
        assert_error(status, &body, 405);
    }
}

#[tokio::test]
async fn malformed_bodies_have_error_bodies() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let created = api.create(&unique("bodies")).await;
    let keep = format!("/v1/locks/{}/keep_alive", created.id);
    let put = format!("/v1/locks/{}", created.id);
    let raw = |path: &str, body: &'static str| {
        api.req(Method::POST, path)
            .header("content-type", "application/json")
            .body(body)
    };
    // Not JSON at all, or cut short.
    for body in ["not json", "{\"lock_name\":", ""] {
        let (status, answer) = Api::send(raw("/v1/locks/", body)).await;
        assert_error(status, &answer, 422);
    }
    // A missing field or a wrong type.
    for body in [
        json!({}),
        json!({"creator": "x"}),
        json!({"lock_name": 5}),
        json!([1, 2]),
    ] {
        let (status, answer) = api.call(Method::POST, "/v1/locks/", Some(body)).await;
        assert_error(status, &answer, 422);
    }
    for body in [
        json!({"seconds": "ten"}),
        json!({"seconds": 1.5}),
        json!({}),
    ] {
        let (status, answer) = api.call(Method::PUT, &keep, Some(body)).await;
        assert_error(status, &answer, 422);
    }
    for body in [
        json!({"expires_at": "tomorrow"}),
        json!({"expires_at": 5}),
        json!({"creator": 5}),
    ] {
        let (status, answer) = api.call(Method::PUT, &put, Some(body)).await;
        assert_error(status, &answer, 422);
    }
    // No JSON content type.
    let (status, answer) = Api::send(
        api.req(Method::POST, "/v1/locks/")
            .body("{\"lock_name\":\"x\"}"),
    )
    .await;
    assert_error(status, &answer, 415);
    // Oversized.
    let big = "x".repeat(200 * 1024);
    let (status, answer) = api
        .call(Method::POST, "/v1/locks/", Some(json!({"lock_name": big})))
        .await;
    assert_error(status, &answer, 413);
    // The unread body spoils the connection: the server must say so, or the
    // client's next request on it is lost.
    let response = api
        .req(Method::POST, "/v1/locks/")
        .json(&json!({"lock_name": "y".repeat(200 * 1024)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["connection"], "close");
    // The lock is untouched by all that.
    let still = api.lock_call(Method::GET, &put, None).await;
    assert_eq!(still, created);
}

/// A `seconds` that `checked_add` allows can still land outside what RFC 3339
/// can write (years 0000 to 9999), and so can a `PUT` of `expires_at` with a
/// far offset. Stored, such a time made every `GET /v1/locks/` answer 500 until
/// the clean-up pass: it must be refused up front with a 422 and a message.
#[tokio::test]
async fn expiry_times_the_wire_format_cannot_carry_are_refused() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let created = api.create(&unique("far")).await;
    let id = created.id;
    for (path, seconds) in [
        ("keep_alive", -100_000_000_000_i64),
        ("keep_alive", 400_000_000_000),
        ("add_to_expire_at", -100_000_000_000),
        ("add_to_expire_at", 400_000_000_000),
        ("keep_alive", i64::MIN),
        ("add_to_expire_at", i64::MAX),
    ] {
        let (status, body) = api
            .call(
                Method::PUT,
                &format!("/v1/locks/{id}/{path}"),
                Some(json!({ "seconds": seconds })),
            )
            .await;
        assert_error(status, &body, 422);
    }
    for expires_at in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59"] {
        let (status, body) = api
            .call(
                Method::PUT,
                &format!("/v1/locks/{id}"),
                Some(json!({ "expires_at": expires_at })),
            )
            .await;
        assert_error(status, &body, 422);
    }
    let (status, list) = api.call(Method::GET, "/v1/locks/", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let still = api
        .lock_call(Method::GET, &format!("/v1/locks/{id}"), None)
        .await;
    assert_eq!(still.expires_at, created.expires_at);
}
