//! The `RELUKKO_*` variables: every name, written once, and one reader whose
//! errors name the variable.
//!
//! One reader for the test library, the server and the command line, over a
//! lookup function so that every parser is tested without touching the
//! process environment (which all test threads share).
//!
//! ```
//! use relukko_protocol::vars::{self, Vars};
//!
//! let env = Vars::new(|name| (name == vars::LEASE).then(|| "2m 30s".into()));
//! assert_eq!(env.duration(vars::LEASE).unwrap(), Some(std::time::Duration::from_secs(150)));
//! assert_eq!(env.text(vars::PREFIX).unwrap(), None);
//! ```

use std::ffi::OsString;
use std::time::Duration;

/// A variable that is set but cannot be used: empty, not UTF-8, or not of
/// its form. Its text names the variable and the fix, never the value of a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// The variable, e.g. `RELUKKO_LEASE`.
    pub name: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl VarError {
    fn new(name: &str, reason: impl Into<String>) -> VarError {
        VarError {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for VarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid setting {}: {}", self.name, self.reason)
    }
}

impl std::error::Error for VarError {}

type Result<T> = std::result::Result<T, VarError>;

// The names of the variables, each written once here.

/// Upstream's skip switch: any non-empty value turns all locking off.
pub const SKIP: &str = "RELUKKO_TRUST_ME_IT_IS_LOCKED";
/// The server URL, and upstream's alias for it.
pub const URL_VARS: [&str; 2] = ["RELUKKO_URL", "RELUKKO_BASE_URL"];
/// The folder of the local backend's lock files.
pub const LOCAL_DIR: &str = "RELUKKO_LOCAL_DIR";
/// The longest wait for a resource.
pub const WAIT_TIMEOUT: &str = "RELUKKO_TIMEOUT";
/// How long the server keeps a lock without a heartbeat.
pub const LEASE: &str = "RELUKKO_LEASE";
/// Put in front of every lock name, so teams can share one server.
pub const PREFIX: &str = "RELUKKO_LOCK_PREFIX";
/// Overrides the derived creator text.
pub const CREATOR: &str = "RELUKKO_CREATOR";

/// The API key, sent as `X-API-Key`.
pub const API_KEY: &str = "RELUKKO_API_KEY";
/// The client's per-attempt request timeout.
pub const REQUEST_TIMEOUT: &str = "RELUKKO_REQUEST_TIMEOUT";
/// The client's connect timeout.
pub const CONNECT_TIMEOUT: &str = "RELUKKO_CONNECT_TIMEOUT";
/// Whether waiters watch the server's WebSocket.
pub const WEBSOCKET: &str = "RELUKKO_WEBSOCKET";
/// Turns off releasing every lease on SIGINT, SIGTERM and SIGHUP.
pub const SIGNALS: &str = "RELUKKO_SIGNALS";

/// Extra CA bundles (a PEM file or a folder); the first that is set wins.
pub const CA_BUNDLE_VARS: [&str; 3] = ["RELUKKO_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"];

// The server binary's settings (`relukko-server`).

/// The address it binds.
pub const BIND_ADDR: &str = "RELUKKO_BIND_ADDR";
/// The port it binds.
pub const BIND_PORT: &str = "RELUKKO_BIND_PORT";
/// How long an expired lock lingers before the clean-up removes it.
pub const CLEANUP_GRACE: &str = "RELUKKO_CLEANUP_GRACE";
/// How often the clean-up runs.
pub const CLEANUP_INTERVAL: &str = "RELUKKO_CLEANUP_INTERVAL";
/// The log level.
pub const LOG: &str = "RELUKKO_LOG";
/// The database file that keeps locks across restarts.
pub const DB: &str = "RELUKKO_DB";
/// Upstream's name for the PostgreSQL URL; read when [`DB`] is not set.
pub const DATABASE_URL: &str = "DATABASE_URL";
/// The login of the page at `/`, with [`PASSWORD`].
pub const USER: &str = "RELUKKO_USER";
/// The password of the page at `/`, with [`USER`].
pub const PASSWORD: &str = "RELUKKO_PASSWORD";

/// How long a client may take to send a request head.
pub const HEAD_TIMEOUT: &str = "RELUKKO_HEAD_TIMEOUT";
/// How long a client may take to send a request body.
pub const BODY_TIMEOUT: &str = "RELUKKO_BODY_TIMEOUT";
/// How long a kept-alive connection may stay idle.
pub const IDLE_TIMEOUT: &str = "RELUKKO_IDLE_TIMEOUT";
/// The most HTTP connections served at once.
pub const MAX_CONNECTIONS: &str = "RELUKKO_MAX_CONNECTIONS";
/// The most WebSocket clients at once.
pub const MAX_WEBSOCKETS: &str = "RELUKKO_MAX_WEBSOCKETS";

/// Set by `relukko run` for its command: the names it holds, comma-separated.
pub const HELD: &str = "RELUKKO_HELD";
/// Set by `relukko run` for its command: what identifies each lock it holds
/// (a JSON array), so a descendant asking for one of those names takes it
/// inside that hold once it has checked that the hold is alive.
pub const HELD_PROOF: &str = "RELUKKO_HELD_PROOF";

/// Every variable this crate reads or sets, for the misspelling check.
pub const ALL: [&str; 31] = [
    URL_VARS[0],
    URL_VARS[1],
    API_KEY,
    LOCAL_DIR,
    WAIT_TIMEOUT,
    LEASE,
    PREFIX,
    CREATOR,
    REQUEST_TIMEOUT,
    CONNECT_TIMEOUT,
    WEBSOCKET,
    SIGNALS,
    CA_BUNDLE_VARS[0],
    CA_BUNDLE_VARS[1],
    CA_BUNDLE_VARS[2],
    SKIP,
    BIND_ADDR,
    BIND_PORT,
    CLEANUP_GRACE,
    CLEANUP_INTERVAL,
    LOG,
    DB,
    USER,
    PASSWORD,
    HEAD_TIMEOUT,
    BODY_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_CONNECTIONS,
    MAX_WEBSOCKETS,
    HELD,
    HELD_PROOF,
];

/// Settings read through `lookup` (variable name to raw value, `None` when unset).
pub struct Vars<F> {
    lookup: F,
}

impl<F> std::fmt::Debug for Vars<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The values may hold secrets (the API key): show none.
        f.debug_struct("Vars").finish_non_exhaustive()
    }
}

/// The process environment.
pub fn process() -> Vars<fn(&str) -> Option<OsString>> {
    Vars::new(|name| std::env::var_os(name))
}

impl Vars<fn(&str) -> Option<OsString>> {
    /// A fixed set of variables instead of the process environment: what a
    /// test of a settings reader gives it.
    ///
    /// ```
    /// let env = relukko_protocol::vars::Vars::from_pairs(&[("RELUKKO_LEASE", "30s")]);
    /// assert_eq!(env.text("RELUKKO_LEASE").unwrap().as_deref(), Some("30s"));
    /// assert_eq!(env.text("RELUKKO_TIMEOUT").unwrap(), None);
    /// ```
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<OsString>> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        Vars::new(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }
}

impl<F: Fn(&str) -> Option<OsString>> Vars<F> {
    /// A reader over `lookup` (a variable's name to its raw value, `None` when unset).
    pub fn new(lookup: F) -> Self {
        Vars { lookup }
    }

    /// The raw value, for paths that need not be UTF-8.
    pub fn raw(&self, name: &str) -> Option<OsString> {
        (self.lookup)(name)
    }

    /// A variable's value, trimmed; `None` when unset. Set but empty, or not
    /// UTF-8, is an error naming the variable: a half-configured environment
    /// should fail loudly rather than be taken for "unset".
    pub fn text(&self, name: &str) -> Result<Option<String>> {
        match self.raw(name).map(OsString::into_string) {
            None => Ok(None),
            Some(Ok(v)) if v.trim().is_empty() => Err(VarError::new(
                name,
                "is set but empty: unset it or give it a value",
            )),
            Some(Ok(v)) => Ok(Some(v.trim().to_owned())),
            Some(Err(_)) => Err(VarError::new(name, "is not valid UTF-8")),
        }
    }

    /// The first of several alias variables that is set, with the name it was
    /// found under.
    pub fn first(&self, names: &[&'static str]) -> Result<Option<(&'static str, String)>> {
        for &name in names {
            if let Some(v) = self.text(name)? {
                return Ok(Some((name, v)));
            }
        }
        Ok(None)
    }

    /// A switch in upstream's style: set to any non-empty value means on.
    pub fn flag(&self, name: &str) -> bool {
        self.raw(name).is_some_and(|v| !v.is_empty())
    }

    /// A duration in a readable form (`"500ms"`, `"10s"`, `"2m 30s"`), or a
    /// bare number of seconds.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>> {
        let Some(v) = self.text(name)? else {
            return Ok(None);
        };
        parse_duration(&v)
            .map(Some)
            .map_err(|reason| VarError::new(name, reason))
    }
}

/// Parses `"500ms"`, `"10s"`, `"2m 30s"`, or a bare number of seconds.
pub fn parse_duration(v: &str) -> std::result::Result<Duration, String> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(v).map_err(|e| {
        format!(
            "{v:?} is not a duration ({e}); write it like \"500ms\", \"30s\", \"10m\" or \"1h 30m\""
        )
    })
}

/// The optimal string alignment distance (edits: insert, delete,
/// substitute, swap of neighbours) from `a` to `b`, on bytes, if it is at
/// most `max`. Gives up as soon as it must be more: most names in an
/// environment are nothing like ours, and each test process checks them all.
/// `b`, the name meant, is one of ours: shorter than 40 bytes.
///
/// The library's check for misspelt variables and the attribute's option
/// hints both use it.
///
/// ```
/// use relukko_protocol::vars::edit_distance_within;
/// assert_eq!(edit_distance_within("RELUKO_URL", "RELUKKO_URL", 2), Some(1));
/// assert_eq!(edit_distance_within("RELUKKO_ULR", "RELUKKO_URL", 2), Some(1)); // a swap
/// assert_eq!(edit_distance_within("PATH", "RELUKKO_URL", 2), None);
/// ```
pub fn edit_distance_within(a: &str, b: &str, max: usize) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    // Rows i-2, i-1 and i of the table, on the stack: `b` is one of ours.
    const WIDTH: usize = 40;
    if b.len() >= WIDTH {
        return None;
    }
    let mut prev2 = [0; WIDTH];
    let mut prev: [usize; WIDTH] = std::array::from_fn(|j| j);
    let mut cur = [0; WIDTH];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        // Every path to the end crosses rows i and i-1 (a swap spans two).
        let row = b.len() + 1;
        if cur[..row].iter().chain(&prev[..row]).all(|&d| d > max) {
            return None;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|&d| d <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<OsString>> {
        Vars::from_pairs(pairs)
    }

    #[test]
    fn distances() {
        assert_eq!(
            edit_distance_within("RELUKKO_URL", "RELUKKO_URL", 2),
            Some(0)
        );
        assert_eq!(
            edit_distance_within("RELUKO_URL", "RELUKKO_URL", 2),
            Some(1)
        );
        assert_eq!(
            edit_distance_within("RELUKKO_ULR", "RELUKKO_URL", 2),
            Some(1)
        );
        assert_eq!(edit_distance_within("", "ABC", 3), Some(3));
        assert_eq!(edit_distance_within("", "ABC", 2), None);
        assert_eq!(edit_distance_within("KITTEN", "SITTING", 3), Some(3));
        assert_eq!(edit_distance_within("KITTEN", "SITTING", 2), None);
        assert!(ALL.iter().all(|k| k.len() < 40));
        // A swap late in the name, after rows whose minimum is already max.
        assert_eq!(
            edit_distance_within("RELUKKO_LAESE", "RELUKKO_LEASE", 1),
            Some(1)
        );
        assert_eq!(
            edit_distance_within("XRELUKKO_LAESE", "RELUKKO_LEASE", 2),
            Some(2)
        );
        assert_eq!(
            edit_distance_within("CARGO_PKG_NAME", "RELUKKO_LEASE", 2),
            None
        );
    }

    #[test]
    fn durations_in_readable_forms() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m 30s").unwrap(), Duration::from_secs(150));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
        assert!(parse_duration("-3s").is_err());
    }

    #[test]
    fn empty_and_junk_name_the_variable() {
        let v = vars(&[("A", "  "), ("D", "soon"), ("B", " x "), ("F", "")]);
        assert_eq!(v.text("B").unwrap().as_deref(), Some("x"));
        assert_eq!(v.text("nope").unwrap(), None);
        for (name, err) in [
            ("A", v.text("A").unwrap_err()),
            ("D", v.duration("D").unwrap_err()),
        ] {
            assert!(err.name == name, "{err}");
        }
        assert!(!v.flag("F"), "empty means off, as upstream");
        assert!(v.flag("B"));
        assert_eq!(
            v.first(&["nope", "B"]).unwrap(),
            Some(("B", "x".to_owned()))
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let v = Vars::new(|_: &str| Some(OsString::from_vec(vec![0xff, 0xfe])));
        assert!(v.text("X").unwrap_err().to_string().contains("UTF-8"));
    }
}
