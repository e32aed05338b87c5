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
    pub(crate) page_login: Option<super::credentials::Login>,
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
            page_login: None,
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

    /// Protects the page at `GET /` (and only the page) with HTTP basic auth,
    /// as upstream's `RELUKKO_USER` / `RELUKKO_PASSWORD` do. Without a login
    /// the page asks for the API key instead.
    #[must_use]
    pub fn page_login(mut self, user: &str, password: &str) -> Self {
        self.page_login = Some(super::credentials::Login::new(user, password));
        self
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

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("api_key", &"<redacted>")
            .field("grace", &self.grace)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("body_limit", &self.body_limit)
            .field("db", &self.db)
            .field("page_login", &self.page_login)
            .finish()
    }
}
