//! `relukko` on the local backend against another user of the machine: as
//! root, with the user `nobody` (skipped, with a line saying so, otherwise).
//! The probe that found it: `nobody` had locked `rig-b` once, so owned its
//! lock file; while root held `rig-b`, `nobody` deleted the file (in a sticky
//! folder, owners delete their own files) and a second root process took
//! `rig-b` at once; the first holder learnt nothing until its release.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Backend, Running, STEP, output, relukko, text};

const NOBODY: u32 = 65534;

/// Whether this runs as root; if not, says that the test is skipped.
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root, to act as user nobody");
    }
    root
}

/// `cmd` run as user nobody; whether it succeeded.
fn as_nobody(cmd: &[&str]) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(cmd)
        .status()
        .expect("setpriv runs")
        .success()
}

/// The one lock file in `dir`.
fn lock_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lock"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_lock_file_another_user_deletes_while_held_is_noticed_within_seconds() {
    if !is_root() {
        return;
    }
    let backend = Backend::local();
    let Backend::Local(dir) = &backend else {
        unreachable!()
    };
    let dir = dir.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let env = ("RELUKKO_LOCAL_DIR", dir.display().to_string());
    let run = |args: &[&str]| {
        let mut cmd = relukko(&backend, args);
        cmd.env(env.0, &env.1);
        cmd
    };
    // `nobody` locked rig-b once: its lock file is theirs.
    let out = output(run(&["run", "rig-b", "--", "true"]));
    assert!(out.status.success(), "{}", text(&out));
    let file = lock_file(&dir);
    std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).unwrap();
    if !as_nobody(&["test", "-O", &file.display().to_string()]) {
        eprintln!("skipped: user nobody cannot reach {}", dir.display());
        return;
    }

    let go = dir.parent().unwrap().join("go");
    let script = format!("while [ ! -e {} ]; do sleep 0.1; done", go.display());
    let mut holder = Running::spawn(run(&["run", "rig-b", "--", "sh", "-c", &script]));
    holder.wait_for("holding rig-b");
    // One warning line, naming the user and the fix.
    let warned = holder.stderr();
    let warning = format!("the lock file {} belongs to user nobody", file.display());
    assert_eq!(warned.matches(&warning).count(), 1, "{warned}");
    assert!(warned.contains("have an admin create"), "{warned}");
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), NOBODY);

    assert!(
        as_nobody(&["rm", &file.display().to_string()]),
        "nobody deletes its file"
    );
    // Another process takes the name at once: two holders, which the
    // first must hear of within seconds, not at its release.
    let out = output(run(&["run", "rig-b", "--timeout", "5s", "--", "true"]));
    assert!(out.status.success(), "{}", text(&out));
    holder.wait_for("was deleted or replaced");
    // The command is stopped for it: `go` is never written.
    let status = holder.wait(STEP);
    let out = holder.output(status);
    assert_eq!(status.code(), Some(120), "{}", text(&out));
    assert!(text(&out).contains("lost rig-b"), "{}", text(&out));
}
