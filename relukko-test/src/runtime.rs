//! The library's own background runtime.
//!
//! Heartbeats, the WebSocket watcher and every HTTP request run here, not on
//! the caller's runtime: a test that blocks its thread or its own runtime
//! cannot starve a heartbeat, and connections pooled by the shared client do
//! not die with the short-lived runtime of one `#[tokio::test]`.

use std::future::Future;
use std::sync::LazyLock;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("relukko-bg")
        .enable_all()
        .build()
        .expect("relukko: cannot start its background runtime")
});

/// The background runtime's handle.
pub(crate) fn handle() -> &'static Handle {
    RUNTIME.handle()
}

/// Runs `fut` on the background runtime.
pub(crate) fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    RUNTIME.spawn(fut)
}

/// Runs `fut` on the background runtime and blocks this thread until it ends.
///
/// Unlike `Runtime::block_on` this works from anywhere, also from inside
/// another runtime (it then blocks that runtime's thread, as any blocking call
/// does).
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    RUNTIME.spawn(async move {
        let _ = tx.send(fut.await);
    });
    match rx.recv() {
        Ok(v) => v,
        // The task panicked (the sender was dropped unsent): surface it here.
        Err(_) => panic!("relukko: a background task panicked"),
    }
}

/// Runs `fut` on the background runtime and awaits it from the caller's
/// runtime, propagating a panic of the task.
pub(crate) async fn run<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match spawn(fut).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("relukko: background task cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn block_on_works_outside_and_inside_a_runtime() {
        assert_eq!(super::block_on(async { 1 + 1 }), 2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(async { super::block_on(async { 3 }) }), 3);
    }

    #[tokio::test]
    async fn run_survives_the_callers_runtime() {
        assert_eq!(super::run(async { 7 }).await, 7);
    }
}
