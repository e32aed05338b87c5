//! The API key never leaves the server's origin: a redirect to another
//! origin (here another port of 127.0.0.1, or another host name) fails with
//! an error naming both URLs, and the other origin receives nothing; a
//! redirect within the origin is still followed, key and all.
//!
//! The servers are tiny HTTP/1.1 listeners of this file, one request per
//! connection, that record what they received.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use relukko::{Client, Error};
use relukko_e2e::setup::bounded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = "rEdIrEcT-SECRET-9d41";

/// Every request one listener received, as text.
type Seen = Arc<Mutex<Vec<String>>>;

/// Starts a listener on 127.0.0.1 that answers each request with what
/// `answer` makes of its path, and records the request's head.
async fn listen(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let answer = Arc::new(answer);
    {
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let (seen, answer) = (seen.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    seen.lock().unwrap().push(head);
                    let _ = conn.write_all(answer(&path).as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
    }
    (addr, seen)
}

fn redirect_to(location: &str) -> String {
    format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
}

/// An empty list of locks, as a Relukko server answers `GET /v1/locks/`.
fn no_locks() -> String {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
     Connection: close\r\n\r\n[]"
        .to_owned()
}

fn client(addr: SocketAddr) -> Client {
    Client::builder(format!("http://{addr}"))
        .api_key(KEY)
        .build()
        .unwrap()
}

fn carries_key(head: &str) -> bool {
    head.to_ascii_lowercase().contains("x-api-key") || head.contains(KEY)
}

#[tokio::test]
async fn a_redirect_to_another_origin_fails_naming_both_and_sends_it_nothing() {
    let (other, other_seen) = listen(|_| no_locks()).await;
    let target = format!("http://{other}/v1/locks/");
    let (origin, origin_seen) = {
        let target = target.clone();
        listen(move |_| redirect_to(&target)).await
    };

    let err = bounded(client(origin).list()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Redirected { .. }), "{text}");
    assert!(
        text.contains(&format!("http://{origin}/v1/locks redirected to ")),
        "names where the redirect came from: {text}"
    );
    assert!(
        text.contains(&format!(" to http://{other}/v1/locks, ")),
        "names where it led: {text}"
    );
    assert!(!text.contains(KEY), "shows the key: {text}");
    assert!(
        carries_key(&origin_seen.lock().unwrap()[0]),
        "the server's own origin gets the key"
    );
    let got = other_seen.lock().unwrap().clone();
    assert!(got.is_empty(), "the other origin received: {got:?}");

    // Not retried either: one request reached the redirecting server.
    assert_eq!(origin_seen.lock().unwrap().len(), 1);
}

/// The same port under another host name is another origin too.
#[tokio::test]
async fn a_redirect_to_another_host_name_of_the_same_port_is_refused() {
    // Its own port, reached by another name (known once it is bound).
    let port = Arc::new(std::sync::OnceLock::<u16>::new());
    let (addr, seen) = {
        let port = port.clone();
        listen(move |path| redirect_to(&format!("http://localhost:{}{path}", port.get().unwrap())))
            .await
    };
    port.set(addr.port()).unwrap();
    let err = bounded(client(addr).list()).await.unwrap_err();
    assert!(matches!(err, Error::Redirected { .. }), "{err}");
    // Only the first request arrived: the one to `localhost` was never sent.
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed_with_the_key() {
    // `/moved/...` is redirected to the same path without `/moved`.
    let (addr, seen) = listen(|path| match path.strip_prefix("/moved") {
        Some(rest) => redirect_to(rest),
        None => no_locks(),
    })
    .await;
    let c = Client::builder(format!("http://{addr}/moved"))
        .api_key(KEY)
        .build()
        .unwrap();
    let locks = bounded(c.list()).await.expect("followed within the origin");
    assert!(locks.is_empty());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].starts_with("GET /v1/locks/ "), "{seen:?}");
    assert!(carries_key(&seen[1]), "the key goes along: {seen:?}");
}
