//! Unit tests of the local backend: real lock files in a fresh temporary folder
//! per test, waiters in threads, generous bounds only.

use super::*;
use crate::test_support::TempDir;

fn wait(ms: u64) -> Wait {
    Wait {
        timeout: Duration::from_millis(ms),
        creator: "me@here test=t pid=1".into(),
        lease: Duration::from_secs(60),
        test: None,
    }
}

#[test]
fn names_map_to_distinct_stable_files() {
    let local = Local::new(PathBuf::from("/x"));
    let a = local.path_for("Rig/1");
    assert_ne!(a, local.path_for("rig/1"));
    assert_ne!(a, local.path_for("Rig_1"));
    assert_eq!(
        a,
        PathBuf::from(format!("/x/Rig_1-{:016x}.lock", fnv1a(b"Rig/1")))
    );
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
}

#[test]
fn two_holders_in_one_process_contend_and_hand_over() {
    let dir = TempDir::new("contend");
    let local = Local::new(dir.path().to_path_buf());
    let names = vec!["r".to_owned()];
    let (_, held) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    let err = local
        .acquire_any_blocking(&names, &wait(50), None)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("waiting for r, held by me@here test=t pid=1 since "),
        "{text}"
    );
    assert_eq!(held.release().unwrap(), Released::Freed);
    let (_, again) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    drop(again);
    // Dropping frees too.
    local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
}

/// A waiter keeps its lock files open while it waits. If the file is
/// deleted (a temp cleaner, a user) and a newcomer locks the new file of
/// that name, the waiter must not take the lock through its stale handle
/// when the old holder lets go: that would make two holders.
#[cfg(unix)]
#[test]
fn a_replaced_lock_file_is_not_locked_through_a_stale_handle() {
    let dir = TempDir::new("replaced");
    let local = Arc::new(Local::new(dir.path().to_path_buf()));
    let names = vec!["r".to_owned()];
    let (_, first) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    let waiter = {
        let (local, names) = (Arc::clone(&local), names.clone());
        std::thread::spawn(move || {
            local
                .acquire_any_blocking(&names, &wait(1500), None)
                .map(|(_, held)| held)
        })
    };
    // Let the waiter open the file (if it is late, it opens the new file
    // and the test proves nothing, but does not fail).
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(local.path_for("r")).unwrap();
    let (_, second) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    first.release().unwrap();
    let got = waiter.join().unwrap();
    assert!(
        got.is_err(),
        "the waiter got the lock while the newcomer holds it"
    );
    assert_eq!(second.release().unwrap(), Released::Freed);
}

#[cfg(unix)]
#[test]
fn a_lock_file_deleted_while_held_is_reported_at_release() {
    let dir = TempDir::new("deleted");
    let local = Local::new(dir.path().to_path_buf());
    let names = vec!["d".to_owned()];
    let (_, held) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    std::fs::remove_file(local.path_for("d")).unwrap();
    assert_eq!(held.release().unwrap(), Released::AlreadyGone);
}

/// Takes `names` in another thread; answers the index taken and when.
fn wait_in_thread(
    local: &Arc<Local>,
    names: &[&str],
    ms: u64,
) -> std::thread::JoinHandle<Result<(usize, LocalHeld, Instant)>> {
    let local = Arc::clone(local);
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    std::thread::spawn(move || {
        local
            .acquire_any_blocking(&names, &wait(ms), None)
            .map(|(i, held)| (i, held, Instant::now()))
    })
}

#[test]
fn a_blocked_waiter_gets_the_lock_promptly_after_release() {
    let dir = TempDir::new("prompt");
    let local = Arc::new(Local::new(dir.path().to_path_buf()));
    let names = vec!["p".to_owned()];
    let (_, held) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    let waiter = wait_in_thread(&local, &["p"], 30_000);
    // Let the waiter block (if it is late, it simply finds the lock free).
    std::thread::sleep(Duration::from_millis(200));
    let released = Instant::now();
    held.release().unwrap();
    let (_, got, at) = waiter.join().unwrap().unwrap();
    // Generous: polling would pass too; the benchmark measures the speed.
    // This catches a waiter that never wakes, or only at its deadline.
    let took = at.duration_since(released);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(got.release().unwrap(), Released::Freed);
}

#[test]
fn a_timed_out_waiter_does_not_keep_the_lock_after_release() {
    let dir = TempDir::new("abandoned");
    let local = Arc::new(Local::new(dir.path().to_path_buf()));
    let names = vec!["t".to_owned()];
    let (_, held) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    // Its helper thread stays blocked in the kernel after it gives up.
    let err = local
        .acquire_any_blocking(&names, &wait(100), None)
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
    held.release().unwrap();
    // The abandoned helper may lock for an instant, but lets go at once.
    for _ in 0..3 {
        let (_, third) = local
            .acquire_any_blocking(&names, &wait(5000), None)
            .expect("a third party takes the lock after the holder released");
        assert_eq!(third.release().unwrap(), Released::Freed);
    }
}

#[test]
fn a_cancelled_wait_ends_and_keeps_nothing() {
    let dir = TempDir::new("cancel");
    let local = Local::new(dir.path().to_path_buf());
    let names = vec!["c".to_owned()];
    let (_, held) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    let cancel = AtomicBool::new(true);
    let started = Instant::now();
    let err = local
        .acquire_any_blocking(&names, &wait(30_000), Some(&cancel))
        .unwrap_err();
    assert!(
        matches!(err, Error::WaitTimeout { holder: None, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    held.release().unwrap();
    local
        .acquire_any_blocking(&names, &wait(5000), None)
        .expect("free after the holder released");
}

#[test]
fn any_of_waits_for_the_first_freed_and_leaves_the_others() {
    let dir = TempDir::new("pool-wait");
    let local = Arc::new(Local::new(dir.path().to_path_buf()));
    let names = ["a".to_owned(), "b".to_owned()];
    let (_, a) = local
        .acquire_any_blocking(&names[..1], &wait(1000), None)
        .unwrap();
    let (_, b) = local
        .acquire_any_blocking(&names[1..], &wait(1000), None)
        .unwrap();
    let waiter = wait_in_thread(&local, &["a", "b"], 30_000);
    std::thread::sleep(Duration::from_millis(200));
    b.release().unwrap();
    let (i, got_b, _) = waiter.join().unwrap().unwrap();
    assert_eq!(i, 1);
    // The helper still blocked on "a" must not keep it once it is freed.
    a.release().unwrap();
    let (_, again) = local
        .acquire_any_blocking(&names[..1], &wait(5000), None)
        .expect("a is free again");
    drop((again, got_b));
}

#[test]
fn any_of_takes_a_free_one() {
    let dir = TempDir::new("pool");
    let local = Local::new(dir.path().to_path_buf());
    let names = vec!["a".to_owned(), "b".to_owned()];
    let (i, _a) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    assert_eq!(i, 0);
    let (j, _b) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    assert_eq!(j, 1);
    let err = local
        .acquire_any_blocking(&names, &wait(30), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("any of a, b"), "{err}");
}
