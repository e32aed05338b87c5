//! Fair turns: P processes each take one name back to back (lock, hold a
//! moment, release, ask again at once) for a fixed time, on one backend.
//! Per-process acquisition counts give Jain's fairness index; every wait
//! gives the worst wait against the median one.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use crate::budget::Budget;
use crate::child::{self, TAKER, now_nanos};
use crate::stats::{Stat, round3};

/// How long each taker holds the name per turn (a short test body).
pub const HOLD: Duration = Duration::from_millis(2);

/// What one run found.
#[derive(Debug, Default)]
pub struct Fair {
    pub processes: usize,
    pub seconds: f64,
    /// Acquisitions per process.
    pub counts: Vec<usize>,
    /// Every completed wait, in milliseconds.
    pub waits: Stat,
    /// The longest wait, the waits still under way at the end included (a
    /// process that never got the name waited the whole run).
    pub worst_ms: f64,
    pub errors: Vec<String>,
}

impl Fair {
    /// Jain's fairness index of the counts: 1 when equal, 1/P when one
    /// process took every turn.
    pub fn jain(&self) -> f64 {
        jain(&self.counts)
    }

    /// The worst wait over the median wait.
    pub fn worst_over_median(&self) -> f64 {
        if self.waits.p50 > 0.0 {
            self.worst_ms / self.waits.p50
        } else {
            0.0
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "processes": self.processes,
            "seconds": round3(self.seconds),
            "hold_ms": HOLD.as_secs_f64() * 1e3,
            "acquisitions": self.counts,
            "jain": round3(self.jain()),
            "wait_ms": self.waits.json(),
            "worst_wait_ms": round3(self.worst_ms),
            "worst_over_median": round3(self.worst_over_median()),
            "errors": self.errors,
        })
    }
}

/// `(sum x)^2 / (n * sum x^2)`; 0 for no data.
pub fn jain(counts: &[usize]) -> f64 {
    let sum: f64 = counts.iter().map(|&c| c as f64).sum();
    let squares: f64 = counts.iter().map(|&c| (c as f64).powi(2)).sum();
    if squares == 0.0 {
        0.0
    } else {
        sum * sum / (counts.len() as f64 * squares)
    }
}

/// `p` takers on one name for `run`, with `env` as their only `RELUKKO_*`
/// settings (the backend).
pub fn run(env: &[(&str, &str)], p: usize, run: Duration, budget: &Budget) -> Result<Fair, String> {
    let name = "bench-fair-turns";
    let hold_us = HOLD.as_micros().to_string();
    let mut children: Vec<(Child, BufReader<ChildStdout>)> = Vec::with_capacity(p);
    let mut fair = Fair {
        processes: p,
        ..Fair::default()
    };
    let outcome = (|| {
        for _ in 0..p {
            let mut cmd = child::command(&[TAKER, name, &hold_us], env)?;
            cmd.stdin(Stdio::piped()).stderr(Stdio::null());
            let mut c = cmd
                .spawn()
                .map_err(|e| format!("cannot start a taker: {e}"))?;
            let out = c.stdout.take().ok_or("no stdout of a taker")?;
            children.push((c, BufReader::new(out)));
        }
        for (_, out) in &mut children {
            let mut line = String::new();
            out.read_line(&mut line).map_err(|e| e.to_string())?;
            if line.trim() != "ready" {
                return Err(format!("a taker said {line:?}, expected \"ready\""));
            }
        }
        let run = run.min(budget.left().saturating_sub(Duration::from_secs(2)));
        let start = Instant::now();
        let end = now_nanos() + run.as_nanos();
        for (c, _) in &mut children {
            let stdin = c.stdin.as_mut().ok_or("no stdin of a taker")?;
            writeln!(stdin, "go {end}").map_err(|e| format!("cannot start a taker: {e}"))?;
        }
        // A taker stops asking at the end; one holding then finishes its turn.
        let bound = Instant::now() + run + Duration::from_secs(20);
        for (c, _) in &mut children {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < bound => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    _ => return Err("a taker did not stop after the run".to_owned()),
                }
            }
        }
        Ok(start.elapsed())
    })();
    for (c, _) in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    match outcome {
        Ok(took) => fair.seconds = took.as_secs_f64(),
        Err(e) => {
            fair.errors.push(e);
            return Ok(fair);
        }
    }
    let mut waits_ms = Vec::new();
    for (_, out) in &mut children {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key));
        let waits: Vec<f64> = field("waits_us ")
            .unwrap_or("")
            .split(',')
            .filter_map(|w| w.trim().parse::<f64>().ok())
            .map(|us| us / 1e3)
            .collect();
        if let Some(e) = field("error ") {
            fair.errors.push(e.to_owned());
        }
        let censored = field("censored_us ")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e3;
        fair.counts.push(waits.len());
        fair.worst_ms = waits
            .iter()
            .copied()
            .fold(fair.worst_ms, f64::max)
            .max(censored);
        waits_ms.extend(waits);
    }
    fair.waits = Stat::of_ms(&mut waits_ms);
    Ok(fair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_index_is_one_when_equal_and_one_over_p_for_a_hog() {
        assert_eq!(jain(&[5, 5, 5, 5]), 1.0);
        assert_eq!(jain(&[8, 0, 0, 0]), 0.25);
        assert!((jain(&[3, 1]) - 0.8).abs() < 1e-9);
        assert_eq!(jain(&[]), 0.0);
    }
}
