//! The second part of the bench: idle waiting processes (WebSocket up and
//! refused), crowds of waiting processes, and fair turns on both backends.

use std::time::{Duration, Instant};

use relukko_server::TestServer;

use crate::budget::Budget;
use crate::crowd::{self, Crowd};
use crate::fair::{self, Fair};
use crate::local;

/// What the second part runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Waiting processes whose idle requests are counted.
    pub idle_waiters: usize,
    pub idle_window: Duration,
    /// The crowds beside the idle ones (which are crowds of 8).
    pub crowds: &'static [usize],
    /// Processes taking turns, and for how long per backend.
    pub fair_processes: usize,
    pub fair_run: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        let ms = Duration::from_millis;
        Plan {
            idle_waiters: 8,
            idle_window: if quick { ms(3000) } else { ms(20_000) },
            crowds: if quick { &[1] } else { &[1, 64, 128] },
            fair_processes: 8,
            fair_run: if quick { ms(3000) } else { ms(10_000) },
        }
    }
}

/// What the second part measured.
#[derive(Debug, Default)]
pub struct Scale {
    /// 8 waiters on a held name, WebSocket up (also the crowd of 8).
    pub idle_ws: Crowd,
    /// The same with every WebSocket upgrade refused: polling only.
    pub idle_blocked: Crowd,
    /// The other crowds, WebSocket up.
    pub crowds: Vec<Crowd>,
    pub fair_local: Fair,
    pub fair_relukko: Fair,
}

/// Prints what is being measured to stderr, then how long it took.
fn start(what: &str) -> Instant {
    eprint!("relukko-bench: {what} ... ");
    Instant::now()
}

fn done(t: Instant) {
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());
}

/// Runs the second part within `deadline`.
pub async fn run(server: &TestServer, plan: &Plan, deadline: Duration) -> Result<Scale, String> {
    let all = Budget::new(deadline);
    let part = || all.sub(Duration::from_secs(60));
    let mut out = Scale::default();
    let n = plan.idle_waiters;
    let window = Some(plan.idle_window);

    let t = start(&format!(
        "{n} idle waiting processes, WebSocket up, then their handoffs"
    ));
    out.idle_ws = crowd::run(server, n, false, window, &part()).await?;
    done(t);
    let t = start(&format!(
        "{n} idle waiting processes, WebSocket refused, then their handoffs"
    ));
    out.idle_blocked = crowd::run(server, n, true, window, &part()).await?;
    done(t);
    for &n in plan.crowds {
        let t = start(&format!("a crowd of {n} waiting processes"));
        out.crowds
            .push(crowd::run(server, n, false, None, &part()).await?);
        done(t);
    }

    let p = plan.fair_processes;
    let run = plan.fair_run;
    let dir = local::scratch_dir("fair");
    let dir_text = dir.to_string_lossy().into_owned();
    let t = start(&format!("fair turns, {p} processes, local backend"));
    let fair_local = fair::run(
        &[("RELUKKO_LOCAL_DIR", &dir_text)],
        p,
        run,
        &all.sub(run * 3),
    );
    let _ = std::fs::remove_dir_all(&dir);
    out.fair_local = fair_local?;
    done(t);
    let env = [
        ("RELUKKO_URL", server.base_url()),
        ("RELUKKO_API_KEY", server.api_key()),
    ];
    let t = start(&format!("fair turns, {p} processes, Relukko backend"));
    out.fair_relukko = fair::run(&env, p, run, &all.sub(run * 3))?;
    done(t);
    Ok(out)
}
