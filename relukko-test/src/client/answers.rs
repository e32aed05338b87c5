//! The answers of the calls that take or free a lock: [`Create`], and what a
//! holder's DELETE found.

use crate::lock::Lock;

/// The answer to [`Client::create`](crate::Client::create): the lock, or the news that someone holds it
/// (the server's 409, as a value rather than an error to parse).
#[must_use = "a Taken answer means the lock is NOT held"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Create {
    /// The lock is ours.
    Acquired(Lock),
    /// Someone else holds a lock of that name.
    Taken,
}

impl Create {
    /// The lock, if it was acquired.
    pub fn lock(self) -> Option<Lock> {
        match self {
            Create::Acquired(l) => Some(l),
            Create::Taken => None,
        }
    }
}

/// What a holder's DELETE found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// Deleted by this call: the lock was there until now.
    Now,
    /// Gone before this call (404 on the first answer).
    Before,
    /// 404 after an attempt whose answer was lost: that attempt may have
    /// deleted it, or it was gone before. The holder decides with what else
    /// it knows (its confirmed expiry).
    Unsure,
}
