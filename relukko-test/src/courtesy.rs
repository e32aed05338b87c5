//! Courtesy after a release: a process that lets a name go and at once asks
//! for it again would beat the waiters of other processes every time (it
//! asks before they have even heard of the release), and could keep the
//! name for itself for as long as it likes. So when this process released a
//! name a moment ago, and the name was contended lately (a wait for it here
//! met a holder), a new wait for it first pauses a few milliseconds: long
//! enough for a waiter that was woken by the release to take it.
//!
//! In a crowd, waiters of several processes are all woken by the same
//! deletion and the quickest wins, whoever waited longest. So once a waiter
//! here lost a race for a name after a push (the name is *crowded*), the
//! waiters of that name pause after a push by [`STEP`] less for every race
//! they lost in their wait, from [`YOUNGEST_PAUSE`] down to none: the ones
//! that waited longest ask first, the way a queue would serve them. A lone
//! waiter never loses a race, so it never pauses.
//!
//! An uncontended name never pauses: a process alone with its name takes it
//! again at once. Neither backend can see other processes' waiters (a
//! Relukko server keeps no queue, `flock` neither), so "contended lately"
//! is what this process saw itself; a hog that never waits is caught the
//! first time another process gets the name between two of its turns.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a name counts as contended after a wait here met its holder.
const CONTENDED_FOR: Duration = Duration::from_secs(30);
/// The pause before a handoff has been seen in this process.
const DEFAULT_PAUSE: Duration = Duration::from_millis(10);
/// The pause is a few observed handoffs, within these bounds.
const MIN_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_millis(50);
/// After a push, the pause of a waiter of a crowded name that lost no race
/// yet; each lost race takes [`STEP`] off.
const YOUNGEST_PAUSE: Duration = Duration::from_millis(15);
const STEP: Duration = Duration::from_millis(3);
/// Entries kept at most; older ones are dropped first.
const MAX_ENTRIES: usize = 1024;

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    released: Option<Instant>,
    contended: Option<Instant>,
    crowded: Option<Instant>,
}

#[derive(Debug, Default)]
struct Table {
    names: HashMap<String, Seen>,
    /// Exponentially weighted mean of the handoffs seen here, in seconds.
    handoff: Option<f64>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn table() -> MutexGuard<'static, Option<Table>> {
    // Plain data, one assignment per update: still usable after a panic.
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

fn with<T>(f: impl FnOnce(&mut Table) -> T) -> T {
    let mut t = table();
    let t = t.get_or_insert_with(Table::default);
    if t.names.len() > MAX_ENTRIES {
        let now = Instant::now();
        let fresh = |s: &Option<Instant>| s.is_some_and(|i| now - i < CONTENDED_FOR);
        t.names
            .retain(|_, s| fresh(&s.released) || fresh(&s.contended) || fresh(&s.crowded));
    }
    f(t)
}

/// The key of the lock `name` of the server at `url`.
pub(crate) fn key(url: &str, name: &str) -> String {
    format!("{url}\n{name}")
}

/// A wait for `key` (a backend's name for a lock: server URL and name, or
/// a lock file's path) met a holder.
pub(crate) fn contended(key: &str) {
    with(|t| t.names.entry(key.to_owned()).or_default().contended = Some(Instant::now()));
}

/// A waiter here was woken by a deletion of `key` and lost the race for it.
pub(crate) fn lost_race(key: &str) {
    with(|t| t.names.entry(key.to_owned()).or_default().crowded = Some(Instant::now()));
}

/// How long a waiter of `key` that lost `lost` races in its wait pauses
/// after a push before it asks: zero unless `key` is crowded.
pub(crate) fn younger_pause(key: &str, lost: u32) -> Duration {
    let crowded = with(|t| {
        t.names
            .get(key)
            .and_then(|s| s.crowded)
            .is_some_and(|c| c.elapsed() < CONTENDED_FOR)
    });
    if crowded {
        YOUNGEST_PAUSE.saturating_sub(STEP * lost.min(100))
    } else {
        Duration::ZERO
    }
}

/// This process released `key` just now.
pub(crate) fn released(key: &str) {
    with(|t| t.names.entry(key.to_owned()).or_default().released = Some(Instant::now()));
}

/// A waiter here took a lock `took` after it was told the lock was free:
/// what a handoff costs on this machine, which scales the pause.
pub(crate) fn handoff_seen(took: Duration) {
    let s = took.as_secs_f64().min(MAX_PAUSE.as_secs_f64());
    with(|t| t.handoff = Some(t.handoff.map_or(s, |m| 0.8 * m + 0.2 * s)));
}

/// How long a new wait for `key` pauses before its first try: what is left
/// of the pause after this process's last release of it, if the name was
/// contended lately; zero otherwise.
pub(crate) fn pause(key: &str) -> Duration {
    with(|t| {
        let seen = t.names.get(key).copied().unwrap_or_default();
        let pause = t.handoff.map_or(DEFAULT_PAUSE, |m| {
            Duration::from_secs_f64(4.0 * m).clamp(MIN_PAUSE, MAX_PAUSE)
        });
        pause_for(seen, pause, Instant::now())
    })
}

fn pause_for(seen: Seen, pause: Duration, now: Instant) -> Duration {
    match (seen.released, seen.contended) {
        (Some(r), Some(c)) if now.saturating_duration_since(c) < CONTENDED_FOR => {
            pause.saturating_sub(now.saturating_duration_since(r))
        }
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn only_a_contended_name_released_a_moment_ago_pauses() {
        let now = Instant::now();
        let ago = |ms| now.checked_sub(MS(ms)).unwrap();
        let p = MS(10);
        let seen = |released: Option<Instant>, contended: Option<Instant>| Seen {
            released,
            contended,
            crowded: None,
        };
        assert_eq!(pause_for(seen(None, None), p, now), Duration::ZERO);
        assert_eq!(
            pause_for(seen(Some(ago(1)), None), p, now),
            Duration::ZERO,
            "never contended: no pause"
        );
        assert_eq!(
            pause_for(seen(Some(ago(4)), Some(ago(1000))), p, now),
            MS(6),
            "the rest of the pause"
        );
        assert_eq!(
            pause_for(seen(Some(ago(40)), Some(ago(1000))), p, now),
            Duration::ZERO,
            "released long ago"
        );
        assert_eq!(
            pause_for(seen(Some(ago(1)), Some(ago(31_000))), p, now),
            Duration::ZERO,
            "contended long ago"
        );
    }

    #[test]
    fn the_table_remembers_per_key() {
        let key = "courtesy-test-key";
        assert_eq!(pause(key), Duration::ZERO);
        released(key);
        assert_eq!(pause(key), Duration::ZERO, "not contended yet");
        contended(key);
        released(key);
        let p = pause(key);
        assert!(p > Duration::ZERO && p <= MAX_PAUSE, "{p:?}");
        assert_eq!(pause("courtesy-other-key"), Duration::ZERO);
    }

    #[test]
    fn in_a_crowd_the_waiters_that_lost_more_races_ask_first() {
        let key = "courtesy-crowd-key";
        assert_eq!(younger_pause(key, 0), Duration::ZERO, "a lone waiter");
        lost_race(key);
        assert_eq!(younger_pause(key, 0), YOUNGEST_PAUSE);
        assert_eq!(younger_pause(key, 1), YOUNGEST_PAUSE - STEP);
        assert!(younger_pause(key, 2) > younger_pause(key, 3));
        assert_eq!(younger_pause(key, 5), Duration::ZERO);
        assert_eq!(younger_pause(key, u32::MAX), Duration::ZERO);
    }
}
