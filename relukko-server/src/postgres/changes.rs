//! Every change, from whichever replica, pushed to this replica's WebSocket
//! clients: `LISTEN` on a connection of its own, re-subscribed after a
//! reconnect and followed by a full re-read, so a change made while this
//! replica was not listening still reaches its clients (as the event that
//! takes them from what they last heard to what is).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};
use uuid::Uuid;

use super::{CHANNEL, COLUMNS, lock_of};
use crate::state::{Change, event_text};
use relukko_protocol::Lock;

/// The longest pause between two attempts to listen again.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Starts the listener on the current runtime; it ends when the server stops.
pub(crate) fn spawn<T>(
    config: tokio_postgres::Config,
    tls: T,
    events: broadcast::Sender<Utf8Bytes>,
    mut stop: watch::Receiver<bool>,
    shown: String,
) where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    tokio::spawn(async move {
        let mut heard = Heard::default();
        let mut pause = Duration::from_millis(100);
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                ended = listen(&config, tls.clone(), &events, &mut heard) => {
                    match ended {
                        // It listened, then lost the connection: try again soon.
                        Ok(()) => pause = Duration::from_millis(100),
                        Err(e) => tracing::warn!(target: "relukko::server", "database {shown}: not listening for changes ({e}); retrying"),
                    }
                }
            }
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(MAX_PAUSE);
        }
    });
}

/// What this replica last told its clients, by lock id.
#[derive(Debug, Default)]
struct Heard(HashMap<Uuid, Lock>);

impl Heard {
    /// Notes an event as told.
    fn note(&mut self, payload: &str) {
        let Ok(serde_json::Value::Object(event)) = serde_json::from_str(payload) else {
            return;
        };
        for (kind, value) in event {
            let Ok(lock) = serde_json::from_value::<Lock>(value) else {
                continue;
            };
            if kind == Change::Deleted.key() {
                self.0.remove(&lock.id);
            } else {
                self.0.insert(lock.id, lock);
            }
        }
    }

    /// The events that take clients from what they heard to `now`.
    fn catch_up(&mut self, now: Vec<Lock>) -> Vec<String> {
        let mut events = Vec::new();
        let mut current: HashMap<Uuid, Lock> = now.into_iter().map(|l| (l.id, l)).collect();
        for (id, old) in &self.0 {
            if !current.contains_key(id) {
                events.push(event_text(Change::Deleted, old));
            }
        }
        for lock in current.values() {
            match self.0.get(&lock.id) {
                None => events.push(event_text(Change::Created, lock)),
                Some(old) if old != lock => events.push(event_text(Change::Updated, lock)),
                Some(_) => {}
            }
        }
        std::mem::swap(&mut self.0, &mut current);
        events
    }
}

/// The trigger's announcement (PostgreSQL's JSON: times with an offset, in
/// the session's time zone) as the event `/ws/broadcast` sends, in the
/// protocol's format.
fn normalized(payload: &str) -> Option<String> {
    let serde_json::Value::Object(event) = serde_json::from_str(payload).ok()? else {
        return None;
    };
    let (kind, value) = event.into_iter().next()?;
    let change = [Change::Created, Change::Updated, Change::Deleted]
        .into_iter()
        .find(|c| c.key() == kind)?;
    let mut lock: Lock = serde_json::from_value(value).ok()?;
    for t in [
        &mut lock.expires_at,
        &mut lock.created_at,
        &mut lock.updated_at,
    ] {
        *t = t.to_offset(time::UtcOffset::UTC);
    }
    Some(event_text(change, &lock))
}

/// Listens until the connection ends; `Err` if it could not start.
async fn listen<T>(
    config: &tokio_postgres::Config,
    tls: T,
    events: &broadcast::Sender<Utf8Bytes>,
    heard: &mut Heard,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, mut notifications) = mpsc::unbounded_channel();
    // The connection delivers notifications only while it is polled.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let started = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        // Listening now: re-read everything, so changes made while we were
        // not listening are told too. Notifications that arrive meanwhile
        // are told after it (a repeat at worst, never a loss).
        let rows = client
            .query(&format!("SELECT {COLUMNS} FROM relukko_locks"), &[])
            .await?;
        rows.iter().map(lock_of).collect::<Result<Vec<_>, _>>()
    };
    let now = match started.await {
        Ok(now) => now,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    for event in heard.catch_up(now) {
        let _ = events.send(Utf8Bytes::from(event));
    }
    while let Some(payload) = notifications.recv().await {
        let Some(event) = normalized(&payload) else {
            tracing::warn!(target: "relukko::server", "an announcement that is not a lock event: {payload:.200}");
            continue;
        };
        heard.note(&event);
        let _ = events.send(Utf8Bytes::from(event));
    }
    drop(client);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(name: &str, expires_s: i64) -> Lock {
        let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(expires_s);
        Lock {
            id: Uuid::new_v4(),
            lock_name: name.into(),
            creator: None,
            ip: None,
            expires_at: t,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn catching_up_tells_what_was_missed_and_nothing_else() {
        let mut heard = Heard::default();
        let (a, b, c) = (lock("a", 1), lock("b", 1), lock("c", 1));
        assert_eq!(heard.catch_up(vec![a.clone(), b.clone()]).len(), 2);
        assert!(heard.catch_up(vec![a.clone(), b.clone()]).is_empty());
        // Missed while away: b deleted, a updated, c created.
        let a2 = Lock {
            expires_at: a.expires_at + time::Duration::seconds(5),
            ..a.clone()
        };
        let mut told = heard.catch_up(vec![a2, c.clone()]);
        told.sort();
        assert_eq!(told.len(), 3, "{told:?}");
        assert!(
            told.iter()
                .any(|e| e.starts_with("{\"created\"") && e.contains("\"c\""))
        );
        assert!(
            told.iter()
                .any(|e| e.starts_with("{\"deleted\"") && e.contains("\"b\""))
        );
        assert!(
            told.iter()
                .any(|e| e.starts_with("{\"updated\"") && e.contains("\"a\""))
        );
    }

    #[test]
    fn announcements_become_the_protocols_events() {
        let payload = r#"{"deleted" : {"id" : "6f1c1a52-8d3b-4a55-9d36-2b1d1e7c6a11", "lock_name" : "rig", "creator" : null, "ip" : "127.0.0.1", "expires_at" : "2026-12-07T20:11:23.75523+01:00", "created_at" : "2026-12-07T19:01:23+00:00", "updated_at" : "2026-12-07T19:01:23.000001+00:00"}}"#;
        let event = normalized(payload).unwrap();
        assert!(event.starts_with(r#"{"deleted":{"#), "{event}");
        assert!(
            event.contains(r#""expires_at":"2026-12-07T19:11:23.75523Z""#),
            "{event}"
        );
        assert!(normalized(r#"{"renamed": {}}"#).is_none());
        assert!(normalized("not json").is_none());
    }

    #[test]
    fn what_is_heard_is_remembered() {
        let mut heard = Heard::default();
        let a = lock("a", 1);
        heard.note(&event_text(Change::Created, &a));
        assert!(heard.catch_up(vec![a.clone()]).is_empty());
        heard.note(&event_text(Change::Deleted, &a));
        assert!(heard.catch_up(vec![]).is_empty());
    }
}
