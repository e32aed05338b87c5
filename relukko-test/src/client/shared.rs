//! [`Client`], and what all of its clones share.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::builder::ClientBuilder;
use super::options::ClientOptions;
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
    /// The settings it was built with (the URL without trailing slash; the
    /// key, a valid header value).
    pub(super) options: ClientOptions,
    /// The base URL without userinfo: what errors and logs show.
    pub(super) shown_url: String,
    /// Sends the key with every request.
    pub(super) http: reqwest::Client,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// Started on the first wait; stops when the last clone is dropped.
    pub(super) watcher: OnceLock<Watcher>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Client");
        d.field("base_url", &self.inner.shown_url);
        self.inner
            .options
            .shown(&mut d)
            .field("trust_me_it_is_locked", &self.inner.options.skip)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a client of the server at `url` (`http://` or `https://`,
    /// optionally with a path prefix).
    pub fn builder(url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// The server's base URL, without credentials (empty for a skip client
    /// built with no URL).
    pub fn base_url(&self) -> &str {
        &self.inner.shown_url
    }

    /// Whether the skip switch is on (`RELUKKO_TRUST_ME_IT_IS_LOCKED`): no
    /// request is made and lock-returning calls answer [`Lock::dummy`](relukko_protocol::Lock::dummy).
    pub fn is_skip(&self) -> bool {
        self.inner.options.skip
    }

    /// The key of the lock `name` of this client's server in
    /// [`crate::courtesy`].
    pub(crate) fn courtesy_key(&self, name: &str) -> String {
        crate::courtesy::key(&self.inner.options.url, name)
    }

    /// The longest one request may take.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.options.request_timeout
    }

    /// The creator sent when a call gives none.
    pub fn creator(&self) -> Option<&str> {
        self.inner.options.creator.as_deref()
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
                url: self.options.url.clone(),
                shown: self.shown_url.clone(),
                api_key: self
                    .options
                    .api_key
                    .as_ref()
                    .and_then(|k| k.header().cloned()),
                connect_timeout: self.options.connect_timeout + self.options.request_timeout,
                #[cfg(feature = "tls")]
                tls: self.tls.clone(),
            })
        })
    }
}
