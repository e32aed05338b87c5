//! What the running locked test holds, seen from its own thread (a sync
//! body) or task (an async body).
//!
//! A fixture or helper inside a locked test that asks for the test's own
//! resource again would wait for itself until its timeout (10 minutes by
//! default) and then name itself as the holder. [`Locker`](crate::locker::Locker)
//! checks here first and fails at once instead. Only the test's own thread
//! or task is checked: other tests of the process (other threads) asking for
//! the same resource simply wait, as they should.

use std::cell::RefCell;
use std::future::Future;

/// Resources a locked test holds on one backend.
#[derive(Debug, Clone)]
pub(crate) struct Holding {
    /// The test (`module::path::name`).
    pub(crate) test: &'static str,
    /// Where the locks live ([`Backend::place`](crate::backend::Backend::place)).
    pub(crate) place: String,
    /// The resources as locked (with the prefix).
    pub(crate) resources: Vec<String>,
}

thread_local! {
    static THREAD: RefCell<Vec<Holding>> = const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    static TASK: Vec<Holding>;
}

/// Marks `holding` as held by this thread until dropped.
#[derive(Debug)]
pub(crate) struct ThreadGuard(bool);

/// Records that this thread's test holds `holding` (nothing for `None`: a
/// backend where locks cannot wait for each other).
pub(crate) fn enter_thread(holding: Option<Holding>) -> ThreadGuard {
    let Some(h) = holding else {
        return ThreadGuard(false);
    };
    THREAD.with(|t| t.borrow_mut().push(h));
    ThreadGuard(true)
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        if self.0 {
            THREAD.with(|t| t.borrow_mut().pop());
        }
    }
}

/// Runs `fut` as a task that holds `holding` (besides what it already held).
pub(crate) async fn scope<F: Future>(holding: Option<Holding>, fut: F) -> F::Output {
    let mut all = TASK.try_with(Clone::clone).unwrap_or_default();
    all.extend(holding);
    TASK.scope(all, fut).await
}

/// The test of this thread or task that holds what a request for
/// `resources` at `place` would wait for, with the resource: for `all_of`,
/// any one of them; for a pool (`any_of`), every member.
pub(crate) fn held_by_this_test(
    place: &str,
    resources: &[String],
    any_of: bool,
) -> Option<(String, &'static str)> {
    let find = |held: &[Holding]| {
        let holder = |r: &String| {
            held.iter()
                .find(|h| h.place == place && h.resources.contains(r))
                .map(|h| (r.clone(), h.test))
        };
        if any_of {
            let all: Option<Vec<_>> = resources.iter().map(holder).collect();
            all.and_then(|v| v.into_iter().next())
        } else {
            resources.iter().find_map(holder)
        }
    };
    THREAD
        .with(|t| find(&t.borrow()))
        .or_else(|| TASK.try_with(|t| find(t)).ok().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(resources: &[&str]) -> Option<Holding> {
        Some(Holding {
            test: "m::t",
            place: "here".into(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
        })
    }

    fn ask(resources: &[&str], any_of: bool) -> Option<(String, &'static str)> {
        let r: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
        held_by_this_test("here", &r, any_of)
    }

    #[test]
    fn the_holding_thread_sees_it_until_the_guard_drops() {
        let guard = enter_thread(holding(&["a", "b"]));
        assert_eq!(ask(&["c", "b"], false), Some(("b".into(), "m::t")));
        assert_eq!(ask(&["a", "c"], true), None, "c may be free");
        assert_eq!(ask(&["b", "a"], true), Some(("b".into(), "m::t")));
        assert_eq!(held_by_this_test("elsewhere", &["a".into()], false), None);
        std::thread::spawn(|| assert_eq!(ask(&["a"], false), None))
            .join()
            .unwrap();
        drop(guard);
        assert_eq!(ask(&["a"], false), None);
    }

    #[tokio::test]
    async fn the_holding_task_sees_it() {
        scope(holding(&["a"]), async {
            assert_eq!(ask(&["a"], false), Some(("a".into(), "m::t")));
            scope(holding(&["b"]), async {
                assert!(ask(&["a"], false).is_some() && ask(&["b"], false).is_some());
            })
            .await;
            assert_eq!(ask(&["b"], false), None);
            tokio::spawn(async { assert_eq!(ask(&["a"], false), None) })
                .await
                .unwrap();
        })
        .await;
        assert_eq!(ask(&["a"], false), None);
    }
}
