//! When a waiter prints its next progress line, and what the line says.

use std::time::{Duration, Instant};

use super::stderr;

/// Wait this long before the first progress line.
pub(crate) const PROGRESS_AFTER: Duration = Duration::from_secs(2);
/// Then print one this often at first...
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// ... and, as the wait grows, after a third of the time waited so far
/// (lines thin out: a 4-minute wait prints about a dozen), at most this long
/// apart.
pub(crate) const PROGRESS_EVERY_MAX: Duration = Duration::from_secs(120);

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
        stderr::line(&self.text(what, holders, Instant::now()));
    }

    fn text(&self, what: &str, holders: &str, now: Instant) -> String {
        let left = self.deadline.saturating_duration_since(now);
        let who = match &self.test {
            Some(t) => format!("test {t} "),
            None => String::new(),
        };
        format!(
            "{who}waiting {} for {what}, held by {holders}; giving up in {}",
            super::duration(now.saturating_duration_since(self.started)),
            super::duration(left)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
