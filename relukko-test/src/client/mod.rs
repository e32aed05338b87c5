//! The async client of the Relukko lock server: every call of the protocol,
//! waiting for a lock with a deadline, retries, and TLS.
//!
//! Every request runs on the crate's own background runtime, so one [`Client`]
//! works from any runtime (many `#[tokio::test]`s one after another) and from
//! sync code, with no dead pooled connections.
//!
//! # Example
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> relukko::Result<()> {
//! use std::time::Duration;
//! use relukko::{AcquireOptions, Client, Create};
//!
//! // A throwaway server on 127.0.0.1 (package relukko-server); use your own URL instead.
//! let server = relukko_server::TestServer::start();
//! let client = Client::builder(server.base_url())
//!     .api_key(server.api_key())
//!     .creator("docs example")
//!     .build()?;
//! client.health().await?;
//!
//! // Create or fail: a taken name is an answer, not an error.
//! let Create::Acquired(lock) = client.create("hil-rig-3", None).await? else {
//!     panic!("someone holds hil-rig-3");
//! };
//! assert!(matches!(client.create("hil-rig-3", None).await?, Create::Taken));
//! assert_eq!(client.holder("hil-rig-3").await?.map(|l| l.id), Some(lock.id));
//!
//! // Extend it, then release it.
//! client.keep_alive_for(lock.id, Duration::from_secs(120)).await?;
//! client.delete(lock.id).await?;
//!
//! // Wait (here: not at all) until it is ours, at most 10 seconds.
//! let lock = client
//!     .acquire("hil-rig-3", AcquireOptions::new().timeout(Duration::from_secs(10)))
//!     .await?;
//! client.delete(lock.id).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Waiting
//!
//! [`Client::acquire`] tries to create the lock, and while it is taken waits
//! for a push from the server's WebSocket (a deletion of *that* name, after a
//! few random milliseconds so a crowd does not stampede) or for its own jittered
//! poll timer (capped by [`ClientBuilder::poll_max`]), whichever comes first.
//! The WebSocket is only a hint: waiting works with it disabled or blocked.
//!
//! # Cancel safety and the creator token
//!
//! Each `create`/`acquire` call sends `creator` as `"<creator> [rl:<token>]"`,
//! with a fresh random token (32 hex digits). If an answer is lost (timeout,
//! reset connection) the client looks the name up: a lock whose creator carries
//! its token is its own, and is adopted. A dropped `acquire` or `create` future
//! never leaves a lock behind: the request in flight finishes on the background
//! runtime and any lock it got is deleted. [`creator_without_token`] gives the
//! creator text for display.

mod acquire;
pub(crate) mod builder;
mod calls;
mod guard;
pub(crate) mod http;
pub(crate) mod key;
mod options;
pub(crate) mod pending;
mod redirect;
mod retry;
mod shared;
pub(crate) mod tls;
mod watcher;

pub use acquire::{AcquireOptions, WaitProgress};
pub use builder::ClientBuilder;
pub use calls::Create;
pub(crate) use calls::Deleted;
pub use relukko_protocol::token::creator_without_token;
pub use retry::RetryPolicy;
pub use shared::Client;
pub use watcher::WatchStats;
