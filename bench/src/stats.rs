//! Latency samples and their summary: p50, p99, max and the sample count.

use std::time::Duration;

use serde_json::{Value, json};

/// A summary of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stat {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub samples: usize,
}

impl Stat {
    /// Summarizes `samples` (nearest-rank percentiles); all zero when empty.
    pub fn of(samples: &[Duration]) -> Stat {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Stat::of_ms(&mut ms)
    }

    /// Summarizes milliseconds.
    pub fn of_ms(ms: &mut [f64]) -> Stat {
        if ms.is_empty() {
            return Stat::default();
        }
        ms.sort_by(f64::total_cmp);
        Stat {
            p50: rank(ms, 0.50),
            p99: rank(ms, 0.99),
            max: ms[ms.len() - 1],
            samples: ms.len(),
        }
    }

    pub fn json(&self) -> Value {
        json!({"p50": round3(self.p50), "p99": round3(self.p99), "max": round3(self.max), "samples": self.samples})
    }
}

/// The nearest-rank percentile `q` of sorted `v`.
fn rank(v: &[f64], q: f64) -> f64 {
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Three decimals are plenty for milliseconds (microsecond resolution).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    Stat::of_ms(&mut v).p50
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_max_and_count() {
        // 1..=100 ms, given out of order.
        let samples: Vec<Duration> = (1..=100u64).rev().map(Duration::from_millis).collect();
        let s = Stat::of(&samples);
        assert_eq!((s.p50, s.p99, s.max, s.samples), (50.0, 99.0, 100.0, 100));
        let s = Stat::of_ms(&mut [3.0, 1.0, 2.0]);
        assert_eq!((s.p50, s.p99, s.max, s.samples), (2.0, 3.0, 3.0, 3));
        let one = Stat::of_ms(&mut [7.5]);
        assert_eq!((one.p50, one.p99, one.max), (7.5, 7.5, 7.5));
        let none = Stat::of(&[]);
        assert_eq!((none.p50, none.max, none.samples), (0.0, 0.0, 0));
    }

    #[test]
    fn rounding_median_and_json() {
        assert_eq!(round3(1.23456), 1.235);
        assert_eq!(median(&[5.0, 1.0, 3.0, 4.0]), 3.0);
        assert_eq!(median(&[]), 0.0);
        let j = Stat::of_ms(&mut [1.0004]).json();
        assert_eq!(j["p50"], 1.0);
        assert_eq!(j["samples"], 1);
    }
}
