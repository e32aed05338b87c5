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

use crate::Lock;

/// Wait this long before the first progress line.
pub(crate) const PROGRESS_AFTER: Duration = Duration::from_secs(2);
/// Then print one this often at first...
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// ... and, as the wait grows, after a third of the time waited so far
/// (lines thin out: a 4-minute wait prints about a dozen), at most this long
/// apart.
pub(crate) const PROGRESS_EVERY_MAX: Duration = Duration::from_secs(120);

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

/// Who holds `l`, for errors and progress lines:
/// `"<creator> since <created_at> until <expires_at>"`, or, once its expiry
/// has passed (a holder killed, say),
/// `"<creator> since <created_at>, expired 12s ago; the server frees it after its grace period"`.
/// Times are whole seconds in UTC ([`report::when`](when)),
/// like every time this crate shows people.
pub(crate) fn holder(l: &Lock) -> String {
    holder_at(l, OffsetDateTime::now_utc())
}

fn holder_at(l: &Lock, now: time::OffsetDateTime) -> String {
    let creator = l
        .creator
        .as_deref()
        .map(crate::client::creator_without_token)
        .filter(|c| !c.is_empty())
        .unwrap_or("an unnamed creator");
    let since = when(l.created_at);
    if l.expires_at > now {
        return format!("{creator} since {since} until {}", when(l.expires_at));
    }
    let ago: Duration = (now - l.expires_at).try_into().unwrap_or_default();
    format!(
        "{creator} since {since}, expired {} ago; the server frees it after its grace period",
        human(Duration::from_secs(ago.as_secs()))
    )
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
    /// The locked test waiting, if one is: several may wait at once.
    test: Option<String>,
}

impl Progress {
    /// A waiter (of `test`, if a locked test waits) that started at
    /// `started` and gives up at `deadline`.
    pub(crate) fn new(started: Instant, deadline: Instant, test: Option<String>) -> Self {
        Progress {
            started,
            next: started + PROGRESS_AFTER,
            deadline,
            test,
        }
    }

    /// Whether a line is due now; if so the next one is scheduled, a third
    /// of the wait so far later (between [`PROGRESS_EVERY`] and
    /// [`PROGRESS_EVERY_MAX`]).
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        let gap = (now.saturating_duration_since(self.started) / 3)
            .clamp(PROGRESS_EVERY, PROGRESS_EVERY_MAX);
        self.next = now + gap;
        true
    }

    /// When the next line is due.
    pub(crate) fn next_due(&self) -> Instant {
        self.next
    }

    /// Prints one progress line: who waits, for what, and who holds it.
    pub(crate) fn print(&self, what: &str, holders: &str) {
        line(&self.text(what, holders, Instant::now()));
    }

    fn text(&self, what: &str, holders: &str, now: Instant) -> String {
        let left = self.deadline.saturating_duration_since(now);
        let who = match &self.test {
            Some(t) => format!("test {t} "),
            None => String::new(),
        };
        format!(
            "{who}waiting {} for {what}, held by {holders}; giving up in {}",
            human(now.saturating_duration_since(self.started)),
            human(left)
        )
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
        let mut p = Progress::new(t0, t0 + Duration::from_secs(60), None);
        assert!(!p.due(t0 + Duration::from_secs(1)));
        assert!(p.due(t0 + Duration::from_secs(2)));
        assert!(!p.due(t0 + Duration::from_secs(4)));
        assert!(p.due(t0 + Duration::from_secs(7)));
    }

    /// Checked every second for 4 minutes (the client checks every 5):
    /// lines come further and further apart, a dozen or so in all.
    #[test]
    fn progress_lines_thin_out_as_the_wait_grows() {
        let t0 = Instant::now();
        let mut p = Progress::new(t0, t0 + Duration::from_secs(600), None);
        let due: Vec<u64> = (0..=240)
            .filter(|s| p.due(t0 + Duration::from_secs(*s)))
            .collect();
        let gaps: Vec<u64> = due.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[0] <= g[1]), "{due:?}");
        assert!((8..=16).contains(&due.len()), "{due:?}");
        assert!(gaps.iter().all(|g| *g <= 120), "{due:?}");
    }

    #[test]
    fn progress_lines_name_the_waiting_test() {
        let t0 = Instant::now();
        let p = Progress::new(t0, t0 + Duration::from_secs(60), Some("m::t".into()));
        assert_eq!(
            p.text("rig", "alice", t0 + Duration::from_secs(3)),
            "test m::t waiting 3.0s for rig, held by alice; giving up in 57.0s"
        );
        let p = Progress::new(t0, t0 + Duration::from_secs(60), None);
        assert!(
            p.text("rig", "alice", t0)
                .starts_with("waiting 0ms for rig")
        );
    }

    #[test]
    fn holders_are_described_without_token_in_whole_seconds() {
        let now = time::macros::datetime!(2024-10-31 20:05:00 UTC);
        let mut l = Lock::dummy();
        l.creator = Some("ci-7 [rl:0123456789abcdef0123456789abcdef]".into());
        l.created_at = time::macros::datetime!(2024-10-31 20:04:43.9313 UTC);
        l.expires_at = time::macros::datetime!(2024-10-31 22:05:43.123456 +01:00);
        assert_eq!(
            holder_at(&l, now),
            "ci-7 since 2024-10-31T20:04:43Z until 2024-10-31T21:05:43Z"
        );
        l.creator = None;
        assert!(holder_at(&l, now).starts_with("an unnamed creator since"));
    }

    #[test]
    fn a_passed_expiry_is_not_shown_as_until() {
        let now = time::macros::datetime!(2024-10-31 20:05:00 UTC);
        let mut l = Lock::dummy();
        l.creator = Some("killed@host".into());
        l.created_at = time::macros::datetime!(2024-10-31 20:04:00 UTC);
        l.expires_at = time::macros::datetime!(2024-10-31 20:04:47.6 UTC);
        assert_eq!(
            holder_at(&l, now),
            "killed@host since 2024-10-31T20:04:00Z, expired 12.0s ago; \
             the server frees it after its grace period"
        );
    }

    #[test]
    fn when_is_whole_seconds_utc() {
        let t = time::macros::datetime!(2024-10-31 22:04:43.9313 +02:00);
        assert_eq!(when(t), "2024-10-31T20:04:43Z");
    }
}
