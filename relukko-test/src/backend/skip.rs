//! The skip switch (`RELUKKO_TRUST_ME_IT_IS_LOCKED`): no locking at all, as
//! upstream. Every request "succeeds" at once without asking anyone; one line
//! on stderr says so, so nobody mistakes it for real locking.

use super::Held;

/// Takes nothing and says once per process that locking is skipped.
pub(crate) fn acquire() -> Held {
    crate::report::skip_notice();
    Held::Skip
}
