//! The handoff on the embedded local backend (lock files), with the holder in
//! another process: the bench re-executes itself as the holder.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use relukko::{LockOptions, Locker};

use crate::budget::Budget;
use crate::child::{self, HOLDER, now_nanos};
use crate::remote::random_between;

/// A folder of lock files of our own, so nothing else on the machine contends.
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "relukko-bench-{what}-{}-{}",
        std::process::id(),
        now_nanos()
    ))
}

/// Handoffs from a holder process to a waiter thread here: the holder holds
/// for a random time in `hold`, notes the time (nanoseconds since the epoch,
/// one clock for all processes of a machine) and releases; a sample is the
/// time from there until the waiter holds the lock.
pub fn handoff(
    warm: usize,
    n: usize,
    hold: (Duration, Duration),
    budget: &Budget,
) -> Result<Vec<Duration>, String> {
    let dir = scratch_dir("local-handoff");
    let result = run(&dir, warm, n, hold, budget);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(
    dir: &std::path::Path,
    warm: usize,
    n: usize,
    hold: (Duration, Duration),
    budget: &Budget,
) -> Result<Vec<Duration>, String> {
    const NAME: &str = "bench-handoff-local";
    let waiter = Locker::local(dir);
    let rounds = (warm + n).to_string();
    let dir_text = dir.to_string_lossy();
    let mut cmd = child::command(
        &[HOLDER, NAME, &rounds],
        &[("RELUKKO_LOCAL_DIR", &dir_text)],
    )?;
    let mut holder = cmd
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the holder: {e}"))?;
    let mut to_holder = holder.stdin.take().ok_or("no stdin of the holder")?;
    let mut from_holder =
        BufReader::new(holder.stdout.take().ok_or("no stdout of the holder")?).lines();
    let mut next_line = move || match from_holder.next() {
        Some(Ok(line)) => Ok(line),
        _ => Err("the holder process ended early (see its message above)".to_owned()),
    };

    let mut samples = Vec::with_capacity(n);
    let mut failure = None;
    for i in 0..warm + n {
        if budget.left() < hold.1 + Duration::from_secs(1) {
            break;
        }
        // The holder locks only when told, so every round is one clean
        // handoff: the holder holds, the waiter blocks, the holder releases.
        // (A holder that locked again right after releasing would race the
        // waiter the kernel just woke, and a round could measure nothing.)
        if let Err(e) = writeln!(to_holder, "lock") {
            failure = Some(format!("cannot talk to the holder: {e}"));
            break;
        }
        match next_line() {
            Ok(line) if line == "held" => {}
            Ok(other) => {
                failure = Some(format!("holder said {other:?}, expected \"held\""));
                break;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        let w = waiter.clone();
        let waiting = std::thread::spawn(move || {
            let lease = w.lock_blocking(LockOptions::new(NAME).timeout(Duration::from_secs(20)));
            (lease, now_nanos())
        });
        std::thread::sleep(random_between(hold));
        if let Err(e) = writeln!(to_holder, "release") {
            failure = Some(format!("cannot talk to the holder: {e}"));
            break;
        }
        let t0 = next_line().and_then(|l| {
            l.strip_prefix("released ")
                .and_then(|t| t.parse::<u128>().ok())
                .ok_or_else(|| format!("holder said {l:?}, expected \"released <nanos>\""))
        });
        let (lease, t1) = waiting
            .join()
            .map_err(|_| "the waiter thread panicked".to_owned())?;
        let lease = lease.map_err(|e| e.to_string())?;
        lease.release_blocking().map_err(|e| e.to_string())?;
        match t0 {
            Ok(t0) if i >= warm => samples.push(Duration::from_nanos(t1.saturating_sub(t0) as u64)),
            Ok(_) => {}
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(to_holder); // end of input: the holder exits
    let _ = holder.wait();
    match failure {
        Some(e) => Err(e),
        None => Ok(samples),
    }
}
