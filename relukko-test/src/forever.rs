//! "Practically forever": the longest wait, lease or timeout, so deadlines
//! computed from any duration a user gives cannot overflow.
//!
//! Its own file because both the locking settings (`config.rs`) and the
//! client's builder use it, and `config.rs` reads the client's settings.

use std::time::Duration;

/// Longer waits and leases are cut to this (about a century), so
/// `Instant + d` and the server's `now + d` cannot overflow.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `d`, at most [`FOREVER`]: a wait or lease of `u64::MAX` seconds means
/// "practically forever", never a panic.
pub(crate) fn capped(d: Duration) -> Duration {
    d.min(FOREVER)
}
