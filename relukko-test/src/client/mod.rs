//! The async client of the Relukko lock server: every call of the protocol,
//! waiting for a lock with a deadline, retries, and TLS.
//!
//! Every request runs on the crate's own background runtime, so one [`Client`]
//! works from any runtime (many `#[tokio::test]`s one after another) and from
//! sync code, with no dead pooled connections.
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "server")]
//! # #[tokio::main]
//! # async fn main() -> relukko::Result<()> {
//! use std::time::Duration;
//! use relukko::{AcquireOptions, Client, Create};
//!
//! // A throwaway server on 127.0.0.1 (feature `server`); use your own URL instead.
//! let server = relukko::server::TestServer::start();
//! let client = Client::builder(server.base_url())
//!     .api_key(server.api_key())
//!     .creator("docs example")
//!     .build()?;
//! client.health().await?;
//!
//! // Create or fail: a taken name is an answer, not an error.
//! let Create::Acquired(lock) = client.create("hil-rig-3", None).await? else {
//!     panic!("someone holds hil-rig-3");
//! };
//! assert!(matches!(client.create("hil-rig-3", None).await?, Create::Taken));
//! assert_eq!(client.holder("hil-rig-3").await?.map(|l| l.id), Some(lock.id));
//!
//! // Extend it, then release it.
//! client.keep_alive_for(lock.id, Duration::from_secs(120)).await?;
//! client.delete(lock.id).await?;
//!
//! // Wait (here: not at all) until it is ours, at most 10 seconds.
//! let lock = client
//!     .acquire("hil-rig-3", AcquireOptions::new().timeout(Duration::from_secs(10)))
//!     .await?;
//! client.delete(lock.id).await?;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "server"))]
//! # fn main() {}
//! ```
//!
//! # Waiting
//!
//! [`Client::acquire`] tries to create the lock, and while it is taken waits
//! for a push from the server's WebSocket (a deletion of *that* name, after a
//! few random milliseconds so a crowd does not stampede) or for its own jittered
//! poll timer (capped by [`ClientBuilder::poll_max`]), whichever comes first.
//! The WebSocket is only a hint: waiting works with it disabled or blocked.
//!
//! # Cancel safety and the creator token
//!
//! Each `create`/`acquire` call sends `creator` as `"<creator> [rl:<token>]"`,
//! with a fresh random token (32 hex digits). If an answer is lost (timeout,
//! reset connection) the client looks the name up: a lock whose creator carries
//! its token is its own, and is adopted. A dropped `acquire` or `create` future
//! never leaves a lock behind: the request in flight finishes on the background
//! runtime and any lock it got is deleted. [`creator_without_token`] gives the
//! creator text for display.

mod acquire;
mod builder;
mod calls;
mod env;
pub(crate) mod http;
pub(crate) mod pending;
mod retry;
mod tls;
mod watcher;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use acquire::{AcquireOptions, WaitProgress};
pub use builder::ClientBuilder;
pub(crate) use calls::Deleted;
pub use calls::{Create, creator_without_token};
pub use env::ClientSettings;
pub use retry::RetryPolicy;

/// A client of one Relukko server. Cheap to clone (all clones share one
/// connection pool and one WebSocket watcher); `Send + Sync`.
///
/// Build it with [`Client::builder`] or [`Client::from_env`]. Its `Debug`
/// never shows the API key.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// What all clones of a client share.
pub(crate) struct Inner {
    /// The base URL as given, without trailing slash (may carry userinfo).
    pub(crate) url: String,
    /// The base URL without userinfo: what errors and logs show.
    pub(crate) shown_url: String,
    pub(crate) api_key: Option<String>,
    pub(crate) creator: Option<String>,
    pub(crate) http: reqwest::Client,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) poll_max: Duration,
    pub(crate) websocket: bool,
    pub(crate) skip: bool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// Started on the first wait; stops when the last clone is dropped.
    pub(crate) watcher: OnceLock<watcher::Watcher>,
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
    /// A builder for a client of the server at `url` (`http://` or `https://`,
    /// optionally with a path prefix).
    pub fn builder(url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// A client configured from the environment; see [`ClientSettings::from_env`]
    /// for the variables. A bad value is an [`Error::Config`](crate::Error::Config)
    /// naming the variable.
    pub fn from_env() -> crate::Result<Client> {
        ClientSettings::from_env()?.into_builder().build()
    }

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
