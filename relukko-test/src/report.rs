//! The lines users see on stderr: waiting progress, the skip notice, release
//! warnings.
//!
//! They are written straight to the process's stderr, not through `eprint!`:
//! libtest captures the `print!`/`eprint!` macros of a passing test, and a
//! line saying "waiting 40s for hil-rig-3, held by alice" is most useful
//! exactly while the test has not failed yet.

use std::io::Write;
use std::sync::Once;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// Wait this long before the first progress line.
pub(crate) const PROGRESS_AFTER: Duration = Duration::from_secs(2);
/// Then print one this often.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Writes `relukko: <msg>` as one line to stderr, bypassing test capture.
pub(crate) fn line(msg: &str) {
    let text = format!("relukko: {msg}\n");
    // One write of the whole line, so lines of parallel tests do not interleave.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Says once per process that locking is skipped.
pub(crate) fn skip_notice() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        line(&format!(
            "locking is skipped ({} is set, or a skip locker is used): tests run without holding their resources",
            crate::config::SKIP
        ));
    });
}

/// A duration as people read it: `450ms`, `3.2s`, `1m 05s`, `2h 03m`.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms / 1_000) % 60)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// A wall-clock time as people read it: RFC 3339 UTC, whole seconds.
pub(crate) fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    crate::format_timestamp(t)
}

/// Now, as people read it.
pub(crate) fn now() -> String {
    when(OffsetDateTime::now_utc())
}

/// Rounds a waited time to milliseconds for error messages.
pub(crate) fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
}

/// Decides when a waiter prints its next progress line.
#[derive(Debug)]
pub(crate) struct Progress {
    started: Instant,
    next: Instant,
    deadline: Instant,
}

impl Progress {
    /// A waiter that started now and gives up at `deadline`.
    pub(crate) fn new(started: Instant, deadline: Instant) -> Self {
        Progress {
            started,
            next: started + PROGRESS_AFTER,
            deadline,
        }
    }

    /// Whether a line is due now; if so the next one is scheduled.
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + PROGRESS_EVERY;
        true
    }

    /// When the next line is due.
    pub(crate) fn next_due(&self) -> Instant {
        self.next
    }

    /// How long the waiter has waited.
    pub(crate) fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    /// Prints one progress line: what is waited for and who holds it.
    pub(crate) fn print(&self, what: &str, holders: &str) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        line(&format!(
            "waiting {} for {what}, held by {holders}; giving up in {}",
            human(self.waited()),
            human(left)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_millis(450)), "450ms");
        assert_eq!(human(Duration::from_millis(3_240)), "3.2s");
        assert_eq!(human(Duration::from_secs(65)), "1m 05s");
        assert_eq!(human(Duration::from_secs(7_380)), "2h 03m");
    }

    #[test]
    fn progress_is_due_after_the_first_delay_then_periodically() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0, t0 + Duration::from_secs(60));
        assert!(!p.due(t0 + Duration::from_secs(1)));
        assert!(p.due(t0 + Duration::from_secs(2)));
        assert!(!p.due(t0 + Duration::from_secs(4)));
        assert!(p.due(t0 + Duration::from_secs(7)));
    }

    #[test]
    fn when_is_whole_seconds_utc() {
        let t = time::macros::datetime!(2024-10-31 22:04:43.9313 +02:00);
        assert_eq!(when(t), "2024-10-31T20:04:43Z");
    }
}
