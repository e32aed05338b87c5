//! The lock folder and its files as found on a real machine: records cut to
//! size, handles closed on exec, odd things planted at the lock path or the
//! folder path, folders created at once by many, and a folder shared by
//! several users.

use super::*;

/// A holder record is cut to [`folder::RECORD`] bytes, newline included, at
/// a character boundary (it once was padded to that size in other users'
/// files). Cutting one byte longer, or inside a character, left every suite
/// green; a cut that never finds a boundary fails here rather than hanging.
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
        let record = std::fs::read(my_record(&local, name)).unwrap();
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
    assert_eq!(holder, NO_RECORD);
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
        assert_eq!(local.holders(&["rig".to_owned()]), NO_RECORD);
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
        assert_eq!(mode(&local.path_for("rig")), 0o644);
        assert_eq!(mode(&my_record(&local, "rig")), 0o600);
        held.release().unwrap();
    }

    /// As root: a folder (and a lock file) owned by another user still
    /// works, but that user's file is neither written, truncated nor
    /// chmod-ed: the record goes to this user's own record file.
    #[test]
    fn a_folder_and_file_of_another_user_work_untouched() {
        if !is_root("chown a folder to another user") {
            return;
        }
        let dir = TempDir::new("other-user");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        let local = Local::new(dir.path().to_path_buf());
        let theirs = local.path_for("theirs");
        let old = "x".repeat(2 * folder::RECORD);
        std::fs::write(&theirs, &old).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();

        let names = ["theirs".to_owned()];
        let (_, held) = local
            .acquire_any_blocking(&names, &wait(200), None)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), old, "untouched");
        assert_eq!(mode(&theirs), 0o640, "not chmod-ed");
        let record = std::fs::read_to_string(my_record(&local, "theirs")).unwrap();
        assert!(
            record.starts_with("me@here test=t pid=1 since "),
            "{record}"
        );
        assert!(
            local
                .holders(&names)
                .starts_with("me@here test=t pid=1 since ")
        );
        held.release().unwrap();
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), old, "untouched");
        assert_eq!(
            std::fs::metadata(my_record(&local, "theirs"))
                .unwrap()
                .len(),
            0,
            "record cleared"
        );

        // A file of ours in their folder is ours to set up.
        let (_, mine) = local
            .acquire_any_blocking(&["mine".to_owned()], &wait(200), None)
            .unwrap();
        assert_eq!(mode(&local.path_for("mine")), 0o644);
        mine.release().unwrap();
    }

    /// Lock files are 0644 and records 0600 whatever the umask, and a lock
    /// file of ours left 0666 by an older version, with its record inside
    /// (readable by all), is made 0644 and emptied (0666 files and records in
    /// the lock file let any user read a creator's CI token, and forge it).
    #[test]
    fn lock_files_are_0644_and_records_0600_whatever_the_umask() {
        let dir = TempDir::new("modes");
        let local = Local::new(dir.path().to_path_buf());
        let old = local.path_for("old");
        std::fs::write(&old, "bob token=SECRET since 2024\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o666)).unwrap();
        for umask in [0o077, 0o000] {
            // SAFETY: umask cannot fail; other tests' files get explicit modes.
            let before = unsafe { libc::umask(umask) };
            let taken = ["new", "old"].map(|n| {
                local
                    .acquire_any_blocking(&[n.to_owned()], &wait(1000), None)
                    .unwrap()
                    .1
            });
            // SAFETY: as above.
            unsafe { libc::umask(before) };
            for n in ["new", "old"] {
                assert_eq!(mode(&local.path_for(n)), 0o644, "{n}, umask {umask:o}");
                assert_eq!(mode(&my_record(&local, n)), 0o600, "{n}, umask {umask:o}");
            }
            assert_eq!(std::fs::metadata(&old).unwrap().len(), 0, "old record kept");
            for held in taken {
                held.release().unwrap();
            }
        }
    }

    /// As root, with the other user `nobody` in a shared folder: while root
    /// holds a lock, nobody can read its record (nor find it in the lock
    /// file), write the lock file or the record, or delete the record; and a
    /// record nobody plants under its own name does not make it the holder
    /// (before, the record in the 0666 lock file was readable and writable
    /// by all, so `relukko who` showed a forged holder).
    #[test]
    fn another_user_can_neither_read_nor_forge_the_holder_record() {
        if !is_root("run a child as user nobody") {
            return;
        }
        let dir = TempDir::new("forge");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let local = Arc::new(Local::new(dir.path().to_path_buf()));
        let names = ["rig-a".to_owned()];
        let mut request = wait(1000);
        request.creator = "alice token=SECRET-7f3".into();
        let (_, held) = local.acquire_any_blocking(&names, &request, None).unwrap();

        let lock = local.path_for("rig-a");
        let record = my_record(&local, "rig-a");
        let planted = dir
            .path()
            .join(folder::record_name(&file_name("rig-a"), NOBODY));
        let script = r#"
            [ -r "$2" ] || { echo cannot-reach-folder; exit 0; }
            cat "$1" >/dev/null 2>&1 && echo read-record
            grep -q SECRET "$2" 2>/dev/null && echo read-secret-in-lock-file
            (printf forged >> "$2") 2>/dev/null && echo wrote-lock-file
            (printf forged >> "$1") 2>/dev/null && echo wrote-record
            rm -f "$1" 2>/dev/null; [ -e "$1" ] || echo deleted-record
            printf 'forged since 2099
{"lock_name":"rig-a","creator":"forged","since":"2099"}
'                 > "$3" && echo planted
        "#;
        let out = as_nobody(script, &[&record, &lock, &planted]);
        if out.trim() == "cannot-reach-folder" {
            eprintln!("skipped: user nobody cannot reach {}", dir.path().display());
            return;
        }
        assert_eq!(out.trim(), "planted", "what user nobody could do");
        let holder = local.holders(&names);
        assert!(
            holder.starts_with("alice token=SECRET-7f3 since "),
            "{holder}"
        );
        held.release().unwrap();
    }

    /// As root, one warning line names the other user (not root) owning a
    /// lock file (it can delete it while it is held) and the fix.
    #[test]
    fn the_warning_for_a_lock_file_of_another_user_names_them_and_the_fix() {
        let w = super::folder::foreign_lock_file_warning(
            std::path::Path::new("/l/rig-b-0.lock"),
            "rig-b",
            NOBODY,
        );
        assert!(
            w.starts_with("the lock file /l/rig-b-0.lock belongs to user nobody (uid 65534)")
                || w.starts_with("the lock file /l/rig-b-0.lock belongs to user uid 65534"),
            "{w}"
        );
        assert!(w.contains("can delete it while it is held"), "{w}");
        assert!(w.contains("have an admin create"), "{w}");
        assert!(w.contains("Relukko server"), "{w}");
    }

    const NOBODY: u32 = 65534;

    /// Whether this runs as root; if not, says that the test is skipped.
    fn is_root(to: &str) -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            eprintln!("skipped: needs root to {to}");
        }
        root
    }

    /// Runs `sh -c script` as user nobody with `args` as $1...; its stdout.
    fn as_nobody(script: &str, args: &[&std::path::Path]) -> String {
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .args(args)
            .output()
            .or_else(|_| {
                let quoted: Vec<String> =
                    args.iter().map(|a| format!("'{}'", a.display())).collect();
                std::process::Command::new("su")
                    .args(["-s", "/bin/sh", "nobody", "-c"])
                    .arg(format!("set -- {}; {script}", quoted.join(" ")))
                    .output()
            })
            .expect("run a child as nobody (setpriv or su)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
