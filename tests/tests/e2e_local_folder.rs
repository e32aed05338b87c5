//! The local backend's default folder is one per machine: processes that
//! disagree on `TMPDIR` (per-user on macOS, dropped by `sudo`, set per job by
//! sandboxes and CI) still lock the same files.
//!
//! `folder_worker` does nothing unless `RELUKKO_E2E_WORKER` names a history
//! file: the driver runs this binary again with it set, and without any
//! `RELUKKO_*` setting, so the default folder is used.
#![cfg(unix)]

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use relukko_e2e::history::{History, WORKER_VAR, fresh_dir, output_text, worker, worker_at};
use relukko_e2e::temp::TempDir;

/// The lock name, unique per run (the default folder is shared with every
/// other run on this machine).
const NAME_VAR: &str = "E2E_FOLDER_LOCK_NAME";
const HOLDS: usize = 5;
const DEFAULT_DIR: &str = "/tmp/relukko-locks";

#[test]
#[ignore = "a worker: its driver runs it"]
fn folder_worker() {
    let (Some(h), Ok(name)) = (History::from_env(), std::env::var(NAME_VAR)) else {
        return;
    };
    for _ in 0..HOLDS {
        let lease = relukko::lock_blocking(name.as_str()).expect("lock in the default folder");
        h.hold(&name, "folder_worker", Duration::from_millis(40));
        lease.release_blocking().unwrap();
    }
}

#[test]
fn processes_with_different_tmpdirs_share_the_default_folder() {
    let name = format!("e2e-default-folder-{}", uuid::Uuid::new_v4().simple());
    let history = History::create("default-folder");
    let (tmp_a, tmp_b) = (fresh_dir("tmpdir-a"), fresh_dir("tmpdir-b"));
    let children: Vec<_> = [&tmp_a, &tmp_b]
        .iter()
        .map(|tmp| {
            let env = [
                (WORKER_VAR, history.path().display().to_string()),
                (NAME_VAR, name.clone()),
                ("TMPDIR", tmp.path().display().to_string()),
            ];
            worker("folder_worker", true, 1, &env)
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait for worker");
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let s = history.summary();
    assert_eq!(s.entries, 2 * HOLDS, "{s:?}");
    assert_eq!(
        s.max_per_resource,
        1,
        "two holders at once: see {}",
        history.path().display()
    );
    // This run's lock file is of no use to anyone else.
    for entry in std::fs::read_dir(DEFAULT_DIR).expect("the default folder exists") {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&name)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The lock name of `lock_worker`.
const WORKER_LOCK: &str = "e2e-folder-of-others";

/// Locks twice in `RELUKKO_LOCAL_DIR` (the folder's warnings come once per
/// process); says why when it cannot.
#[test]
#[ignore = "a worker: its driver runs it"]
fn lock_worker() {
    if std::env::var_os(WORKER_VAR).is_none() {
        return;
    }
    for _ in 0..2 {
        let lease = relukko::lock_blocking(WORKER_LOCK)
            .unwrap_or_else(|e| panic!("lock_worker failed: {e}"));
        lease.release_blocking().unwrap();
    }
}

/// This test binary, copied into a fresh folder of the temp folder that
/// every user may enter, readable and executable by all: the one in
/// `target/` may sit in a folder only its owner may enter (a clone under
/// `/root`, or in a `mktemp -d` folder), where another user gets
/// "Permission denied" running it.
fn worker_binary_for_anyone() -> (TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = fresh_dir("worker-bin");
    std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
    for folder in dir.ancestors().skip(1) {
        let mode = std::fs::metadata(folder).unwrap().permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "other users cannot enter {} (mode {mode:o}), on the path of the temp folder {}",
            folder.display(),
            dir.display()
        );
    }
    let exe = std::env::current_exe().expect("this test binary");
    let copy = dir.join(exe.file_name().expect("a file name"));
    std::fs::copy(&exe, &copy).expect("copy the test binary");
    std::fs::set_permissions(&copy, PermissionsExt::from_mode(0o755)).unwrap();
    (dir, copy)
}

/// Runs `lock_worker` (from `exe`, in `exe`'s folder) in the lock folder
/// `dir`, as user `uid` if given; answers whether it succeeded, its folder
/// warnings, and all its output.
fn lock_in(exe: &Path, dir: &Path, uid: Option<u32>) -> (bool, Vec<String>, String) {
    use std::os::unix::process::CommandExt;
    let env = [
        (WORKER_VAR, "1".to_owned()),
        ("RELUKKO_LOCAL_DIR", dir.display().to_string()),
    ];
    let mut tries = 0;
    let out = loop {
        tries += 1;
        let mut cmd = worker_at(exe, "lock_worker", true, 1, &env);
        // The folder of this test's copy, not this process's own (which
        // `uid` may not be allowed to enter).
        cmd.current_dir(exe.parent().expect("the copy's folder"));
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        match cmd.output() {
            // The copy was just written: a child another thread forked
            // meanwhile may briefly hold it open for writing.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                std::thread::sleep(Duration::from_millis(50));
            }
            result => break result.expect("run lock_worker"),
        }
    };
    let warnings = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("relukko: the lock folder"))
        .map(str::to_owned)
        .collect();
    (out.status.success(), warnings, output_text(&out))
}

/// Whether `dir` is on a file system known to be local (Linux magic
/// numbers: ext2/3/4, tmpfs, overlay, btrfs, xfs), where no warning about a
/// network file system may come.
fn on_a_local_disk(dir: &Path) -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a buffer of the right type.
    if unsafe { libc::statfs(path.as_ptr(), &mut buf) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = buf.f_type as u32;
    [0xef53, 0x0102_1994, 0x794c_7630, 0x9123_683e, 0x5846_5342].contains(&magic)
}

/// On a shared machine (run as root, which can act as another user): a
/// folder of another user is worth one warning per process, one's own none;
/// a lock file of another user without write access is locked read-only; a
/// folder that may not be created is refused with the reason. Each of these
/// was left unchecked by every suite (no warning at all, warning about one's
/// own folder, failing on a read-only lock file, "no such file" instead of
/// "permission denied").
#[test]
fn folders_and_files_of_other_users() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    let nobody = 65534;
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(m)).unwrap();
    let (_bin, exe) = worker_binary_for_anyone();
    let lock_in = |dir: &Path, uid: Option<u32>| lock_in(&exe, dir, uid);

    // One's own folder, as root: no warning.
    let own = fresh_dir("folder-own");
    let (ok, warnings, out) = lock_in(&own, None);
    assert!(ok, "{out}");
    if on_a_local_disk(&own) {
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    // Another user's folder: one warning naming them.
    let theirs = fresh_dir("folder-theirs");
    mode(&theirs, 0o1777);
    chown(&theirs, Some(nobody), Some(nobody)).unwrap();
    let (ok, warnings, out) = lock_in(&theirs, None);
    assert!(ok, "{out}");
    let owner = format!(
        "the lock folder {} belongs to user {nobody}",
        theirs.display()
    );
    assert_eq!(
        warnings.iter().filter(|w| w.contains(&owner)).count(),
        1,
        "{out}"
    );

    // The same folder, as its owner: no warning.
    let (ok, warnings, out) = lock_in(&theirs, Some(nobody));
    assert!(ok, "{out}");
    assert!(
        warnings.iter().all(|w| !w.contains("belongs to user")),
        "{out}"
    );

    // A lock file of root's, read-only for others: locked all the same, and left as it was.
    let shared = fresh_dir("folder-shared");
    mode(&shared, 0o1777);
    let (ok, _, out) = lock_in(&shared, None);
    assert!(ok, "{out}");
    let file = std::fs::read_dir(shared.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(WORKER_LOCK)
                && p.extension().is_some_and(|e| e == "lock")
        })
        .expect("the worker's lock file");
    mode(&file, 0o644);
    let (ok, _, out) = lock_in(&shared, Some(nobody));
    assert!(ok, "{out}");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));

    // A folder that may not be created there: refused with the reason.
    let closed = fresh_dir("folder-closed");
    mode(&closed, 0o755);
    let (ok, _, out) = lock_in(&closed.join("locks"), Some(nobody));
    assert!(!ok, "{out}");
    assert!(out.contains("lock_worker failed"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
}
