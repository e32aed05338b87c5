//! The embedded local backend: one lock file per resource in one folder per
//! machine, locked with the OS's file locks (`flock` on Unix, `LockFileEx` on
//! Windows).
//!
//! A file lock belongs to an open file description, so two threads of one
//! process contend like two processes do, and the kernel frees the lock the
//! moment a process dies, even by SIGKILL. Lock files are never deleted:
//! deleting a file another process has open would let a third process lock a
//! new file of the same name while the first still holds the old one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Released, Wait};
use crate::error::{Error, Result};
use crate::report::{self, Progress};

/// The first pause between two tries: short, so a handoff is quick.
const POLL_FIRST: Duration = Duration::from_micros(250);
/// The longest pause between two tries.
const POLL_MAX: Duration = Duration::from_millis(20);

/// Lock files in one folder.
#[derive(Debug)]
pub(crate) struct Local {
    dir: PathBuf,
}

/// A held lock file; closing it frees the lock.
#[derive(Debug)]
pub(crate) struct LocalHeld {
    file: File,
    path: PathBuf,
    resource: String,
}

impl Local {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Local { dir }
    }

    /// The lock file of `name`: a readable, sanitized part plus a hash of the
    /// exact name, so names differing in case or in odd characters stay
    /// distinct also on case-insensitive file systems.
    pub(crate) fn path_for(&self, name: &str) -> PathBuf {
        let readable: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        self.dir
            .join(format!("{readable}-{:016x}.lock", fnv1a(name.as_bytes())))
    }

    /// Waits until one of `names` is free, blocking this thread; answers the
    /// index and the held file. `cancel` stops the wait early.
    pub(crate) fn acquire_any_blocking(
        &self,
        names: &[String],
        wait: &Wait,
        cancel: Option<&AtomicBool>,
    ) -> Result<(usize, LocalHeld)> {
        let start = Instant::now();
        let deadline = start + wait.timeout;
        self.ensure_dir(&names[0])?;
        let files: Vec<(&String, PathBuf, File)> = names
            .iter()
            .map(|n| self.open(n).map(|f| (n, self.path_for(n), f)))
            .collect::<Result<Vec<_>>>()?;
        let mut progress = Progress::new(start, deadline);
        let mut pause = POLL_FIRST;
        let mut files = files;
        loop {
            let mut got = None;
            for (i, (name, path, file)) in files.iter_mut().enumerate() {
                match file.try_lock() {
                    Ok(()) if is_current(file, path) => {
                        got = Some(i);
                        break;
                    }
                    Ok(()) => {
                        // The file was deleted or replaced since we opened it:
                        // others lock the file the name leads to now, so must we.
                        let _ = file.unlock();
                        *file = self.open(name)?;
                    }
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(e)) => return Err(local_err(name, path, e)),
                }
            }
            if let Some(i) = got {
                let (name, path, file) = files.swap_remove(i);
                let held = LocalHeld {
                    file,
                    path,
                    resource: name.clone(),
                };
                held.record(&wait.creator);
                return Ok((i, held));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::WaitTimeout {
                    resource: what(names),
                    waited: report::round_ms(start.elapsed()),
                    holder: Some(self.holders(names)),
                });
            }
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(Error::WaitTimeout {
                    resource: what(names),
                    waited: report::round_ms(start.elapsed()),
                    holder: None,
                });
            }
            if progress.due(now) {
                progress.print(&what(names), &self.holders(names));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 3 / 2).min(POLL_MAX);
        }
    }

    /// The async form: waits on a blocking thread of the background runtime.
    /// Dropping the future cancels the wait; a lock taken just as it was
    /// dropped is closed (freed) with the unused result.
    pub(crate) async fn acquire_any(
        this: Arc<Self>,
        names: Vec<String>,
        wait: Wait,
    ) -> Result<(usize, LocalHeld)> {
        struct CancelOnDrop(Arc<AtomicBool>);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        let task = crate::runtime::handle()
            .spawn_blocking(move || this.acquire_any_blocking(&names, &wait, Some(&cancel)));
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("relukko: local lock wait cancelled: {e}"),
        }
    }

    /// Who holds each of `names`, as recorded in the lock files (for several,
    /// `name: holder; ...`).
    pub(crate) fn holders(&self, names: &[String]) -> String {
        let one = |n: &String| {
            let text =
                read_holder(&self.path_for(n)).unwrap_or_else(|| "an unknown holder".to_owned());
            if names.len() == 1 {
                text
            } else {
                format!("{n}: {text}")
            }
        };
        names.iter().map(one).collect::<Vec<_>>().join("; ")
    }

    /// Creates the folder, open to every user of the machine where possible
    /// (like /tmp: anyone may add files, only owners delete them).
    fn ensure_dir(&self, resource: &str) -> Result<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| local_err(resource, &self.dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Best effort: in a folder someone else owns this fails, harmlessly.
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o1777));
        }
        Ok(())
    }

    /// Opens (creating) the lock file, readable and writable by every user
    /// where possible; read-only if that is all we may (locking still works).
    fn open(&self, name: &str) -> Result<File> {
        let path = self.path_for(name);
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o666);
        match opts.open(&path) {
            Ok(f) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    // The umask may have removed write bits for others; best effort.
                    let _ = f.set_permissions(std::fs::Permissions::from_mode(0o666));
                }
                Ok(f)
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                File::open(&path).map_err(|e| local_err(name, &path, e))
            }
            Err(e) => Err(local_err(name, &path, e)),
        }
    }
}

impl LocalHeld {
    /// Writes who holds the lock into the file, for waiters' messages. Best
    /// effort: the lock itself does not depend on it.
    fn record(&self, creator: &str) {
        let text = format!("{creator} since {}\n", report::now());
        let mut f = &self.file;
        let _ = f.set_len(0);
        let _ = f.rewind();
        let _ = f.write_all(text.as_bytes());
    }

    /// Empties the record and frees the lock. If the lock file was deleted
    /// or replaced while held, others may have locked the new file meanwhile:
    /// that is reported as [`Released::AlreadyGone`], so the holder learns it.
    pub(crate) fn release(self) -> Result<Released> {
        let intact = is_current(&self.file, &self.path);
        let _ = self.file.set_len(0);
        self.file
            .unlock()
            .map_err(|e| local_err(&self.resource, &self.path, e))?;
        Ok(if intact {
            Released::Freed
        } else {
            Released::AlreadyGone
        })
    }
}

/// Whether `path` still leads to the open `file` (not deleted, not replaced).
#[cfg(unix)]
fn is_current(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Stable std offers no file identity here: the check is skipped.
#[cfg(not(unix))]
fn is_current(_file: &File, _path: &Path) -> bool {
    true
}

fn read_holder(path: &Path) -> Option<String> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// What is waited for, for messages.
pub(crate) fn what(names: &[String]) -> String {
    match names {
        [one] => one.clone(),
        many => format!("any of {}", many.join(", ")),
    }
}

fn local_err(resource: &str, path: &Path, source: std::io::Error) -> Error {
    Error::Local {
        resource: resource.to_owned(),
        path: path.to_owned(),
        source,
    }
}

/// FNV-1a, 64 bits: a hash that every build of this crate agrees on (std's
/// hasher may change between Rust versions, and two test binaries built by
/// different toolchains must find the same file).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("relukko-unit-{tag}-{}", uuid::Uuid::new_v4()))
    }

    fn wait(ms: u64) -> Wait {
        Wait {
            timeout: Duration::from_millis(ms),
            creator: "me@here test=t pid=1".into(),
            lease: Duration::from_secs(60),
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
        let local = Local::new(temp_dir("contend"));
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
        let local = Arc::new(Local::new(temp_dir("replaced")));
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
        let local = Local::new(temp_dir("deleted"));
        let names = vec!["d".to_owned()];
        let (_, held) = local
            .acquire_any_blocking(&names, &wait(1000), None)
            .unwrap();
        std::fs::remove_file(local.path_for("d")).unwrap();
        assert_eq!(held.release().unwrap(), Released::AlreadyGone);
    }

    #[test]
    fn any_of_takes_a_free_one() {
        let local = Local::new(temp_dir("pool"));
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
}
