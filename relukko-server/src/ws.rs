//! `GET /ws/broadcast`: every change pushed to every connected client.
//!
//! Each client has its own bounded receiver of the one broadcast channel: the
//! server never waits for a client. A client that falls behind by more than the
//! channel holds skips ahead; one that does not take a message within
//! [`SEND_TIMEOUT`] is closed.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, broadcast, watch};

use super::metrics::{Connected, Socket};
use super::reply::ApiError;
use super::state::AppState;

/// The longest a client may take to accept one message before it is closed.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// A client's read buffer: it sends only pings, pongs and a close.
const READ_BUFFER: usize = 4 * 1024;
/// Events are gathered up to this size before a write (and a flush writes
/// the rest): a batch of events costs one system call, and an idle client
/// keeps at most about this much.
const WRITE_BUFFER: usize = 8 * 1024;
/// The largest message or frame a client may send.
const MAX_INCOMING: usize = 16 * 1024;
/// The most events written to one client in one go.
const MAX_BATCH: usize = 64;

/// The upgrade handler (behind the API-key check).
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    accept(state, ws, Socket::Api)
}

/// Answers an upgrade (already authorized) with a session of change events.
pub(crate) fn accept(
    state: AppState,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    kind: Socket,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::new(rejection.status(), rejection.body_text()).into_response();
        }
    };
    let Some(room) = state.websocket_room() else {
        // Our client takes a refused upgrade as "no WebSocket" and polls.
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the server has its most WebSocket clients ({}); poll /v1/locks/ instead",
                state.config().limits.max_websockets
            ),
        )
        .into_response();
    };
    // Subscribe before answering 101: a client sees every change made after its
    // upgrade succeeded.
    let events = state.subscribe();
    let stop = state.stop_signal();
    let metrics = state.clone();
    // Clients send nothing but pings and a close, so small buffers do: with
    // tungstenite's defaults (128 KiB to read) an idle client cost over 100 KiB.
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| async move {
            let connected = metrics.metrics().connected(kind);
            let session = session(socket, events, stop, (connected, room));
            match fan_out() {
                Some(runtime) => drop(runtime.spawn(session)),
                None => session.await,
            }
        })
}

/// The runtime every WebSocket session runs on: one thread of its own, so
/// that pushing a change to thousands of clients never queues the HTTP
/// requests (a holder's heartbeat, the next create) behind their writes.
/// While it is busy writing, further changes pile up and go out together,
/// one write per client for the lot. `None` if the thread cannot start; the
/// sessions then run where they were accepted.
fn fan_out() -> Option<&'static tokio::runtime::Handle> {
    static FAN_OUT: std::sync::OnceLock<Option<tokio::runtime::Handle>> =
        std::sync::OnceLock::new();
    FAN_OUT
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("relukko-server-websockets".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

async fn session(
    socket: WebSocket,
    mut events: broadcast::Receiver<Utf8Bytes>,
    mut stop: watch::Receiver<bool>,
    // Counted as connected, and its room taken, until the session ends.
    _connected: (Connected, OwnedSemaphorePermit),
) {
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => {
                let bye = Message::Close(Some(CloseFrame {
                    code: close_code::AWAY,
                    reason: Utf8Bytes::from_static("server shutting down"),
                }));
                let _ = tokio::time::timeout(Duration::from_millis(500), sink.send(bye)).await;
                break;
            }
            event = events.recv() => match event {
                Ok(text) => {
                    // Every event already waiting goes out in the same write:
                    // under a burst of changes, one system call per client
                    // and burst rather than per change.
                    let mut batch = vec![text];
                    while batch.len() < MAX_BATCH {
                        match events.try_recv() {
                            Ok(text) => batch.push(text),
                            Err(_) => break,
                        }
                    }
                    let send = async {
                        for text in batch {
                            sink.feed(Message::Text(text)).await?;
                        }
                        sink.flush().await
                    };
                    match tokio::time::timeout(SEND_TIMEOUT, send).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break,
                        Err(_) => {
                            tracing::info!(target: "relukko::server", "closing a WebSocket client that does not keep up");
                            break;
                        }
                    }
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(target: "relukko::server", "a WebSocket client fell behind; skipped {skipped} events");
                }
                Err(RecvError::Closed) => break,
            },
            incoming = stream.next() => match incoming {
                // Pings are answered by the WebSocket layer itself while we read.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Completes when the server stops (or its state is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, before any other await.
    let _ = stop.wait_for(|stopped| *stopped).await;
}
