//! # relukko-test
//!
//! Lock scarce test resources (a hardware-in-the-loop rig, a device-farm slot, a
//! staging database, a licence server) across threads, processes (`cargo
//! nextest`) and CI machines, through a central [Relukko] lock server, or on one
//! machine through lock files, with no setup at all.
//!
//! ```toml
//! [dev-dependencies]
//! # From a clone of the repository (the crate is not on crates.io yet):
//! relukko = { package = "relukko-test", path = "../relukko-test/relukko-test" }
//! # Once it is published:
//! # relukko = { package = "relukko-test", version = "0.1" }
//! ```
//!
//! The package is `relukko-test`; its library is named `relukko`, so code writes
//! `relukko::...` and `#[relukko::locked]`.
//!
//! ## The attribute
//!
//! [`#[relukko::test]`](test) is the test attribute and the lock in one: the
//! function is a test, and holds its resources from before its body runs
//! until after it ends, whether it returns, fails or panics:
//!
//! ```
//! # mod relukko { pub use ::relukko::*; pub use ::relukko::locked as test; } // doc tests drop test fns: compile the body
//! #[relukko::test("hil-rig-3", timeout = "10m")]
//! fn flashes_firmware() {
//!     // Only one test anywhere holds hil-rig-3 now.
//! }
//! ```
//!
//! [`#[locked]`](locked) is the lock alone, next to a test attribute of your
//! choice (`#[test]`, `#[tokio::test]`, `#[rstest]`):
//!
//! ```
//! # use relukko::locked as test; // doc tests drop #[test] fns; this keeps the example compiled
//! #[relukko::locked("hil-rig-3", timeout = "10m")]
//! #[test]
//! fn flashes_firmware() {
//!     // Only one test anywhere holds hil-rig-3 now.
//! }
//! ```
//!
//! Both take several names (`#[locked("a", "b")]`, acquired in one canonical
//! order), no name (derived from the test's path), a pool
//! (`#[locked(any_of("rig-1", "rig-2"))]`, with an optional [`Lease`]
//! parameter telling which one the test got), and the options `timeout`,
//! `lease`, `creator` and `crate`, and work with `#[should_panic]`,
//! `#[ignore]` and tests returning `Result`. `#[relukko::test]` runs an
//! `async fn` on a tokio current-thread runtime; `#[locked]` goes with
//! `#[tokio::test]` (any flavor) and `rstest`.
//!
//! **Put `#[locked]` above `#[test]`.** A test with a `Lease` parameter needs
//! that order: below it, `#[test]` expands first and rejects the parameter
//! (rustc: "functions used as tests can not have any arguments"), before
//! `#[locked]` can see the order or say so.
//!
//! The manual of the attribute, with an example of every form and option and
//! what happens when a test panics, times out, loses its lock or is stopped by a
//! signal, is on [`locked`].
//!
//! ## Without the macro
//!
//! [`lock_blocking`] and [`lock`] return a [`Lease`] for fixtures and helpers,
//! with the same process-wide configuration as the attribute; [`LockOptions`]
//! says what to lock and how long to wait. Dropping the lease releases it
//! (waiting at most a few seconds); [`Lease::release`] /
//! [`Lease::release_blocking`] do the same and report errors, including a lock
//! lost while it was held.
//!
//! ```
//! use std::time::Duration;
//! use relukko::{Lease, LockOptions};
//!
//! /// A fixture: the staging database, held for as long as the value lives.
//! struct StagingDb {
//!     url: String,
//!     _lease: Lease,
//! }
//!
//! fn staging_db() -> relukko::Result<StagingDb> {
//!     let opts = LockOptions::new("crate-doc-staging-db").timeout(Duration::from_secs(60));
//!     let lease = relukko::lock_blocking(opts)?;
//!     Ok(StagingDb { url: "postgres://staging.example.invalid/app".into(), _lease: lease })
//! }
//!
//! fn main() -> relukko::Result<()> {
//!     let db = staging_db()?;
//!     assert!(db.url.starts_with("postgres://"));
//!     drop(db); // released
//!
//!     // Several names, or a pool, as in the attribute:
//!     let lease = relukko::lock_blocking(LockOptions::any_of(["crate-doc-rig-1", "crate-doc-rig-2"]))?;
//!     println!("got {}", lease.name());
//!     lease.release_blocking()
//! }
//! ```
//!
//! A [`Locker`] built by hand ([`Locker::local`], [`Locker::relukko`] with a
//! [`Client`]) locks on a backend of your choice, with its
//! own `timeout`, `lease`, `prefix` and `creator`:
//!
//! ```
//! use std::time::Duration;
//! use relukko::LockOptions;
//!
//! # fn main() -> relukko::Result<()> {
//! let dir = std::env::temp_dir().join(format!("relukko-crate-doc-{}", std::process::id()));
//! let locker = relukko::Locker::local(&dir);
//! let lease = locker.lock_blocking(LockOptions::new("staging-db").timeout(Duration::from_secs(30)))?;
//! assert_eq!(lease.name(), "staging-db");
//! drop(lease); // released (a Lease also has an explicit release that reports errors)
//! # let _ = std::fs::remove_dir_all(dir);
//! # Ok(()) }
//! ```
//!
//! The [`client`] module speaks the whole Relukko protocol for tools of your own
//! (create-or-fail with `409` as a typed `Create::Taken`, acquire with a
//! deadline, get, list, update, delete, keep-alive, add-to-expiry, health), with
//! retries and per-request timeouts. An administrator's force-release:
//!
//! ```no_run
//! # #[cfg(feature = "relukko")]
//! # #[tokio::main]
//! # async fn main() -> relukko::Result<()> {
//! use relukko::{Client, Create};
//!
//! // Your server's URL and key; or Client::from_env()? (RELUKKO_URL, RELUKKO_API_KEY, ...).
//! let client = Client::builder("https://relukko.example.com").api_key("s3cr3t").build()?;
//! if let Create::Acquired(lock) = client.create("crate-doc-admin-rig", Some("me")).await? {
//!     println!("holding {} (id {})", lock.lock_name, lock.id);
//! }
//! // Look the lock up by name, delete it by id.
//! for lock in client.list().await? {
//!     if lock.lock_name == "crate-doc-admin-rig" {
//!         client.delete(lock.id).await?;
//!     }
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "relukko"))]
//! # fn main() {}
//! ```
//!
//! In the repository, `cargo run -p relukko-examples --example admin` lists
//! the locks and force-releases one (it starts a throwaway server when
//! `RELUKKO_URL` is unset).
//!
//! ## Configuration
//!
//! Everything is read from the environment on first use, once per process. A bad
//! value fails the test with a message naming the variable; a variable set but
//! empty is an error too (unset it instead). A variable within two typing errors
//! of one below (`RELUKKO_LAESE`) is not read; one line on stderr names the one
//! meant. A misspelt server URL (`RELUKO_URL`) with no real one set fails every
//! lock instead, naming it: those tests were meant to lock on the server, and
//! lock files would let another machine's test hold the resource at the same
//! time.
//!
//! | variable | meaning | default | example |
//! | --- | --- | --- | --- |
//! | `RELUKKO_URL` | the Relukko server; set: the Relukko backend | unset: the local backend | `https://relukko.example.com` |
//! | `RELUKKO_BASE_URL` | alias of `RELUKKO_URL` (upstream's name); `RELUKKO_URL` wins | unset | `http://127.0.0.1:3000` |
//! | `RELUKKO_API_KEY` | sent as `X-API-Key` | none | `s3cr3t` |
//! | `RELUKKO_LOCAL_DIR` | folder of the local backend's lock files; every process that shares resources must use the same one | `/tmp/relukko-locks` on Unix, whatever `TMPDIR` says; `%ProgramData%\relukko-locks` on Windows | `/var/tmp/ci-locks` |
//! | `RELUKKO_TIMEOUT` | longest wait for a resource (anything over a century counts as "practically forever") | `10m` | `90s` |
//! | `RELUKKO_LEASE` | how long the server keeps a lock without a heartbeat (at least `2s`) | `60s` | `2m` |
//! | `RELUKKO_LOCK_PREFIX` | put in front of every lock name, so teams can share a server | none | `team-a/` |
//! | `RELUKKO_CREATOR` | the holder text recorded with each lock | `user@host test=<path> pid=<pid>` (+ CI job) | `nightly HIL` |
//! | `RELUKKO_REQUEST_TIMEOUT` | longest single HTTP request | `5s` | `2s` |
//! | `RELUKKO_CONNECT_TIMEOUT` | longest TCP/TLS connect | `3s` | `500ms` |
//! | `RELUKKO_WEBSOCKET` | wake waiters through `/ws/broadcast` (`on`/`off`, `true`/`false`, `yes`/`no`, `1`/`0`); off: polling only | `on` | `off` |
//! | `RELUKKO_CA_BUNDLE` | extra CA certificates (a PEM file, or a folder of `*.pem`/`*.crt`/`*.cer`), for HTTPS and WSS | none | `/etc/ssl/corp-ca.pem` |
//! | `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` | upstream's names for the same, used if `RELUKKO_CA_BUNDLE` is unset (in this order); set but empty counts as unset, as in Python's clients | none | `/etc/ssl/certs` |
//! | `RELUKKO_SIGNALS` | `off` (also `0`, `false`, `no`): do not catch SIGINT/SIGTERM/SIGHUP to release locks (see [`locked`]) | on | `off` |
//! | `RELUKKO_HELD`, `RELUKKO_HELD_PROOF` | set by `relukko run` for its command: the names it holds, and what identifies each lock; a lock on one of them is taken inside that hold (see [below](#inside-a-hold-of-relukko-run)) | unset | |
//! | `RELUKKO_TRUST_ME_IT_IS_LOCKED` | any non-empty value (`1`, `true`, `yes`, ...): no locking at all (as upstream), for a resource you locked by hand; one line on stderr says so. `0`, `false`, `no` and `off` are refused (every lock fails saying so): unset it to lock | unset (empty = off) | `1` |
//!
//! Durations read like `"500ms"`, `"90s"`, `"10m"`, `"1h 30m"`, or a bare number
//! of seconds. The same settings are also builder options:
//! [`Client::builder`](crate::client::Client::builder) and
//! [`Locker::timeout`], [`Locker::lease`], [`Locker::prefix`],
//! [`Locker::creator`]. Tests in one process share their environment, so do not
//! set `RELUKKO_URL` from a test; build a [`Locker`], or start child processes
//! with the variables set.
//!
//! The `relukko` command line reads these variables too. The server's own
//! (`RELUKKO_BIND_ADDR`, `RELUKKO_DB`, ...) are in the
//! [relukko-server](https://docs.rs/relukko-server/latest/relukko_server/)
//! documentation.
//!
//! ## Backends
//!
//! Chosen from the environment on first use, in this order:
//!
//! 1. `RELUKKO_TRUST_ME_IT_IS_LOCKED` non-empty: **skip**, nothing is locked
//!    (as upstream's clients do, for a resource locked by hand). One line on
//!    stderr says so.
//! 2. else `RELUKKO_URL` (or `RELUKKO_BASE_URL`) set: the **Relukko backend**.
//!    Each lock is a row on the server; a heartbeat (keep-alive every third of
//!    the lease) runs on the library's own background runtime, so a test that
//!    blocks its thread cannot starve it. Waiters are woken by the server's
//!    WebSocket push. While that WebSocket is healthy (connected, and heard
//!    from within 20 s; it pings every 15 s), a waiter asks the server only as a
//!    safety net, every 12–18 s (about 0.07 requests per second); while it is
//!    down, reconnecting or late, the waiter polls on a jittered timer (at most
//!    about 1 s), so waiting works when a proxy blocks the WebSocket. After
//!    every (re)connect each waiter asks once, so no release is missed. A
//!    process that releases a name that was contended lately and asks for it
//!    again at once first pauses a few milliseconds (about four handoffs, 5–50
//!    ms), so the waiters woken by the release go first; in a crowd of waiting
//!    processes the ones that waited longest ask first after a push (each race
//!    lost takes 3 ms off a 15 ms pause). If the server cannot be reached, the
//!    test fails with the URL and the cause: it never falls back to local
//!    locking. A build without the `relukko` feature fails every lock when
//!    `RELUKKO_URL` is set, with an error naming the feature.
//! 3. else the **local backend**: one lock file per resource in one folder per
//!    machine, locked with `flock` (`LockFileEx` on Windows). It serializes
//!    every test process and thread of this machine, under `cargo test` and
//!    `cargo nextest run`, with no setup. The holder records itself in a
//!    file of its own next to the lock file, for waiters' messages.
//!
//! ### The local lock folder
//!
//! Every process of a machine, whoever runs it, must use the same folder: two
//! processes that lock `hil-rig-3` in different folders both get it. So the
//! default is fixed per machine: `/tmp/relukko-locks` on Unix, whatever `TMPDIR`
//! says (macOS gives each user a `TMPDIR` of their own, `sudo` drops it,
//! sandboxes and CI runners set it per job), and `%ProgramData%\relukko-locks` on
//! Windows. `RELUKKO_LOCAL_DIR` overrides it, for every process alike. The
//! waiting line names the folder (`waiting 4.0s for hil-rig-3 (lock files in
//! /tmp/relukko-locks), held by ...`), so a process looking elsewhere is easy
//! to spot.
//!
//! - **Sandboxes that hide `/tmp`** (systemd's `PrivateTmp=`, Flatpak, Bazel
//!   and Nix build sandboxes, containers): processes in different sandboxes see
//!   different `/tmp` folders. Give all of them a shared mount and point
//!   `RELUKKO_LOCAL_DIR` at it.
//! - **Shared machines.** Whoever comes first creates the folder, mode `1777`
//!   like `/tmp` (anyone may add lock files, only their owners may delete
//!   them). The owner of the folder, or of a lock file, can still delete it
//!   while it is held, and a second holder may then get in: the holder checks
//!   its lock file about once a second, and a deleted or replaced one makes
//!   its lease [`Lost`](LeaseState::Lost) within seconds, with a line on
//!   stderr. So a folder or a lock file owned by another user (not root)
//!   works, with one warning line, and admins of shared machines should
//!   create the folder as root at boot, e.g. with
//!   `/etc/tmpfiles.d/relukko.conf` holding
//!   `d /tmp/relukko-locks 1777 root root -` (the `-` age also keeps
//!   `systemd-tmpfiles` from cleaning the lock files away).
//! - **What is refused** (the lock fails with the folder and what to do):
//!   a folder that is a symbolic link; a folder every user may write to without
//!   the sticky bit (`chmod +t` it); a lock file that is a symbolic link, not a
//!   regular file, or has other hard links. Lock files are opened without
//!   following symbolic links, and only this user's own files get their
//!   permissions changed, so a file planted in the folder can never turn a
//!   holder against another file.
//! - **Holder records are private.** Lock files are mode `0644` (`flock`
//!   needs no write access), whatever the umask; the holder's record (its
//!   creator text, which may carry a CI job's details) is in a file of its
//!   own, `<lock file>.<uid>.holder`, mode `0600`. Other users see
//!   `pid 4711 of user alice` instead, and nobody can forge a holder: on
//!   Linux a record is believed only for the user whose process holds the
//!   lock, as `/proc/locks` tells. Lock files of older versions (mode `0666`,
//!   with the record inside) keep working; this user's own are made `0644`
//!   and emptied at their next lock.
//! - **Threads of one process** take turns in an in-process table, first come
//!   first served, before they touch the file lock, and the process keeps one
//!   handle per lock file. So locking stays correct also where file locks
//!   belong to the whole process rather than to a handle.
//! - **Network file systems** (NFS, SMB/CIFS, AFS, Ceph, 9p, ...; detected
//!   with `statfs` on Linux, macOS and FreeBSD) get one warning line, and work
//!   between the processes of one machine. Whether locks hold between machines
//!   depends on the server's lock support: to share resources between machines,
//!   use a Relukko server.
//! - **Fairness between processes**: waiting processes sleep in the kernel's
//!   blocking `flock`, and the kernel wakes one of them when the holder
//!   unlocks, not necessarily the one that waited longest. A process killed
//!   while waiting or holding never blocks anyone (the kernel drops its locks
//!   with it). Within one process, turns are strictly in arrival order; strict
//!   first-come-first-served across processes is not implemented: it needs a
//!   queue on disk (a lock file per waiter, so that a killed waiter is
//!   noticed) that costs every lock a scan of the folder.
//!
//! ### Inside a hold of `relukko run`
//!
//! `relukko run hil-rig-3 -- cargo nextest run` holds `hil-rig-3` for the
//! whole run; a test inside that locks `hil-rig-3` gets it at once, as part of
//! that hold: no second lock, no wait for the job, nothing released but its
//! own turn. The tests of the job still take turns among themselves (threads
//! and processes alike): each takes the name's lock file in a folder of that
//! hold's own, `held-<hash>` in the lock folder (in `/tmp/relukko-locks` on
//! a server; `relukko run` removes it once its command has ended), and their
//! waiting lines say `waiting 4.0s for hil-rig-3 inside
//! the hold of hil-rig-3 by process 4711 (an ancestor), taking turns with the
//! others inside it ...`.
//!
//! `relukko run` tells its command what it holds in two variables:
//! `RELUKKO_HELD`, the names (comma-separated, as before, for scripts), and
//! `RELUKKO_HELD_PROOF`, a JSON array with one entry per lock: `name` (with
//! the prefix), `place` (the lock folder or the server), `pid` (the holder),
//! and `file` (`path`, `dev`, `ino` of the lock file) or `lock` (`id`, and
//! the creator token `[rl:...]` of the create that made it). A test believes
//! an entry only once checked: same folder or server as its own, the holder
//! an ancestor of the test's process, and the lock alive (the lock file still
//! that file and locked by that process; the server's lock of that id still
//! the one with that name and token, asked with `GET /v1/locks/{id}`). An
//! entry that fails a check, or a name in `RELUKKO_HELD` without an entry (an
//! older `relukko run`, or a script that set the names by hand), is ignored
//! with one line on stderr saying why, and the name is locked the ordinary
//! way, which waits for that holder.
//!
//! ## Features
//!
//! - `relukko` (on by default): the Relukko server backend (`RELUKKO_URL`) and
//!   [`client`], the async `Client` for the whole Relukko protocol: the HTTP
//!   client, the WebSocket and their dependencies. With
//!   `default-features = false` only the local backend (and the skip switch) is
//!   built, in a fraction of the time: no HTTP client, WebSocket or TLS.
//!   `RELUKKO_URL` is then an error that names this feature, never a silent
//!   fall-back to local files, which would lock nothing on other machines.
//! - `tls` (on by default; implies `relukko`): HTTPS and WSS through rustls with
//!   the ring provider, with extra CA bundles.
//!
//! The Relukko-compatible server (with the `TestServer` fixture for your tests)
//! is the package [relukko-server](https://docs.rs/relukko-server/latest/relukko_server/),
//! and the `relukko` command line the package
//! [relukko-cli](https://crates.io/crates/relukko-cli).
//!
//! [Relukko]: https://gitlab.com/relukko
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
// The crate docs' `#[test]` is `relukko::locked` renamed (see the hidden line): it is compiled.
#![allow(clippy::test_attr_in_doctest)]

// The layers, top down; each uses only those below it (see
// docs/ARCHITECTURE.md): the entry points (`runner`, `locker`), what a test
// holds (`lease`), where locks live (`backend`), the settings from the
// environment (`settings`), the protocol's client (`client`), and the shared
// ground (`courtesy`, `report`, `rt`, `error`).
mod backend;
#[cfg(feature = "relukko")]
pub mod client;
mod lease;
mod locker;
mod runner;
mod settings;
// Parts of these serve only the Relukko backend; the default build checks them.
#[cfg_attr(not(feature = "relukko"), allow(dead_code))]
mod courtesy;
#[cfg_attr(not(feature = "relukko"), allow(dead_code))]
pub mod error;
mod report;
#[cfg_attr(not(feature = "relukko"), allow(dead_code))]
mod rt;
#[cfg(test)]
mod test_support;

/// The runner that `#[relukko::locked]` expands to. Not public API: anything
/// here may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::lease::Lease;
    pub use crate::runner::{
        Failure, Spec, block_on, fail, run_async, run_async_should_panic, run_sync,
        run_sync_should_panic,
    };
}

/// What the `relukko` command line (package `relukko-cli`, which pins this
/// crate's exact version) uses of the library, so that it waits, holds and
/// reports exactly as `#[locked]` does. Not public API.
#[doc(hidden)]
pub mod __cli {
    pub use crate::backend::local::Local;
    pub use crate::backend::local::inspect::Holding;
    pub use crate::rt::settle;
    pub use crate::settings::creator::for_command;
    pub use crate::settings::{BackendKind, Defaults, OuterVars, Settings, from_env};
    /// The value of `RELUKKO_HELD_PROOF` for a command run while `lease`
    /// (from `locker`) is held.
    pub fn hold_proof(locker: &crate::locker::Locker, lease: &crate::lease::Lease) -> String {
        locker.hold_proof(lease)
    }
    /// Removes the folders where holders inside `lease` (from `locker`)
    /// took turns, once the command they ran under has ended.
    pub fn remove_inside(locker: &crate::locker::Locker, lease: &crate::lease::Lease) {
        locker.remove_inside(lease)
    }
    /// How durations, times and holders are worded for people.
    pub mod human {
        pub use crate::report::duration;
        #[cfg(feature = "relukko")]
        pub use crate::report::{holder, when};
    }
    /// The lines users see on stderr.
    pub mod stderr {
        pub use crate::report::stderr::line;
    }
}

pub use backend::state::LeaseState;
#[cfg(feature = "relukko")]
pub use client::{
    AcquireOptions, Client, ClientBuilder, Create, RetryPolicy, WaitProgress, creator_without_token,
};
pub use error::{Error, Result};
pub use lease::Lease;
pub use locker::{LockOptions, Locker, lock, lock_blocking, locker};
#[cfg(feature = "relukko")]
pub use relukko_protocol::{Lock, format_timestamp};
/// Holds one or more resources while a test runs: acquired before the body,
/// released after it, whether it returns, fails or panics.
///
/// ```
/// # use relukko::locked as test; // doc tests drop #[test] fns; this keeps the examples compiled
/// use relukko::locked;
///
/// #[locked("hil-rig-3")]
/// #[test]
/// fn flashes_firmware() {
///     // hil-rig-3 is yours from here until the end of the body.
/// }
/// ```
///
/// **Put `#[locked]` above `#[test]`.** A test with a [`Lease`] parameter
/// needs that order: written below it, `#[test]` expands first and rejects
/// the parameter, and rustc says only "functions used as tests can not have
/// any arguments". `#[locked]` runs after that and sees a bare function, so
/// it cannot tell that order from a helper function; only when a
/// `#[should_panic]` or `#[ignore]` is left below it without a `#[test]` does
/// it say "put `#[locked]` above `#[test]`". Without a parameter either order
/// works; `#[tokio::test]` works on either side even with one (tokio keeps
/// the parameter and puts its test attribute last).
///
/// # Forms
///
/// `#[relukko::locked(...)]` goes next to `#[test]` or `#[tokio::test]`, in
/// either order (see the rule above for a `Lease` parameter), and works on sync
/// and `async fn`, with `#[should_panic]`, `#[ignore]`, tests returning
/// `Result`, and `rstest`.
///
/// | form | holds |
/// | --- | --- |
/// | `#[locked("a")]` | `a` |
/// | `#[locked("a", "b")]` | `a` and `b`, always taken in one sorted order (no deadlock between tests naming the same set in other orders) and released in reverse |
/// | `#[locked]` | a name derived from the test: `module::path::test_name` |
/// | `#[locked(any_of("rig-1", "rig-2", "rig-3"))]` | whichever member of the pool is free first (at least two members) |
///
/// ```
/// # use relukko::locked as test;
/// use relukko::locked;
///
/// #[test]
/// #[locked("staging-db", "licence-server")]
/// fn needs_two_things() {}
///
/// #[test]
/// #[locked]
/// fn excludes_only_itself() {}
///
/// #[test]
/// #[ignore = "needs the rig"]
/// #[locked("hil-rig-3")]
/// fn ignored_like_any_test() {}
///
/// #[test]
/// #[locked("hil-rig-3")]
/// fn returns_a_result() -> Result<(), std::num::ParseIntError> {
///     "42".parse::<u32>().map(drop) // `?` and `return` work as usual
/// }
/// ```
///
/// # Options
///
/// After the names:
///
/// | option | meaning | default |
/// | --- | --- | --- |
/// | `timeout = "10m"` | longest wait; then the test fails naming the holder | `RELUKKO_TIMEOUT`, else 10 minutes |
/// | `lease = "60s"` | how long the server keeps the lock without a heartbeat (heartbeat every third of it; at least 2 s) | `RELUKKO_LEASE`, else 60 s |
/// | `creator = "..."` | the text recorded as holder | `RELUKKO_CREATOR`, else `user@host test=<path> pid=<pid>` plus the CI job if the environment names one |
/// | `crate = path` | where the runtime crate is, for a renamed dependency | `relukko` |
///
/// Durations read like `"500ms"`, `"90s"`, `"10m"`, `"1h 30m"`, or a bare number
/// of seconds. Misuse (an empty name, an unknown option, a bad duration, a pool of
/// one, names after options, a `Lease` parameter with several plain names, ...)
/// is a compile error pointing at the offending token; a word other tools use for
/// an option (`ttl`, `wait`, `owner`, `pool`, ...) gets "did you mean".
///
/// ```
/// # use relukko::locked as test;
/// use relukko::locked;
///
/// #[test]
/// #[locked("hil-rig-3", timeout = "2m", lease = "30s", creator = "nightly HIL run")]
/// fn with_every_option() {}
/// ```
///
/// A renamed dependency (`my_relukko = { package = "relukko-test", ... }`)
/// names itself with `crate = path`; without it the expansion looks for
/// `::relukko` and the build fails with ``cannot find `relukko` in the crate
/// root``:
///
/// ```
/// # extern crate relukko as my_relukko;
/// # use my_relukko::locked as test;
/// #[test]
/// #[my_relukko::locked("hil-rig-3", crate = my_relukko)]
/// fn under_another_name() {}
/// ```
///
/// # The `Lease` parameter, and pools
///
/// The function may declare one parameter whose type is `Lease` (any path
/// ending in `Lease`, by value) to learn what it holds; the macro removes it and
/// passes the lease in. It is allowed with one name, no name, or `any_of`; with
/// several plain names it is a compile error. With a pool, it tells which member
/// the test got (put `#[locked]` above `#[test]`):
///
/// ```
/// # use relukko::locked as test;
/// use relukko::{Lease, locked};
///
/// #[locked(any_of("rig-1", "rig-2", "rig-3"))]
/// #[test]
/// fn flashes_on_any_rig(lease: Lease) {
///     println!("flashing on {}", lease.name());
/// }
/// ```
///
/// Other parameters pass through (for `rstest` fixtures and cases), except on a
/// function that visibly carries only `#[test]`-like attributes, where they are a
/// compile error.
///
/// # Async tests
///
/// With `#[tokio::test]` (either order) the waiting runs on the library's own
/// runtime, so a current-thread test runtime is fine. [`Lease::lost`] resolves
/// if the lock is taken away while the test runs:
///
/// ```
/// # // doc tests drop test fns: here #[tokio::test] means #[relukko::locked], to compile the body
/// # mod tokio { pub use ::tokio::*; pub use relukko::locked as test; }
/// use std::time::Duration;
///
/// use relukko::locked;
///
/// #[locked("device-farm-slot")]
/// #[tokio::test]
/// async fn runs_on_the_device_farm(lease: relukko::Lease) {
///     tokio::select! {
///         err = lease.lost() => panic!("{err}"),
///         _ = tokio::time::sleep(Duration::from_millis(10)) => {}
///     }
/// }
/// ```
///
/// # `should_panic`
///
/// ```
/// # use relukko::locked as test;
/// use relukko::locked;
///
/// #[test]
/// #[should_panic(expected = "boom")]
/// #[locked("hil-rig-3")]
/// fn a_panic_still_releases() {
///     panic!("boom");
/// }
/// ```
///
/// A `#[should_panic]` test passes only when its body panics **while the lock
/// is held**. If the lock cannot be taken (server down, bad setting, timeout) or
/// is lost while the body runs, the test fails even though a panic happened or
/// the body never ran: the runtime writes why to the test's output and returns
/// without panicking, so the harness reports it as `FAILED` ("note: test did not
/// panic as expected"). This holds whichever side of `#[locked]` the
/// `#[should_panic]` is written on, with or without `expected = "..."`.
///
/// # rstest
///
/// Both orders work with `#[case]` and fixtures:
///
/// - `#[locked]` above `#[rstest]` wraps the one shared function: a `Lease`
///   parameter works, and a derived name (plain `#[locked]`) is the same for
///   every case.
/// - `#[rstest]` above `#[locked]` locks each generated case function: a derived
///   name is then one per case, and declare no `Lease` parameter (rstest would
///   take it for a fixture and fail with "cannot find module or crate `lease`").
///
/// (rstest is not a dependency of this crate, so these forms are compiled by the
/// repository's end-to-end suite rather than here.)
///
/// # What happens when ...
///
/// - **the test panics or fails**: the lock is released before the test function
///   returns (the release is confirmed, with a bounded wait: under nextest the
///   process exits right after), then the failure propagates unchanged.
/// - **the wait times out**: the test fails with the resource, who holds it
///   (creator, since when, until when; or how long ago its lease expired, when
///   the holder died and the server has yet to free it) and how long it waited,
///   e.g. `relukko: test hold::waiter could not lock uc-held: timed out after
///   9.0s, held by alice@ci test=hold::holder pid=4242 since
///   2024-10-31T20:04:43Z until 2024-10-31T20:05:43Z`. The failure points at the
///   test's `#[locked]` line.
/// - **it waits**: while waiting more than two seconds, a line every few seconds
///   on stderr names the waiting test, what it waits for and who holds it; the
///   lines thin out as the wait grows (a third of the time waited so far apart,
///   at most 2 minutes). `cargo test` shows these lines at once (they bypass its
///   capture). `cargo nextest run` captures each test's stderr and shows it only
///   when the test fails; to see the waiting lines of passing tests too, run
///   `cargo nextest run --success-output immediate` (each test's output when it
///   ends) or `--success-output final` (at the end of the run). Not
///   `--no-capture`: it runs the tests one at a time, so nothing contends.
/// - **the lock is lost** (deleted by someone else, or heartbeats failing until
///   the lease ran out): the lease turns [`Uncertain`](crate::LeaseState::Uncertain),
///   then [`Lost`](crate::LeaseState::Lost), and a line on stderr says so when
///   the library notices: a deletion at the next heartbeat (every third of the
///   lease: within 20 s by default) or at the release (which first reads the
///   lock back, so a lock that vanished before the release is noticed even when
///   the `DELETE`'s own answer is lost), a server out of reach once the lease
///   has run out (`relukko: lost hil-rig-3 while test rig::flashes runs: deleted
///   by someone else: ...; the test will fail when its body ends`). The test
///   fails after its body with a message saying when and how it was lost (async
///   code can `lease.lost().await` to stop early).
/// - **the test asks for its own resource again** (a fixture or helper inside a
///   locked test calling `relukko::lock_blocking("hil-rig-3")` for the rig the
///   test holds, on the test's thread or in its async body): it fails at once
///   with [`Error::HeldByThisTest`] (`hil-rig-3 is
///   already held by this same test (rig::flashes): ...`), rather than waiting
///   for itself until the timeout. Locks are not re-entrant: use the test's
///   `Lease` instead. Other tests of the same process (other threads) asking for
///   it wait as usual.
/// - **the process is stopped by SIGTERM, SIGINT or SIGHUP** (nextest's
///   `terminate-after`, a cancelled CI job, Ctrl-C, a closed terminal): while a
///   lease is held or being acquired, the signal is caught, every held lock is
///   released and every create still in flight is cleaned up, in parallel and
///   within 2 s in all; then the default disposition is restored and the signal
///   raised again, so the process ends by that signal as it would have (exit
///   status, core dumps, nextest's report). Measured on a loaded 2-core machine
///   (`cargo test -p relukko-e2e --test e2e_signals -- --nocapture sig`, 3 runs,
///   our server): another client had the lock 14–63 ms after SIGTERM, 15–133 ms
///   after SIGINT, 16–102 ms after SIGHUP. The test's body may run on until the
///   process ends, while the next holder already starts: from the signal on its
///   `Lease` says `Lost` ("released ... because SIGTERM is ending the process").
///   A process still waiting for a lock leaves none behind, even a create whose
///   answer was lost and that reaches the server only after the signal (within
///   the 2 s). A second signal during the release ends the process at once.
///   Signals the program ignores stay ignored; a signal the program handles
///   itself (a handler installed before the first lock) is left to that
///   handler, which decides whether the process ends (`std::process::exit`
///   releases, see below). `RELUKKO_SIGNALS=off` turns this off. Not on Windows
///   yet: there a stopped process's locks expire as after SIGKILL.
/// - **the process calls `std::process::exit`** or returns from `main` with a
///   lease leaked or still held: an exit handler releases it (bounded to 3 s per
///   lock), so the lock is free as soon as the process is gone.
/// - **the process is killed** (SIGKILL, OOM): local backend: the kernel frees
///   the file lock at once. Relukko backend: nobody sends heartbeats, so the
///   lock expires one lease after the last one (60 s by default), and the server
///   removes it in its next clean-up pass after its grace period (3 minutes
///   upstream; configurable on relukko-server): about 4 minutes with the
///   defaults. On CI, where a runner may be killed, a shorter lease frees such
///   locks sooner: `RELUKKO_LEASE=15s` (heartbeats then go every 5 s).
///
/// # Waiting and nextest's `slow-timeout`
///
/// nextest's `slow-timeout` counts the whole test, and the wait for a lock is
/// part of it: a test that waits 5 minutes for a busy rig is "slow" after those
/// 5 minutes, and one with `terminate-after` is killed (SIGTERM, which releases
/// its locks, see above) before its body even starts. Give locked tests a budget
/// that covers the longest wait (`RELUKKO_TIMEOUT`, or `timeout = "..."`) plus
/// their run time, e.g. in `.config/nextest.toml`:
///
/// ```toml
/// [profile.default]
/// slow-timeout = { period = "60s", terminate-after = 15 }  # 15 min: waits + runs
///
/// [[profile.default.overrides]]
/// filter = "test(/hil/)"          # the tests that wait for shared rigs
/// slow-timeout = { period = "5m", terminate-after = 6 }    # 30 min
/// ```
///
/// and keep `RELUKKO_TIMEOUT` below that budget, so a test that cannot get its
/// resource fails with a message naming the holder rather than being terminated.
///
/// # A `#[locked]` function that is not a test
///
/// Without a test attribute, a `#[locked]` function is an ordinary function
/// that locks when called: a helper, or a test that never runs if nothing
/// calls it. The attribute cannot tell which: a macro sees only the function
/// it is written on, never the call sites elsewhere in the crate, so it
/// cannot know whether anything calls it (and forbidding it would break
/// helpers, and `#[test]` written above, which expands first). What you get
/// instead: write [`#[relukko::test]`](macro@test), which is the test
/// attribute too, so it cannot be forgotten; and rustc's `dead_code`
/// warning ("function `flashes` is never used") for a private `#[locked]`
/// function that nothing calls (the expansion keeps the function's own
/// tokens, so the warning is not held back as one inside a macro; a `pub`
/// function may be used by another crate and is not warned about).
///
/// The settings (`RELUKKO_TIMEOUT`, `RELUKKO_LEASE`, ...) and the backends are
/// described in the [crate documentation](crate#configuration).
pub use relukko_test_macros::locked;
/// A test that holds one or more resources while it runs: `#[test]` and
/// [`#[locked]`](macro@locked) in one attribute, so neither can be forgotten.
///
/// ```
/// # mod relukko { pub use ::relukko::*; pub use ::relukko::locked as test; } // doc tests drop test fns: compile the bodies
/// #[relukko::test("hil-rig-3")]
/// fn flashes_firmware() {
///     // hil-rig-3 is yours from here until the end of the body.
/// }
/// ```
///
/// It takes every argument `#[locked]` takes, with the same checks and
/// messages: several names, no name, `any_of(...)`, `timeout`, `lease`,
/// `creator`, `crate = path`, and a [`Lease`] parameter (the order of
/// attributes does not matter here: the test attribute is added by this one).
/// It works with `#[should_panic]`, `#[ignore]` and tests returning `Result`.
/// See [`locked`] for every form and option and what happens when a test
/// panics, times out or loses its lock.
///
/// ```
/// # mod relukko { pub use ::relukko::*; pub use ::relukko::locked as test; } // doc tests drop test fns: compile the bodies
/// use relukko::Lease;
///
/// #[relukko::test(any_of("rig-1", "rig-2"), timeout = "2m", creator = "nightly HIL run")]
/// fn flashes_on_any_rig(lease: Lease) {
///     println!("flashing on {}", lease.name());
/// }
///
/// #[relukko::test("hil-rig-3")]
/// #[should_panic(expected = "boom")]
/// fn a_panic_still_releases() {
///     panic!("boom");
/// }
/// ```
///
/// An `async fn` runs on a tokio current-thread runtime that the library
/// starts for the test, as `#[tokio::test]` would (tokio's timers, I/O and
/// tasks work in it; the waiting for the lock runs on the library's own
/// runtime):
///
/// ```
/// # mod relukko { pub use ::relukko::*; pub use ::relukko::locked as test; } // doc tests drop test fns: compile the bodies
/// #[relukko::test("device-farm-slot")]
/// async fn runs_on_the_device_farm(lease: relukko::Lease) {
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///     assert_eq!(lease.name(), "device-farm-slot");
/// }
/// ```
///
/// For another runtime or flavor (`#[tokio::test(flavor = "multi_thread")]`,
/// `async-std`), or `rstest`, write [`#[locked]`](macro@locked) with that
/// attribute instead. Another test attribute below `#[relukko::test]`
/// (`#[test]`, `#[tokio::test]`) is a compile error pointing at it: the
/// function would be two tests, or get two runtimes. A `#[test]` written
/// *above* it cannot be told: it expands first and takes itself off the
/// function, so the test is registered twice and runs twice (each run
/// locking as it should); leave it out.
pub use relukko_test_macros::test;
#[cfg(feature = "relukko")]
pub use settings::ClientSettings;
