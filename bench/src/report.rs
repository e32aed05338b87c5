//! The results, as a table for people or one JSON object for scripts, each
//! figure marked against its target. Targets are reported, never enforced.

use serde_json::{Value, json};

use crate::crowd::Crowd;
use crate::fair::Fair;
use crate::fresh::Fresh;
use crate::remote::Contention;
use crate::scale::Scale;
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
    pub scale: Scale,
    pub stores: Stores,
    pub settings: Value,
}

/// The figures on the server's database stores.
#[derive(Debug)]
pub struct Stores {
    /// Uncontended acquire + release on a redb file.
    pub uncontended_redb: Stat,
    /// On PostgreSQL, when installed: uncontended, and the WebSocket handoff
    /// from replica A to replica B.
    pub postgres: Option<(Stat, Stat)>,
}

/// Every crowd, the idle ones first.
fn crowds(s: &Scale) -> impl Iterator<Item = &Crowd> {
    [&s.idle_ws, &s.idle_blocked].into_iter().chain(&s.crowds)
}

fn crowd_json(c: &Crowd) -> Value {
    json!({
        "waiters": c.waiters,
        "websocket": if c.ws_blocked { "refused" } else { "up" },
        "handoff_ms": Stat::of(&c.handoffs).json(),
        "requests_per_handoff": round3(c.requests_per_handoff()),
        "requests": c.requests,
        "gave_up": c.gave_up,
        "overlaps": c.overlaps,
        "errors": c.errors,
    })
}

fn fair_meets(f: &Fair) -> bool {
    f.errors.is_empty() && f.waits.samples > 0 && f.jain() >= 0.9 && f.worst_over_median() <= 3.0
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
                key: "uncontended_redb_ms",
                target: "measured (beside PostgreSQL)",
                meets: measured(&self.stores.uncontended_redb),
            },
            Verdict {
                key: "uncontended_postgres_ms",
                target: "p50 <= 3 ms",
                meets: self
                    .stores
                    .postgres
                    .as_ref()
                    .is_some_and(|(u, _)| measured(u) && u.p50 <= 3.0),
            },
            Verdict {
                key: "handoff_postgres_replicas_ms",
                target: "p50 <= 3 ms",
                meets: self
                    .stores
                    .postgres
                    .as_ref()
                    .is_some_and(|(_, h)| measured(h) && h.p50 <= 3.0),
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
                key: "idle_requests_per_s_per_waiter.websocket_up",
                target: "<= 0.1 req/s",
                meets: self.scale.idle_ws.idle_rate().is_some_and(|r| r <= 0.1),
            },
            Verdict {
                key: "crowd_polling_handoff_ms",
                target: "p99 <= 1200 ms",
                meets: {
                    let c = &self.scale.idle_blocked;
                    let s = Stat::of(&c.handoffs);
                    s.samples > 0 && s.p99 <= 1200.0
                },
            },
            Verdict {
                key: "crowd_64_handoff_ms",
                target: "p50 <= 5 ms",
                meets: self
                    .scale
                    .crowds
                    .iter()
                    .find(|c| c.waiters == 64)
                    .is_some_and(|c| {
                        let s = Stat::of(&c.handoffs);
                        s.samples > 0 && s.p50 <= 5.0
                    }),
            },
            Verdict {
                key: "crowds",
                target: "0 give-ups, 0 overlaps",
                meets: crowds(&self.scale).all(|c| {
                    c.gave_up == 0
                        && c.overlaps == 0
                        && c.errors.is_empty()
                        && c.handoffs.len() == c.waiters
                }),
            },
            Verdict {
                key: "fair_turns.local",
                target: "Jain >= 0.9, worst <= 3x p50",
                meets: fair_meets(&self.scale.fair_local),
            },
            Verdict {
                key: "fair_turns.relukko",
                target: "Jain >= 0.9, worst <= 3x p50",
                meets: fair_meets(&self.scale.fair_relukko),
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
            "uncontended_redb_ms": self.stores.uncontended_redb.json(),
            "uncontended_postgres_ms": self.stores.postgres.as_ref().map(|(u, _)| u.json()),
            "handoff_postgres_replicas_ms": self.stores.postgres.as_ref().map(|(_, h)| h.json()),
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
            "idle_requests_per_s_per_waiter": {
                "websocket_up": self.scale.idle_ws.idle_rate().map(round3),
                "websocket_refused": self.scale.idle_blocked.idle_rate().map(round3),
                "refused_upgrades_per_s_per_waiter": self.scale.idle_blocked.refused_rate().map(round3),
                "waiters": self.scale.idle_ws.waiters,
                "window_s": self.scale.idle_ws.idle.map(|i| round3(i.window_s)),
            },
            "crowds": crowds(&self.scale).map(crowd_json).collect::<Vec<_>>(),
            "fair_turns": {
                "local": self.scale.fair_local.json(),
                "relukko": self.scale.fair_relukko.json(),
            },
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
            "uncontended acquire+release (redb file)",
            &self.stores.uncontended_redb,
            "uncontended_redb_ms",
        );
        match &self.stores.postgres {
            Some((uncontended, handoff)) => {
                t += &row(
                    "uncontended acquire+release (PostgreSQL)",
                    uncontended,
                    "uncontended_postgres_ms",
                );
                t += &row(
                    "handoff, WebSocket, PostgreSQL replica A to B",
                    handoff,
                    "handoff_postgres_replicas_ms",
                );
            }
            None => t += "PostgreSQL rows: not measured (PostgreSQL is not installed)\n",
        }
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
        let sc = &self.scale;
        let rate = |c: &Crowd| c.idle_rate().map_or("-".to_owned(), |r| format!("{r:.3}"));
        t += &wide(
            &format!(
                "idle: {} waiting processes, WebSocket up",
                sc.idle_ws.waiters
            ),
            &format!("{} req/s per waiter", rate(&sc.idle_ws)),
            "idle_requests_per_s_per_waiter.websocket_up",
        );
        t += &format!(
            "{:<44} {:<36}\n",
            format!(
                "idle: {} waiting processes, WS refused",
                sc.idle_blocked.waiters
            ),
            format!(
                "{} req/s per waiter (+{} refused upgrades/s)",
                rate(&sc.idle_blocked),
                sc.idle_blocked
                    .refused_rate()
                    .map_or("-".to_owned(), |r| format!("{r:.3}"))
            ),
        );
        for c in crowds(sc) {
            let key = if c.ws_blocked {
                "crowd_polling_handoff_ms"
            } else if c.waiters == 64 {
                "crowd_64_handoff_ms"
            } else {
                "crowds"
            };
            let label = format!(
                "crowd {}{}: handoff, {:.1} req/handoff",
                c.waiters,
                if c.ws_blocked { " WS refused" } else { "" },
                c.requests_per_handoff()
            );
            t += &row(&label, &Stat::of(&c.handoffs), key);
        }
        let fair = |f: &Fair, backend: &str, key: &str| {
            wide(
                &format!("fair turns, {} procs, {backend}", f.processes),
                &format!(
                    "Jain {:.3}, worst {:.0} ms = {:.1}x p50",
                    f.jain(),
                    f.worst_ms,
                    f.worst_over_median()
                ),
                key,
            )
        };
        t += &fair(&sc.fair_local, "local", "fair_turns.local");
        t += &fair(&sc.fair_relukko, "Relukko", "fair_turns.relukko");
        for e in &c.errors {
            t += &format!("contention error: {e}\n");
        }
        for c in crowds(sc) {
            for e in &c.errors {
                t += &format!("crowd {} error: {e}\n", c.waiters);
            }
            if c.gave_up > 0 || c.overlaps > 0 {
                t += &format!(
                    "crowd {}: {} gave up, {} overlaps\n",
                    c.waiters, c.gave_up, c.overlaps
                );
            }
        }
        for (f, b) in [(&sc.fair_local, "local"), (&sc.fair_relukko, "Relukko")] {
            for e in &f.errors {
                t += &format!("fair turns ({b}) error: {e}\n");
            }
            t += &format!(
                "  fair turns ({b}): acquisitions per process {:?}; wait p50 {:.1} ms, p99 {:.1} ms\n",
                f.counts, f.waits.p50, f.waits.p99
            );
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
