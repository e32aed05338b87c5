//! One torture run on one backend: the server and proxy (Relukko backend),
//! the workers, the seeded fault schedule, the prober, and the history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use relukko_e2e::history::{self, Writer, now_ns};
use relukko_e2e::postgres::TestPostgres;
use relukko_e2e::proxy::{Mode, Proxy};
use relukko_e2e::raw;
use relukko_e2e::temp::TempDir;
use relukko_server::TestServer;

use super::check::{self, Figures, Params};
use super::worker;

/// The lease workers hold locks with: short, so a dead holder frees soon.
const LEASE: Duration = Duration::from_secs(2);
/// The server's grace after expiry, and its clean-up interval: short for the same reason.
const GRACE: Duration = Duration::from_secs(1);
const CLEANUP: Duration = Duration::from_millis(500);
/// The client's request and connect timeouts in the workers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The client's longest poll interval (its default), when no WebSocket tells it.
const POLL_MAX: Duration = Duration::from_secs(1);
/// How long a worker waits for a name.
const WAIT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest hold (a few are longer than the lease).
const MAX_HOLD: Duration = Duration::from_secs(3);
/// The longest a holder stays stopped (always longer than the lease).
const MAX_STOP: Duration = Duration::from_millis(4_500);
/// The library's bound on a release.
const RELEASE_BOUND: Duration = Duration::from_secs(10);
/// How long the holders of the end get to finish their hold and release.
const DRAIN: Duration = MAX_HOLD.saturating_add(RELEASE_BOUND).saturating_add(SLACK);
/// What a busy 2-core machine may add to any bound.
const SLACK: Duration = Duration::from_millis(1500);
/// After SIGTERM/SIGINT, the library releases held locks (and cleans up its
/// creates in flight) within this, then ends by the signal.
const SIGNAL_RELEASE: Duration = Duration::from_secs(2);

/// How long a fault on a process waits for a target (a holder, a waiter).
const RETARGET: Duration = Duration::from_secs(3);

/// How many workers run at once, and the names they share.
const WORKERS: usize = 8;
const NAMES: [&str; 2] = ["torture-a", "torture-b"];

/// Faults on processes (both backends).
const PROCESS_KINDS: [&str; 6] = [
    "sigkill",
    "sigterm_holder",
    "sigint_holder",
    "sigterm_waiter",
    "sigint_waiter",
    "sigstop",
];
/// Faults on the network and the server (Relukko backend).
const SERVER_KINDS: [&str; 8] = [
    "stall",
    "drop",
    "cut",
    "ws_refuse",
    "late_answer",
    "lost_answer",
    "restart",
    "malformed",
];

/// Faults of the PostgreSQL store (its backend): PostgreSQL itself
/// restarted (a fast shutdown, as in a failover); a replica killed is the
/// server's "restart" there, which then keeps every lock.
const POSTGRES_KINDS: [&str; 1] = ["pg_restart"];

/// Which backend a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    Relukko,
    /// The Relukko backend on two replicas of our server over one
    /// PostgreSQL, half the workers on each (each replica behind a proxy).
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Relukko => "relukko",
            Backend::Postgres => "postgres",
        }
    }

    /// Whether workers use a server (and so the server's faults apply).
    pub fn remote(self) -> bool {
        self != Backend::Local
    }
}

/// One planned fault: when, what, for how long, and which target (an index
/// into the candidates at that moment). The plan depends on the seed only.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub at: Duration,
    pub kind: &'static str,
    pub lasts: Duration,
    pub pick: u64,
}

/// The fault schedule of a run: the same seed gives the same schedule.
pub fn schedule(seed: u64, backend: Backend, run: Duration) -> Vec<Planned> {
    let mut rng = fastrand::Rng::with_seed(seed ^ (backend as u64).wrapping_mul(0x9e37_79b9));
    let kinds: Vec<&'static str> = match backend {
        Backend::Local => PROCESS_KINDS.to_vec(),
        Backend::Relukko => PROCESS_KINDS.iter().chain(&SERVER_KINDS).copied().collect(),
        Backend::Postgres => PROCESS_KINDS
            .iter()
            .chain(&SERVER_KINDS)
            .chain(&POSTGRES_KINDS)
            .copied()
            .collect(),
    };
    // About one fault a second (so each kind fires a few times a minute),
    // leaving the workers time to make progress in between. Kinds come in
    // shuffled rounds (each kind once per round), not drawn independently: a
    // short run still has every kind about equally often.
    let mean_gap = 1.2;
    let mut at = Duration::from_millis(1500);
    let mut plan = Vec::new();
    let mut deck: Vec<&'static str> = Vec::new();
    while at + Duration::from_secs(1) < run {
        if deck.is_empty() {
            deck = kinds.clone();
            rng.shuffle(&mut deck);
        }
        let kind = deck.pop().expect("refilled above");
        let lasts = if kind == "sigstop" {
            LEASE + Duration::from_millis(rng.u64(500..=(MAX_STOP - LEASE).as_millis() as u64))
        } else {
            Duration::from_millis(rng.u64(300..2000))
        };
        plan.push(Planned {
            at,
            kind,
            lasts,
            pick: rng.u64(..),
        });
        at += Duration::from_secs_f64(mean_gap * (0.3 + 1.4 * rng.f64()));
    }
    plan
}

/// Bounds on `free_after_s` per fault kind.
pub fn bounds(backend: Backend) -> BTreeMap<String, Duration> {
    let expiry = LEASE + GRACE + CLEANUP + POLL_MAX + SLACK;
    let stopped = MAX_STOP + MAX_HOLD + SLACK;
    let (kill, signal, stop) = match backend {
        // The kernel drops a dead process's file locks at once.
        Backend::Local => (SLACK, SLACK, stopped),
        Backend::Relukko | Backend::Postgres => (
            expiry,
            // The release within its bound, then a waiter's next look (a
            // poll, or sooner by the WebSocket) and its create.
            SIGNAL_RELEASE + POLL_MAX + SLACK,
            // Expired while stopped, or resumed, renewed and released.
            expiry.max(stopped + POLL_MAX),
        ),
    };
    [
        (super::check::NO_HOLDER, kill),
        ("sigkill", kill),
        ("sigterm_holder", signal),
        ("sigint_holder", signal),
        ("sigstop", stop),
    ]
    .into_iter()
    .map(|(k, d)| (k.to_owned(), d))
    .collect()
}

/// The checker's parameters of a run.
pub fn params(backend: Backend) -> Params {
    Params {
        bounds: bounds(backend),
        wait_timeout: WAIT_TIMEOUT,
        release_bound: RELEASE_BOUND,
        request_timeout: REQUEST_TIMEOUT,
        slack: SLACK,
    }
}

/// The server side of a Relukko run: the server (restartable on its port) and the proxy.
struct Remote {
    server: Option<TestServer>,
    addr: SocketAddr,
    key: String,
    proxy: Proxy,
    /// On PostgreSQL: the database, and the second replica with its own proxy.
    postgres: Option<(TestPostgres, TestServer, Proxy)>,
}

impl Remote {
    fn start(backend: Backend) -> Result<Remote, String> {
        let pg = match backend {
            Backend::Postgres => Some(TestPostgres::start().ok_or(
                "--backend postgres needs PostgreSQL installed (initdb; apt-get install postgresql)",
            )?),
            _ => None,
        };
        let builder = || {
            let b = TestServer::builder().grace(GRACE).cleanup_interval(CLEANUP);
            match &pg {
                Some(pg) => b.postgres(pg.url()),
                None => b,
            }
        };
        let server = builder().start();
        let addr = server.addr();
        let key = server.api_key().to_owned();
        let proxy = Proxy::start(addr, Mode::Forward);
        let postgres = pg.map(|pg| {
            let second = TestServer::builder()
                .grace(GRACE)
                .cleanup_interval(CLEANUP)
                .postgres(pg.url())
                .api_key(key.clone())
                .start();
            let proxy = Proxy::start(second.addr(), Mode::Forward);
            (pg, second, proxy)
        });
        Ok(Remote {
            server: Some(server),
            addr,
            key,
            proxy,
            postgres,
        })
    }

    /// The URL of the second replica's proxy, for half the workers.
    fn second_url(&self) -> Option<String> {
        self.postgres.as_ref().map(|(_, _, proxy)| proxy.base_url())
    }

    /// Stops PostgreSQL (a fast shutdown), waits `down`, starts it again.
    fn restart_postgres(&mut self, down: Duration) -> Result<(), String> {
        let Some((pg, _, _)) = self.postgres.as_mut() else {
            return Ok(());
        };
        pg.stop();
        std::thread::sleep(down);
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pg.start_again()));
        started.map_err(|_| "PostgreSQL did not start again".to_owned())
    }

    /// Stops the server (forgetting every lock, unless they are in
    /// PostgreSQL: then it is a replica killed and restarted) and starts a
    /// new one on the same port.
    fn restart(&mut self) -> Result<(), String> {
        drop(self.server.take());
        let url = self.postgres.as_ref().map(|(pg, _, _)| pg.url());
        for _ in 0..20 {
            let (key, port, url) = (self.key.clone(), self.addr.port(), url.clone());
            let started = std::panic::catch_unwind(move || {
                let b = TestServer::builder()
                    .api_key(key)
                    .port(port)
                    .grace(GRACE)
                    .cleanup_interval(CLEANUP);
                match url {
                    Some(url) => b.postgres(url),
                    None => b,
                }
                .start()
            });
            if let Ok(server) = started {
                self.server = Some(server);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("cannot restart the server on {}", self.addr))
    }
}

/// What the parent knows of its workers, from the history it tails.
#[derive(Debug, Default)]
struct Model {
    offset: u64,
    partial: String,
    waiting: HashMap<u32, String>,
    holding: HashMap<u32, String>,
    /// Out of the body, releasing (from `exit` to `verdict`).
    releasing: HashSet<u32>,
}

impl Model {
    fn update(&mut self, file: &mut File) {
        let mut text = String::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || file.read_to_string(&mut text).is_err()
        {
            return;
        }
        self.offset += text.len() as u64;
        self.partial.push_str(&text);
        let Some(cut) = self.partial.rfind('\n') else {
            return;
        };
        let complete: String = self.partial.drain(..=cut).collect();
        for l in history::parse(&complete) {
            match l.event.as_str() {
                "wait" => {
                    self.waiting.insert(l.pid, l.arg(0).to_owned());
                }
                "enter" => {
                    self.waiting.remove(&l.pid);
                    self.holding.insert(l.pid, l.arg(0).to_owned());
                }
                "exit" => {
                    self.holding.remove(&l.pid);
                    self.releasing.insert(l.pid);
                }
                "verdict" => {
                    self.releasing.remove(&l.pid);
                }
                "giveup" => {
                    self.waiting.remove(&l.pid);
                }
                _ => {}
            }
        }
    }

    fn forget(&mut self, pid: u32) {
        self.waiting.remove(&pid);
        self.holding.remove(&pid);
        self.releasing.remove(&pid);
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid of a child this process started and has not
    // reaped yet (so the pid cannot have been reused); no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Everything one run needs and holds.
struct Run<'a> {
    backend: Backend,
    /// On PostgreSQL: every other worker talks to the second replica.
    second_url: Option<String>,
    seed: u64,
    dir: &'a Path,
    history: Writer,
    env: Vec<(String, String)>,
    children: BTreeMap<u32, Child>,
    spawned: u64,
    until_ns: u64,
    stopped: HashMap<u32, Instant>,
    /// Sent SIGKILL, SIGTERM or SIGINT: no longer a target. A stop right
    /// after a SIGTERM would hold up the release it triggers, and the
    /// checker would blame the library for our own fault.
    doomed: HashSet<u32>,
    log: File,
}

impl Run<'_> {
    fn spawn(&mut self) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        self.spawned += 1;
        let plan = worker::Plan {
            history: self.dir.join("history").display().to_string(),
            seed: self.seed.wrapping_mul(31).wrapping_add(self.spawned),
            names: NAMES.iter().map(|n| (*n).to_owned()).collect(),
            until_ns: self.until_ns,
            wait_timeout: WAIT_TIMEOUT,
            max_hold: MAX_HOLD,
        };
        let mut cmd = Command::new(exe);
        cmd.arg(worker::MODE).args(plan.args());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("RELUKKO_") || k.ends_with("_CA_BUNDLE") {
                cmd.env_remove(k);
            }
        }
        let log = self.log.try_clone().map_err(|e| e.to_string())?;
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(url) = self
            .second_url
            .as_ref()
            .filter(|_| self.spawned.is_multiple_of(2))
        {
            cmd.env("RELUKKO_URL", url);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        history::default_signals(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        self.history.line(child.id(), "spawn", "");
        self.children.insert(child.id(), child);
        Ok(())
    }

    /// Reaps finished workers; answers how many are gone.
    fn reap(&mut self, model: &mut Model) {
        let mut gone = Vec::new();
        for (pid, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                gone.push((*pid, status));
            }
        }
        for (pid, status) in gone {
            self.history
                .line(pid, "dead", &format!("{status}").replace(' ', "_"));
            self.children.remove(&pid);
            self.doomed.remove(&pid);
            self.stopped.remove(&pid);
            model.forget(pid);
        }
    }

    /// A target among `candidates` (not stopped, still ours), by `pick`.
    fn target(&self, candidates: &HashMap<u32, String>, pick: u64) -> Option<u32> {
        let mut pids: Vec<u32> = candidates
            .keys()
            .copied()
            .filter(|p| {
                self.children.contains_key(p)
                    && !self.stopped.contains_key(p)
                    && !self.doomed.contains(p)
            })
            .collect();
        pids.sort_unstable();
        (!pids.is_empty()).then(|| pids[(pick % pids.len() as u64) as usize])
    }
}

/// Lets the holders of the end finish: a holder stopped then is resumed and
/// must tell whether it kept its lock (killing it would hide a paused holder
/// that never noticed its lease ran out). Waiters go at once; a holder still
/// holding after [`DRAIN`] is written down as `overdue`.
fn drain(run: &mut Run<'_>, model: &mut Model, tail: &mut File) {
    model.update(tail);
    let holders: HashSet<u32> = model
        .holding
        .keys()
        .chain(&model.releasing)
        .copied()
        .collect();
    let stopped: Vec<u32> = run.stopped.drain().map(|(pid, _)| pid).collect();
    for pid in stopped {
        signal(pid, libc::SIGCONT);
        run.history.line(pid, "cont", "");
    }
    for (pid, child) in &mut run.children {
        if !holders.contains(pid) {
            let _ = child.kill();
        }
    }
    let until = Instant::now() + DRAIN;
    while Instant::now() < until && run.children.keys().any(|p| holders.contains(p)) {
        std::thread::sleep(Duration::from_millis(20));
        model.update(tail);
        run.reap(model);
    }
    for pid in run.children.keys().filter(|p| holders.contains(p)) {
        run.history.line(*pid, "overdue", "");
    }
}

/// Runs the workers and faults for `run` on `backend`, then checks the history.
pub fn run(backend: Backend, seed: u64, run_for: Duration) -> Result<Figures, String> {
    let dir = TempDir::new(&format!("torture-{}", backend.name()));
    let history_path = dir.path().join("history");
    let history = Writer::open(&history_path).map_err(|e| format!("history: {e}"))?;
    let log = File::create(dir.path().join("workers.log")).map_err(|e| e.to_string())?;
    let mut remote = match backend.remote() {
        true => Some(Remote::start(backend)?),
        false => None,
    };
    let second_url = remote.as_ref().and_then(Remote::second_url);
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let env: Vec<(String, String)> = match &remote {
        None => vec![(
            "RELUKKO_LOCAL_DIR".to_owned(),
            dir.path().join("locks").display().to_string(),
        )],
        Some(r) => vec![
            ("RELUKKO_URL".to_owned(), r.proxy.base_url()),
            ("RELUKKO_API_KEY".to_owned(), r.key.clone()),
            ("RELUKKO_REQUEST_TIMEOUT".to_owned(), ms(REQUEST_TIMEOUT)),
            ("RELUKKO_CONNECT_TIMEOUT".to_owned(), ms(CONNECT_TIMEOUT)),
        ],
    }
    .into_iter()
    .chain([("RELUKKO_LEASE".to_owned(), ms(LEASE))])
    .collect();

    let start = Instant::now();
    let end = start + run_for;
    let mut run = Run {
        backend,
        second_url,
        seed,
        dir: dir.path(),
        history,
        env,
        children: BTreeMap::new(),
        spawned: 0,
        until_ns: now_ns() + run_for.as_nanos() as u64,
        stopped: HashMap::new(),
        doomed: HashSet::new(),
        log,
    };
    run.history.line(
        0,
        "start",
        &format!("{} {seed} {}", backend.name(), run_for.as_secs()),
    );

    // The prober: GET /v1/locks/ straight to the server, throughout.
    let stop_probe = Arc::new(AtomicBool::new(false));
    let prober = remote.as_ref().map(|r| {
        let (addr, key, stop) = (r.addr, r.key.clone(), Arc::clone(&stop_probe));
        let writer = Writer::open(&history_path);
        std::thread::spawn(move || {
            let Ok(writer) = writer else { return };
            while !stop.load(Ordering::Relaxed) {
                let answer = raw::exchange(addr, &raw::list(&key), Duration::from_secs(5));
                // 0: no answer at all.
                let status = raw::status_code(&answer).unwrap_or(0);
                writer.line(0, "probe", &status.to_string());
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    });

    let mut plan = schedule(seed, backend, run_for).into_iter().peekable();
    let mut postponed: Vec<Planned> = Vec::new();
    let mut model = Model::default();
    let mut tail = File::open(&history_path).map_err(|e| e.to_string())?;
    let mut net: Option<(&'static str, Instant)> = None;
    let mut ws_block: Option<Instant> = None;
    let mut bad_rng = fastrand::Rng::with_seed(seed.rotate_left(17));
    let mut result = Ok(());

    while Instant::now() < end && result.is_ok() {
        model.update(&mut tail);
        run.reap(&mut model);
        while run.children.len() < WORKERS {
            if let Err(e) = run.spawn() {
                result = Err(e);
                break;
            }
        }
        let now = Instant::now();
        // Windows that are over.
        if let Some((kind, until)) = net
            && now >= until
        {
            if let Some(r) = &remote {
                r.proxy.set_mode(Mode::Forward);
            }
            run.history.line(0, "window", &format!("{kind} end"));
            net = None;
        }
        if let Some(until) = ws_block
            && now >= until
        {
            if let Some(r) = &remote {
                r.proxy.block_websocket(false);
            }
            run.history.line(0, "window", "ws_refuse end");
            ws_block = None;
        }
        let resumed: Vec<u32> = run
            .stopped
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in resumed {
            signal(pid, libc::SIGCONT);
            run.history.line(pid, "cont", "");
            run.stopped.remove(&pid);
        }
        // Faults that are due.
        let mut due: Vec<Planned> = std::mem::take(&mut postponed);
        due.extend(std::iter::from_fn(|| plan.next_if(|f| start + f.at <= now)));
        for f in due {
            // A fault on a process waits (a little) for a process in the right
            // state; one that finds none is written down as skipped.
            let history = &run.history;
            let later = |f: Planned| {
                let keep = now < start + f.at + RETARGET;
                if !keep {
                    history.line(0, "skipped", f.kind);
                }
                keep.then_some(f)
            };
            let victim = |holders: bool| {
                run.target(
                    if holders {
                        &model.holding
                    } else {
                        &model.waiting
                    },
                    f.pick,
                )
            };
            match f.kind {
                "sigkill" | "sigterm_holder" | "sigint_holder" | "sigterm_waiter"
                | "sigint_waiter" => {
                    let Some(pid) = victim(f.kind.ends_with("holder") || f.kind == "sigkill")
                    else {
                        postponed.extend(later(f));
                        continue;
                    };
                    let sig = match f.kind {
                        "sigkill" => libc::SIGKILL,
                        k if k.starts_with("sigterm") => libc::SIGTERM,
                        _ => libc::SIGINT,
                    };
                    // Written before it is sent: the release it triggers
                    // (and the next holder's entry) come after this line.
                    run.history.line(pid, "fault", f.kind);
                    signal(pid, sig);
                    run.doomed.insert(pid);
                }
                "sigstop" => {
                    let Some(pid) = victim(true) else {
                        postponed.extend(later(f));
                        continue;
                    };
                    run.history.line(pid, "fault", "sigstop");
                    signal(pid, libc::SIGSTOP);
                    run.stopped.insert(pid, now + f.lasts);
                }
                _ => {
                    let Some(r) = remote.as_mut() else { continue };
                    run.history.line(0, "fault", f.kind);
                    match f.kind {
                        "cut" => r.proxy.cut(),
                        "ws_refuse" => {
                            if ws_block.is_none() {
                                run.history.line(0, "window", "ws_refuse begin");
                            }
                            r.proxy.block_websocket(true);
                            r.proxy.cut();
                            ws_block = Some(now + f.lasts);
                        }
                        "restart" => {
                            run.history.line(0, "window", "restart begin");
                            let restarted = r.restart();
                            run.history.line(0, "window", "restart end");
                            result = restarted;
                        }
                        // An outage of the database: the checker counts it
                        // as a restart window (5xx inside it are expected).
                        "pg_restart" => {
                            run.history.line(0, "window", "restart begin");
                            let restarted = r.restart_postgres(f.lasts);
                            run.history.line(0, "window", "restart end");
                            result = restarted;
                        }
                        "malformed" => {
                            let ids = raw::lock_ids(r.addr, &r.key, Duration::from_secs(2));
                            for _ in 0..6 {
                                let request = raw::malformed(&mut bad_rng, &r.key, &ids);
                                let answer =
                                    raw::exchange(r.addr, &request, Duration::from_secs(5));
                                let status = raw::status_code(&answer).unwrap_or(0);
                                run.history.line(0, "bad", &status.to_string());
                            }
                        }
                        kind => {
                            if let Some((old, _)) = net.take() {
                                run.history.line(0, "window", &format!("{old} end"));
                            }
                            let mode = match kind {
                                "stall" => Mode::Stall,
                                "drop" => Mode::Drop,
                                "late_answer" => {
                                    Mode::Delay(REQUEST_TIMEOUT + Duration::from_millis(500))
                                }
                                _ => Mode::LoseAnswers,
                            };
                            r.proxy.set_mode(mode);
                            // Connections already open would carry on untouched.
                            r.proxy.cut();
                            run.history.line(0, "window", &format!("{kind} begin"));
                            net = Some((kind, now + f.lasts));
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // The end: no hold starts after this line (the checker ignores them).
    run.history.line(0, "end", "");
    stop_probe.store(true, Ordering::Relaxed);
    if result.is_ok() {
        drain(&mut run, &mut model, &mut tail);
    }
    for child in run.children.values_mut() {
        let _ = child.kill();
    }
    for child in run.children.values_mut() {
        let _ = child.wait();
    }
    if let Some(p) = prober {
        let _ = p.join();
    }
    if let Some(r) = &remote {
        r.proxy.set_mode(Mode::Forward);
        r.proxy.block_websocket(false);
    }
    drop(remote);
    result?;
    let text = std::fs::read_to_string(&history_path).map_err(|e| format!("history: {e}"))?;
    let lines = history::parse(&text);
    if std::env::var_os("RELUKKO_TORTURE_KEEP").is_some() {
        let keep = std::env::temp_dir().join(format!("relukko-torture-{}-{seed}", backend.name()));
        let _ = std::fs::create_dir_all(&keep);
        let _ = std::fs::copy(&history_path, keep.join("history"));
        let _ = std::fs::copy(dir.path().join("workers.log"), keep.join("workers.log"));
        eprintln!("relukko-torture: history kept in {}", keep.display());
    }
    Ok(check::check(&lines, &params(run.backend)))
}
