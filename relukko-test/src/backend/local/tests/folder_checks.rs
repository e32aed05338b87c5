//! The lock folder and its files as found on a real machine: records cut to
//! size, handles closed on exec, odd things planted at the lock path or the
//! folder path, folders created at once by many, and a folder shared by
//! several users.

use super::*;

/// A holder record is cut to [`folder::RECORD`] bytes, newline included, at
/// a character boundary: records in other users' files are padded to that
/// size, so a longer one would leave a tail behind. Cutting one byte longer,
/// or inside a character, left every suite green; a cut that never finds a
/// boundary fails here rather than hanging.
#[test]
fn a_long_record_is_cut_to_the_record_size_at_a_character_boundary() {
    let dir = TempDir::new("long-record");
    let local = Arc::new(Local::new(dir.path().to_path_buf()));
    let cases = [
        ("ascii", "c".repeat(3 * folder::RECORD), folder::RECORD),
        // Two bytes each: a cut at RECORD - 1 bytes falls inside one.
        (
            "accents",
            "é".repeat(3 * folder::RECORD / 2),
            folder::RECORD - 1,
        ),
    ];
    for (name, creator, len) in cases {
        let (tx, rx) = mpsc::channel();
        {
            let (local, creator) = (Arc::clone(&local), creator.clone());
            std::thread::spawn(move || {
                let mut request = wait(1000);
                request.creator = creator;
                let _ = tx.send(local.acquire_any_blocking(&[name.to_owned()], &request, None));
            });
        }
        let (_, held) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the record is written")
            .unwrap();
        let record = std::fs::read(local.path_for(name)).unwrap();
        assert_eq!(record.len(), len, "{name}");
        let text = String::from_utf8(record).expect("whole characters only");
        assert_eq!(text, format!("{}\n", &creator[..len - 1]), "{name}");
        assert_eq!(held.release().unwrap(), Released::Freed);
    }
}

/// Lock files are not inherited by child processes (`O_CLOEXEC`): a child
/// that outlived its parent would keep the lock held (leaving the flag out
/// left every suite green).
#[cfg(unix)]
#[test]
fn lock_files_are_closed_on_exec() {
    use std::os::fd::AsRawFd;
    let dir = TempDir::new("cloexec");
    let local = Local::new(dir.path().to_path_buf());
    let (_, held) = local
        .acquire_any_blocking(&["x".to_owned()], &wait(1000), None)
        .unwrap();
    // SAFETY: F_GETFD on a valid handle.
    let flags = unsafe { libc::fcntl(held.taken.file.file.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0, "{}", std::io::Error::last_os_error());
    assert_ne!(flags & libc::FD_CLOEXEC, 0, "inherited by child processes");
    assert_eq!(held.release().unwrap(), Released::Freed);
}

/// A FIFO planted at a lock file's path, whose opening blocks until a writer
/// comes, is refused at once, also when only read for waiters' messages
/// (opening without `O_NONBLOCK` left every suite green).
#[cfg(unix)]
#[test]
fn a_planted_fifo_is_refused_without_blocking() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("fifo");
    let local = Arc::new(Local::new(dir.path().to_path_buf()));
    let path = std::ffi::CString::new(local.path_for("rig").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let (tx, rx) = mpsc::channel();
    {
        let local = Arc::clone(&local);
        std::thread::spawn(move || {
            let names = ["rig".to_owned()];
            let _ = tx.send(local.holders(&names));
            let err = local.acquire_any_blocking(&names, &wait(200), None);
            let _ = tx.send(err.map(|_| ()).unwrap_err().to_string());
        });
    }
    let bound = Duration::from_secs(60);
    let holder = rx
        .recv_timeout(bound)
        .expect("reading the holder does not block");
    assert_eq!(holder, "an unknown holder");
    let err = rx.recv_timeout(bound).expect("locking does not block");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(err.contains("remove"), "{err}");
}

/// A folder at a lock file's path is refused with the OS's reason: only a
/// file without write access for us is retried read-only (retrying every
/// error read-only left every suite green).
#[cfg(unix)]
#[test]
fn a_folder_at_a_lock_files_path_is_refused_as_one() {
    let dir = TempDir::new("dir-at-lock");
    let local = Local::new(dir.path().to_path_buf());
    std::fs::create_dir(local.path_for("rig")).unwrap();
    let err = local
        .acquire_any_blocking(&["rig".to_owned()], &wait(200), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Is a directory"), "{err}");
    assert!(err.contains("remove"), "{err}");
}

/// A lock folder path that is a file, or runs through one, is refused
/// naming the path asked for (treating every failure to open it as "missing"
/// and creating it named the file's parent instead; not telling "not a
/// folder" apart left every suite green).
#[cfg(unix)]
#[test]
fn a_lock_folder_path_that_is_a_file_is_refused_naming_it() {
    let dir = TempDir::new("file-folder");
    let file = dir.path().join("locks");
    std::fs::write(&file, "").unwrap();
    for path in [file.clone(), file.join("inner")] {
        let err = Local::new(path.clone())
            .acquire_any_blocking(&["rig".to_owned()], &wait(200), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{} is not a folder", path.display())),
            "{err}"
        );
        assert!(err.contains("RELUKKO_LOCAL_DIR"), "{err}");
    }
}

/// Processes started at once on a fresh machine all find the lock folder
/// missing and create it: those that lose the race use the winner's folder
/// (failing on "already exists" left every suite green).
#[test]
fn threads_creating_the_missing_folder_at_once_all_get_in() {
    let dir = TempDir::new("create-race");
    for round in 0..20 {
        let locks = dir.path().join(format!("r{round}")).join("locks");
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (locks, barrier) = (locks.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let local = Local::new(locks);
                    barrier.wait();
                    local
                        .acquire_any_blocking(&[format!("t{i}")], &wait(5000), None)
                        .map(|(_, held)| drop(held))
                })
            })
            .collect();
        for t in threads {
            t.join()
                .unwrap()
                .expect("the folder another thread created");
        }
    }
}

#[cfg(unix)]
mod shared_host {
    //! Other users of the machine may own the folder, or plant files in it.

    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// A file of a victim's, outside the folder, that planted links lead to.
    fn victim(dir: &TempDir) -> PathBuf {
        let target = dir.path().join("authorized_keys");
        std::fs::write(&target, "ssh-ed25519 AAAA victim\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        target
    }

    fn assert_untouched(target: &std::path::Path) {
        assert_eq!(
            std::fs::read_to_string(target).unwrap(),
            "ssh-ed25519 AAAA victim\n"
        );
        assert_eq!(mode(target), 0o600);
    }

    #[test]
    fn a_planted_symlink_is_refused_and_its_target_untouched() {
        let (dir, elsewhere) = (TempDir::new("planted"), TempDir::new("victim"));
        let target = victim(&elsewhere);
        let local = Local::new(dir.path().to_path_buf());
        symlink(&target, local.path_for("rig")).unwrap();
        let err = local
            .acquire_any_blocking(&["rig".to_owned()], &wait(200), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(err.contains("remove it"), "{err}");
        assert_untouched(&target);
        // Its waiters' messages do not read it either.
        assert_eq!(local.holders(&["rig".to_owned()]), "an unknown holder");
    }

    #[test]
    fn a_planted_hard_link_is_refused_and_its_target_untouched() {
        let dir = TempDir::new("hardlink");
        let target = victim(&dir);
        let local = Local::new(dir.path().to_path_buf());
        std::fs::hard_link(&target, local.path_for("rig")).unwrap();
        let err = local
            .acquire_any_blocking(&["rig".to_owned()], &wait(200), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hard links"), "{err}");
        assert_untouched(&target);
    }

    #[test]
    fn a_folder_that_is_a_symlink_is_refused() {
        let dir = TempDir::new("dir-link");
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("locks");
        symlink(&real, &link).unwrap();
        let local = Local::new(link.clone());
        let err = local
            .acquire_any_blocking(&["rig".to_owned()], &wait(200), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "the lock folder {} is a symbolic link",
                link.display()
            )),
            "{err}"
        );
        assert!(err.contains("RELUKKO_LOCAL_DIR"), "{err}");
        assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    }

    #[test]
    fn a_folder_anyone_may_write_needs_the_sticky_bit() {
        let dir = TempDir::new("no-sticky");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let local = Local::new(dir.path().to_path_buf());
        let names = ["rig".to_owned()];
        let err = local
            .acquire_any_blocking(&names, &wait(200), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("chmod +t {}", dir.path().display())),
            "{err}"
        );
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        local
            .acquire_any_blocking(&names, &wait(200), None)
            .unwrap();
    }

    #[test]
    fn a_missing_folder_is_created_open_to_all_with_the_sticky_bit() {
        let dir = TempDir::new("create");
        let locks = dir.path().join("a").join("locks");
        let local = Local::new(locks.clone());
        let (_, held) = local
            .acquire_any_blocking(&["rig".to_owned()], &wait(200), None)
            .unwrap();
        assert_eq!(mode(&locks), 0o1777);
        assert_eq!(mode(&local.path_for("rig")), 0o666);
        held.release().unwrap();
    }

    /// As root: a folder (and a lock file) owned by another user still
    /// works, but that user's file is neither truncated nor chmod-ed.
    #[test]
    fn a_folder_and_file_of_another_user_work_without_chmod_or_truncation() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to chown a folder to another user");
            return;
        }
        let nobody = 65534;
        let dir = TempDir::new("other-user");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(nobody), Some(nobody)).unwrap();
        let local = Local::new(dir.path().to_path_buf());
        let theirs = local.path_for("theirs");
        let old = "x".repeat(2 * folder::RECORD);
        std::fs::write(&theirs, &old).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(nobody), Some(nobody)).unwrap();

        let names = ["theirs".to_owned()];
        let (_, held) = local
            .acquire_any_blocking(&names, &wait(200), None)
            .unwrap();
        let len = std::fs::metadata(&theirs).unwrap().len();
        assert_eq!(len, old.len() as u64, "not truncated");
        assert_eq!(mode(&theirs), 0o640, "not chmod-ed");
        let text = std::fs::read_to_string(&theirs).unwrap();
        assert!(text.starts_with("me@here test=t pid=1 since "), "{text}");
        // Padded to exactly the record size, nothing written past it
        // (padding one byte more left every suite green).
        let bytes = std::fs::read(&theirs).unwrap();
        assert_eq!(
            bytes[folder::RECORD - 1],
            b'\n',
            "padded to the record size"
        );
        assert_eq!(
            &bytes[folder::RECORD..],
            &old.as_bytes()[folder::RECORD..],
            "nothing written past the record"
        );
        held.release().unwrap();
        let text = std::fs::read_to_string(&theirs).unwrap();
        assert!(
            text[..folder::RECORD].trim().is_empty(),
            "record cleared: {text}"
        );

        // A file of ours in their folder is ours to set up.
        let (_, mine) = local
            .acquire_any_blocking(&["mine".to_owned()], &wait(200), None)
            .unwrap();
        assert_eq!(mode(&local.path_for("mine")), 0o666);
        mine.release().unwrap();
        assert_eq!(std::fs::metadata(local.path_for("mine")).unwrap().len(), 0);
    }
}
