//! What one locked test costs a fresh process (nextest's model: one process
//! per test) against the same test unlocked, and the peak memory locking adds.

use std::time::{Duration, Instant};

use crate::budget::Budget;
use crate::child::{self, TEST};
use crate::stats::{Stat, median};

/// The runs of one backend.
#[derive(Debug, Default)]
pub struct Fresh {
    /// Wall time of a locked test process, spawn to exit.
    pub locked: Stat,
    /// Wall time of the same process without locking.
    pub plain: Stat,
    /// Wall time locking adds (see [`paired`]).
    pub added: Stat,
    /// Median peak RSS (VmHWM) of each, in MiB.
    pub locked_hwm_mb: f64,
    pub plain_hwm_mb: f64,
}

impl Fresh {
    /// Wall time locking adds (see [`paired`]).
    pub fn added(&self) -> Stat {
        self.added
    }

    /// Peak memory locking adds, in MiB.
    pub fn added_rss_mb(&self) -> f64 {
        self.locked_hwm_mb - self.plain_hwm_mb
    }
}

/// `warm` + `n` pairs of child processes, locked and plain in alternating
/// order, with `env` as the only `RELUKKO_*` settings of the locked ones.
pub fn run(env: &[(&str, &str)], warm: usize, n: usize, budget: &Budget) -> Result<Fresh, String> {
    let (mut locked, mut plain) = (Vec::new(), Vec::new());
    let (mut locked_kb, mut plain_kb) = (Vec::new(), Vec::new());
    for i in 0..warm + n {
        if budget.over() {
            break;
        }
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_locked in order {
            let (took, kb) = one(is_locked, env)?;
            if i < warm {
                continue;
            }
            if is_locked {
                locked.push(took);
                locked_kb.push(kb as f64);
            } else {
                plain.push(took);
                plain_kb.push(kb as f64);
            }
        }
    }
    Ok(Fresh {
        locked: Stat::of(&locked),
        plain: Stat::of(&plain),
        added: paired(&locked, &plain),
        locked_hwm_mb: median(&locked_kb) / 1024.0,
        plain_hwm_mb: median(&plain_kb) / 1024.0,
    })
}

/// What locking adds: the percentiles of the differences of matched pairs
/// (run `i` locked minus run `i` plain, taken back to back). Being
/// percentiles of one sample, they are monotone (p50 <= p99 <= max), unlike
/// the differences of the two samples' own percentiles.
pub fn paired(locked: &[Duration], plain: &[Duration]) -> Stat {
    let mut diffs: Vec<f64> = locked
        .iter()
        .zip(plain)
        .map(|(l, p)| (l.as_secs_f64() - p.as_secs_f64()) * 1e3)
        .collect();
    Stat::of_ms(&mut diffs)
}

/// One child: its wall time and its peak RSS in KiB.
fn one(locked: bool, env: &[(&str, &str)]) -> Result<(Duration, u64), String> {
    let args: &[&str] = if locked {
        &[TEST, "locked", "bench-fresh-process"]
    } else {
        &[TEST, "plain"]
    };
    let mut cmd = child::command(args, if locked { env } else { &[] })?;
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run a test child: {e}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "a {} test child failed: {}",
            if locked { "locked" } else { "plain" },
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix("hwm_kb "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("a test child printed no peak memory: {text:?}"))?;
    Ok((took, kb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_time_is_monotone() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        // Plain runs with a slow outlier: percentile minus percentile gave
        // p50 > p99 > max here.
        let locked = ms(&[12, 11, 13, 12, 14]);
        let plain = ms(&[10, 10, 11, 10, 30]);
        let added = paired(&locked, &plain);
        assert!(
            added.p50 <= added.p99 && added.p99 <= added.max,
            "{added:?}"
        );
        assert_eq!(added.p50, 2.0);
        assert_eq!(added.max, 2.0);
        assert_eq!(added.samples, 5);
    }
}
