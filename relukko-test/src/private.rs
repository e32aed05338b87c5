//! The hidden entry points that `#[relukko::locked]` expands to. Not public API:
//! anything here may change in any release.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
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

    fn cannot_lock(&self, e: crate::Error) -> ! {
        panic!(
            "relukko: test {} could not lock {}: {e}",
            self.test,
            self.what()
        )
    }

    /// Reports the end of a locked body; panics (fails the test) if the lease
    /// was lost while it ran.
    fn after<R>(&self, finish: Finish, result: std::thread::Result<R>) -> R {
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
                    "relukko: test {} lost its lock while it ran: {lost}",
                    self.test
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

/// Holds the resources of `spec` around a synchronous body.
pub fn run_sync<R>(spec: &Spec, body: impl FnOnce(Lease) -> R) -> R {
    let lease = match crate::locker().and_then(|l| l.lock_blocking(spec.options())) {
        Ok(lease) => lease,
        Err(e) => spec.cannot_lock(e),
    };
    let result = catch_unwind(AssertUnwindSafe(|| body(lease.clone())));
    // Released and confirmed before the test returns: under nextest the
    // process exits right after.
    let finish = lease.finish_blocking();
    spec.after(finish, result)
}

/// Holds the resources of `spec` around an asynchronous body.
pub async fn run_async<R, Fut>(spec: &Spec, body: impl FnOnce(Lease) -> Fut) -> R
where
    Fut: Future<Output = R>,
{
    let locked = match crate::locker() {
        Ok(l) => l.lock(spec.options()).await,
        Err(e) => Err(e),
    };
    let lease = match locked {
        Ok(lease) => lease,
        Err(e) => spec.cannot_lock(e),
    };
    let body_lease = lease.clone();
    let result = AssertUnwindSafe(async move { body(body_lease).await })
        .catch_unwind()
        .await;
    let finish = lease.finish().await;
    spec.after(finish, result)
}
