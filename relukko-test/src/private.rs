//! The hidden entry points that `#[relukko::locked]` expands to. Not public API:
//! anything here may change in any release.

use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::time::Duration;

use futures_util::FutureExt;

use crate::lease::Finish;
pub use crate::lease::Lease;
use crate::locker::LockOptions;
use crate::report;

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

    /// Fails the test: its resources could not be locked. `at` is where the
    /// test is, for async tests whose panic location cannot be tracked.
    #[track_caller]
    fn cannot_lock(&self, e: crate::Error, at: Option<&Location<'_>>) -> ! {
        // A timeout names the resource it waited for; when that is what this
        // message names already (one resource or a pool), say it once.
        let why = if self.names.len() > 1 && !self.any_of {
            e.to_string()
        } else {
            e.without_resource()
        };
        panic!(
            "relukko: test {} could not lock {}: {why}{}",
            self.test,
            self.what(),
            at_suffix(at)
        )
    }

    /// Reports the end of a locked body; panics (fails the test) if the lease
    /// was lost while it ran.
    #[track_caller]
    fn after<R>(
        &self,
        finish: Finish,
        result: std::thread::Result<R>,
        at: Option<&Location<'_>>,
    ) -> R {
        for e in &finish.errors {
            report::line(&format!(
                "test {}: could not release {e} (the lock expires on its own after its lease)",
                self.test
            ));
        }
        match (result, finish.lost) {
            (Ok(r), None) => r,
            (Ok(_), Some(lost)) => {
                panic!(
                    "relukko: test {} lost its lock while it ran: {lost}{}",
                    self.test,
                    at_suffix(at)
                )
            }
            (Err(panic), lost) => {
                if let Some(lost) = lost {
                    report::line(&format!(
                        "test {} also lost its lock while it ran: {lost}",
                        self.test
                    ));
                }
                resume_unwind(panic)
            }
        }
    }
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
    let lease = match crate::locker().and_then(|l| l.lock_blocking(spec.options())) {
        Ok(lease) => lease,
        Err(e) => spec.cannot_lock(e, None),
    };
    let result = catch_unwind(AssertUnwindSafe(|| body(lease.clone())));
    // Released and confirmed before the test returns: under nextest the
    // process exits right after.
    let finish = lease.finish_blocking();
    spec.after(finish, result, None)
}

/// Holds the resources of `spec` around an asynchronous body.
///
/// Not an `async fn`: `#[track_caller]` does not reach into async bodies, so
/// the caller's location (the test's `#[locked]` attribute) is taken here and
/// named in the messages of the returned future's panics.
#[track_caller]
pub fn run_async<R, Fut>(spec: &Spec, body: impl FnOnce(Lease) -> Fut) -> impl Future<Output = R>
where
    Fut: Future<Output = R>,
{
    let at = Location::caller();
    async move {
        let locked = match crate::locker() {
            Ok(l) => l.lock(spec.options()).await,
            Err(e) => Err(e),
        };
        let lease = match locked {
            Ok(lease) => lease,
            Err(e) => spec.cannot_lock(e, Some(at)),
        };
        let body_lease = lease.clone();
        let result = AssertUnwindSafe(async move { body(body_lease).await })
            .catch_unwind()
            .await;
        let finish = lease.finish().await;
        spec.after(finish, result, Some(at))
    }
}
