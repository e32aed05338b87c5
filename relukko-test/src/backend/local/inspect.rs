//! Who holds what on the local backend, for `relukko list`, `who` and
//! `release`: the lock files whose lock is held by a live process.
//!
//! A file is held if a shared `try_lock` on it fails; a free file is let go
//! at once (a taker that tries in that instant falls back to its blocking
//! wait, which the kernel ends as soon as we let go). The record in the file
//! says who holds it; a record left by a holder that died is not shown,
//! since its lock is free.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use super::{Local, read_record};
use crate::error::{Error, Result};

/// One held lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// The lock name, with the prefix (as recorded by the holder).
    pub lock_name: String,
    /// The holder's creator text, if recorded.
    pub creator: Option<String>,
    /// Since when (RFC 3339 UTC), if recorded.
    pub since: Option<String>,
    /// The lock file.
    pub file: PathBuf,
}

impl Holding {
    /// The lock file's name: the lock's id on this backend.
    pub fn id(&self) -> String {
        self.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

impl Local {
    /// The folder of the lock files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every lock file with a live holder, by lock name.
    pub fn held(&self) -> Result<Vec<Holding>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::local("(every lock)", &self.dir, e)),
        };
        let mut held = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "lock")
                && let Some(h) = holding_at(&path)?
            {
                held.push(h);
            }
        }
        held.sort_by(|a, b| a.lock_name.cmp(&b.lock_name));
        Ok(held)
    }

    /// Who holds `lock_name`, if anyone.
    pub fn holding(&self, lock_name: &str) -> Result<Option<Holding>> {
        let found = holding_at(&self.path_for(lock_name))?;
        // A file of another name that hashes alike would be a different file.
        Ok(found.map(|h| Holding {
            lock_name: lock_name.to_owned(),
            ..h
        }))
    }

    /// The held lock whose id (lock file name) is `id`, if any.
    pub fn holding_id(&self, id: &str) -> Result<Option<Holding>> {
        if !id.ends_with(".lock") || id.contains(['/', '\\']) {
            return Ok(None);
        }
        holding_at(&self.dir.join(id))
    }

    /// Frees the name for the next taker by removing the lock file. The
    /// holder keeps its (now nameless) file until it releases; its lease
    /// turns lost within seconds (see `watch`), and its release says so.
    pub fn force_release(&self, h: &Holding) -> Result<()> {
        std::fs::remove_file(&h.file).map_err(|e| Error::local(&h.lock_name, &h.file, e))
    }
}

/// The holding of the lock file at `path`, if a live process holds it.
fn holding_at(path: &Path) -> Result<Option<Holding>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::local("(lock file)", path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            return Ok(None);
        }
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(Error::local("(lock file)", path, e)),
    }
    drop(file);
    let record = read_record(path).unwrap_or_default();
    Ok(Some(parse(&record, path)))
}

/// Reads a record: the holder line, then a JSON line (older records have
/// only the holder line; the name then comes from the file name).
fn parse(record: &str, path: &Path) -> Holding {
    let mut lines = record.lines();
    let first = lines.next().unwrap_or_default().trim();
    let json: Option<serde_json::Value> = lines.next().and_then(|l| serde_json::from_str(l).ok());
    let field = |k: &str| {
        json.as_ref()
            .and_then(|j| j.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // `<readable>-<16 hex digits>`: the readable part stands in for the name.
    let from_file = stem
        .rsplit_once('-')
        .map_or(stem.clone(), |(readable, _)| readable.to_owned());
    Holding {
        lock_name: field("lock_name").unwrap_or(from_file),
        creator: field("creator").or_else(|| (!first.is_empty()).then(|| first.to_owned())),
        since: field("since"),
        file: path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::locker::LockOptions;
    use crate::locker::Locker;
    use crate::test_support::TempDir;

    #[test]
    fn held_files_are_listed_with_their_record_and_free_ones_are_not() {
        let dir = TempDir::new("inspect");
        let local = Local::new(dir.path().to_owned());
        let locker = Locker::local(dir.path()).creator("alice@ci");
        // Bounded (generously), so that a broken lock fails here instead of
        // waiting out the default ten minutes.
        let lease = locker.lock_blocking(bounded("inspect/rig 1")).unwrap();
        let free = locker.lock_blocking(bounded("inspect-free")).unwrap();
        free.release_blocking().unwrap();

        let held = local.held().unwrap();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(held[0].lock_name, "inspect/rig 1");
        assert_eq!(held[0].creator.as_deref(), Some("alice@ci"));
        assert!(held[0].since.is_some());
        assert_eq!(
            local.holding("inspect/rig 1").unwrap(),
            Some(held[0].clone())
        );
        assert_eq!(
            local.holding_id(&held[0].id()).unwrap(),
            Some(held[0].clone())
        );
        assert_eq!(local.holding("inspect-free").unwrap(), None);

        local.force_release(&held[0]).unwrap();
        assert_eq!(local.holding("inspect/rig 1").unwrap(), None);
        // The next taker gets it while the old holder still holds its file,
        // which learns at release that it had lost it.
        let next = locker.lock_blocking(bounded("inspect/rig 1")).unwrap();
        assert!(matches!(
            lease.release_blocking(),
            Err(crate::error::Error::LockLost { .. })
        ));
        next.release_blocking().unwrap();
    }

    #[test]
    fn an_old_record_without_json_falls_back_to_the_file_name() {
        let h = parse(
            "bob since 2024",
            Path::new("/l/hil-rig-3-0123456789abcdef.lock"),
        );
        assert_eq!(h.lock_name, "hil-rig-3");
        assert_eq!(h.creator.as_deref(), Some("bob since 2024"));
        assert_eq!(h.since, None);
    }

    fn bounded(name: &str) -> LockOptions {
        LockOptions::new(name).timeout(Duration::from_secs(60))
    }

    /// A folder nobody has locked in yet holds nothing; one that cannot be
    /// read is an error, not an empty list (taking either for the other left
    /// every suite green).
    #[test]
    fn a_missing_folder_holds_nothing_and_an_unreadable_one_is_an_error() {
        let dir = TempDir::new("inspect-missing");
        let missing = Local::new(dir.path().join("none")).held().unwrap();
        assert!(missing.is_empty(), "{missing:?}");
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = Local::new(file.clone()).held().unwrap_err().to_string();
        assert!(err.contains(&file.display().to_string()), "{err}");
    }

    /// `holding` answers the name it was asked for, also when the record has
    /// no JSON line to name it, where the file name would make it `a_b`
    /// (taking the record's name left every suite green).
    #[test]
    fn holding_answers_the_name_asked_for() {
        let dir = TempDir::new("inspect-name");
        let local = Local::new(dir.path().to_owned());
        let lease = Locker::local(dir.path())
            .lock_blocking(bounded("a b"))
            .unwrap();
        // An older version's record: the holder line only.
        std::fs::write(
            super::super::tests::my_record(&local, "a b"),
            "bob since 2024\n",
        )
        .unwrap();
        let h = local.holding("a b").unwrap().expect("held");
        assert_eq!(h.lock_name, "a b");
        assert_eq!(h.creator.as_deref(), Some("bob since 2024"));
        lease.release_blocking().unwrap();
    }

    /// An id is the name of a lock file in this folder: one with a path in
    /// it is none, even if it leads to a held lock file elsewhere (accepting
    /// it left every suite green).
    #[test]
    fn an_id_with_a_path_is_no_id_here() {
        let dir = TempDir::new("inspect-id");
        let (here, there) = (dir.path().join("here"), dir.path().join("there"));
        std::fs::create_dir_all(&here).unwrap();
        let lease = Locker::local(&there)
            .lock_blocking(bounded("elsewhere"))
            .unwrap();
        let there = Local::new(there);
        let id = there.path_for("elsewhere");
        let id = id.file_name().unwrap().to_string_lossy().into_owned();
        assert!(there.holding_id(&id).unwrap().is_some(), "held there");
        let local = Local::new(here);
        assert_eq!(local.holding_id(&format!("../there/{id}")).unwrap(), None);
        lease.release_blocking().unwrap();
    }

    /// A lock file that cannot be opened (here a symlink to itself) is an
    /// error, not "nobody holds it" (answering that left every suite green).
    #[cfg(unix)]
    #[test]
    fn a_lock_file_that_cannot_be_opened_is_an_error() {
        let dir = TempDir::new("inspect-loop");
        let local = Local::new(dir.path().to_owned());
        let path = local.path_for("loop");
        std::os::unix::fs::symlink(&path, &path).unwrap();
        let err = local.holding("loop").unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
