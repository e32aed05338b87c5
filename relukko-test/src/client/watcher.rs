//! The WebSocket watcher: one task per [`Client`](super::Client) on the
//! background runtime, listening on `/ws/broadcast` and waking the waiters of
//! a lock name when the server reports its deletion.
//!
//! It starts on the first wait, reconnects with capped backoff, wakes every
//! waiter after each (re)connect (pushes sent while it was away are lost, so
//! they re-poll) and when a link ends (they poll fast until it is back), and
//! stops when the last clone of its client is dropped. While its link is
//! [healthy](Registration::link_healthy), waiters poll only as a slow safety
//! net.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, oneshot};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::key::API_KEY_HEADER;
use super::retry::exp_cap;
use crate::error::chain;
use crate::rt::unpoisoned;

/// How often the watcher pings, and how long a silent link is trusted.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// A link that lasted this long was a good one: the backoff starts over.
/// One that ended sooner (a proxy that closes upgrades after the handshake)
/// counts as a failure, or the watcher would reconnect, and wake every
/// waiter, many times a second.
const STABLE_LINK: Duration = Duration::from_secs(10);
/// A connected link that has sent nothing (not even the answer to a ping)
/// for this long is late: its pushes may be lost, so waiters poll fast.
const LATE_AFTER: Duration = Duration::from_secs(20);

/// The handle kept by the client; dropping it stops the task.
pub(crate) struct Watcher {
    shared: Arc<Subscriptions>,
    _stop: oneshot::Sender<()>,
}

#[derive(Default)]
struct Subscriptions {
    /// name -> (waiter id -> its wake-up).
    waiters: Mutex<HashMap<String, HashMap<u64, Arc<Notify>>>>,
    next_id: AtomicU64,
    connects: AtomicU64,
    push_wakeups: AtomicU64,
    deletions: AtomicU64,
    /// Deletions pushed per name with waiters (a nameless one counts for all).
    pushed: Mutex<HashMap<String, u64>>,
    /// When the link now up last received a frame; `None` while it is down.
    heard: Mutex<Option<tokio::time::Instant>>,
}

impl Subscriptions {
    fn map(&self) -> MutexGuard<'_, HashMap<String, HashMap<u64, Arc<Notify>>>> {
        unpoisoned(&self.waiters)
    }

    fn pushed(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.pushed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self, name: &str) {
        let map = self.map();
        if let Some(ws) = map.get(name).filter(|ws| !ws.is_empty()) {
            *self.pushed().entry(name.to_owned()).or_default() += 1;
            // notify_one keeps a permit for a waiter that is busy polling.
            ws.values().for_each(|n| n.notify_one());
            self.push_wakeups.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn heard(&self) -> MutexGuard<'_, Option<tokio::time::Instant>> {
        self.heard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the link is up and was heard from lately.
    fn healthy(&self) -> bool {
        self.heard().is_some_and(|t| t.elapsed() < LATE_AFTER)
    }

    fn wake_all(&self) {
        self.map()
            .values()
            .flat_map(|ws| ws.values())
            .for_each(|n| n.notify_one());
    }

    fn on_text(&self, text: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return;
        };
        let Some(deleted) = v.get("deleted") else {
            return;
        };
        if matches!(
            deleted,
            serde_json::Value::Null | serde_json::Value::Bool(false)
        ) {
            return;
        }
        self.deletions.fetch_add(1, Ordering::Relaxed);
        match deleted.get("lock_name").and_then(|n| n.as_str()) {
            Some(name) => self.wake(name),
            // Upstream-style `{"deleted": true}`: no name, wake everyone.
            None => {
                self.pushed().values_mut().for_each(|n| *n += 1);
                self.wake_all();
            }
        }
    }
}

/// A waiter's subscription to the deletions of one name.
pub(crate) struct Registration {
    shared: Arc<Subscriptions>,
    name: String,
    id: u64,
    pub(crate) notify: Arc<Notify>,
}

impl Registration {
    /// Whether a deletion of this name would reach this waiter now: the
    /// link is up and not late (see [`LATE_AFTER`]). A waiter polls only as
    /// a slow safety net while it is, fast otherwise.
    pub(crate) fn link_healthy(&self) -> bool {
        self.shared.healthy()
    }

    /// Deletions of this name pushed so far (a wake-up after a reconnect is
    /// not one).
    pub(crate) fn deletions(&self) -> u64 {
        self.shared.pushed().get(&self.name).copied().unwrap_or(0)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.shared.map();
        if let Some(ws) = map.get_mut(&self.name) {
            ws.remove(&self.id);
            if ws.is_empty() {
                map.remove(&self.name);
                self.shared.pushed().remove(&self.name);
            }
        }
    }
}

/// What the task needs to connect; a copy, so it holds no reference to the client.
pub(crate) struct Target {
    /// The server's base URL (may carry userinfo).
    pub(crate) url: String,
    /// The base URL without userinfo, for logs.
    pub(crate) shown: String,
    /// The API key's header value, sensitive.
    pub(crate) api_key: Option<HeaderValue>,
    pub(crate) connect_timeout: Duration,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

fn ws_url(http_url: &str) -> String {
    let url = if let Some(rest) = http_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_url.to_owned()
    };
    format!("{url}/ws/broadcast")
}

impl Watcher {
    /// Starts the task for the server of `target` (its HTTP base URL).
    pub(crate) fn start(mut target: Target) -> Watcher {
        target.url = ws_url(&target.url);
        target.shown = ws_url(&target.shown);
        let shared = Arc::new(Subscriptions::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        crate::rt::spawn(run(target, Arc::clone(&shared), stop_rx));
        Watcher {
            shared,
            _stop: stop_tx,
        }
    }

    /// Subscribes to the deletions of `name` (and to the wake-ups after a reconnect).
    pub(crate) fn register(&self, name: &str) -> Registration {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        self.shared
            .map()
            .entry(name.to_owned())
            .or_default()
            .insert(id, Arc::clone(&notify));
        Registration {
            shared: Arc::clone(&self.shared),
            name: name.to_owned(),
            id,
            notify,
        }
    }

    pub(crate) fn stats(&self) -> WatchStats {
        WatchStats {
            connects: self.shared.connects.load(Ordering::Relaxed),
            push_wakeups: self.shared.push_wakeups.load(Ordering::Relaxed),
            deletions: self.shared.deletions.load(Ordering::Relaxed),
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(t: &Target) -> Result<Ws, String> {
    let mut req = t
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| chain(&e))?;
    if let Some(key) = &t.api_key {
        req.headers_mut().insert(API_KEY_HEADER, key.clone());
    }
    #[cfg(feature = "tls")]
    let fut = {
        let connector = t.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        tokio_tungstenite::connect_async_tls_with_config(req, None, true, connector)
    };
    #[cfg(not(feature = "tls"))]
    let fut = tokio_tungstenite::connect_async_with_config(req, None, true);
    match timeout(t.connect_timeout, fut).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(chain(&e)),
        Err(_) => Err(format!(
            "no WebSocket handshake within {:?}",
            t.connect_timeout
        )),
    }
}

/// Reads pushes until the link fails; answers why it ended.
async fn pump(ws: Ws, shared: &Subscriptions) -> String {
    let (mut sink, mut stream) = ws.split();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            msg = timeout(SILENCE_LIMIT, stream.next()) => {
                if let Ok(Some(Ok(_))) = &msg {
                    // Pongs count too: the link is alive and in time.
                    *shared.heard() = Some(tokio::time::Instant::now());
                }
                match msg {
                    Err(_) => return format!("silent for {SILENCE_LIMIT:?}"),
                    Ok(None) => return "closed".to_owned(),
                    Ok(Some(Err(e))) => return chain(&e),
                    Ok(Some(Ok(Message::Text(t)))) => shared.on_text(t.as_str()),
                    Ok(Some(Ok(Message::Close(_)))) => return "closed by the server".to_owned(),
                    Ok(Some(Ok(_))) => {}
                }
            }
            _ = ping.tick() => {
                if let Err(e) = sink.send(Message::Ping(Default::default())).await {
                    return chain(&e);
                }
            }
        }
    }
}

async fn run(target: Target, shared: Arc<Subscriptions>, mut stop: oneshot::Receiver<()>) {
    let mut failures = 0u32;
    loop {
        let conn = tokio::select! {
            _ = &mut stop => return,
            c = connect(&target) => c,
        };
        match conn {
            Ok(ws) => {
                shared.connects.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target: "relukko::client", url = %target.shown, "WebSocket connected");
                let since = tokio::time::Instant::now();
                *shared.heard() = Some(since);
                // Pushes sent while the link was down are lost: every
                // waiter asks once now, after the link is up.
                shared.wake_all();
                let why = tokio::select! {
                    _ = &mut stop => return,
                    why = pump(ws, &shared) => why,
                };
                // Down: the waiters switch to fast polling, from now.
                *shared.heard() = None;
                shared.wake_all();
                failures = if since.elapsed() >= STABLE_LINK {
                    0
                } else {
                    failures.saturating_add(1)
                };
                tracing::debug!(target: "relukko::client", url = %target.shown, %why, "WebSocket link ended");
            }
            Err(why) => {
                failures = failures.saturating_add(1);
                tracing::debug!(target: "relukko::client", url = %target.shown, %why, failures, "WebSocket connect failed");
            }
        }
        // Capped exponential backoff with half jitter: never a hot loop.
        let cap = exp_cap(
            Duration::from_millis(100),
            2.0,
            Duration::from_secs(5),
            failures,
        );
        let delay = cap.mul_f64(0.5 + fastrand::f64() / 2.0);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Counters of a client's WebSocket watcher.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Successful connections (the first one included).
    pub connects: u64,
    /// Deletions pushed by the server that woke at least one waiter.
    pub push_wakeups: u64,
    /// Deletions pushed by the server, whoever waited for them.
    pub deletions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_urls_follow_the_scheme() {
        assert_eq!(ws_url("http://h:1/p"), "ws://h:1/p/ws/broadcast");
        assert_eq!(ws_url("https://h"), "wss://h/ws/broadcast");
    }

    #[tokio::test]
    async fn deletions_wake_only_waiters_of_that_name() {
        let shared = Arc::new(Subscriptions::default());
        let w = Watcher {
            shared: Arc::clone(&shared),
            _stop: oneshot::channel().0,
        };
        let a = w.register("a");
        let b = w.register("b");
        shared.on_text(r#"{"deleted":{"lock_name":"a"}}"#);
        shared.on_text(r#"{"created":{"lock_name":"b"}}"#);
        shared.on_text("not json");
        timeout(Duration::from_secs(1), a.notify.notified())
            .await
            .expect("a is woken");
        assert!(
            timeout(Duration::from_millis(50), b.notify.notified())
                .await
                .is_err(),
            "b sleeps on"
        );
        shared.on_text(r#"{"deleted":true}"#);
        timeout(Duration::from_secs(1), b.notify.notified())
            .await
            .expect("b is woken by a nameless deletion");
        assert_eq!(w.stats().push_wakeups, 1);
        drop(a);
        assert!(
            !shared.map().contains_key("a"),
            "a dropped registration is forgotten"
        );
    }
}
