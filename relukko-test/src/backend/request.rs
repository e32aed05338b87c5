//! The terms every backend shares: what a lock request needs, how a release
//! ended.

use std::time::Duration;

/// What a lock request needs besides the names.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The longest wait.
    pub(crate) timeout: Duration,
    /// The creator text recorded with the lock.
    pub(crate) creator: String,
    /// How long the server keeps the lock without a heartbeat.
    pub(crate) lease: Duration,
    /// The locked test waiting, named in its waiting lines.
    pub(crate) test: Option<String>,
}

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// The lock was ours and is now free.
    Freed,
    /// The lock was already gone (deleted by someone else, or expired).
    AlreadyGone,
}
