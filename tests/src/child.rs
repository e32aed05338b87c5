//! Binaries as child processes, for the suites of `relukko-server` and
//! `relukko-cli`: running the `relukko-server` binary (start it, wait for its
//! listening line, talk HTTP/1.1 to it), a clean environment for any child
//! process, and temporary folders.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::raw;

pub const STEP: Duration = Duration::from_secs(20);

/// The binary at `bin` (a package's `CARGO_BIN_EXE_...`) with none of the
/// caller's `RELUKKO_*` settings.
pub fn command(bin: &str) -> Command {
    clean(Command::new(bin))
}

/// `cmd` without the caller's `RELUKKO_*` settings, stdin closed, output piped.
pub fn clean(mut cmd: Command) -> Command {
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
#[derive(Debug)]
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
    /// The thread reading stderr; it ends when the server has closed it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Everything the server wrote to stderr, once it has exited: waits for
    /// the reader to reach the end of the pipe instead of guessing a time.
    pub fn final_stderr(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader");
        }
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only if a test failed before stopping it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(mut cmd: Command) -> Running {
    let mut child = cmd.spawn().expect("the binary starts");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    // Drained continuously so the server never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
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
        reader: Some(reader),
    }
}

/// A minimal HTTP/1.1 GET; returns the status and the body.
pub fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> (u16, String) {
    request(addr, "GET", path, key, None).expect("the server answers")
}

/// A minimal HTTP/1.1 request with an optional JSON body (through
/// [`raw`]); returns the status and the body, or an error when
/// nothing came back (a server that died mid-request).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    json: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut headers = Vec::new();
    if let Some(key) = key {
        headers.push(("X-API-Key", key.to_owned()));
    }
    if json.is_some() {
        headers.push(("Content-Type", "application/json".to_owned()));
    }
    let bytes = raw::http_request(method, path, &headers, json.unwrap_or("").as_bytes());
    let answer = raw::exchange(addr, &bytes, STEP);
    if answer.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no answer",
        ));
    }
    let status = raw::status_code(&answer).unwrap_or(0);
    let body = String::from_utf8_lossy(raw::body(&answer).unwrap_or_default()).into_owned();
    Ok((status, body))
}

pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < STEP, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub use crate::temp::TempDir;
