//! The calls of the protocol, one method each, and the create-or-fail core
//! with its creator token.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

use super::Client;
use super::acquire::AcquireOptions;
use super::http::{check, decode, is_transient};
use super::shared::Shared;
use crate::error::{Error, Result};
use relukko_protocol::token::{is_own, new_token, with_token};
use relukko_protocol::{Lock, format_timestamp};

const LOCKS: &str = "/v1/locks/";
/// How long a token whose create may have been applied late is looked for.
const TOKEN_CLEANUP: Duration = Duration::from_secs(60);

/// Starts a token clean-up when a wait or create ends in any way (got the
/// lock, gave up, cancelled) if a create of its token may have been applied
/// without us knowing: the late lock is deleted, `keep` (the one we got) not.
pub(crate) struct Tidy {
    inner: Arc<Shared>,
    name: String,
    token: String,
    pub(crate) maybe_applied: bool,
    pub(crate) keep: Option<Uuid>,
}

impl Tidy {
    pub(crate) fn new(inner: &Arc<Shared>, name: &str, token: &str) -> Tidy {
        Tidy {
            inner: Arc::clone(inner),
            name: name.to_owned(),
            token: token.to_owned(),
            maybe_applied: false,
            keep: None,
        }
    }
}

impl Drop for Tidy {
    fn drop(&mut self) {
        if self.maybe_applied {
            let (name, token) = (
                std::mem::take(&mut self.name),
                std::mem::take(&mut self.token),
            );
            self.inner.spawn_token_cleanup(name, token, self.keep);
        }
    }
}

/// Seconds for a `{"seconds": n}` body, rounded up so a sub-second duration
/// still extends.
fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Shared {
    /// All locks.
    pub(crate) async fn list_locks(&self) -> Result<Vec<Lock>> {
        self.call(Method::GET, LOCKS, None).await
    }

    /// The lock of that exact name, if any.
    pub(crate) async fn holder_of(&self, name: &str) -> Result<Option<Lock>> {
        Ok(self
            .list_locks()
            .await?
            .into_iter()
            .find(|l| l.lock_name == name))
    }

    /// The lock of that name if it carries our token.
    async fn find_own(&self, name: &str, token: &str) -> Result<Option<Lock>> {
        Ok(self
            .holder_of(name)
            .await?
            .filter(|l| is_own(l, name, token)))
    }

    /// One create-or-fail, with retries as the policy and deadline allow. A
    /// 409 after an attempt whose answer was lost checks whether the lock is
    /// ours after all (it then is adopted); a final failure that may have left
    /// our lock on the server starts a background clean-up.
    pub(crate) async fn try_create(
        self: &Arc<Self>,
        name: &str,
        creator: &str,
        token: &str,
        deadline: Option<Instant>,
        maybe_applied: &mut bool,
    ) -> Result<Create> {
        let body = json!({ "lock_name": name, "creator": creator });
        // Set for the token's whole life: a create of it whose answer was
        // lost may be applied much later (stuck in a slow network), after
        // the real holder left, and then every 409 may be our own lock.
        let result = self
            .send_retrying(Method::POST, LOCKS, Some(&body), deadline, maybe_applied)
            .await;
        let ambiguous = *maybe_applied;
        let outcome = match result {
            Ok(a) if a.status == 409 => {
                if ambiguous {
                    match self.find_own(name, token).await {
                        Ok(Some(own)) => {
                            tracing::debug!(target: "relukko::client", resource = name, "adopted a lock whose answer was lost");
                            return Ok(Create::Acquired(own));
                        }
                        Ok(None) => {}
                        // The 409 may be our own lock, which nobody would
                        // ever release: look for it again in the background.
                        Err(e) => {
                            self.spawn_token_cleanup(name.to_owned(), token.to_owned(), None);
                            return Err(e);
                        }
                    }
                }
                return Ok(Create::Taken);
            }
            Ok(a) => check(a).and_then(|a| decode::<Lock>(&a)),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(lock) => Ok(Create::Acquired(lock)),
            Err(e) => {
                if (ambiguous && is_transient(&e)) || matches!(e, Error::Decode { .. }) {
                    self.spawn_token_cleanup(name.to_owned(), token.to_owned(), None);
                }
                Err(e)
            }
        }
    }

    /// Deletes the lock `id` for its holder, with retries, and says what the
    /// server answered: see [`Deleted`].
    pub(crate) async fn release_lock(&self, id: Uuid) -> Result<Deleted> {
        let mut ambiguous = false;
        let path = format!("{LOCKS}{id}");
        let a = self
            .send_retrying(Method::DELETE, &path, None, None, &mut ambiguous)
            .await?;
        match check(a) {
            Ok(_) => Ok(Deleted::Now),
            Err(Error::NotFound { .. }) if ambiguous => Ok(Deleted::Unsure),
            Err(Error::NotFound { .. }) => Ok(Deleted::Before),
            Err(e) => Err(e),
        }
    }

    /// Deletes a lock nobody will use (its caller went away), with retries.
    pub(crate) async fn delete_orphan(&self, lock: &Lock) {
        match self
            .call::<Lock>(Method::DELETE, &format!("{LOCKS}{}", lock.id), None)
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => {
                tracing::debug!(target: "relukko::client", resource = %lock.lock_name, "released a lock its caller left behind");
            }
            Err(e) => {
                tracing::warn!(target: "relukko::client", resource = %lock.lock_name, error = %e, "could not release a lock its caller left behind; it expires on its own");
            }
        }
    }

    /// In the background, for about a minute: finds every lock of `name`
    /// carrying `token` but `keep` (made by a create whose answer was lost,
    /// perhaps applied late) and deletes it. It keeps looking even when
    /// there is none yet: such a create may still be on its way.
    pub(crate) fn spawn_token_cleanup(
        self: &Arc<Self>,
        name: String,
        token: String,
        keep: Option<Uuid>,
    ) {
        let inner = Arc::clone(self);
        crate::rt::spawn_cleanup(async move {
            let until = Instant::now() + TOKEN_CLEANUP;
            let mut attempt = 0;
            while Instant::now() < until {
                match inner.find_own(&name, &token).await {
                    Ok(Some(lock)) if Some(lock.id) != keep => inner.delete_orphan(&lock).await,
                    Err(Error::NotAuthorised { .. }) => return,
                    _ => {}
                }
                let pause = Duration::from_millis(500).saturating_mul(1 << attempt.min(3));
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
        });
    }
}

impl Client {
    /// Waits until the lock `name` is ours, or `opts`' timeout passes
    /// ([`Error::WaitTimeout`] naming the holder). Transport errors and 5xx
    /// answers are retried within the deadline (see [`RetryPolicy`](super::RetryPolicy)
    /// for what is not); an error that outlasts the retries is returned as it
    /// is (e.g. [`Error::Transport`] naming the URL).
    ///
    /// Dropping the future mid-wait leaves no lock behind.
    pub async fn acquire(&self, name: &str, opts: AcquireOptions) -> Result<Lock> {
        super::acquire::acquire(self, name, opts).await
    }

    /// Deletes the lock `id` for its holder, with retries, and says what the
    /// server answered: see [`Deleted`]. Runs on the caller's executor.
    pub(crate) async fn release_lock(&self, id: Uuid) -> Result<Deleted> {
        self.inner.release_lock(id).await
    }

    /// The lock `id` as the server has it now, with retries; runs on the
    /// caller's executor (a release is already on the background runtime).
    pub(crate) async fn read_back(&self, id: Uuid) -> Result<Lock> {
        self.inner
            .call(Method::GET, &format!("{LOCKS}{id}"), None)
            .await
    }

    /// Runs `f` on the background runtime.
    async fn bg<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        crate::rt::run(f(Arc::clone(&self.inner))).await
    }

    /// Runs `f` on the background runtime; dropping the returned future
    /// aborts it there too.
    async fn bg_abortable<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let task = crate::rt::spawn(f(Arc::clone(&self.inner)));
        let _abort = crate::rt::AbortOnDrop::new(&task);
        crate::rt::joined(task.await, "background task")
    }

    /// Tries once (with retries of transient failures) to create the lock
    /// `name`: [`Create::Taken`] if someone holds it. `creator` overrides the
    /// client's creator. Dropping the future never leaves the lock behind.
    pub async fn create(&self, name: &str, creator: Option<&str>) -> Result<Create> {
        self.create_until(name, creator, None).await
    }

    /// [`create`](Self::create), every attempt and retry within `deadline`.
    pub(crate) async fn create_until(
        &self,
        name: &str,
        creator: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<Create> {
        if self.is_skip() {
            return Ok(Create::Acquired(Lock::dummy()));
        }
        let token = new_token();
        let creator = with_token(creator.or(self.creator()), &token);
        let name = name.to_owned();
        let got =
            super::guard::run_guarded(Arc::clone(&self.inner), move |inner, _gone| async move {
                let pending = super::pending::Pending::new(&inner, &name, &token);
                let mut tidy = Tidy::new(&inner, &name, &token);
                if !pending.start_create() {
                    // A signal is ending the process: wait for the end.
                    return std::future::pending().await;
                }
                let created = inner
                    .try_create(&name, &creator, &token, deadline, &mut tidy.maybe_applied)
                    .await;
                pending.answered(tidy.maybe_applied);
                let got = created?.lock();
                tidy.keep = got.as_ref().map(|l| l.id);
                Ok(got)
            })
            .await?;
        Ok(got.map_or(Create::Taken, Create::Acquired))
    }

    /// The lock with that id; [`Error::NotFound`] if there is none.
    pub async fn get(&self, id: Uuid) -> Result<Lock> {
        if self.is_skip() {
            return Ok(Lock::dummy());
        }
        self.bg(move |i| async move { i.call(Method::GET, &format!("{LOCKS}{id}"), None).await })
            .await
    }

    /// All locks. With the skip switch on: `[Lock::dummy()]`, in upstream's
    /// spirit of "every call answers the dummy lock".
    pub async fn list(&self) -> Result<Vec<Lock>> {
        if self.is_skip() {
            return Ok(vec![Lock::dummy()]);
        }
        self.bg(|i| async move { i.list_locks().await }).await
    }

    /// Who holds `name` (exact, case-sensitive match), if anyone. With the
    /// skip switch on: `None` (nothing is asked).
    pub async fn holder(&self, name: &str) -> Result<Option<Lock>> {
        if self.is_skip() {
            return Ok(None);
        }
        let name = name.to_owned();
        self.bg(move |i| async move { i.holder_of(&name).await })
            .await
    }

    /// Changes the creator and/or the expiry of a lock (`None` leaves a field
    /// as it is). The expiry may be in the past.
    pub async fn update(
        &self,
        id: Uuid,
        creator: Option<&str>,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<Lock> {
        if self.is_skip() {
            return Ok(Lock::dummy());
        }
        let body = json!({ "creator": creator, "expires_at": expires_at.map(format_timestamp) });
        self.bg(move |i| async move {
            i.call(Method::PUT, &format!("{LOCKS}{id}"), Some(body))
                .await
        })
        .await
    }

    /// Deletes (releases) a lock; answers it as it was just before.
    ///
    /// A retried DELETE answered 404 after an attempt whose answer was lost
    /// counts as deleted (that attempt deleted it), as a lease's release
    /// does; [`Error::NotFound`] means the lock was not there to delete.
    pub async fn delete(&self, id: Uuid) -> Result<Lock> {
        if self.is_skip() {
            return Ok(Lock::dummy());
        }
        let deleted: Result<Lock> = self
            .bg(move |i| async move {
                let path = format!("{LOCKS}{id}");
                // The lock as it is, to answer with if the DELETE's own answer is
                // lost: the retry then only learns that it is gone.
                let before: Lock = i.call(Method::GET, &path, None).await?;
                let mut ambiguous = false;
                let a = i
                    .send_retrying(Method::DELETE, &path, None, None, &mut ambiguous)
                    .await?;
                match check(a) {
                    Ok(a) => decode(&a),
                    Err(Error::NotFound { .. }) if ambiguous => Ok(before),
                    Err(e) => Err(e),
                }
            })
            .await;
        if let Ok(lock) = &deleted {
            crate::courtesy::released(&crate::courtesy::key(
                &self.inner.options.url,
                &lock.lock_name,
            ));
        }
        deleted
    }

    /// Sets the expiry to now + 5 minutes.
    pub async fn keep_alive(&self, id: Uuid) -> Result<Lock> {
        self.extend(id, "keep_alive", None).await
    }

    /// Sets the expiry to now + `d` (whole seconds, rounded up).
    pub async fn keep_alive_for(&self, id: Uuid, d: Duration) -> Result<Lock> {
        self.extend(id, "keep_alive", Some(d)).await
    }

    /// Moves the expiry 5 minutes later.
    pub async fn add_to_expire_at(&self, id: Uuid) -> Result<Lock> {
        self.extend(id, "add_to_expire_at", None).await
    }

    /// Moves the expiry `d` later (whole seconds, rounded up).
    pub async fn add_to_expire_at_by(&self, id: Uuid, d: Duration) -> Result<Lock> {
        self.extend(id, "add_to_expire_at", Some(d)).await
    }

    async fn extend(&self, id: Uuid, what: &'static str, by: Option<Duration>) -> Result<Lock> {
        if self.is_skip() {
            return Ok(Lock::dummy());
        }
        let path = format!("{LOCKS}{id}/{what}");
        // Abortable: a heartbeat that gave up on this keep-alive, or a lease
        // that stopped, must not leave it retrying in the background.
        self.bg_abortable(move |i| async move {
            match by {
                None => i.call(Method::GET, &path, None).await,
                Some(d) => {
                    i.call(Method::PUT, &path, Some(json!({ "seconds": seconds(d) })))
                        .await
                }
            }
        })
        .await
    }

    /// Checks that the server answers `GET /healthchecker` with a success.
    pub async fn health(&self) -> Result<()> {
        if self.is_skip() {
            return Ok(());
        }
        self.bg(|i| async move {
            let mut ambiguous = false;
            let a = i
                .send_retrying(Method::GET, "/healthchecker", None, None, &mut ambiguous)
                .await?;
            check(a).map(drop)
        })
        .await
    }
}

// The answers of the calls that take or free a lock: `Create`, and what a
// holder's DELETE found.

/// The answer to [`Client::create`](crate::client::Client::create): the lock, or the news that someone holds it
/// (the server's 409, as a value rather than an error to parse).
#[must_use = "a Taken answer means the lock is NOT held"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Create {
    /// The lock is ours.
    Acquired(Lock),
    /// Someone else holds a lock of that name.
    Taken,
}

impl Create {
    /// The lock, if it was acquired.
    pub fn lock(self) -> Option<Lock> {
        match self {
            Create::Acquired(l) => Some(l),
            Create::Taken => None,
        }
    }
}

/// What a holder's DELETE found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// Deleted by this call: the lock was there until now.
    Now,
    /// Gone before this call (404 on the first answer).
    Before,
    /// 404 after an attempt whose answer was lost: that attempt may have
    /// deleted it, or it was gone before. The holder decides with what else
    /// it knows (its confirmed expiry).
    Unsure,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::creator_without_token;

    #[test]
    fn tokens_are_recognised_and_stripped() {
        let t = new_token();
        assert_eq!(t.len(), 37);
        let c = with_token(Some("ci-7"), &t);
        assert_eq!(creator_without_token(&c), "ci-7");
        assert_eq!(creator_without_token(&with_token(None, &t)), "");
        assert_eq!(creator_without_token("x [rl:zz]"), "x [rl:zz]");
        let mut lock = Lock::dummy();
        lock.creator = Some(c);
        assert!(is_own(&lock, "WE TRUST YOU", &t));
        assert!(!is_own(&lock, "other", &t));
        assert!(!is_own(&lock, "WE TRUST YOU", &new_token()));
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
        assert_eq!(seconds(Duration::from_secs(3)), 3);
        assert_eq!(seconds(Duration::ZERO), 0);
    }

    #[tokio::test]
    async fn skip_switch_makes_no_request() {
        // Port 1 refuses connections: any request would fail.
        let c = Client::builder("http://127.0.0.1:1")
            .trust_me_it_is_locked(true)
            .build()
            .unwrap();
        assert_eq!(
            c.create("x", None).await.unwrap(),
            Create::Acquired(Lock::dummy())
        );
        assert_eq!(c.get(Uuid::nil()).await.unwrap(), Lock::dummy());
        assert_eq!(c.list().await.unwrap(), vec![Lock::dummy()]);
        assert_eq!(c.holder("x").await.unwrap(), None);
        assert_eq!(c.delete(Uuid::nil()).await.unwrap(), Lock::dummy());
        assert_eq!(
            c.keep_alive_for(Uuid::nil(), Duration::from_secs(1))
                .await
                .unwrap(),
            Lock::dummy()
        );
        c.health().await.unwrap();
    }
}
