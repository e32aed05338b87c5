//! Waiting for a lock: [`Client::acquire`], its options and progress reports,
//! and the guard that keeps a dropped call from leaving a lock behind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::Client;
use super::calls::Create;
use super::calls::Tidy;
use super::guard::{Gone, run_guarded};
use super::pending::Pending;
use super::retry::PollTimer;
use super::shared::Shared;
use super::watcher::Registration;
use crate::error::{Error, Result};
use crate::report;
use crate::rt::unpoisoned;
use relukko_protocol::Lock;
use relukko_protocol::token::{new_token, with_token};

type ProgressFn = Arc<dyn Fn(&WaitProgress) + Send + Sync + 'static>;

/// A report to [`AcquireOptions::on_progress`] while a wait goes on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WaitProgress {
    /// The lock name waited for.
    pub resource: String,
    /// How long the wait has lasted.
    pub waited: Duration,
    /// Who holds it, if the server said (the lookup may fail or race a release).
    pub holder: Option<Lock>,
    /// Why `holder` is `None`: what the lookup met instead.
    pub(crate) unnamed: Option<Unnamed>,
}

impl WaitProgress {
    /// Who holds the resource, as a waiting line says it: the holder, or
    /// why the server did not name one.
    pub(crate) fn holder_text(&self) -> String {
        match (&self.holder, &self.unnamed) {
            (Some(lock), _) => report::holder(lock),
            (None, Some(why)) => why.to_string(),
            (None, None) => Unnamed::Gone.to_string(),
        }
    }
}

/// Why a waiter could not name the holder of the lock it waits for.
#[derive(Debug, Clone)]
pub(crate) enum Unnamed {
    /// The server's list of locks did not come within the lookup's bound.
    Slow(Duration),
    /// Listing the locks failed.
    Failed(String),
    /// The list holds no lock of that name: released since the last try.
    Gone,
}

impl std::fmt::Display for Unnamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unnamed::Slow(bound) => write!(
                f,
                "a holder the server did not name within {} (its list of locks was slow)",
                report::duration(*bound)
            ),
            Unnamed::Failed(e) => write!(
                f,
                "a holder the server did not name (listing its locks failed: {e})"
            ),
            Unnamed::Gone => f.write_str(
                "a holder that has just released it (the server lists it no more; the next \
                 try may get it)",
            ),
        }
    }
}

/// How [`Client::acquire`] waits.
///
/// ```
/// use std::time::Duration;
/// let opts = relukko::AcquireOptions::new()
///     .timeout(Duration::from_secs(60))
///     .creator("nightly flash test")
///     .on_progress(|p: &relukko::WaitProgress| eprintln!("waiting {:?} for {}", p.waited, p.resource));
/// # let _ = opts;
/// ```
#[derive(Clone)]
pub struct AcquireOptions {
    timeout: Duration,
    creator: Option<String>,
    on_progress: Option<ProgressFn>,
    progress_after: Duration,
    progress_every: Duration,
}

impl std::fmt::Debug for AcquireOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcquireOptions")
            .field("timeout", &self.timeout)
            .field("creator", &self.creator)
            .field("on_progress", &self.on_progress.is_some())
            .field("progress_after", &self.progress_after)
            .field("progress_every", &self.progress_every)
            .finish()
    }
}

impl Default for AcquireOptions {
    fn default() -> Self {
        AcquireOptions {
            timeout: Duration::from_secs(600),
            creator: None,
            on_progress: None,
            progress_after: Duration::from_secs(2),
            progress_every: Duration::from_secs(5),
        }
    }
}

impl AcquireOptions {
    /// Wait at most 10 minutes, report no progress.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest wait (default 10 minutes). Zero means: try once.
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        // `Duration::MAX` means "practically forever", not an overflow.
        self.timeout = crate::rt::capped(d);
        self
    }

    /// The creator to record, instead of the client's.
    #[must_use]
    pub fn creator(mut self, creator: impl Into<String>) -> Self {
        self.creator = Some(creator.into());
        self
    }

    /// Called (on the background runtime; keep it short) once the wait has
    /// lasted [`progress_after`](Self::progress_after), then every
    /// [`progress_every`](Self::progress_every), with the current holder.
    #[must_use]
    pub fn on_progress(mut self, f: impl Fn(&WaitProgress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// When the first progress report comes (default 2 s).
    #[must_use]
    pub fn progress_after(mut self, d: Duration) -> Self {
        self.progress_after = crate::rt::capped(d);
        self
    }

    /// How often later reports come (default 5 s).
    #[must_use]
    pub fn progress_every(mut self, d: Duration) -> Self {
        self.progress_every = d.max(Duration::from_millis(10));
        self
    }
}

async fn pushed(reg: &Option<Registration>) {
    match reg {
        Some(r) => r.notify.notified().await,
        None => std::future::pending().await,
    }
}

/// The longest a waiter asks who holds its name (for a progress line or the
/// timeout message).
const HOLDER_LOOKUP: Duration = Duration::from_millis(500);

/// The waiters of each lock name in this process (by server URL and name),
/// as tickets in arrival order.
static QUEUES: Mutex<BTreeMap<(String, String), BTreeSet<u64>>> = Mutex::new(BTreeMap::new());
static NEXT_TICKET: AtomicU64 = AtomicU64::new(0);
/// The pause after a push of the waiters of a name that are not the oldest
/// in this process, in microseconds.
const YOUNGER_PAUSE_US: std::ops::RangeInclusive<u64> = 2_000..=20_000;
/// How often a waiter whose WebSocket is healthy asks anyway, in
/// milliseconds (random in this range): a safety net for a push that never
/// came. About 0.07 requests per second per waiter (1 in 15 s), which
/// leaves room under 0.1 for the first progress report's holder lookup.
const SAFETY_POLL_MS: std::ops::RangeInclusive<u64> = 12_000..=18_000;

/// A waiter's place among the waiters of its name in this process: the
/// oldest one retries at once after a push, the others after a short jitter.
struct Queued {
    key: (String, String),
    ticket: u64,
}

fn queues() -> MutexGuard<'static, BTreeMap<(String, String), BTreeSet<u64>>> {
    unpoisoned(&QUEUES)
}

impl Queued {
    fn join(url: &str, name: &str) -> Queued {
        let key = (url.to_owned(), name.to_owned());
        let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        queues().entry(key.clone()).or_default().insert(ticket);
        Queued { key, ticket }
    }

    fn is_first(&self) -> bool {
        queues().get(&self.key).and_then(BTreeSet::first) == Some(&self.ticket)
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        let mut map = queues();
        if let Some(tickets) = map.get_mut(&self.key) {
            tickets.remove(&self.ticket);
            if tickets.is_empty() {
                map.remove(&self.key);
            }
        }
    }
}

struct Waiter {
    name: String,
    token: String,
    opts: AcquireOptions,
    started: Instant,
}

impl Waiter {
    /// The holder, asked with a short bound: it only decorates a message,
    /// and at the deadline it must not stretch the wait by a whole request
    /// timeout (the torture saw a 15 s wait end after 17.2 s).
    async fn holder(&self, inner: &Shared) -> Option<Lock> {
        self.holder_or_why(inner).await.ok()
    }

    /// [`Waiter::holder`], or why there is none to name.
    async fn holder_or_why(&self, inner: &Shared) -> std::result::Result<Lock, Unnamed> {
        let bound = inner.options.request_timeout.min(HOLDER_LOOKUP);
        match tokio::time::timeout(bound, inner.holder_of(&self.name)).await {
            Err(_) => Err(Unnamed::Slow(bound)),
            Ok(Err(e)) => Err(Unnamed::Failed(e.to_string())),
            Ok(Ok(None)) => Err(Unnamed::Gone),
            Ok(Ok(Some(lock))) => Ok(lock),
        }
    }

    /// Reports progress if asked to; with a healthy link, no push means
    /// the holder is the same, so an idle waiter does not ask who it is.
    async fn progress(
        &self,
        inner: &Shared,
        healthy: bool,
        known_holder: &mut Option<std::result::Result<Lock, Unnamed>>,
        next_progress: &mut Instant,
    ) {
        let Some(report) = &self.opts.on_progress else {
            return;
        };
        let holder = match known_holder.take() {
            Some(Ok(h)) if healthy => Ok(h),
            _ => self.holder_or_why(inner).await,
        };
        *known_holder = Some(holder.clone());
        let (holder, unnamed) = match holder {
            Ok(lock) => (Some(lock), None),
            Err(why) => (None, Some(why)),
        };
        report(&WaitProgress {
            resource: self.name.clone(),
            waited: self.started.elapsed(),
            holder,
            unnamed,
        });
        *next_progress = Instant::now() + self.opts.progress_every;
    }

    async fn run(self, inner: Arc<Shared>, mut gone: Gone) -> Result<Option<Lock>> {
        let deadline = self.started + self.opts.timeout;
        let reg = inner
            .options
            .websocket
            .then(|| inner.watcher().register(&self.name));
        let queue = reg
            .as_ref()
            .map(|_| Queued::join(&inner.options.url, &self.name));
        // The creator asked for, else the client's, with this wait's token.
        let creator = with_token(
            self.opts
                .creator
                .as_deref()
                .or(inner.options.creator.as_deref()),
            &self.token,
        );
        let mut poll = PollTimer::new(inner.options.poll_max);
        let mut next_progress = self.started + self.opts.progress_after;
        // A signal that stops the process deletes what this wait made.
        let pending = Pending::new(&inner, &self.name, &self.token);
        // On every way out: deletes a lock a late create of ours made.
        let mut tidy = Tidy::new(&inner, &self.name, &self.token);
        let key = crate::courtesy::key(&inner.options.url, &self.name);
        // Released here a moment ago and contended: let the waiters that
        // were woken by that release go first (see `courtesy`).
        let courtesy = crate::courtesy::pause(&key);
        if !courtesy.is_zero() && !self.opts.timeout.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(courtesy.min(deadline.saturating_duration_since(Instant::now()))) => {}
                _ = gone.wait() => return Ok(None),
            }
        }
        // The holder, as last looked up; forgotten on every push (it may
        // have changed) and whenever the link is not healthy.
        let mut known_holder: Option<std::result::Result<Lock, Unnamed>> = None;
        // When a pushed deletion woke this waiter, to learn what a handoff
        // costs and whether it lost a race.
        let mut woken: Option<Instant> = None;
        // Races for this name lost after a push: this wait's age in handoffs.
        let mut lost = 0u32;
        loop {
            if gone.is_gone() {
                return Ok(None);
            }
            if !pending.start_create() {
                // A signal is ending the process: wait for the end.
                return std::future::pending().await;
            }
            let created = inner
                .try_create(
                    &self.name,
                    &creator,
                    &self.token,
                    Some(deadline),
                    &mut tidy.maybe_applied,
                )
                .await;
            pending.answered(tidy.maybe_applied);
            let created = created?;
            if let Create::Acquired(lock) = created {
                tidy.keep = Some(lock.id);
                if let Some(w) = woken {
                    crate::courtesy::handoff_seen(w.elapsed());
                }
                return Ok(Some(lock));
            }
            crate::courtesy::contended(&key);
            if woken.is_some() {
                // Woken by a deletion, and someone else was quicker.
                lost = lost.saturating_add(1);
                crate::courtesy::lost_race(&key);
            }
            let now = Instant::now();
            if now >= deadline {
                let holder = self.holder(&inner).await;
                return Err(Error::WaitTimeout {
                    resource: self.name.clone(),
                    waited: self.started.elapsed(),
                    holder: holder.as_ref().map(report::holder),
                });
            }
            let healthy = reg.as_ref().is_some_and(Registration::link_healthy);
            if now >= next_progress {
                self.progress(&inner, healthy, &mut known_holder, &mut next_progress)
                    .await;
            }
            // With the WebSocket healthy a deletion is pushed: poll only as a
            // safety net. While it is down, reconnecting or late, poll fast.
            let nap = if healthy {
                Duration::from_millis(fastrand::u64(SAFETY_POLL_MS))
            } else {
                poll.next()
            };
            let nap_end =
                Instant::now() + nap.min(deadline.saturating_duration_since(Instant::now()));
            woken = None;
            let deletions = reg.as_ref().map_or(0, Registration::deletions);
            // A progress report due during a long nap is made without
            // asking the server for the lock.
            let mut nap_over = false;
            while !nap_over {
                let until = if self.opts.on_progress.is_some() {
                    nap_end.min(next_progress)
                } else {
                    nap_end
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {
                        if Instant::now() >= nap_end {
                            nap_over = true;
                        } else {
                            let healthy = reg.as_ref().is_some_and(Registration::link_healthy);
                            self.progress(&inner, healthy, &mut known_holder, &mut next_progress)
                                .await;
                        }
                    }
                    _ = pushed(&reg) => {
                        nap_over = true;
                    known_holder = None;
                    // After a deletion the oldest waiter of this name in this
                    // process asks again at once: a handoff is then a round
                    // trip, not a sleep. Across processes each one's oldest
                    // asks at once too: N processes cost N quick POSTs
                    // answered 409, which the server takes easily. The younger
                    // waiters here would only lose to the oldest, so they ask
                    // after a random pause; sleeping, they fold several pushes
                    // into one POST, which keeps a crowd in one process cheap.
                    let mut pause = if queue.as_ref().is_none_or(Queued::is_first) {
                        Duration::ZERO
                    } else {
                        Duration::from_micros(fastrand::u64(YOUNGER_PAUSE_US))
                    };
                    // A crowd across processes: the waiters that lost more
                    // races (waited longer) ask first (see `courtesy`).
                    pause = pause.max(crate::courtesy::younger_pause(&key, lost));
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    // A deletion, not a reconnect, woke it: a race is on.
                    if reg.as_ref().is_some_and(|r| r.deletions() > deletions) {
                        woken = Some(Instant::now());
                    }
                    }
                    _ = gone.wait() => return Ok(None),
                }
            }
        }
    }
}

/// [`Client::acquire`]: the wait, as a [`Waiter`] that adopts or cleans up
/// what a dropped call leaves.
pub(super) async fn acquire(client: &Client, name: &str, opts: AcquireOptions) -> Result<Lock> {
    if client.is_skip() {
        return Ok(Lock::dummy());
    }
    let wait = Waiter {
        name: name.to_owned(),
        token: new_token(),
        opts,
        started: Instant::now(),
    };
    let started = wait.started;
    let got = run_guarded(Arc::clone(&client.inner), move |inner, gone| {
        wait.run(inner, gone)
    })
    .await?;
    // `None` only comes back when the caller is gone, so nobody sees this.
    got.ok_or_else(|| Error::WaitTimeout {
        resource: name.to_owned(),
        waited: started.elapsed(),
        holder: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waiting line never says "an unknown holder": it names the holder,
    /// or says why the server did not.
    #[test]
    fn an_unnamed_holder_says_why() {
        let progress = |unnamed| WaitProgress {
            resource: "rig".into(),
            waited: Duration::from_secs(2),
            holder: None,
            unnamed,
        };
        for (unnamed, says) in [
            (
                Some(Unnamed::Slow(Duration::from_millis(500))),
                "did not name within 500ms",
            ),
            (
                Some(Unnamed::Failed("server error (HTTP 503)".into())),
                "listing its locks failed: server error (HTTP 503)",
            ),
            (Some(Unnamed::Gone), "has just released it"),
            (None, "has just released it"),
        ] {
            let text = progress(unnamed).holder_text();
            assert!(text.contains(says), "{text}");
            assert!(!text.contains("unknown"), "{text}");
        }
    }

    #[test]
    fn options_debug_and_defaults() {
        let o = AcquireOptions::new().on_progress(|_| {});
        let shown = format!("{o:?}");
        assert!(
            shown.contains("on_progress: true") && shown.contains("600s"),
            "{shown}"
        );
    }

    #[test]
    fn the_oldest_waiter_of_a_name_is_first() {
        let url = "http://queue.test";
        let a = Queued::join(url, "q");
        let b = Queued::join(url, "q");
        let other = Queued::join(url, "other");
        assert!(a.is_first() && !b.is_first() && other.is_first());
        drop(a);
        assert!(b.is_first());
        drop((b, other));
        assert!(!queues().keys().any(|(u, _)| u == url), "nothing is left");
    }

    #[tokio::test]
    async fn unreachable_server_fails_by_the_deadline_naming_url_and_cause() {
        // Retries that would go on for about 15 s if they ignored the deadline.
        let retry = crate::client::RetryPolicy::default()
            .first_delay(Duration::from_millis(500))
            .max_delay(Duration::from_millis(500))
            .max_tries(60);
        let request_timeout = Duration::from_secs(1);
        let c = Client::builder("http://127.0.0.1:1")
            .websocket(false)
            .request_timeout(request_timeout)
            .retry(retry)
            .build()
            .unwrap();
        let timeout = Duration::from_secs(1);
        let started = std::time::Instant::now();
        let e = c
            .acquire("x", AcquireOptions::new().timeout(timeout))
            .await
            .unwrap_err();
        // The deadline, plus the attempt under way, plus slack for a loaded machine.
        let took = started.elapsed();
        assert!(
            took < timeout + request_timeout + Duration::from_secs(2),
            "retries must stop at the deadline: took {took:?}"
        );
        let text = e.to_string();
        assert!(matches!(e, Error::Transport { .. }), "{e:?}");
        assert!(
            text.contains("http://127.0.0.1:1/v1/locks/")
                && text.to_lowercase().contains("refused"),
            "{text}"
        );
    }
}
