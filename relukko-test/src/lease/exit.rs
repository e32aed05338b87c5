//! Release at process exit: leases that outlive their test (leaked, kept in a
//! static, or the process calls `std::process::exit`) are released by an
//! `atexit` handler, so the next process does not wait for them. Rust never
//! drops statics, so this is the last chance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::rt::unpoisoned;

/// A live lease, as the exit and signal handlers see it.
pub(super) trait Live: Send + Sync {
    /// How many resources it holds.
    fn parts(&self) -> usize;
    /// Releases them one after another in reverse order, blocking this
    /// thread at most `bound` for each (at exit).
    fn release_at_exit(&self, bound: Duration);
    /// Releases them all at once because `signal` is ending the process,
    /// waiting at most `bound`; each is marked lost at once (see
    /// `Part::release_on_signal`).
    fn release_now(&self, bound: Duration, signal: &'static str) -> BoxFuture<'_, ()>;
}

/// The longest the exit handler waits for one release.
const EXIT_BOUND: Duration = Duration::from_secs(3);

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
static LIVE: Mutex<Vec<(u64, Weak<dyn Live>)>> = Mutex::new(Vec::new());

pub(super) fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// Remembers a live lease, and installs the exit handler once.
pub(super) fn register(key: u64, lease: Weak<dyn Live>) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(install);
    unpoisoned(&LIVE).push((key, lease));
}

/// The leases alive now.
pub(super) fn live() -> Vec<Arc<dyn Live>> {
    unpoisoned(&LIVE)
        .iter()
        .filter_map(|(_, w)| w.upgrade())
        .collect()
}

/// Whether the lease `key` is on the list the exit handler walks.
#[cfg(test)]
pub(super) fn registered(key: u64) -> bool {
    unpoisoned(&LIVE).iter().any(|(k, _)| *k == key)
}

pub(super) fn unregister(key: u64) {
    unpoisoned(&LIVE).retain(|(k, _)| *k != key);
}

#[cfg(any(unix, windows))]
fn install() {
    unsafe extern "C" {
        fn atexit(cb: extern "C" fn()) -> std::ffi::c_int;
    }
    // SAFETY: `at_exit` is a plain function that lives for the whole process
    // and never unwinds (it catches every panic).
    unsafe {
        atexit(at_exit);
    }
}

#[cfg(not(any(unix, windows)))]
fn install() {}

extern "C" fn at_exit() {
    // Unwinding out of an `extern "C"` function aborts: catch everything.
    let _ = std::panic::catch_unwind(release_all);
}

fn release_all() {
    // Never wait for the registry forever: a thread stopped by `exit` may hold
    // it (it only ever does for a moment).
    let mut live = None;
    for _ in 0..100 {
        match LIVE.try_lock() {
            Ok(mut g) => {
                live = Some(std::mem::take(&mut *g));
                break;
            }
            Err(std::sync::TryLockError::Poisoned(e)) => {
                live = Some(std::mem::take(&mut *e.into_inner()));
                break;
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(10))
            }
        }
    }
    // Upgrade outside the registry lock: dropping the last clone re-enters it.
    let leases: Vec<Arc<dyn Live>> = live
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, w)| w.upgrade())
        .collect();
    for lease in &leases {
        lease.release_at_exit(EXIT_BOUND);
    }
    // The parts are released; dropping these has nothing left to do.
    drop(leases);
}
