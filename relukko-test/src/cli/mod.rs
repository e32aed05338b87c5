//! The `relukko` command line (feature `cli`, Unix): hold a lock while a
//! command runs, and see or free the locks others hold. It lives in the
//! library so it uses the very configuration reader, backends, waiting lines
//! and leases of `#[locked]`; the binary only calls [`main`].
//!
//! ```sh
//! relukko run hil-rig-3 -- cargo nextest run --profile hil
//! relukko who hil-rig-3
//! ```

mod args;
mod inspect;
mod run;
mod signals;

use std::process::ExitCode;

use clap::Parser;

use crate::error::Error;

/// Exit codes of `relukko` itself (`run` otherwise exits with CMD's status).
pub(crate) mod code {
    /// `who`: the name is free; `release`: nothing was released; `health`:
    /// the server cannot be reached or refuses the key.
    pub(crate) const NO: u8 = 1;
    /// A bad flag or argument (clap's convention).
    pub(crate) const USAGE: u8 = 2;
    /// `run`: the lock was lost while CMD ran (CMD was stopped, unless
    /// `--on-lost=warn`).
    pub(crate) const LOST: u8 = 120;
    /// `run`: the resources were not free within `--timeout`.
    pub(crate) const TIMEOUT: u8 = 124;
    /// relukko itself failed: a bad setting, the server unreachable, ...
    pub(crate) const FAILED: u8 = 125;
    /// `run`: CMD exists but cannot be run.
    pub(crate) const CANNOT_RUN: u8 = 126;
    /// `run`: CMD was not found.
    pub(crate) const NOT_FOUND: u8 = 127;
    /// `run`: CMD (or relukko, while waiting) ended by signal N: 128 + N.
    pub(crate) const SIGNAL_BASE: u8 = 128;
}

/// Entry point of the `relukko` binary. Exit codes: see `relukko --help`.
pub fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return ExitCode::from(if usage { code::USAGE } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("cannot start the tokio runtime: {e}"));
            return ExitCode::from(code::FAILED);
        }
    };
    let status = runtime.block_on(async move {
        match cli.command {
            args::Command::Run(a) => run::run(a).await,
            args::Command::List(a) => inspect::list(a).await,
            args::Command::Who(a) => inspect::who(a).await,
            args::Command::Release(a) => inspect::release(a).await,
            args::Command::Health => inspect::health().await,
        }
    });
    ExitCode::from(status)
}

/// One line on stderr, prefixed like the library's.
pub(crate) fn say(msg: &str) {
    crate::report::line(msg);
}

/// Reports `e` and answers the exit code for it.
pub(crate) fn failed(e: &Error) -> u8 {
    say(&e.to_string());
    match e {
        Error::WaitTimeout { .. } => code::TIMEOUT,
        _ => code::FAILED,
    }
}
