//! # relukko-test
//!
//! Lock scarce test resources (a hardware rig, a device-farm slot, a staging
//! database, a licence server) across threads, processes (`cargo nextest`) and
//! CI machines, with a central [Relukko] lock server, or on one machine with no
//! setup at all.
//!
//! ```toml
//! [dev-dependencies]
//! relukko = { package = "relukko-test", version = "0.1" }
//! ```
//!
//! ## The attribute
//!
//! [`#[locked]`](locked) holds its resources from before the test body runs
//! until after it ends, whether it returns, fails or panics:
//!
//! ```
//! # use relukko::locked as test; // doc tests drop #[test] fns; this keeps the example compiled
//! #[test]
//! #[relukko::locked("hil-rig-3", timeout = "10m")]
//! fn flashes_firmware() {
//!     // Only one test anywhere holds hil-rig-3 now.
//! }
//! ```
//!
//! It takes several names (`#[locked("a", "b")]`, acquired in one canonical
//! order), no name (derived from the test's path), a pool
//! (`#[locked(any_of("rig-1", "rig-2"))]`, with an optional [`Lease`]
//! parameter telling which one the test got), and the options `timeout`,
//! `lease`, `creator` and `crate`. It works with `#[tokio::test]`,
//! `#[should_panic]`, tests returning `Result`, and `rstest`.
//!
//! ## Without the macro
//!
//! [`lock_blocking`] and [`lock`] return a [`Lease`] for fixtures and helpers;
//! [`LockOptions`] says what to lock and how long to wait, and a [`Locker`]
//! picks a backend explicitly:
//!
//! ```
//! use std::time::Duration;
//! use relukko::LockOptions;
//!
//! # fn main() -> relukko::Result<()> {
//! // `relukko::lock_blocking(..)` uses the process-wide locker configured from
//! // the environment; here a local one in a folder of our own.
//! let dir = std::env::temp_dir().join(format!("relukko-crate-doc-{}", std::process::id()));
//! let locker = relukko::Locker::local(&dir);
//! let lease = locker.lock_blocking(LockOptions::new("staging-db").timeout(Duration::from_secs(30)))?;
//! assert_eq!(lease.name(), "staging-db");
//! drop(lease); // released (a Lease also has an explicit release that reports errors)
//! # let _ = std::fs::remove_dir_all(dir);
//! # Ok(()) }
//! ```
//!
//! ## Backends
//!
//! Chosen from the environment on first use: `RELUKKO_TRUST_ME_IT_IS_LOCKED`
//! skips locking (as upstream); `RELUKKO_URL` selects a Relukko server (the
//! lock is kept alive by a heartbeat on the library's own runtime, waiters are
//! woken by the server's WebSocket and also poll); otherwise lock files in
//! one folder of this machine (`RELUKKO_LOCAL_DIR`), which serialize `cargo
//! test` threads and `cargo nextest` processes with no setup.
//!
//! ## Modules and features
//!
//! - feature `relukko` (on by default): the Relukko server backend
//!   (`RELUKKO_URL`) and [`client`], the async `Client` for the whole Relukko
//!   protocol: the HTTP client, the WebSocket and their dependencies. With
//!   `default-features = false` only the local backend (and the skip switch)
//!   is built, for the shortest build; `RELUKKO_URL` is then an error that
//!   names this feature, never a silent fall-back to local files.
//! - `server` (feature `server`, off by default): a Relukko-compatible server,
//!   as an in-process test fixture and as the `relukko-server` binary.
//! - `cli` (feature `cli`, off by default; Unix): the `relukko` command line,
//!   which holds locks while a command runs and shows or frees the locks
//!   others hold (`cargo install relukko-test --features cli`).
//! - feature `tls` (on by default; implies `relukko`): HTTPS and WSS through
//!   rustls, with extra CA bundles.
//!
//! The README has the full tables of attribute forms, options and
//! environment variables.
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
        Spec, run_async, run_async_should_panic, run_sync, run_sync_should_panic,
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
    pub use crate::settings::{BackendKind, Settings, from_env};
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
    AcquireOptions, Client, ClientBuilder, ClientSettings, Create, RetryPolicy, WaitProgress,
    creator_without_token,
};
pub use error::{Error, Result};
pub use lease::Lease;
pub use locker::{LockOptions, Locker, lock, lock_blocking, locker};
#[cfg(feature = "relukko")]
pub use relukko_protocol::{Lock, format_timestamp};
pub use relukko_test_macros::locked;
