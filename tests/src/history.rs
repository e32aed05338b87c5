//! Support for the locking end-to-end suites: a shared history file that
//! proves mutual exclusion, and re-running the current test binary as worker
//! processes with their own environment.
//!
//! Workers append `enter`/`exit` lines to one file opened with `O_APPEND`:
//! each line is one small write, so the file's order is the real order of the
//! events across all processes. A worker writes `enter` after it got the lock
//! and `exit` before it releases, so if the lock works, no two holders of a
//! resource can ever have `enter` lines without an `exit` in between.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::temp::TempDir;

/// The variable that turns a worker test on and names its history file.
pub const WORKER_VAR: &str = "RELUKKO_E2E_WORKER";

/// A history file.
#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
    /// The driver's folder of the file, removed when the last clone is
    /// dropped; `None` in workers, which only append to it.
    _dir: Option<Arc<TempDir>>,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `true` for `enter`, `false` for `exit`.
    pub enter: bool,
    /// The resource.
    pub resource: String,
    /// Who (process and test).
    pub who: String,
}

/// What a history says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// How many holds were entered.
    pub entries: usize,
    /// The most holders of one resource at once (1 if the lock works).
    pub max_per_resource: usize,
    /// The most holders of any resource at once.
    pub max_total: usize,
    /// Holds per resource.
    pub per_resource: HashMap<String, usize>,
}

impl History {
    /// A fresh, empty history file in the temp folder.
    pub fn create(tag: &str) -> History {
        let dir = fresh_dir(tag);
        let path = dir.join("history.log");
        std::fs::write(&path, "").expect("create history file");
        History {
            path,
            _dir: Some(Arc::new(dir)),
        }
    }

    /// The history a driver named in [`WORKER_VAR`]; `None` when this process
    /// is not a worker (then worker tests do nothing).
    pub fn from_env() -> Option<History> {
        std::env::var_os(WORKER_VAR)
            .filter(|v| !v.is_empty())
            .map(|p| History {
                path: p.into(),
                _dir: None,
            })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, what: &str, resource: &str, who: &str) {
        let line = format!("{what} {resource} {who}\n");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .expect("open history");
        f.write_all(line.as_bytes()).expect("append to history");
    }

    /// Records a hold of `resource` by `who` lasting `hold`.
    pub fn hold(&self, resource: &str, who: &str, hold: Duration) {
        let who = format!("pid={}/{who}", std::process::id());
        self.append("enter", resource, &who);
        std::thread::sleep(hold);
        self.append("exit", resource, &who);
    }

    /// Records that `who` holds `resource` (no exit: for processes that get killed).
    pub fn enter(&self, resource: &str, who: &str) {
        self.append(
            "enter",
            resource,
            &format!("pid={}/{who}", std::process::id()),
        );
    }

    /// Records a note (not a hold): `note <what> pid=<pid>`, e.g. that a
    /// worker process is up.
    pub fn note(&self, what: &str) {
        self.append("note", what, &format!("pid={}", std::process::id()));
    }

    /// The notes so far, as `<what> pid=<pid>`.
    pub fn notes(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.path).expect("read history");
        text.lines()
            .filter_map(|l| l.strip_prefix("note "))
            .map(str::to_owned)
            .collect()
    }

    /// The events (holds) so far; notes are left out.
    pub fn events(&self) -> Vec<Event> {
        let text = std::fs::read_to_string(&self.path).expect("read history");
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with("note "))
            .map(|l| {
                let mut it = l.splitn(3, ' ');
                let (what, resource, who) = (
                    it.next().unwrap(),
                    it.next().unwrap(),
                    it.next().unwrap_or(""),
                );
                Event {
                    enter: what == "enter",
                    resource: resource.to_owned(),
                    who: who.to_owned(),
                }
            })
            .collect()
    }

    /// Counts holds and the most concurrent holders; panics on an `exit`
    /// without its `enter` (a torn or foreign file).
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        let mut inside: HashMap<String, Vec<String>> = HashMap::new();
        for e in self.events() {
            let holders = inside.entry(e.resource.clone()).or_default();
            if e.enter {
                holders.push(e.who.clone());
                s.entries += 1;
                *s.per_resource.entry(e.resource.clone()).or_default() += 1;
                s.max_per_resource = s.max_per_resource.max(holders.len());
            } else {
                let at = holders.iter().position(|w| *w == e.who);
                let at = at.unwrap_or_else(|| {
                    panic!("exit without enter: {e:?} in {}", self.path.display())
                });
                holders.remove(at);
            }
            s.max_total = s.max_total.max(inside.values().map(Vec::len).sum());
        }
        s
    }

    /// How many runs of consecutive holds by one process the history has:
    /// one per process if the processes took turns in blocks, more if their
    /// holds interleaved.
    pub fn process_runs(&self) -> usize {
        let pids: Vec<String> = self
            .events()
            .into_iter()
            .filter(|e| e.enter)
            .map(|e| e.who.split('/').next().unwrap_or_default().to_owned())
            .collect();
        pids.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!pids.is_empty())
    }

    /// Waits (bounded) until the history has at least `n` `enter` lines.
    pub fn wait_for_entries(&self, n: usize, bound: Duration) -> bool {
        let end = Instant::now() + bound;
        while Instant::now() < end {
            if self.events().iter().filter(|e| e.enter).count() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// A new, empty folder in the temp folder, removed when dropped.
pub fn fresh_dir(tag: &str) -> TempDir {
    TempDir::new(tag)
}

/// This test binary, run as a worker: the ignored tests matching `filter`
/// (exactly when `exact`) with `threads` test threads, `--nocapture`, a clean
/// `RELUKKO_*` environment plus `env`.
///
/// Worker tests are `#[ignore]`d, so that a plain `cargo test` or `cargo
/// nextest run` does not count them as passing tests; only their drivers
/// run them, with `--ignored`.
pub fn worker(filter: &str, exact: bool, threads: usize, env: &[(&str, String)]) -> Command {
    let exe = std::env::current_exe().expect("current test binary");
    worker_at(&exe, filter, exact, threads, env)
}

/// [`worker`], run from `exe`: a copy of this test binary (say, one that
/// another user may execute, which the one in `target/` need not be).
pub fn worker_at(
    exe: &Path,
    filter: &str,
    exact: bool,
    threads: usize,
    env: &[(&str, String)],
) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg(filter);
    if exact {
        cmd.arg("--exact");
    }
    cmd.args([
        "--ignored",
        "--nocapture",
        &format!("--test-threads={threads}"),
    ]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RELUKKO_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A worker starts with SIGHUP, SIGINT and SIGTERM at their defaults, as
    // a test process under a terminal or CI does. A runner started under
    // `nohup` (or as a background job of a script) passes SIG_IGN on, and a
    // process that ignores a signal is rightly not ended by it, so the
    // signal tests would wait for a release that never comes.
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: `signal` is async-signal-safe, so it may run between fork
        // and exec; nothing else runs there.
        unsafe {
            cmd.pre_exec(|| {
                for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                Ok(())
            });
        }
    }
    cmd
}

/// Runs `procs` worker processes of this test binary at once (the tests
/// starting with `prefix`, `threads` test threads each, `env` plus the
/// variable naming `history`), and requires every one to succeed.
pub fn run_workers(
    prefix: &str,
    procs: usize,
    threads: usize,
    env: &[(&str, String)],
    history: &History,
) {
    let mut env = env.to_vec();
    env.push((WORKER_VAR, history.path().display().to_string()));
    let children: Vec<_> = (0..procs)
        .map(|_| {
            worker(prefix, false, threads, &env)
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for worker");
        assert!(
            out.status.success(),
            "a worker process failed:\n{}",
            output_text(&out)
        );
    }
}

/// stdout and stderr of a finished worker, together, for assertions.
pub fn output_text(out: &Output) -> String {
    format!(
        "--- status: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
