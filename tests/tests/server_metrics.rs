//! `GET /metrics`: Prometheus text, behind the API key.

use std::time::{Duration, Instant};

use relukko_e2e::raw::{Api, STEP, assert_error, unique, ws_connect};
use relukko_server::TestServer;
use reqwest::{Method, StatusCode, header};
use serde_json::json;

async fn metrics(api: &Api) -> String {
    let response = api.req(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels, exactly), if present.
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_need_the_key() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let (status, body) = Api::send(api.http.get(format!("{}/metrics", server.base_url()))).await;
    assert_error(status, &body, 401);
    let (status, body) = Api::send(
        api.http
            .get(format!("{}/metrics", server.base_url()))
            .header("X-API-Key", "wrong"),
    )
    .await;
    assert_error(status, &body, 401);
}

#[tokio::test]
async fn metrics_count_locks_clients_requests_and_clean_ups() {
    let server = TestServer::builder()
        .grace(Duration::ZERO)
        .cleanup_interval(Duration::from_millis(50))
        .start();
    let api = Api::new(&server);
    let _ws = ws_connect(server.base_url(), Some(server.api_key()))
        .await
        .unwrap();
    let kept = api.create(&unique("metrics-kept")).await;
    let gone = api.create(&unique("metrics-gone")).await;
    let (status, _) = api
        .call(
            Method::GET,
            "/v1/locks/00000000-0000-0000-0000-000000000000",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.call(Method::GET, "/no/such/route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Expired an hour ago: the next clean-up pass removes it.
    let past =
        relukko::format_timestamp(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
    api.lock_call(
        Method::PUT,
        &format!("/v1/locks/{}", gone.id),
        Some(json!({"expires_at": past})),
    )
    .await;
    let start = Instant::now();
    let text = loop {
        let text = metrics(&api).await;
        if sample(&text, "relukko_cleanup_removed_total") == Some(1) {
            break text;
        }
        assert!(start.elapsed() < STEP, "no clean-up counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    assert_eq!(sample(&text, "relukko_locks_held"), Some(1), "{text}");
    assert_eq!(
        sample(&text, r#"relukko_websocket_clients{path="/ws/broadcast"}"#),
        Some(1),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"relukko_http_requests_total{route="/v1/locks/",method="POST",status="201"}"#
        ),
        Some(2),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"relukko_http_requests_total{route="/v1/locks/{id}",method="GET",status="404"}"#
        ),
        Some(1),
        "by template, never by id: {text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"relukko_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ),
        Some(1),
        "{text}"
    );
    assert!(
        sample(&text, "relukko_cleanup_runs_total").is_some_and(|n| n >= 1),
        "{text}"
    );
    assert!(!text.contains(&kept.id.to_string()), "no ids in labels");
    assert!(!text.contains(server.api_key()));
}
