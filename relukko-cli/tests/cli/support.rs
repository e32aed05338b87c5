//! Running the `relukko` binary against one backend: our server (in-process
//! fixture) or a fresh local lock folder; raw HTTP for pyrelukko-style
//! holders.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use relukko_server::TestServer;

use crate::common::request;
pub use crate::common::{TempDir, clean};

pub const BIN: &str = env!("CARGO_BIN_EXE_relukko");
/// The longest any awaited event may take on a loaded machine.
pub const STEP: Duration = Duration::from_secs(30);

/// Where the locks live in one test.
pub enum Backend {
    Local(TempDir),
    Server(TestServer),
}

impl Backend {
    pub fn local() -> Backend {
        Backend::Local(TempDir::new("locks"))
    }

    pub fn server() -> Backend {
        Backend::Server(TestServer::start())
    }

    /// The `RELUKKO_*` settings selecting it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::Local(dir) => vec![("RELUKKO_LOCAL_DIR", dir.path().display().to_string())],
            Backend::Server(s) => vec![
                ("RELUKKO_URL", s.base_url().to_owned()),
                ("RELUKKO_API_KEY", s.api_key().to_owned()),
            ],
        }
    }

    pub fn server_ref(&self) -> &TestServer {
        match self {
            Backend::Server(s) => s,
            Backend::Local(_) => panic!("not a server backend"),
        }
    }
}

/// `relukko ARGS` with a clean `RELUKKO_*` environment plus `backend`'s.
pub fn relukko(backend: &Backend, args: &[&str]) -> Command {
    let mut cmd = clean(Command::new(BIN));
    cmd.envs(backend.env()).args(args);
    cmd
}

/// Runs to the end; panics if it takes longer than [`STEP`].
pub fn output(mut cmd: Command) -> Output {
    let child = cmd.spawn().expect("relukko starts");
    let mut running = Running::new(child);
    let status = running.wait(STEP);
    running.output(status)
}

pub fn text(out: &Output) -> String {
    format!(
        "--- status: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running process whose stderr is collected as it comes, so tests can
/// wait for a line.
pub struct Running {
    pub child: Child,
    stderr: Arc<(Mutex<String>, Condvar)>,
    stdout: Arc<Mutex<String>>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        Running::new(cmd.spawn().expect("the process starts"))
    }

    fn new(mut child: Child) -> Running {
        let stderr = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.0.lock().unwrap().push_str(&(line + "\n"));
                sink.1.notify_all();
            }
        });
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stdout.take().unwrap();
        let sink = stdout.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            sink.lock().unwrap().push_str(&text);
        });
        Running {
            child,
            stderr,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.0.lock().unwrap().clone()
    }

    /// Waits (bounded) until stderr contains `needle`.
    pub fn wait_for(&self, needle: &str) {
        let (text, cv) = &*self.stderr;
        let (text, timeout) = cv
            .wait_timeout_while(text.lock().unwrap(), STEP, |t| !t.contains(needle))
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "no {needle:?} within {STEP:?}; stderr:\n{}",
            *text
        );
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits (bounded) for the exit.
    pub fn wait(&mut self, bound: Duration) -> ExitStatus {
        let end = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("still running after {bound:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The output so far, with `status`; waits (bounded) for the pipes to close:
    /// each reader thread drops its handle when its pipe ends.
    pub fn output(&self, status: ExitStatus) -> Output {
        let end = Instant::now() + Duration::from_secs(5);
        let reading = || Arc::strong_count(&self.stdout) > 1 || Arc::strong_count(&self.stderr) > 1;
        while reading() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        Output {
            status,
            stdout: self.stdout.lock().unwrap().clone().into_bytes(),
            stderr: self.stderr().into_bytes(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only if a test failed before the process ended.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to `server` with its key, as a Python client sends
/// it; answers the status and the body.
pub fn http(server: &TestServer, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    request(server.addr(), method, path, Some(server.api_key()), body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// The `id` of the JSON lock in `body`.
pub fn id_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["id"].as_str().expect("an id").to_owned()
}
