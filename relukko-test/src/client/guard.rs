//! The guard that keeps a dropped call from leaving a lock behind: lock-taking
//! work runs on the background runtime, and a lock its caller no longer waits
//! for is deleted there.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};

use super::shared::Shared;
use crate::error::Result;
use relukko_protocol::Lock;

/// Tells a background task whether its caller is still there.
pub(crate) struct Gone(watch::Receiver<()>);

impl Gone {
    pub(crate) fn is_gone(&self) -> bool {
        self.0.has_changed().is_err()
    }

    pub(crate) async fn wait(&mut self) {
        while self.0.changed().await.is_ok() {}
    }
}

/// A lock on its way to the caller: deleted in the background if it is dropped
/// before the caller took it (the caller went away).
struct InFlight {
    lock: Option<Lock>,
    inner: Arc<Shared>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            let inner = Arc::clone(&self.inner);
            crate::rt::spawn_cleanup(async move { inner.delete_orphan(&lock).await });
        }
    }
}

/// Runs a lock-taking future on the background runtime. If the caller's
/// future is dropped, the task is told (through [`Gone`]), finishes its
/// request in flight, and any lock it got is deleted.
pub(crate) async fn run_guarded<F, Fut>(inner: Arc<Shared>, f: F) -> Result<Option<Lock>>
where
    F: FnOnce(Arc<Shared>, Gone) -> Fut,
    Fut: Future<Output = Result<Option<Lock>>> + Send + 'static,
{
    let (alive, alive_rx) = watch::channel(());
    let (tx, rx) = oneshot::channel::<Result<InFlight>>();
    let fut = f(Arc::clone(&inner), Gone(alive_rx));
    crate::rt::spawn_cleanup(async move {
        let result = fut.await.map(|lock| InFlight { lock, inner });
        // If the caller is gone, the unsent value is dropped here, and with it
        // the lock (see InFlight's Drop).
        let _ = tx.send(result);
    });
    let result = rx.await;
    drop(alive);
    match result {
        Ok(r) => r.map(|mut f| f.lock.take()),
        // The task can only end unsent by panicking.
        Err(_) => panic!("relukko: a background lock task panicked"),
    }
}
