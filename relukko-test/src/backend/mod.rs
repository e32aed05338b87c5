//! Where locks live: a Relukko server, lock files on this machine, or nowhere
//! (the skip switch).
//!
//! A backend waits for one of several names (one name is the common case; a
//! pool passes several) and hands back a [`Held`] that releases it. Holding
//! several names at once is built on top, in canonical order, by the locker.

pub(crate) mod local;
pub(crate) mod relukko;
pub(crate) mod skip;
mod unreachable;

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::lease::StatusTx;

/// One backend, shared by every lease it made.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Skip,
    Local(Arc<local::Local>),
    Relukko(relukko::Remote),
}

/// What a lock request needs besides the names.
#[derive(Debug, Clone)]
pub(crate) struct Wait {
    /// The longest wait.
    pub(crate) timeout: Duration,
    /// The creator text recorded with the lock.
    pub(crate) creator: String,
    /// How long the server keeps the lock without a heartbeat.
    pub(crate) lease: Duration,
    /// The locked test waiting, named in its waiting lines.
    pub(crate) test: Option<String>,
}

/// A resource held through a backend; releasing consumes it.
#[derive(Debug)]
pub(crate) enum Held {
    Skip,
    Local(local::LocalHeld),
    Relukko(relukko::RemoteHeld),
}

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// The lock was ours and is now free.
    Freed,
    /// The lock was already gone (deleted by someone else, or expired).
    AlreadyGone,
}

impl Backend {
    /// Where its locks live, for telling two lockers on the same locks
    /// apart from others; `None` for the skip backend (nothing ever waits).
    pub(crate) fn place(&self) -> Option<String> {
        match self {
            Backend::Skip => None,
            Backend::Local(local) => Some(local.place()),
            Backend::Relukko(remote) => Some(format!("relukko {}", remote.base_url())),
        }
    }

    /// Waits (blocking this thread) until one of `names` is free and takes it;
    /// answers its index.
    pub(crate) fn acquire_any_blocking(
        &self,
        names: &[String],
        wait: &Wait,
    ) -> Result<(usize, Held)> {
        match self {
            Backend::Skip => Ok((0, skip::acquire())),
            Backend::Local(local) => local
                .acquire_any_blocking(names, wait, None)
                .map(|(i, h)| (i, Held::Local(h))),
            Backend::Relukko(remote) => {
                let (remote, names, wait) = (remote.clone(), names.to_vec(), wait.clone());
                crate::runtime::block_on(async move { remote.acquire_any(&names, &wait).await })
                    .map(|(i, h)| (i, Held::Relukko(h)))
            }
        }
    }

    /// Waits until one of `names` is free and takes it; answers its index.
    /// Must run on the background runtime. Dropping the future stops the
    /// wait and never leaves a lock behind.
    pub(crate) async fn acquire_any(&self, names: &[String], wait: &Wait) -> Result<(usize, Held)> {
        match self {
            Backend::Skip => Ok((0, skip::acquire())),
            Backend::Local(local) => {
                local::Local::acquire_any(local.clone(), names.to_vec(), wait.clone())
                    .await
                    .map(|(i, h)| (i, Held::Local(h)))
            }
            Backend::Relukko(remote) => remote
                .acquire_any(names, wait)
                .await
                .map(|(i, h)| (i, Held::Relukko(h))),
        }
    }
}

impl Held {
    /// Starts the heartbeat, for backends whose locks expire.
    pub(crate) fn start_keepalive(&mut self, resource: &str, lease: Duration, status: &StatusTx) {
        if let Held::Relukko(h) = self {
            h.start_heartbeat(resource, lease, status.clone());
        }
    }

    /// Releases, blocking this thread for at most `bound`.
    pub(crate) fn release_blocking(self, bound: Duration) -> Result<Released> {
        match self {
            Held::Skip => Ok(Released::Freed),
            Held::Local(h) => h.release(),
            Held::Relukko(h) => h.release_blocking(bound),
        }
    }

    /// Releases, waiting at most `bound`. Runs on any executor.
    pub(crate) async fn release(self, bound: Duration) -> Result<Released> {
        match self {
            Held::Skip => Ok(Released::Freed),
            Held::Local(h) => h.release(),
            Held::Relukko(h) => h.release(bound).await,
        }
    }
}
