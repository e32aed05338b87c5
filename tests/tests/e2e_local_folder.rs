//! The local backend's default folder is one per machine: processes that
//! disagree on `TMPDIR` (per-user on macOS, dropped by `sudo`, set per job by
//! sandboxes and CI) still lock the same files.
//!
//! `folder_worker` does nothing unless `RELUKKO_E2E_WORKER` names a history
//! file: the driver runs this binary again with it set, and without any
//! `RELUKKO_*` setting, so the default folder is used.
#![cfg(unix)]

use std::time::Duration;

use relukko_e2e::history::{History, WORKER_VAR, fresh_dir, output_text, worker};

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
