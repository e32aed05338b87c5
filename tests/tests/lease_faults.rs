//! Leases on a Relukko server when the network misbehaves: answers lost in
//! transit, requests that never get an answer, a dropped `lock` future. Each
//! test has its own server (and proxy or scripted fake), so they run in
//! parallel and under nextest alike.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use relukko::{Client, LeaseState, Locker, RetryPolicy};
use relukko_e2e::proxy::{Fault, Mode, Proxy};
use relukko_e2e::setup::{rt, wait_until};
use relukko_server::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn direct(server: &TestServer) -> Client {
    Client::builder(server.base_url())
        .api_key(server.api_key())
        .websocket(false)
        .build()
        .unwrap()
}

/// A client through `proxy` with quick retries and no WebSocket.
fn through(proxy: &Proxy, server: &TestServer) -> Client {
    through_with(
        proxy,
        server,
        RetryPolicy::default().first_delay(Duration::from_millis(50)),
    )
}

/// A client through `proxy` with `retry` and no WebSocket.
fn through_with(proxy: &Proxy, server: &TestServer, retry: RetryPolicy) -> Client {
    Client::builder(proxy.base_url())
        .api_key(server.api_key())
        .websocket(false)
        .request_timeout(Duration::from_secs(1))
        .retry(retry)
        .build()
        .unwrap()
}

/// From now on the first DELETE through `proxy` reaches the server and its
/// answer is thrown away; every other request goes through.
fn lose_the_delete_answer(proxy: &Proxy) {
    proxy.set_mode(Mode::Pick {
        method: "DELETE",
        count: 1,
        fault: Fault::LoseAnswer,
    });
    // Pooled connections would carry the DELETE past the new mode.
    proxy.cut();
}

/// The release's DELETE reaches the server but its answer is lost; the retry
/// then gets 404. The lock was read back after the body ended, so that 404
/// is our own deletion, not a loss: the release succeeds and the lease ends
/// Released (it used to end Lost, failing a test that had held its lock all
/// along).
#[test]
fn release_whose_answer_is_lost_is_not_a_loss() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    let name = "faults-lost-delete-answer";
    let lease = Locker::relukko(through(&proxy, &server))
        .lease(Duration::from_secs(30))
        .lock_blocking(name)
        .unwrap();
    let watch = direct(&server);
    assert!(rt().block_on(watch.holder(name)).unwrap().is_some());

    lose_the_delete_answer(&proxy);
    let probe = lease.clone();
    let released = lease.release_blocking();
    assert_eq!(
        proxy.picked_applied(),
        1,
        "the DELETE never reached the server"
    );
    assert!(released.is_ok(), "{released:?}");
    assert_eq!(probe.state(), LeaseState::Released);
    assert!(rt().block_on(watch.holder(name)).unwrap().is_none());
}

/// The lock vanished while held (a server that restarted with its locks in
/// memory forgets them all; here it is deleted by id behind the holder's
/// back, before a heartbeat could notice) and someone else took the name.
/// The holder's release then loses its DELETE's answer, and the retry's 404
/// alone cannot tell its own deletion from a lock gone long before: the
/// holder must hear that its lock was lost, or its test goes green while
/// another held the resource. Found by `cargo relukko-torture` (seed 436005:
/// a restart during a hold, then the release's answer lost).
#[test]
fn a_lock_gone_before_a_release_whose_answer_is_lost_is_a_loss() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    let name = "faults-gone-then-lost-delete-answer";
    // A long lease: no heartbeat (every 10 s) notices the deletion first.
    let lease = Locker::relukko(through(&proxy, &server))
        .lease(Duration::from_secs(30))
        .lock_blocking(name)
        .unwrap();
    let watch = direct(&server);
    let ours = rt().block_on(watch.holder(name)).unwrap().expect("held");
    rt().block_on(watch.delete(ours.id)).unwrap();
    let other = Locker::relukko(direct(&server))
        .lease(Duration::from_secs(30))
        .timeout(Duration::ZERO)
        .lock_blocking(name)
        .expect("the name is free for someone else");

    lose_the_delete_answer(&proxy);
    let probe = lease.clone();
    let released = lease.release_blocking();
    assert!(
        matches!(released, Err(relukko::Error::LockLost { .. })),
        "{released:?}"
    );
    assert_eq!(probe.state(), LeaseState::Lost);
    // Deleted by id: the other holder's lock is untouched.
    let now = rt()
        .block_on(watch.holder(name))
        .unwrap()
        .expect("still held");
    assert_ne!(now.id, ours.id);
    other.release_blocking().unwrap();
}

/// The first keep-alive (which cuts the server's 10 minutes to the lease)
/// reaches the server but its answer is lost: the lease counts on the lease
/// from when it was sent, and its heartbeat goes on and keeps the lock (a
/// deadline already past at the start lost it at the first beat, and every
/// suite stayed green).
#[test]
fn a_first_keep_alive_whose_answer_is_lost_is_made_up_by_the_heartbeat() {
    let server = TestServer::start();
    let proxy = Proxy::start(
        server.addr(),
        Mode::Pick {
            method: "PUT",
            count: 1,
            fault: Fault::LoseAnswer,
        },
    );
    let client = through_with(&proxy, &server, RetryPolicy::never());
    let name = "faults-first-keep-alive-lost";
    // Beats every 2 s; the lock counts as ours until 5.4 s after the lost
    // keep-alive was sent.
    let lease = Locker::relukko(client)
        .lease(Duration::from_secs(6))
        .lock_blocking(name)
        .unwrap();
    assert_eq!(
        proxy.picked(),
        1,
        "the first keep-alive was not the lost one"
    );
    let watch = direct(&server);
    let first = rt().block_on(watch.holder(name)).unwrap().expect("held");
    wait_until(
        "a heartbeat reaching the server",
        Duration::from_secs(30),
        || {
            let now = rt().block_on(watch.holder(name)).unwrap().expect("held");
            now.updated_at != first.updated_at || lease.state() == LeaseState::Lost
        },
    );
    assert_eq!(lease.state(), LeaseState::Held, "{:?}", lease.lost_reason());
    lease.release_blocking().unwrap();
}

/// Failing heartbeats back off (200 ms, doubling, up to half a beat) until
/// the lease runs out: a handful of tries, not a flood (a pause that halved
/// instead left every suite green).
#[test]
fn failing_heartbeats_back_off() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    let client = through_with(&proxy, &server, RetryPolicy::never());
    // Beats every 2 s; counts as held until about 5.4 s after the setup.
    let lease = Locker::relukko(client)
        .lease(Duration::from_secs(6))
        .lock_blocking("faults-heartbeat-backoff")
        .unwrap();
    proxy.set_mode(Mode::Reply(
        500,
        r#"{"status":500,"message":"down"}"#.to_owned(),
    ));
    proxy.cut();
    wait_until("the lease is lost", Duration::from_secs(30), || {
        lease.state() == LeaseState::Lost
    });
    // About six: at 2 s, then 0.2, 0.4, 0.8 and 1 s apart until 5.4 s.
    let tries = proxy.replied();
    assert!((1..=20).contains(&tries), "{tries} keep-alives tried");
    proxy.set_mode(Mode::Forward);
    proxy.cut();
    let released = lease.release_blocking();
    assert!(
        matches!(released, Err(relukko::Error::LockLost { .. })),
        "{released:?}"
    );
}

/// Heartbeats that fail for a while make the lease uncertain; once one gets
/// through again, it is held again (a lease left uncertain for good after the
/// server came back left every suite green).
#[test]
fn a_heartbeat_getting_through_again_makes_the_lease_held_again() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.addr(), Mode::Forward);
    let client = through_with(&proxy, &server, RetryPolicy::never());
    // Beats every 10 s, a failed one retried 200 ms later, doubling up to
    // 5 s; counts as held until about 27 s after the last beat that got
    // through: ample time to let them through again.
    let lease = Locker::relukko(client)
        .lease(Duration::from_secs(30))
        .lock_blocking("faults-heartbeat-recovers")
        .unwrap();
    proxy.set_mode(Mode::Reply(
        500,
        r#"{"status":500,"message":"down"}"#.to_owned(),
    ));
    proxy.cut();
    wait_until("the lease is uncertain", Duration::from_secs(30), || {
        lease.state() != LeaseState::Held
    });
    assert_eq!(
        lease.state(),
        LeaseState::Uncertain,
        "{:?}",
        lease.lost_reason()
    );
    proxy.set_mode(Mode::Forward);
    proxy.cut();
    wait_until("the lease is held again", Duration::from_secs(30), || {
        lease.state() != LeaseState::Uncertain
    });
    assert_eq!(lease.state(), LeaseState::Held, "{:?}", lease.lost_reason());
    lease.release_blocking().unwrap();
}

/// The server is gone when the holder releases through the blocking path:
/// the release cannot be done and must say so, with the failure itself (not
/// a clean release, and not a loss: the lock may still be there until it
/// expires). Throwing the failed release's error away left every suite green.
#[test]
fn a_blocking_release_that_cannot_reach_the_server_fails() {
    let server = TestServer::start();
    let name = "faults-release-unreachable";
    // A long lease: no heartbeat (every 10 s) notices the stop first.
    let lease = Locker::relukko(direct(&server))
        .lease(Duration::from_secs(30))
        .lock_blocking(name)
        .unwrap();
    server.stop();
    let probe = lease.clone();
    let released = lease.release_blocking();
    match released {
        Err(relukko::Error::LockLost { .. }) | Ok(()) => {
            panic!("the failed release must be reported: {released:?}")
        }
        Err(_) => {}
    }
    assert_ne!(probe.state(), LeaseState::Released);
}

type Script = dyn Fn(&str, &str, &str) -> Option<(u16, String)> + Send + Sync;

/// A scripted stand-in for a Relukko server: each request (`method`, `path`,
/// `body`) is answered as `script` says, or never (`None`: the connection is
/// held open unanswered). Every request is logged as `"METHOD path"`.
struct Fake {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _rt: tokio::runtime::Runtime,
}

impl Fake {
    fn start(
        script: impl Fn(&str, &str, &str) -> Option<(u16, String)> + Send + Sync + 'static,
    ) -> Fake {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let task_log = Arc::clone(&log);
        rt.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, Arc::clone(&script), Arc::clone(&task_log)));
            }
        });
        Fake { addr, log, _rt: rt }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self, request: &str) -> bool {
        self.log.lock().unwrap().iter().any(|r| r == request)
    }
}

/// Serves the requests of one keep-alive connection. A WebSocket upgrade is
/// accepted and closed at once (logged as `"WS"`), as a flaky proxy might.
async fn serve(mut sock: tokio::net::TcpStream, script: Arc<Script>, log: Arc<Mutex<Vec<String>>>) {
    let mut first = [0u8; 17];
    if sock.peek(&mut first).await.is_ok() && first.starts_with(b"GET /ws/broadcast") {
        log.lock().unwrap().push("WS".to_owned());
        if let Ok(mut ws) = tokio_tungstenite::accept_async(sock).await {
            let _ = ws.close(None).await;
        }
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let l = l.to_ascii_lowercase();
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
        buf.drain(..head_end + len);
        let mut words = head.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        log.lock().unwrap().push(format!("{method} {path}"));
        let Some((status, answer)) = script(method, path, &body) else {
            // Never answer; keep the connection until the client gives up.
            while matches!(sock.read(&mut chunk).await, Ok(n) if n > 0) {}
            return;
        };
        let text = format!(
            "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if sock.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

const FAKE_ID: &str = "950daa20-a814-451e-9407-ec496cf9c136";

/// A lock as the server answers it: created now, expiring in 10 minutes.
fn lock_json(name: &str, creator: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    serde_json::json!({
        "id": FAKE_ID,
        "lock_name": name,
        "creator": creator,
        "ip": "127.0.0.1",
        "expires_at": relukko::format_timestamp(now + time::Duration::minutes(10)),
        "created_at": relukko::format_timestamp(now),
        "updated_at": relukko::format_timestamp(now),
    })
    .to_string()
}

/// A `lock` future dropped after the server granted the lock, while the
/// lease was being set up (its first keep-alive unanswered), deletes the lock
/// instead of leaving it on the server for 10 minutes.
#[test]
fn lock_future_dropped_while_the_lease_is_set_up_leaves_no_lock() {
    let fake = Fake::start(|method, _path, body| {
        let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        match method {
            "POST" => Some((
                201,
                lock_json(
                    body["lock_name"].as_str().unwrap_or_default(),
                    body["creator"].as_str().unwrap_or_default(),
                ),
            )),
            "DELETE" => Some((200, lock_json("faults-dropped-setup", ""))),
            // Keep-alives are never answered; nothing else is expected.
            _ => None,
        }
    });
    let client = Client::builder(fake.url())
        .websocket(false)
        .build()
        .unwrap();
    let locker = Locker::relukko(client).lease(Duration::from_secs(30));
    let keep_alive = format!("PUT /v1/locks/{FAKE_ID}/keep_alive");
    rt().block_on(async {
        let locking = locker.lock("faults-dropped-setup");
        let seen = async {
            for _ in 0..1000 {
                if fake.seen(&keep_alive) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no keep-alive within 10s");
        };
        tokio::select! {
            r = locking => panic!("the lease was set up despite the unanswered keep-alive: {r:?}"),
            () = seen => {}
        }
        // Leaving the select dropped the `lock` future.
    });
    wait_until(
        "the DELETE of the abandoned lock",
        Duration::from_secs(10),
        || fake.seen(&format!("DELETE /v1/locks/{FAKE_ID}")),
    );
}

/// A create whose answer was lost, retried into a 409, then the lookup of who
/// holds the name fails: the call fails, and the lock it may have made (it
/// did) is found by its token and deleted in the background, not left on the
/// server for 10 minutes.
#[test]
fn create_that_cannot_check_its_lost_answer_cleans_up() {
    let first_creator = Arc::new(Mutex::new(None::<String>));
    let lists = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fake = {
        let first_creator = Arc::clone(&first_creator);
        let lists = Arc::clone(&lists);
        Fake::start(move |method, _path, body| {
            let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            match method {
                "POST" => {
                    let mut first = first_creator.lock().unwrap();
                    if first.is_none() {
                        // The lock is made, but the answer never comes.
                        *first = body["creator"].as_str().map(str::to_owned);
                        None
                    } else {
                        Some((409, r#"{"status":409,"message":"taken"}"#.to_owned()))
                    }
                }
                "GET" => {
                    if lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
                        return Some((500, r#"{"status":500,"message":"busy"}"#.to_owned()));
                    }
                    let creator = first_creator.lock().unwrap().clone().unwrap_or_default();
                    Some((
                        200,
                        format!("[{}]", lock_json("faults-lookup-fails", &creator)),
                    ))
                }
                "DELETE" => Some((200, lock_json("faults-lookup-fails", ""))),
                _ => None,
            }
        })
    };
    let client = Client::builder(fake.url())
        .websocket(false)
        .request_timeout(Duration::from_secs(1))
        .retry(
            RetryPolicy::default()
                .first_delay(Duration::from_millis(10))
                .max_tries(2),
        )
        .build()
        .unwrap();
    let created = rt().block_on(client.create("faults-lookup-fails", None));
    assert!(created.is_err(), "{created:?}");
    wait_until(
        "the DELETE of the lock made by the lost create",
        Duration::from_secs(10),
        || fake.seen(&format!("DELETE /v1/locks/{FAKE_ID}")),
    );
}

/// A WebSocket link that the far side closes right after the handshake must
/// not make the watcher reconnect (and wake every waiter) many times a second:
/// such a link counts as a failure for the backoff.
#[test]
fn a_websocket_closed_at_once_is_retried_with_backoff() {
    let fake = Fake::start(|method, _path, _body| match method {
        "POST" => Some((409, r#"{"status":409,"message":"taken"}"#.to_owned())),
        "GET" => Some((200, "[]".to_owned())),
        _ => None,
    });
    let client = Client::builder(fake.url())
        .poll_max(Duration::from_secs(1))
        .build()
        .unwrap();
    let waited = rt().block_on(client.acquire(
        "faults-ws-flaps",
        relukko::AcquireOptions::new().timeout(Duration::from_secs(3)),
    ));
    assert!(waited.is_err(), "{waited:?}");
    let connects = fake
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| *r == "WS")
        .count();
    // With a backoff from 100 ms doubling (half jitter) there are at most about
    // 7 in 3 s; without one, 30 or more.
    assert!(
        (1..=12).contains(&connects),
        "{connects} WebSocket connects in 3 s"
    );
}
