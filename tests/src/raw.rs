//! Raw access to a Relukko server, not through the project's client: over
//! HTTP and WebSocket with `reqwest` and `tokio-tungstenite` used directly
//! (what the server's own suites test with), and as bytes of HTTP/1.1 over
//! one TCP connection ([`exchange`], [`malformed`]): requests no HTTP client
//! would send, and a probe that needs no runtime (the torture's).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
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

/// Sends `request` on a new connection and answers what came back until the
/// server closed it (every request built here says `Connection: close`) or
/// `timeout` passed without a byte; empty when nothing did (refused, closed
/// at once, timed out).
pub fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> Vec<u8> {
    exchange_inner(addr, request, timeout, false)
}

/// [`exchange`], then ends the request side of the connection: for bytes that
/// may be an unfinished request, so the server stops waiting for the rest.
pub fn exchange_then_close(addr: SocketAddr, request: &[u8], timeout: Duration) -> Vec<u8> {
    exchange_inner(addr, request, timeout, true)
}

fn exchange_inner(addr: SocketAddr, request: &[u8], timeout: Duration, close: bool) -> Vec<u8> {
    let mut answer = Vec::new();
    let Ok(mut sock) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return answer;
    };
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    if sock.write_all(request).is_err() {
        return answer;
    }
    if close {
        let _ = sock.shutdown(Shutdown::Write);
    }
    let mut buf = [0u8; 8192];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status code of an HTTP/1.x answer, if it is one.
pub fn status_code(answer: &[u8]) -> Option<u16> {
    let head = String::from_utf8_lossy(&answer[..answer.len().min(12)]);
    head.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// The body of an HTTP/1.x answer (after its head), if it has one.
pub fn body(answer: &[u8]) -> Option<&[u8]> {
    let at = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(&answer[at + 4..])
}

/// The ids of the locks the server holds now (empty if it does not answer).
pub fn lock_ids(addr: SocketAddr, key: &str, timeout: Duration) -> Vec<String> {
    let answer = exchange(addr, &list(key), timeout);
    let Some(body) = body(&answer) else {
        return Vec::new();
    };
    let locks: Vec<Value> = serde_json::from_slice(body).unwrap_or_default();
    locks
        .iter()
        .filter_map(|l| l["id"].as_str().map(str::to_owned))
        .collect()
}

/// `GET /v1/locks/` with the key.
pub fn list(key: &str) -> Vec<u8> {
    http_request("GET", "/v1/locks/", &[("X-API-Key", key.to_owned())], b"")
}

/// The bytes of an HTTP/1.1 request to the server: `Host`, `Connection:
/// close`, `headers`, and `Content-Length` of `body`.
pub fn http_request(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One malformed request, chosen by `rng`: bad JSON, huge and odd names,
/// invalid UTF-8, wrong methods and content types, missing or wrong key,
/// far-out `seconds`, broken HTTP.
/// `ids` are locks that exist (far-out `seconds` go to one of them).
pub fn malformed(rng: &mut fastrand::Rng, key: &str, ids: &[String]) -> Vec<u8> {
    let request = http_request;
    let json = ("Content-Type", "application/json".to_owned());
    let good = ("X-API-Key", key.to_owned());
    let id = if ids.is_empty() {
        "00000000-0000-0000-0000-000000000000"
    } else {
        &ids[rng.usize(..ids.len())]
    };
    match rng.u8(0..12) {
        0 => request("POST", "/v1/locks/", &[json, good], b"{\"lock_name\":"),
        1 => {
            let name = "n".repeat(rng.usize(1_000..60_000));
            let body = format!("{{\"lock_name\":\"{name}\"}}");
            request("POST", "/v1/locks/", &[json, good], body.as_bytes())
        }
        2 => request(
            "POST",
            "/v1/locks/",
            &[json, good],
            "{\"lock_name\":\"ä/😀\\u0000\\u202e%2F..\"}".as_bytes(),
        ),
        3 => request(
            "POST",
            "/v1/locks/",
            &[json, good],
            b"{\"lock_name\":\"\xff\xfe\"}",
        ),
        4 => request("PATCH", "/v1/locks/", &[json, good], b"{}"),
        5 => request(
            "POST",
            "/v1/locks/",
            &[("Content-Type", "text/plain".to_owned()), good],
            b"{\"lock_name\":\"x\"}",
        ),
        6 => request("GET", "/v1/locks/", &[], b""),
        7 => request(
            "GET",
            "/v1/locks/",
            &[("X-API-Key", "wrong".to_owned())],
            b"",
        ),
        8 => {
            let seconds = [-100_000_000_000_i64, 400_000_000_000, i64::MIN][rng.usize(..3)];
            let path = ["keep_alive", "add_to_expire_at"][rng.usize(..2)];
            request(
                "PUT",
                &format!("/v1/locks/{id}/{path}"),
                &[json, good],
                format!("{{\"seconds\":{seconds}}}").as_bytes(),
            )
        }
        9 => request("GET", "/v1/locks/%ff%fe/keep_alive", &[good], b""),
        10 => b"BREW /v1/locks/ HTCPCP/1.0\r\n\r\n".to_vec(),
        _ => (0..rng.usize(1..200)).map(|_| rng.u8(..)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw helpers the torture's prober relies on, against a real
    /// server: a request built here is answered, its status and body read
    /// back, and the locks listed by id; a peer that says nothing, no answer.
    #[test]
    fn raw_requests_reach_the_server_and_answers_read_back() {
        let server = TestServer::start();
        let (addr, key) = (server.addr(), server.api_key().to_owned());
        let key = key.as_str();
        let create = http_request(
            "POST",
            "/v1/locks/",
            &[
                ("X-API-Key", key.to_owned()),
                ("Content-Type", "application/json".to_owned()),
            ],
            br#"{"lock_name":"raw-helpers","creator":null}"#,
        );
        let answer = exchange(addr, &create, STEP);
        assert_eq!(status_code(&answer), Some(201), "{answer:?}");
        let created: Value = serde_json::from_slice(body(&answer).unwrap()).unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(lock_ids(addr, key, STEP), [id]);
        let refused = exchange(addr, &list("wrong"), STEP);
        assert_eq!(status_code(&refused), Some(401));
        let unfinished = exchange_then_close(addr, b"GET /v1/lo", STEP);
        assert!(
            status_code(&unfinished).is_none_or(|c| (400..500).contains(&c)),
            "{unfinished:?}"
        );
        // A peer that closes without a word: no answer.
        let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mute_addr = mute.local_addr().unwrap();
        let closer = std::thread::spawn(move || drop(mute.accept()));
        assert!(exchange(mute_addr, &list(key), STEP).is_empty());
        closer.join().unwrap();
        assert_eq!(status_code(b"HTTP/1.1 503 Busy\r\n\r\n"), Some(503));
        assert_eq!(status_code(b"BREW"), None);
    }
}
