//! Nested holds: a process `relukko run NAME` started that locks NAME
//! itself takes it inside the outer hold at once (no second lock, no wait
//! for the outer holder), its holders still take turns among themselves,
//! and a stale or forged `RELUKKO_HELD_PROOF` is ignored with one line.
//!
//! The inner holders are this test binary run again as a child, in the
//! role of [`child_locks_rig`], which does nothing in a normal run.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Backend, output, relukko, text};

/// The variable that gives the child its role: the file it logs to.
const LOG: &str = "NESTED_E2E_LOG";
/// How long each inner holder holds.
const INNER_HOLD: Duration = Duration::from_millis(400);
/// The inner holders' longest wait: far shorter than the outer hold (the
/// whole run), so one that waited for the outer holder would fail.
const INNER_TIMEOUT: &str = "4s";

/// The child's role: lock `rig` with `relukko::lock_blocking` (the
/// process-wide locker, from the environment), log when it got it and when
/// it lets it go, hold it a while.
#[test]
fn child_locks_rig() {
    let Some(log) = std::env::var_os(LOG) else {
        return;
    };
    let lease = relukko::lock_blocking("rig").expect("the child gets rig");
    append(&log, &format!("enter {} {}", now_ns(), std::process::id()));
    std::thread::sleep(INNER_HOLD);
    append(&log, &format!("exit {} {}", now_ns(), std::process::id()));
    lease.release_blocking().expect("the child releases rig");
}

/// The child's role with the attribute, as a test suite run under
/// `relukko run` has it. In a normal run it locks its name for an instant
/// in the default folder (the attribute locks before the body).
#[relukko::locked("nested-e2e-rig")]
#[test]
fn child_locked_by_the_attribute() {
    if let Some(log) = std::env::var_os(LOG) {
        append(&log, &format!("enter {} {}", now_ns(), std::process::id()));
        append(&log, &format!("exit {} {}", now_ns(), std::process::id()));
    }
}

fn append(path: &std::ffi::OsStr, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// This binary as the child: runs [`child_locks_rig`] alone.
fn child_args() -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    vec![
        exe.display().to_string(),
        "nested::child_locks_rig".into(),
        "--exact".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ]
}

/// `(enter, exit)` pairs of the log, per holder.
fn spans(log: &std::path::Path) -> Vec<(u128, u128)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut open = std::collections::HashMap::new();
    let mut spans = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (t, pid): (u128, &str) = (f[1].parse().unwrap(), f[2]);
        match f[0] {
            "enter" => {
                open.insert(pid.to_owned(), t);
            }
            _ => spans.push((open.remove(pid).expect("enter before exit"), t)),
        }
    }
    spans.sort();
    spans
}

/// A shell word.
fn quoted(w: &str) -> String {
    format!("'{}'", w.replace('\'', "'\\''"))
}

fn two_inner_holders_take_rig_inside_the_outer_hold(backend: &Backend) {
    let dir = crate::support::TempDir::new("nested");
    let log = dir.path().join("log");
    let child = child_args()
        .iter()
        .map(|w| quoted(w))
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!("{child} & a=$!; {child} & b=$!; wait $a && wait $b");
    let start = Instant::now();
    let mut cmd = relukko(backend, &["run", "rig", "--", "sh", "-c", &script]);
    cmd.env(LOG, &log).env("RELUKKO_TIMEOUT", INNER_TIMEOUT);
    let out = output(cmd);
    let took = start.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ignored") && !stderr.contains("nothing shows"),
        "the hold was believed: {}",
        text(&out)
    );
    let spans = spans(&log);
    assert_eq!(spans.len(), 2, "both children held rig: {}", text(&out));
    // Taking turns inside the hold: the second enters after the first left.
    assert!(
        spans[0].1 <= spans[1].0,
        "the inner holders overlapped: {spans:?}"
    );
    // Well within the inner timeout: no child waited for the outer holder
    // (which holds until both have ended).
    assert!(
        took < Duration::from_secs(4) + INNER_HOLD * 2,
        "took {took:?}: {}",
        text(&out)
    );
    if let Backend::Local(locks) = backend {
        // The folder the children took turns in is gone with the hold.
        let left: Vec<_> = std::fs::read_dir(locks.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("held-"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    if let Backend::Server(server) = backend {
        // No second lock on the server: relukko run's create is the only
        // one; each child asked for the outer lock by its id instead.
        let (status, metrics) = crate::support::http(server, "GET", "/metrics", None);
        assert_eq!(status, 200, "{metrics}");
        let count = |method: &str, route: &str| -> u64 {
            metrics
                .lines()
                .filter(|l| {
                    l.starts_with("relukko_http_requests_total{")
                        && l.contains(&format!("route=\"{route}\""))
                        && l.contains(&format!("method=\"{method}\""))
                        && l.contains("status=\"2")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum()
        };
        assert_eq!(count("POST", "/v1/locks/"), 1, "{metrics}");
        assert!(count("GET", "/v1/locks/{id}") >= 2, "{metrics}");
    }
}

#[test]
fn nested_holds_on_local_files() {
    two_inner_holders_take_rig_inside_the_outer_hold(&Backend::local());
}

#[test]
fn nested_holds_on_the_server() {
    two_inner_holders_take_rig_inside_the_outer_hold(&Backend::server());
}

/// A test with `#[relukko::locked]` inside the hold runs at once.
#[test]
fn the_attribute_takes_its_name_inside_the_hold() {
    let backend = Backend::local();
    let dir = crate::support::TempDir::new("nested-attr");
    let log = dir.path().join("log");
    let mut child = child_args();
    child[1] = "nested::child_locked_by_the_attribute".into();
    let mut args = vec!["run", "nested-e2e-rig", "--"];
    args.extend(child.iter().map(String::as_str));
    let mut cmd = relukko(&backend, &args);
    cmd.env(LOG, &log).env("RELUKKO_TIMEOUT", INNER_TIMEOUT);
    let out = output(cmd);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(spans(&log).len(), 1, "{}", text(&out));
}

/// A `relukko run` of another name inside passes the outer hold on: the
/// child inside both still gets rig at once.
#[test]
fn an_inner_relukko_run_of_another_name_passes_the_hold_on() {
    let backend = Backend::local();
    let dir = crate::support::TempDir::new("nested-twice");
    let log = dir.path().join("log");
    let mut args = vec![
        "run",
        "rig",
        "--",
        crate::support::BIN,
        "run",
        "other",
        "--",
    ];
    let child = child_args();
    args.extend(child.iter().map(String::as_str));
    let mut cmd = relukko(&backend, &args);
    cmd.env(LOG, &log).env("RELUKKO_TIMEOUT", INNER_TIMEOUT);
    let out = output(cmd);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(spans(&log).len(), 1, "{}", text(&out));
}

/// Without `RELUKKO_HELD_PROOF` (as an older `relukko run` sets it), the
/// name in `RELUKKO_HELD` proves nothing: one line says so, and the child
/// waits for the outer holder as before, until its timeout.
fn plain_names_are_not_believed(backend: &Backend) {
    let dir = crate::support::TempDir::new("nested-plain");
    let log = dir.path().join("log");
    let mut args = vec!["run", "rig", "--", "env", "-u", "RELUKKO_HELD_PROOF"];
    let child = child_args();
    args.extend(child.iter().map(String::as_str));
    let mut cmd = relukko(backend, &args);
    cmd.env(LOG, &log).env("RELUKKO_TIMEOUT", "1s");
    let out = output(cmd);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("nothing shows that hold is alive").count(),
        1,
        "{}",
        text(&out)
    );
    assert!(stderr.contains("timed out"), "{}", text(&out));
    assert!(spans(&log).is_empty());
}

#[test]
fn plain_names_are_not_believed_on_local_files() {
    plain_names_are_not_believed(&Backend::local());
}

#[test]
fn plain_names_are_not_believed_on_the_server() {
    plain_names_are_not_believed(&Backend::server());
}

/// A proof whose hold has ended (taken from a real `relukko run` that has
/// since released rig) is ignored with one line, and the child locks rig
/// the ordinary way: with the dead holder's pid, because it is no ancestor;
/// with the pid of an ancestor (this test), because the lock is gone.
fn stale_proofs_are_ignored(backend: &Backend, gone: &str) {
    let out = output(relukko(
        backend,
        &[
            "run",
            "rig",
            "--",
            "sh",
            "-c",
            "printf %s \"$RELUKKO_HELD_PROOF\"",
        ],
    ));
    assert!(out.status.success(), "{}", text(&out));
    let stale = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut proof: serde_json::Value = serde_json::from_str(&stale).expect(&stale);
    assert_eq!(proof[0]["name"], "rig", "{stale}");
    let ours = {
        proof[0]["pid"] = std::process::id().into();
        proof.to_string()
    };
    for (proof, why) in [(stale.as_str(), "not an ancestor"), (ours.as_str(), gone)] {
        let dir = crate::support::TempDir::new("nested-stale");
        let log = dir.path().join("log");
        let child = child_args();
        let mut cmd = crate::support::clean(Command::new(&child[0]));
        cmd.args(&child[1..])
            .envs(backend.env())
            .env(LOG, &log)
            .env("RELUKKO_TIMEOUT", INNER_TIMEOUT)
            .env("RELUKKO_HELD", "rig")
            .env("RELUKKO_HELD_PROOF", proof);
        let out = output(cmd);
        assert!(out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("ignored")).collect();
        assert_eq!(lines.len(), 1, "{}", text(&out));
        assert!(lines[0].contains(why), "{why:?}: {}", text(&out));
        assert_eq!(spans(&log).len(), 1, "{}", text(&out));
    }
}

#[test]
fn stale_proofs_are_ignored_on_local_files() {
    stale_proofs_are_ignored(&Backend::local(), "is not locked");
}

#[test]
fn stale_proofs_are_ignored_on_the_server() {
    stale_proofs_are_ignored(&Backend::server(), "does not confirm");
}
