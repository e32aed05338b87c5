//! The locks, kept in memory (and, with a database, written through to it
//! before a change is answered), and the stream of change events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use uuid::Uuid;

use super::clock::{now, truncate};
use super::config::ServerConfig;
use super::credentials::Tickets;
use super::metrics::Metrics;
use super::store::{Store, StoreError};
use relukko_protocol::Lock;

/// How many change events a WebSocket client may fall behind before it skips ahead.
const EVENT_CAPACITY: usize = 256;

/// What a broadcast event says happened to a lock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change {
    Created,
    Updated,
    Deleted,
}

impl Change {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Deleted => "deleted",
        }
    }
}

/// The text of a change event, as `/ws/broadcast` sends it:
/// `{"created": lock}`, `{"updated": lock}` or `{"deleted": lock}`.
pub(crate) fn event_text(change: Change, lock: &Lock) -> String {
    let mut event = serde_json::Map::new();
    // Serializing a Lock cannot fail: plain strings, a UUID and formattable UTC times.
    let value = serde_json::to_value(lock).unwrap_or_default();
    event.insert(change.key().to_owned(), value);
    serde_json::Value::Object(event).to_string()
}

/// Why a creation failed.
#[derive(Debug)]
pub(crate) enum CreateError {
    /// The name is held.
    Taken,
    /// The database refused the write; nothing changed.
    Store(StoreError),
}

/// The shared state of one server; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: ServerConfig,
    locks: Mutex<Locks>,
    events: broadcast::Sender<Utf8Bytes>,
    stop: watch::Receiver<bool>,
    /// Where every change is written before it is answered; `None`: memory only.
    store: Option<Store>,
    /// PostgreSQL, when it holds the locks: then it is the only source, and
    /// `locks` and `store` stay empty.
    #[cfg(feature = "postgres")]
    postgres: Option<crate::postgres::Pg>,
    metrics: Metrics,
    tickets: Tickets,
    /// One permit per WebSocket client the server may still take.
    websockets: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct Locks {
    by_id: HashMap<Uuid, Lock>,
    by_name: HashMap<String, Uuid>,
}

impl AppState {
    /// A state in memory only.
    pub(crate) fn new(config: ServerConfig, stop: watch::Receiver<bool>) -> Self {
        Self::with_store(config, stop, None, Vec::new())
    }

    /// A state over the configured database (PostgreSQL or a file), if any.
    pub(crate) async fn open_any(
        config: ServerConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, StoreError> {
        #[cfg(feature = "postgres")]
        if let Some(url) = config.postgres.clone() {
            let mut state = Self::new(config, stop.clone());
            let events = state.inner.events.clone();
            let pg = crate::postgres::Pg::open(&url, events, stop).await?;
            tracing::info!(target: "relukko::server", "database {}: locks in PostgreSQL", pg.shown());
            // Just made: no other reference to it exists yet.
            if let Some(shared) = Arc::get_mut(&mut state.inner) {
                shared.postgres = Some(pg);
            }
            return Ok(state);
        }
        #[cfg(not(feature = "postgres"))]
        if config.postgres.is_some() {
            return Err(StoreError(
                "this relukko-server was built without the `postgres` feature".to_owned(),
            ));
        }
        Self::open(config, stop)
    }

    /// A state over the configured database file (if any), with the locks stored in it.
    pub(crate) fn open(
        config: ServerConfig,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, StoreError> {
        let Some(path) = config.db.clone() else {
            return Ok(Self::new(config, stop));
        };
        let (store, stored) = Store::open(&path)?;
        let locks = if stored.len() == 1 { "lock" } else { "locks" };
        tracing::info!(target: "relukko::server", "database {}: {} {locks} loaded", path.display(), stored.len());
        Ok(Self::with_store(config, stop, Some(store), stored))
    }

    fn with_store(
        config: ServerConfig,
        stop: watch::Receiver<bool>,
        store: Option<Store>,
        stored: Vec<Lock>,
    ) -> Self {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let mut locks = Locks::default();
        for lock in stored {
            // Cannot happen (every change goes through one mutex); kept safe anyway.
            if locks.by_name.contains_key(&lock.lock_name) {
                tracing::warn!(target: "relukko::server", "database holds lock {:?} twice; ignoring {}", lock.lock_name, lock.id);
                continue;
            }
            locks.by_name.insert(lock.lock_name.clone(), lock.id);
            locks.by_id.insert(lock.id, lock);
        }
        let websockets = Arc::new(Semaphore::new(
            config.limits.max_websockets.min(Semaphore::MAX_PERMITS),
        ));
        AppState {
            inner: Arc::new(Shared {
                websockets,
                config,
                locks: Mutex::new(locks),
                events,
                stop,
                store,
                #[cfg(feature = "postgres")]
                postgres: None,
                metrics: Metrics::default(),
                tickets: Tickets::default(),
            }),
        }
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Room for one more WebSocket client, held while it is connected;
    /// `None` at the cap.
    pub(crate) fn websocket_room(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.websockets.clone().try_acquire_owned().ok()
    }

    /// The page's outstanding WebSocket tickets.
    pub(crate) fn tickets(&self) -> &Tickets {
        &self.inner.tickets
    }

    /// How many locks are held, and how many of those have expired by `now`.
    pub(crate) fn counts(&self, now: OffsetDateTime) -> (usize, usize) {
        let locks = self.locks();
        let expired = locks.by_id.values().filter(|l| l.expires_at < now).count();
        (locks.by_id.len(), expired)
    }

    /// PostgreSQL, when it holds the locks.
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(&self) -> Option<&crate::postgres::Pg> {
        self.inner.postgres.as_ref()
    }

    /// Whether changes are written to a database (and so may block on the disk).
    pub(crate) fn has_store(&self) -> bool {
        self.inner.store.is_some()
    }

    fn store_put(&self, lock: &Lock) -> Result<(), StoreError> {
        match &self.inner.store {
            Some(store) => store.put(lock),
            None => Ok(()),
        }
    }

    fn store_remove(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        match &self.inner.store {
            Some(store) => store.remove(ids),
            None => Ok(()),
        }
    }

    pub(crate) fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Fires when the server shuts down.
    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.inner.stop.clone()
    }

    /// A receiver of every change from now on, as ready-to-send JSON text.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.inner.events.subscribe()
    }

    fn locks(&self) -> MutexGuard<'_, Locks> {
        // A panic while holding the lock leaves the maps consistent (every
        // change is a few infallible map operations), so poisoning is ignored.
        self.inner.locks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends an event; called with the lock held, so events go out in the order
    /// of the changes. `broadcast::send` never waits for receivers.
    fn publish(&self, change: Change, lock: &Lock) {
        // No receivers is not an error here.
        let _ = self
            .inner
            .events
            .send(Utf8Bytes::from(event_text(change, lock)));
    }

    /// Creates a lock, atomically: of concurrent creations of one name exactly one wins.
    pub(crate) fn create(
        &self,
        lock_name: String,
        creator: Option<String>,
        ip: String,
    ) -> Result<Lock, CreateError> {
        let mut locks = self.locks();
        if locks.by_name.contains_key(&lock_name) {
            return Err(CreateError::Taken);
        }
        let now = now();
        let lock = Lock {
            id: Uuid::new_v4(),
            lock_name,
            creator,
            ip: Some(ip),
            expires_at: now + time::Duration::minutes(10),
            created_at: now,
            updated_at: now,
        };
        self.store_put(&lock).map_err(CreateError::Store)?;
        locks.by_name.insert(lock.lock_name.clone(), lock.id);
        locks.by_id.insert(lock.id, lock.clone());
        self.publish(Change::Created, &lock);
        Ok(lock)
    }

    /// All locks, oldest first.
    pub(crate) fn list(&self) -> Vec<Lock> {
        let mut all: Vec<Lock> = self.locks().by_id.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.lock_name).cmp(&(b.created_at, &b.lock_name)));
        all
    }

    pub(crate) fn get(&self, id: Uuid) -> Option<Lock> {
        self.locks().by_id.get(&id).cloned()
    }

    /// Applies `change` to the lock with `id` at time `now`, sets `updated_at`,
    /// and broadcasts the result. `None` if there is no such lock; the error of
    /// `change`, or of the database, leaves the lock untouched.
    pub(crate) fn update<E: From<StoreError>>(
        &self,
        id: Uuid,
        change: impl FnOnce(&Lock, OffsetDateTime) -> Result<Lock, E>,
    ) -> Option<Result<Lock, E>> {
        let mut locks = self.locks();
        let stored = locks.by_id.get_mut(&id)?;
        let now = now();
        let mut changed = match change(stored, now) {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        changed.updated_at = now;
        changed.expires_at = truncate(changed.expires_at);
        if let Err(e) = self.store_put(&changed) {
            return Some(Err(e.into()));
        }
        *stored = changed.clone();
        self.publish(Change::Updated, &changed);
        Some(Ok(changed))
    }

    /// Deletes the lock with `id`; `None` if there is none.
    pub(crate) fn delete(&self, id: Uuid) -> Option<Result<Lock, StoreError>> {
        let mut locks = self.locks();
        locks.by_id.get(&id)?;
        if let Err(e) = self.store_remove(&[id]) {
            return Some(Err(e));
        }
        let lock = locks.by_id.remove(&id)?;
        locks.by_name.remove(&lock.lock_name);
        self.publish(Change::Deleted, &lock);
        Some(Ok(lock))
    }

    /// The clean-up pass: removes every lock expired for longer than the grace
    /// period at `now`, broadcasting each deletion. Returns the removed locks.
    /// If the database refuses, nothing is removed and the next pass retries.
    pub(crate) fn remove_expired(&self, now: OffsetDateTime) -> Result<Vec<Lock>, StoreError> {
        let grace = time::Duration::try_from(self.config().grace).unwrap_or(time::Duration::MAX);
        let mut locks = self.locks();
        let dead: Vec<Uuid> = locks
            .by_id
            .values()
            .filter(|l| l.expires_at.checked_add(grace).is_some_and(|end| end < now))
            .map(|l| l.id)
            .collect();
        self.store_remove(&dead)?;
        let mut removed = Vec::with_capacity(dead.len());
        for id in dead {
            if let Some(lock) = locks.by_id.remove(&id) {
                locks.by_name.remove(&lock.lock_name);
                self.publish(Change::Deleted, &lock);
                removed.push(lock);
            }
        }
        Ok(removed)
    }
}

/// Runs the clean-up pass every `cleanup_interval`, forever.
pub(crate) async fn cleanup_loop(state: AppState) {
    let mut tick = tokio::time::interval(state.config().cleanup_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        #[cfg(feature = "postgres")]
        let result = match state.postgres() {
            Some(pg) => pg.remove_expired(state.config().grace).await,
            None => state.remove_expired(now()),
        };
        #[cfg(not(feature = "postgres"))]
        let result = state.remove_expired(now());
        state
            .metrics()
            .cleanup(result.as_ref().map(Vec::len).map_err(|_| ()));
        match result {
            Ok(removed) => {
                for lock in removed {
                    tracing::info!(target: "relukko::server", "clean-up removed expired lock {:?} ({})", lock.lock_name, lock.id);
                }
            }
            Err(e) => {
                tracing::warn!(target: "relukko::server", "clean-up failed, retrying next pass: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn state(grace: Duration) -> AppState {
        let (_tx, rx) = watch::channel(false);
        AppState::new(ServerConfig::new("k").grace(grace), rx)
    }

    #[test]
    fn a_name_is_taken_until_deleted() {
        let s = state(Duration::from_secs(1));
        let lock = s.create("a".into(), None, "127.0.0.1".into()).unwrap();
        assert!(s.create("a".into(), None, "127.0.0.1".into()).is_err());
        assert!(s.create("A".into(), None, "127.0.0.1".into()).is_ok());
        assert_eq!(s.delete(lock.id).unwrap().unwrap(), lock);
        assert!(s.create("a".into(), None, "127.0.0.1".into()).is_ok());
    }

    #[test]
    fn clean_up_waits_out_the_grace_and_broadcasts() {
        let s = state(Duration::from_secs(60));
        let mut events = s.subscribe();
        let lock = s.create("a".into(), None, "127.0.0.1".into()).unwrap();
        let end = lock.expires_at + time::Duration::seconds(60);
        assert!(
            s.remove_expired(end).unwrap().is_empty(),
            "exactly at the end of the grace it stays"
        );
        assert_eq!(
            s.remove_expired(end + time::Duration::microseconds(1))
                .unwrap(),
            vec![lock.clone()]
        );
        assert!(
            events
                .try_recv()
                .unwrap()
                .as_str()
                .starts_with(r#"{"created":"#)
        );
        let deleted = events.try_recv().unwrap();
        let deleted: serde_json::Value = serde_json::from_str(deleted.as_str()).unwrap();
        assert_eq!(deleted["deleted"]["id"], lock.id.to_string());
    }

    /// With a database, a restarted server knows every lock as last
    /// answered: a name taken before the restart stays taken (forgetting it
    /// would give the name to a second holder), an update is kept, and a
    /// deleted or expired lock stays gone.
    #[test]
    fn a_restart_over_the_database_keeps_every_answered_change() {
        let dir = relukko_e2e::temp::TempDir::new("state-db");
        let db = dir.path().join("locks.redb");
        let open = || {
            let (_tx, rx) = watch::channel(false);
            let config = ServerConfig::new("k")
                .grace(Duration::from_secs(1))
                .database(&db);
            AppState::open(config, rx).unwrap()
        };
        let s = open();
        assert!(s.has_store());
        let kept = s.create("kept".into(), None, "127.0.0.1".into()).unwrap();
        let deleted = s
            .create("deleted".into(), None, "127.0.0.1".into())
            .unwrap();
        let expired = s
            .create("expired".into(), None, "127.0.0.1".into())
            .unwrap();
        let later = kept.expires_at + time::Duration::minutes(5);
        let updated = s
            .update::<StoreError>(kept.id, |l, _| {
                Ok(Lock {
                    expires_at: later,
                    ..l.clone()
                })
            })
            .unwrap()
            .unwrap();
        s.delete(deleted.id).unwrap().unwrap();
        s.update::<StoreError>(expired.id, |l, now| {
            Ok(Lock {
                expires_at: now - time::Duration::minutes(1),
                ..l.clone()
            })
        })
        .unwrap()
        .unwrap();
        assert_eq!(s.remove_expired(now()).unwrap().len(), 1);
        drop(s);

        let s = open();
        assert_eq!(s.list(), vec![updated.clone()]);
        assert!(
            matches!(
                s.create("kept".into(), None, "127.0.0.1".into()),
                Err(CreateError::Taken)
            ),
            "a name held before the restart is still taken"
        );
        assert!(s.create("deleted".into(), None, "127.0.0.1".into()).is_ok());
        assert!(s.create("expired".into(), None, "127.0.0.1".into()).is_ok());
    }

    /// The `/metrics` gauges: every lock held, and those past their expiry
    /// (a lock expiring exactly now is not yet expired, as in the clean-up).
    #[test]
    fn counts_tell_expired_locks_at_the_microsecond() {
        let s = state(Duration::from_secs(60));
        let a = s.create("a".into(), None, "127.0.0.1".into()).unwrap();
        let b = s.create("b".into(), None, "127.0.0.1".into()).unwrap();
        s.update::<StoreError>(b.id, |l, _| {
            Ok(Lock {
                expires_at: a.expires_at + time::Duration::hours(1),
                ..l.clone()
            })
        })
        .unwrap()
        .unwrap();
        let us = time::Duration::microseconds(1);
        assert_eq!(s.counts(a.expires_at - us), (2, 0));
        assert_eq!(s.counts(a.expires_at), (2, 0), "expiring exactly now");
        assert_eq!(s.counts(a.expires_at + us), (2, 1));
    }
}
