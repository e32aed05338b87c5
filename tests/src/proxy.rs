//! A fault-injecting TCP proxy on `127.0.0.1`, in front of a real server.
//!
//! Its [`Mode`] is read when a connection is accepted: it can forward, stall
//! (accept and never answer), drop connections, answer every request itself
//! with a fixed status and body (a stub server: 500s, junk), or forward
//! requests while throwing the answers away (an answer lost in transit). It can
//! also refuse WebSocket upgrades, as many corporate proxies do.
//!
//! It runs on a runtime of its own, so it serves whatever runtime the test
//! uses; dropping it closes the listener and every connection.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::task::{JoinHandle, JoinSet};

/// The runtime that serves the proxies (and the TLS proxy) of a test process.
pub(crate) static SUPPORT: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("e2e-support")
        .enable_all()
        .build()
        .expect("cannot start the support runtime")
});

/// What the proxy does with a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Pass bytes both ways.
    Forward,
    /// Pass bytes both ways without reading a request head first (for a
    /// client that does not speak plain HTTP, such as a TLS handshake).
    Raw,
    /// Accept, read, never answer.
    Stall,
    /// Accept and close at once.
    Drop,
    /// Answer every request with this status and body, then close.
    Reply(u16, String),
    /// Forward the request, throw the answer away, never answer.
    LoseAnswers,
    /// Forward, after holding the first request this long.
    Delay(std::time::Duration),
    /// One request per connection (the proxy adds `connection: close`): the
    /// first `count` requests whose method is `method` get `fault`, every
    /// other request is forwarded.
    Pick {
        /// `"POST"`, `"DELETE"`, ...
        method: &'static str,
        /// How many of them get the fault (counted over the proxy's life).
        count: usize,
        /// What they get.
        fault: Fault,
    },
}

/// What a picked request gets (see [`Mode::Pick`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded at once; its answer is thrown away (never answered).
    LoseAnswer,
    /// Held this long, then forwarded in full even though the client may
    /// have given up on it long before (a request stuck in a slow network,
    /// applied late); its answer goes back if anyone still listens.
    Late(std::time::Duration),
    /// Held until [`Proxy::release_held`], then forwarded in full (as
    /// `Late`, at a moment the test chooses).
    Hold,
}

#[derive(Debug)]
struct Ctl {
    mode: Mutex<Mode>,
    block_ws: AtomicBool,
    accepted: AtomicUsize,
    replied: AtomicUsize,
    lost: AtomicUsize,
    open: AtomicUsize,
    /// Bumped by [`Proxy::cut`]: every open connection ends.
    cut: tokio::sync::watch::Sender<u64>,
    /// Requests picked for a fault so far ([`Mode::Pick`]).
    picked: AtomicUsize,
    /// Picked requests the server has answered (it applied them).
    picked_applied: AtomicUsize,
    /// Opened by [`Proxy::release_held`].
    gate: tokio::sync::watch::Sender<bool>,
}

/// The proxy; see the module docs.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    ctl: Arc<Ctl>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy in `mode` in front of `upstream`.
    pub fn start(upstream: SocketAddr, mode: Mode) -> Proxy {
        let std_listener =
            std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = std_listener.local_addr().expect("proxy address");
        let ctl = Arc::new(Ctl {
            mode: Mutex::new(mode),
            block_ws: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            replied: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            cut: tokio::sync::watch::channel(0).0,
            picked: AtomicUsize::new(0),
            picked_applied: AtomicUsize::new(0),
            gate: tokio::sync::watch::channel(false).0,
        });
        let task_ctl = Arc::clone(&ctl);
        let task = SUPPORT.spawn(async move {
            let listener = TcpListener::from_std(std_listener).expect("tokio listener");
            // Dropped with this task (on abort): that aborts every connection.
            let mut conns = JoinSet::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                task_ctl.accepted.fetch_add(1, Ordering::Relaxed);
                let mode = task_ctl.mode.lock().unwrap().clone();
                let mut cut = task_ctl.cut.subscribe();
                let conn = handle(sock, upstream, mode, Arc::clone(&task_ctl));
                let ctl = Arc::clone(&task_ctl);
                ctl.open.fetch_add(1, Ordering::Relaxed);
                conns.spawn(async move {
                    tokio::select! {
                        _ = conn => {}
                        _ = cut.changed() => {}
                    }
                    ctl.open.fetch_sub(1, Ordering::Relaxed);
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Proxy { addr, ctl, task }
    }

    /// A stub server: no upstream, every request answered with `status` and `body`.
    pub fn stub(status: u16, body: &str) -> Proxy {
        // Port 9 (discard) is never connected to in Reply mode.
        Proxy::start(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
            Mode::Reply(status, body.to_owned()),
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what new connections get.
    pub fn set_mode(&self, mode: Mode) {
        *self.ctl.mode.lock().unwrap() = mode;
    }

    /// Refuses (with 403) connections whose first request is a WebSocket upgrade.
    pub fn block_websocket(&self, block: bool) {
        self.ctl.block_ws.store(block, Ordering::Relaxed);
    }

    /// Ends every open connection (WebSockets included), as a network blip would.
    pub fn cut(&self) {
        self.ctl.cut.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.ctl.accepted.load(Ordering::Relaxed)
    }

    /// Connections open right now.
    pub fn open(&self) -> usize {
        self.ctl.open.load(Ordering::Relaxed)
    }

    /// Requests answered by the proxy itself (`Reply` mode, blocked upgrades).
    pub fn replied(&self) -> usize {
        self.ctl.replied.load(Ordering::Relaxed)
    }

    /// Lets the requests held by [`Fault::Hold`] go on to the server.
    pub fn release_held(&self) {
        self.ctl.gate.send_replace(true);
    }

    /// Requests that got the fault of [`Mode::Pick`] so far.
    pub fn picked(&self) -> usize {
        self.ctl.picked.load(Ordering::Relaxed)
    }

    /// Picked requests that reached the server and were answered by it
    /// (whether or not the client still listened): applied.
    pub fn picked_applied(&self) -> usize {
        self.ctl.picked_applied.load(Ordering::SeqCst)
    }

    /// Answers thrown away so far (`LoseAnswers` mode): connections whose
    /// request reached the server and whose answer the client never saw.
    pub fn lost(&self) -> usize {
        self.ctl.lost.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads up to the end of the first request head (`\r\n\r\n`), at most 64 KiB.
async fn read_head(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

fn is_upgrade(head: &[u8]) -> bool {
    String::from_utf8_lossy(head)
        .to_ascii_lowercase()
        .contains("upgrade: websocket")
}

/// Reads the rest of a request body announced by `content-length`, so the
/// client has finished sending before the answer comes.
async fn drain_body(sock: &mut TcpStream, head: &[u8]) {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let Some(end) = text.find("\r\n\r\n") else {
        return;
    };
    let len: usize = text[..end]
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut have = head.len() - (end + 4);
    let mut chunk = [0u8; 4096];
    while have < len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}

async fn reply(sock: &mut TcpStream, status: u16, body: &str) {
    let answer = format!(
        "HTTP/1.1 {status} Stub\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(answer.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// The whole first request (head and `content-length` body), with
/// `connection: close` added so the server ends the connection after it.
async fn read_request(sock: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = read_head(sock).await?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len: usize = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut chunk = [0u8; 4096];
    while buf.len() < end + 4 + len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    buf.splice(
        line_end + 2..line_end + 2,
        b"connection: close\r\n".iter().copied(),
    );
    Some(buf)
}

/// [`Mode::Pick`] for one connection.
async fn pick(
    mut sock: TcpStream,
    upstream: SocketAddr,
    method: &str,
    count: usize,
    fault: Fault,
    ctl: Arc<Ctl>,
) {
    let Some(request) = read_request(&mut sock).await else {
        return;
    };
    let picked = request.starts_with(format!("{method} ").as_bytes())
        && ctl
            .picked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < count).then_some(n + 1)
            })
            .is_ok();
    if picked && let Fault::Late(d) = fault {
        tokio::time::sleep(d).await;
    }
    if picked && fault == Fault::Hold {
        let mut gate = ctl.gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
    }
    let Ok(mut up) = TcpStream::connect(upstream).await else {
        return;
    };
    if up.write_all(&request).await.is_err() {
        return;
    }
    let mut answer = Vec::new();
    // The server closes after its answer (`connection: close`).
    let _ = up.read_to_end(&mut answer).await;
    if picked && !answer.is_empty() {
        ctl.picked_applied.fetch_add(1, Ordering::SeqCst);
    }
    if !(picked && fault == Fault::LoseAnswer) {
        let _ = sock.write_all(&answer).await;
        let _ = sock.shutdown().await;
    } else {
        // Never answered: hold the connection until the client gives up.
        let mut sink = [0u8; 1024];
        while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}

async fn handle(mut sock: TcpStream, upstream: SocketAddr, mode: Mode, ctl: Arc<Ctl>) {
    match mode {
        Mode::Pick {
            method,
            count,
            fault,
        } => pick(sock, upstream, method, count, fault, ctl).await,
        Mode::Drop => drop(sock),
        Mode::Raw => {
            if let Ok(mut up) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut sock, &mut up).await;
            }
        }
        Mode::Stall => {
            let mut sink = [0u8; 4096];
            while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
            // The client closed; keep nothing open.
        }
        Mode::Reply(status, body) => {
            let Some(head) = read_head(&mut sock).await else {
                return;
            };
            drain_body(&mut sock, &head).await;
            ctl.replied.fetch_add(1, Ordering::Relaxed);
            reply(&mut sock, status, &body).await;
        }
        Mode::Forward | Mode::LoseAnswers | Mode::Delay(_) => {
            let Some(head) = read_head(&mut sock).await else {
                return;
            };
            if let Mode::Delay(d) = mode {
                tokio::time::sleep(d).await;
            }
            if ctl.block_ws.load(Ordering::Relaxed) && is_upgrade(&head) {
                ctl.replied.fetch_add(1, Ordering::Relaxed);
                return reply(
                    &mut sock,
                    403,
                    r#"{"status":403,"message":"no WebSockets here"}"#,
                )
                .await;
            }
            let Ok(mut up) = TcpStream::connect(upstream).await else {
                return;
            };
            if up.write_all(&head).await.is_err() {
                return;
            }
            if mode != Mode::LoseAnswers {
                let _ = tokio::io::copy_bidirectional(&mut sock, &mut up).await;
            } else {
                let (mut up_read, mut up_write) = up.into_split();
                let (mut read, _write) = sock.split();
                let to_server = tokio::io::copy(&mut read, &mut up_write);
                let lost = async {
                    let mut chunk = [0u8; 4096];
                    let mut counted = false;
                    while let Ok(1..) = up_read.read(&mut chunk).await {
                        if !counted {
                            ctl.lost.fetch_add(1, Ordering::Relaxed);
                            counted = true;
                        }
                    }
                };
                let _ = tokio::join!(to_server, lost);
            }
        }
    }
}
