//! `relukko run`: turns, exit statuses, signals, lost locks.

use std::process::Command;
use std::time::Duration;

use crate::support::{Backend, Running, STEP, TempDir, http, id_of, output, relukko, text};

/// A shell command that appends `enter <ns>` and `exit <ns>` (wall-clock
/// nanoseconds) to `log`, holding for `hold` in between.
fn turn_script(log: &std::path::Path, hold: &str) -> String {
    let log = log.display();
    format!(
        "echo \"enter $(date +%s%N) $RELUKKO_HELD\" >> {log}; sleep {hold}; echo \"exit $(date +%s%N)\" >> {log}"
    )
}

fn two_runs_take_turns(backend: Backend) {
    let dir = TempDir::new("turns");
    let log = dir.path().join("log");
    let script = turn_script(&log, "1");
    let runs: Vec<Running> = (0..2)
        .map(|_| {
            Running::spawn(relukko(
                &backend,
                &["run", "cli-turns", "--", "sh", "-c", &script],
            ))
        })
        .collect();
    for mut run in runs {
        let status = run.wait(STEP);
        assert!(status.success(), "{}", text(&run.output(status)));
    }
    let lines: Vec<(String, u128)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let mut it = l.split(' ');
            (
                it.next().unwrap().to_owned(),
                it.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["enter", "exit", "enter", "exit"], "{lines:?}");
    assert!(
        lines[2].1 >= lines[1].1,
        "the second run entered before the first left: {lines:?}"
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains(" cli-turns\n")
    );
}

#[test]
fn two_runs_take_turns_on_the_local_backend() {
    two_runs_take_turns(Backend::local());
}

#[test]
fn two_runs_take_turns_on_a_server() {
    two_runs_take_turns(Backend::server());
}

#[test]
fn the_exit_status_passes_through() {
    let backend = Backend::local();
    for (script, expected) in [("exit 0", 0), ("exit 7", 7), ("kill -TERM $$", 143)] {
        let out = output(relukko(
            &backend,
            &["run", "cli-status", "--", "sh", "-c", script],
        ));
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{script}: {}",
            text(&out)
        );
    }
    let out = output(relukko(
        &backend,
        &["run", "cli-status", "--", "no-such-command-here"],
    ));
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    // The lock was released each time: nobody holds it now.
    let out = output(relukko(&backend, &["who", "cli-status"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn held_names_are_in_relukko_held_and_a_pool_gives_one() {
    let backend = Backend::local();
    let out = output(relukko(
        &backend,
        &[
            "run",
            "cli-b",
            "cli-a",
            "--",
            "sh",
            "-c",
            "echo \"$RELUKKO_HELD\"",
        ],
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "cli-a,cli-b",
        "{}",
        text(&out)
    );
    let out = output(relukko(
        &backend,
        &[
            "run",
            "--any-of",
            "cli-p1",
            "cli-p2",
            "--",
            "sh",
            "-c",
            "echo \"$RELUKKO_HELD\"",
        ],
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "cli-p1",
        "{}",
        text(&out)
    );
}

/// SIGTERM to `relukko run` reaches CMD, which ends; the lock is free as
/// soon as relukko has exited.
fn sigterm_stops_cmd_and_frees_the_lock(backend: Backend) {
    let dir = TempDir::new("sigterm");
    let mark = dir.path().join("term");
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'echo got-term > {}; kill $!; exit 0' TERM; sleep 60 & echo > {}; wait",
        mark.display(),
        ready.display()
    );
    let mut run = Running::spawn(relukko(
        &backend,
        &["run", "cli-term", "--", "sh", "-c", &script],
    ));
    run.wait_for("holding cli-term");
    // The trap is set once the file is there.
    wait_for_file(&ready);
    run.signal("TERM");
    let status = run.wait(STEP);
    let out = run.output(status);
    assert_eq!(status.code(), Some(0), "CMD's own status: {}", text(&out));
    assert!(mark.exists(), "CMD did not get SIGTERM: {}", text(&out));
    let who = output(relukko(&backend, &["who", "cli-term"]));
    assert_eq!(who.status.code(), Some(1), "still held: {}", text(&who));
}

/// Waits (bounded) until `path` exists.
pub fn wait_for_file(path: &std::path::Path) {
    let end = std::time::Instant::now() + STEP;
    while !path.exists() {
        assert!(
            std::time::Instant::now() < end,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_cmd_and_frees_the_lock_on_the_local_backend() {
    sigterm_stops_cmd_and_frees_the_lock(Backend::local());
}

#[test]
fn sigterm_stops_cmd_and_frees_the_lock_on_a_server() {
    sigterm_stops_cmd_and_frees_the_lock(Backend::server());
}

/// SIGTERM while still waiting: exit 128+15 and nothing left behind.
fn sigterm_while_waiting_leaves_no_lock(backend: Backend) {
    let mut holder = Running::spawn(relukko(&backend, &["run", "cli-wait", "--", "sleep", "60"]));
    holder.wait_for("holding cli-wait");
    let mut waiter = Running::spawn(relukko(&backend, &["run", "cli-wait", "--", "true"]));
    waiter.wait_for("waiting");
    waiter.signal("TERM");
    let status = waiter.wait(STEP);
    let out = waiter.output(status);
    assert_eq!(status.code(), Some(143), "{}", text(&out));
    assert!(text(&out).contains("nothing is held"), "{}", text(&out));
    holder.signal("TERM");
    holder.wait(STEP);
    let list = output(relukko(&backend, &["list", "--json"]));
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).trim(),
        "[]",
        "{}",
        text(&list)
    );
}

#[test]
fn sigterm_while_waiting_leaves_no_lock_on_the_local_backend() {
    sigterm_while_waiting_leaves_no_lock(Backend::local());
}

#[test]
fn sigterm_while_waiting_leaves_no_lock_on_a_server() {
    sigterm_while_waiting_leaves_no_lock(Backend::server());
}

#[test]
fn a_timeout_exits_124_naming_the_holder() {
    let backend = Backend::local();
    let mut holder = Running::spawn(relukko(&backend, &["run", "cli-busy", "--", "sleep", "60"]));
    holder.wait_for("holding cli-busy");
    let out = output(relukko(
        &backend,
        &["run", "cli-busy", "--timeout", "1s", "--", "true"],
    ));
    assert_eq!(out.status.code(), Some(124), "{}", text(&out));
    assert!(text(&out).contains("held by"), "{}", text(&out));
    holder.signal("TERM");
    holder.wait(STEP);
}

#[test]
fn a_lost_lock_stops_cmd() {
    let backend = Backend::server();
    let server = backend.server_ref();
    let dir = TempDir::new("lost");
    let (mark, ready) = (dir.path().join("term"), dir.path().join("ready"));
    let script = format!(
        "trap 'echo got-term > {}; kill $!; exit 0' TERM; sleep 120 & echo > {}; wait",
        mark.display(),
        ready.display()
    );
    // SIGKILL only long after the test's bound: CMD must stop on SIGTERM.
    let args = [
        "run",
        "cli-lost",
        "--lease",
        "3s",
        "--kill-after",
        "120s",
        "--",
        "sh",
        "-c",
    ];
    let mut cmd = relukko(&backend, &args);
    cmd.arg(&script);
    let mut run = Running::spawn(cmd);
    run.wait_for("holding cli-lost");
    wait_for_file(&ready);
    let (status, body) = http(server, "GET", "/v1/locks/", None);
    assert_eq!(status, 200, "{body}");
    let locks: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = locks[0]["id"].as_str().unwrap().to_owned();
    // pyrelukko's delete_lock.
    let (status, body) = http(server, "DELETE", &format!("/v1/locks/{id}"), None);
    assert_eq!(status, 200, "{body}");
    let status = run.wait(STEP);
    let out = run.output(status);
    assert_eq!(status.code(), Some(120), "{}", text(&out));
    assert!(text(&out).contains("was lost"), "{}", text(&out));
    assert!(mark.exists(), "CMD did not get SIGTERM: {}", text(&out));
}

#[test]
fn with_on_lost_warn_cmd_runs_on() {
    let backend = Backend::server();
    let server = backend.server_ref();
    let dir = TempDir::new("warn");
    let go = dir.path().join("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.1; done; exit 5",
        go.display()
    );
    let mut run = Running::spawn(relukko(
        &backend,
        &[
            "run",
            "cli-warn",
            "--lease",
            "3s",
            "--on-lost",
            "warn",
            "--",
            "sh",
            "-c",
            &script,
        ],
    ));
    run.wait_for("holding cli-warn");
    let (_, body) = http(server, "GET", "/v1/locks/", None);
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    http(server, "DELETE", &format!("/v1/locks/{id}"), None);
    run.wait_for("CMD runs on");
    std::fs::write(&go, "").unwrap();
    let status = run.wait(STEP);
    assert_eq!(status.code(), Some(5), "{}", text(&run.output(status)));
}

#[test]
fn a_force_release_on_the_local_backend_shows_at_the_end() {
    let backend = Backend::local();
    let dir = TempDir::new("local-lost");
    let go = dir.path().join("go");
    let script = format!("while [ ! -e {} ]; do sleep 0.1; done", go.display());
    let mut run = Running::spawn(relukko(
        &backend,
        &["run", "cli-local-lost", "--", "sh", "-c", &script],
    ));
    run.wait_for("holding cli-local-lost");
    let out = output(relukko(&backend, &["release", "cli-local-lost"]));
    assert!(out.status.success(), "{}", text(&out));
    // The name is free for the next taker at once.
    let out = output(relukko(
        &backend,
        &["run", "cli-local-lost", "--timeout", "5s", "--", "true"],
    ));
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&go, "").unwrap();
    let status = run.wait(STEP);
    assert_eq!(status.code(), Some(120), "{}", text(&run.output(status)));
}

#[test]
fn a_raw_http_holder_blocks_a_run_until_released() {
    let backend = Backend::server();
    let server = backend.server_ref();
    let (status, body) = http(
        server,
        "POST",
        "/v1/locks/",
        Some(r#"{"lock_name":"cli-raw-wait","creator":"pyrelukko"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let id = id_of(&body);
    let mut run = Running::spawn(relukko(&backend, &["run", "cli-raw-wait", "--", "true"]));
    run.wait_for("held by pyrelukko");
    http(server, "DELETE", &format!("/v1/locks/{id}"), None);
    let status = run.wait(STEP);
    assert!(status.success(), "{}", text(&run.output(status)));
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in [
        &["--help"][..],
        &["run", "--help"],
        &["list", "--help"],
        &["who", "--help"],
        &["release", "--help"],
        &["health", "--help"],
    ] {
        let out = output(crate::support::clean(Command::new(crate::support::BIN)).tap_args(cmd));
        assert!(out.status.success(), "{cmd:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Examples:"),
            "{cmd:?}: {}",
            text(&out)
        );
    }
    let out = output(
        crate::support::clean(Command::new(crate::support::BIN))
            .tap_args(&["run", "x", "--lease", "soon", "--", "true"]),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--lease"), "{}", text(&out));
}

trait TapArgs {
    fn tap_args(self, args: &[&str]) -> Self;
}

impl TapArgs for Command {
    fn tap_args(mut self, args: &[&str]) -> Self {
        self.args(args);
        self
    }
}

#[test]
fn a_run_without_dashes_shows_where_the_command_goes() {
    let out = output(relukko(
        &Backend::local(),
        &["run", "cli-dashes", "sleep", "1"],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("relukko run cli-dashes -- sleep 1"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_running_line_quotes_the_command_as_a_shell_would() {
    let out = output(relukko(
        &Backend::local(),
        &["run", "cli-quoting", "--", "sh", "-c", "exit 0"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running sh -c 'exit 0'"),
        "{}",
        text(&out)
    );
}
