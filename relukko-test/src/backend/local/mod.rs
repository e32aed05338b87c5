//! The embedded local backend: one lock file per resource in one folder per
//! machine, locked with the OS's file locks (`flock` on Unix, `LockFileEx` on
//! Windows).
//!
//! The kernel frees a file lock the moment a process dies, even by SIGKILL.
//! Threads of one process first take turns in an in-process table
//! ([`turns`]), so also where file locks belong to processes (NFS) only one
//! thread holds a lock file. The folder and its files are opened so that
//! other users of the machine cannot turn a holder against their own files
//! ([`folder`]). Lock files are never deleted: deleting a file another
//! process has open would let a third process lock a new file of the same
//! name while the first still holds the old one. Whoever can delete one
//! anyway (its owner, the folder's) makes its holder's lease lost within
//! seconds ([`watch`]).

mod folder;
mod turns;
mod watch;

use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use self::folder::{Folder, LockFile};
use self::turns::{Ticket, Turn};
use super::state::StatusTx;
use super::{Released, Request};
use crate::error::{Error, Result};
use crate::report;
use crate::report::progress::Progress;

/// How often a waiter that can be cancelled looks at its flag while its
/// helpers block.
const CANCEL_CHECK: Duration = Duration::from_millis(20);

/// Attempts to follow a lock file that keeps being replaced, before the
/// waiter waits in the ordinary way.
const REOPENS: usize = 3;

/// What a helper thread reports: the index of its name and the file it
/// locked, or why it could not.
type Outcome = (usize, Result<Taken>);

/// What a waiting line says of a holder whose record cannot be read: why
/// it names no one, instead of "an unknown holder".
pub(crate) const NO_RECORD: &str = "a holder that left no readable record (it may still be \
     writing it, or it locks the file without writing one)";

/// Lock files in one folder.
#[derive(Debug)]
pub struct Local {
    dir: PathBuf,
    os: OsLock,
    /// The outer hold this folder's locks are taken inside, for waiting
    /// lines and timeouts (see `backend::nested`).
    within: Option<String>,
}

/// Which OS locks lock the files.
#[derive(Debug, Clone, Copy)]
enum OsLock {
    /// `flock` (`LockFileEx` on Windows), through std.
    Flock,
    /// Tests only: POSIX record locks, which belong to the whole process, as
    /// `flock` on NFS does.
    #[cfg(all(test, unix))]
    Process,
}

impl OsLock {
    /// Blocks until `file` is locked.
    fn lock(self, file: &File) -> std::io::Result<()> {
        match self {
            OsLock::Flock => file.lock(),
            #[cfg(all(test, unix))]
            OsLock::Process => tests::posix_lock(file, true).map(|_| ()),
        }
    }

    /// Locks `file` if it is free; answers whether it is now locked.
    fn try_lock(self, file: &File) -> std::io::Result<bool> {
        match self {
            OsLock::Flock => match file.try_lock() {
                Ok(()) => Ok(true),
                Err(TryLockError::WouldBlock) => Ok(false),
                Err(TryLockError::Error(e)) => Err(e),
            },
            #[cfg(all(test, unix))]
            OsLock::Process => tests::posix_lock(file, false),
        }
    }

    fn unlock(self, file: &File) -> std::io::Result<()> {
        match self {
            OsLock::Flock => file.unlock(),
            #[cfg(all(test, unix))]
            OsLock::Process => tests::posix_unlock(file),
        }
    }
}

/// A locked file and this thread's turn at it. Dropping it unlocks the file,
/// then hands the turn on (the fields drop in order).
#[derive(Debug)]
struct Taken {
    file: Arc<LockFile>,
    /// Held for its drop, which hands the turn on.
    _turn: Turn,
    os: OsLock,
    unlocked: bool,
}

impl Taken {
    fn unlock(&mut self) -> std::io::Result<()> {
        self.unlocked = true;
        self.os.unlock(&self.file.file)
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        if !self.unlocked {
            let _ = self.unlock();
        }
    }
}

/// A held lock file; releasing or dropping it frees the lock.
#[derive(Debug)]
pub(crate) struct LocalHeld {
    taken: Taken,
    path: PathBuf,
    resource: String,
    /// This user's record file of the lock, with our record in it.
    record: Option<File>,
    /// The watch on the lock file, once a lease watches it.
    watch: Option<watch::Watch>,
}

impl Local {
    /// The backend over the lock files in `dir` (created on first use).
    pub fn new(dir: PathBuf) -> Self {
        Local {
            dir,
            os: OsLock::Flock,
            within: None,
        }
    }

    /// The backend over the lock files of the holders inside one outer hold
    /// (`within` says which, to people): a folder of its own per hold, named
    /// after `hold` (what identifies it) under `base`, so that the holders
    /// inside it take turns among themselves and never wait for the outer
    /// holder.
    pub(crate) fn inside(base: &std::path::Path, hold: &str, within: String) -> Self {
        Local {
            dir: base.join(format!("held-{:016x}", fnv1a(hold.as_bytes()))),
            os: OsLock::Flock,
            within: Some(within),
        }
    }

    /// Its folder.
    pub(crate) fn folder(&self) -> &std::path::Path {
        &self.dir
    }

    /// Where its lock files are, to tell lockers on the same files apart
    /// from others (also without the `cli` feature's inspection helpers).
    pub(crate) fn place(&self) -> String {
        format!("local {}", self.dir.display())
    }

    /// The lock file of `name` (see [`file_name`]).
    pub(crate) fn path_for(&self, name: &str) -> PathBuf {
        self.dir.join(file_name(name))
    }

    /// Waits until one of `names` is free, blocking this thread; answers the
    /// index and the held file. `cancel` stops the wait early.
    ///
    /// First, per name in order, the in-process turn and a `try_lock` if
    /// nobody in this process holds or waits for it, so a free lock costs
    /// no thread. Then one helper thread per name queues for its turn and
    /// then waits in a blocking lock (`flock(LOCK_EX)`; `LockFileEx` on
    /// Windows): the kernel wakes it the moment the holder unlocks, where
    /// polling would wake late, or lose the lock to a process that releases
    /// and locks again between two polls. The first helper to lock wins;
    /// this thread waits for it on a channel, so it still prints progress
    /// lines and honours the deadline and `cancel`.
    ///
    /// A blocked lock cannot be interrupted: when the wait ends (won, timed
    /// out or cancelled), the other helpers are abandoned. A queued one
    /// leaves the queue; one blocked in the lock lives on until the holder
    /// releases, then unlocks at once, hands its turn on and ends.
    pub(crate) fn acquire_any_blocking(
        &self,
        names: &[String],
        wait: &Request,
        cancel: Option<&AtomicBool>,
    ) -> Result<(usize, LocalHeld)> {
        let start = Instant::now();
        let deadline = start + wait.timeout;
        let folder = Arc::new(Folder::open(&self.dir, &names[0])?);
        let files: Vec<OsString> = names.iter().map(|n| file_name(n)).collect();
        let keys: Vec<String> = names
            .iter()
            .map(|n| self.path_for(n).to_string_lossy().into_owned())
            .collect();
        // Released here a moment ago and contended: the waiters that the
        // release woke go first (`flock` keeps no queue; see `courtesy`).
        if let [key] = keys.as_slice()
            && !wait.timeout.is_zero()
        {
            std::thread::sleep(crate::courtesy::pause(key).min(wait.timeout));
        }
        for (i, name) in names.iter().enumerate() {
            if let Some(turn) = turns::try_take(folder.key(&files[i]))
                && let Some(taken) = self.try_take(&folder, name, &files[i], turn)?
            {
                return Ok((i, self.hold(&folder, names, i, taken, &wait.creator)));
            }
        }
        keys.iter().for_each(|k| crate::courtesy::contended(k));
        let timed_out = || Error::WaitTimeout {
            resource: report::what(names),
            waited: report::round_ms(start.elapsed()),
            holder: Some(match &self.within {
                Some(within) => format!("{} inside {within}", self.holders_in(&folder, names)),
                None => self.holders_in(&folder, names),
            }),
        };
        if Instant::now() >= deadline {
            return Err(timed_out());
        }

        // Dropped on every way out of here (also by `?` and a panic): the
        // flag makes abandoned helpers leave the queue or unlock at once, and
        // dropping the receiver makes their late sends fail (and drops what
        // was sent but not taken), so their locks are freed at once.
        let abandoned = Abandoned(Arc::new(AtomicBool::new(false)));
        let (tx, rx) = mpsc::channel::<Outcome>();
        for (i, file) in files.iter().enumerate() {
            // Queued here, in this order, so that the turns of this thread's
            // names come before those of any later waiter.
            let ticket = turns::enqueue(folder.key(file));
            let helper = Helper {
                i,
                name: names[i].clone(),
                folder: Arc::clone(&folder),
                file: file.clone(),
                os: self.os,
            };
            let (tx, flag) = (tx.clone(), Arc::clone(&abandoned.0));
            std::thread::Builder::new()
                .name("relukko-flock".to_owned())
                .spawn(move || helper.run(ticket, &flag, &tx))
                .map_err(|e| Error::local(&names[i], &self.path_for(&names[i]), e))?;
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
                    resource: report::what(names),
                    waited: report::round_ms(start.elapsed()),
                    holder: None,
                });
            }
            if progress.due(now) {
                progress.print(
                    &waiting_for(names, folder.path(), self.within.as_deref()),
                    &self.holders_in(&folder, names),
                );
            }
            let mut step = deadline
                .min(progress.next_due())
                .saturating_duration_since(now);
            if cancel.is_some() {
                step = step.min(CANCEL_CHECK);
            }
            match rx.recv_timeout(step) {
                Ok((i, Ok(taken))) => {
                    return Ok((i, self.hold(&folder, names, i, taken, &wait.creator)));
                }
                Ok((_, Err(e))) => return Err(e),
                Err(RecvTimeoutError::Timeout) => {}
                // Every helper sends before it ends unless abandoned, and
                // nothing abandons them while this loop runs.
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::local(
                        &report::what(names),
                        &self.dir,
                        std::io::Error::other("the lock-waiting threads ended without a result"),
                    ));
                }
            }
        }
    }

    /// One `try_lock` with this thread's `turn`; answers the locked file, or
    /// `None` (and the turn handed on) if another process holds it. A lock
    /// taken on a file that was deleted or replaced since this process
    /// opened it is let go, and the file reopened: others lock the file the
    /// name leads to now, so must we.
    fn try_take(
        &self,
        folder: &Folder,
        name: &str,
        file_name: &OsString,
        turn: Turn,
    ) -> Result<Option<Taken>> {
        let path = folder.path().join(file_name);
        let open = || folder.open_lock_file(name, file_name);
        let mut file = turn.file(open)?;
        for _ in 0..REOPENS {
            match self.os.try_lock(&file.file) {
                Ok(true) if folder::is_current(&file.file, &path) => {
                    return Ok(Some(Taken {
                        file,
                        _turn: turn,
                        os: self.os,
                        unlocked: false,
                    }));
                }
                Ok(true) => {
                    let _ = self.os.unlock(&file.file);
                    if turn.retired() {
                        // The new file has its own turn: queue for it.
                        return Ok(None);
                    }
                    file = turn.reopen(open)?;
                }
                Ok(false) => return Ok(None),
                Err(e) => return Err(Error::local(name, &path, e)),
            }
        }
        Ok(None)
    }

    /// The held lock of `names[i]`, recorded as `creator`'s in this user's
    /// record file.
    fn hold(
        &self,
        folder: &Folder,
        names: &[String],
        i: usize,
        taken: Taken,
        creator: &str,
    ) -> LocalHeld {
        let file = file_name(&names[i]);
        if taken.file.owned {
            // An older version's record in the lock file itself, which every
            // user can read: gone (a no-op for an empty file).
            let _ = taken.file.file.set_len(0);
        }
        // Best effort: the lock itself does not depend on it. A line for
        // waiters' messages, then one in JSON for `relukko list` (see
        // `inspect`).
        let since = report::now();
        let json = serde_json::json!({ "lock_name": names[i], "creator": creator, "since": since });
        let text = format!("{creator} since {since}\n{json}");
        let record = folder.open_record(&file).ok();
        if let Some(r) = &record {
            let _ = folder::write_record(r, &text);
        }
        LocalHeld {
            taken,
            path: self.path_for(&names[i]),
            resource: names[i].clone(),
            record,
            watch: None,
        }
    }

    /// The async form: waits on a blocking thread of the background runtime.
    /// Dropping the future cancels the wait; a lock taken just as it was
    /// dropped is freed with the unused result.
    pub(crate) async fn acquire_any(
        this: Arc<Self>,
        names: Vec<String>,
        wait: Request,
    ) -> Result<(usize, LocalHeld)> {
        if wait.on_this_thread {
            return this.acquire_any_blocking(&names, &wait, None);
        }
        struct CancelOnDrop(Arc<AtomicBool>);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        let task = crate::rt::handle()
            .spawn_blocking(move || this.acquire_any_blocking(&names, &wait, Some(&cancel)));
        crate::rt::joined(task.await, "local lock wait")
    }

    /// Who holds each of `names`, as recorded in the lock files (for several,
    /// `name: holder; ...`).
    #[cfg(test)]
    pub(crate) fn holders(&self, names: &[String]) -> String {
        match Folder::open(&self.dir, &names[0]) {
            Ok(folder) => self.holders_in(&folder, names),
            Err(_) => NO_RECORD.to_owned(),
        }
    }

    /// [`Local::holders`] in the opened `folder`.
    fn holders_in(&self, folder: &Folder, names: &[String]) -> String {
        let one = |n: &String| {
            folder
                .holder(&file_name(n))
                .and_then(|record| first_line(&record))
                .unwrap_or_else(|| NO_RECORD.to_owned())
        };
        report::holders(names, names.iter().map(one).collect())
    }
}

/// Tells abandoned helper threads, when dropped, that nobody waits for them.
struct Abandoned(Arc<AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A helper thread's job: wait for one name.
struct Helper {
    i: usize,
    name: String,
    folder: Arc<Folder>,
    file: OsString,
    os: OsLock,
}

impl Helper {
    /// Waits for the turn, then blocks until the file is locked, and sends
    /// it. If the waiter is gone by then, the send fails and the file is
    /// unlocked here at once.
    fn run(self, ticket: Ticket, abandoned: &AtomicBool, tx: &Sender<Outcome>) {
        let is_abandoned = || abandoned.load(Ordering::Acquire);
        let path = self.folder.path().join(&self.file);
        // A lock file deleted or replaced while its holder in this process
        // still has it open: a new lock, not worth waiting for the old one.
        let stale = |f: &LockFile| !folder::is_current(&f.file, &path);
        let Some(turn) = ticket.wait(is_abandoned, stale) else {
            return;
        };
        let outcome = match self.lock(turn, &is_abandoned) {
            Some(outcome) => outcome,
            None => return,
        };
        let _ = tx.send((self.i, outcome));
    }

    /// Blocks until the file the name leads to is locked (see
    /// [`Local::try_take`]); `None` when abandoned first.
    fn lock(&self, mut turn: Turn, abandoned: &impl Fn() -> bool) -> Option<Result<Taken>> {
        let path = self.folder.path().join(&self.file);
        let open = || self.folder.open_lock_file(&self.name, &self.file);
        let mut file = match turn.file(open) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        loop {
            if abandoned() {
                return None;
            }
            if let Err(e) = self.os.lock(&file.file) {
                return Some(Err(Error::local(&self.name, &path, e)));
            }
            if folder::is_current(&file.file, &path) {
                return Some(Ok(Taken {
                    file,
                    _turn: turn,
                    os: self.os,
                    unlocked: false,
                }));
            }
            // Replaced while we waited: wait for the new file.
            let _ = self.os.unlock(&file.file);
            if turn.retired() {
                // The new file has its own turn, taken by the waiters that
                // were behind this one: queue there, after them.
                drop(file);
                drop(turn);
                let stale = |f: &LockFile| !folder::is_current(&f.file, &path);
                turn = turns::enqueue(self.folder.key(&self.file)).wait(abandoned, stale)?;
                file = match turn.file(open) {
                    Ok(f) => f,
                    Err(e) => return Some(Err(e)),
                };
                continue;
            }
            file = match turn.reopen(open) {
                Ok(f) => f,
                Err(e) => return Some(Err(e)),
            };
        }
    }
}

impl LocalHeld {
    /// What identifies the held lock file: its path, device and inode.
    #[cfg(unix)]
    pub(crate) fn identity(&self) -> Option<(&std::path::Path, u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = self.taken.file.file.metadata().ok()?;
        Some((&self.path, meta.dev(), meta.ino()))
    }

    /// Watches the lock file until release: `status` turns lost within
    /// seconds if it is deleted or replaced (see [`watch`]).
    pub(crate) fn watch(&mut self, resource: &str, status: &StatusTx) {
        self.watch = Some(watch::watch(
            Arc::clone(&self.taken.file),
            self.path.clone(),
            resource,
            status.clone(),
        ));
    }

    /// Stops the watch, then empties our record if the lock file is still
    /// ours (after a loss, the record may be a later holder's of this user);
    /// answers whether it was. The watch goes first: a check just after
    /// our unlock could take a deletion by the next holder for a loss.
    fn unwatch_and_clear(&mut self) -> bool {
        self.watch = None;
        let intact = folder::is_current(&self.taken.file.file, &self.path);
        if intact && let Some(record) = &self.record {
            let _ = folder::clear_record(record);
        }
        intact
    }

    /// Empties the record and frees the lock. If the lock file was deleted
    /// or replaced while held, others may have locked the new file meanwhile:
    /// that is reported as [`Released::AlreadyGone`], so the holder learns it.
    pub(crate) fn release(mut self) -> Result<Released> {
        let intact = self.unwatch_and_clear();
        self.taken
            .unlock()
            .map_err(|e| Error::local(&self.resource, &self.path, e))?;
        crate::courtesy::released(&self.path.to_string_lossy());
        Ok(if intact {
            Released::Freed
        } else {
            Released::AlreadyGone
        })
    }
}

impl Drop for LocalHeld {
    /// Dropped without [`LocalHeld::release`]: the record is emptied too.
    fn drop(&mut self) {
        if !self.taken.unlocked {
            self.unwatch_and_clear();
        }
    }
}

/// The lock file name of `name`: a readable, sanitized part plus a hash of
/// the exact name, so names differing in case or in odd characters stay
/// distinct also on case-insensitive file systems.
fn file_name(name: &str) -> OsString {
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
    format!("{readable}-{:016x}.lock", fnv1a(name.as_bytes())).into()
}

/// What is waited for and where, for progress lines: two processes that
/// disagree on the folder do not see each other. Inside an outer hold, the
/// line says so: the wait is for the other holders inside it, never for
/// the outer holder.
fn waiting_for(names: &[String], dir: &std::path::Path, within: Option<&str>) -> String {
    match within {
        Some(within) => format!(
            "{} inside {within}, taking turns with the others inside it (lock files in {})",
            report::what(names),
            dir.display()
        ),
        None => format!("{} (lock files in {})", report::what(names), dir.display()),
    }
}

/// Whether the lock file at `path` is still the file `(dev, ino)` and locked
/// by process `pid`: what shows that a hold `relukko run` told its command
/// of is alive. Answers why not.
#[cfg(unix)]
pub(crate) fn check_holder(
    path: &std::path::Path,
    dev: u64,
    ino: u64,
    pid: u32,
) -> std::result::Result<(), String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let shown = path.display();
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("its lock file {shown} cannot be read: {e}"))?;
    if (meta.dev(), meta.ino()) != (dev, ino) {
        return Err(format!("its lock file {shown} was replaced since"));
    }
    match folder::lock_holder(dev, ino) {
        folder::Probe::Held { pid: p, .. } if p == pid => Ok(()),
        folder::Probe::Held { pid: p, .. } => Err(format!(
            "its lock file {shown} is locked by process {p}, not by {pid}"
        )),
        folder::Probe::Free => Err(format!("its lock file {shown} is not locked")),
        // The kernel does not say who (not Linux, or the holder is outside
        // this PID namespace): a lock we can take is no hold; one we cannot
        // is held by someone, and the caller checked that `pid` is ours.
        folder::Probe::Unknown => {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(path)
                .map_err(|e| format!("its lock file {shown} cannot be opened: {e}"))?;
            match file.try_lock() {
                Ok(()) => {
                    let _ = file.unlock();
                    Err(format!("its lock file {shown} is not locked"))
                }
                Err(TryLockError::WouldBlock) => Ok(()),
                Err(TryLockError::Error(e)) => {
                    Err(format!("its lock file {shown} cannot be checked: {e}"))
                }
            }
        }
    }
}

/// The holder line of a record (its first line), if any.
fn first_line(record: &str) -> Option<String> {
    let line = record.lines().next().unwrap_or_default().trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// The whole holder record of the lock file at `path` (at most 4 KiB), if
/// any (see [`Folder::holder`]), read without following a symlink.
pub(crate) fn read_record(path: &std::path::Path) -> Option<String> {
    let dir = path.parent()?;
    let folder = Folder::open(dir, "").ok()?;
    folder.holder(path.file_name()?)
}

/// FNV-1a, 64 bits: a hash that every build of this crate agrees on (std's
/// hasher may change between Rust versions, and two test binaries built by
/// different toolchains must find the same file).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) mod inspect;
#[cfg(test)]
mod tests;
