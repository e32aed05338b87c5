//! The connection layer: accepting connections, the time each may take, and
//! how many are served at once.
//!
//! A server faces strangers, and a stranger without a key must not be able to
//! stall it. hyper alone would keep a connection open for as long as its peer
//! likes (axum's `serve` gives hyper no timer, so not even hyper's header
//! timeout runs), and a flood of unfinished requests would use up the open
//! files until a keyed request found no room. So each connection here is in
//! one of four phases, each with its own deadline:
//!
//! | phase | deadline |
//! | --- | --- |
//! | `FRESH`: connected, no request yet | head timeout from connecting |
//! | `HEAD`: bytes of a request head are arriving | head timeout from its first byte (or from connecting) |
//! | `BUSY`: a request is being answered | none here; its body has the body timeout (`reply::read_whole_body`) |
//! | `IDLE`: kept alive between requests | idle timeout from the last answer |
//!
//! and at most [`Limits::max_connections`] connections are served at once: at
//! the cap, a new connection closes the oldest one that is not `BUSY`,
//! preferring one that never finished a head over an idle one. A flood of
//! unfinished connections then pushes out only its own oldest members, and a
//! client that sends its request right after connecting (as every real client
//! does) gets an answer.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower_service::Service;

use super::config::Limits;

/// Open files the server keeps for itself beyond its connections: the
/// listener, the database, logs, the runtime's own.
const RESERVED_FILES: u64 = 64;

const FRESH: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const IDLE: u8 = 3;

/// The limits as the process's open-files limit allows them: connections and
/// WebSocket clients together stay below it, so the server never runs out of
/// files for a new connection (the cap decides who goes instead).
pub(crate) fn within_open_files(mut limits: Limits) -> Limits {
    let Some(files) = open_files_limit() else {
        return limits;
    };
    let budget = usize::try_from(files.saturating_sub(RESERVED_FILES))
        .unwrap_or(usize::MAX)
        .max(2);
    if limits.max_connections.saturating_add(limits.max_websockets) > budget {
        // Half for each, unless one asks for less than its half.
        let websockets = limits.max_websockets.min(budget / 2);
        let connections = limits.max_connections.min(budget - websockets).max(1);
        let websockets = limits.max_websockets.min(budget - connections);
        tracing::warn!(
            target: "relukko::server",
            "the open-files limit ({files}) allows {connections} connections and {websockets} \
             WebSocket clients (asked: {} and {}); raise `ulimit -n` (LimitNOFILE= in a systemd unit)",
            limits.max_connections,
            limits.max_websockets
        );
        limits.max_connections = connections;
        limits.max_websockets = websockets;
    }
    limits
}

/// The soft limit of open files, if the platform has one.
#[cfg(unix)]
fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<u64> {
    None
}

/// Raises the soft limit of open files to the hard limit, as a server that
/// may hold thousands of connections should (systemd's default soft limit
/// is 1024). Returns the limits before and after when it changed them.
#[cfg(unix)]
pub(crate) fn raise_open_files_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur >= limit.rlim_max {
        return None;
    }
    let before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the struct we own; raising the soft limit up to
    // the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return None;
    }
    Some((before, limit.rlim_max))
}

#[cfg(not(unix))]
pub(crate) fn raise_open_files_limit() -> Option<(u64, u64)> {
    None
}

/// One connection as the watchdog and the cap see it.
#[derive(Debug)]
struct Conn {
    phase: AtomicU8,
    /// When the phase's clock started, in nanoseconds since [`Connections::epoch`].
    since: AtomicU64,
    /// Set when the cap chose this connection to make room.
    evicted: AtomicBool,
    /// Wakes the watchdog on a change of phase or an eviction.
    changed: Notify,
}

impl Conn {
    fn enter(&self, phase: u8, now_ns: u64) {
        self.since.store(now_ns, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
        self.changed.notify_one();
    }

    /// Bytes arrived: between requests, that starts a head and its clock.
    /// (On a fresh connection the head's clock already runs from connecting.)
    fn bytes_arrived(&self, now_ns: u64) {
        if self.phase.load(Ordering::Relaxed) == IDLE
            && self
                .phase
                .compare_exchange(IDLE, HEAD, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.since.store(now_ns, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }
}

/// The connections being served, oldest first.
#[derive(Debug)]
struct Connections {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// How many are open; a shutdown waits for it to reach zero.
    count: watch::Sender<usize>,
    limits: Limits,
}

impl Connections {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn at(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    /// Registers a new connection, closing another first if the cap is
    /// reached. `None`: every open connection is answering a request, so the
    /// new one is refused (dropped) rather than going over the cap.
    fn admit(&self) -> Option<(u64, Arc<Conn>)> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= self.limits.max_connections {
            let victim = oldest_in(&open, &[FRESH, HEAD]).or_else(|| oldest_in(&open, &[IDLE]))?;
            if let Some(conn) = open.remove(&victim) {
                conn.evicted.store(true, Ordering::Release);
                conn.changed.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(FRESH),
            since: AtomicU64::new(self.now_ns()),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        });
        open.insert(id, conn.clone());
        self.count.send_replace(open.len());
        Some((id, conn))
    }

    fn forget(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.remove(&id);
        self.count.send_replace(open.len());
    }

    /// When `conn` must be closed, if its phase has a deadline.
    fn deadline(&self, conn: &Conn) -> Option<Instant> {
        let since = self.at(conn.since.load(Ordering::Relaxed));
        match conn.phase.load(Ordering::Acquire) {
            FRESH | HEAD => Some(since + self.limits.head_timeout),
            IDLE => Some(since + self.limits.idle_timeout),
            _ => None,
        }
    }
}

/// The oldest connection in one of `phases`.
fn oldest_in(open: &BTreeMap<u64, Arc<Conn>>, phases: &[u8]) -> Option<u64> {
    open.iter()
        .find(|(_, conn)| phases.contains(&conn.phase.load(Ordering::Acquire)))
        .map(|(id, _)| *id)
}

/// Unregisters a connection when its task ends, however it ends.
struct Registered<'a> {
    connections: &'a Connections,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.connections.forget(self.id);
    }
}

/// Accepts connections on `listener` and serves `router` on each until `stop`
/// turns true; then asks each open connection to finish its request and
/// close, and returns once all have or `graceful` has passed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    graceful: Duration,
) -> io::Result<()> {
    let connections = Arc::new(Connections {
        epoch: Instant::now(),
        next_id: AtomicU64::new(0),
        open: Mutex::new(BTreeMap::new()),
        count: watch::Sender::new(0),
        limits,
    });
    let mut full_warned = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of files (or another resource): wait a moment rather
                // than spin; the cap normally keeps this from happening.
                tracing::warn!(target: "relukko::server", "cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some((id, conn)) = connections.admit() else {
            if !full_warned {
                full_warned = true;
                tracing::warn!(
                    target: "relukko::server",
                    "{} connections are all answering requests; refusing new ones until one is done",
                    limits.max_connections
                );
            }
            drop(stream);
            continue;
        };
        full_warned = false;
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_one(
            connections.clone(),
            id,
            conn,
            stream,
            remote,
            router.clone(),
            stop.clone(),
        ));
    }
    drop(listener);
    let mut count = connections.count.subscribe();
    let all_closed = count.wait_for(|open| *open == 0);
    if tokio::time::timeout(graceful, all_closed).await.is_err() {
        tracing::warn!(target: "relukko::server", "requests still open after {graceful:?}; cutting them");
    }
    Ok(())
}

/// Errors of one connection that leave the listener fine.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn serve_one(
    connections: Arc<Connections>,
    id: u64,
    conn: Arc<Conn>,
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let _registered = Registered {
        connections: &connections,
        id,
    };
    let io = Watched {
        io: stream,
        conn: conn.clone(),
        connections: connections.clone(),
    };
    let service = {
        let conn = conn.clone();
        let connections = connections.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            conn.enter(BUSY, connections.now_ns());
            req.extensions_mut().insert(ConnectInfo(remote));
            let answering = Answering {
                conn: conn.clone(),
                connections: connections.clone(),
            };
            let mut router = router.clone();
            let answer = router.call(req.map(Body::new));
            async move {
                let answer = answer.await;
                drop(answering);
                answer
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // Our own watchdog below times heads; hyper's would need a timer.
    http.keep_alive(true);
    let mut served = pin!(
        http.serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    let mut stopping = false;
    loop {
        if conn.evicted.load(Ordering::Acquire) {
            tracing::debug!(target: "relukko::server", "closing a connection from {remote} to make room");
            return;
        }
        let deadline = connections.deadline(&conn);
        let wake = pin!(conn.changed.notified());
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = served.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(target: "relukko::server", "connection from {remote}: {e}");
                }
                return;
            }
            () = timer => {
                // The phase may have changed since the deadline was taken.
                if connections.deadline(&conn).is_some_and(|at| at <= Instant::now()) {
                    tracing::debug!(target: "relukko::server", "closing a connection from {remote}: too slow or idle too long");
                    return;
                }
            }
            () = wake => {}
            _ = stop.wait_for(|stopped| *stopped), if !stopping => {
                stopping = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Marks the connection idle once its answer is ready, however the
/// answering ends.
struct Answering {
    conn: Arc<Conn>,
    connections: Arc<Connections>,
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.conn.enter(IDLE, self.connections.now_ns());
    }
}

/// The connection's socket, telling its [`Conn`] when bytes arrive.
struct Watched {
    io: TcpStream,
    conn: Arc<Conn>,
    connections: Arc<Connections>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = self.connections.now_ns();
            self.conn.bytes_arrived(now);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(connections: usize, websockets: usize) -> Limits {
        Limits {
            max_connections: connections,
            max_websockets: websockets,
            ..Limits::default()
        }
    }

    fn registry(max: usize) -> Connections {
        Connections {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            count: watch::Sender::new(0),
            limits: limits(max, 0),
        }
    }

    #[test]
    fn at_the_cap_the_oldest_unfinished_connection_makes_room_before_an_idle_one() {
        let connections = registry(3);
        let (_, idle) = connections.admit().unwrap();
        idle.enter(IDLE, 0);
        let (_, busy) = connections.admit().unwrap();
        busy.enter(BUSY, 0);
        let (_, unfinished) = connections.admit().unwrap();
        let (_, newest) = connections.admit().unwrap();
        assert!(unfinished.evicted.load(Ordering::Acquire));
        assert!(!idle.evicted.load(Ordering::Acquire));
        assert!(!busy.evicted.load(Ordering::Acquire));
        // Next the idle one; never the busy one.
        newest.enter(BUSY, 0);
        connections.admit().unwrap();
        assert!(idle.evicted.load(Ordering::Acquire));
        assert_eq!(*connections.count.borrow(), 3);
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let connections = registry(2);
        for _ in 0..2 {
            connections.admit().unwrap().1.enter(BUSY, 0);
        }
        assert!(connections.admit().is_none());
        assert_eq!(*connections.count.borrow(), 2);
    }

    #[test]
    fn a_head_starting_between_requests_restarts_the_head_clock() {
        let connections = registry(1);
        let (_, conn) = connections.admit().unwrap();
        conn.enter(IDLE, 5);
        conn.bytes_arrived(7);
        assert_eq!(conn.phase.load(Ordering::Acquire), HEAD);
        assert_eq!(conn.since.load(Ordering::Relaxed), 7);
        // While answering, bytes (a body) change nothing.
        conn.enter(BUSY, 9);
        conn.bytes_arrived(11);
        assert_eq!(conn.phase.load(Ordering::Acquire), BUSY);
        assert_eq!(connections.deadline(&conn), None);
    }

    #[test]
    fn the_open_files_limit_splits_between_connections_and_websockets() {
        // Nothing to change when both fit.
        let fits = within_open_files(limits(10, 10));
        assert_eq!((fits.max_connections, fits.max_websockets), (10, 10));
        if let Some(files) = open_files_limit() {
            let budget = usize::try_from(files - RESERVED_FILES).unwrap();
            let split = within_open_files(limits(usize::MAX / 4, usize::MAX / 4));
            assert_eq!(split.max_connections + split.max_websockets, budget);
            let few_sockets = within_open_files(limits(usize::MAX / 4, 3));
            assert_eq!(few_sockets.max_websockets, 3);
            assert_eq!(few_sockets.max_connections, budget - 3);
        }
    }
}
