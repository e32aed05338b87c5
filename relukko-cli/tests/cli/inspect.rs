//! `relukko list`, `who`, `release` and `health`, with holders made by a
//! `#[locked]` test in another process and by pyrelukko-style raw HTTP.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::run::wait_for_file;
use crate::support::{Backend, Running, STEP, TempDir, clean, http, id_of, output, relukko, text};

/// Names the folder of a worker run of [`locked_worker`].
const WORKER_VAR: &str = "RELUKKO_CLI_E2E_WORKER";
const HELD: &str = "cli-held-by-test";

/// As a worker: holds `cli-held-by-test` through the attribute until told to
/// stop (a `stop` file), after saying so (a `holding` file). Else nothing.
#[test]
#[relukko::locked("cli-held-by-test")]
fn locked_worker() {
    let Some(dir) = std::env::var_os(WORKER_VAR).map(PathBuf::from) else {
        return;
    };
    std::fs::write(dir.join("holding"), "").unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    while !dir.join("stop").exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// This test binary running [`locked_worker`] on `backend`.
fn spawn_worker(backend: &Backend, dir: &TempDir) -> Running {
    let mut cmd = clean(Command::new(std::env::current_exe().unwrap()));
    cmd.args([
        "inspect::locked_worker",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .envs(backend.env())
    .env(WORKER_VAR, dir.path())
    .stdin(Stdio::null());
    let run = Running::spawn(cmd);
    wait_for_file(&dir.path().join("holding"));
    run
}

fn a_locked_test_is_shown_and_released(backend: Backend) {
    let dir = TempDir::new("worker");
    let mut worker = spawn_worker(&backend, &dir);

    let list = output(relukko(&backend, &["list", "--json"]));
    assert!(list.status.success(), "{}", text(&list));
    let entries: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{}", text(&list));
    assert_eq!(entries[0]["name"], HELD, "{}", text(&list));
    let creator = entries[0]["creator"].as_str().unwrap_or_default();
    assert!(
        creator.contains("test=") && creator.contains("locked_worker"),
        "{creator}"
    );
    assert!(entries[0]["since"].is_string(), "{}", text(&list));

    let table = output(relukko(&backend, &["list"]));
    let table_text = String::from_utf8_lossy(&table.stdout);
    assert!(
        table_text.starts_with("NAME") && table_text.contains(HELD),
        "{}",
        text(&table)
    );

    let who = output(relukko(&backend, &["who", HELD]));
    assert_eq!(who.status.code(), Some(0), "{}", text(&who));
    assert!(
        String::from_utf8_lossy(&who.stdout).contains("locked_worker"),
        "{}",
        text(&who)
    );

    // stdin is not a terminal: no question is asked.
    let release = output(relukko(&backend, &["release", HELD]));
    assert_eq!(release.status.code(), Some(0), "{}", text(&release));
    assert!(
        String::from_utf8_lossy(&release.stdout).starts_with(&format!("released {HELD}")),
        "{}",
        text(&release)
    );

    let who = output(relukko(&backend, &["who", HELD]));
    assert_eq!(who.status.code(), Some(1), "{}", text(&who));
    let again = output(relukko(&backend, &["release", HELD]));
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));

    std::fs::write(dir.path().join("stop"), "").unwrap();
    worker.wait(STEP);
}

#[test]
fn a_locked_test_is_shown_and_released_on_the_local_backend() {
    a_locked_test_is_shown_and_released(Backend::local());
}

#[test]
fn a_locked_test_is_shown_and_released_on_a_server() {
    a_locked_test_is_shown_and_released(Backend::server());
}

#[test]
fn a_raw_http_holder_is_shown_and_released_by_id() {
    let backend = Backend::server();
    let server = backend.server_ref();
    let (status, body) = http(
        server,
        "POST",
        "/v1/locks/",
        Some(r#"{"lock_name":"cli-raw","creator":"pyrelukko@build-7"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let id = id_of(&body);

    let list = output(relukko(&backend, &["list"]));
    let shown = String::from_utf8_lossy(&list.stdout);
    assert!(
        shown.contains("cli-raw") && shown.contains("pyrelukko@build-7") && shown.contains(&id),
        "{}",
        text(&list)
    );
    let who = output(relukko(&backend, &["who", "cli-raw"]));
    assert_eq!(who.status.code(), Some(0), "{}", text(&who));
    assert!(
        String::from_utf8_lossy(&who.stdout).contains("pyrelukko@build-7"),
        "{}",
        text(&who)
    );

    let release = output(relukko(&backend, &["release", &id, "--yes"]));
    assert_eq!(release.status.code(), Some(0), "{}", text(&release));
    let (status, _) = http(server, "GET", &format!("/v1/locks/{id}"), None);
    assert_eq!(status, 404, "the lock is still there");
}

#[test]
fn a_prefix_is_applied_like_run_does() {
    let backend = Backend::local();
    let mut run = relukko(&backend, &["run", "rig", "--", "sleep", "60"]);
    run.env("RELUKKO_LOCK_PREFIX", "team-a/");
    let mut run = Running::spawn(run);
    run.wait_for("holding rig");
    let mut who = relukko(&backend, &["who", "rig"]);
    who.env("RELUKKO_LOCK_PREFIX", "team-a/");
    let out = output(who);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = output(relukko(&backend, &["who", "team-a/rig"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "without a prefix, the full name: {}",
        text(&out)
    );
    run.signal("TERM");
    run.wait(STEP);
}

#[test]
fn health_says_what_is_wrong() {
    let backend = Backend::server();
    let out = output(relukko(&backend, &["health"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let mut bad_key = relukko(&backend, &["health"]);
    bad_key.env("RELUKKO_API_KEY", "wrong");
    let out = output(bad_key);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("RELUKKO_API_KEY"), "{}", text(&out));

    let mut bad_value = relukko(&backend, &["health"]);
    bad_value.env("RELUKKO_TIMEOUT", "soon");
    let out = output(bad_value);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out));
    assert!(text(&out).contains("RELUKKO_TIMEOUT"), "{}", text(&out));

    let out = output(relukko(&Backend::local(), &["health"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A lock file held but with no record (its holder has not written it, or
/// locks the file without writing one): the holder is not "unknown". On
/// Linux the kernel's table of locks names the holding process and its
/// user; elsewhere the line says why it has no name.
#[test]
fn a_held_lock_file_without_a_record_says_why_it_names_no_holder() {
    let backend = Backend::local();
    let Backend::Local(dir) = &backend else {
        unreachable!()
    };
    let path = dir.path().join("cli-silent-0123456789abcdef.lock");
    let file = std::fs::File::create(&path).unwrap();
    file.lock().unwrap();
    let list = output(relukko(&backend, &["list", "--json"]));
    assert!(list.status.success(), "{}", text(&list));
    let entries: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let holder = entries[0]["holder"].as_str().unwrap_or_default();
    let by_pid = format!("pid {} of user", std::process::id());
    assert!(
        if cfg!(target_os = "linux") {
            holder.starts_with(&by_pid)
        } else {
            holder.starts_with("a holder whose lock file holds no record")
        },
        "{}",
        text(&list)
    );
    drop(file);
}
