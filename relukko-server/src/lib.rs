//! A Relukko-compatible lock server: an in-process test
//! fixture ([`TestServer`]), an embeddable [`serve`] function, and the
//! `relukko-server` binary.
//!
//! It follows the protocol of the upstream [Relukko](https://gitlab.com/relukko)
//! server: the same endpoints, status codes, JSON bodies, `X-API-Key`
//! authentication, expiry with a grace period and a periodic clean-up pass,
//! and the `/ws/broadcast` WebSocket.
//!
//! By default all state lives in memory, so a restart forgets every lock: that is
//! what a test fixture wants. With [`ServerConfig::database`] (the binary's
//! `--db PATH`), every change is written to a database file before it is
//! answered, and a restarted server carries on with the locks it had.
//!
//! Beyond the protocol, for the people who run it: a live page of the locks
//! at `GET /` (basic auth with [`ServerConfig::page_login`], else it asks for
//! the API key) and Prometheus metrics at `GET /metrics` (with the API key).
//!
//! Choices where the contract leaves room:
//! - Missing or wrong API key: `401`.
//! - An `{id}` in a path that is not a UUID: `404` (it cannot name a lock).
//! - A body that is not JSON, lacks a required field or has a wrong type:
//!   `422`; no `Content-Type: application/json`: `415`; bigger than the body
//!   limit (64 KiB by default): `413`. Unknown route: `404`; wrong method: `405`.
//!   Every error answer has the body `{"status": N, "message": "..."}`.
//! - `{"seconds": n}` of `keep_alive` and `add_to_expire_at` may be negative
//!   (the contract lets `PUT /v1/locks/{id}` set any time, past or future, too);
//!   a resulting `expires_at` outside what RFC 3339 can write (years 0000 to
//!   9999, in UTC) is `422`, and nothing is changed.
//! - `PUT /v1/locks/{id}` with both fields `null` changes only `updated_at`.
//! - The clean-up pass removes a lock once `expires_at + grace < now`; until
//!   then a `POST` of its name answers `409`.
//!
//! ```
//! # fn main() {
//! let server = relukko_server::TestServer::builder()
//!     .api_key("k")
//!     .grace(std::time::Duration::from_secs(1))
//!     .start();
//! println!("locks at {}/v1/locks/ with key {}", server.base_url(), server.api_key());
//! drop(server); // stops it; its locks are gone
//! # }
//! ```

#![warn(missing_docs)]

mod auth;
#[doc(hidden)]
pub mod cli;
mod clock;
mod config;
mod credentials;
mod fixture;
mod listen;
mod metrics;
mod page;
#[cfg(feature = "postgres")]
mod postgres;
mod reply;
mod routes;
mod run;
mod state;
mod store;
mod ws;

pub use config::{
    DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_CLEANUP_INTERVAL, DEFAULT_GRACE,
    DEFAULT_HEAD_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_WEBSOCKETS,
    ServerConfig,
};
pub use fixture::{TestServer, TestServerBuilder};
pub use run::serve;
