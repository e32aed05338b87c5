//! Raw HTTP/1.1 over one TCP connection to the server: the prober's
//! `GET /v1/locks/` and the malformed requests, which no HTTP client would send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends `request` on a new connection and answers the status code of the
/// answer, or 0 when there is none (refused, closed, timed out, not HTTP).
pub fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> u16 {
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, timeout) else {
        return 0;
    };
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    if sock.write_all(request).is_err() {
        return 0;
    }
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match sock.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let text = String::from_utf8_lossy(&head[..got]);
    text.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The ids of the locks the server holds now (empty if it does not answer).
pub fn lock_ids(addr: SocketAddr, key: &str, timeout: Duration) -> Vec<String> {
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, timeout) else {
        return Vec::new();
    };
    let _ = sock.set_read_timeout(Some(timeout));
    let mut answer = Vec::new();
    if sock.write_all(&list(key)).is_err() || sock.read_to_end(&mut answer).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&answer);
    let Some((_, body)) = text.split_once("\r\n\r\n") else {
        return Vec::new();
    };
    let locks: Vec<serde_json::Value> = serde_json::from_str(body).unwrap_or_default();
    locks
        .iter()
        .filter_map(|l| l["id"].as_str().map(str::to_owned))
        .collect()
}

/// `GET /v1/locks/` with the key.
pub fn list(key: &str) -> Vec<u8> {
    format!("GET /v1/locks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

fn request(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
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
