//! The non-macro API: [`Locker`], [`LockOptions`], [`lock`] and
//! [`lock_blocking`].

pub(crate) mod held;
mod options;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::backend::nested::Outer;
#[cfg(feature = "relukko")]
use crate::backend::remote::Remote;
use crate::backend::{Backend, Request, local::Local};
use crate::error::{Error, Result};
use crate::lease::{Lease, Part, RELEASE_BOUND};
use crate::rt::unpoisoned;
use crate::settings::{self as config, BackendKind, Defaults};
pub use options::LockOptions;

/// Takes locks on one backend: a Relukko server, lock files on this machine,
/// or nowhere (the skip switch). Cheap to clone.
///
/// Most code uses the process-wide locker configured from the environment,
/// through `#[relukko::locked]`, [`lock`] or [`lock_blocking`]; build one
/// yourself to use a [`Client`](crate::client::Client) or folder of your choice.
///
/// ```
/// # fn main() -> relukko::Result<()> {
/// use std::time::Duration;
/// use relukko::{LockOptions, Locker};
///
/// # let dir = std::env::temp_dir().join(format!("relukko-doc-{}", std::process::id()));
/// let locker = Locker::local(&dir).timeout(Duration::from_secs(30));
/// let lease = locker.lock_blocking(LockOptions::any_of(["rig-1", "rig-2"]))?;
/// println!("testing on {}", lease.name());
/// lease.release_blocking()?;
/// # let _ = std::fs::remove_dir_all(&dir);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Locker {
    inner: Arc<LockerConfig>,
}

#[derive(Debug, Clone)]
struct LockerConfig {
    backend: Backend,
    defaults: Defaults,
    /// The holds of an ancestor (`relukko run`) that the environment claims.
    outer: Option<Arc<Outer>>,
}

/// The process-wide locker, configured from the environment on first use:
/// `RELUKKO_TRUST_ME_IT_IS_LOCKED` (no locking), else `RELUKKO_URL` /
/// `RELUKKO_BASE_URL` (a Relukko server; see [`Client::from_env`](crate::client::Client::from_env)),
/// else lock files in `RELUKKO_LOCAL_DIR` (default: `/tmp/relukko-locks` on
/// Unix, `%ProgramData%\\relukko-locks` on Windows). Also `RELUKKO_TIMEOUT`, `RELUKKO_LEASE`,
/// `RELUKKO_LOCK_PREFIX` and `RELUKKO_CREATOR`.
///
/// A bad setting is an [`Error::Config`] naming the variable; it is not
/// cached, so each call reports it.
pub fn locker() -> Result<Locker> {
    static GLOBAL: OnceLock<Locker> = OnceLock::new();
    static INIT: Mutex<()> = Mutex::new(());
    if let Some(l) = GLOBAL.get() {
        return Ok(l.clone());
    }
    let _once = unpoisoned(&INIT);
    if let Some(l) = GLOBAL.get() {
        return Ok(l.clone());
    }
    let l = Locker::from_env()?;
    Ok(GLOBAL.get_or_init(|| l).clone())
}

/// Locks with the process-wide [`locker`], blocking this thread until the
/// resource is ours or the wait times out. Works in sync code and inside any
/// runtime (it blocks that thread while it waits).
///
/// ```
/// # fn main() -> relukko::Result<()> {
/// let lease = relukko::lock_blocking("doc-rig-blocking")?;
/// // ... use the resource ...
/// lease.release_blocking()?;
/// # Ok(())
/// # }
/// ```
pub fn lock_blocking(what: impl Into<LockOptions>) -> Result<Lease> {
    locker()?.lock_blocking(what)
}

/// Locks with the process-wide [`locker`], waiting asynchronously. Works on
/// any executor: the waiting runs on the library's own runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> relukko::Result<()> {
/// use std::time::Duration;
/// let opts = relukko::LockOptions::new("doc-rig-async").timeout(Duration::from_secs(60));
/// let lease = relukko::lock(opts).await?;
/// lease.release().await?;
/// # Ok(())
/// # }
/// ```
pub async fn lock(what: impl Into<LockOptions>) -> Result<Lease> {
    let opts = what.into();
    locker()?.lock(opts).await
}

impl Locker {
    /// The locker the environment asks for; see [`locker`] for the variables.
    pub fn from_env() -> Result<Locker> {
        Locker::from_settings(config::from_env()?)
    }

    /// The locker `s` (the environment, read once) asks for.
    pub fn from_settings(s: config::Settings) -> Result<Locker> {
        let backend = match s.kind {
            BackendKind::Skip => Backend::Skip,
            BackendKind::Local { dir } => Backend::Local(Arc::new(Local::new(dir))),
            #[cfg(feature = "relukko")]
            BackendKind::Relukko { client } => {
                Backend::Remote(Remote::new(client.into_builder().build()?))
            }
        };
        Ok(Locker {
            inner: Arc::new(LockerConfig {
                backend,
                defaults: s.defaults,
                outer: Outer::from_vars(&s.outer),
            }),
        })
    }

    /// Removes the folders where the holders inside `lease` (from this
    /// locker) took turns: for `relukko run`, once its command has ended.
    pub(crate) fn remove_inside(&self, lease: &Lease) {
        let place = self.inner.backend.place().unwrap_or_default();
        crate::backend::nested::remove_inside(&lease.proofs(&place), &self.inner.backend);
    }

    /// The value of `RELUKKO_HELD_PROOF` for a command run while `lease`
    /// (from this locker) is held: what identifies each of its locks, so
    /// that the command's locks on those names are taken inside it.
    pub(crate) fn hold_proof(&self, lease: &Lease) -> String {
        let place = self.inner.backend.place().unwrap_or_default();
        let mut entries = lease.proofs(&place);
        if let Some(outer) = &self.inner.outer {
            entries.extend(outer.passed_on(&lease.resources()));
        }
        serde_json::Value::Array(entries).to_string()
    }

    /// What a locked test holding `lease` from this locker holds, for
    /// [`held`](crate::locker::held); `None` on the skip backend.
    pub(crate) fn holding(
        &self,
        test: &'static str,
        lease: &Lease,
    ) -> Option<crate::locker::held::Holding> {
        Some(crate::locker::held::Holding {
            test,
            place: self.inner.backend.place()?,
            resources: lease.resources(),
        })
    }

    fn with_backend(backend: Backend) -> Locker {
        Locker {
            inner: Arc::new(LockerConfig {
                backend,
                defaults: Defaults::default(),
                outer: None,
            }),
        }
    }

    /// Locks on the Relukko server of `client`.
    #[cfg(feature = "relukko")]
    #[must_use]
    pub fn relukko(client: crate::client::Client) -> Locker {
        Self::with_backend(Backend::Remote(Remote::new(client)))
    }

    /// Lock files in `dir` on this machine (created if missing).
    #[must_use]
    pub fn local(dir: impl Into<std::path::PathBuf>) -> Locker {
        Self::with_backend(Backend::Local(Arc::new(Local::new(dir.into()))))
    }

    /// No locking at all: every lock succeeds at once (one line on stderr
    /// says so). What `RELUKKO_TRUST_ME_IT_IS_LOCKED` selects.
    #[must_use]
    pub fn skip() -> Locker {
        Self::with_backend(Backend::Skip)
    }

    fn set(mut self, f: impl FnOnce(&mut Defaults)) -> Self {
        f(&mut Arc::make_mut(&mut self.inner).defaults);
        self
    }

    /// The default longest wait (10 minutes if not set).
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.timeout = timeout)
    }

    /// The default lease (60 seconds if not set); at least 2 seconds.
    #[must_use]
    pub fn lease(self, lease: Duration) -> Self {
        self.set(|s| s.lease = lease)
    }

    /// Put in front of every lock name, so teams can share one server.
    #[must_use]
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.set(|s| s.prefix = prefix)
    }

    /// The default creator text, instead of the derived one.
    #[must_use]
    pub fn creator(self, creator: impl Into<String>) -> Self {
        let creator = creator.into();
        self.set(|s| s.creator = Some(creator))
    }

    /// Locks, blocking this thread until the resources are ours or the wait
    /// times out ([`Error::WaitTimeout`], naming the holder). The wait runs
    /// on the library's runtime, as [`lock`](Locker::lock)'s does; this
    /// thread (also one of another runtime) blocks until it ends.
    pub fn lock_blocking(&self, what: impl Into<LockOptions>) -> Result<Lease> {
        let mut plan = self.plan(what.into())?;
        match &self.inner.backend {
            // Lock files and the skip switch need no I/O: the one core runs
            // here, its wait blocking this thread as a blocking call may.
            // Starting the background runtime's threads for it would cost
            // every fresh test process about half a millisecond.
            Backend::Local(_) | Backend::Skip => {
                plan.wait.on_this_thread = true;
                crate::rt::block_here(acquire(self.inner.clone(), plan))
            }
            #[cfg(feature = "relukko")]
            Backend::Remote(_) => crate::rt::block_on(acquire(self.inner.clone(), plan)),
        }
    }

    /// Locks, waiting asynchronously on the library's runtime; works on any
    /// executor. Dropping the future stops the wait and leaves no lock behind.
    pub async fn lock(&self, what: impl Into<LockOptions>) -> Result<Lease> {
        let plan = self.plan(what.into())?;
        on_background(acquire(self.inner.clone(), plan)).await
    }

    fn plan(&self, opts: LockOptions) -> Result<Plan> {
        let (s, backend) = (&self.inner.defaults, &self.inner.backend);
        if opts.names.is_empty() {
            return Err(Error::config(
                "lock names",
                "no resource to lock: give at least one name",
            ));
        }
        if opts.names.iter().any(|n| n.trim().is_empty()) {
            return Err(Error::config("lock names", "a resource name is empty"));
        }
        let lease = crate::rt::capped(opts.lease.unwrap_or(s.lease));
        config::check_lease("lease", lease)?;
        let mut wanted: Vec<Wanted> = opts
            .names
            .into_iter()
            .map(|name| Wanted {
                resource: format!("{}{name}", s.prefix),
                name,
            })
            .collect();
        if opts.any_of {
            // Keep the order given (the first free one wins), without repeats.
            let mut seen = std::collections::HashSet::new();
            wanted.retain(|w| seen.insert(w.resource.clone()));
        } else {
            // One canonical order for everyone: no deadlock between overlapping sets.
            wanted.sort_by(|a, b| (&a.resource, &a.name).cmp(&(&b.resource, &b.name)));
            wanted.dedup_by(|a, b| a.resource == b.resource);
        }
        let creator = match opts.creator.or_else(|| s.creator.clone()) {
            Some(c) => c,
            None => crate::settings::creator::for_test(opts.test.as_deref()),
        };
        let test = opts.test;
        if let Some((resource, test)) = backend.place().and_then(|place| {
            crate::locker::held::held_by_this_test(&place, &resources(&wanted), opts.any_of)
        }) {
            let name = wanted
                .iter()
                .find(|w| w.resource == resource)
                .map(|w| w.name.clone());
            return Err(Error::HeldByThisTest {
                resource: name.unwrap_or(resource),
                test: test.to_owned(),
            });
        }
        let groups = if opts.any_of {
            vec![wanted]
        } else {
            wanted.into_iter().map(|w| vec![w]).collect()
        };
        Ok(Plan {
            groups,
            test: test.clone(),
            wait: Request {
                timeout: crate::rt::capped(opts.timeout.unwrap_or(s.timeout)),
                creator,
                lease,
                test,
                on_this_thread: false,
            },
        })
    }
}

/// One resource asked for: its name as written, and its lock name on the
/// backend (with the configured prefix).
#[derive(Debug, Clone)]
struct Wanted {
    name: String,
    resource: String,
}

/// The lock names of `group`, as the backend takes them.
fn resources(group: &[Wanted]) -> Vec<String> {
    group.iter().map(|w| w.resource.clone()).collect()
}

/// A lock request, checked and in canonical order.
#[derive(Debug)]
struct Plan {
    /// Each group is waited for in turn; from a group, any one member is taken.
    groups: Vec<Vec<Wanted>>,
    /// The locked test holding it, if one does.
    test: Option<String>,
    wait: Request,
}

impl Plan {
    fn wait_from(&self, start: Instant) -> Request {
        Request {
            timeout: self.wait.timeout.saturating_sub(start.elapsed()),
            ..self.wait.clone()
        }
    }

    /// The part for `wanted`, now held.
    fn part(&self, wanted: &Wanted, held: crate::backend::Held) -> Part {
        Part::new(
            wanted.name.clone(),
            wanted.resource.clone(),
            held,
            self.wait.lease,
            self.test.as_deref(),
        )
    }
}

/// Waits for every group of `plan` in turn on the locker's backend: the one
/// way locks are taken, under [`Locker::lock`] and [`Locker::lock_blocking`].
/// A name an ancestor's checked hold covers is taken inside that hold
/// instead (see `backend::nested`). Runs on the background runtime.
/// Dropping it mid-wait leaves no lock behind.
async fn acquire(locker: Arc<LockerConfig>, plan: Plan) -> Result<Lease> {
    let backend = &locker.backend;
    // A signal while waiting cleans up what the wait may have made.
    let _signals = crate::lease::signals::Guard::new();
    let start = Instant::now();
    let mut parts = Vec::new();
    for group in &plan.groups {
        let wait = plan.wait_from(start);
        let covered = match &locker.outer {
            Some(outer) => {
                let names: Vec<String> = group.iter().map(|w| w.name.clone()).collect();
                outer.cover(backend, &resources(group), &names).await
            }
            None => None,
        };
        let got = match covered {
            Some((j, inside)) => Backend::Local(inside)
                .acquire_any(std::slice::from_ref(&group[j].resource), &wait)
                .await
                .map(|(_, held)| (j, held)),
            None => backend.acquire_any(&resources(group), &wait).await,
        };
        match got.map_err(|e| waited_since(e, start)) {
            Ok((j, held)) => parts.push(plan.part(&group[j], held)),
            Err(e) => {
                while let Some(p) = parts.pop() {
                    let _ = p.release(RELEASE_BOUND).await;
                }
                return Err(e);
            }
        }
    }
    if crate::lease::signals::stopping() {
        // A signal is ending the process and cleaning up what this wait got:
        // the caller must never run with it. The end comes soon; never block
        // a thread of the runtime that runs the clean-up.
        std::future::pending::<()>().await;
    }
    Ok(Lease::new(parts))
}

/// A timeout counts the whole wait, over all the names waited for in turn.
fn waited_since(e: Error, start: Instant) -> Error {
    match e {
        Error::WaitTimeout {
            resource, holder, ..
        } => Error::WaitTimeout {
            resource,
            waited: crate::report::round_ms(start.elapsed()),
            holder,
        },
        e => e,
    }
}

/// Runs `fut` on the background runtime; dropping the returned future aborts it.
async fn on_background<F>(fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = crate::rt::spawn_cleanup(fut);
    let _abort = crate::rt::AbortOnDrop::new(&task);
    crate::rt::joined(task.await, "background task")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{LockOptions, Locker};
    use crate::error::Error;
    use crate::test_support::TempDir;

    /// A test asking again for a resource it holds is told so by the name it
    /// asked for, not by the lock name with the configured prefix.
    #[test]
    fn held_by_this_test_names_the_resource_as_asked() {
        let dir = TempDir::new("self-prefix");
        let locker = Locker::local(dir.path()).prefix("team-");
        let lease = locker
            .lock_blocking(LockOptions::all_of(["a", "b"]).test("m::t"))
            .unwrap();
        assert_eq!(lease.resources(), ["team-a", "team-b"]);
        let held = crate::locker::held::enter_thread(locker.holding("m::t", &lease));
        let again = LockOptions::new("b").timeout(Duration::from_secs(60));
        let err = locker.lock_blocking(again).unwrap_err();
        assert!(
            matches!(&err, Error::HeldByThisTest { resource, test } if resource == "b" && test == "m::t"),
            "{err:?}"
        );
        drop(held);
        lease.release_blocking().unwrap();
    }

    /// `lock_blocking` from inside a runtime (a `#[tokio::test]` calling it)
    /// waits on the library's runtime: the caller's single thread blocks, the
    /// wait still ends, and a lease dropped or released there frees its
    /// resource for the next call.
    #[tokio::test]
    async fn lock_blocking_works_inside_a_current_thread_runtime() {
        let dir = TempDir::new("in-runtime");
        let locker = Locker::local(dir.path()).timeout(Duration::from_millis(300));
        let lease = locker.lock_blocking("unit-in-runtime").unwrap();
        let err = locker.lock_blocking("unit-in-runtime").unwrap_err();
        assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
        drop(lease);
        let again = locker.lock_blocking("unit-in-runtime").unwrap();
        again.release_blocking().unwrap();
        let and_again = locker.lock("unit-in-runtime").await.unwrap();
        and_again.release().await.unwrap();
    }

    /// `RELUKKO_TIMEOUT=18446744073709551615` or `timeout = "100000000h"`
    /// mean "practically forever": the deadline must not overflow `Instant`.
    #[test]
    fn overflowing_durations_mean_practically_forever() {
        let parsed = crate::settings::vars::parse_duration("18446744073709551615").unwrap();
        let dir = TempDir::new("forever");
        for d in [
            parsed,
            Duration::from_secs(100_000_000 * 3600),
            Duration::MAX,
        ] {
            let locker = Locker::local(dir.path()).timeout(d).lease(d);
            let lease = locker.lock_blocking("unit-forever").unwrap();
            lease.release_blocking().unwrap();
            let opts = LockOptions::new("unit-forever").timeout(d).lease(d);
            let lease = Locker::local(dir.path()).lock_blocking(opts).unwrap();
            lease.release_blocking().unwrap();
        }
    }
}
