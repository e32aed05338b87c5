//! Running a server: its state opened (from the database, if configured), the
//! routes served, the clean-up pass beside them, and the graceful shutdown.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::config::ServerConfig;
use super::{listen, routes, state};

/// How long a shutdown waits for open requests before it cuts them.
const GRACEFUL_LIMIT: Duration = Duration::from_millis(1500);

/// Serves the Relukko API on `listener` until `shutdown` completes.
///
/// On shutdown, WebSocket clients get a close frame, idle connections are
/// closed, and requests in flight get 1.5 s to finish;
/// then `serve` returns, and whatever connection task is left runs only as long
/// as the runtime it was spawned on.
///
/// For a server in a test, [`TestServer`](struct.TestServer.html) does all of this for you; `serve`
/// is for embedding the server in a program of your own.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use relukko_server::{ServerConfig, serve};
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
    let (state, stop_tx) = open(config).await?;
    serve_state(listener, state, stop_tx, shutdown).await
}

/// The state of a server about to start: its locks (loaded from the database,
/// if configured) and the switch that stops it.
pub(crate) async fn open(
    mut config: ServerConfig,
) -> std::io::Result<(state::AppState, watch::Sender<bool>)> {
    config.limits = listen::within_open_files(config.limits);
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = state::AppState::open_any(config, stop_rx)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok((state, stop_tx))
}

/// [`serve`] with a state made by [`open`].
pub(crate) async fn serve_state(
    listener: tokio::net::TcpListener,
    state: state::AppState,
    stop_tx: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cleanup = tokio::spawn(state::cleanup_loop(state.clone()));
    let limits = state.config().limits;
    tracing::info!(
        target: "relukko::server",
        "serving at most {} connections and {} WebSocket clients",
        limits.max_connections,
        limits.max_websockets
    );
    let app = routes::router(state.clone());
    let server = listen::serve(listener, app, limits, state.stop_signal(), GRACEFUL_LIMIT);
    tokio::pin!(server);

    let result = tokio::select! {
        result = &mut server => result,
        () = shutdown => {
            let _ = stop_tx.send(true);
            server.await
        }
    };
    // Tell WebSocket sessions even when the server ended on its own.
    let _ = stop_tx.send(true);
    cleanup.abort();
    result
}
