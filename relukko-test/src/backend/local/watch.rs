//! Notices within seconds that a held lock file was deleted or replaced.
//!
//! Whoever may delete a lock file (its owner, the folder's owner, root, a
//! temp cleaner, `relukko release`) lets the next process lock a new file of
//! that name while the holder still holds the old one: two holders. The
//! kernel says nothing, so one thread per process (started with the first
//! watched lock, asleep while none is held) compares every held lock file
//! with the file its path leads to now, about once a second, and marks the
//! lease lost, with its line on stderr, when they differ. Acquiring costs
//! nothing more: the check runs beside the holder, never in its way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, Once};
use std::time::Duration;

use super::folder::{self, LockFile};
use crate::backend::state::StatusTx;
use crate::rt::unpoisoned;

/// How often each held lock file is looked at.
const EVERY: Duration = Duration::from_secs(1);

/// One watched lock file.
struct Entry {
    id: u64,
    file: Arc<LockFile>,
    path: PathBuf,
    resource: String,
    status: StatusTx,
}

/// Every watched lock file of this process, and the wake-up of the
/// watching thread when the first one comes.
static WATCHED: LazyLock<(Mutex<Vec<Entry>>, Condvar)> =
    LazyLock::new(|| (Mutex::new(Vec::new()), Condvar::new()));
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A lock file being watched; dropping it stops the watch (before the
/// lock is let go: see `LocalHeld::release`).
#[derive(Debug)]
pub(super) struct Watch(u64);

impl Drop for Watch {
    fn drop(&mut self) {
        // Waits for a check in progress, so none runs after this returns.
        unpoisoned(&WATCHED.0).retain(|e| e.id != self.0);
    }
}

/// Watches the held `file` at `path` (the lock of `resource`) until the
/// answer is dropped; `status` turns lost, with its stderr line, once the
/// path leads elsewhere.
pub(super) fn watch(file: Arc<LockFile>, path: PathBuf, resource: &str, status: StatusTx) -> Watch {
    static START: Once = Once::new();
    START.call_once(|| {
        // Without the thread, a deletion is still found at release.
        let _ = std::thread::Builder::new()
            .name("relukko-watch".to_owned())
            .spawn(run);
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    unpoisoned(&WATCHED.0).push(Entry {
        id,
        file,
        path,
        resource: resource.to_owned(),
        status,
    });
    WATCHED.1.notify_one();
    Watch(id)
}

/// The watching thread: sleeps while nothing is held, else checks every
/// [`EVERY`].
fn run() {
    let (list, wake) = &*WATCHED;
    loop {
        let mut watched = unpoisoned(list);
        while watched.is_empty() {
            watched = wake.wait(watched).unwrap_or_else(|e| e.into_inner());
        }
        drop(watched);
        std::thread::sleep(EVERY);
        // Checked and told with the list locked, so that a release (which
        // stops its watch first) never races a check of its file.
        unpoisoned(list).retain(|e| {
            if folder::is_current(&e.file.file, &e.path) {
                return true;
            }
            e.status.lost(lost_reason(&e.resource, &e.path));
            false
        });
    }
}

/// Why a watched lock is lost.
fn lost_reason(resource: &str, path: &std::path::Path) -> String {
    format!(
        "its lock file {} was deleted or replaced while held (by its owner, the folder's, root, \
         a temp cleaner or `relukko release`), so another process may hold {resource} now",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reason_names_the_file_and_the_resource() {
        let r = super::lost_reason("rig-b", std::path::Path::new("/l/rig-b-0.lock"));
        assert!(
            r.starts_with("its lock file /l/rig-b-0.lock was deleted or replaced"),
            "{r}"
        );
        assert!(r.ends_with("another process may hold rig-b now"), "{r}");
    }
}
