//! [`LockOptions`]: what to lock and how.

use std::time::Duration;

/// What to lock and how: the names, and options that override the locker's.
///
/// A plain `&str` or `String` converts into options for that one name.
///
/// ```
/// use std::time::Duration;
/// use relukko::LockOptions;
///
/// let one = LockOptions::new("hil-rig-3").timeout(Duration::from_secs(60));
/// let both = LockOptions::all_of(["db", "rig"]).lease(Duration::from_secs(30));
/// let pool = LockOptions::any_of(["rig-1", "rig-2", "rig-3"]).creator("nightly fixture");
/// # let _ = (one, both, pool);
/// ```
#[derive(Debug, Clone)]
pub struct LockOptions {
    pub(crate) names: Vec<String>,
    pub(crate) any_of: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) lease: Option<Duration>,
    pub(crate) creator: Option<String>,
    pub(crate) test: Option<String>,
}

impl LockOptions {
    /// Lock one resource.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self::all_of([name])
    }

    /// Lock all of these, acquired in one canonical (sorted) order so that
    /// holders of overlapping sets never deadlock, and released in reverse.
    #[must_use]
    pub fn all_of<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        LockOptions {
            names: names.into_iter().map(Into::into).collect(),
            any_of: false,
            timeout: None,
            lease: None,
            creator: None,
            test: None,
        }
    }

    /// Lock whichever one of these is free first (a pool);
    /// [`Lease::name`](crate::lease::Lease::name) tells which.
    #[must_use]
    pub fn any_of<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        LockOptions {
            any_of: true,
            ..Self::all_of(names)
        }
    }

    /// The longest wait (default: the locker's, 10 minutes unless
    /// `RELUKKO_TIMEOUT` says otherwise).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long the server keeps the lock without a heartbeat (default: the
    /// locker's, 60 seconds unless `RELUKKO_LEASE` says otherwise); at least 2s.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// The creator text recorded with the lock, instead of the derived
    /// `user@host test=... pid=...`.
    #[must_use]
    pub fn creator(mut self, creator: impl Into<String>) -> Self {
        self.creator = Some(creator.into());
        self
    }

    /// The test holding the lock, for the creator text.
    pub(crate) fn test(mut self, test: &str) -> Self {
        self.test = Some(test.to_owned());
        self
    }
}

impl From<&str> for LockOptions {
    fn from(name: &str) -> Self {
        LockOptions::new(name)
    }
}

impl From<String> for LockOptions {
    fn from(name: String) -> Self {
        LockOptions::new(name)
    }
}

impl From<&String> for LockOptions {
    fn from(name: &String) -> Self {
        LockOptions::new(name.as_str())
    }
}
