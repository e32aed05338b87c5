//! The library's own background runtime.
//!
//! Heartbeats, the WebSocket watcher and every HTTP request run here, not on
//! the caller's runtime: a test that blocks its thread or its own runtime
//! cannot starve a heartbeat, and connections pooled by the shared client do
//! not die with the short-lived runtime of one `#[tokio::test]`.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// The name of the runtime's threads.
const THREAD_NAME: &str = "relukko-bg";

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREAD_NAME)
        .enable_all()
        .build()
        .expect("relukko: cannot start its background runtime")
});

/// Whether this thread is one of the background runtime's; asked without
/// starting that runtime.
pub(crate) fn is_current_thread() -> bool {
    std::thread::current().name() == Some(THREAD_NAME)
}

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

/// A count of background tasks that may still take or free a lock, and the
/// wake-up for when it drops to zero. The process has one ([`CLEANUPS`]);
/// a unit test may own another, so that no other test's clean-ups decide it.
struct Cleanups {
    running: AtomicUsize,
    done: Notify,
}

impl Cleanups {
    const fn new() -> Self {
        Cleanups {
            running: AtomicUsize::new(0),
            done: Notify::const_new(),
        }
    }

    /// Runs `fut` on the background runtime, counted here.
    fn spawn<F>(&'static self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.running.fetch_add(1, Ordering::SeqCst);
        RUNTIME.spawn(Counted {
            fut: Box::pin(fut),
            _count: CountGuard(self),
        })
    }

    /// Waits (at most `bound`) until the count is zero; answers whether it got there.
    async fn settle(&self, bound: Duration) -> bool {
        let wait = async {
            loop {
                let done = self.done.notified();
                if self.running.load(Ordering::SeqCst) == 0 {
                    return;
                }
                done.await;
            }
        };
        tokio::time::timeout(bound, wait).await.is_ok()
    }
}

/// Background tasks that may still take or free a lock (see [`spawn_cleanup`]).
static CLEANUPS: Cleanups = Cleanups::new();

/// Runs `fut` on the background runtime, counted among the tasks that may
/// still take or free a lock (a wait whose caller is gone, the release of a
/// dropped lease), so that a process about to exit can [`settle`] first.
/// The count drops when the task ends or is aborted, after the future's own
/// drop ran (which may spawn more such tasks).
pub(crate) fn spawn_cleanup<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    CLEANUPS.spawn(fut)
}

/// A future counted in a [`Cleanups`]; fields drop in order: the future first.
struct Counted<F> {
    fut: Pin<Box<F>>,
    _count: CountGuard,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.fut.as_mut().poll(cx)
    }
}

struct CountGuard(&'static Cleanups);

impl Drop for CountGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

/// Waits (at most `bound`) until no background task may still take or free
/// a lock: what a process does before it exits on purpose, so that a wait
/// it abandoned leaves nothing behind. Answers whether all of them ended.
pub async fn settle(bound: Duration) -> bool {
    CLEANUPS.settle(bound).await
}

/// Drives `fut` on this thread until it ends, parking the thread while it
/// waits: for futures that need no runtime (the lock files' wait, which
/// blocks this thread itself, and their release).
pub(crate) fn block_here<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
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
    let task = RUNTIME.spawn(fut);
    // A second task joins the first, so that a panic arrives here as the
    // JoinError that carries its payload.
    RUNTIME.spawn(async move {
        let _ = tx.send(task.await);
    });
    match rx.recv() {
        Ok(joined_task) => joined(joined_task, "background task"),
        Err(_) => panic!("relukko: a background task was dropped unjoined"),
    }
}

/// Runs `fut` on the background runtime and blocks this thread at most
/// `bound` for it; `None` (and the task aborted) when it did not end in
/// time. Unlike [`block_on`] it gives up whatever the runtime does, so an
/// exit handler or a `Drop` cannot hang.
pub(crate) fn block_bounded<F>(fut: F, bound: Duration) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = RUNTIME.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let out = rx.recv_timeout(bound).ok();
    if out.is_none() {
        task.abort();
    }
    out
}

/// The value of a joined task: the task's panic goes on in the caller; a task
/// cancelled (its runtime shutting down) panics naming `what`.
pub(crate) fn joined<T>(joined: Result<T, tokio::task::JoinError>, what: &str) -> T {
    match joined {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("relukko: {what} cancelled: {e}"),
    }
}

/// Aborts a task when dropped: a future awaiting the task from the caller's
/// runtime takes the task with it when the caller drops it.
pub(crate) struct AbortOnDrop(tokio::task::AbortHandle);

impl AbortOnDrop {
    pub(crate) fn new<T>(task: &JoinHandle<T>) -> Self {
        AbortOnDrop(task.abort_handle())
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `fut` on the background runtime and awaits it from the caller's
/// runtime, propagating a panic of the task.
pub(crate) async fn run<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    joined(spawn(fut).await, "background task")
}

/// The guard of `m`, poisoned or not: every mutex of this crate guards data
/// that single inserts, removes and swaps keep consistent, so a panic while
/// it was held leaves it usable.
pub(crate) fn unpoisoned<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// "Practically forever": the longest wait, lease or timeout, so deadlines
// computed from any duration a user gives cannot overflow.

/// Longer waits and leases are cut to this (about a century), so
/// `Instant + d` and the server's `now + d` cannot overflow.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `d`, at most [`FOREVER`]: a wait or lease of `u64::MAX` seconds means
/// "practically forever", never a panic.
pub(crate) fn capped(d: Duration) -> Duration {
    d.min(FOREVER)
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

    /// A lease dropped on one of the runtime's own threads must not block
    /// it (see `lease::Part`'s drop): that choice rests on this answer.
    #[test]
    fn only_the_runtimes_own_threads_count_as_current() {
        assert!(!super::is_current_thread());
        assert!(super::block_on(async { super::is_current_thread() }));
    }

    /// `settle` (before the command line exits) answers once every counted
    /// clean-up ended, not before, and not only after its bound. Over a
    /// count of its own: the clean-ups of other tests of this process (the
    /// process-wide count) have no say in it.
    #[test]
    fn settle_answers_once_every_cleanup_ended() {
        use std::time::Duration;
        static MINE: super::Cleanups = super::Cleanups::new();
        super::block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = MINE.spawn(async move {
                let _ = rx.await;
            });
            // Polled once, it waits: a clean-up still runs.
            let mut settling = std::pin::pin!(MINE.settle(Duration::from_secs(120)));
            let first =
                std::future::poll_fn(|cx| std::task::Poll::Ready(settling.as_mut().poll(cx))).await;
            assert!(first.is_pending(), "settled while a clean-up still runs");
            // Already waiting when the clean-up ends: woken by its end.
            tx.send(()).unwrap();
            task.await.unwrap();
            assert!(settling.await, "settled once the clean-up ended");
            assert!(
                MINE.settle(Duration::from_secs(120)).await,
                "and stays settled"
            );
        });
    }

    /// `block_on` carries the task's own panic to its caller: the assertion
    /// that failed, not a message about a background task.
    #[test]
    fn block_on_carries_the_tasks_panic() {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        let payload = catch_unwind(AssertUnwindSafe(|| {
            super::block_on(async { panic!("the task's own message") })
        }))
        .unwrap_err();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the task's own message")
        );
        let payload = catch_unwind(AssertUnwindSafe(|| {
            super::block_on(async { std::panic::panic_any(42_u32) })
        }))
        .unwrap_err();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    }

    /// A joined task's panic goes on in the caller with its own payload; a
    /// cancelled task panics naming what was cancelled.
    #[tokio::test]
    async fn a_joined_panic_keeps_its_payload_and_a_cancel_says_what() {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        let panicked = tokio::spawn(async { panic!("boom") }).await;
        let payload =
            catch_unwind(AssertUnwindSafe(|| super::joined(panicked, "task"))).unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));

        let task = tokio::spawn(std::future::pending::<()>());
        task.abort();
        let cancelled = task.await;
        let payload =
            catch_unwind(AssertUnwindSafe(|| super::joined(cancelled, "the wait"))).unwrap_err();
        let text = payload
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(text.starts_with("relukko: the wait cancelled"), "{text}");
    }
}
