//! A Relukko-compatible lock server (feature `server`): an in-process test
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
//! let server = relukko::server::TestServer::builder()
//!     .api_key("k")
//!     .grace(std::time::Duration::from_secs(1))
//!     .start();
//! println!("locks at {}/v1/locks/ with key {}", server.base_url(), server.api_key());
//! drop(server); // stops it; its locks are gone
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;

mod auth;
#[doc(hidden)]
pub mod cli;
mod config;
mod fixture;
mod metrics;
mod page;
mod reply;
mod routes;
mod state;
mod store;
mod ws;

pub use config::{DEFAULT_BODY_LIMIT, DEFAULT_CLEANUP_INTERVAL, DEFAULT_GRACE, ServerConfig};
pub use fixture::{TestServer, TestServerBuilder};

/// How long a shutdown waits for open requests before it cuts them.
const GRACEFUL_LIMIT: Duration = Duration::from_millis(1500);

/// Serves the Relukko API on `listener` until `shutdown` completes.
///
/// On shutdown, WebSocket clients get a close frame, idle connections are
/// closed, and requests in flight get 1.5 s to finish;
/// then `serve` returns, and whatever connection task is left runs only as long
/// as the runtime it was spawned on.
///
/// For a server in a test, [`TestServer`] does all of this for you; `serve`
/// is for embedding the server in a program of your own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use relukko::server::{ServerConfig, serve};
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// println!("listening on http://{}", listener.local_addr()?);
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(serve(listener, ServerConfig::new("s3cret"), async {
///     let _ = stopped.await;
/// }));
/// // ... serve requests until told to stop ...
/// let _ = stop.send(());
/// server.await.expect("server task")?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// If the database of [`ServerConfig::database`] cannot be opened (another
/// process has it open, or it is not a database), or if the server fails as a
/// whole; per-connection errors are logged and dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (state, stop_tx) = open(config)?;
    serve_state(listener, state, stop_tx, shutdown).await
}

/// The state of a server about to start: its locks (loaded from the database,
/// if configured) and the switch that stops it.
pub(crate) fn open(
    config: ServerConfig,
) -> std::io::Result<(state::AppState, watch::Sender<bool>)> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let state =
        state::AppState::open(config, stop_rx).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok((state, stop_tx))
}

/// [`serve`] with a state made by [`open`].
pub(crate) async fn serve_state(
    listener: tokio::net::TcpListener,
    state: state::AppState,
    stop_tx: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_rx = state.stop_signal();
    let cleanup = tokio::spawn(state::cleanup_loop(state.clone()));
    let app = routes::router(state).into_make_service_with_connect_info::<SocketAddr>();

    let mut graceful = stop_rx;
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|stopped| *stopped).await;
        })
        .into_future();
    tokio::pin!(server);

    let result = tokio::select! {
        result = &mut server => result,
        () = shutdown => {
            let _ = stop_tx.send(true);
            match tokio::time::timeout(GRACEFUL_LIMIT, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(target: "relukko::server", "requests still open after {GRACEFUL_LIMIT:?}; cutting them");
                    Ok(())
                }
            }
        }
    };
    // Tell WebSocket sessions even when the server ended on its own.
    let _ = stop_tx.send(true);
    cleanup.abort();
    result
}
