//! The settings of one server instance.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How long an expired lock lingers before the clean-up pass removes it (upstream: about 3 min).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(180);
/// How often the clean-up pass runs (upstream: 30 s).
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(30);
/// The largest request body accepted; bigger ones get `413`.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// How long a client has to send a whole request head, from the moment it
/// connects or sends the head's first byte.
pub const DEFAULT_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a whole request body once its head arrived.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may sit between two requests. Longer than
/// our client's pool keeps an idle connection (30 s), so the server is not
/// the side that closes a connection a client is about to reuse.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most HTTP connections served at once (WebSocket clients not included).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// The most WebSocket clients (`/ws/broadcast` and the page's) at once.
pub const DEFAULT_MAX_WEBSOCKETS: usize = 4096;

/// The settings of one server: API key, expiry grace, clean-up interval and body limit.
///
/// Its `Debug` output never shows the API key.
///
/// ```
/// use std::time::Duration;
/// let config = relukko_server::ServerConfig::new("s3cret").grace(Duration::from_secs(1));
/// assert_eq!(config.get_grace(), Duration::from_secs(1));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) api_key: String,
    pub(crate) grace: Duration,
    pub(crate) cleanup_interval: Duration,
    pub(crate) body_limit: usize,
    pub(crate) db: Option<PathBuf>,
    /// A PostgreSQL URL; its password never shows in `Debug`.
    pub(crate) postgres: Option<String>,
    pub(crate) page_login: Option<super::credentials::Login>,
    pub(crate) limits: Limits,
}

/// What one connection may take: the timeouts and the caps of
/// [`ServerConfig`], in one place for the connection layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) head_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_websockets: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head_timeout: DEFAULT_HEAD_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_websockets: DEFAULT_MAX_WEBSOCKETS,
        }
    }
}

impl ServerConfig {
    /// A configuration with the given API key and the upstream defaults
    /// (grace 3 minutes, clean-up every 30 seconds, bodies up to 64 KiB).
    #[must_use]
    pub fn new(api_key: impl Into<String>) -> Self {
        ServerConfig {
            api_key: api_key.into(),
            grace: DEFAULT_GRACE,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
            body_limit: DEFAULT_BODY_LIMIT,
            db: None,
            postgres: None,
            page_login: None,
            limits: Limits::default(),
        }
    }

    /// How long a lock stays after it expired: until then a `POST` of its name still answers `409`.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How often the clean-up pass looks for locks expired longer than the grace.
    /// Zero is taken as one millisecond.
    #[must_use]
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.cleanup_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The largest request body accepted; bigger ones are answered `413`.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Keeps the locks in a database file at `path` (created if missing), so a
    /// restart does not forget them: every change is on disk before it is
    /// answered, and the locks in the file are loaded when the server starts.
    /// Without it, locks live in memory only.
    #[must_use]
    pub fn database(mut self, path: impl Into<PathBuf>) -> Self {
        self.db = Some(path.into());
        self
    }

    /// Keeps the locks in PostgreSQL at `url`
    /// (`postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=...`), which any
    /// number of servers (replicas) may share: each serves the same locks and
    /// pushes every change to its WebSocket clients. The server creates and
    /// migrates its tables itself. Needs the `postgres` feature (on by
    /// default); wins over [`database`](Self::database).
    #[must_use]
    pub fn postgres(mut self, url: impl Into<String>) -> Self {
        self.postgres = Some(url.into());
        self
    }

    /// Protects the page at `GET /` (and only the page) with HTTP basic auth,
    /// as upstream's `RELUKKO_USER` / `RELUKKO_PASSWORD` do. Without a login
    /// the page asks for the API key instead.
    #[must_use]
    pub fn page_login(mut self, user: &str, password: &str) -> Self {
        self.page_login = Some(super::credentials::Login::new(user, password));
        self
    }

    /// How long a client may take to send a whole request head (from its
    /// connecting, or from the first byte of the head); then the connection is
    /// closed. Default 10 s. Zero is taken as one millisecond.
    #[must_use]
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.limits.head_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a client may take to send a whole request body once the head
    /// arrived; then it is answered `408` and the connection closed. Default
    /// 10 s. Zero is taken as one millisecond.
    #[must_use]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.limits.body_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a kept-alive connection may stay idle between two requests
    /// before the server closes it. Default 60 s. Zero is taken as one
    /// millisecond.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The most HTTP connections served at once (default 4096; at least 1).
    /// At the cap, a new connection closes the oldest one that is not in the
    /// middle of a request (one still sending its head first, then an idle
    /// one), so unfinished connections cannot keep a real request out. The
    /// server lowers the cap further if its open-files limit is lower.
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.limits.max_connections = connections.max(1);
        self
    }

    /// The most WebSocket clients (`/ws/broadcast` and the page's) at once
    /// (default 4096). An upgrade over the cap is answered `503`; our client
    /// then polls instead.
    #[must_use]
    pub fn max_websockets(mut self, clients: usize) -> Self {
        self.limits.max_websockets = clients;
        self
    }

    /// The timeout set by [`head_timeout`](Self::head_timeout).
    pub fn get_head_timeout(&self) -> Duration {
        self.limits.head_timeout
    }

    /// The timeout set by [`body_timeout`](Self::body_timeout).
    pub fn get_body_timeout(&self) -> Duration {
        self.limits.body_timeout
    }

    /// The timeout set by [`idle_timeout`](Self::idle_timeout).
    pub fn get_idle_timeout(&self) -> Duration {
        self.limits.idle_timeout
    }

    /// The cap set by [`max_connections`](Self::max_connections).
    pub fn get_max_connections(&self) -> usize {
        self.limits.max_connections
    }

    /// The cap set by [`max_websockets`](Self::max_websockets).
    pub fn get_max_websockets(&self) -> usize {
        self.limits.max_websockets
    }

    /// The API key every `/v1` request and the WebSocket upgrade must carry.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The grace set by [`grace`](Self::grace). (Getters are named `get_` +
    /// the setter's name, as in `std::process::Command`: the plain name is
    /// the setter.)
    pub fn get_grace(&self) -> Duration {
        self.grace
    }

    /// The interval set by [`cleanup_interval`](Self::cleanup_interval).
    pub fn get_cleanup_interval(&self) -> Duration {
        self.cleanup_interval
    }

    /// The limit set by [`body_limit`](Self::body_limit).
    pub fn get_body_limit(&self) -> usize {
        self.body_limit
    }

    /// The file set by [`database`](Self::database), if any.
    pub fn get_database(&self) -> Option<&std::path::Path> {
        self.db.as_deref()
    }
}

/// A database URL without its password.
pub(crate) fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("api_key", &"<redacted>")
            .field("grace", &self.grace)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("body_limit", &self.body_limit)
            .field("db", &self.db)
            .field("postgres", &self.postgres.as_deref().map(shown_url))
            .field("page_login", &self.page_login)
            .field("limits", &self.limits)
            .finish()
    }
}
