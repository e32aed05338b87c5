//! The state of one held resource, shared between the lease and its heartbeat.

use std::sync::Arc;

use tokio::sync::watch;

/// What a [`Lease`](crate::Lease) knows about its hold on the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeaseState {
    /// Held, and the last heartbeat (if the backend needs any) succeeded.
    Held,
    /// Probably still held, but heartbeats are failing; they are retried until
    /// the lock's confirmed expiry (minus a safety margin) passes.
    Uncertain,
    /// No longer held: deleted by someone else, or not kept alive in time.
    /// See [`Lease::lost_reason`](crate::Lease::lost_reason).
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
pub(crate) struct StatusTx(Arc<watch::Sender<Status>>);

impl StatusTx {
    pub(crate) fn new() -> Self {
        StatusTx(Arc::new(watch::Sender::new(Status {
            state: LeaseState::Held,
            reason: None,
        })))
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

    /// The lock is gone; the first reason sticks.
    pub(crate) fn lost(&self, reason: String) {
        self.0.send_if_modified(|s| {
            let change = s.state != LeaseState::Lost;
            if change {
                *s = Status {
                    state: LeaseState::Lost,
                    reason: Some(reason),
                };
            }
            change
        });
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
