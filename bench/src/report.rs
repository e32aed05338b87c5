//! The results, as a table for people or one JSON object for scripts, each
//! figure marked against its target. Targets are reported, never enforced.

use serde_json::{Value, json};

use crate::fresh::Fresh;
use crate::remote::Contention;
use crate::stats::{Stat, round3};

/// Everything one run measured.
#[derive(Debug)]
pub struct Results {
    pub uncontended: Stat,
    pub handoff_ws: Stat,
    pub handoff_poll: Stat,
    pub handoff_local: Stat,
    pub fresh_local: Fresh,
    pub fresh_relukko: Fresh,
    pub contention: Contention,
    pub settings: Value,
}

/// One figure against its target.
struct Verdict {
    key: &'static str,
    target: &'static str,
    meets: bool,
}

impl Results {
    fn added_rss_mb(&self) -> f64 {
        self.fresh_local
            .added_rss_mb()
            .max(self.fresh_relukko.added_rss_mb())
    }

    fn handoffs_per_s(&self) -> f64 {
        let c = &self.contention;
        if c.seconds > 0.0 {
            c.handoffs as f64 / c.seconds
        } else {
            0.0
        }
    }

    fn verdicts(&self) -> Vec<Verdict> {
        let measured = |s: &Stat| s.samples > 0;
        let c = &self.contention;
        vec![
            Verdict {
                key: "uncontended_ms",
                target: "p50 <= 1 ms, p99 <= 5 ms",
                meets: measured(&self.uncontended)
                    && self.uncontended.p50 <= 1.0
                    && self.uncontended.p99 <= 5.0,
            },
            Verdict {
                key: "handoff_ws_ms",
                target: "p50 <= 5 ms, p99 <= 20 ms",
                meets: measured(&self.handoff_ws)
                    && self.handoff_ws.p50 <= 5.0
                    && self.handoff_ws.p99 <= 20.0,
            },
            Verdict {
                key: "handoff_poll_ms",
                target: "p99 <= 1200 ms",
                meets: measured(&self.handoff_poll) && self.handoff_poll.p99 <= 1200.0,
            },
            Verdict {
                key: "handoff_local_ms",
                target: "p50 <= 1 ms",
                meets: measured(&self.handoff_local) && self.handoff_local.p50 <= 1.0,
            },
            Verdict {
                key: "contention",
                target: "0 overlaps",
                meets: c.handoffs > 0 && c.overlaps == 0 && c.errors.is_empty(),
            },
            Verdict {
                key: "fresh_process_added_ms.local",
                target: "p50 <= 30 ms",
                meets: measured(&self.fresh_local.locked) && self.fresh_local.added().p50 <= 30.0,
            },
            Verdict {
                key: "fresh_process_added_ms.relukko",
                target: "p50 <= 30 ms",
                meets: measured(&self.fresh_relukko.locked)
                    && self.fresh_relukko.added().p50 <= 30.0,
            },
            Verdict {
                key: "added_peak_rss_mb",
                target: "<= 10 MB",
                meets: measured(&self.fresh_relukko.locked) && self.added_rss_mb() <= 10.0,
            },
        ]
    }

    /// The one JSON object of `--json`.
    pub fn json(&self) -> Value {
        let c = &self.contention;
        let fresh = |f: &Fresh| json!({"locked": f.locked.json(), "plain": f.plain.json()});
        let targets: serde_json::Map<String, Value> = self
            .verdicts()
            .into_iter()
            .map(|v| {
                (
                    v.key.to_owned(),
                    json!({"target": v.target, "meets": v.meets}),
                )
            })
            .collect();
        json!({
            "uncontended_ms": self.uncontended.json(),
            "handoff_ws_ms": self.handoff_ws.json(),
            "handoff_poll_ms": self.handoff_poll.json(),
            "handoff_local_ms": self.handoff_local.json(),
            "fresh_process_added_ms": {
                "local": self.fresh_local.added().json(),
                "relukko": self.fresh_relukko.added().json(),
            },
            "contention": {
                "handoffs_per_s": round3(self.handoffs_per_s()),
                "overlaps": c.overlaps,
                "handoffs": c.handoffs,
                "clients": c.clients,
                "seconds": round3(c.seconds),
                "errors": c.errors,
            },
            "added_peak_rss_mb": round3(self.added_rss_mb()),
            "added_peak_rss_mb_by_backend": {
                "local": round3(self.fresh_local.added_rss_mb()),
                "relukko": round3(self.fresh_relukko.added_rss_mb()),
            },
            "fresh_process_ms": {"local": fresh(&self.fresh_local), "relukko": fresh(&self.fresh_relukko)},
            "targets": targets,
            "settings": self.settings,
        })
    }

    /// The table of the default output.
    pub fn table(&self) -> String {
        let verdicts = self.verdicts();
        let mark = |key: &str| {
            let v = verdicts
                .iter()
                .find(|v| v.key == key)
                .expect("every key has a verdict");
            format!(
                "{:<26} {}",
                v.target,
                if v.meets { "meets" } else { "MISSES" }
            )
        };
        let row = |label: &str, s: &Stat, key: &str| {
            format!(
                "{label:<44} {:>9.3} {:>9.3} {:>9.3} {:>6}  {}\n",
                s.p50,
                s.p99,
                s.max,
                s.samples,
                mark(key)
            )
        };
        let wide =
            |label: &str, text: &str, key: &str| format!("{label:<44} {text:<36}  {}\n", mark(key));
        let c = &self.contention;
        let mut t = String::new();
        t += &format!(
            "{:<44} {:>9} {:>9} {:>9} {:>6}  {:<26} {}\n",
            "figure", "p50 ms", "p99 ms", "max ms", "n", "target", "verdict"
        );
        t += &format!("{}\n", "-".repeat(118));
        t += &row(
            "uncontended acquire+release (Relukko)",
            &self.uncontended,
            "uncontended_ms",
        );
        t += &row(
            "handoff, WebSocket on (Relukko)",
            &self.handoff_ws,
            "handoff_ws_ms",
        );
        t += &row(
            "handoff, polling only (Relukko)",
            &self.handoff_poll,
            "handoff_poll_ms",
        );
        t += &row(
            "handoff, local backend, other process",
            &self.handoff_local,
            "handoff_local_ms",
        );
        t += &row(
            "fresh test process, added wall (local)",
            &self.fresh_local.added(),
            "fresh_process_added_ms.local",
        );
        t += &row(
            "fresh test process, added wall (Relukko)",
            &self.fresh_relukko.added(),
            "fresh_process_added_ms.relukko",
        );
        t += &wide(
            &format!(
                "contention: {} clients, 1 lock, {:.1} s",
                c.clients, c.seconds
            ),
            &format!(
                "{:.1} handoffs/s, {} overlaps",
                self.handoffs_per_s(),
                c.overlaps
            ),
            "contention",
        );
        t += &wide(
            "peak memory added by locking (VmHWM)",
            &format!(
                "local {:.2} MB, Relukko {:.2} MB",
                self.fresh_local.added_rss_mb(),
                self.fresh_relukko.added_rss_mb()
            ),
            "added_peak_rss_mb",
        );
        for e in &c.errors {
            t += &format!("contention error: {e}\n");
        }
        let fresh = |name: &str, f: &Fresh| {
            format!(
                "  fresh process ({name}): locked p50 {:.1} ms / plain p50 {:.1} ms; peak RSS locked {:.1} MB / plain {:.1} MB\n",
                f.locked.p50, f.plain.p50, f.locked_hwm_mb, f.plain_hwm_mb
            )
        };
        t += "\n";
        t += &fresh("local", &self.fresh_local);
        t += &fresh("Relukko", &self.fresh_relukko);
        t += &format!("  settings: {}\n", self.settings);
        t
    }
}
