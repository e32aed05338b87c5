//! The state of one held resource, shared between the lease and its heartbeat.

use std::sync::Arc;

use tokio::sync::watch;

/// What a [`Lease`](crate::lease::Lease) knows about its hold on the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeaseState {
    /// Held, and the last heartbeat (if the backend needs any) succeeded.
    Held,
    /// Probably still held, but heartbeats are failing; they are retried until
    /// the lock's confirmed expiry (minus a safety margin) passes.
    Uncertain,
    /// No longer held: deleted by someone else, or not kept alive in time.
    /// See [`Lease::lost_reason`](crate::lease::Lease::lost_reason).
    Lost,
    /// Released by its holder.
    Released,
}

/// The state and, when not `Held`, why.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub(crate) state: LeaseState,
    pub(crate) reason: Option<String>,
}

/// The sending side of a part's status: the lease and its heartbeat share it.
#[derive(Debug, Clone)]
pub(crate) struct StatusTx(Arc<watch::Sender<Status>>, Arc<Whose>);

/// Who holds the part, for the line printed when it is lost.
#[derive(Debug)]
struct Whose {
    resource: String,
    test: Option<String>,
}

impl StatusTx {
    /// The status of `resource`, held by `test` (`None`: not by a locked test).
    pub(crate) fn new(resource: &str, test: Option<&str>) -> Self {
        let whose = Whose {
            resource: resource.to_owned(),
            test: test.map(str::to_owned),
        };
        StatusTx(
            Arc::new(watch::Sender::new(Status {
                state: LeaseState::Held,
                reason: None,
            })),
            Arc::new(whose),
        )
    }

    pub(crate) fn get(&self) -> Status {
        self.0.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Status> {
        self.0.subscribe()
    }

    /// Back to `Held` after a heartbeat succeeded (not after loss or release).
    pub(crate) fn held(&self) {
        self.0.send_if_modified(|s| {
            let change = s.state == LeaseState::Uncertain;
            if change {
                *s = Status {
                    state: LeaseState::Held,
                    reason: None,
                };
            }
            change
        });
    }

    /// Heartbeats are failing.
    pub(crate) fn uncertain(&self, reason: String) {
        self.0.send_if_modified(|s| {
            let change = matches!(s.state, LeaseState::Held | LeaseState::Uncertain);
            if change {
                *s = Status {
                    state: LeaseState::Uncertain,
                    reason: Some(reason),
                };
            }
            change
        });
    }

    /// The lock is gone while it is held (found by the heartbeat); the first
    /// reason sticks. Says so on stderr at once: the test fails only when its
    /// body ends, which may be long after.
    pub(crate) fn lost(&self, reason: String) {
        let line = lost_line(&self.1.resource, self.1.test.as_deref(), &reason);
        // The line goes out before anyone can see `Lost`: whoever waits in
        // `lost()` may release and end the process at once.
        self.lose(reason, || crate::report::stderr::line(&line));
    }

    /// The lock is gone, found at release (whoever released hears of it
    /// anyway); the first reason sticks. Answers whether this was news.
    pub(crate) fn lost_quietly(&self, reason: String) -> bool {
        self.lose(reason, || {})
    }

    /// Marks the lease lost unless it already is, calling `news` first.
    fn lose(&self, reason: String, news: impl FnOnce()) -> bool {
        self.0.send_if_modified(|s| {
            let change = s.state != LeaseState::Lost;
            if change {
                news();
                *s = Status {
                    state: LeaseState::Lost,
                    reason: Some(reason),
                };
            }
            change
        })
    }

    /// Released by its holder (a loss found earlier stays recorded).
    pub(crate) fn released(&self) {
        self.0.send_if_modified(|s| {
            let change = s.state != LeaseState::Lost && s.state != LeaseState::Released;
            if change {
                *s = Status {
                    state: LeaseState::Released,
                    reason: None,
                };
            }
            change
        });
    }
}

/// The line printed when a held lock is lost, without the `relukko: ` prefix.
fn lost_line(resource: &str, test: Option<&str>, reason: &str) -> String {
    match test {
        Some(test) => format!(
            "lost {resource} while test {test} runs: {reason}; the test will fail when its body ends"
        ),
        None => {
            format!("lost {resource}: {reason}; its Lease says so in state(), lost() and release()")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lost_line_names_resource_test_and_reason() {
        assert_eq!(
            lost_line("rig", Some("m::t"), "deleted by someone else"),
            "lost rig while test m::t runs: deleted by someone else; \
             the test will fail when its body ends"
        );
        assert!(lost_line("rig", None, "x").starts_with("lost rig: x; "));
    }

    #[test]
    fn the_news_of_a_loss_goes_out_before_anyone_sees_it() {
        // Whoever waits for `Lost` may end the process at once: the stderr
        // line must already be out (it once went missing under nextest).
        use std::sync::atomic::{AtomicBool, Ordering};
        let s = StatusTx::new("rig", None);
        let mut rx = s.subscribe();
        let told = Arc::new(AtomicBool::new(false));
        let waiter = {
            let told = told.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(rx.wait_for(|st| st.state == LeaseState::Lost))
                    .unwrap();
                told.load(Ordering::SeqCst)
            })
        };
        assert!(s.lose("gone".into(), || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            told.store(true, Ordering::SeqCst);
        }));
        assert!(waiter.join().unwrap(), "Lost was seen before the news");
    }

    #[test]
    fn only_the_first_loss_is_news() {
        let s = StatusTx::new("rig", Some("m::t"));
        assert!(s.lost_quietly("first".into()));
        assert!(!s.lost_quietly("second".into()));
        s.lost("third".into());
        assert_eq!(s.get().state, LeaseState::Lost);
        assert_eq!(s.get().reason.as_deref(), Some("first"));
    }
}
