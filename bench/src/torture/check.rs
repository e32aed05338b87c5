//! The checker: what a history proves, from the history alone.
//!
//! - **Holds.** A hold runs from a worker's `enter` to its `exit`. A holder
//!   that never writes `exit` ends its hold when a termination signal is sent
//!   to it (its test is interrupted, so it cannot go green), else at its
//!   `dead` line, else at the end of the history. A holder that writes `exit`
//!   after a termination signal (its body went on) holds until that `exit`.
//! - **The drain.** After the run's `end` line no hold starts, but holds still
//!   open finish: their `exit`, `verdict`, `dead` and `cont` lines count (a
//!   holder stopped at the end is resumed and must say whether it kept its
//!   lock), and a holder that did not finish in time (`overdue`) is a deadline
//!   overrun.
//! - **Safety.** Two holds of one name that overlap (in file order) are
//!   *detected* if either holder was told the lock was lost (`verdict lost`)
//!   or died without a verdict; otherwise *undetected*: a test that would go
//!   green without its lock.
//! - **Liveness.** For each holder killed, signalled or stopped while others
//!   wait for its name: the time until another process enters the name, less
//!   the time our own network and restart faults blocked everyone (and one
//!   request timeout plus a retry after each), against the kind's bound. A
//!   waiter that gives up (or is still waiting at the end) counts if it already
//!   exceeds the bound.
//! - **Deadlines.** No wait ends (acquired or given up) later than its timeout
//!   plus a slack, no release takes longer than its bound plus a slack; time a
//!   process spent stopped by us is not counted against it.
//! - **Server.** Probes and malformed requests answered 5xx, and probes not
//!   answered at all, outside restart windows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use relukko_e2e::history::Line;

/// What the checker needs to know about the run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Upper bound of `free_after_s` per fault kind.
    pub bounds: BTreeMap<String, Duration>,
    pub wait_timeout: Duration,
    pub release_bound: Duration,
    pub request_timeout: Duration,
    /// What scheduling on a busy machine may add to any deadline.
    pub slack: Duration,
}

/// Fault kinds whose windows block every client (their time is not held against liveness).
pub const BLOCKING_WINDOWS: [&str; 5] = ["stall", "drop", "late_answer", "lost_answer", "restart"];
/// The `free_after_s` entry of names left without a holder while others waited.
pub const NO_HOLDER: &str = "no_holder";
/// Signals that end a process (and so a hold).
const TERMINATING: [&str; 5] = [
    "sigkill",
    "sigterm_holder",
    "sigint_holder",
    "sigterm_waiter",
    "sigint_waiter",
];

/// `p50`, `max` and `bound` of one fault kind, in seconds.
#[derive(Debug, Clone, Default)]
pub struct FreeAfter {
    pub samples: Vec<f64>,
    pub bound: f64,
}

impl FreeAfter {
    pub fn p50(&self) -> Option<f64> {
        let mut v = self.samples.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
    pub fn max(&self) -> Option<f64> {
        self.samples.iter().copied().reduce(f64::max)
    }
    pub fn broken(&self) -> bool {
        self.max().is_some_and(|m| m > self.bound)
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub holds: usize,
    pub faults: BTreeMap<String, usize>,
    pub undetected_overlaps: usize,
    pub detected_overlaps: usize,
    pub deadline_overruns: usize,
    pub free_after: BTreeMap<String, FreeAfter>,
    pub bad_requests_sent: usize,
    pub server_5xx: usize,
    /// Waits given up (timeouts and errors): not failures, but telling.
    pub giveups: usize,
    /// One line of evidence per broken property.
    pub evidence: Vec<String>,
}

impl Figures {
    /// Whether a safety or liveness property failed.
    pub fn broken(&self) -> bool {
        self.undetected_overlaps > 0
            || self.deadline_overruns > 0
            || self.server_5xx > 0
            || self.free_after.values().any(FreeAfter::broken)
    }
}

#[derive(Debug)]
struct Hold {
    pid: u32,
    name: String,
    start: usize,
    end: Option<usize>,
    /// A termination signal ended it provisionally (an `exit` may still extend it).
    signalled: bool,
    /// Its process died (or was told to) while holding.
    died: bool,
    verdict: Option<String>,
}

/// A holder killed, signalled or stopped while holding.
#[derive(Debug)]
struct Victim {
    kind: String,
    at: usize,
    pid: u32,
    name: String,
    waiters: HashSet<u32>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Checks a parsed history.
pub fn check(lines: &[Line], p: &Params) -> Figures {
    let mut f = Figures::default();
    let t0 = lines.first().map_or(0, |l| l.t);
    let rel = |t: u64| secs(t.saturating_sub(t0));
    for (kind, bound) in &p.bounds {
        f.free_after.insert(
            kind.clone(),
            FreeAfter {
                samples: Vec::new(),
                bound: bound.as_secs_f64(),
            },
        );
    }

    let mut holds: Vec<Hold> = Vec::new();
    let mut holding: HashMap<u32, usize> = HashMap::new();
    let mut releasing: HashMap<u32, usize> = HashMap::new();
    let mut waiting: HashMap<u32, String> = HashMap::new();
    let mut victims: Vec<Victim> = Vec::new();
    let mut stopped: HashMap<u32, u64> = HashMap::new();
    let mut stops: Vec<(u32, u64, u64)> = Vec::new();
    let mut windows: Vec<(u64, u64)> = Vec::new();
    let mut open_windows: HashMap<String, u64> = HashMap::new();
    let mut restarts: Vec<(u64, u64)> = Vec::new();
    let mut end_at = lines.len();
    let last_t = lines.last().map_or(0, |l| l.t);
    let mut end_t = last_t;
    let mut ended = false;

    for (i, l) in lines.iter().enumerate() {
        if ended
            && !matches!(
                l.event.as_str(),
                "exit" | "verdict" | "dead" | "cont" | "overdue"
            )
        {
            continue;
        }
        match l.event.as_str() {
            "wait" => {
                waiting.insert(l.pid, l.arg(0).to_owned());
            }
            "enter" => {
                waiting.remove(&l.pid);
                holding.insert(l.pid, holds.len());
                holds.push(Hold {
                    pid: l.pid,
                    name: l.arg(0).to_owned(),
                    start: i,
                    end: None,
                    signalled: false,
                    died: false,
                    verdict: None,
                });
            }
            "giveup" => {
                waiting.remove(&l.pid);
                f.giveups += 1;
            }
            "exit" => {
                if let Some(h) = holding.remove(&l.pid) {
                    holds[h].end = Some(i);
                    releasing.insert(l.pid, h);
                } else if let Some(h) = holds
                    .iter()
                    .rposition(|h| h.pid == l.pid && h.signalled && h.verdict.is_none())
                {
                    // The body went on after a termination signal: it held until now.
                    holds[h].end = Some(i);
                    releasing.insert(l.pid, h);
                }
            }
            "verdict" => {
                if let Some(h) = releasing.remove(&l.pid) {
                    holds[h].verdict = Some(l.arg(1).to_owned());
                }
            }
            "fault" => {
                let kind = l.arg(0).to_owned();
                *f.faults.entry(kind.clone()).or_default() += 1;
                if let Some(&h) = holding.get(&l.pid) {
                    if f.free_after.contains_key(&kind) {
                        let name = holds[h].name.clone();
                        let waiters = waiting
                            .iter()
                            .filter(|(_, n)| **n == name)
                            .map(|(w, _)| *w)
                            .collect();
                        victims.push(Victim {
                            kind: kind.clone(),
                            at: i,
                            pid: l.pid,
                            name,
                            waiters,
                        });
                    }
                    if TERMINATING.contains(&kind.as_str()) {
                        holds[h].end = Some(i);
                        holds[h].signalled = true;
                        holds[h].died = true;
                        holding.remove(&l.pid);
                    }
                }
                if TERMINATING.contains(&kind.as_str()) {
                    waiting.remove(&l.pid);
                }
                if kind == "sigstop" {
                    stopped.insert(l.pid, l.t);
                }
            }
            "cont" => {
                if let Some(from) = stopped.remove(&l.pid) {
                    stops.push((l.pid, from, l.t));
                }
            }
            "dead" => {
                if let Some(h) = holding.remove(&l.pid) {
                    holds[h].end = Some(i);
                    holds[h].died = true;
                }
                // Died in its release, before its verdict: the test was
                // cut short in its runner, so it did not pass either.
                if let Some(h) = releasing.remove(&l.pid) {
                    holds[h].died = true;
                }
                waiting.remove(&l.pid);
                if let Some(from) = stopped.remove(&l.pid) {
                    stops.push((l.pid, from, l.t));
                }
            }
            "window" => {
                let kind = l.arg(0).to_owned();
                if l.arg(1) == "begin" {
                    open_windows.insert(kind, l.t);
                } else if let Some(from) = open_windows.remove(&kind) {
                    if BLOCKING_WINDOWS.contains(&kind.as_str()) {
                        windows.push((from, l.t));
                    }
                    if kind == "restart" {
                        restarts.push((from, l.t));
                    }
                }
            }
            "probe" | "bad" => {
                if l.event == "bad" {
                    f.bad_requests_sent += 1;
                }
                let status = l.num(0);
                let failed = status >= 500 || (l.event == "probe" && status == 0);
                let in_restart = open_windows.contains_key("restart")
                    || restarts.iter().any(|&(_, e)| l.t < e + 2_000_000_000);
                if failed && !in_restart {
                    f.server_5xx += 1;
                    f.evidence.push(format!(
                        "server: {} answered {} at {:.3} s ({})",
                        l.event,
                        status,
                        rel(l.t),
                        l.args.join(" ")
                    ));
                }
            }
            "overdue" => {
                f.deadline_overruns += 1;
                f.evidence.push(format!(
                    "deadline: {} still held its lock {:.3} s after the end (it did not finish in the drain)",
                    l.pid,
                    secs(l.t.saturating_sub(end_t))
                ));
            }
            "end" => {
                end_at = i;
                end_t = l.t;
                ended = true;
            }
            _ => {}
        }
    }
    for (kind, from) in open_windows {
        if BLOCKING_WINDOWS.contains(&kind.as_str()) {
            windows.push((from, end_t));
        }
    }
    for (pid, from) in stopped {
        stops.push((pid, from, last_t));
    }
    f.holds = holds.len();

    // Safety.
    let mut by_name: HashMap<&str, Vec<&Hold>> = HashMap::new();
    for h in &holds {
        by_name.entry(&h.name).or_default().push(h);
    }
    for list in by_name.values() {
        for (a_i, a) in list.iter().enumerate() {
            let a_end = a.end.unwrap_or(lines.len());
            for b in &list[a_i + 1..] {
                if b.start >= a_end {
                    continue;
                }
                // Told it was lost, or died holding it: its test did not pass.
                let told = |h: &Hold| match &h.verdict {
                    Some(v) => v == "lost",
                    None => h.died,
                };
                if told(a) || told(b) {
                    f.detected_overlaps += 1;
                } else {
                    f.undetected_overlaps += 1;
                    f.evidence.push(format!(
                        "safety: {} held by {} (from {:.3} s, verdict {:?}) and {} (from {:.3} s, verdict {:?}) at once",
                        a.name,
                        a.pid,
                        rel(lines[a.start].t),
                        a.verdict,
                        b.pid,
                        rel(lines[b.start].t),
                        b.verdict
                    ));
                }
            }
        }
    }

    // Deadlines.
    let stopped_during = |pid: u32, from: u64, to: u64| {
        stops
            .iter()
            .any(|&(p, s, e)| p == pid && s < to && e > from)
    };
    for (i, l) in lines.iter().enumerate() {
        let (took, bound) = match l.event.as_str() {
            "enter" | "giveup" if i < end_at => (l.num(1), p.wait_timeout),
            "verdict" => (l.num(2), p.release_bound),
            _ => continue,
        };
        let took_ns = took * 1_000_000;
        if took_ns > (bound + p.slack).as_nanos() as u64
            && !stopped_during(l.pid, l.t.saturating_sub(took_ns), l.t)
        {
            f.deadline_overruns += 1;
            f.evidence.push(format!(
                "deadline: {} {} of {} took {took} ms (bound {} ms + slack) at {:.3} s",
                l.pid,
                l.event,
                l.arg(0),
                bound.as_millis(),
                rel(l.t)
            ));
        }
    }

    // Liveness. A name counts as free for others only while some process
    // waiting for it runs: the runner picks its targets from a model a few
    // milliseconds old, so a SIGSTOP meant for a holder can hit a process
    // that has just started to wait, maybe the only one.
    let waits = Waits::from(&lines[..end_at], end_t);
    let blocked = |from: u64, to: u64| -> u64 {
        let overlap: u64 = windows
            .iter()
            .map(|&(s, e)| e.min(to).saturating_sub(s.max(from)))
            .sum();
        if overlap == 0 {
            0
        } else {
            overlap + (p.request_timeout + Duration::from_secs(1)).as_nanos() as u64
        }
    };
    // Time `pid` spent stopped by us within `from..to`.
    let stopped_for = |pid: u32, from: u64, to: u64| -> u64 {
        stops
            .iter()
            .filter(|&&(p, _, _)| p == pid)
            .map(|&(_, s, e)| e.min(to).saturating_sub(s.max(from)))
            .sum()
    };
    for v in victims {
        let mut waiters = v.waiters;
        if waiters.is_empty() {
            continue;
        }
        let tf = lines[v.at].t;
        let mut censored: Option<u64> = None;
        let mut sample: Option<(u64, bool)> = None;
        for l in &lines[v.at + 1..end_at] {
            match l.event.as_str() {
                "enter" if l.arg(0) == v.name && l.pid != v.pid => {
                    sample = Some((l.t, false));
                    break;
                }
                "giveup" if waiters.contains(&l.pid) => {
                    if l.arg(2) == "timeout" {
                        censored = Some(l.t);
                    }
                    waiters.remove(&l.pid);
                }
                "dead" if waiters.contains(&l.pid) => {
                    waiters.remove(&l.pid);
                }
                "fault" if waiters.contains(&l.pid) && TERMINATING.contains(&l.arg(0)) => {
                    waiters.remove(&l.pid);
                }
                _ => {}
            }
            if waiters.is_empty() {
                sample = censored.map(|t| (t, true));
                break;
            }
        }
        if sample.is_none() && !waiters.is_empty() {
            sample = Some((end_t, true));
        }
        let Some((te, is_censored)) = sample else {
            continue;
        };
        // A victim we stopped after its signal could not release meanwhile
        // (for a SIGSTOP, that stop is the fault being measured).
        let held_up = if v.kind == "sigstop" {
            0
        } else {
            stopped_for(v.pid, tf, te)
        };
        let free = secs(
            waits
                .takeable(&v.name, tf, te, &stops)
                .saturating_sub(blocked(tf, te))
                .saturating_sub(held_up),
        );
        let entry = f.free_after.get_mut(&v.kind).expect("a kind with a bound");
        if is_censored && free <= entry.bound {
            continue; // a lower bound within the bound proves nothing
        }
        entry.samples.push(free);
        if free > entry.bound {
            f.evidence.push(format!(
                "liveness: {} {} by {} at {:.3} s: free for others only after {free:.3} s{} (bound {:.3} s)",
                v.name,
                v.kind,
                v.pid,
                rel(tf),
                if is_censored { " or more" } else { "" },
                entry.bound
            ));
        }
    }

    // Names nobody held while others waited (a lock left behind by a holder
    // that died, or by a create whose answer was lost).
    let bound = p.bounds.get(NO_HOLDER).map_or(0.0, Duration::as_secs_f64);
    for (name, left, from, to, is_censored) in idle_stretches(&lines[..end_at], end_t) {
        // Whoever left it by a signal releases it only once it runs again.
        let held_up = left.map_or(0, |pid| stopped_for(pid, from, to));
        let idle = secs(
            waits
                .takeable(&name, from, to, &stops)
                .saturating_sub(blocked(from, to))
                .saturating_sub(held_up),
        );
        if is_censored && idle <= bound {
            continue;
        }
        let entry = f.free_after.entry(NO_HOLDER.to_owned()).or_default();
        entry.bound = bound;
        entry.samples.push(idle);
        if idle > bound {
            f.evidence.push(format!(
                "liveness: {name} had no holder while others waited from {:.3} s for {idle:.3} s{} (bound {bound:.3} s)",
                rel(from),
                if is_censored { " or more" } else { "" },
            ));
        }
    }
    f
}

/// Who waited for which name when: `(pid, name, from, to)`, from the `wait`
/// line to its `enter`, `giveup`, death or termination signal.
struct Waits(Vec<(u32, String, u64, u64)>);

/// The step of [`Waits::takeable`].
const STEP_NS: u64 = 10_000_000;

impl Waits {
    fn from(lines: &[Line], end_t: u64) -> Waits {
        let mut open: HashMap<u32, (String, u64)> = HashMap::new();
        let mut done = Vec::new();
        for l in lines {
            let ends = match l.event.as_str() {
                "wait" => {
                    if let Some((name, from)) = open.insert(l.pid, (l.arg(0).to_owned(), l.t)) {
                        done.push((l.pid, name, from, l.t));
                    }
                    false
                }
                "enter" | "giveup" | "dead" => true,
                "fault" => TERMINATING.contains(&l.arg(0)),
                _ => false,
            };
            if ends && let Some((name, from)) = open.remove(&l.pid) {
                done.push((l.pid, name, from, l.t));
            }
        }
        done.extend(
            open.into_iter()
                .map(|(pid, (name, from))| (pid, name, from, end_t)),
        );
        Waits(done)
    }

    /// The time in `from..to` during which some process waiting for `name`
    /// was not stopped by us (to [`STEP_NS`]).
    fn takeable(&self, name: &str, from: u64, to: u64, stops: &[(u32, u64, u64)]) -> u64 {
        let mine: Vec<_> = self
            .0
            .iter()
            .filter(|w| w.1 == name && w.2 < to && w.3 > from)
            .collect();
        let mut total = 0;
        let mut t = from;
        while t < to {
            let step = STEP_NS.min(to - t);
            let someone = mine.iter().any(|&&(pid, _, a, b)| {
                a <= t && t < b && !stops.iter().any(|&(p, s, e)| p == pid && s <= t && t < e)
            });
            if someone {
                total += step;
            }
            t += step;
        }
        total
    }
}

/// The stretches in which a name had waiters but no holder (from `enter` to
/// `verdict`, or to the death or termination signal of the holder): `(name,
/// signalled, from, to, censored)`, `signalled` the holder a termination
/// signal took it from (it releases only while it runs), censored when the
/// waiters left (or the run ended) before anyone entered.
fn idle_stretches(lines: &[Line], end_t: u64) -> Vec<(String, Option<u32>, u64, u64, bool)> {
    let mut occupied: HashMap<u32, String> = HashMap::new();
    let mut waiting: HashMap<u32, String> = HashMap::new();
    let mut idle_since: BTreeMap<String, u64> = BTreeMap::new();
    let mut names: HashSet<String> = HashSet::new();
    // Per name, the process a termination signal took it from last.
    let mut left: HashMap<String, u32> = HashMap::new();
    let mut out = Vec::new();
    for l in lines {
        match l.event.as_str() {
            "wait" => {
                names.insert(l.arg(0).to_owned());
                waiting.insert(l.pid, l.arg(0).to_owned());
            }
            "enter" => {
                waiting.remove(&l.pid);
                occupied.insert(l.pid, l.arg(0).to_owned());
            }
            "giveup" => {
                waiting.remove(&l.pid);
            }
            "verdict" | "dead" => {
                if let Some(name) = occupied.remove(&l.pid) {
                    left.remove(&name);
                }
                waiting.remove(&l.pid);
            }
            "fault" if TERMINATING.contains(&l.arg(0)) => {
                if let Some(name) = occupied.remove(&l.pid) {
                    left.insert(name, l.pid);
                }
                waiting.remove(&l.pid);
            }
            _ => continue,
        }
        for name in &names {
            let busy = occupied.values().any(|n| n == name);
            let waiters = waiting.values().any(|n| n == name);
            match (busy, waiters, idle_since.get(name).copied()) {
                (false, true, None) => {
                    idle_since.insert(name.clone(), l.t);
                }
                (true, _, Some(from)) | (false, false, Some(from)) => {
                    idle_since.remove(name);
                    out.push((name.clone(), left.get(name).copied(), from, l.t, !busy));
                }
                _ => {}
            }
        }
    }
    for (name, from) in idle_since {
        let by = left.get(&name).copied();
        out.push((name, by, from, end_t, true));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use relukko_e2e::history::parse;

    fn params() -> Params {
        let mut bounds = BTreeMap::new();
        bounds.insert("sigkill".to_owned(), Duration::from_secs(5));
        bounds.insert(NO_HOLDER.to_owned(), Duration::from_secs(5));
        Params {
            bounds,
            wait_timeout: Duration::from_secs(10),
            release_bound: Duration::from_secs(10),
            request_timeout: Duration::from_secs(2),
            slack: Duration::from_secs(1),
        }
    }

    const S: u64 = 1_000_000_000;

    fn history(rows: &[(u64, u32, &str)]) -> Vec<Line> {
        let text: String = rows
            .iter()
            .map(|(t, pid, rest)| format!("{} {pid} {rest}\n", t * S / 10))
            .collect();
        parse(&text)
    }

    #[test]
    fn an_overlap_is_undetected_unless_a_holder_was_told() {
        let h = history(&[
            (0, 1, "enter a 0"),
            (1, 2, "enter a 0"),
            (2, 1, "exit a"),
            (3, 1, "verdict a ok 1"),
            (4, 2, "exit a"),
            (5, 2, "verdict a ok 1"),
        ]);
        let f = check(&h, &params());
        assert_eq!((f.undetected_overlaps, f.detected_overlaps), (1, 0));
        assert!(f.broken());
        let h = history(&[
            (0, 1, "enter a 0"),
            (1, 2, "enter a 0"),
            (2, 1, "exit a"),
            (3, 1, "verdict a lost 1"),
            (4, 2, "exit a"),
            (5, 2, "verdict a ok 1"),
        ]);
        let f = check(&h, &params());
        assert_eq!((f.undetected_overlaps, f.detected_overlaps), (0, 1));
        assert!(!f.broken());
    }

    #[test]
    fn a_holder_stopped_at_the_end_is_judged_by_what_it_says_in_the_drain() {
        // Stopped holding `a`; its lease ran out and 2 entered; the run ended.
        let run = [
            (0, 1, "enter a 0"),
            (1, 1, "fault sigstop"),
            (40, 2, "enter a 3900"),
            (50, 0, "end"),
        ];
        let told = |rows: &[(u64, u32, &str)]| {
            let mut h = run.to_vec();
            h.extend_from_slice(rows);
            let f = check(&history(&h), &params());
            (
                f.undetected_overlaps,
                f.detected_overlaps,
                f.deadline_overruns,
            )
        };
        // Resumed, it says it lost the lock: the overlap is detected.
        let lost = [
            (51, 1, "cont"),
            (55, 1, "exit a"),
            (56, 1, "verdict a lost 5"),
        ];
        assert_eq!(told(&lost), (0, 1, 0));
        // Resumed, it says it kept the lock: two holders at once.
        let kept = [
            (51, 1, "cont"),
            (55, 1, "exit a"),
            (56, 1, "verdict a ok 5"),
        ];
        assert_eq!(told(&kept), (1, 0, 0));
        // Never finished: an overrun, and nothing it said clears the overlap.
        let stuck = [(51, 1, "cont"), (200, 1, "overdue")];
        assert_eq!(told(&stuck), (1, 0, 1));
        // What happens after the end otherwise does not count: a new hold.
        let late = [
            (55, 1, "exit a"),
            (56, 1, "verdict a lost 5"),
            (57, 3, "enter a 0"),
        ];
        assert_eq!(told(&late), (0, 1, 0));
    }

    #[test]
    fn a_holder_that_dies_in_its_release_did_not_pass() {
        // 1's lock was lost in its body (2 entered); 1 died releasing it.
        let mut h = vec![
            (0, 1, "enter a 0"),
            (20, 2, "enter a 1500"),
            (30, 1, "exit a"),
            (31, 1, "dead signal:_9"),
            (40, 2, "exit a"),
            (41, 2, "verdict a ok 1"),
        ];
        let f = check(&history(&h), &params());
        assert_eq!((f.undetected_overlaps, f.detected_overlaps), (0, 1));
        // Had it lived to say "ok", both would have passed: undetected.
        h[3] = (31, 1, "verdict a ok 1");
        let f = check(&history(&h), &params());
        assert_eq!((f.undetected_overlaps, f.detected_overlaps), (1, 0));
    }

    #[test]
    fn a_signal_ends_a_hold_unless_the_body_goes_on() {
        let killed = [
            (0, 1, "enter a 0"),
            (1, 1, "fault sigterm_holder"),
            (2, 2, "enter a 0"),
        ];
        let f = check(&history(&killed), &params());
        assert_eq!(f.detected_overlaps + f.undetected_overlaps, 0);
        let mut went_on = killed.to_vec();
        went_on.extend([(3, 1, "exit a"), (4, 1, "verdict a ok 1")]);
        let f = check(&history(&went_on), &params());
        assert_eq!(f.undetected_overlaps, 1, "{:?}", f.evidence);
    }

    #[test]
    fn free_after_counts_from_the_kill_to_the_next_entry_less_blocked_time() {
        let h = history(&[
            (0, 1, "enter a 0"),
            (1, 2, "wait a 10000"),
            (10, 1, "fault sigkill"),
            (20, 0, "window stall begin"),
            (30, 0, "window stall end"),
            (70, 2, "enter a 6000"),
        ]);
        let f = check(&h, &params());
        // 6 s from kill to entry, less 1 s stalled and 3 s of retry allowance.
        let s = &f.free_after["sigkill"];
        assert_eq!(s.samples.len(), 1);
        assert!((s.samples[0] - 2.0).abs() < 1e-6, "{:?}", s.samples);
        assert!(!f.broken());
    }

    #[test]
    fn a_name_is_not_free_for_others_while_its_only_waiter_is_stopped() {
        // 2 started to wait just as a SIGSTOP meant for a holder hit it;
        // 1 was killed; 2, the only waiter, took the name once resumed.
        let rows = [
            (0, 1, "enter a 0"),
            (1, 2, "wait a 10000"),
            (2, 2, "fault sigstop"),
            (3, 1, "fault sigint_holder"),
            (42, 2, "cont"),
            (43, 2, "enter a 4200"),
        ];
        let mut p = params();
        p.bounds
            .insert("sigint_holder".to_owned(), Duration::from_secs(1));
        let f = check(&history(&rows), &p);
        let s = &f.free_after["sigint_holder"];
        assert_eq!(s.samples.len(), 1);
        assert!((s.samples[0] - 0.1).abs() < 0.015, "{:?}", s.samples);
        assert!(!f.broken(), "{:?}", f.evidence);
        // Had another waiter been running all along, the name was free for it.
        let mut rows = rows.to_vec();
        rows.insert(1, (1, 3, "wait a 10000"));
        let f = check(&history(&rows), &p);
        assert!(f.free_after["sigint_holder"].broken(), "{:?}", f.free_after);
    }

    #[test]
    fn a_holder_we_stop_after_its_signal_is_not_slow_to_release() {
        // The runner once stopped a holder right after sending it SIGTERM
        // (a target picked from a stale model): it released when resumed.
        let h = history(&[
            (0, 1, "enter a 0"),
            (1, 2, "wait a 10000"),
            (10, 1, "fault sigterm_holder"),
            (10, 1, "fault sigstop"),
            (47, 1, "cont"),
            (47, 2, "enter a 4600"),
            (48, 1, "dead signal:_15"),
        ]);
        let mut p = params();
        p.bounds
            .insert("sigterm_holder".to_owned(), Duration::from_secs(1));
        let f = check(&h, &p);
        assert!(!f.broken(), "{:?}", f.evidence);
        assert_eq!(f.free_after["sigterm_holder"].samples, [0.0]);
        assert_eq!(f.free_after[NO_HOLDER].samples, [0.0]);
        // Not stopped, the same wait is a liveness failure.
        let mut h = h;
        h.retain(|l| l.event != "cont" && l.arg(0) != "sigstop");
        let f = check(&h, &p);
        assert!(
            f.free_after["sigterm_holder"].broken(),
            "{:?}",
            f.free_after
        );
        assert!((f.free_after[NO_HOLDER].samples[0] - 3.7).abs() < 0.02);
    }

    #[test]
    fn a_name_never_freed_is_a_liveness_failure() {
        let h = history(&[
            (0, 1, "enter a 0"),
            (1, 2, "wait a 10000"),
            (10, 1, "fault sigkill"),
            (120, 2, "giveup a 11900 timeout"),
        ]);
        let f = check(&h, &params());
        assert!(f.free_after["sigkill"].broken());
        assert!(f.broken());
    }

    #[test]
    fn waits_past_their_timeout_are_overruns_unless_stopped() {
        let h = history(&[(0, 2, "wait a 10000"), (200, 2, "giveup a 20000 timeout")]);
        assert_eq!(check(&h, &params()).deadline_overruns, 1);
        let h = history(&[
            (0, 2, "enter a 0"),
            (10, 2, "fault sigstop"),
            (150, 2, "cont"),
            (160, 2, "exit a"),
            (200, 2, "verdict a lost 20000"),
        ]);
        assert_eq!(check(&h, &params()).deadline_overruns, 0);
    }

    #[test]
    fn server_failures_count_outside_restarts_only() {
        let h = history(&[
            (0, 0, "probe 200"),
            (1, 0, "window restart begin"),
            (2, 0, "probe 0"),
            (3, 0, "window restart end"),
            (60, 0, "bad 500"),
            (61, 0, "probe 0"),
        ]);
        let f = check(&h, &params());
        assert_eq!((f.server_5xx, f.bad_requests_sent), (2, 1));
    }
}
