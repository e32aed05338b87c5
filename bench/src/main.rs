//! `cargo relukko-bench`: what locking with relukko-test costs.
//!
//! Starts our Relukko-compatible server in this process on 127.0.0.1, measures
//! uncontended locking, handoffs (WebSocket on, polling only, local backend
//! across processes), contention, and the cost of one locked test in a fresh
//! process (nextest's model), then prints a table, or with `--json` one JSON
//! object. Every figure is marked against its target; the command exits 0
//! whether targets are met or not (it fails only if it cannot measure). Every
//! loop is bounded, and a global deadline stops it within about two minutes.
//!
//! The bench re-executes itself (`std::env::current_exe()`) in hidden modes to
//! play a separate process; see `child.rs`.

mod budget;
mod build_cost;
mod child;
mod crowd;
mod fair;
mod fresh;
mod local;
mod machine;
mod remote;
mod report;
mod scale;
mod stats;
mod strangers;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::budget::Budget;
use crate::report::Results;
use crate::stats::Stat;

const USAGE: &str = "\
cargo relukko-bench [--json] [--quick]

    --json    print one JSON object instead of the table
    --quick   fewer samples, shorter runs, no crowd of 64 or 128 (about 50 s in all)

cargo relukko-bench --server [--json] [--quick]

    the server against crowds and strangers: creates with 1500 idle
    WebSocket clients (500 with --quick) against none, memory per client,
    a keyed request's answer time under a flood of unfinished connections

cargo relukko-bench --build-cost [--json] [--offline] [--rounds N]

    cold builds of a new crate with one test: relukko-test (default
    features, and none) beside serial_test and reqwest+tokio+serde

Progress goes to stderr. Figures are marked against their targets but the
exit code is 0 either way.";

/// The longest the first part of the bench (latencies, contention) runs.
const DEADLINE: Duration = Duration::from_secs(110);
/// The longest the second part (idle waiters, crowds, fair turns) runs.
const SCALE_DEADLINE: Duration = Duration::from_secs(200);

/// How many samples of each figure.
#[derive(Debug, Clone, Copy)]
struct Plan {
    uncontended: (usize, usize),
    handoff_ws: (usize, usize),
    ws_hold: (Duration, Duration),
    handoff_poll: (usize, usize),
    poll_hold: (Duration, Duration),
    handoff_local: (usize, usize),
    local_hold: (Duration, Duration),
    fresh: (usize, usize),
    clients: usize,
    contention: Duration,
    scale: scale::Plan,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        let ms = Duration::from_millis;
        let scale = |n: usize| if quick { n.div_ceil(5) } else { n };
        Plan {
            uncontended: (50, scale(1000)),
            handoff_ws: (5, scale(200)),
            ws_hold: (ms(5), ms(25)),
            handoff_poll: (1, if quick { 5 } else { 20 }),
            poll_hold: (ms(200), ms(1600)),
            handoff_local: (5, scale(200)),
            local_hold: (ms(5), ms(40)),
            fresh: (3, scale(100)),
            clients: 16,
            contention: if quick {
                Duration::from_secs(3)
            } else {
                Duration::from_secs(10)
            },
            scale: scale::Plan::new(quick),
        }
    }

    fn json(&self) -> serde_json::Value {
        let ms =
            |(lo, hi): (Duration, Duration)| json!([lo.as_millis() as u64, hi.as_millis() as u64]);
        json!({
            "samples": {
                "uncontended": self.uncontended.1,
                "handoff_ws": self.handoff_ws.1,
                "handoff_poll": self.handoff_poll.1,
                "handoff_local": self.handoff_local.1,
                "fresh_process_per_backend_and_kind": self.fresh.1,
            },
            "warmup_rounds": {
                "uncontended": self.uncontended.0,
                "handoff_ws": self.handoff_ws.0,
                "handoff_poll": self.handoff_poll.0,
                "handoff_local": self.handoff_local.0,
                "fresh_process": self.fresh.0,
            },
            "hold_ms": {"handoff_ws": ms(self.ws_hold), "handoff_poll": ms(self.poll_hold), "handoff_local": ms(self.local_hold)},
            "contention": {"clients": self.clients, "seconds": self.contention.as_secs_f64()},
            "idle": {"waiters": self.scale.idle_waiters, "window_s": self.scale.idle_window.as_secs_f64()},
            "crowds": self.scale.crowds,
            "fair_turns": {"processes": self.scale.fair_processes, "seconds": self.scale.fair_run.as_secs_f64(), "hold_ms": fair::HOLD.as_secs_f64() * 1e3},
            "deadline_s": DEADLINE.as_secs() + SCALE_DEADLINE.as_secs(),
        })
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = child::run_hidden_mode(&args) {
        return ExitCode::from(code as u8);
    }
    if args.get(1).map(String::as_str) == Some(strangers::SERVER) {
        let files = args.get(2).and_then(|f| f.parse().ok()).unwrap_or(0);
        return match strangers::serve_child(files) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("relukko-bench server child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.iter().any(|a| a == "--server") {
        let quick = args.iter().any(|a| a == "--quick");
        return match strangers::run(quick) {
            Ok(v) if args.iter().any(|a| a == "--json") => {
                println!("{v}");
                ExitCode::SUCCESS
            }
            Ok(v) => {
                print!("{}", strangers::table(&v));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("relukko-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.iter().any(|a| a == "--build-cost") {
        return build_cost::main(&args[1..]);
    }
    let (mut as_json, mut quick) = (false, false);
    for a in &args[1..] {
        match a.as_str() {
            "--json" => as_json = true,
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("relukko-bench: unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("relukko-bench: cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Plan::new(quick), quick)) {
        Ok(results) if as_json => {
            println!("{}", results.json());
            ExitCode::SUCCESS
        }
        Ok(results) => {
            print!("{}", results.table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("relukko-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints what a phase is doing to stderr, and how long it took.
fn phase<T>(name: &str, f: impl FnOnce() -> T) -> T {
    eprint!("relukko-bench: {name} ... ");
    let start = Instant::now();
    let out = f();
    eprintln!("{:.1} s", start.elapsed().as_secs_f64());
    out
}

async fn run(plan: Plan, quick: bool) -> Result<Results, String> {
    let started = Instant::now();
    let all = Budget::new(DEADLINE);
    let server = relukko_server::TestServer::start();

    let t = Instant::now();
    eprint!("relukko-bench: uncontended acquire + release ... ");
    let (w, n) = plan.uncontended;
    let uncontended = remote::uncontended(&server, w, n, &all.sub(Duration::from_secs(10))).await?;
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    eprint!("relukko-bench: handoff, WebSocket on ... ");
    let (w, n) = plan.handoff_ws;
    let ws = remote::handoff(
        &server,
        &server,
        true,
        w,
        n,
        plan.ws_hold,
        &all.sub(Duration::from_secs(15)),
    )
    .await?;
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());

    let (w, n) = plan.handoff_local;
    let local = phase("handoff, local backend, holder in another process", || {
        local::handoff(w, n, plan.local_hold, &all.sub(Duration::from_secs(15)))
    })?;

    let (w, n) = plan.fresh;
    let dir = local::scratch_dir("fresh");
    let dir_text = dir.to_string_lossy().into_owned();
    let fresh_local = phase("fresh test processes, local backend", || {
        fresh::run(
            &[("RELUKKO_LOCAL_DIR", &dir_text)],
            w,
            n,
            &all.sub(Duration::from_secs(10)),
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    let fresh_local = fresh_local?;
    let url = server.base_url();
    let relukko_env = [("RELUKKO_URL", url), ("RELUKKO_API_KEY", server.api_key())];
    let fresh_relukko = phase("fresh test processes, Relukko backend", || {
        fresh::run(&relukko_env, w, n, &all.sub(Duration::from_secs(10)))
    })?;

    let t = Instant::now();
    eprint!("relukko-bench: handoff, polling only ... ");
    let (w, n) = plan.handoff_poll;
    // Keep what the contention run needs.
    let poll_budget = all.sub(
        all.left()
            .saturating_sub(plan.contention + Duration::from_secs(5)),
    );
    let poll = remote::handoff(&server, &server, false, w, n, plan.poll_hold, &poll_budget).await?;
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    eprint!("relukko-bench: contention, {} clients ... ", plan.clients);
    let run = plan
        .contention
        .min(all.left().saturating_sub(Duration::from_secs(3)));
    let contention = remote::contention(&server, plan.clients, run).await?;
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());

    let scale = scale::run(&server, &plan.scale, SCALE_DEADLINE).await?;
    drop(server);

    let stores = stores(&plan).await?;

    let mut settings = plan.json();
    settings["quick"] = json!(quick);
    settings["server"] = json!("relukko_server::TestServer in this process, 127.0.0.1");
    settings["relukko_backend"] = json!(
        "Locker::relukko(Client::builder(url).api_key(k).websocket(on|off).build()), one client per holder/waiter"
    );
    settings["machine"] = machine::machine();
    settings["elapsed_s"] = json!(stats::round3(started.elapsed().as_secs_f64()));
    Ok(Results {
        uncontended: Stat::of(&uncontended),
        handoff_ws: Stat::of(&ws),
        handoff_poll: Stat::of(&poll),
        handoff_local: Stat::of(&local),
        fresh_local,
        fresh_relukko,
        contention,
        scale,
        stores,
        settings,
    })
}

/// The same figures on the server's database stores: uncontended on a redb
/// file, and on PostgreSQL (a throwaway cluster, when it is installed)
/// uncontended and the WebSocket handoff from a holder on replica A to a
/// waiter on replica B.
async fn stores(plan: &Plan) -> Result<report::Stores, String> {
    let budget = Budget::new(Duration::from_secs(60));
    let (w, n) = plan.uncontended;
    let n = n.min(300);
    let dir = relukko_e2e::temp::TempDir::new("bench-redb");
    let redb = relukko_server::TestServer::builder()
        .database(dir.join("locks.redb"))
        .start();
    let t = Instant::now();
    eprint!("relukko-bench: uncontended acquire + release, redb file ... ");
    let uncontended_redb =
        remote::uncontended(&redb, w, n, &budget.sub(Duration::from_secs(40))).await?;
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());
    drop(redb);
    // Started on a thread: it waits for PostgreSQL with blocking calls.
    let pg = tokio::task::spawn_blocking(relukko_e2e::postgres::TestPostgres::start)
        .await
        .map_err(|e| e.to_string())?;
    let Some(pg) = pg else {
        return Ok(report::Stores {
            uncontended_redb: Stat::of(&uncontended_redb),
            postgres: None,
        });
    };
    let a = relukko_server::TestServer::builder()
        .postgres(pg.url())
        .start();
    let b = relukko_server::TestServer::builder()
        .postgres(pg.url())
        .api_key(a.api_key())
        .start();
    let t = Instant::now();
    eprint!("relukko-bench: uncontended acquire + release, PostgreSQL ... ");
    let uncontended = remote::uncontended(&a, w, n, &budget.sub(Duration::from_secs(25))).await?;
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    eprint!("relukko-bench: handoff, WebSocket on, PostgreSQL replica A to replica B ... ");
    let (w, n) = plan.handoff_ws;
    let handoff = remote::handoff(
        &a,
        &b,
        true,
        w,
        n,
        plan.ws_hold,
        &budget.sub(Duration::from_secs(5)),
    )
    .await?;
    eprintln!("{:.1} s", t.elapsed().as_secs_f64());
    drop((a, b));
    let stores = report::Stores {
        uncontended_redb: Stat::of(&uncontended_redb),
        postgres: Some((Stat::of(&uncontended), Stat::of(&handoff))),
    };
    // Stopped on a thread too.
    let _ = tokio::task::spawn_blocking(move || drop(pg)).await;
    Ok(stores)
}
