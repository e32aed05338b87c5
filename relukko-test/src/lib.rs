//! # relukko-test
//!
//! Lock scarce test resources (a hardware rig, a device-farm slot, a staging
//! database, a licence server) across threads, processes (`cargo nextest`) and
//! CI machines, with a central [Relukko] lock server, or on one machine with no
//! setup at all.
//!
//! [Relukko]: https://gitlab.com/relukko
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod error;
mod env;
mod lock;

pub use error::{Error, Result};
pub use lock::Lock;
pub use lock::format_timestamp;

#[cfg(feature = "server")]
pub mod server;
