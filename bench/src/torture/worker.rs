//! A worker: a child process that locks like a test would, through the
//! process-wide API configured from its environment, and writes what it saw
//! to the history.
//!
//! In a loop until its end time: pick one of the names, `wait`, lock it
//! (`enter` with the time waited, or `giveup`), hold it for a random time,
//! `exit` (the end of the "test body", written before the release), release,
//! and write its `verdict`: `ok` (held to the end), `lost` (the library said
//! the lock was lost: `state()` or the release's `LockLost`), or `error` (the
//! release failed for another reason).

use std::time::{Duration, Instant};

use relukko_e2e::history::{Writer, now_ns};

/// The first argument that selects the worker mode.
pub const MODE: &str = "__relukko_torture_worker";

/// What a worker is told on its command line.
#[derive(Debug, Clone)]
pub struct Plan {
    pub history: String,
    pub seed: u64,
    pub names: Vec<String>,
    /// Unix nanos after which no new wait starts.
    pub until_ns: u64,
    pub wait_timeout: Duration,
    /// Holds last up to this long (some longer than the lease, so heartbeats matter).
    pub max_hold: Duration,
}

impl Plan {
    /// The arguments after [`MODE`].
    pub fn args(&self) -> Vec<String> {
        vec![
            self.history.clone(),
            self.seed.to_string(),
            self.names.join(","),
            self.until_ns.to_string(),
            self.wait_timeout.as_millis().to_string(),
            self.max_hold.as_millis().to_string(),
        ]
    }

    fn parse(args: &[String]) -> Option<Plan> {
        let [history, seed, names, until, wait, hold] = args else {
            return None;
        };
        Some(Plan {
            history: history.clone(),
            seed: seed.parse().ok()?,
            names: names.split(',').map(str::to_owned).collect(),
            until_ns: until.parse().ok()?,
            wait_timeout: Duration::from_millis(wait.parse().ok()?),
            max_hold: Duration::from_millis(hold.parse().ok()?),
        })
    }
}

/// Runs the worker mode if `args[1]` selects it; answers its exit code.
pub fn run_if_worker(args: &[String]) -> Option<u8> {
    if args.get(1).map(String::as_str) != Some(MODE) {
        return None;
    }
    let Some(plan) = Plan::parse(&args[2..]) else {
        eprintln!("relukko-torture worker: bad arguments {:?}", &args[2..]);
        return Some(2);
    };
    // A worker outlives its parent by a bounded time at most.
    let limit = Duration::from_nanos(plan.until_ns.saturating_sub(now_ns()))
        + plan.wait_timeout
        + plan.max_hold
        + Duration::from_secs(30);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        std::process::exit(3);
    });
    match run(&plan) {
        Ok(()) => Some(0),
        Err(e) => {
            eprintln!("relukko-torture worker {}: {e}", std::process::id());
            Some(1)
        }
    }
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

fn run(plan: &Plan) -> std::io::Result<()> {
    let history = Writer::open(plan.history.as_ref())?;
    let pid = std::process::id();
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    while now_ns() < plan.until_ns {
        let name = &plan.names[rng.usize(..plan.names.len())];
        history.line(pid, "wait", &format!("{name} {}", ms(plan.wait_timeout)));
        let start = Instant::now();
        let opts = relukko::LockOptions::new(name.as_str()).timeout(plan.wait_timeout);
        let lease = match relukko::lock_blocking(opts) {
            Ok(lease) => lease,
            Err(e) => {
                let why = match e {
                    relukko::Error::WaitTimeout { .. } => "timeout",
                    _ => "error",
                };
                history.line(
                    pid,
                    "giveup",
                    &format!("{name} {} {why}", ms(start.elapsed())),
                );
                eprintln!("relukko-torture worker {pid}: {name}: {e}");
                std::thread::sleep(Duration::from_millis(rng.u64(50..300)));
                continue;
            }
        };
        history.line(pid, "enter", &format!("{name} {}", ms(start.elapsed())));
        // Mostly short holds; one in six longer than the lease.
        let hold = if rng.u8(0..6) == 0 {
            plan.max_hold.mul_f64(0.5 + rng.f64() / 2.0)
        } else {
            Duration::from_millis(rng.u64(20..600))
        };
        std::thread::sleep(hold);
        history.line(pid, "exit", name);
        let lost_before = lease.state() == relukko::LeaseState::Lost;
        let start = Instant::now();
        let verdict = match lease.release_blocking() {
            Ok(()) if lost_before => "lost",
            Ok(()) => "ok",
            Err(relukko::Error::LockLost { .. }) => "lost",
            Err(e) => {
                eprintln!("relukko-torture worker {pid}: release of {name}: {e}");
                if lost_before { "lost" } else { "error" }
            }
        };
        history.line(
            pid,
            "verdict",
            &format!("{name} {verdict} {}", ms(start.elapsed())),
        );
        std::thread::sleep(Duration::from_millis(rng.u64(0..200)));
    }
    Ok(())
}
