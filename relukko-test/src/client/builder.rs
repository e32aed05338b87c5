//! [`ClientBuilder`]: every setting of a [`Client`], validated by `build`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::http::strip_userinfo;
use super::key::{API_KEY_HEADER, ApiKey, NOT_A_HEADER};
use super::options::ClientOptions;
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
    options: ClientOptions,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.options;
        let mut d = f.debug_struct("ClientBuilder");
        d.field("url", &strip_userinfo(&c.url));
        c.shown(&mut d)
            .field("extra_ca_pems", &c.ca_pems.len())
            .field(
                "ca_bundles",
                &c.ca_bundles.iter().map(|b| &b.path).collect::<Vec<_>>(),
            )
            .field("trust_me_it_is_locked", &c.skip)
            .finish()
    }
}

impl ClientBuilder {
    pub(crate) fn new(url: impl AsRef<str>) -> Self {
        ClientBuilder {
            options: ClientOptions::new(url.as_ref().trim().to_owned()),
        }
    }

    fn set(mut self, f: impl FnOnce(&mut ClientOptions)) -> Self {
        f(&mut self.options);
        self
    }

    /// The API key, sent in `X-API-Key` with every request and the WebSocket upgrade.
    #[must_use]
    pub fn api_key(self, key: impl Into<String>) -> Self {
        let key = ApiKey::new(&key.into());
        self.set(|c| c.api_key = Some(key))
    }

    /// The creator text recorded on locks when a call gives none.
    #[must_use]
    pub fn creator(self, creator: impl Into<String>) -> Self {
        let creator = creator.into();
        self.set(|c| c.creator = Some(creator))
    }

    /// The longest one attempt of a request may take, connecting included
    /// (default 5 s). A call with a deadline gives each attempt at most the time left.
    #[must_use]
    pub fn request_timeout(self, d: Duration) -> Self {
        self.set(|c| c.request_timeout = crate::rt::capped(d))
    }

    /// The longest a TCP (and TLS) connection may take to open (default 3 s).
    #[must_use]
    pub fn connect_timeout(self, d: Duration) -> Self {
        self.set(|c| c.connect_timeout = crate::rt::capped(d))
    }

    /// How transport errors, timeouts and 5xx answers are retried.
    #[must_use]
    pub fn retry(self, policy: RetryPolicy) -> Self {
        self.set(|c| c.retry = policy)
    }

    /// The cap of a waiter's jittered poll timer (default 1 s). The cap starts
    /// at a twentieth of this and doubles up to it; each nap is drawn between
    /// a twentieth of the current cap and the cap.
    #[must_use]
    pub fn poll_max(self, d: Duration) -> Self {
        self.set(|c| c.poll_max = d)
    }

    /// Whether waiters listen on `/ws/broadcast` for deletions (default on).
    #[must_use]
    pub fn websocket(self, on: bool) -> Self {
        self.set(|c| c.websocket = on)
    }

    /// Trusts the CA certificates in `pem` (one or more PEM blocks) too, for
    /// HTTPS and WSS.
    #[must_use]
    pub fn add_root_certificate_pem(self, pem: &[u8]) -> Self {
        self.set(|c| c.ca_pems.push(pem.to_vec()))
    }

    /// Trusts the CA certificates in a PEM file, or in every `*.pem`, `*.crt`
    /// and `*.cer` file of a folder.
    #[must_use]
    pub fn ca_bundle(self, path: impl Into<PathBuf>) -> Self {
        let bundle = Bundle {
            origin: None,
            path: path.into(),
        };
        self.set(|c| c.ca_bundles.push(bundle))
    }

    /// The skip switch: make no request at all, answer [`Lock::dummy`](relukko_protocol::Lock::dummy).
    #[must_use]
    pub fn trust_me_it_is_locked(self, on: bool) -> Self {
        self.set(|c| c.skip = on)
    }

    /// Names `url` (an environment variable) in errors about the URL.
    pub(crate) fn origin(self, url: &'static str) -> Self {
        self.set(|c| c.origin.url = url)
    }

    /// The key read from the variable `name`, named in errors about it.
    pub(crate) fn api_key_from_env(self, name: &'static str, key: &str) -> Self {
        let key = ApiKey::new(key);
        self.set(|c| {
            c.origin.api_key = name;
            c.api_key = Some(key);
        })
    }

    /// Adds a CA bundle read from the environment.
    pub(crate) fn ca_bundle_from_env(self, bundle: Bundle) -> Self {
        self.set(|c| c.ca_bundles.push(bundle))
    }

    /// Checks the settings and builds the client. Fails with
    /// [`Error::Config`] for a bad URL, key or timeout, and [`Error::Tls`] for
    /// an unusable CA bundle.
    pub fn build(self) -> Result<Client> {
        let mut options = self.options;
        options.url = options.url.trim_end_matches('/').to_owned();
        let https = check_url(&options.url, options.origin.url, options.skip)?;
        for (name, d) in [
            ("request_timeout", options.request_timeout),
            ("connect_timeout", options.connect_timeout),
            ("poll_max", options.poll_max),
        ] {
            if d.is_zero() {
                return Err(Error::config(name, "must be more than zero"));
            }
        }
        let mut headers = HeaderMap::new();
        if let Some(key) = &options.api_key {
            let value = key
                .header()
                .ok_or_else(|| Error::config(options.origin.api_key, NOT_A_HEADER))?;
            headers.insert(API_KEY_HEADER, value.clone());
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            // The key in the default headers goes only where the base URL is.
            .redirect(super::redirect::policy())
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("relukko-test/", env!("CARGO_PKG_VERSION")));

        #[cfg(feature = "tls")]
        let (http, tls) = {
            // Always a preconfigured config: reqwest (built without a default
            // crypto provider) would panic without one, even for plain HTTP.
            let _ = https;
            let cfg = super::tls::client_config(&options.ca_pems, &options.ca_bundles)?;
            (http.use_preconfigured_tls((*cfg).clone()), Some(cfg))
        };
        #[cfg(not(feature = "tls"))]
        {
            let _ = https;
            if !options.ca_pems.is_empty() || !options.ca_bundles.is_empty() {
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
        // What the client keeps: the certificates are in `tls` now.
        options.ca_pems = Vec::new();
        Ok(Client {
            inner: Arc::new(Shared {
                shown_url: strip_userinfo(&options.url),
                options,
                http,
                #[cfg(feature = "tls")]
                tls,
                watcher: OnceLock::new(),
            }),
        })
    }
}

/// Validates the base `url`, naming `name` in errors (a builder option or
/// the variable it came from); answers whether it is HTTPS. An empty URL is
/// fine for a client with the skip switch on.
pub(crate) fn check_url(url: &str, name: &str, skip: bool) -> Result<bool> {
    if skip && url.is_empty() {
        return Ok(false);
    }
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
            format!("{shown:?} is not a URL ({e}); write it like \"https://relukko.example.com\""),
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
