//! `cargo relukko-bench --server`: what strangers and crowds of WebSocket
//! clients cost the server (issue 24's probe, as figures).
//!
//! The server runs in a child process (this binary in a hidden mode), so its
//! memory can be read from `/proc` apart from the clients'. Three figures:
//! - creates with N idle WebSocket clients connected against none (the same
//!   number of sequential creates over one kept-alive connection);
//! - the server's memory per idle WebSocket client;
//! - the answer time of a keyed `GET /v1/locks/` while a flood of unfinished
//!   requests without a key holds more connections than the server has open
//!   files (the child runs with an open-files limit of 1024, soft and hard).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The first argument of the hidden server mode.
pub const SERVER: &str = "__relukko_bench_server";
const KEY: &str = "bench-key-0123456789abcdef";
const STEP: Duration = Duration::from_secs(20);

/// The hidden mode: a server on 127.0.0.1 with `files` as its open-files
/// limit (0: as inherited), printing `listening ADDR`, until stdin closes.
pub fn serve_child(files: u64) -> Result<(), String> {
    #[cfg(unix)]
    if files > 0 {
        let limit = libc::rlimit {
            rlim_cur: files as libc::rlim_t,
            rlim_max: files as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "listening {}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let stop = async {
            // Until the parent closes our stdin (or dies).
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = String::new();
                let _ = std::io::stdin().read_line(&mut sink);
            })
            .await;
        };
        relukko_server::serve(listener, relukko_server::ServerConfig::new(KEY), stop)
            .await
            .map_err(|e| e.to_string())
    })
}

struct ServerChild {
    child: Child,
    addr: SocketAddr,
}

impl ServerChild {
    fn start(files: u64) -> Result<ServerChild, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args([SERVER, &files.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("unexpected line from the server child: {line:?}"))?;
        Ok(ServerChild { child, addr })
    }

    /// Resident memory in KiB.
    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a kept-alive connection; the status code.
fn keep_alive_request(sock: &mut BufReader<TcpStream>, request: &[u8]) -> Result<u16, String> {
    sock.get_mut()
        .write_all(request)
        .map_err(|e| e.to_string())?;
    let mut status = 0;
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if sock.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("the server closed the connection".into());
        }
        let l = line.trim_end();
        if status == 0 {
            status = l
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        } else if l.is_empty() {
            break;
        } else if let Some((name, value)) = l.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    sock.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(status)
}

/// `count` sequential creates of fresh names over one connection.
fn creates(addr: SocketAddr, tag: &str, count: usize) -> Result<Duration, String> {
    let sock = TcpStream::connect_timeout(&addr, STEP).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(STEP))
        .map_err(|e| e.to_string())?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut sock = BufReader::new(sock);
    let started = Instant::now();
    for i in 0..count {
        let body = format!("{{\"lock_name\":\"bench-{tag}-{i}\",\"creator\":\"relukko-bench\"}}");
        let request = format!(
            "POST /v1/locks/ HTTP/1.1\r\nHost: bench\r\nX-API-Key: {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let status = keep_alive_request(&mut sock, request.as_bytes())?;
        if status != 201 {
            return Err(format!("create {i}: HTTP {status}"));
        }
    }
    Ok(started.elapsed())
}

/// A WebSocket client that completes its upgrade and then only sits there.
fn idle_websocket(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut sock = TcpStream::connect_timeout(&addr, STEP).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(STEP))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET /ws/broadcast HTTP/1.1\r\nHost: bench\r\nX-API-Key: {KEY}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    sock.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if sock.read(&mut byte).map_err(|e| e.to_string())? == 0 {
            return Err("closed during the upgrade".into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "upgrade refused: {}",
            String::from_utf8_lossy(&head)
        ));
    }
    Ok(sock)
}

/// The figures; `quick` uses 500 clients instead of 1500.
pub fn run(quick: bool) -> Result<Value, String> {
    let clients = if quick { 500 } else { 1500 };
    let creates_n = if quick { 100 } else { 300 };

    let server = ServerChild::start(0)?;
    creates(server.addr, "warm", 20)?;
    let alone = creates(server.addr, "alone", creates_n)?;
    let rss_before = server.rss_kib();
    eprint!("relukko-bench: connecting {clients} idle WebSocket clients ... ");
    let sockets = (0..clients)
        .map(|_| idle_websocket(server.addr))
        .collect::<Result<Vec<_>, _>>()?;
    eprintln!("done");
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = server.rss_kib();
    let crowded = creates(server.addr, "crowded", creates_n)?;
    drop(sockets);
    drop(server);

    // The flood: more unfinished connections than the server has files.
    const FILES: u64 = 1024;
    const FLOOD: usize = 1100;
    let server = ServerChild::start(FILES)?;
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        if let Ok(mut sock) = TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)) {
            let _ = sock.write_all(b"GET /v1/locks/ HTTP/1.1\r\nHost: flood\r\n");
            flood.push(sock);
        }
    }
    let mut keyed_ms = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let sock = TcpStream::connect_timeout(&server.addr, STEP).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let mut sock = BufReader::new(sock);
        let request = format!("GET /v1/locks/ HTTP/1.1\r\nHost: bench\r\nX-API-Key: {KEY}\r\n\r\n");
        let status = keep_alive_request(&mut sock, request.as_bytes())
            .map_err(|e| format!("the keyed request under the flood: {e}"))?;
        if status != 200 {
            return Err(format!("the keyed request under the flood: HTTP {status}"));
        }
        keyed_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let flood_connected = flood.len();
    drop(flood);
    drop(server);

    let per_client_kib = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / clients as f64),
        _ => None,
    };
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    Ok(json!({
        "websocket_clients": clients,
        "creates": creates_n,
        "creates_ms_without_clients": ms(alone),
        "creates_ms_with_clients": ms(crowded),
        "creates_slowdown": (crowded.as_secs_f64() / alone.as_secs_f64() * 100.0).round() / 100.0,
        "creates_slowdown_target": 2.0,
        "server_rss_kib_before_clients": rss_before,
        "server_rss_kib_with_clients": rss_after,
        "server_kib_per_idle_websocket_client": per_client_kib.map(|k| (k * 10.0).round() / 10.0),
        "flood": {
            "open_files_limit": FILES,
            "unfinished_connections_without_key": flood_connected,
            "keyed_answer_ms": keyed_ms.iter().map(|m| (m * 10.0).round() / 10.0).collect::<Vec<_>>(),
        },
    }))
}

/// The figures as a few lines of text.
pub fn table(v: &Value) -> String {
    let mut t = String::new();
    t += &format!(
        "{} sequential creates: {} ms with no WebSocket client, {} ms with {} idle ones ({}x; target at most {}x)\n",
        v["creates"],
        v["creates_ms_without_clients"],
        v["creates_ms_with_clients"],
        v["websocket_clients"],
        v["creates_slowdown"],
        v["creates_slowdown_target"]
    );
    t += &format!(
        "server memory per idle WebSocket client: {} KiB ({} KiB before the clients, {} KiB with them)\n",
        v["server_kib_per_idle_websocket_client"],
        v["server_rss_kib_before_clients"],
        v["server_rss_kib_with_clients"]
    );
    t += &format!(
        "keyed GET /v1/locks/ under {} unfinished connections without a key (open files {}): answered in {} ms\n",
        v["flood"]["unfinished_connections_without_key"],
        v["flood"]["open_files_limit"],
        v["flood"]["keyed_answer_ms"]
    );
    t
}
