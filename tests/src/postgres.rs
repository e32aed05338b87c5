//! [`TestPostgres`]: a throwaway PostgreSQL cluster from the installed
//! binaries, for the suites of the server's PostgreSQL store: `initdb` in a
//! temporary folder, a loopback port, run as a user other than root (as
//! PostgreSQL insists), stopped and removed when dropped.
//!
//! Where PostgreSQL is not installed, [`TestPostgres::start`] says so on
//! stderr and gives `None` (the test passes as skipped), except under
//! `CI=true`, where it panics: CI must run these suites.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::temp::TempDir;

/// How long a start or stop may take.
const STEP: Duration = Duration::from_secs(60);

/// A running PostgreSQL cluster of its own.
#[derive(Debug)]
pub struct TestPostgres {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// The user it runs as when we are root: name, uid, gid.
    user: Option<(String, u32, u32)>,
    server: Option<Child>,
}

/// The folder of `initdb` and `postgres`: `RELUKKO_TEST_PG_BIN`, else where
/// `initdb` on `PATH` really is, else Debian's newest `/usr/lib/postgresql/N/bin`.
pub fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RELUKKO_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("initdb"))
            .find(|p| p.is_file())
    });
    if let Some(initdb) = on_path {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        let dir = real.parent()?.to_owned();
        if dir.join("postgres").is_file() {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl TestPostgres {
    /// Starts a fresh cluster, or `None` (after a line on stderr) where
    /// PostgreSQL is not installed; under `CI=true` that panics instead.
    pub fn start() -> Option<TestPostgres> {
        let Some(bin) = find_bin() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must run the PostgreSQL suites: install PostgreSQL (apt-get install postgresql) \
                 or set RELUKKO_TEST_PG_BIN"
            );
            eprintln!(
                "SKIPPED: PostgreSQL is not installed (no initdb; apt-get install postgresql, \
                 or set RELUKKO_TEST_PG_BIN)"
            );
            return None;
        };
        let dir = TempDir::new("postgres");
        // PostgreSQL refuses to run as root: as root, it runs as `postgres`
        // (Debian's package makes that user) or else `nobody`.
        let user = is_root().then(|| {
            let name = if id("-u", "postgres").is_some() {
                "postgres"
            } else {
                "nobody"
            };
            let uid = id("-u", name).expect("the user exists");
            let gid = id("-g", name).expect("the user has a group");
            (name.to_owned(), uid, gid)
        });
        if let Some((user, _, _)) = &user {
            let chown = Command::new("chown")
                .args(["-R", user, &dir.display().to_string()])
                .status()
                .expect("chown runs");
            assert!(chown.success(), "chown the cluster's folder to {user}");
        }
        let mut pg = TestPostgres {
            bin,
            dir,
            port: 0,
            user,
            server: None,
        };
        let data = pg.data();
        let out = pg
            .command("initdb")
            .args([
                "-D",
                &data,
                "-U",
                "relukko",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        pg.port = free_port();
        pg.start_again();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((_, uid, gid)) = self.user {
            // Set in the child itself before exec: no wrapper process that a
            // kill would leave PostgreSQL orphaned behind.
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        // Keep the cluster's own settings; none of the caller's PG* variables.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                cmd.env_remove(name);
            }
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `postgres://relukko@127.0.0.1:PORT/postgres?sslmode=disable`.
    pub fn url(&self) -> String {
        format!(
            "postgres://relukko@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The loopback port it listens on (the same across [`stop`](Self::stop)
    /// and [`start_again`](Self::start_again)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (a fast shutdown: sessions are cut, as in a
    /// failover); the data stays for [`start_again`](Self::start_again).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SIGINT: PostgreSQL's fast shutdown.
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGINT) };
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(server.wait());
                drop(server);
            });
            if rx.recv_timeout(STEP).is_err() {
                panic!("PostgreSQL did not stop within {STEP:?}");
            }
        }
    }

    /// Starts the server again on the same data and port; returns once it
    /// accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "already running");
        let sockets = self.dir.display().to_string();
        let mut child = self
            .command("postgres")
            .args([
                "-D",
                &self.data(),
                "-p",
                &self.port.to_string(),
                "-k",
                &sockets,
            ])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("postgres starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // (Not "FATAL": clients connecting during start-up, such as a
                // replica reconnecting, log FATAL lines of their own.)
                if line.contains("ready to accept connections") {
                    let _ = tx.send(Ok(()));
                }
                if seen.len() < 16 * 1024 {
                    seen.push_str(&line);
                    seen.push('\n');
                }
            }
            let _ = tx.send(Err(format!("postgres exited:\n{seen}")));
        });
        self.server = Some(child);
        match rx.recv_timeout(STEP) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("PostgreSQL did not start: {e}"),
            Err(_) => panic!("PostgreSQL did not start within {STEP:?}"),
        }
    }

    /// The cluster's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGQUIT) };
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// `id FLAG USER` as a number.
fn id(flag: &str, user: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, user]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("an address").port()
}
