//! The hidden modes in which the bench re-executes itself as a child process,
//! and the parent's side of starting them.
//!
//! A child is what a test process is under `cargo nextest` (one process per
//! test): it configures the library from its environment on first use, locks,
//! runs a trivial body, releases and exits. Children watch the clock themselves
//! and exit after [`CHILD_LIMIT`], so a bench that dies cannot leave them behind
//! for long.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first argument that selects a hidden mode.
pub const HOLDER: &str = "__relukko_bench_holder";
/// The first argument that selects the fresh-test-process mode.
pub const TEST: &str = "__relukko_bench_test";
/// The first argument that selects a waiter of a crowd (see `crowd.rs`).
pub const WAITER: &str = "__relukko_bench_waiter";
/// The first argument that selects a taker of fair turns (see `fair.rs`).
pub const TAKER: &str = "__relukko_bench_taker";
/// The longest any child lives.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// Runs the hidden mode named by `args[1]`, if any; answers whether it did.
pub fn run_hidden_mode(args: &[String]) -> Option<i32> {
    let mode = args.get(1)?.as_str();
    if ![HOLDER, TEST, WAITER, TAKER].contains(&mode) {
        return None;
    }
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIMIT);
        eprintln!("relukko-bench child: still running after {CHILD_LIMIT:?}; exiting");
        std::process::exit(3);
    });
    let result = match (mode, args.get(2).map(String::as_str), args.get(3)) {
        (HOLDER, Some(name), Some(rounds)) => holder(name, rounds.parse().unwrap_or(0)),
        (TEST, Some("locked"), Some(name)) => fresh_test(Some(name)),
        (TEST, Some("plain"), _) => fresh_test(None),
        (WAITER, Some(name), Some(ms)) => waiter(name, ms.parse().unwrap_or(0)),
        (TAKER, Some(name), Some(us)) => taker(name, us.parse().unwrap_or(0)),
        _ => Err(format!("bad hidden-mode arguments {:?}", &args[1..])),
    };
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("relukko-bench child: {e}");
            // Crowds and takers run with stderr closed; their parent reads this.
            println!("error {}", e.replace('\n', " "));
            1
        }
    })
}

/// Nanoseconds since the Unix epoch: one clock for every process of this
/// machine (an `Instant` cannot cross a process boundary).
pub fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The holder of the local handoff: `rounds` times, wait for a line on stdin,
/// lock `name`, say `held`, wait for a line on stdin, then note the time,
/// release and say `released <nanos>`. End of input ends it.
fn holder(name: &str, rounds: usize) -> Result<(), String> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    for _ in 0..rounds {
        match lines.next() {
            Some(Ok(_)) => {}
            _ => return Ok(()),
        }
        let opts = relukko::LockOptions::new(name).timeout(Duration::from_secs(20));
        let lease = relukko::lock_blocking(opts).map_err(|e| e.to_string())?;
        println!("held");
        match lines.next() {
            Some(Ok(_)) => {}
            _ => return Ok(()), // the parent is done (or gone)
        }
        let t0 = now_nanos();
        lease.release_blocking().map_err(|e| e.to_string())?;
        println!("released {t0}");
    }
    Ok(())
}

/// A waiter of a crowd: says `waiting`, locks `name` through the process-wide
/// locker (set up from the environment, as a test's), waiting at most
/// `timeout_ms`; then notes the time, says `acquired <nanos>`, notes the time
/// again and releases at once, and says `released <nanos>`. A wait that ends
/// without the lock says `gave_up <waited ms> <error>`.
fn waiter(name: &str, timeout_ms: u64) -> Result<(), String> {
    let timeout = Duration::from_millis(timeout_ms);
    println!("waiting");
    let started = std::time::Instant::now();
    match relukko::lock_blocking(relukko::LockOptions::new(name).timeout(timeout)) {
        Ok(lease) => {
            println!("acquired {}", now_nanos());
            let t = now_nanos();
            lease.release_blocking().map_err(|e| e.to_string())?;
            println!("released {t}");
            Ok(())
        }
        Err(e) => {
            let e = e.to_string().replace('\n', " ");
            println!("gave_up {} {e}", started.elapsed().as_millis());
            Err(e)
        }
    }
}

/// A taker of fair turns: says `ready`, reads `go <end nanos>` from stdin,
/// then until the end takes `name`, holds it `hold_us`, releases it and asks
/// again at once. Says `waits_us <w1,w2,...>` (each completed wait) and
/// `censored_us <w>` (the wait under way at the end, 0 if none).
fn taker(name: &str, hold_us: u64) -> Result<(), String> {
    println!("ready");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let end: u128 = line
        .trim()
        .strip_prefix("go ")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("expected \"go <nanos>\", got {line:?}"))?;
    let (mut waits, mut censored) = (Vec::new(), 0u128);
    loop {
        let asked = now_nanos();
        if asked >= end {
            break;
        }
        let left = Duration::from_nanos((end - asked) as u64);
        match relukko::lock_blocking(relukko::LockOptions::new(name).timeout(left)) {
            Ok(lease) => {
                let got = now_nanos();
                waits.push(((got - asked) / 1000).to_string());
                std::thread::sleep(Duration::from_micros(hold_us));
                lease.release_blocking().map_err(|e| e.to_string())?;
            }
            Err(relukko::Error::WaitTimeout { .. }) => {
                censored = (now_nanos() - asked) / 1000;
                break;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    println!("waits_us {}", waits.join(","));
    println!("censored_us {censored}");
    Ok(())
}

/// One test in a fresh process: with `Some(name)` locked through the
/// process-wide locker configured from the environment (what
/// `#[relukko::locked]` does), with `None` the body alone. Prints the peak
/// resident memory (`hwm_kb <n>`) at the end.
fn fresh_test(name: Option<&str>) -> Result<(), String> {
    let lease = match name {
        Some(n) => Some(relukko::lock_blocking(n).map_err(|e| e.to_string())?),
        None => None,
    };
    // The trivial body of the test.
    let sum: u64 = (0..1000u64).map(std::hint::black_box).sum();
    std::hint::black_box(sum);
    if let Some(lease) = lease {
        lease.release_blocking().map_err(|e| e.to_string())?;
    }
    println!("hwm_kb {}", peak_rss_kb().unwrap_or(0));
    Ok(())
}

/// `VmHWM` of this process from `/proc/self/status` (Linux), in KiB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A command re-executing this binary in a hidden mode, with none of the
/// caller's `RELUKKO_*` (or CA bundle) variables: the bench sets exactly what
/// each child needs.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bench binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("RELUKKO_") || k.ends_with("_CA_BUNDLE") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    Ok(cmd)
}
