//! # relukko-protocol
//!
//! What the parts of [relukko-test](https://docs.rs/relukko-test) agree on:
//! the test library's client, the `relukko-server` and the `relukko`
//! command line. It is small on purpose, so that each of them builds only
//! what it uses.
//!
//! - [`Lock`] and [`format_timestamp`]: the lock object of the Relukko
//!   protocol and its times, exactly as the server sends them (feature
//!   `lock`, on by default).
//! - [`token`]: the `[rl:<hex>]` token our client appends to a creator, so a
//!   lock whose answer was lost is recognised as its own (feature `lock`).
//! - [`vars`]: the name of every `RELUKKO_*` variable, and one reader whose
//!   errors name the variable.
//!
//! ```
//! let lock = relukko_protocol::Lock::dummy();
//! assert_eq!(lock.lock_name, "WE TRUST YOU");
//! assert_eq!(relukko_protocol::vars::LEASE, "RELUKKO_LEASE");
//! ```
#![warn(missing_docs)]

#[cfg(feature = "lock")]
mod lock;
#[cfg(feature = "lock")]
pub mod token;
pub mod vars;

#[cfg(feature = "lock")]
pub use lock::{Lock, format_timestamp};
