//! Append-only histories: one file that many processes append lines to, the
//! proof the locking suites (and the torture, `cargo relukko-torture`) read.
//!
//! Each line is written with a single `write` on a file opened with
//! `O_APPEND`, so the file's order is the real order of the events across all
//! processes; durations come from the wall-clock time each line carries (one
//! clock for every process of the machine). A line is
//! `<unix-nanos> <pid> <event> <args...>`, `pid` being the process the line is
//! about (the writer, or, in the torture, the target of a fault). [`Writer`]
//! writes lines, [`parse`] reads them.
//!
//! On top of that format, [`History`] is what the end-to-end suites use: a
//! worker writes `enter <resource> <who>` after it got the lock and
//! `exit <resource> <who>` before it releases, so if the lock works, no two
//! holders of a resource can ever have `enter` lines without an `exit` in
//! between. The module also re-runs the current test binary as worker
//! processes with their own environment.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::temp::TempDir;

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// An open history file; cheap to share by reference across threads.
#[derive(Debug)]
pub struct Writer {
    file: File,
}

impl Writer {
    /// Opens `path` for appending (creating it).
    pub fn open(path: &Path) -> std::io::Result<Writer> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Writer { file })
    }

    /// Appends `<now> <pid> <event> <args>` in one write.
    pub fn try_line(&self, pid: u32, event: &str, args: &str) -> std::io::Result<()> {
        let text = format!("{} {pid} {event} {args}\n", now_ns());
        // One write_all of a short line on an O_APPEND file is one write(2).
        (&self.file).write_all(text.as_bytes())
    }

    /// [`Writer::try_line`], saying on stderr when it fails (for a process
    /// that goes on without its history, as the torture's do).
    pub fn line(&self, pid: u32, event: &str, args: &str) {
        if let Err(e) = self.try_line(pid, event, args) {
            eprintln!("relukko history: cannot append to the history: {e}");
        }
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Unix nanoseconds.
    pub t: u64,
    /// The process the line is about.
    pub pid: u32,
    /// What happened (`wait`, `enter`, `fault`, ...).
    pub event: String,
    /// The rest, split on spaces.
    pub args: Vec<String>,
}

impl Line {
    /// The `i`-th argument, or `""`.
    pub fn arg(&self, i: usize) -> &str {
        self.args.get(i).map(String::as_str).unwrap_or("")
    }

    /// The `i`-th argument as a number, or 0.
    pub fn num(&self, i: usize) -> u64 {
        self.arg(i).parse().unwrap_or(0)
    }
}

/// Parses a history; lines that do not parse (none should) are skipped.
pub fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let t = it.next()?.parse().ok()?;
            let pid = it.next()?.parse().ok()?;
            let event = it.next()?.to_owned();
            let args = it.filter(|a| !a.is_empty()).map(str::to_owned).collect();
            Some(Line {
                t,
                pid,
                event,
                args,
            })
        })
        .collect()
}

/// The variable that turns a worker test on and names its history file.
pub const WORKER_VAR: &str = "RELUKKO_E2E_WORKER";

/// A history file of the end-to-end suites.
#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
    /// The driver's folder of the file, removed when the last clone is
    /// dropped; `None` in workers, which only append to it.
    _dir: Option<Arc<TempDir>>,
}

/// A hold's `enter` or `exit` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `true` for `enter`, `false` for `exit`.
    pub enter: bool,
    /// The resource.
    pub resource: String,
    /// The process that wrote it.
    pub pid: u32,
    /// Who in that process (say, the test).
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

    /// Appends a line about this process; a history that cannot be written
    /// fails the test.
    fn append(&self, event: &str, args: &str) {
        Writer::open(&self.path)
            .and_then(|w| w.try_line(std::process::id(), event, args))
            .unwrap_or_else(|e| panic!("append to history {}: {e}", self.path.display()));
    }

    /// Records a hold of `resource` by `who` (one word) lasting `hold`.
    pub fn hold(&self, resource: &str, who: &str, hold: Duration) {
        self.enter(resource, who);
        std::thread::sleep(hold);
        self.append("exit", &format!("{resource} {who}"));
    }

    /// Records that `who` (one word) holds `resource` (no exit: for
    /// processes that get killed).
    pub fn enter(&self, resource: &str, who: &str) {
        self.append("enter", &format!("{resource} {who}"));
    }

    /// Records a note (not a hold): `note <what>`, e.g. that a worker
    /// process is up.
    pub fn note(&self, what: &str) {
        self.append("note", what);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<Line> {
        parse(&std::fs::read_to_string(&self.path).expect("read history"))
    }

    /// The notes so far.
    pub fn notes(&self) -> Vec<Line> {
        self.lines()
            .into_iter()
            .filter(|l| l.event == "note")
            .collect()
    }

    /// The holds' `enter` and `exit` lines so far; other lines are left out.
    pub fn events(&self) -> Vec<Event> {
        self.lines()
            .into_iter()
            .filter(|l| l.event == "enter" || l.event == "exit")
            .map(|l| Event {
                enter: l.event == "enter",
                resource: l.arg(0).to_owned(),
                pid: l.pid,
                who: l.arg(1).to_owned(),
            })
            .collect()
    }

    /// Counts holds and the most concurrent holders; panics on an `exit`
    /// without its `enter` (a torn or foreign file).
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        let mut inside: HashMap<String, Vec<(u32, String)>> = HashMap::new();
        for e in self.events() {
            let holders = inside.entry(e.resource.clone()).or_default();
            let holder = (e.pid, e.who.clone());
            if e.enter {
                holders.push(holder);
                s.entries += 1;
                *s.per_resource.entry(e.resource.clone()).or_default() += 1;
                s.max_per_resource = s.max_per_resource.max(holders.len());
            } else {
                let at = holders.iter().position(|h| *h == holder);
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
        let pids: Vec<u32> = self
            .events()
            .into_iter()
            .filter(|e| e.enter)
            .map(|e| e.pid)
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
    default_signals(&mut cmd);
    cmd
}

/// Starts `cmd` with SIGHUP, SIGINT and SIGTERM at their defaults, as a test
/// process under a terminal or CI is. A runner started under `nohup` (or as
/// a background job of a script) passes SIG_IGN on, and a process that
/// ignores a signal is rightly not ended by it, so the signal tests (and the
/// torture's signal faults) would wait for a release that never comes.
pub fn default_signals(cmd: &mut Command) {
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
    #[cfg(not(unix))]
    let _ = cmd;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What a [`Writer`] writes, [`parse`] reads back, field by field, in
    /// file order; a line that is not of the format is skipped.
    #[test]
    fn written_lines_parse_back() {
        let dir = fresh_dir("history-format");
        let path = dir.join("h");
        let w = Writer::open(&path).unwrap();
        let before = now_ns();
        w.line(7, "wait", "rig-1 3000");
        w.line(8, "end", "");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("torn lin\n");
        let lines = parse(&text);
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].t >= before && lines[1].t >= lines[0].t,
            "{lines:?}"
        );
        assert_eq!((lines[0].pid, lines[0].event.as_str()), (7, "wait"));
        assert_eq!(lines[0].args, ["rig-1", "3000"]);
        assert_eq!(
            (lines[0].arg(0), lines[0].num(1), lines[0].arg(5)),
            ("rig-1", 3000, "")
        );
        assert_eq!((lines[1].pid, lines[1].event.as_str()), (8, "end"));
        assert!(lines[1].args.is_empty(), "{lines:?}");
    }

    /// A [`History`] writes the shared format: holds are `enter`/`exit`
    /// lines of this process, notes are `note` lines, and its summary counts
    /// holders at once per resource.
    #[test]
    fn a_history_is_lines_of_the_shared_format() {
        let h = History::create("history-own");
        h.note("ready");
        h.enter("rig", "a");
        h.enter("rig", "b");
        h.hold("other", "c", Duration::ZERO);
        let lines = parse(&std::fs::read_to_string(h.path()).unwrap());
        let pid = std::process::id();
        assert!(lines.iter().all(|l| l.pid == pid), "{lines:?}");
        let events: Vec<_> = lines.iter().map(|l| l.event.as_str()).collect();
        assert_eq!(events, ["note", "enter", "enter", "enter", "exit"]);
        assert_eq!(lines[1].args, ["rig", "a"]);
        assert_eq!(h.notes().len(), 1);
        assert_eq!(h.notes()[0].arg(0), "ready");
        let s = h.summary();
        assert_eq!((s.entries, s.max_per_resource, s.max_total), (3, 2, 3));
        assert_eq!(s.per_resource["rig"], 2);
        assert_eq!(h.process_runs(), 1);
        assert!(h.wait_for_entries(3, Duration::from_secs(5)));
        assert!(!h.wait_for_entries(4, Duration::ZERO));
    }

    /// An `exit` matches the `enter` of the same process and name only.
    #[test]
    #[should_panic(expected = "exit without enter")]
    fn an_exit_of_another_process_is_refused() {
        let h = History::create("history-foreign");
        h.enter("rig", "a");
        Writer::open(h.path()).unwrap().line(1, "exit", "rig a");
        h.summary();
    }

    /// Holds of processes taking turns in blocks are one run each.
    #[test]
    fn process_runs_count_changes_of_process() {
        let h = History::create("history-runs");
        let w = Writer::open(h.path()).unwrap();
        for pid in [1, 1, 2, 2, 1] {
            w.line(pid, "enter", "rig x");
            w.line(pid, "exit", "rig x");
        }
        assert_eq!(h.process_runs(), 3);
        assert_eq!(h.summary().max_per_resource, 1);
    }
}
