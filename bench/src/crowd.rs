//! A crowd of waiting processes on one name of our server: the requests an
//! idle waiter sends, and the chain of handoffs once the name is released.
//!
//! The bench holds the name, starts N children (`child::WAITER`, each a
//! process set up from its environment as a test process is), lets them
//! settle, optionally counts the requests the server answers over a window
//! (the idle load), then releases: every child takes the name in turn and
//! lets it go at once. A handoff is the time from one release to the next
//! acquisition (each child notes both on the machine's one clock).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use relukko::LockOptions;
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_server::TestServer;

use crate::budget::Budget;
use crate::child::{self, WAITER, now_nanos};
use crate::remote;

/// How long a waiter of a crowd may wait: far more than any chain needs, so
/// one that gives up is a finding.
const WAITER_TIMEOUT: Duration = Duration::from_secs(90);

/// What one crowd found.
#[derive(Debug, Default)]
pub struct Crowd {
    /// Waiting processes.
    pub waiters: usize,
    /// Whether their WebSocket upgrades were refused (by a proxy in front of
    /// the server), so they could only poll.
    pub ws_blocked: bool,
    /// The idle load, if a window was counted.
    pub idle: Option<Idle>,
    /// Release to next acquisition, one per waiter that got the name.
    pub handoffs: Vec<Duration>,
    /// Requests the server answered from the first release until the last
    /// waiter was done (its own release included).
    pub requests: u64,
    /// Waiters whose wait ended without the lock.
    pub gave_up: usize,
    /// Acquisitions before the previous holder's release.
    pub overlaps: usize,
    pub errors: Vec<String>,
}

/// Requests the server answered while N processes waited for a held name.
#[derive(Debug, Default, Clone, Copy)]
pub struct Idle {
    pub window_s: f64,
    /// Answered by the server (everything but `/metrics`).
    pub requests: u64,
    /// WebSocket upgrades refused by the proxy (never reach the server).
    pub refused_upgrades: u64,
}

impl Crowd {
    /// Server requests per second per waiter over the idle window.
    pub fn idle_rate(&self) -> Option<f64> {
        let i = self.idle?;
        (i.window_s > 0.0 && self.waiters > 0)
            .then(|| i.requests as f64 / i.window_s / self.waiters as f64)
    }

    /// Refused upgrades per second per waiter over the idle window.
    pub fn refused_rate(&self) -> Option<f64> {
        let i = self.idle?;
        (i.window_s > 0.0 && self.waiters > 0)
            .then(|| i.refused_upgrades as f64 / i.window_s / self.waiters as f64)
    }

    pub fn requests_per_handoff(&self) -> f64 {
        if self.handoffs.is_empty() {
            0.0
        } else {
            self.requests as f64 / self.handoffs.len() as f64
        }
    }
}

/// Runs one crowd of `n` waiting processes; counts the idle load over
/// `window` when given.
pub async fn run(
    server: &TestServer,
    n: usize,
    ws_blocked: bool,
    window: Option<Duration>,
    budget: &Budget,
) -> Result<Crowd, String> {
    let name = format!("bench-crowd-{n}-{}", if ws_blocked { "poll" } else { "ws" });
    let holder = remote::locker(server, false)?;
    let held = holder
        .lock(LockOptions::new(&name).timeout(Duration::from_secs(20)))
        .await
        .map_err(|e| e.to_string())?;
    let proxy = ws_blocked.then(|| {
        let p = Proxy::start(server.addr(), Mode::Forward);
        p.block_websocket(true);
        p
    });
    let url = proxy
        .as_ref()
        .map_or_else(|| server.base_url().to_owned(), Proxy::base_url);
    let mut crowd = Crowd {
        waiters: n,
        ws_blocked,
        ..Crowd::default()
    };
    let timeout_ms = WAITER_TIMEOUT.as_millis().to_string();
    let mut children: Vec<(Child, BufReader<ChildStdout>)> = Vec::with_capacity(n);
    for _ in 0..n {
        let mut cmd = child::command(
            &[WAITER, &name, &timeout_ms],
            &[("RELUKKO_URL", &url), ("RELUKKO_API_KEY", server.api_key())],
        )?;
        // Each would print its waiting lines; what counts comes on stdout.
        cmd.stderr(Stdio::null());
        match cmd.spawn() {
            Ok(mut c) => {
                let out = c.stdout.take().ok_or("no stdout of a waiter")?;
                children.push((c, BufReader::new(out)));
            }
            Err(e) => {
                crowd
                    .errors
                    .push(format!("started {} of {n} waiters: {e}", children.len()));
                break;
            }
        }
    }
    crowd.waiters = children.len();
    let outcome = drive(server, proxy.as_ref(), held, &mut children, window, budget).await;
    // Whatever happened: no child outlives its crowd.
    for (c, _) in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    match outcome {
        Ok((idle, t0, requests)) => {
            crowd.idle = idle;
            crowd.requests = requests;
            chain(&mut crowd, t0, &mut children);
        }
        Err(e) => crowd.errors.push(e),
    }
    Ok(crowd)
}

/// Settles the crowd, counts the idle window, releases and waits for every
/// waiter to be done. Answers the idle figures, the release time and the
/// requests of the chain.
async fn drive(
    server: &TestServer,
    proxy: Option<&Proxy>,
    held: relukko::Lease,
    children: &mut [(Child, BufReader<ChildStdout>)],
    window: Option<Duration>,
    budget: &Budget,
) -> Result<(Option<Idle>, u128, u64), String> {
    let n = children.len();
    for (_, out) in children.iter_mut() {
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim() != "waiting" {
            return Err(format!("a waiter said {line:?}, expected \"waiting\""));
        }
    }
    // Every waiter has tried its WebSocket (up: connected; blocked: refused)
    // before the window opens; then three seconds more so what starts every
    // wait is behind them: the first quick polls, and the holder lookup of
    // the first progress report (2 s into a wait). The window counts what a
    // long wait costs per second.
    let settle = Instant::now() + Duration::from_secs(30).min(budget.left());
    loop {
        let tried = match proxy {
            Some(p) => p.replied(),
            None => metric(server, "relukko_websocket_clients{path=\"/ws/broadcast\"}")? as usize,
        };
        if tried >= n || Instant::now() >= settle {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    let idle = match window {
        Some(w) => {
            let (r0, u0) = (requests(server)?, proxy.map_or(0, Proxy::replied));
            let start = Instant::now();
            std::thread::sleep(w.min(budget.left()));
            let window_s = start.elapsed().as_secs_f64();
            let (r1, u1) = (requests(server)?, proxy.map_or(0, Proxy::replied));
            Some(Idle {
                window_s,
                requests: r1.saturating_sub(r0),
                refused_upgrades: (u1 - u0) as u64,
            })
        }
        None => None,
    };
    let r0 = requests(server)?;
    let t0 = now_nanos();
    held.release().await.map_err(|e| e.to_string())?;
    // Polling alone, a waiter finds the name free within about a poll period.
    let bound = Instant::now()
        + (Duration::from_secs(10) + Duration::from_secs(2) * n as u32)
            .min(budget.left().max(Duration::from_secs(5)));
    for (c, _) in children.iter_mut() {
        loop {
            match c.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < bound => std::thread::sleep(Duration::from_millis(5)),
                _ => return Err(format!("the crowd of {n} was not through within its bound")),
            }
        }
    }
    let r1 = requests(server)?;
    Ok((idle, t0, r1.saturating_sub(r0)))
}

/// Reads what the waiters said and orders their turns into handoffs.
fn chain(crowd: &mut Crowd, t0: u128, children: &mut [(Child, BufReader<ChildStdout>)]) {
    let mut turns: Vec<(u128, u128)> = Vec::new();
    for (_, out) in children.iter_mut() {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u128>().ok())
        };
        match (field("acquired "), field("released ")) {
            (Some(a), Some(r)) => turns.push((a, r)),
            _ if text.contains("gave_up") => crowd.gave_up += 1,
            _ => crowd
                .errors
                .push(format!("a waiter reported no turn: {:?}", text.trim())),
        }
    }
    turns.sort();
    let mut last_release = t0;
    for (acquired, released) in turns {
        if acquired < last_release {
            crowd.overlaps += 1;
        }
        crowd.handoffs.push(Duration::from_nanos(
            acquired.saturating_sub(last_release) as u64
        ));
        last_release = released;
    }
}

/// The requests the server answered so far, `/metrics` itself left out.
fn requests(server: &TestServer) -> Result<u64, String> {
    let text = scrape(server.addr(), server.api_key())?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("relukko_http_requests_total{") && !l.contains("route=\"/metrics\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum())
}

/// One value of the server's `/metrics`, by its full series name.
fn metric(server: &TestServer, series: &str) -> Result<u64, String> {
    let text = scrape(server.addr(), server.api_key())?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0))
}

/// `GET /metrics` over a plain socket (HTTP/1.0: no chunks, closed at the end).
fn scrape(addr: SocketAddr, key: &str) -> Result<String, String> {
    let fail = |e: std::io::Error| format!("cannot read the server's /metrics: {e}");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(fail)?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nhost: {addr}\r\nx-api-key: {key}\r\n\r\n"
    )
    .map_err(fail)?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(fail)?;
    if !text.starts_with("HTTP/1.0 200") && !text.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "the server's /metrics answered {:?}",
            text.lines().next().unwrap_or("")
        ));
    }
    Ok(text)
}
