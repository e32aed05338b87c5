//! The `relukko-server` binary as a user runs it: settings, start-up, one log
//! line per request, refusal without a key, clean exit on SIGTERM.
#![cfg(feature = "server")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_relukko-server");
const STEP: Duration = Duration::from_secs(20);

/// The server command with none of the caller's RELUKKO_* settings.
fn command() -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("RELUKKO_") {
            cmd.env_remove(name);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running server: its address and everything it wrote to stderr so far.
struct Running {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only if a test failed before stopping it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(mut cmd: Command) -> Running {
    let mut child = cmd.spawn().expect("the binary starts");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    // Drained continuously so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(STEP).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("no listening line; stderr: {}", stderr.lock().unwrap())
    });
    let addr = line
        .trim()
        .strip_prefix("relukko-server listening on http://")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {line:?}; stderr: {}",
                stderr.lock().unwrap()
            )
        })
        .parse()
        .expect("a socket address");
    Running {
        child,
        addr,
        stderr,
    }
}

/// A minimal HTTP/1.1 GET; returns the status and the body.
fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, STEP).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    let key = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{key}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < STEP, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_logs_and_stops_cleanly_on_sigterm() {
    let mut cmd = command();
    cmd.env("RELUKKO_API_KEY", "bin-secret-key")
        .env("RELUKKO_BIND_PORT", "0");
    let mut server = start(cmd);
    assert!(
        server.addr.ip().is_loopback(),
        "default bind is 127.0.0.1: {}",
        server.addr
    );

    let (status, _) = get(server.addr, "/healthchecker", None);
    assert_eq!(status, 200);
    let (status, body) = get(server.addr, "/v1/locks/", Some("bin-secret-key"));
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, body) = get(server.addr, "/v1/locks/", None);
    assert_eq!(status, 401, "{body}");

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = wait_exit(&mut server.child);
    assert_eq!(exit.code(), Some(0), "{exit:?}");

    // Give the stderr reader a moment to take the last lines.
    std::thread::sleep(Duration::from_millis(100));
    let log = server.stderr.lock().unwrap().clone();
    assert!(log.contains("GET /healthchecker 200"), "{log}");
    assert!(log.contains("GET /v1/locks/ 401"), "{log}");
    assert!(
        !log.contains("bin-secret-key"),
        "the key leaked into the log: {log}"
    );
}

#[test]
fn stops_cleanly_on_ctrl_c() {
    let mut cmd = command();
    cmd.env("RELUKKO_API_KEY", "k").args(["--port", "0"]);
    let mut server = start(cmd);
    // Right after the listening line: the handlers are already in place.
    let sent = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let exit = wait_exit(&mut server.child);
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn flags_override_the_environment() {
    let mut cmd = command();
    cmd.env("RELUKKO_API_KEY", "k")
        .env("RELUKKO_BIND_PORT", "not a port") // never read: the flag wins
        .env("RELUKKO_LOG", "debug")
        .args([
            "--bind",
            "127.0.0.1",
            "--port=0",
            "--grace",
            "1s",
            "--cleanup-interval",
            "200ms",
        ]);
    let server = start(cmd);
    let (status, _) = get(server.addr, "/healthchecker", None);
    assert_eq!(status, 200);
}

#[test]
fn refuses_to_start_without_a_key() {
    let output = command().env("RELUKKO_BIND_PORT", "0").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RELUKKO_API_KEY is not set"), "{stderr}");
    assert!(output.stdout.is_empty(), "it must not claim to listen");

    let output = command().env("RELUKKO_API_KEY", "").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("RELUKKO_API_KEY"));
}

#[test]
fn bad_settings_exit_2_naming_the_setting() {
    /// Arguments, environment, and the setting the message must name.
    type Case = (
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: [Case; 5] = [
        (&["--port", "99999"], &[], "--port"),
        (&["--grace", "soon"], &[], "--grace"),
        (&["--what"], &[], "--what"),
        (
            &[],
            &[("RELUKKO_CLEANUP_INTERVAL", "often")],
            "RELUKKO_CLEANUP_INTERVAL",
        ),
        (&[], &[("RELUKKO_LOG", "loud")], "RELUKKO_LOG"),
    ];
    for (args, env, named) in cases {
        let output = command()
            .env("RELUKKO_API_KEY", "k")
            .env("RELUKKO_BIND_PORT", "0")
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} {env:?}: {stderr}");
    }
}

#[test]
fn help_explains_the_settings() {
    let output = command().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in [
        "RELUKKO_API_KEY",
        "RELUKKO_BIND_ADDR",
        "RELUKKO_BIND_PORT",
        "--grace",
        "--cleanup-interval",
        "RELUKKO_LOG",
    ] {
        assert!(help.contains(word), "{word} missing from --help");
    }
}
