//! The Relukko backend: locks on a Relukko server through [`Client`], kept
//! alive by a heartbeat on the library's background runtime.
//!
//! The heartbeat extends the lock by the lease every third of the lease and
//! retries a failed extension with backoff until a local deadline: the lock's
//! expiry as last confirmed by the server, minus a safety margin, measured on
//! the monotonic clock (`Instant`) so wall-clock jumps cannot fool it. A 404
//! means someone deleted the lock; a passed deadline means it may have
//! expired. Either way the lease is lost.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Released, Request};
use crate::backend::state::StatusTx;
use crate::client::pending::Pending;
use crate::client::{AcquireOptions, Client, Create, Deleted, WaitProgress};
use crate::error::{Error, Result};
use crate::report::progress::{PROGRESS_AFTER, PROGRESS_EVERY, Progress};
use crate::report::{self, stderr};
use crate::rt::unpoisoned;
use relukko_protocol::Lock;

/// The first pause after a failed heartbeat.
const RETRY_FIRST: Duration = Duration::from_millis(200);
/// The longest the background deletion of an abandoned lock may take.
const ABANDONED_BOUND: Duration = Duration::from_secs(30);

/// A Relukko server, through one shared client.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    client: Client,
}

/// A lock held on the server.
#[derive(Debug)]
pub(crate) struct RemoteHeld {
    client: Client,
    lock: Lock,
    /// Past this instant the lock may have expired on the server.
    deadline: Instant,
    heartbeat: Option<JoinHandle<()>>,
    /// Its token stays registered: a signal that stops the process deletes it
    /// even before it is part of a lease.
    _pending: Option<Pending>,
    /// Not released yet: dropping it deletes the lock (in the background), so
    /// a lock abandoned on its way to a lease (a dropped `lock` future) does
    /// not block everyone until it expires.
    armed: bool,
}

impl Remote {
    pub(crate) fn new(client: Client) -> Remote {
        Remote { client }
    }

    /// The server's base URL.
    pub(crate) fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// Whether lock `id` on the server is still the lock on `name` that a
    /// create carrying `token` made: what shows that a hold `relukko run`
    /// told its command of is alive. Answers why not. Runs on the
    /// background runtime.
    pub(crate) async fn check_hold(
        &self,
        name: &str,
        id: &str,
        token: &str,
    ) -> std::result::Result<(), String> {
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| format!("{id:?} is no lock id"))?;
        match self.client.get(uuid).await {
            Ok(lock) if relukko_protocol::token::is_own(&lock, name, token) => Ok(()),
            Ok(lock) => Err(format!(
                "lock {id} on the server is another one now (on {}, by {})",
                lock.lock_name,
                report::holder(&lock)
            )),
            Err(e) => Err(format!("the server does not confirm lock {id}: {e}")),
        }
    }

    /// Waits until one of `names` is ours; answers its index. Runs on the
    /// background runtime. Fails at once for a while after the server was
    /// found unreachable ([`unreachable`](super::unreachable)).
    pub(crate) async fn acquire_any(
        &self,
        names: &[String],
        wait: &Request,
    ) -> Result<(usize, RemoteHeld)> {
        let base = self.base_url().to_owned();
        if let Some(e) = super::unreachable::recent(&base, std::time::Instant::now()) {
            return Err(e);
        }
        let result = self.wait_for_any(names, wait).await;
        super::unreachable::note(&base, &result, std::time::Instant::now());
        result
    }

    async fn wait_for_any(&self, names: &[String], wait: &Request) -> Result<(usize, RemoteHeld)> {
        let start = Instant::now();
        let deadline = start + wait.timeout;
        if let [name] = names {
            // The client reports every PROGRESS_EVERY; this says when a line is due.
            let gate = Mutex::new(Progress::new(
                start.into_std(),
                deadline.into_std(),
                wait.test.clone(),
            ));
            let opts = AcquireOptions::new()
                .timeout(wait.timeout)
                .creator(wait.creator.clone())
                .progress_after(PROGRESS_AFTER)
                .progress_every(PROGRESS_EVERY)
                .on_progress(move |p: &WaitProgress| {
                    let mut gate = unpoisoned(&gate);
                    if !gate.due(std::time::Instant::now()) {
                        return;
                    }
                    gate.print(&p.resource, &p.holder_text());
                });
            let lock = self.client.acquire(name, opts).await.map_err(rounded)?;
            return Ok((0, self.held(lock, wait.lease).await));
        }

        // A pool: take any free one at once, else race one wait per name. The
        // client deletes what a dropped wait got, so the losers leave nothing.
        for (i, name) in names.iter().enumerate() {
            let created = self
                .client
                .create_until(name, Some(&wait.creator), Some(deadline))
                .await?;
            if let Create::Acquired(lock) = created {
                return Ok((i, self.held(lock, wait.lease).await));
            }
        }
        let mut waits: FuturesUnordered<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let opts = AcquireOptions::new()
                    .timeout(deadline.saturating_duration_since(Instant::now()))
                    .creator(wait.creator.clone());
                let client = self.client.clone();
                let name = name.clone();
                async move { (i, client.acquire(&name, opts).await) }
            })
            .collect();
        let mut progress = Progress::new(start.into_std(), deadline.into_std(), wait.test.clone());
        loop {
            tokio::select! {
                next = waits.next() => match next {
                    Some((i, Ok(lock))) => return Ok((i, self.held(lock, wait.lease).await)),
                    Some((_, Err(Error::WaitTimeout { .. }))) => {}
                    Some((_, Err(e))) => return Err(e),
                    None => {
                        return Err(Error::WaitTimeout {
                            resource: report::what(names),
                            waited: report::round_ms(start.elapsed()),
                            holder: Some(self.holders(names, deadline).await),
                        });
                    }
                },
                _ = tokio::time::sleep_until(progress.next_due().into()) => {
                    if progress.due(std::time::Instant::now()) {
                        progress.print(&report::what(names), &self.holders(names, deadline).await);
                    }
                }
            }
        }
    }

    /// Takes over a new lock and shortens its life on the server from the
    /// default 10 minutes to the lease before the holder's body runs, so a
    /// holder killed at any moment frees it once the lease passes. If that
    /// fails, the heartbeat retries it.
    async fn held(&self, lock: Lock, lease: Duration) -> RemoteHeld {
        let life: Duration = (lock.expires_at - lock.created_at)
            .try_into()
            .unwrap_or(lease);
        let sent = Instant::now();
        // Made before the first await: if this future is dropped, the lock is
        // deleted rather than left behind.
        let mut held = RemoteHeld {
            client: self.client.clone(),
            // An unanswered keep-alive may still have reached the server and
            // cut the lock's life to the lease: count on the shorter of both.
            deadline: sent + margin_off(life.min(lease), lease),
            _pending: Pending::for_lock(&self.client, &lock),
            lock,
            heartbeat: None,
            armed: true,
        };
        let bound = lease.min(Duration::from_secs(5));
        if let Ok(Ok(extended)) =
            tokio::time::timeout(bound, self.client.keep_alive_for(held.lock.id, lease)).await
        {
            held.lock = extended;
            held.deadline = sent + margin_off(lease, lease);
        }
        held
    }

    /// Who holds each of `names` (for several, `name: holder; ...`), asked
    /// in parallel with one short bound: it only decorates a message, and
    /// must not stretch a wait past its deadline by more than one request.
    async fn holders(&self, names: &[String], deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        let bound = self
            .client
            .request_timeout()
            .min(Duration::from_secs(2))
            .min(left.max(Duration::from_millis(250)));
        let asks = names.iter().map(|name| async move {
            match tokio::time::timeout(bound, self.client.holder(name)).await {
                Ok(Ok(Some(lock))) => report::holder(&lock),
                Ok(Ok(None)) => "nobody (just released)".to_owned(),
                Ok(Err(e)) => format!("unknown ({e})"),
                Err(_) => format!("unknown (no answer within {})", report::duration(bound)),
            }
        });
        report::holders(names, futures_util::future::join_all(asks).await)
    }
}

/// Timeouts with the waited time in whole milliseconds, for readable messages.
fn rounded(e: Error) -> Error {
    match e {
        Error::WaitTimeout {
            resource,
            waited,
            holder,
        } => Error::WaitTimeout {
            resource,
            waited: report::round_ms(waited),
            holder,
        },
        e => e,
    }
}

impl RemoteHeld {
    /// What identifies the held lock: its id, and the creator token of the
    /// create that made it.
    pub(crate) fn identity(&self) -> Option<(String, &str)> {
        let creator = self.lock.creator.as_deref()?;
        let token = &creator[creator.rfind("[rl:")?..];
        Some((self.lock.id.to_string(), token))
    }

    /// Starts the heartbeat: every third of the lease.
    pub(crate) fn start_heartbeat(&mut self, resource: &str, lease: Duration, status: StatusTx) {
        let beat = Heartbeat {
            client: self.client.clone(),
            lock: self.lock.clone(),
            resource: resource.to_owned(),
            lease,
            status,
            deadline: self.deadline,
        };
        self.heartbeat = Some(crate::rt::spawn(beat.run()));
    }

    fn stop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    /// Deletes the lock, waiting at most `bound`: the one release of this
    /// backend. Runs on the background runtime.
    pub(crate) async fn release(mut self, bound: Duration) -> Result<Released> {
        self.stop();
        self.armed = false;
        let released = release(self.client.clone(), self.lock.id, bound).await;
        let key = self.client.courtesy_key(&self.lock.lock_name);
        note_release(&key, &released);
        released
    }

    /// The error of a blocking release that got no answer within `bound`.
    pub(crate) fn release_timed_out(&self, bound: Duration) -> Error {
        Error::Timeout {
            what: format!("release of {}", self.lock.lock_name),
            url: self.client.base_url().to_owned(),
            after: bound,
        }
    }
}

/// Tells [`crate::courtesy`] that this process let the lock of `key` go.
fn note_release(key: &str, released: &Result<Released>) {
    if released.is_ok() {
        crate::courtesy::released(key);
    }
}

impl Drop for RemoteHeld {
    fn drop(&mut self) {
        self.stop();
        if self.armed {
            let (client, lock) = (self.client.clone(), self.lock.clone());
            crate::rt::spawn_cleanup(async move {
                if let Err(e) = delete(client, lock.id, ABANDONED_BOUND).await {
                    stderr::line(&format!(
                        "could not release {} (abandoned before use): {e}",
                        lock.lock_name
                    ));
                }
            });
        }
    }
}

/// Releases the lock `id` when its holder is done with it, within `bound`.
///
/// It first reads the lock back (a `GET`, retried like any call): an answer
/// proves the lock was still ours after the holder's body ended (while a lock
/// exists, the server answers 409 to anyone else who asks for its name), so
/// the holder held it to the end whatever the `DELETE` then meets. Without
/// that proof, a `DELETE` whose answer was lost and whose retry met a 404
/// cannot tell our own deletion from a lock that was already gone (a server
/// restart, an administrator's delete, an expiry while this process was
/// paused) and that someone else may hold now: the holder must hear its lock
/// was lost. Found by `cargo relukko-torture` (a server restart during a
/// hold, then the release's answer lost): two holders both reported a clean
/// hold.
async fn release(client: Client, id: uuid::Uuid, bound: Duration) -> Result<Released> {
    if client.is_skip() {
        return Ok(Released::Freed);
    }
    let work = async {
        let proven = match client.read_back(id).await {
            Ok(_) => true,
            Err(Error::NotFound { .. }) => return Ok(Released::AlreadyGone),
            // Not answered: the DELETE's own answer decides.
            Err(_) => false,
        };
        Ok(released(client.release_lock(id).await?, proven))
    };
    match tokio::time::timeout(bound, work).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            what: format!("release of lock {id}"),
            url: client.base_url().to_owned(),
            after: bound,
        }),
    }
}

/// What a release found: the lock was ours to the end if the DELETE deleted
/// it, or if it was `proven` ours after the body ended (see [`release`]).
fn released(deleted: Deleted, proven: bool) -> Released {
    match deleted {
        Deleted::Now => Released::Freed,
        Deleted::Before | Deleted::Unsure if proven => Released::Freed,
        Deleted::Before | Deleted::Unsure => Released::AlreadyGone,
    }
}

/// Deletes the lock `id` nobody will use (its holder went away before using
/// it), within `bound`.
async fn delete(client: Client, id: uuid::Uuid, bound: Duration) -> Result<()> {
    if client.is_skip() {
        return Ok(());
    }
    // Deleted by id, never by name: a lock of the same name made by someone
    // else after ours expired is not touched.
    match tokio::time::timeout(bound, client.release_lock(id)).await {
        Ok(r) => r.map(drop),
        Err(_) => Err(Error::Timeout {
            what: format!("DELETE /v1/locks/{id}"),
            url: client.base_url().to_owned(),
            after: bound,
        }),
    }
}

/// The pause after a failed heartbeat that followed a pause of `pause`:
/// doubling, up to half a beat of `every` (a long outage is still tried
/// twice a beat, so the lease is kept soon after the network is back).
fn next_retry_pause(pause: Duration, every: Duration) -> Duration {
    (pause * 2).min((every / 2).max(RETRY_FIRST))
}

/// `life` minus the safety margin for a lease of `lease`.
fn margin_off(life: Duration, lease: Duration) -> Duration {
    let margin = (lease / 10).clamp(Duration::from_millis(100), Duration::from_secs(5));
    life.saturating_sub(margin)
}

struct Heartbeat {
    client: Client,
    lock: Lock,
    resource: String,
    lease: Duration,
    status: StatusTx,
    /// Past this instant the lock may have expired on the server.
    deadline: Instant,
}

impl Heartbeat {
    async fn run(mut self) {
        let every = self.lease / 3;
        let mut next = Instant::now() + every;
        loop {
            tokio::time::sleep_until(next).await;
            if !self.beat(every).await {
                return;
            }
            next = Instant::now() + every;
        }
    }

    /// One keep-alive, retried until it succeeds (true) or the lease is lost
    /// (false).
    async fn beat(&mut self, every: Duration) -> bool {
        let mut pause = RETRY_FIRST;
        let mut failing_since = None;
        loop {
            let sent = Instant::now();
            let left = self.deadline.saturating_duration_since(sent);
            if left.is_zero() {
                let since = failing_since.get_or_insert_with(report::now);
                let last = self.status.get().reason.unwrap_or_default();
                self.status.lost(format!(
                    "not kept alive: heartbeats failed from {since} until its last confirmed expiry \
                     (minus a safety margin) passed at {}, {} after it was acquired; last error: {last}",
                    report::now(),
                    report::duration(self.lock_age()),
                ));
                return false;
            }
            let attempt = left.min(every.max(Duration::from_secs(1)));
            match tokio::time::timeout(
                attempt,
                self.client.keep_alive_for(self.lock.id, self.lease),
            )
            .await
            {
                Ok(Ok(_)) => {
                    self.deadline = sent + margin_off(self.lease, self.lease);
                    self.status.held();
                    return true;
                }
                Ok(Err(Error::NotFound { .. })) => {
                    self.status.lost(format!(
                        "deleted by someone else: the server answered 404 (no such lock) to a heartbeat at {}, \
                         {} after it was acquired",
                        report::now(),
                        report::duration(self.lock_age()),
                    ));
                    return false;
                }
                Ok(Err(e)) => {
                    failing_since.get_or_insert_with(report::now);
                    self.status
                        .uncertain(format!("heartbeat for {} failed: {e}", self.resource));
                }
                Err(_) => {
                    failing_since.get_or_insert_with(report::now);
                    self.status.uncertain(format!(
                        "heartbeat for {} got no answer within {}",
                        self.resource,
                        report::duration(attempt)
                    ));
                }
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(left)).await;
            pause = next_retry_pause(pause, every);
        }
    }

    fn lock_age(&self) -> Duration {
        (time::OffsetDateTime::now_utc() - self.lock.created_at)
            .try_into()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::RetryPolicy;

    /// When the first keep-alive (which cuts the server's 10 minutes to the
    /// lease) gets no answer, it may still have reached the server: the local
    /// deadline must follow the lease, not the 10 minutes, or the lease would
    /// claim the lock long after the server let it go.
    /// A DELETE that meets a 404 after a lost answer is a clean release only
    /// if the lock was read back after the body ended: otherwise it may have
    /// been gone (and someone else's) already.
    #[test]
    fn failed_heartbeats_retry_doubling_up_to_half_a_beat() {
        let ms = Duration::from_millis;
        let pauses = |every| {
            std::iter::successors(Some(RETRY_FIRST), move |&p| {
                Some(next_retry_pause(p, every))
            })
            .take(8)
            .collect::<Vec<_>>()
        };
        // A lease of 60 s beats every 20 s: retries up to 10 s apart.
        let long = pauses(Duration::from_secs(20));
        assert_eq!(
            &long[..7],
            [200, 400, 800, 1600, 3200, 6400, 10_000].map(ms)
        );
        assert_eq!(long[7], ms(10_000));
        // A lease of 6 s beats every 2 s: at most 1 s apart.
        assert_eq!(
            pauses(Duration::from_secs(2))[..5],
            [200, 400, 800, 1000, 1000].map(ms)
        );
        // A very short lease still waits the first pause between tries.
        assert_eq!(pauses(ms(300))[..3], [200, 200, 200].map(ms));
    }

    #[test]
    fn an_unsure_delete_is_a_loss_unless_the_lock_was_proven_ours() {
        assert_eq!(released(Deleted::Now, false), Released::Freed);
        assert_eq!(released(Deleted::Unsure, true), Released::Freed);
        assert_eq!(released(Deleted::Before, true), Released::Freed);
        assert_eq!(released(Deleted::Unsure, false), Released::AlreadyGone);
        assert_eq!(released(Deleted::Before, false), Released::AlreadyGone);
    }

    #[tokio::test]
    async fn an_unconfirmed_first_keep_alive_counts_as_done() {
        let client = Client::builder("http://127.0.0.1:1")
            .websocket(false)
            .retry(RetryPolicy::never())
            .build()
            .unwrap();
        let mut lock = Lock::dummy();
        lock.created_at = time::OffsetDateTime::now_utc();
        lock.expires_at = lock.created_at + time::Duration::minutes(10);
        let lease = Duration::from_secs(30);
        let before = Instant::now();
        let mut held = Remote::new(client).held(lock, lease).await;
        held.armed = false; // nothing to delete on that port
        assert!(
            held.deadline <= before + lease,
            "deadline {:?} after the start, lease {lease:?}",
            held.deadline - before
        );
    }
}
