//! Support code shared by the end-to-end suites: fault-injecting proxies, TLS fixtures, child processes.

pub mod browser;
pub mod child;
pub mod history;
pub mod postgres;
pub mod proxy;
pub mod raw;
pub mod setup;
pub mod temp;
pub mod tls;

/// Every Rust block of the workspace's README.md, compiled and run as doc
/// tests. The README carries no hidden lines, so it reads cleanly on a forge;
/// `build.rs` copies it with the lines each block needs in front as hidden
/// (`# `) lines.
#[cfg(doctest)]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/README.md"))]
pub struct ReadmeDoctests;
