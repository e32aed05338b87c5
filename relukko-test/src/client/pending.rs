//! Creates that may leave a lock on the server under one of our tokens: every
//! wait and create registers its token here for as long as it runs, so that a
//! signal that stops the process can find and delete what they made (see
//! `lease::signals`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::shared::Shared;
use crate::rt::unpoisoned;

/// One registered token.
struct Entry {
    key: u64,
    inner: Arc<Shared>,
    name: String,
    token: String,
    /// A POST with this token is on its way and may still be applied.
    sending: AtomicBool,
    /// A POST with this token went unanswered (timed out, connection lost):
    /// it may be applied any time later, stuck in a slow network.
    unsure: AtomicBool,
}

static PENDING: Mutex<Vec<Arc<Entry>>> = Mutex::new(Vec::new());
/// Set (by the signal handling) when a signal is ending the process: no new
/// create starts after that.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// From now on no create starts: a signal is ending the process, and its
/// clean-up is about to look at what creates made.
pub(crate) fn stop_creates() {
    STOPPING.store(true, Ordering::SeqCst);
}
static NEXT: AtomicU64 = AtomicU64::new(1);

fn pending() -> MutexGuard<'static, Vec<Arc<Entry>>> {
    unpoisoned(&PENDING)
}

/// Keeps a token registered while it lives.
pub(crate) struct Pending(Arc<Entry>);

impl Pending {
    pub(super) fn new(inner: &Arc<Shared>, name: &str, token: &str) -> Pending {
        let entry = Arc::new(Entry {
            key: NEXT.fetch_add(1, Ordering::Relaxed),
            inner: Arc::clone(inner),
            name: name.to_owned(),
            token: token.to_owned(),
            sending: AtomicBool::new(false),
            unsure: AtomicBool::new(false),
        });
        pending().push(Arc::clone(&entry));
        Pending(entry)
    }

    /// Registers the token of a lock this client made (the `[rl:...]` at
    /// the end of its creator), for as long as the lock is on its way to a
    /// lease.
    pub(crate) fn for_lock(
        client: &super::Client,
        lock: &relukko_protocol::Lock,
    ) -> Option<Pending> {
        let creator = lock.creator.as_deref()?;
        let token = creator.get(creator.rfind("[rl:")?..)?;
        (token.len() == 37 && token.ends_with(']'))
            .then(|| Pending::new(&client.inner, &lock.lock_name, token))
    }

    /// Marks a POST as on its way (`true`) or answered (`false`).
    pub(crate) fn sending(&self, on: bool) {
        self.0.sending.store(on, Ordering::SeqCst);
    }

    /// Ends a create: answered (`sending(false)`), and whether one of its
    /// attempts went unanswered and may still be applied later. Marked
    /// before the end, so a clean-up never sees neither.
    pub(crate) fn answered(&self, maybe_applied: bool) {
        if maybe_applied {
            self.0.unsure.store(true, Ordering::SeqCst);
        }
        self.sending(false);
    }

    /// Starts a create, unless a signal is ending the process: its clean-up
    /// may have looked already, and would miss what a new create made.
    /// Answers whether the create may go ahead.
    pub(crate) fn start_create(&self) -> bool {
        // Marked before asking: a clean-up that begins after the signal
        // then sees this create on its way, or the create is not sent.
        self.sending(true);
        if STOPPING.load(Ordering::SeqCst) {
            self.sending(false);
            return false;
        }
        true
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("name", &self.0.name)
            .finish_non_exhaustive()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let key = self.0.key;
        pending().retain(|e| e.key != key);
    }
}

/// Deletes every lock of ours that a registered token may have made, one
/// list per server; looks again while a POST is still on its way or one
/// went unanswered (it may be applied late), until `until`. Answers how
/// many locks it deleted.
pub(crate) async fn clean_up_all(until: Instant) -> usize {
    let entries: Vec<Arc<Entry>> = pending().clone();
    let mut servers: Vec<Vec<Arc<Entry>>> = Vec::new();
    for e in entries {
        match servers
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s[0].inner, &e.inner))
        {
            Some(s) => s.push(e),
            None => servers.push(vec![e]),
        }
    }
    join_all(servers.into_iter().map(|s| clean_up(s, until)))
        .await
        .into_iter()
        .sum()
}

async fn clean_up(entries: Vec<Arc<Entry>>, until: Instant) -> usize {
    let inner = Arc::clone(&entries[0].inner);
    if inner.options.skip {
        return 0;
    }
    let mut deleted = 0;
    let mut pause = Duration::from_millis(50);
    loop {
        // Read before the list: a create answered after this read was
        // applied before the list, and shows in it.
        let busy = entries.iter().any(|e| e.sending.load(Ordering::SeqCst))
            || entries.iter().any(|e| e.unsure.load(Ordering::SeqCst));
        let left = until.saturating_duration_since(Instant::now());
        if let Ok(Ok(locks)) = tokio::time::timeout(left, inner.list_locks()).await {
            let ours = locks.into_iter().filter(|l| {
                entries.iter().any(|e| {
                    l.lock_name == e.name
                        && l.creator.as_deref().is_some_and(|c| c.ends_with(&e.token))
                })
            });
            let deletes = ours.map(|l| {
                let inner = Arc::clone(&inner);
                async move {
                    let left = until.saturating_duration_since(Instant::now());
                    tokio::time::timeout(left, inner.release_lock(l.id)).await
                }
            });
            deleted += join_all(deletes)
                .await
                .into_iter()
                .filter(|r| matches!(r, Ok(Ok(super::calls::Deleted::Now))))
                .count();
        }
        // A POST still on its way, or unanswered, may yet make a lock: look again.
        if !busy || Instant::now() + pause >= until {
            return deleted;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(400));
    }
}
