//! Binaries as child processes, for the suites of `relukko-server` and
//! `relukko-cli`: running the `relukko-server` binary (start it, wait for its
//! listening line, talk HTTP/1.1 to it), a clean environment for any child
//! process, and temporary folders.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A minimal HTTP/1.1 request with an optional JSON body; returns the status
/// and the body, or the I/O error (a server that died mid-request).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    json: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, STEP)?;
    stream.set_read_timeout(Some(STEP))?;
    let key = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    let body = json
        .map(|j| {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{j}",
                j.len()
            )
        })
        .unwrap_or_else(|| "\r\n".to_owned());
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{key}Connection: close\r\n{body}"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no answer",
        ));
    }
    Ok(status_and_body(&answer))
}

/// The status and the body of a whole HTTP/1.1 answer (status 0 if there is none).
pub fn status_and_body(answer: &str) -> (u16, String) {
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
