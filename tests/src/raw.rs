//! Raw access to a Relukko server over HTTP and WebSocket, with `reqwest` and
//! `tokio-tungstenite` used directly (not the project's client): what the
//! server's own suites test with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use relukko::Lock;
use relukko_server::TestServer;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket connection to `/ws/broadcast`.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest any single step of a raw test may take before it fails.
pub const STEP: Duration = Duration::from_secs(10);

/// A lock name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        fastrand_suffix()
    )
}

fn fastrand_suffix() -> u32 {
    // Distinct across processes started in the same instant (nextest).
    uuid::Uuid::new_v4().as_fields().0
}

/// Requests to one server, with its key unless told otherwise.
#[derive(Debug, Clone)]
pub struct Api {
    /// The HTTP client (one per test: pooled connections belong to its runtime).
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's API key.
    pub key: String,
}

impl Api {
    /// Talks to `server` with its key.
    pub fn new(server: &TestServer) -> Self {
        Api::at(server.base_url(), server.api_key())
    }

    /// Talks to the server at `base` with `key`.
    pub fn at(base: &str, key: &str) -> Self {
        Api {
            http: reqwest::Client::builder()
                .timeout(STEP)
                .use_preconfigured_tls(plain_tls())
                .build()
                .expect("a plain HTTP client builds"),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    /// A request carrying the key (in the Python client's spelling `X-api-Key`).
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-api-Key", &self.key)
    }

    /// The requests the server has answered so far, from its `/metrics`:
    /// the sum of its `relukko_http_requests_total` series whose line
    /// passes `keep` (say, a route or a method).
    pub async fn requests_answered(&self, keep: impl Fn(&str) -> bool) -> u64 {
        let text = self
            .req(Method::GET, "/metrics")
            .send()
            .await
            .expect("the metrics request reaches the server")
            .text()
            .await
            .expect("the metrics arrive");
        text.lines()
            .filter(|l| l.starts_with("relukko_http_requests_total{") && keep(l))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Sends and returns the status and the JSON body (`Value::Null` if the body is empty).
    pub async fn send(rb: RequestBuilder) -> (StatusCode, Value) {
        let response = rb.send().await.expect("the request reaches the server");
        let status = response.status();
        let text = response.text().await.expect("the body arrives");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
        };
        (status, body)
    }

    /// `method path` with the key and an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.req(method, path);
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        Api::send(rb).await
    }

    /// Creates a lock and asserts `201`.
    pub async fn create(&self, name: &str) -> Lock {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/locks/",
                Some(serde_json::json!({"lock_name": name, "creator": "raw"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        lock(body)
    }

    /// `method path` that must answer `200` with a lock.
    pub async fn lock_call(&self, method: Method, path: &str, body: Option<Value>) -> Lock {
        let (status, answer) = self.call(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
        lock(answer)
    }
}

/// A TLS configuration that trusts nothing: these tests speak plain HTTP, and
/// reqwest (built without a default crypto provider) needs one all the same.
fn plain_tls() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}

/// Decodes a lock, with the body in the panic message.
pub fn lock(body: Value) -> Lock {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("not a lock ({e}): {body}"))
}

/// Asserts the protocol's error body `{"status": N, "message": "..."}`.
pub fn assert_error(status: StatusCode, body: &Value, expected: u16) {
    assert_eq!(status.as_u16(), expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

/// Opens `/ws/broadcast` with `key` (or none).
pub async fn ws_connect(base: &str, key: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let url = format!("{}/ws/broadcast", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request()?;
    if let Some(key) = key {
        request.headers_mut().insert(
            "x-api-key",
            key.parse().expect("a key is a valid header value"),
        );
    }
    let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .expect("the WebSocket handshake ends in time")?;
    Ok(ws)
}

/// The next text event as JSON, skipping pings and pongs; panics after [`STEP`].
pub async fn next_event(ws: &mut Ws) -> Value {
    tokio::time::timeout(STEP, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str::<Value>(&text)
                        .unwrap_or_else(|e| panic!("event is not JSON ({e}): {text}"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    })
    .await
    .expect("an event arrives in time")
}

/// The next event about `lock_name`, skipping events about other locks.
pub async fn next_event_for(ws: &mut Ws, lock_name: &str) -> (String, Lock) {
    for _ in 0..10_000 {
        let event = next_event(ws).await;
        let obj = event.as_object().expect("an event is an object");
        assert_eq!(obj.len(), 1, "one key per event: {event}");
        let (kind, value) = obj.iter().next().expect("one key");
        if value["lock_name"] == lock_name {
            return (kind.clone(), lock(value.clone()));
        }
    }
    panic!("no event about {lock_name}");
}
