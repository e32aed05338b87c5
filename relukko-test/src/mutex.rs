//! Locking a mutex that a panicking thread may have poisoned.

use std::sync::{Mutex, MutexGuard};

/// The guard of `m`, poisoned or not: every mutex of this crate guards data
/// that single inserts, removes and swaps keep consistent, so a panic while
/// it was held leaves it usable.
pub(crate) fn unpoisoned<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
