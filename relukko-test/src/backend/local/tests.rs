//! Unit tests of the local backend: real lock files in a fresh temporary folder
//! per test, waiters in threads, generous bounds only.

use super::*;
use crate::test_support::TempDir;

/// This user's record file of the lock of `name`.
pub(super) fn my_record(local: &Local, name: &str) -> PathBuf {
    #[cfg(unix)]
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    #[cfg(not(unix))]
    let uid = 0;
    local.dir.join(folder::record_name(&file_name(name), uid))
}

fn wait(ms: u64) -> Request {
    Request {
        timeout: Duration::from_millis(ms),
        creator: "me@here test=t pid=1".into(),
        lease: Duration::from_secs(60),
        test: None,
        on_this_thread: true,
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
    // Processes built from other versions must find the same file: letters,
    // digits, '-', '_' and '.' stay as they are, anything else becomes '_'.
    assert_eq!(
        local.path_for("hil-rig_3.a b"),
        PathBuf::from(format!(
            "/x/hil-rig_3.a_b-{:016x}.lock",
            fnv1a(b"hil-rig_3.a b")
        ))
    );
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
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

/// This process keeps its lock files open while its threads hold or wait.
/// If the file is deleted (a temp cleaner, a user) and another process
/// locks the new file of that name, the waiter must not take the lock
/// through the stale handle when the old holder lets go: that would make
/// two holders.
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
    // Let the waiter queue (if it is late, it opens the new file and the
    // test proves nothing, but does not fail).
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(local.path_for("r")).unwrap();
    // Another process's lock on the new file, by its own handle.
    let other = File::create_new(local.path_for("r")).unwrap();
    other.lock().unwrap();
    first.release().unwrap();
    let got = waiter.join().unwrap();
    assert!(
        got.is_err(),
        "the waiter got the lock while another process holds it"
    );
    other.unlock().unwrap();
    let (_, again) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    assert_eq!(again.release().unwrap(), Released::Freed);
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

/// POSIX record locks on the whole file (`fcntl`), which belong to the
/// process: what `flock` becomes on NFS. Answers whether it is now locked.
#[cfg(unix)]
pub(super) fn posix_lock(file: &File, wait: bool) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero flock is a valid value; the fields that matter are set.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    let cmd = if wait { libc::F_SETLKW } else { libc::F_SETLK };
    // SAFETY: a valid handle and a valid flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), cmd, &fl) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::EACCES) if !wait => Ok(false),
        _ => Err(e),
    }
}

#[cfg(unix)]
pub(super) fn posix_unlock(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: as in `posix_lock`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_UNLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: a valid handle and a valid flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Where file locks belong to the whole process (NFS), only the in-process
/// turns keep two threads apart: many threads, each checking that it is
/// alone while it holds.
#[cfg(unix)]
#[test]
fn threads_take_turns_where_file_locks_belong_to_the_process() {
    use std::sync::atomic::AtomicUsize;
    let dir = TempDir::new("process-locks");
    let local = Arc::new(Local {
        dir: dir.path().to_path_buf(),
        os: OsLock::Process,
        within: None,
    });
    let inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (local, inside) = (Arc::clone(&local), Arc::clone(&inside));
            std::thread::spawn(move || {
                let names = vec!["nfs".to_owned()];
                for _ in 0..25 {
                    let (_, held) = local
                        .acquire_any_blocking(&names, &wait(30_000), None)
                        .unwrap();
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    // Reading the holder opens no second handle, which would
                    // drop the process's lock on NFS.
                    assert!(local.holders(&names).contains("pid=1"));
                    std::thread::sleep(Duration::from_millis(1));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    held.release().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A second holder in this process times out rather than getting in.
    let names = vec!["nfs".to_owned()];
    let (_, held) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    let err = local
        .acquire_any_blocking(&names, &wait(100), None)
        .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
    drop(held);
}

#[test]
fn the_waiting_line_names_the_folder() {
    let text = waiting_for(&["rig".to_owned()], std::path::Path::new("/x/locks"), None);
    assert_eq!(text, "rig (lock files in /x/locks)");
}

/// Inside an outer hold, the waiting line and the timeout say so: the wait
/// is for the others inside it, not for the outer holder.
#[test]
fn inside_a_hold_the_lines_say_so() {
    let text = waiting_for(
        &["rig".to_owned()],
        std::path::Path::new("/x/locks/held-1"),
        Some("the hold of rig by process 7 (an ancestor)"),
    );
    assert_eq!(
        text,
        "rig inside the hold of rig by process 7 (an ancestor), taking turns with the others \
         inside it (lock files in /x/locks/held-1)"
    );
    let dir = TempDir::new("inside");
    let within = "the hold of rig by process 7 (an ancestor)".to_owned();
    let inside = Arc::new(Local::inside(dir.path(), "some hold", within.clone()));
    assert!(inside.folder().starts_with(dir.path()) && inside.folder() != dir.path());
    let wait = |timeout| Request {
        timeout,
        creator: "inner".into(),
        lease: Duration::from_secs(60),
        test: None,
        on_this_thread: true,
    };
    let names = ["rig".to_owned()];
    let (_, held) = inside
        .acquire_any_blocking(&names, &wait(Duration::ZERO), None)
        .unwrap();
    let err = inside
        .acquire_any_blocking(&names, &wait(Duration::from_millis(50)), None)
        .unwrap_err();
    match err {
        Error::WaitTimeout {
            holder: Some(h), ..
        } => {
            assert!(h.ends_with(&format!("inside {within}")), "{h}");
        }
        e => panic!("{e:?}"),
    }
    // The folder of the hold is not the outer one: there the name is free.
    let outer = Local::new(dir.path().to_path_buf());
    let (_, outer_held) = outer
        .acquire_any_blocking(&names, &wait(Duration::ZERO), None)
        .unwrap();
    drop((held, outer_held));
}

/// A hold dropped without its release (the first name of a set whose next
/// name timed out, a wait dropped just as it got the lock) empties its
/// record as well as its lock: nobody is then named as its holder (keeping
/// the record left every suite green).
#[test]
fn a_hold_dropped_unreleased_empties_its_record() {
    let dir = TempDir::new("dropped-record");
    let local = Local::new(dir.path().to_path_buf());
    let names = vec!["r".to_owned()];
    let (_, held) = local
        .acquire_any_blocking(&names, &wait(1000), None)
        .unwrap();
    let holder = local.holders(&names);
    assert!(
        holder.starts_with("me@here test=t pid=1 since "),
        "{holder}"
    );
    drop(held);
    assert_eq!(local.holders(&names), NO_RECORD);
}

/// The lock file replaced between this process's open and its `try_lock` (a
/// temp cleaner or `relukko unlock` deleted it, another process made a new
/// one): a lock taken through the old handle is no lock at all, since
/// everyone else locks the new file. The new file is taken instead, or the
/// wait goes on while another process holds it (counting the old handle's
/// lock as taken would make two holders).
#[cfg(unix)]
#[test]
fn a_lock_taken_through_a_handle_replaced_meanwhile_does_not_count() {
    let dir = TempDir::new("replaced-before-lock");
    let local = Local::new(dir.path().to_path_buf());
    let folder = Folder::open(dir.path(), "n").unwrap();
    let file = file_name("n");
    let path = local.path_for("n");
    let opened_then_replaced = || {
        let turn = turns::try_take(folder.key(&file)).expect("nobody here holds n");
        let stale = turn.file(|| folder.open_lock_file("n", &file)).unwrap();
        std::fs::remove_file(&path).unwrap();
        let new = File::create_new(&path).unwrap();
        assert!(!folder::is_current(&stale.file, &path));
        (turn, new)
    };

    let (turn, other) = opened_then_replaced();
    other.lock().unwrap();
    let got = local.try_take(&folder, "n", &file, turn).unwrap();
    assert!(
        got.is_none(),
        "took the lock of a deleted file while another process holds the name"
    );
    other.unlock().unwrap();

    let (turn, _free) = opened_then_replaced();
    let taken = local
        .try_take(&folder, "n", &file, turn)
        .unwrap()
        .expect("the name's new file is free");
    assert!(
        folder::is_current(&taken.file.file, &path),
        "locked the deleted file, not the one the name leads to"
    );
}

/// The variable that makes [`posix_lock_holder_child`] hold a lock: the path.
#[cfg(unix)]
const POSIX_HOLDER_PATH: &str = "LOCAL_TESTS_POSIX_HOLDER_PATH";
/// What that child prints once it holds the lock.
#[cfg(unix)]
const POSIX_LOCKED: &str = "posix lock held";

/// Not a test of its own: the other process of
/// [`a_waiter_moved_off_a_replaced_file_still_waits_its_turn_where_locks_belong_to_the_process`].
/// Holds a POSIX lock on the file until its stdin closes.
#[cfg(unix)]
#[test]
#[ignore = "a child process of another test"]
fn posix_lock_holder_child() {
    use std::io::{Read, Write};
    let Some(path) = std::env::var_os(POSIX_HOLDER_PATH) else {
        return;
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    assert!(posix_lock(&file, true).unwrap());
    let mut out = std::io::stdout().lock();
    // libtest may have begun the line (`test ... `): a marker, then a newline.
    writeln!(out, "{POSIX_LOCKED}").unwrap();
    out.flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Where file locks belong to the process (NFS): a thread of ours blocked on
/// another process's lock of a file that was replaced meanwhile gets the old
/// file when that process lets go, and must then queue for the new file's
/// turn, behind the thread of ours that holds the new file. Locking the new
/// file through a handle of its own would succeed at once (the process holds
/// it already) and make two holders.
#[cfg(unix)]
#[test]
fn a_waiter_moved_off_a_replaced_file_still_waits_its_turn_where_locks_belong_to_the_process() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    let dir = TempDir::new("moved-waiter");
    let local = Arc::new(Local {
        dir: dir.path().to_path_buf(),
        os: OsLock::Process,
        within: None,
    });
    let path = local.path_for("n");
    /// Ends the other process also when this test fails half-way.
    struct Other(std::process::Child);
    impl Drop for Other {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut other = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "backend::local::tests::posix_lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(POSIX_HOLDER_PATH, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map(Other)
        .unwrap();
    let mut lines = BufReader::new(other.0.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.ends_with(POSIX_LOCKED))),
        "the other process locked the file"
    );

    let inside = Arc::new(AtomicUsize::new(0));
    let (took, took_rx) = mpsc::channel();
    let holder = |hold: Duration| {
        let (local, inside, took) = (Arc::clone(&local), Arc::clone(&inside), took.clone());
        std::thread::spawn(move || {
            let names = vec!["n".to_owned()];
            let (_, held) = local
                .acquire_any_blocking(&names, &wait(60_000), None)
                .unwrap();
            assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
            took.send(()).unwrap();
            std::thread::sleep(hold);
            inside.fetch_sub(1, Ordering::SeqCst);
            held.release().unwrap()
        })
    };
    // Blocks on the other process's lock (if it is late, it locks the new
    // file below instead: the test then proves less, but does not fail).
    let first = holder(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(&path).unwrap();
    File::create_new(&path).unwrap();
    // Finds the process's handle stale, moves to a fresh turn, locks the
    // new file, and holds it while the other process lets go.
    let second = holder(Duration::from_millis(1500));
    took_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a waiter took the new file");
    drop(other.0.stdin.take());
    assert!(other.0.wait().unwrap().success());
    second.join().expect("the second holder was alone");
    first.join().expect("the first holder was alone");
}

/// A lease on lock files turns lost within seconds when its lock file is
/// deleted (by its owner, the folder's, or `relukko release`) or replaced,
/// with the reason; before, it learnt only at release, while a second
/// holder had the name meanwhile.
#[test]
fn a_lease_turns_lost_soon_after_its_lock_file_is_deleted_or_replaced() {
    use crate::backend::state::LeaseState;
    let dir = TempDir::new("watched");
    let locker = crate::locker::Locker::local(dir.path());
    let local = Local::new(dir.path().to_path_buf());
    for (name, replace) in [("deleted", false), ("replaced", true)] {
        let lease = locker
            .lock_blocking(crate::locker::LockOptions::new(name).timeout(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(lease.state(), LeaseState::Held);
        let path = local.path_for(name);
        std::fs::remove_file(&path).unwrap();
        if replace {
            std::fs::write(&path, "").unwrap();
        }
        // Generous: the check runs about every second.
        let deadline = Instant::now() + Duration::from_secs(10);
        while lease.state() != LeaseState::Lost {
            assert!(
                Instant::now() < deadline,
                "{name}: still {:?}",
                lease.state()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let reason = lease.lost_reason().unwrap_or_default();
        assert!(reason.contains("was deleted or replaced"), "{reason}");
        assert!(reason.contains(&path.display().to_string()), "{reason}");
        assert!(
            lease.release_blocking().is_err(),
            "{name}: released as if held"
        );
    }
}

/// A hold released in time is never called lost by its watch, also when
/// its lock file is deleted right after the release.
#[test]
fn a_released_hold_is_not_called_lost_by_its_watch() {
    use crate::backend::state::{LeaseState, StatusTx};
    let dir = TempDir::new("watch-released");
    let local = Local::new(dir.path().to_path_buf());
    let (_, mut held) = local
        .acquire_any_blocking(&["w".to_owned()], &wait(1000), None)
        .unwrap();
    let status = StatusTx::new("w", None);
    held.watch("w", &status);
    assert_eq!(held.release().unwrap(), Released::Freed);
    std::fs::remove_file(local.path_for("w")).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status.get().state, LeaseState::Held);
}

mod folder_checks;
