//! [`Lease`]: what a test holds while it runs.

mod exit;
pub(crate) mod signals;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::state::{LeaseState, StatusTx};
use crate::backend::{Held, Released};
use crate::error::{Error, Result};
use crate::report::{self, stderr};
use crate::rt::unpoisoned;

/// The longest an explicit release (and the one after a locked test) waits.
pub(crate) const RELEASE_BOUND: Duration = Duration::from_secs(10);
/// The longest a release from `Drop` blocks the dropping thread.
const DROP_BOUND: Duration = Duration::from_secs(5);

/// The resources a test or helper holds, from acquisition until release.
///
/// A lease is what `#[relukko::locked]` passes to a test that declares a
/// `relukko::Lease` parameter, and what [`lock`](crate::locker::lock) and
/// [`lock_blocking`](crate::locker::lock_blocking) return. Clones share one hold:
/// releasing any clone releases it for all, and dropping the last clone
/// releases it too (best effort, waiting at most a few seconds). A lease still
/// held when the process exits (leaked, or `std::process::exit`) is released
/// by an exit handler.
///
/// With a Relukko server a heartbeat keeps the lock alive every third of the
/// lease, on the library's own runtime; [`state`](Lease::state) tells how that
/// goes and [`lost`](Lease::lost) resolves if the lock is lost.
///
/// ```
/// # fn main() -> relukko::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("relukko-doc-{}", std::process::id()));
/// let locker = relukko::Locker::local(&dir);
/// let lease = locker.lock_blocking("doc-lease-rig")?;
/// assert_eq!(lease.name(), "doc-lease-rig");
/// assert_eq!(lease.state(), relukko::LeaseState::Held);
/// lease.release_blocking()?; // or just drop it
/// # let _ = std::fs::remove_dir_all(&dir);
/// # Ok(())
/// # }
/// ```
///
/// # As a test's parameter
///
/// A test learns what it holds by declaring one `Lease` parameter, by value;
/// the macro removes it and passes the lease in (with one name, no name, or an
/// `any_of` pool). **Put `#[locked]` above `#[test]` then**: written below,
/// `#[test]` expands first and rejects the parameter, and rustc says
/// "functions used as tests can not have any arguments". `#[tokio::test]`
/// works on either side.
///
/// ```
/// # use relukko::locked as test; // doc tests drop #[test] fns; this keeps the example compiled
/// use relukko::{Lease, locked};
///
/// #[locked(any_of("rig-1", "rig-2", "rig-3"))] // above #[test]
/// #[test]
/// fn flashes_on_any_rig(lease: Lease) {
///     println!("flashing on {}", lease.name());
///     assert!(lease.name().starts_with("rig-"));
/// }
/// ```
///
/// The attribute keeps a clone of the test's lease and releases it after the
/// body: dropping the parameter in the body does not release the resource
/// early. Asking for the same resource again inside the test fails at once
/// with [`Error::HeldByThisTest`]: locks are not re-entrant, use this lease.
/// If the lock is lost while the test runs, [`state`](Lease::state) turns
/// [`Uncertain`](LeaseState::Uncertain), then [`Lost`](LeaseState::Lost),
/// [`lost`](Lease::lost) resolves, and the test fails after its body; see
/// [`locked`](crate::locked) for every case.
#[derive(Clone)]
#[must_use = "dropping a Lease releases the resource at once; bind it: `let _lease = ...`"]
pub struct Lease {
    inner: Arc<Hold>,
}

pub(crate) struct Hold {
    key: u64,
    /// In acquisition order; released in reverse.
    parts: Vec<Part>,
    /// While the lease lives, SIGINT/SIGTERM/SIGHUP release it.
    _signals: signals::Guard,
}

/// One held resource.
pub(crate) struct Part {
    /// The name as asked for.
    name: String,
    /// The name as locked (with the configured prefix).
    resource: String,
    held: Mutex<Option<Held>>,
    status: StatusTx,
}

impl Part {
    /// Takes over `held` (for `test`, if a locked test holds it), starting
    /// its heartbeat if the backend needs one.
    pub(crate) fn new(
        name: String,
        resource: String,
        mut held: Held,
        lease: Duration,
        test: Option<&str>,
    ) -> Part {
        let status = StatusTx::new(&resource, test);
        held.start_keepalive(&resource, lease, &status);
        Part {
            name,
            resource,
            held: Mutex::new(Some(held)),
            status,
        }
    }

    fn take(&self) -> Option<Held> {
        unpoisoned(&self.held).take()
    }

    fn note(&self, released: &Result<Released>) {
        match released {
            Ok(Released::Freed) => self.status.released(),
            Ok(Released::AlreadyGone) => {
                self.status.lost_quietly(format!(
                    "it was already gone when released at {}: deleted by someone else, or expired",
                    report::now()
                ));
            }
            // Keep the state: the lock may still be there until it expires.
            Err(_) => {}
        }
    }

    /// The blocking form of [`release`](Part::release): blocks this thread
    /// at most `bound` whatever the background runtime does.
    pub(crate) fn release_blocking(&self, bound: Duration) -> Result<()> {
        let Some(held) = self.take() else {
            return Ok(());
        };
        let r = held.release_blocking(bound);
        self.note(&r);
        r.map(drop)
    }

    /// Releases (once) because `signal` is ending the process, waiting at
    /// most `bound`. The holder's body may still run until the process
    /// ends, and the next holder may start before that: its lease says at
    /// once that it is no longer held (lost, not released by it), so nothing
    /// reports it as held to the end.
    pub(crate) async fn release_on_signal(&self, bound: Duration, signal: &str) -> Result<()> {
        let Some(held) = self.take() else {
            return Ok(());
        };
        self.status.lost_quietly(format!(
            "released at {} because {signal} is ending the process",
            report::now()
        ));
        held.release(bound).await.map(drop)
    }

    /// Releases (once; later calls do nothing), waiting at most `bound`.
    pub(crate) async fn release(&self, bound: Duration) -> Result<()> {
        let Some(held) = self.take() else {
            return Ok(());
        };
        let r = held.release(bound).await;
        self.note(&r);
        r.map(drop)
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let Some(held) = self.take() else { return };
        if crate::rt::is_current_thread() {
            // Blocking here would wait for a task that needs this very thread.
            crate::rt::spawn_cleanup(async move {
                let _ = held.release(DROP_BOUND).await;
            });
        } else if let Err(e) = held.release_blocking(DROP_BOUND) {
            stderr::line(&format!("could not release {}: {e}", self.resource));
        }
    }
}

impl exit::Live for Hold {
    fn parts(&self) -> usize {
        self.parts.len()
    }

    fn release_at_exit(&self, bound: Duration) {
        for part in self.parts.iter().rev() {
            if let Err(e) = part.release_blocking(bound) {
                stderr::line(&format!(
                    "at exit, could not release {}: {e}",
                    part.resource
                ));
            }
        }
    }

    fn release_now(
        &self,
        bound: Duration,
        signal: &'static str,
    ) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            futures_util::future::join_all(
                self.parts
                    .iter()
                    .map(|p| p.release_on_signal(bound, signal)),
            )
            .await;
        })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        exit::unregister(self.key);
        while let Some(part) = self.parts.pop() {
            drop(part);
        }
    }
}

/// What a locked test learns when its body has ended.
#[derive(Debug, Default)]
pub(crate) struct Finish {
    /// Why the lease was lost, if it was.
    pub(crate) lost: Option<String>,
    /// Releases that failed.
    pub(crate) errors: Vec<String>,
}

impl Lease {
    /// A lease over parts acquired in order; registered for release at exit.
    pub(crate) fn new(parts: Vec<Part>) -> Lease {
        let inner = Arc::new(Hold {
            key: exit::next_key(),
            parts,
            _signals: signals::Guard::new(),
        });
        exit::register(inner.key, Arc::<Hold>::downgrade(&inner));
        Lease { inner }
    }

    /// The resource held, as asked for (without the configured prefix). For a
    /// pool (`any_of`), the one this lease got; for several resources, the
    /// first in canonical order.
    pub fn name(&self) -> &str {
        &self.inner.parts[0].name
    }

    /// Every resource held, in the order they were acquired.
    pub fn names(&self) -> Vec<&str> {
        self.inner.parts.iter().map(|p| p.name.as_str()).collect()
    }

    /// The lock name of [`name`](Lease::name) on the backend: with the prefix
    /// from `RELUKKO_LOCK_PREFIX` (or [`Locker::prefix`](crate::locker::Locker::prefix)).
    pub fn resource(&self) -> &str {
        &self.inner.parts[0].resource
    }

    /// The entries of `RELUKKO_HELD_PROOF` for what this lease holds on
    /// the backend at `place` (see `backend::nested`).
    pub(crate) fn proofs(&self, place: &str) -> Vec<serde_json::Value> {
        self.inner
            .parts
            .iter()
            .filter_map(|p| {
                let held = unpoisoned(&p.held);
                crate::backend::nested::proof(&p.resource, place, held.as_ref()?)
            })
            .collect()
    }

    /// Every resource held, as locked (with the prefix).
    pub(crate) fn resources(&self) -> Vec<String> {
        self.inner
            .parts
            .iter()
            .map(|p| p.resource.clone())
            .collect()
    }

    /// The current state; for several resources, the worst of them.
    pub fn state(&self) -> LeaseState {
        let states: Vec<LeaseState> = self
            .inner
            .parts
            .iter()
            .map(|p| p.status.get().state)
            .collect();
        [
            LeaseState::Lost,
            LeaseState::Released,
            LeaseState::Uncertain,
        ]
        .into_iter()
        .find(|s| states.contains(s))
        .unwrap_or(LeaseState::Held)
    }

    /// When and how the lease was lost, if it was.
    pub fn lost_reason(&self) -> Option<String> {
        self.inner.parts.iter().find_map(|p| {
            let s = p.status.get();
            (s.state == LeaseState::Lost)
                .then(|| format!("{}: {}", p.resource, s.reason.unwrap_or_default()))
        })
    }

    /// Resolves when the lease is lost, with an [`Error::LockLost`] saying when
    /// and how. Never resolves while the lease is held or after a normal
    /// release. Works on any executor.
    ///
    /// ```no_run
    /// # async fn demo(lease: relukko::Lease) {
    /// tokio::select! {
    ///     err = lease.lost() => panic!("{err}"),
    ///     _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
    /// }
    /// # }
    /// ```
    pub async fn lost(&self) -> Error {
        let waits = self.inner.parts.iter().map(|p| {
            let mut rx = p.status.subscribe();
            let resource = p.resource.clone();
            Box::pin(async move {
                match rx.wait_for(|s| s.state == LeaseState::Lost).await {
                    Ok(s) => Error::LockLost {
                        resource,
                        reason: s.reason.clone().unwrap_or_default(),
                    },
                    Err(_) => std::future::pending().await,
                }
            })
        });
        futures_util::future::select_all(waits).await.0
    }

    /// Releases every resource (in reverse order of acquisition), waiting at
    /// most about 10 seconds per resource; works on any executor. An error
    /// says which release failed, or that the lease had been lost
    /// ([`Error::LockLost`]) while it was held.
    pub async fn release(self) -> Result<()> {
        let failed = self.release_all().await;
        self.check(failed)
    }

    /// The blocking form of [`release`](Lease::release): blocks this thread
    /// for at most about 10 seconds per resource.
    pub fn release_blocking(self) -> Result<()> {
        let failed = self.release_all_blocking();
        self.check(failed)
    }

    /// Releases every part with `release`, in reverse order of acquisition;
    /// answers the releases that failed, with their resources. The one loop
    /// under `release` and `finish`, and their blocking forms.
    async fn release_parts<'a, F>(
        &'a self,
        release: impl Fn(&'a Part) -> F,
    ) -> Vec<(&'a str, Error)>
    where
        F: Future<Output = Result<()>> + 'a,
    {
        let mut failed = Vec::new();
        for part in self.inner.parts.iter().rev() {
            if let Err(e) = release(part).await {
                failed.push((part.resource.as_str(), e));
            }
        }
        failed
    }

    /// Releases every part, each within [`RELEASE_BOUND`], waiting on any
    /// executor.
    async fn release_all(&self) -> Vec<(&str, Error)> {
        self.release_parts(|p| p.release(RELEASE_BOUND)).await
    }

    /// Releases every part, each blocking this thread at most
    /// [`RELEASE_BOUND`] whatever the background runtime does.
    fn release_all_blocking(&self) -> Vec<(&str, Error)> {
        let parts = self.release_parts(|p| std::future::ready(p.release_blocking(RELEASE_BOUND)));
        futures_util::FutureExt::now_or_never(parts).expect("relukko: a blocking release waited")
    }

    /// The first failed release, else [`Error::LockLost`] if the lease was
    /// lost while it was held.
    fn check(&self, failed: Vec<(&str, Error)>) -> Result<()> {
        if let Some((_, e)) = failed.into_iter().next() {
            return Err(e);
        }
        match self
            .inner
            .parts
            .iter()
            .find(|p| p.status.get().state == LeaseState::Lost)
        {
            Some(p) => Err(Error::LockLost {
                resource: p.resource.clone(),
                reason: p.status.get().reason.unwrap_or_default(),
            }),
            None => Ok(()),
        }
    }

    /// Releases after a locked test's body, reporting instead of failing.
    pub(crate) fn finish_blocking(&self) -> Finish {
        let failed = self.release_all_blocking();
        self.finished(failed)
    }

    /// The async form of [`finish_blocking`](Lease::finish_blocking).
    pub(crate) async fn finish(&self) -> Finish {
        let failed = self.release_all().await;
        self.finished(failed)
    }

    fn finished(&self, failed: Vec<(&str, Error)>) -> Finish {
        Finish {
            errors: failed
                .into_iter()
                .map(|(resource, e)| format!("{resource}: {e}"))
                .collect(),
            lost: self.lost_reason(),
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("names", &self.names())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::backend::state::LeaseState;
    use crate::locker::LockOptions;
    use crate::locker::Locker;
    use crate::test_support::TempDir;

    #[test]
    fn release_blocking_frees_the_resource_for_the_next_holder() {
        let dir = TempDir::new("lease");
        // Bounded (generously): a broken hand-over fails instead of waiting
        // out the default ten minutes.
        let locker = Locker::local(dir.path()).timeout(Duration::from_secs(60));
        let lease = locker.lock_blocking("unit-lease").unwrap();
        let clone = lease.clone();
        lease.release_blocking().unwrap();
        assert_eq!(clone.state(), LeaseState::Released);
        clone.release_blocking().unwrap(); // already released: nothing to do
        let again = locker.lock_blocking("unit-lease").unwrap();
        assert_eq!(again.names(), ["unit-lease"]);
    }

    #[tokio::test]
    async fn release_is_the_async_form() {
        let dir = TempDir::new("lease-async");
        let locker = Locker::local(dir.path());
        let lease = locker.lock("unit-lease-async").await.unwrap();
        lease.release().await.unwrap();
        let _again = locker.lock("unit-lease-async").await.unwrap();
    }

    /// The async release frees the lock itself, not the drop after it: with
    /// a clone still alive (nothing dropped), the name is free at once.
    #[tokio::test]
    async fn release_frees_while_a_clone_lives() {
        let dir = TempDir::new("lease-async-clone");
        let locker = Locker::local(dir.path());
        let lease = locker.lock("unit-lease-clone").await.unwrap();
        let clone = lease.clone();
        lease.release().await.unwrap();
        assert_eq!(clone.state(), LeaseState::Released);
        let again = locker
            .lock(LockOptions::new("unit-lease-clone").timeout(Duration::ZERO))
            .await
            .expect("free at once, while a clone of the released lease lives");
        assert_eq!(again.names(), ["unit-lease-clone"]);
        drop(clone);
    }

    /// A dropped lease leaves the list the exit handler walks: a long test
    /// run that takes thousands of leases does not grow it.
    #[test]
    fn a_dropped_lease_leaves_the_exit_list() {
        let dir = TempDir::new("lease-exit-list");
        let locker = Locker::local(dir.path());
        let lease = locker.lock_blocking("unit-lease-exit-list").unwrap();
        let key = lease.inner.key;
        assert!(super::exit::registered(key));
        let clone = lease.clone();
        drop(lease);
        assert!(super::exit::registered(key), "a clone still holds it");
        drop(clone);
        assert!(!super::exit::registered(key));
    }

    /// Debug output names what is held and how it stands.
    #[test]
    fn debug_shows_names_and_state() {
        let dir = TempDir::new("lease-debug");
        let locker = Locker::local(dir.path());
        let lease = locker
            .lock_blocking(LockOptions::all_of(["unit-dbg-b", "unit-dbg-a"]))
            .unwrap();
        let text = format!("{lease:?}");
        assert!(
            text.contains(r#"names: ["unit-dbg-a", "unit-dbg-b"]"#),
            "{text}"
        );
        assert!(text.contains("state: Held"), "{text}");
    }

    #[test]
    fn a_temp_dir_is_removed_when_dropped() {
        let dir = TempDir::new("gone");
        let path = dir.path().to_owned();
        std::fs::write(path.join("f"), "x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
