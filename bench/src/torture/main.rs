//! `cargo relukko-torture`: many real processes lock a few names on both
//! backends under a random (seeded) schedule of faults; a checker reads the
//! history they leave and says whether a safety or liveness property broke.
//!
//! ```text
//! cargo relukko-torture [--seconds N] [--seed S] [--backend local|relukko|both|postgres|all] [--json]
//! ```
//!
//! Loopback only, bounded in time (N seconds per backend plus a few to set up
//! and check), stops by itself, exits 1 when a property fails. The binary
//! re-executes itself (`std::env::current_exe()`) as the worker processes; see
//! `worker.rs`. Faults, the checker's rules and bounds: `run.rs`, `check.rs`.

mod check;
mod run;
mod worker;

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use crate::check::Figures;
use crate::run::Backend;

const USAGE: &str = "\
cargo relukko-torture [--seconds N] [--seed S] [--backend local|relukko|both|postgres|all] [--json]

    --seconds N   how long to run each backend (default 120)
    --seed S      the seed of the fault schedule (default: from the clock; printed)
    --backend B   local, relukko, both (the two), postgres (two replicas of our
                  server on a PostgreSQL cluster it starts), or all (default both)
    --json        one JSON object per backend, one per line, instead of the table

Exits 1 when a safety or liveness property fails (undetected overlaps,
deadline overruns, 5xx from the server, a name not freed within its bound),
2 on bad arguments.";

#[derive(Debug)]
struct Args {
    seconds: u64,
    seed: u64,
    backends: Vec<Backend>,
    json: bool,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut out = Args {
        seconds: 120,
        seed: fastrand::u64(..1_000_000),
        backends: vec![Backend::Local, Backend::Relukko],
        json: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--json" => out.json = true,
            "--seconds" => {
                out.seconds = value(a)?
                    .parse()
                    .ok()
                    .filter(|s| (5..=86_400).contains(s))
                    .ok_or("--seconds takes a whole number from 5 to 86400")?;
            }
            "--seed" => {
                out.seed = value(a)?
                    .parse()
                    .map_err(|_| "--seed takes a whole number")?;
            }
            "--backend" => {
                out.backends = match value(a)?.as_str() {
                    "local" => vec![Backend::Local],
                    "relukko" => vec![Backend::Relukko],
                    "both" => vec![Backend::Local, Backend::Relukko],
                    "postgres" => vec![Backend::Postgres],
                    "all" => vec![Backend::Local, Backend::Relukko, Backend::Postgres],
                    other => {
                        return Err(format!(
                            "--backend {other:?}: say local, relukko, both, postgres or all"
                        ));
                    }
                };
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(out))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(code) = worker::run_if_worker(&argv) {
        return ExitCode::from(code);
    }
    let args = match parse(&argv[1..]) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("relukko-torture: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut broken = false;
    for backend in &args.backends {
        eprintln!(
            "relukko-torture: {} backend, {} s, seed {} ...",
            backend.name(),
            args.seconds,
            args.seed
        );
        let figures = match run::run(*backend, args.seed, Duration::from_secs(args.seconds)) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("relukko-torture: {e}");
                return ExitCode::FAILURE;
            }
        };
        broken |= figures.broken();
        for line in &figures.evidence {
            eprintln!("relukko-torture: BROKEN {line}");
        }
        if args.json {
            println!("{}", to_json(&args, *backend, &figures));
        } else {
            print!("{}", table(&args, *backend, &figures));
        }
    }
    if broken {
        eprintln!("relukko-torture: a safety or liveness property failed (see above)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn to_json(args: &Args, backend: Backend, f: &Figures) -> Value {
    let free: serde_json::Map<String, Value> = f
        .free_after
        .iter()
        .map(|(kind, s)| {
            (
                kind.clone(),
                json!({"p50": s.p50().map(round3), "max": s.max().map(round3), "bound": round3(s.bound)}),
            )
        })
        .collect();
    json!({
        "seed": args.seed,
        "seconds": args.seconds,
        "backend": backend.name(),
        "holds": f.holds,
        "faults": f.faults,
        "undetected_overlaps": f.undetected_overlaps,
        "detected_overlaps": f.detected_overlaps,
        "deadline_overruns": f.deadline_overruns,
        "free_after_s": free,
        "bad_requests_sent": f.bad_requests_sent,
        "server_5xx": f.server_5xx,
    })
}

fn table(args: &Args, backend: Backend, f: &Figures) -> String {
    let mark = |ok: bool| if ok { "ok" } else { "BROKEN" };
    let mut out = format!(
        "\nrelukko-torture: {} backend, {} s, seed {}\n\n",
        backend.name(),
        args.seconds,
        args.seed
    );
    out += &format!("  holds                 {:>6}\n", f.holds);
    out += &format!("  waits given up        {:>6}\n", f.giveups);
    out += &format!(
        "  undetected overlaps   {:>6}   {}\n",
        f.undetected_overlaps,
        mark(f.undetected_overlaps == 0)
    );
    out += &format!("  detected overlaps     {:>6}\n", f.detected_overlaps);
    out += &format!(
        "  deadline overruns     {:>6}   {}\n",
        f.deadline_overruns,
        mark(f.deadline_overruns == 0)
    );
    if backend.remote() {
        out += &format!("  bad requests sent     {:>6}\n", f.bad_requests_sent);
        out += &format!(
            "  server 5xx            {:>6}   {}\n",
            f.server_5xx,
            mark(f.server_5xx == 0)
        );
    }
    out += "\n  faults:";
    for (kind, n) in &f.faults {
        out += &format!(" {kind} {n},");
    }
    out.pop();
    out += "\n\n  free after (s)    samples     p50     max   bound\n";
    let num = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.3}"));
    for (kind, s) in &f.free_after {
        out += &format!(
            "  {kind:<16} {:>8} {:>7} {:>7} {:>7.3}   {}\n",
            s.samples.len(),
            num(s.p50()),
            num(s.max()),
            s.bound,
            mark(!s.broken())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Option<Args>, String> {
        parse(&a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        let a = args(&[
            "--seconds",
            "60",
            "--seed",
            "7",
            "--backend",
            "local",
            "--json",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((a.seconds, a.seed, a.json), (60, 7, true));
        assert_eq!(a.backends, [Backend::Local]);
        assert!(
            args(&["--seconds", "1"])
                .unwrap_err()
                .contains("5 to 86400")
        );
        assert!(args(&["--backend", "x"]).is_err());
        assert!(args(&["--seed"]).unwrap_err().contains("needs a value"));
        assert!(args(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let d = Duration::from_secs(60);
        let a = run::schedule(42, Backend::Relukko, d);
        assert_eq!(a, run::schedule(42, Backend::Relukko, d));
        assert_ne!(a, run::schedule(43, Backend::Relukko, d));
        assert!(a.len() > 30, "{}", a.len());
        assert!(a.iter().all(|f| f.at < d));
    }

    #[test]
    fn every_kind_is_planned_about_equally_often() {
        for backend in [Backend::Local, Backend::Relukko] {
            let plan = run::schedule(439_180, backend, Duration::from_secs(120));
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for f in &plan {
                *counts.entry(f.kind).or_default() += 1;
            }
            let kinds = if backend == Backend::Local { 6 } else { 14 };
            assert_eq!(counts.len(), kinds, "{counts:?}");
            let (min, max) = (counts.values().min(), counts.values().max());
            assert!(max.unwrap() - min.unwrap() <= 1, "{counts:?}");
        }
    }
}
