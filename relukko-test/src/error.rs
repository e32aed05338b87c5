//! The one error type of this crate.

use std::time::Duration;

/// Everything that can go wrong when locking, talking to a Relukko server or
/// configuring the crate.
///
/// Variants carry the context needed to act on them: the resource, the URL
/// (never with credentials, and never the API key), the HTTP status and an
/// excerpt of the answer's body.
///
/// `Debug` shows the same text as `Display` (as `anyhow` does), so
/// `.expect(..)` and a test returning `relukko::Result` print a readable
/// message rather than the variant's fields.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused the API key (401 or 403). Never retried.
    #[error("not authorised by {url} (HTTP {status}): check RELUKKO_API_KEY; server said: {body}")]
    NotAuthorised {
        /// The request URL, without secrets.
        url: String,
        /// 401 or 403.
        status: u16,
        /// An excerpt of the answer's body.
        body: String,
    },

    /// No lock with that id (404).
    #[error("no such lock at {url} (HTTP 404): {body}")]
    NotFound {
        /// The request URL, without secrets.
        url: String,
        /// An excerpt of the answer's body.
        body: String,
    },

    /// Nothing answers where the server's list of locks should be (404 on
    /// the collection itself): the base URL is not a Relukko server's.
    #[error(
        "nothing at {url} (HTTP 404), where a Relukko server lists its locks: the server URL \
         (RELUKKO_URL) is not the server's base URL; give it like \"http://host:3000\", without \
         /v1/... (server said: {body})"
    )]
    WrongBaseUrl {
        /// The request URL, without secrets.
        url: String,
        /// An excerpt of the answer's body.
        body: String,
    },

    /// The URL is `https://` but the server answered in plain HTTP. Never
    /// retried: it will not change.
    #[error(
        "{url} does not speak TLS (it answered in plain HTTP): use http:// instead of https:// \
         in the server URL (RELUKKO_URL)"
    )]
    NotTls {
        /// The request URL, without secrets.
        url: String,
    },

    /// The server rejected the request as malformed (400 or 422).
    #[error("request rejected by {url} (HTTP {status}): {message}")]
    Rejected {
        /// The request URL, without secrets.
        url: String,
        /// 400 or 422 (or another 4xx the protocol does not name).
        status: u16,
        /// The server's `message`, or an excerpt of the body.
        message: String,
    },

    /// The server failed (5xx), also after the retries the deadline allowed.
    #[error("server error from {url} (HTTP {status}): {body}")]
    Server {
        /// The request URL, without secrets.
        url: String,
        /// The 5xx status.
        status: u16,
        /// An excerpt of the answer's body.
        body: String,
    },

    /// The request could not be sent or its answer not received. Retried,
    /// unless it cannot change: connection refused on a loopback address, a
    /// host name that does not resolve.
    #[error(
        "cannot reach {url}: {source}; check that the server runs there (`relukko health` \
         tries it), the server URL (RELUKKO_URL), and a proxy setting (HTTPS_PROXY, \
         HTTP_PROXY, NO_PROXY)"
    )]
    Transport {
        /// The request URL, without secrets.
        url: String,
        /// What the HTTP client said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The server answered with a redirect to another origin (scheme, host
    /// or port, https to http included), which is not followed: the API key
    /// goes only to the server's own origin. Never retried.
    #[error(
        "{from} redirected to {to}, another origin (scheme, host or port): not followed, so \
         that the API key is sent to no other place; if the server moved, point the server URL \
         (RELUKKO_URL) at its new address yourself"
    )]
    Redirected {
        /// The request URL that answered with the redirect, without secrets.
        from: String,
        /// Where the redirect led, without secrets.
        to: String,
    },

    /// A request or a whole call ran past its deadline.
    #[error("{what} timed out after {after:?} ({url})")]
    Timeout {
        /// What timed out, e.g. "POST /v1/locks/".
        what: String,
        /// The request URL, without secrets.
        url: String,
        /// How long it ran.
        after: Duration,
    },

    /// The answer could not be understood.
    #[error("undecodable answer from {url} (HTTP {status}): {source}; body: {body}")]
    Decode {
        /// The request URL, without secrets.
        url: String,
        /// The answer's status.
        status: u16,
        /// An excerpt of the answer's body.
        body: String,
        /// Why it could not be decoded.
        #[source]
        source: serde_json::Error,
    },

    /// The WebSocket link failed.
    #[error("WebSocket {url}: {source}")]
    WebSocket {
        /// The WebSocket URL, without secrets.
        url: String,
        /// What the WebSocket client said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A setting (environment variable or builder option) is invalid.
    #[error("invalid setting {name}: {reason}")]
    Config {
        /// The environment variable or builder option, e.g. `RELUKKO_URL`.
        name: String,
        /// What is wrong and how to fix it (never the value of a secret).
        reason: String,
    },

    /// TLS could not be set up (bad CA bundle, unreadable file, ...).
    #[error("TLS setup failed: {reason}")]
    Tls {
        /// What went wrong, naming the file or variable.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// Waiting for a resource ran past its deadline.
    #[error("timed out after {} waiting for {resource}{}", crate::report::duration(*.waited), holder_suffix(.holder))]
    WaitTimeout {
        /// The resource (lock name) waited for.
        resource: String,
        /// How long the caller waited.
        waited: Duration,
        /// Who held it when the wait ended, if known.
        holder: Option<String>,
    },

    /// The locked test asking for `resource` holds it already (asked from a
    /// fixture or helper on the test's own thread or task): waiting would
    /// wait for itself until the timeout, so this fails at once.
    #[error(
        "{resource} is already held by this same test ({test}): locking it again from the test \
         would wait for itself until the timeout; use the lock the test holds (declare a \
         `relukko::Lease` parameter to see it) instead of locking it again"
    )]
    HeldByThisTest {
        /// The resource (lock name, as asked for).
        resource: String,
        /// The test holding it.
        test: String,
    },

    /// A held lock was lost: deleted by someone else, or not kept alive in time.
    #[error("lock on {resource} was lost: {reason}")]
    LockLost {
        /// The resource.
        resource: String,
        /// When and how it was lost.
        reason: String,
    },

    /// The local (file) backend failed.
    #[error("local lock {resource} at {path}: {source}")]
    Local {
        /// The resource.
        resource: String,
        /// The lock file or folder.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl From<relukko_protocol::vars::VarError> for Error {
    fn from(e: relukko_protocol::vars::VarError) -> Error {
        Error::Config {
            name: e.name,
            reason: e.reason,
        }
    }
}

impl Error {
    /// A [`Config`](Error::Config) error naming the setting (an environment
    /// variable, an option) and what is wrong with its value.
    pub(crate) fn config(name: &str, reason: impl Into<String>) -> Error {
        Error::Config {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    /// A [`Local`](Error::Local) error about the lock file of `resource` at `path`.
    pub(crate) fn local(resource: &str, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Local {
            resource: resource.to_owned(),
            path: path.to_owned(),
            source,
        }
    }

    /// The text of a [`WaitTimeout`](Error::WaitTimeout) without the resource
    /// (`"timed out after 9.0s, held by ..."`), for messages that already name
    /// it; any other error as it displays.
    pub(crate) fn without_resource(&self) -> String {
        match self {
            Error::WaitTimeout { waited, holder, .. } => format!(
                "timed out after {}{}",
                crate::report::duration(*waited),
                holder_suffix(holder)
            ),
            e => e.to_string(),
        }
    }
}

fn holder_suffix(holder: &Option<String>) -> String {
    match holder {
        Some(h) => format!(", held by {h}"),
        None => String::new(),
    }
}

/// Joins an error and its sources with ": ", dropping repeated layers.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most of a body an error keeps: enough to read, small enough for a log line.
pub(crate) const BODY_EXCERPT: usize = 512;

/// Shortens a body for an error message, on a char boundary.
pub(crate) fn excerpt(body: &str) -> String {
    if body.len() <= BODY_EXCERPT {
        return body.to_owned();
    }
    let mut end = BODY_EXCERPT;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &body[..end], body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_and_cuts_long() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "é".repeat(400);
        let e = excerpt(&long);
        assert!(e.len() < long.len());
        assert!(e.ends_with("(800 bytes)"));
    }

    #[test]
    fn debug_reads_like_the_message() {
        let e = Error::config("RELUKKO_TIMEOUT", "\"abc\" is not a duration");
        assert_eq!(
            format!("{e:?}"),
            "invalid setting RELUKKO_TIMEOUT: \"abc\" is not a duration"
        );
        assert_eq!(format!("{e:?}"), e.to_string());
    }

    #[test]
    fn wait_timeout_names_resource_and_holder() {
        let e = Error::WaitTimeout {
            resource: "hil-rig-3".into(),
            waited: Duration::from_secs(3),
            holder: Some("alice@ci".into()),
        };
        assert_eq!(
            e.to_string(),
            "timed out after 3.0s waiting for hil-rig-3, held by alice@ci"
        );
        assert_eq!(
            e.without_resource(),
            "timed out after 3.0s, held by alice@ci"
        );
    }
}
