//! The `relukko` command line (Unix): hold a lock while a
//! command runs, and see or free the locks others hold. It uses the very configuration reader, backends, waiting lines
//! and leases of `#[locked]`; the binary only calls [`main`].
//!
//! ```sh
//! relukko run hil-rig-3 -- cargo nextest run --profile hil
//! relukko who hil-rig-3
//! ```
#![cfg(unix)]

mod args;
mod exit;
mod inspect;
mod run;
mod signals;

use std::process::ExitCode;

use exit::{code, say};

/// Entry point of the `relukko` binary. Exit codes: see `relukko --help`.
pub fn main() -> ExitCode {
    let cli = match args::parse_from(std::env::args_os()) {
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
