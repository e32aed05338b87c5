//! The hidden entry points that `#[relukko::locked]` expands to. Not public API:
//! anything here may change in any release.

use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::time::Duration;

use futures_util::FutureExt;

use crate::lease::Finish;
use crate::lease::Lease;
use crate::locker::LockOptions;
use crate::locker::held;
use crate::report::stderr;

/// What one `#[locked(...)]` attribute asks for.
#[derive(Debug)]
pub struct Spec {
    /// The resources, as written. Empty: derive one name from `test`.
    pub names: &'static [&'static str],
    /// `any_of(...)`: hold whichever one of `names` is free first.
    pub any_of: bool,
    /// `timeout = "..."`: the longest wait; `None` for the configured default.
    pub timeout: Option<Duration>,
    /// `lease = "..."`: how long the server keeps the lock without a heartbeat.
    pub lease: Option<Duration>,
    /// `creator = "..."`: overrides the derived creator text.
    pub creator: Option<&'static str>,
    /// `concat!(module_path!(), "::", <fn name>)`.
    pub test: &'static str,
}

/// Why a locked test must fail although its body may have done what it
/// should: the lock was never held, or was lost while the body ran. An async
/// test's expansion fails with it through [`fail`].
#[derive(Debug)]
pub struct Failure(String);

impl Spec {
    fn options(&self) -> LockOptions {
        let mut o = if self.names.is_empty() {
            LockOptions::new(self.test)
        } else if self.any_of {
            LockOptions::any_of(self.names.iter().copied())
        } else {
            LockOptions::all_of(self.names.iter().copied())
        };
        o = o.test(self.test);
        if let Some(t) = self.timeout {
            o = o.timeout(t);
        }
        if let Some(l) = self.lease {
            o = o.lease(l);
        }
        if let Some(c) = self.creator {
            o = o.creator(c);
        }
        o
    }

    fn what(&self) -> String {
        match self.names {
            [] => self.test.to_owned(),
            names if self.any_of => format!("any of {}", names.join(", ")),
            names => names.join(", "),
        }
    }

    /// The failure of a test whose resources could not be locked. `at` is
    /// where the test is, for async tests whose panic location cannot be
    /// tracked.
    fn cannot_lock(&self, e: crate::error::Error, at: Option<&Location<'_>>) -> Failure {
        // A timeout names the resource it waited for; when that is what this
        // message names already (one resource or a pool), say it once.
        let why = if self.names.len() > 1 && !self.any_of {
            e.to_string()
        } else {
            e.without_resource()
        };
        Failure(format!(
            "relukko: test {} could not lock {}: {why}{}",
            self.test,
            self.what(),
            at_suffix(at)
        ))
    }

    /// Reports the end of a locked body: its value, a failure if the lease
    /// was lost while it ran, or its panic, resumed.
    ///
    /// A `#[should_panic]` test whose body panicked after its lock was lost
    /// fails too: the panic it expected happened without the lock, so its
    /// panic is not resumed (that would count as the expected one).
    fn after<R>(
        &self,
        finish: Finish,
        result: std::thread::Result<R>,
        at: Option<&Location<'_>>,
        should_panic: bool,
    ) -> Result<R, Failure> {
        for e in &finish.errors {
            stderr::line(&format!(
                "test {}: could not release {e} (the lock expires on its own after its lease)",
                self.test
            ));
        }
        match (result, finish.lost) {
            (Ok(r), None) => Ok(r),
            (Ok(_), Some(lost)) => Err(Failure(format!(
                "relukko: test {} lost its lock while it ran: {lost}{}",
                self.test,
                at_suffix(at)
            ))),
            (Err(_), Some(lost)) if should_panic => Err(Failure(format!(
                "relukko: test {} lost its lock while it ran: {lost}; its panic does not count \
                 as the expected one, the body was no longer protected{}",
                self.test,
                at_suffix(at)
            ))),
            (Err(panic), lost) => {
                if let Some(lost) = lost {
                    stderr::line(&format!(
                        "test {} also lost its lock while it ran: {lost}",
                        self.test
                    ));
                }
                resume_unwind(panic)
            }
        }
    }
}

/// Fails an ordinary test: panics with the failure (at the caller's
/// location, the test's `#[locked]` attribute: an async test's expansion
/// calls it from the test's own body, where the attribute's span is).
#[track_caller]
pub fn fail(f: Failure) -> ! {
    panic!("{}", f.0)
}

/// Fails a `#[should_panic]` test: a panic would make it pass, so the
/// failure is written to the test's output and the test returns normally;
/// the harness then fails it ("did not panic as expected").
fn fail_without_panic(f: Failure) {
    eprintln!(
        "{}\nrelukko: this #[should_panic] test fails (\"did not panic as expected\") \
         instead of panicking: a failure to hold its lock must not count as its expected panic",
        f.0
    );
}

/// `" (#[locked] at src/x.rs:10:1)"` when the panic location cannot say it.
fn at_suffix(at: Option<&Location<'_>>) -> String {
    at.map(|l| format!(" (#[locked] at {l})"))
        .unwrap_or_default()
}

/// Holds the resources of `spec` around a synchronous body.
///
/// `#[track_caller]`: a failure to lock, or a lost lock, panics at the
/// test's `#[locked]` attribute (the generated call carries its span), not
/// in this file.
#[track_caller]
pub fn run_sync<R>(spec: &Spec, body: impl FnOnce(Lease) -> R) -> R {
    match locked_sync(spec, body, None, false) {
        Ok(r) => r,
        Err(f) => fail(f),
    }
}

/// [`run_sync`] for a `#[should_panic]` test: a locking failure fails it
/// without a panic (see `fail_without_panic`), so its message names the
/// test's location itself.
#[track_caller]
pub fn run_sync_should_panic(spec: &Spec, body: impl FnOnce(Lease)) {
    if let Err(f) = locked_sync(spec, body, Some(Location::caller()), true) {
        fail_without_panic(f);
    }
}

fn locked_sync<R>(
    spec: &Spec,
    body: impl FnOnce(Lease) -> R,
    at: Option<&Location<'_>>,
    should_panic: bool,
) -> Result<R, Failure> {
    let (locker, lease) = crate::locker()
        .and_then(|l| Ok((l.clone(), l.lock_blocking(spec.options())?)))
        .map_err(|e| spec.cannot_lock(e, at))?;
    // A fixture of this test locking the same resource fails at once.
    let held = held::enter_thread(locker.holding(spec.test, &lease));
    let result = catch_unwind(AssertUnwindSafe(|| body(lease.clone())));
    drop(held);
    // Released and confirmed before the test returns: under nextest the
    // process exits right after.
    let finish = lease.finish_blocking();
    spec.after(finish, result, at, should_panic)
}

/// Holds the resources of `spec` around an asynchronous body.
///
/// A failure to lock, or a lost lock, is returned: `#[track_caller]` does
/// not reach into async bodies, so a panic here would point into this file.
/// The expansion fails the test with [`fail`], called in the test's own
/// body at the span of its `#[locked]` attribute: the harness shows the
/// test's line.
pub async fn run_async<R, Fut>(spec: &Spec, body: impl FnOnce(Lease) -> Fut) -> Result<R, Failure>
where
    Fut: Future<Output = R>,
{
    locked_async(spec, body, None, false).await
}

/// [`run_async`] for a `#[should_panic]` test: a locking failure fails it
/// without a panic (see `fail_without_panic`).
#[track_caller]
pub fn run_async_should_panic<Fut>(
    spec: &Spec,
    body: impl FnOnce(Lease) -> Fut,
) -> impl Future<Output = ()>
where
    Fut: Future<Output = ()>,
{
    let at = Location::caller();
    async move {
        if let Err(f) = locked_async(spec, body, Some(at), true).await {
            fail_without_panic(f);
        }
    }
}

async fn locked_async<R, Fut>(
    spec: &Spec,
    body: impl FnOnce(Lease) -> Fut,
    at: Option<&Location<'_>>,
    should_panic: bool,
) -> Result<R, Failure>
where
    Fut: Future<Output = R>,
{
    let locked = match crate::locker() {
        Ok(l) => l.lock(spec.options()).await.map(|lease| (l, lease)),
        Err(e) => Err(e),
    };
    let (locker, lease) = locked.map_err(|e| spec.cannot_lock(e, at))?;
    let body_lease = lease.clone();
    // A fixture of this test locking the same resource fails at once.
    let held = locker.holding(spec.test, &lease);
    let result = held::scope(
        held,
        AssertUnwindSafe(async move { body(body_lease).await }).catch_unwind(),
    )
    .await;
    let finish = lease.finish().await;
    spec.after(finish, result, at, should_panic)
}

/// Runs the future of an `async fn` test under `#[relukko::test]` on a
/// tokio current-thread runtime of its own, every driver enabled, as
/// `#[tokio::test]` does. The waiting for the lock runs on the library's
/// background runtime as usual.
///
/// # Panics
///
/// If the runtime cannot be built (the system refuses a thread or a file
/// descriptor): the test fails with why.
pub fn block_on<F: Future>(test: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(test),
        Err(e) => panic!("relukko: cannot start the test's tokio runtime: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::Spec;
    use crate::error::Error;
    use crate::lease::Finish;

    fn spec(names: &'static [&'static str], any_of: bool) -> Spec {
        Spec {
            names,
            any_of,
            timeout: None,
            lease: None,
            creator: None,
            test: "m::t",
        }
    }

    fn timed_out(resource: &str) -> Error {
        Error::WaitTimeout {
            resource: resource.into(),
            waited: Duration::from_secs(4),
            holder: Some("ci".into()),
        }
    }

    /// The message names each resource once: where the test's own list names
    /// it already (one name, a pool, a derived name) the timeout does not
    /// repeat it; of several names it says which one timed out.
    #[test]
    fn a_timeout_names_the_resource_it_waited_for_once() {
        let cases: [(&[&str], bool, &str, &str); 4] = [
            (&["a"], false, "a", "a: timed out after 4.0s, held by ci"),
            (
                &["a", "b"],
                false,
                "b",
                "a, b: timed out after 4.0s waiting for b, held by ci",
            ),
            (
                &["a", "b"],
                true,
                "b",
                "any of a, b: timed out after 4.0s, held by ci",
            ),
            (&[], false, "m::t", "m::t: timed out after 4.0s, held by ci"),
        ];
        for (names, any_of, resource, want) in cases {
            let f = spec(names, any_of).cannot_lock(timed_out(resource), None);
            assert_eq!(f.0, format!("relukko: test m::t could not lock {want}"));
        }
    }

    /// A test whose body panicked and whose lock was lost: an ordinary test
    /// fails with its own panic (the lost lock is a line on stderr); only a
    /// `#[should_panic]` test gets the lost-lock failure instead, because its
    /// panic must not count as the expected one.
    #[test]
    fn a_panic_with_a_lost_lock_goes_on_unless_it_was_expected() {
        let lost = || Finish {
            lost: Some("deleted".into()),
            errors: Vec::new(),
        };
        let panicked = || -> std::thread::Result<()> { Err(Box::new("boom")) };
        let s = spec(&["a"], false);
        match catch_unwind(AssertUnwindSafe(|| {
            s.after(lost(), panicked(), None, false)
        })) {
            Err(payload) => assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom")),
            Ok(Ok(())) => panic!("the body's panic was swallowed"),
            Ok(Err(f)) => panic!("the body's panic became: {}", f.0),
        }
        match s.after(lost(), panicked(), None, true) {
            Err(f) => assert!(
                f.0.contains("lost its lock while it ran: deleted; its panic does not count"),
                "{}",
                f.0
            ),
            Ok(()) => panic!("a should_panic test whose lock was lost passed"),
        }
    }
}
