//! [`Client`], and what all of its clones share.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::retry::RetryPolicy;
use super::watcher::{Target, WatchStats, Watcher};

/// A client of one Relukko server. Cheap to clone (all clones share one
/// connection pool and one WebSocket watcher); `Send + Sync`.
///
/// Build it with [`Client::builder`] or [`Client::from_env`]. Its `Debug`
/// never shows the API key.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<Shared>,
}

/// What all clones of a client share. Sealed in `client`: other modules
/// reach a client through its methods.
pub(super) struct Shared {
    /// The base URL as given, without trailing slash (may carry userinfo).
    pub(super) url: String,
    /// The base URL without userinfo: what errors and logs show.
    pub(super) shown_url: String,
    pub(super) api_key: Option<String>,
    pub(super) creator: Option<String>,
    pub(super) http: reqwest::Client,
    pub(super) request_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) poll_max: Duration,
    pub(super) websocket: bool,
    pub(super) skip: bool,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// Started on the first wait; stops when the last clone is dropped.
    pub(super) watcher: OnceLock<Watcher>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.inner;
        f.debug_struct("Client")
            .field("base_url", &i.shown_url)
            .field("api_key", &i.api_key.as_ref().map(|_| "<redacted>"))
            .field("creator", &i.creator)
            .field("request_timeout", &i.request_timeout)
            .field("connect_timeout", &i.connect_timeout)
            .field("retry", &i.retry)
            .field("poll_max", &i.poll_max)
            .field("websocket", &i.websocket)
            .field("trust_me_it_is_locked", &i.skip)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The server's base URL, without credentials (empty for a skip client
    /// built with no URL).
    pub fn base_url(&self) -> &str {
        &self.inner.shown_url
    }

    /// Whether the skip switch is on (`RELUKKO_TRUST_ME_IT_IS_LOCKED`): no
    /// request is made and lock-returning calls answer [`Lock::dummy`](crate::Lock::dummy).
    pub fn is_skip(&self) -> bool {
        self.inner.skip
    }

    /// The key of the lock `name` of this client's server in
    /// [`crate::courtesy`].
    pub(crate) fn courtesy_key(&self, name: &str) -> String {
        crate::courtesy::key(&self.inner.url, name)
    }

    /// The longest one request may take.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// The creator sent when a call gives none.
    pub fn creator(&self) -> Option<&str> {
        self.inner.creator.as_deref()
    }

    /// Counters of the WebSocket watcher, for tests and diagnostics.
    #[doc(hidden)]
    pub fn __watch_stats(&self) -> WatchStats {
        self.inner
            .watcher
            .get()
            .map(|w| w.stats())
            .unwrap_or_default()
    }
}

impl Shared {
    /// The WebSocket watcher, started on first use.
    pub(super) fn watcher(&self) -> &Watcher {
        self.watcher.get_or_init(|| {
            Watcher::start(Target {
                url: self.url.clone(),
                shown: self.shown_url.clone(),
                api_key: self.api_key.clone(),
                connect_timeout: self.connect_timeout + self.request_timeout,
                #[cfg(feature = "tls")]
                tls: self.tls.clone(),
            })
        })
    }
}
