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
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::{Released, Wait};
use crate::error::{Error, Result};
use crate::report::{self, Progress};

/// How often a waiter that can be cancelled looks at its flag while its
/// helpers block.
const CANCEL_CHECK: Duration = Duration::from_millis(20);

/// What a helper thread reports: the index of its name and the file it
/// locked, or why it could not.
type Outcome = (usize, Result<File>);

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

    /// Where its lock files are, to tell lockers on the same files apart
    /// from others (also without the `cli` feature's inspection helpers).
    pub(crate) fn place(&self) -> String {
        format!("local {}", self.dir.display())
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
    ///
    /// First one `try_lock` per name, in order, so a free lock costs no
    /// thread. Then one helper thread per name waits in a blocking lock
    /// (`flock(LOCK_EX)`; `LockFileEx` on Windows): the kernel wakes it the
    /// moment the holder unlocks, where polling would wake late, or lose the
    /// lock to a process that releases and locks again between two polls.
    /// The first helper to lock wins; this thread waits for it on a channel,
    /// so it still prints progress lines and honours the deadline and
    /// `cancel`.
    ///
    /// A blocked lock cannot be interrupted: when the wait ends (won, timed
    /// out or cancelled), the other helpers are abandoned. Each lives on,
    /// blocked, until its holder releases, then closes its file (so frees the
    /// lock at once, without keeping it) and ends. Such a thread costs an open
    /// file and a parked thread until then.
    pub(crate) fn acquire_any_blocking(
        &self,
        names: &[String],
        wait: &Wait,
        cancel: Option<&AtomicBool>,
    ) -> Result<(usize, LocalHeld)> {
        let start = Instant::now();
        let deadline = start + wait.timeout;
        self.ensure_dir(&names[0])?;
        let mut files = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let path = self.path_for(name);
            let mut file = open_lock_file(name, &path)?;
            if try_take(name, &path, &mut file)? {
                return Ok((i, self.hold(names, i, file, &wait.creator)));
            }
            files.push((path, file));
        }
        let timed_out = || Error::WaitTimeout {
            resource: what(names),
            waited: report::round_ms(start.elapsed()),
            holder: Some(self.holders(names)),
        };
        if Instant::now() >= deadline {
            return Err(timed_out());
        }

        // Dropped on every way out of here (also by `?` and a panic): the
        // flag keeps abandoned helpers from blocking again, and dropping the
        // receiver makes their late sends fail (and drops what was sent but
        // not taken), so their files are closed, the locks freed, at once.
        let abandoned = Abandoned(Arc::new(AtomicBool::new(false)));
        let (tx, rx) = mpsc::channel::<Outcome>();
        for (i, (path, file)) in files.into_iter().enumerate() {
            let (name, tx, flag) = (names[i].clone(), tx.clone(), Arc::clone(&abandoned.0));
            let path_shown = path.clone();
            std::thread::Builder::new()
                .name("relukko-flock".to_owned())
                .spawn(move || block_until_locked(i, &name, path, file, &flag, &tx))
                .map_err(|e| local_err(&names[i], &path_shown, e))?;
        }
        drop(tx);

        let mut progress = Progress::new(start, deadline, wait.test.clone());
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(timed_out());
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
            let mut step = deadline
                .min(progress.next_due())
                .saturating_duration_since(now);
            if cancel.is_some() {
                step = step.min(CANCEL_CHECK);
            }
            match rx.recv_timeout(step) {
                Ok((i, Ok(file))) => return Ok((i, self.hold(names, i, file, &wait.creator))),
                Ok((_, Err(e))) => return Err(e),
                Err(RecvTimeoutError::Timeout) => {}
                // Every helper sends before it ends unless abandoned, and
                // nothing abandons them while this loop runs.
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(local_err(
                        &what(names),
                        &self.dir,
                        std::io::Error::other("the lock-waiting threads ended without a result"),
                    ));
                }
            }
        }
    }

    /// The held lock of `names[i]`, recorded as `creator`'s.
    fn hold(&self, names: &[String], i: usize, file: File, creator: &str) -> LocalHeld {
        let held = LocalHeld {
            file,
            path: self.path_for(&names[i]),
            resource: names[i].clone(),
        };
        held.record(creator);
        held
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
}

/// Tells abandoned helper threads, when dropped, that nobody waits for them.
struct Abandoned(Arc<AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// One `try_lock` of `file`; answers whether it is now held. A lock taken on
/// a file that was deleted or replaced since it was opened is let go, and
/// `file` reopened: others lock the file the name leads to now, so must we.
fn try_take(name: &str, path: &Path, file: &mut File) -> Result<bool> {
    match file.try_lock() {
        Ok(()) if is_current(file, path) => Ok(true),
        Ok(()) => {
            let _ = file.unlock();
            *file = open_lock_file(name, path)?;
            Ok(false)
        }
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(local_err(name, path, e)),
    }
}

/// A helper thread: blocks until `file` is locked and sends it. If the
/// waiter is gone by then, the send fails and the file is closed here, which
/// frees the lock at once.
fn block_until_locked(
    i: usize,
    name: &str,
    path: PathBuf,
    mut file: File,
    abandoned: &AtomicBool,
    tx: &Sender<Outcome>,
) {
    let outcome = loop {
        if abandoned.load(Ordering::Acquire) {
            return;
        }
        match file.lock() {
            Ok(()) if is_current(&file, &path) => break Ok(file),
            Ok(()) => {
                // Replaced while we waited (see `try_take`): wait for the new file.
                let _ = file.unlock();
                match open_lock_file(name, &path) {
                    Ok(f) => file = f,
                    Err(e) => break Err(e),
                }
            }
            Err(e) => break Err(local_err(name, &path, e)),
        }
    };
    let _ = tx.send((i, outcome));
}

/// Opens (creating) the lock file, readable and writable by every user where
/// possible; read-only if that is all we may (locking still works).
fn open_lock_file(name: &str, path: &Path) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o666);
    match opts.open(path) {
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
            File::open(path).map_err(|e| local_err(name, path, e))
        }
        Err(e) => Err(local_err(name, path, e)),
    }
}

impl LocalHeld {
    /// Writes who holds the lock into the file: a line for waiters'
    /// messages, then one in JSON for `relukko list` (see `inspect`). Best
    /// effort: the lock itself does not depend on it.
    fn record(&self, creator: &str) {
        let since = report::now();
        let json =
            serde_json::json!({ "lock_name": self.resource, "creator": creator, "since": since });
        let text = format!("{creator} since {since}\n{json}\n");
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

/// The holder line of a lock file (its first line), if any.
fn read_holder(path: &Path) -> Option<String> {
    let text = read_record(path)?;
    let line = text.lines().next().unwrap_or_default().trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// The whole record of a lock file (at most 4 KiB), if any.
pub(crate) fn read_record(path: &Path) -> Option<String> {
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

#[cfg(feature = "cli")]
pub(crate) mod inspect;
#[cfg(test)]
mod tests;
