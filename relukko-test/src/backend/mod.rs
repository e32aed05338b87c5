//! Where locks live: a Relukko server, lock files on this machine, or nowhere
//! (the skip switch).
//!
//! A backend waits for one of several names (one name is the common case; a
//! pool passes several) and hands back a [`Held`] that releases it. Holding
//! several names at once is built on top, in canonical order, by the locker.

pub(crate) mod local;
pub(crate) mod nested;
#[cfg(feature = "relukko")]
pub(crate) mod remote;
#[cfg_attr(not(feature = "relukko"), allow(dead_code))]
pub(crate) mod state;
#[cfg(feature = "relukko")]
mod unreachable;

use std::sync::Arc;
use std::time::Duration;

use crate::backend::state::StatusTx;
use crate::error::Result;

/// One backend, shared by every lease it made.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Skip,
    Local(Arc<local::Local>),
    #[cfg(feature = "relukko")]
    Remote(remote::Remote),
}

/// A resource held through a backend; releasing consumes it.
#[derive(Debug)]
pub(crate) enum Held {
    Skip,
    Local(local::LocalHeld),
    #[cfg(feature = "relukko")]
    Remote(remote::RemoteHeld),
}

impl Backend {
    /// Where its locks live, for telling two lockers on the same locks
    /// apart from others; `None` for the skip backend (nothing ever waits).
    pub(crate) fn place(&self) -> Option<String> {
        match self {
            Backend::Skip => None,
            Backend::Local(local) => Some(local.place()),
            #[cfg(feature = "relukko")]
            Backend::Remote(remote) => Some(format!("relukko {}", remote.base_url())),
        }
    }

    /// Waits until one of `names` is free and takes it; answers its index.
    /// Must run on the background runtime. Dropping the future stops the
    /// wait and never leaves a lock behind.
    pub(crate) async fn acquire_any(
        &self,
        names: &[String],
        wait: &Request,
    ) -> Result<(usize, Held)> {
        match self {
            Backend::Skip => Ok((0, Held::skip())),
            Backend::Local(local) => {
                local::Local::acquire_any(local.clone(), names.to_vec(), wait.clone())
                    .await
                    .map(|(i, h)| (i, Held::Local(h)))
            }
            #[cfg(feature = "relukko")]
            Backend::Remote(remote) => remote
                .acquire_any(names, wait)
                .await
                .map(|(i, h)| (i, Held::Remote(h))),
        }
    }
}

impl Held {
    /// Takes nothing (the skip switch), and says once per process that
    /// locking is skipped.
    fn skip() -> Held {
        crate::report::stderr::skip_notice();
        Held::Skip
    }

    /// Starts what tells the lease of a loss: the heartbeat of a server's
    /// lock, which expires; the watch of a lock file, which someone may
    /// delete.
    pub(crate) fn start_keepalive(&mut self, resource: &str, lease: Duration, status: &StatusTx) {
        match self {
            Held::Skip => {}
            Held::Local(h) => h.watch(resource, status),
            #[cfg(feature = "relukko")]
            Held::Remote(h) => h.start_heartbeat(resource, lease, status.clone()),
        }
        // Local locks do not expire.
        #[cfg(not(feature = "relukko"))]
        let _ = lease;
    }

    /// Releases, waiting at most `bound`: each backend's one release. Runs
    /// on any executor (a server's release runs on the background runtime).
    #[cfg_attr(not(feature = "relukko"), allow(unused_variables))]
    pub(crate) async fn release(self, bound: Duration) -> Result<Released> {
        match self {
            Held::Skip => Ok(Released::Freed),
            Held::Local(h) => h.release(),
            #[cfg(feature = "relukko")]
            Held::Remote(h) => crate::rt::run(h.release(bound)).await,
        }
    }

    /// [`release`](Held::release), blocking this thread for at most `bound`
    /// whatever the background runtime does, so an exit handler or a `Drop`
    /// cannot hang. A release that never waits (lock files, the skip
    /// switch) runs here on this thread; a server's runs on the background
    /// runtime.
    pub(crate) fn release_blocking(self, bound: Duration) -> Result<Released> {
        match self {
            #[cfg(feature = "relukko")]
            Held::Remote(h) => {
                let timed_out = h.release_timed_out(bound);
                crate::rt::block_bounded(h.release(bound), bound).unwrap_or(Err(timed_out))
            }
            held => futures_util::FutureExt::now_or_never(held.release(bound))
                .expect("relukko: a release that never waits waited"),
        }
    }
}

// The terms every backend shares: what a lock request needs, how a release
// ended.

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
    /// The wait may block the thread that drives it: a blocking call
    /// (`lock_blocking`) driving the wait on its own thread. Otherwise a
    /// backend whose wait blocks (lock files) moves it off the executor.
    pub(crate) on_this_thread: bool,
}

/// How a release ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// The lock was ours and is now free.
    Freed,
    /// The lock was already gone (deleted by someone else, or expired).
    AlreadyGone,
}
