//! # relukko-test
//!
//! Lock scarce test resources (a hardware rig, a device-farm slot, a staging
//! database, a licence server) across threads, processes (`cargo nextest`) and
//! CI machines, with a central [Relukko] lock server, or on one machine with no
//! setup at all.
//!
//! [Relukko]: https://gitlab.com/relukko
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
mod env;
pub mod error;
mod lock;
mod runtime;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod backend;
mod config;
mod identity;
mod lease;
mod lock_options;
mod locker;
mod report;

pub use client::{
    AcquireOptions, Client, ClientBuilder, ClientSettings, Create, RetryPolicy, WaitProgress,
    creator_without_token,
};
pub use error::{Error, Result};
pub use lease::{Lease, LeaseState};
pub use lock::Lock;
pub use lock::format_timestamp;
pub use locker::{LockOptions, Locker, lock, lock_blocking, locker};
pub use relukko_test_macros::locked;

#[cfg(feature = "server")]
pub mod server;

// Every Rust block of README.md, compiled (and run) as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
