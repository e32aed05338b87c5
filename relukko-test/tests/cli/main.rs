//! The `relukko` binary end to end, on both backends: our server (the
//! in-process fixture) and a fresh local lock folder.
#![cfg(unix)]

mod inspect;
mod run;
mod support;

/// The helpers the runtime crate's integration tests share.
#[path = "../support/mod.rs"]
mod common;
