//! Property tests of the server's request handling: random methods, paths,
//! names, headers and bodies (seeded, so a failure replays) never panic it,
//! never get a 5xx, and never leave it unable to list its locks.
//!
//! A seeded loop with `fastrand` rather than a property-testing crate: the
//! inputs are requests, shrinking would not make a failing one much clearer,
//! and the seed in the failure message replays it exactly.

use std::time::Duration;

use relukko_e2e::raw::{self, Api};
use relukko_server::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Requests per seed; a few hundred each keep the suite quick on a busy machine.
const REQUESTS: usize = 300;
const SEEDS: [u64; 3] = [1, 0xdead_beef, 20_260_101];

/// A random piece of text: plain, odd Unicode, control characters, very long.
fn text(rng: &mut fastrand::Rng) -> String {
    match rng.u8(0..6) {
        0 => String::new(),
        1 => (0..rng.usize(1..20)).map(|_| rng.alphanumeric()).collect(),
        2 => (0..rng.usize(1..40)).map(|_| rng.char(..)).collect(),
        3 => "ä/😀\u{0}\u{202e}%2F..\\\n\t\"'".to_owned(),
        4 => "n".repeat(rng.usize(1_000..70_000)),
        _ => format!("name-{}", rng.u8(0..4)),
    }
}

/// A random JSON value, nested at most `depth` deep.
fn value(rng: &mut fastrand::Rng, depth: u8) -> Value {
    match rng.u8(0..if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(rng.f64() * 1e300),
        4 => json!(text(rng)),
        5 => json!(time_text(rng)),
        6 => Value::Array(
            (0..rng.usize(0..4))
                .map(|_| value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.usize(0..4))
                .map(|_| (field(rng), value(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// A field name the server knows, mostly.
fn field(rng: &mut fastrand::Rng) -> String {
    let known = ["lock_name", "creator", "seconds", "expires_at"];
    if rng.u8(0..5) == 0 {
        text(rng)
    } else {
        known[rng.usize(..known.len())].to_owned()
    }
}

/// An RFC 3339-looking time, often at the edges of what it can carry.
fn time_text(rng: &mut fastrand::Rng) -> String {
    let year = [0, 1, 1970, 2026, 9998, 9999][rng.usize(..6)];
    let offset = ["Z", "+23:59", "-23:59", "+00:00", "-12:30"][rng.usize(..5)];
    let day = if rng.bool() {
        "12-31T23:59:59"
    } else {
        "01-01T00:00:00"
    };
    format!("{year:04}-{day}.{:06}{offset}", rng.u32(0..1_000_000))
}

/// A body that tends to reach the handlers: a known shape with random values.
fn body(rng: &mut fastrand::Rng) -> Vec<u8> {
    match rng.u8(0..7) {
        0 => json!({"lock_name": text(rng), "creator": value(rng, 1)}).to_string(),
        1 => json!({"seconds": rng.i64(..)}).to_string(),
        2 => {
            let edges = [i64::MIN, i64::MAX, -100_000_000_000, 400_000_000_000, 0];
            json!({"seconds": edges[rng.usize(..edges.len())]}).to_string()
        }
        3 => json!({"expires_at": time_text(rng), "creator": value(rng, 1)}).to_string(),
        4 => value(rng, 3).to_string(),
        5 => return (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect(),
        _ => text(rng),
    }
    .into_bytes()
}

/// Seconds to add: small, at the edges of the wire format, or anything.
fn seconds(rng: &mut fastrand::Rng) -> i64 {
    let edges = [
        i64::MIN,
        i64::MAX,
        -100_000_000_000,
        400_000_000_000,
        -63_000_000_000,
        0,
    ];
    match rng.u8(0..3) {
        0 => edges[rng.usize(..edges.len())],
        1 => rng.i64(-400_000_000_000..400_000_000_000),
        _ => rng.i64(-1000..1000),
    }
}

/// A request the server routes to a handler: the right method for a real
/// route, a real lock's id when there is one, a body of the expected shape
/// with random values.
fn well_formed(rng: &mut fastrand::Rng, ids: &[String]) -> (Method, String, Vec<u8>) {
    let id = if ids.is_empty() {
        uuid::Uuid::from_u128(rng.u128(..)).to_string()
    } else {
        ids[rng.usize(..ids.len())].clone()
    };
    let (method, path, body) = match rng.u8(0..8) {
        0 | 1 => (
            Method::POST,
            "/v1/locks/".to_owned(),
            json!({"lock_name": text(rng), "creator": value(rng, 1)}),
        ),
        2 => (
            Method::PUT,
            format!("/v1/locks/{id}/keep_alive"),
            json!({"seconds": seconds(rng)}),
        ),
        3 => (
            Method::PUT,
            format!("/v1/locks/{id}/add_to_expire_at"),
            json!({"seconds": seconds(rng)}),
        ),
        4 => (
            Method::PUT,
            format!("/v1/locks/{id}"),
            json!({"expires_at": time_text(rng), "creator": value(rng, 1)}),
        ),
        5 => {
            let tail = ["keep_alive", "add_to_expire_at"][rng.usize(..2)];
            (Method::GET, format!("/v1/locks/{id}/{tail}"), Value::Null)
        }
        6 => (Method::DELETE, format!("/v1/locks/{id}"), Value::Null),
        _ => (Method::GET, format!("/v1/locks/{id}"), Value::Null),
    };
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    (method, path, body)
}

/// A path: the lock routes with a real, random or broken id, or junk.
fn path(rng: &mut fastrand::Rng, ids: &[String]) -> String {
    let id = match rng.u8(0..4) {
        0 if !ids.is_empty() => ids[rng.usize(..ids.len())].clone(),
        1 => uuid::Uuid::from_u128(rng.u128(..)).to_string(),
        2 => urlencode(&text(rng)),
        _ => "00000000-0000-0000-0000-000000000000".to_owned(),
    };
    let tail = ["", "/keep_alive", "/add_to_expire_at", "/", "/x"][rng.usize(..5)];
    match rng.u8(0..6) {
        0 => "/v1/locks/".to_owned(),
        1 => "/v1/locks".to_owned(),
        2 => format!("/{}", urlencode(&text(rng))),
        3 => "/healthchecker".to_owned(),
        _ => format!("/v1/locks/{id}{tail}"),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().take(200).map(|b| format!("%{b:02X}")).collect()
}

async fn list_works(api: &Api, context: &str) {
    let (status, body) = api.call(Method::GET, "/v1/locks/", None).await;
    assert_eq!(status, StatusCode::OK, "{context}: {body}");
    let locks: Vec<relukko::Lock> = serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("{context}: the list is not locks ({e}): {body}"));
    for lock in locks {
        relukko::format_timestamp(lock.expires_at);
    }
}

#[tokio::test]
async fn random_requests_never_get_5xx_and_the_list_keeps_working() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ];
    let types = [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/json; charset=latin1",
    ];
    for seed in SEEDS {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut ids: Vec<String> = Vec::new();
        let mut previous = String::new();
        for n in 0..REQUESTS {
            let (method, path, rb, body) = if rng.bool() {
                // Well-formed: right key and type, a real route and id, random values.
                let (method, path, body) = well_formed(&mut rng, &ids);
                let rb = api
                    .req(method.clone(), &path)
                    .header("content-type", "application/json");
                (method, path, rb, body)
            } else {
                let method = methods[rng.usize(..methods.len())].clone();
                let path = path(&mut rng, &ids);
                let mut rb = api
                    .http
                    .request(method.clone(), format!("{}{path}", api.base));
                rb = match rng.u8(0..5) {
                    0 => rb,
                    1 => rb.header("x-api-key", "wrong"),
                    2 => rb.header("x-api-key", format!("{} ", server.api_key())),
                    _ => rb.header("X-API-Key", server.api_key()),
                };
                if rng.u8(0..4) != 0 {
                    rb = rb.header("content-type", types[rng.usize(..types.len())]);
                }
                let header = format!("x-{}", urlencode(&text(&mut rng)).replace('%', ""));
                if rng.bool() {
                    rb = rb.header(header, "1");
                }
                (method, path, rb, body(&mut rng))
            };
            let sent = body.len();
            let context = format!(
                "seed {seed}, request {n}: {method} {path} ({} bytes; before: {previous})",
                body.len()
            );
            let response = rb
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{context}: no answer ({e:?})"));
            let status = response.status();
            previous = format!(
                "{method} {path} {sent} bytes: {status} {:?}",
                response.headers().get("connection")
            );
            let text = response.text().await.unwrap_or_default();
            assert!(!status.is_server_error(), "{context}: {status} {text}");
            if status == StatusCode::CREATED
                && let Ok(lock) = serde_json::from_str::<relukko::Lock>(&text)
            {
                ids.push(lock.id.to_string());
            }
            if n % 25 == 0 {
                list_works(&api, &context).await;
            }
        }
        list_works(&api, &format!("seed {seed}, at the end")).await;
    }
}

/// What is not HTTP at all, or barely: the server answers 4xx or closes, and
/// keeps serving everybody else.
#[tokio::test]
async fn malformed_http_never_gets_5xx() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let key = server.api_key().to_owned();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut requests: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /v1/locks/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST /v1/locks/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        [
            format!("POST /v1/locks/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n").as_bytes(),
            b"\xff\xfe\xfd\xfc\xfb",
        ]
        .concat(),
        [
            b"GET /v1/locks/\xff HTTP/1.1\r\nHost: x\r\nX-API-Key: ".as_slice(),
            key.as_bytes(),
            b"\r\n\r\n",
        ]
        .concat(),
    ];
    for _ in 0..40 {
        requests.push((0..rng.usize(1..300)).map(|_| rng.u8(..)).collect());
    }
    // And the torture's malformed requests.
    for _ in 0..24 {
        requests.push(raw::malformed(&mut rng, &key, &[]));
    }
    for (n, request) in requests.iter().enumerate() {
        // Ending the request side: the server stops waiting for the rest of
        // an unfinished request.
        let answer = raw::exchange_then_close(server.addr(), request, Duration::from_secs(5));
        if let Some(code) = raw::status_code(&answer) {
            assert!(
                code < 500,
                "request {n} {:?}: {}",
                String::from_utf8_lossy(request),
                String::from_utf8_lossy(&answer)
            );
        }
    }
    list_works(&api, "after malformed HTTP").await;
}
