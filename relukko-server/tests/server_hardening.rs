//! The `relukko-server` binary against strangers: connections that do not
//! finish are closed, a flood of them without a key cannot keep a keyed
//! request out (also under a low open-files limit), the database file is
//! its owner's alone, a short key is warned about.
//!
//! Every wait here is bounded by a generous deadline (the server's timeouts
//! are set short); nothing asserts how fast something happened.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use relukko_e2e::child::{Running, STEP, TempDir, get, start, wait_exit};
use relukko_e2e::raw;

const BIN: &str = env!("CARGO_BIN_EXE_relukko-server");
const KEY: &str = "hardening-key-0123456789";

/// The server binary started by `sh` after `prelude` (a `ulimit` or `umask`).
fn through_sh(prelude: &str, args: &[&str]) -> Command {
    let mut cmd = relukko_e2e::child::clean(Command::new("sh"));
    cmd.arg("-c")
        .arg(format!("{prelude} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args)
        .env("RELUKKO_API_KEY", KEY);
    cmd
}

fn server(args: &[&str]) -> Running {
    let mut cmd = relukko_e2e::child::command(BIN);
    cmd.env("RELUKKO_API_KEY", KEY).args(args);
    start(cmd)
}

/// Stops a server with SIGTERM and waits for it to exit.
fn stop(server: &mut Running) {
    let sent = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_exit(&mut server.child);
}

/// Reads until the server closes the connection; `Err` if it is still open
/// after `bound`. Returns what came.
fn closed_within(mut sock: &TcpStream, bound: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while start.elapsed() < bound {
        match sock.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // Reset by the server: closed too.
            Err(_) => return Ok(got),
        }
    }
    Err(got)
}

fn connect(addr: SocketAddr, first_bytes: &[u8]) -> TcpStream {
    let mut sock = TcpStream::connect_timeout(&addr, STEP).expect("connect");
    sock.write_all(first_bytes).expect("send");
    sock
}

#[test]
fn connections_that_do_not_finish_are_closed() {
    let server = server(&[
        "--port=0",
        "--head-timeout=400ms",
        "--body-timeout=400ms",
        "--idle-timeout=600ms",
    ]);
    let addr = server.addr;
    // Connected, says nothing.
    let silent = connect(addr, b"");
    // A head that never ends (a byte at a time, then nothing).
    let mut slow_head = connect(addr, b"G");
    for byte in b"ET /v1/locks/ HTTP/1.1\r\nHost: x\r\n" {
        slow_head.write_all(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    // A whole head, then half its body.
    let slow_body = connect(
        addr,
        format!(
            "POST /v1/locks/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"lock_"
        )
        .as_bytes(),
    );
    // One request answered, then kept alive and idle.
    let idle = connect(
        addr,
        format!("GET /v1/locks/ HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n").as_bytes(),
    );

    let bound = Duration::from_secs(15);
    let silent = closed_within(&silent, bound);
    let slow_head = closed_within(&slow_head, bound);
    let slow_body = closed_within(&slow_body, bound);
    let idle = closed_within(&idle, bound);
    assert!(silent.is_ok(), "a silent connection stays open");
    assert!(slow_head.is_ok(), "an unfinished head stays open");
    let slow_body = slow_body.expect("an unfinished body stays open");
    assert_eq!(
        raw::status_code(&slow_body),
        Some(408),
        "{}",
        String::from_utf8_lossy(&slow_body)
    );
    let idle = idle.expect("an idle kept-alive connection stays open");
    assert_eq!(
        raw::status_code(&idle),
        Some(200),
        "answered before it idled"
    );

    // The server itself is fine.
    assert_eq!(get(addr, "/v1/locks/", Some(KEY)).0, 200);
}

/// The probe of issue 24: many connections that never finish a head, from
/// someone without a key, on a server whose open-files limit is low (hard
/// and soft), with a head timeout far longer than the test.
#[test]
fn a_flood_without_a_key_does_not_keep_a_keyed_request_out() {
    const FILES: usize = 256;
    const FLOOD: usize = 400;
    let server = start(through_sh(
        &format!("ulimit -n {FILES}"),
        &["--port=0", "--head-timeout=1h"],
    ));
    let addr = server.addr;
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        if let Ok(mut sock) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            let _ = sock.write_all(b"GET /v1/locks/ HTTP/1.1\r\nHost: flood\r\n");
            flood.push(sock);
        }
    }
    assert!(flood.len() > FILES, "the flood connected: {}", flood.len());

    for round in 0..3 {
        let started = Instant::now();
        let request = raw::http_request("GET", "/v1/locks/", &[("X-API-Key", KEY.to_owned())], b"");
        let answer = raw::exchange(addr, &request, Duration::from_secs(20));
        let took = started.elapsed();
        assert_eq!(
            raw::status_code(&answer),
            Some(200),
            "round {round}: the keyed request got no answer within 20 s under a flood of {FLOOD}: {}",
            String::from_utf8_lossy(&answer)
        );
        eprintln!("round {round}: the keyed request was answered in {took:?} under the flood");
    }
    drop(flood);
}

#[test]
fn the_open_files_soft_limit_is_raised_to_the_hard_limit() {
    let mut server = start(through_sh("ulimit -S -n 256", &["--port=0"]));
    stop(&mut server);
    let log = server.final_stderr();
    let hard = Command::new("sh")
        .args(["-c", "ulimit -H -n"])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_owned();
    if hard == "256" || hard == "unlimited" {
        eprintln!("SKIPPED: the hard limit is {hard}");
        return;
    }
    assert!(
        log.contains(&format!("open-files limit raised from 256 to {hard}")),
        "{log}"
    );
}

#[test]
fn a_short_key_starts_with_one_warning() {
    for (key, warned) in [("short", true), (KEY, false)] {
        let mut cmd = relukko_e2e::child::command(BIN);
        cmd.env("RELUKKO_API_KEY", key).arg("--port=0");
        let mut server = start(cmd);
        stop(&mut server);
        let log = server.final_stderr();
        let warnings = log.matches("RELUKKO_API_KEY is shorter than 16").count();
        assert_eq!(warnings, usize::from(warned), "{key}: {log}");
        assert!(
            !log.contains(&format!("={key}")) && !log.contains(&format!("\"{key}\"")),
            "{log}"
        );
    }
}

#[cfg(unix)]
#[test]
fn the_database_is_its_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("db-mode");
    let db = dir.join("new-folder").join("locks.redb");
    let db_arg = format!("--db={}", db.display());
    let mut first = start(through_sh("umask 022", &["--port=0", &db_arg]));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600, "the database file");
    assert_eq!(mode(db.parent().unwrap()), 0o700, "the folder made for it");

    // A second server on the same file says which file and why.
    let mut second = relukko_e2e::child::command(BIN);
    second
        .env("RELUKKO_API_KEY", KEY)
        .args(["--port=0", &db_arg]);
    let out = second.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&db.display().to_string()) && err.contains("another process has it open"),
        "{err}"
    );
    assert!(!err.contains("Cannot acquire lock"), "redb's words: {err}");

    stop(&mut first);
    assert!(!first.final_stderr().contains("can be read by other users"));

    // An existing file others can read: one warning, and the server starts.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut again = server(&["--port=0", &db_arg]);
    stop(&mut again);
    let log = again.final_stderr();
    assert_eq!(
        log.matches("can be read by other users").count(),
        1,
        "{log}"
    );
    assert!(log.contains("chmod 600"), "{log}");
}
