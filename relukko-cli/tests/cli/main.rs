//! The `relukko` binary end to end, on both backends: our server (the
//! in-process fixture) and a fresh local lock folder.
#![cfg(unix)]

mod inspect;
mod local_users;
mod nested;
mod run;
mod support;

/// The helpers shared with the server's suites.
use relukko_e2e::child as common;
