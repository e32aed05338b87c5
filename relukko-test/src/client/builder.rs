//! [`ClientBuilder`]: every setting of a [`Client`], validated by `build`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use super::http::strip_userinfo;
use super::key::API_KEY_HEADER;
use super::shared::Shared;
use super::tls::Bundle;
use super::{Client, RetryPolicy};
use crate::error::{Error, Result};

/// Configures a [`Client`]; made by [`Client::builder`]. `Debug` never shows
/// the API key.
///
/// ```
/// # #[cfg(feature = "tls")] { // (hidden) https needs the `tls` feature
/// use std::time::Duration;
/// let client = relukko::Client::builder("https://relukko.example.com")
///     .api_key("secret")
///     .creator("ci-runner-7")
///     .request_timeout(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// assert_eq!(client.base_url(), "https://relukko.example.com");
/// assert!(!format!("{client:?}").contains("secret"));
/// # }
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    /// What to name in an error about the URL: the builder, or the variable it came from.
    url_origin: &'static str,
    api_key: Option<String>,
    creator: Option<String>,
    request_timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    poll_max: Duration,
    websocket: bool,
    ca_pems: Vec<Vec<u8>>,
    ca_bundles: Vec<Bundle>,
    skip: bool,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &strip_userinfo(&self.url))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("creator", &self.creator)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("poll_max", &self.poll_max)
            .field("websocket", &self.websocket)
            .field("extra_ca_pems", &self.ca_pems.len())
            .field(
                "ca_bundles",
                &self.ca_bundles.iter().map(|b| &b.path).collect::<Vec<_>>(),
            )
            .field("trust_me_it_is_locked", &self.skip)
            .finish()
    }
}

impl Client {
    /// A builder for a client of the server at `url` (`http://` or `https://`,
    /// optionally with a path prefix).
    pub fn builder(url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder::new(url)
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: impl AsRef<str>) -> Self {
        ClientBuilder {
            url: url.as_ref().trim().to_owned(),
            url_origin: "url",
            api_key: None,
            creator: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            retry: RetryPolicy::default(),
            poll_max: Duration::from_secs(1),
            websocket: true,
            ca_pems: Vec::new(),
            ca_bundles: Vec::new(),
            skip: false,
        }
    }

    /// The API key, sent in `X-API-Key` with every request and the WebSocket upgrade.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The creator text recorded on locks when a call gives none.
    #[must_use]
    pub fn creator(mut self, creator: impl Into<String>) -> Self {
        self.creator = Some(creator.into());
        self
    }

    /// The longest one attempt of a request may take, connecting included
    /// (default 5 s). A call with a deadline gives each attempt at most the time left.
    #[must_use]
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = crate::forever::capped(d);
        self
    }

    /// The longest a TCP (and TLS) connection may take to open (default 3 s).
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = crate::forever::capped(d);
        self
    }

    /// How transport errors, timeouts and 5xx answers are retried.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The cap of a waiter's jittered poll timer (default 1 s). The cap starts
    /// at a twentieth of this and doubles up to it; each nap is drawn between
    /// a twentieth of the current cap and the cap.
    #[must_use]
    pub fn poll_max(mut self, d: Duration) -> Self {
        self.poll_max = d;
        self
    }

    /// Whether waiters listen on `/ws/broadcast` for deletions (default on).
    #[must_use]
    pub fn websocket(mut self, on: bool) -> Self {
        self.websocket = on;
        self
    }

    /// Trusts the CA certificates in `pem` (one or more PEM blocks) too, for
    /// HTTPS and WSS.
    #[must_use]
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.ca_pems.push(pem.to_vec());
        self
    }

    /// Trusts the CA certificates in a PEM file, or in every `*.pem`, `*.crt`
    /// and `*.cer` file of a folder.
    #[must_use]
    pub fn ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundles.push(Bundle {
            origin: None,
            path: path.into(),
        });
        self
    }

    /// The skip switch: make no request at all, answer [`Lock::dummy`](crate::Lock::dummy).
    #[must_use]
    pub fn trust_me_it_is_locked(mut self, on: bool) -> Self {
        self.skip = on;
        self
    }

    /// Names `origin` (an environment variable) in errors about the URL.
    pub(super) fn origin(mut self, origin: &'static str) -> Self {
        self.url_origin = origin;
        self
    }

    /// Adds a CA bundle read from the environment.
    pub(super) fn ca_bundle_from_env(mut self, bundle: Bundle) -> Self {
        self.ca_bundles.push(bundle);
        self
    }

    /// Checks the settings and builds the client. Fails with
    /// [`Error::Config`] for a bad URL, key or timeout, and [`Error::Tls`] for
    /// an unusable CA bundle.
    pub fn build(self) -> Result<Client> {
        let url = self.url.trim_end_matches('/').to_owned();
        let https = self.check_url(&url)?;
        for (name, d) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("poll_max", self.poll_max),
        ] {
            if d.is_zero() {
                return Err(Error::config(name, "must be more than zero"));
            }
        }
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(key).map_err(|_| {
                Error::config(
                    "api_key",
                    "is not a valid header value (control characters or non-ASCII)",
                )
            })?;
            // Keeps it out of any Debug output of the HTTP stack.
            value.set_sensitive(true);
            headers.insert(API_KEY_HEADER, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("relukko-test/", env!("CARGO_PKG_VERSION")));

        #[cfg(feature = "tls")]
        let (http, tls) = {
            // Always a preconfigured config: reqwest (built without a default
            // crypto provider) would panic without one, even for plain HTTP.
            let _ = https;
            let cfg = super::tls::client_config(&self.ca_pems, &self.ca_bundles)?;
            (http.use_preconfigured_tls((*cfg).clone()), Some(cfg))
        };
        #[cfg(not(feature = "tls"))]
        {
            let _ = https;
            if !self.ca_pems.is_empty() || !self.ca_bundles.is_empty() {
                return Err(Error::config(
                    "ca_bundle",
                    "extra CA certificates need the `tls` feature of relukko-test",
                ));
            }
        }

        let http = http.build().map_err(|e| Error::Config {
            name: "client".to_owned(),
            reason: format!("cannot build the HTTP client: {}", crate::error::chain(&e)),
        })?;
        Ok(Client {
            inner: Arc::new(Shared {
                shown_url: strip_userinfo(&url),
                url,
                api_key: self.api_key,
                creator: self.creator,
                http,
                request_timeout: self.request_timeout,
                connect_timeout: self.connect_timeout,
                retry: self.retry,
                poll_max: self.poll_max,
                websocket: self.websocket,
                skip: self.skip,
                #[cfg(feature = "tls")]
                tls,
                watcher: OnceLock::new(),
            }),
        })
    }

    /// Validates the URL; answers whether it is HTTPS.
    pub(crate) fn check_url(&self, url: &str) -> Result<bool> {
        if self.skip && url.is_empty() {
            return Ok(false);
        }
        let name = self.url_origin;
        let shown = strip_userinfo(url);
        if !url.is_empty() && !url.contains("://") {
            return Err(Error::config(
                name,
                format!(
                    "{shown:?} has no scheme: write \"http://{shown}\" (or \"https://{shown}\" for TLS)"
                ),
            ));
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            Error::config(
                name,
                format!(
                    "{shown:?} is not a URL ({e}); write it like \"https://relukko.example.com\""
                ),
            )
        })?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Error::config(name, format!("{shown:?} has no host")));
        }
        if let Some(base) = parsed
            .path()
            .trim_end_matches('/')
            .strip_suffix("/v1/locks")
        {
            let base = format!("{}{base}", parsed.origin().ascii_serialization());
            return Err(Error::config(
                name,
                format!(
                    "{shown:?} ends in the API's own path /v1/locks: give the server's base URL, \
                     {base:?} (the client adds /v1/locks/ itself)"
                ),
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::config(
                name,
                format!("{shown:?}: give the base URL, without ?query or #fragment"),
            ));
        }
        match parsed.scheme() {
            "http" => Ok(false),
            "https" if cfg!(feature = "tls") => Ok(true),
            "https" => Err(Error::config(
                name,
                format!(
                    "{shown:?} is HTTPS, which needs the `tls` feature of relukko-test (on by default)"
                ),
            )),
            other => Err(Error::config(
                name,
                format!("{shown:?}: scheme {other:?} is not http or https"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_name(r: Result<Client>) -> String {
        match r {
            Err(Error::Config { name, .. }) => name,
            other => panic!("expected a Config error, got {other:?}"),
        }
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for url in [
            "",
            "relukko.example.com",
            "ftp://h",
            "http://",
            "http://h/?x=1",
        ] {
            assert_eq!(config_name(ClientBuilder::new(url).build()), "url", "{url}");
        }
        assert!(
            ClientBuilder::new("")
                .trust_me_it_is_locked(true)
                .build()
                .unwrap()
                .is_skip()
        );
    }

    #[test]
    fn url_mistakes_say_what_to_write() {
        let reason = |url: &str| match ClientBuilder::new(url).build() {
            Err(Error::Config { reason, .. }) => reason,
            other => panic!("{url}: expected a Config error, got {other:?}"),
        };
        let r = reason("localhost:3000");
        assert!(
            r.contains("has no scheme") && r.contains("\"http://localhost:3000\""),
            "{r}"
        );
        for url in ["http://h:3000/v1/locks", "http://h:3000/v1/locks/"] {
            let r = reason(url);
            assert!(
                r.contains("ends in the API's own path /v1/locks")
                    && r.contains("\"http://h:3000\""),
                "{r}"
            );
        }
        let r = reason("https://h/team/v1/locks");
        assert!(r.contains("\"https://h/team\""), "{r}");
        assert!(ClientBuilder::new("http://h:3000/team/").build().is_ok());
    }

    #[test]
    fn zero_timeouts_and_bad_keys_are_refused() {
        let b = || ClientBuilder::new("http://127.0.0.1:1");
        assert_eq!(
            config_name(b().request_timeout(Duration::ZERO).build()),
            "request_timeout"
        );
        assert_eq!(
            config_name(b().poll_max(Duration::ZERO).build()),
            "poll_max"
        );
        let e = b().api_key("se\ncret").build().unwrap_err();
        assert!(!format!("{e} {e:?}").contains("se\ncret"));
    }

    #[test]
    fn debug_redacts_key_and_userinfo() {
        let b = ClientBuilder::new("http://bob:pw@127.0.0.1:1/").api_key("topsecret");
        let shown = format!("{b:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("pw@"),
            "{shown}"
        );
        let c = b.build().unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("pw@"),
            "{shown}"
        );
        assert_eq!(c.base_url(), "http://127.0.0.1:1");
    }
}
