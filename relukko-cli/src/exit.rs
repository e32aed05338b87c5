//! How `relukko` ends: its own exit codes, and the stderr line that says why.

use relukko::Error;

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

/// One line on stderr, prefixed like the library's.
pub(crate) fn say(msg: &str) {
    relukko::__cli::stderr::line(msg);
}

/// Reports `e` and answers the exit code for it.
pub(crate) fn failed(e: &Error) -> u8 {
    say(&e.to_string());
    match e {
        Error::WaitTimeout { .. } => code::TIMEOUT,
        _ => code::FAILED,
    }
}
