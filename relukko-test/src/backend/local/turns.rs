//! The in-process table: threads of one process take turns per lock file
//! before they touch the OS's file lock.
//!
//! `flock` locks belong to open files, so two threads contend like two
//! processes, but not everywhere: on NFS (and with `fcntl`-style locks) a lock
//! belongs to the whole process, so a second thread would get it too, and
//! closing any handle of the file drops the process's lock. So:
//! - one thread per lock file at a time holds the *turn*, first come first
//!   served; only the turn's holder locks the file, and holds it until it
//!   hands the turn on;
//! - the process keeps one handle per lock file, in this table, shared by
//!   successive turns, and closes it only when no thread holds or waits for
//!   the turn (a thread handing over to another of this process thus keeps
//!   the lock in the process: the next one locks the same handle at once).
//!
//! - a thread waiting in the queue looks, whenever woken and at least every
//!   [`RECHECK`], whether the process's handle is still the file at its path;
//!   if the file was deleted or replaced, the gate is retired: a fresh gate
//!   for the new file takes its place in the table, and the waiters move
//!   there in their order. The old holder keeps the old (now unnamed) file,
//!   so there are never two holders of the same file, and learns within
//!   seconds, as any holder of a replaced file does (see `watch`).
//!
//! Lock order: the table, then a gate's state; two gates' states only with
//! the table locked (retiring a gate, leaving one that was retired).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::Duration;

use super::folder::{Key, LockFile};
use crate::error::Result;
use crate::rt::unpoisoned;

/// How long a queued thread sleeps before it looks at its abandon flag
/// again, when nobody wakes it.
const RECHECK: Duration = Duration::from_millis(200);

static TABLE: LazyLock<Mutex<HashMap<Key, Arc<Gate>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Default)]
struct Gate {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Who holds the turn.
    owner: Option<u64>,
    /// Who waits for it, oldest first.
    queue: VecDeque<u64>,
    /// The process's one handle of the lock file.
    file: Option<Arc<LockFile>>,
    /// Set when the gate was retired: where its waiters went.
    moved_to: Option<Arc<Gate>>,
}

impl State {
    /// Whether `id` holds the turn here or waits for it.
    fn has(&self, id: u64) -> bool {
        self.owner == Some(id) || self.queue.contains(&id)
    }
}

/// This thread's turn at a lock file. Dropping it hands the turn to the
/// next waiting thread, or closes the file when nobody waits.
#[derive(Debug)]
pub(super) struct Turn {
    key: Key,
    gate: Arc<Gate>,
    id: u64,
}

/// A place in the queue for a turn.
#[derive(Debug)]
pub(super) struct Ticket {
    key: Key,
    gate: Arc<Gate>,
    id: u64,
    /// Turned into a [`Turn`], which leaves in its place.
    done: bool,
}

/// The turn at `key` if nobody of this process holds it or waits for it.
pub(super) fn try_take(key: Key) -> Option<Turn> {
    let mut table = unpoisoned(&TABLE);
    let gate = Arc::clone(table.entry(key.clone()).or_default());
    let mut state = unpoisoned(&gate.state);
    if state.owner.is_some() || !state.queue.is_empty() {
        return None;
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    state.owner = Some(id);
    drop(state);
    drop(table);
    Some(Turn { key, gate, id })
}

/// Queues for the turn at `key`; it comes after every thread queued before.
pub(super) fn enqueue(key: Key) -> Ticket {
    let mut table = unpoisoned(&TABLE);
    let gate = Arc::clone(table.entry(key.clone()).or_default());
    let mut state = unpoisoned(&gate.state);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if state.owner.is_none() && state.queue.is_empty() {
        state.owner = Some(id);
    } else {
        state.queue.push_back(id);
    }
    drop(state);
    drop(table);
    Ticket {
        key,
        gate,
        id,
        done: false,
    }
}

impl Ticket {
    /// Waits for the turn; gives up (answering `None`) once `abandoned`
    /// answers true, which it is asked at least every [`RECHECK`]. `stale`
    /// answers whether the process's handle is no longer the file at the
    /// lock file's path (asked as often): then the gate is retired (see the
    /// module's notes) and this ticket waits in the fresh one.
    pub(super) fn wait(
        mut self,
        abandoned: impl Fn() -> bool,
        stale: impl Fn(&LockFile) -> bool,
    ) -> Option<Turn> {
        'gates: loop {
            let gate = Arc::clone(&self.gate);
            let mut state = unpoisoned(&gate.state);
            loop {
                if !state.has(self.id)
                    && let Some(next) = state.moved_to.clone()
                {
                    drop(state);
                    self.gate = next;
                    continue 'gates;
                }
                if state.owner == Some(self.id) {
                    drop(state);
                    // The turn is ours now: `Turn`'s drop hands it on, also
                    // if the caller gives up right away.
                    self.done = true;
                    return Some(Turn {
                        key: self.key.clone(),
                        gate: Arc::clone(&self.gate),
                        id: self.id,
                    });
                }
                if abandoned() {
                    drop(state);
                    // Dropping `self` leaves the queue.
                    return None;
                }
                if let Some(file) = state.file.clone() {
                    drop(state);
                    if stale(&file) {
                        retire(&self.key, &gate, &file);
                    }
                    state = unpoisoned(&gate.state);
                    if state.owner == Some(self.id) || state.moved_to.is_some() {
                        continue;
                    }
                }
                state = gate
                    .wake
                    .wait_timeout(state, RECHECK)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

/// Retires `gate`, whose handle `file` no longer is the file at its path: a
/// fresh gate takes its place in the table, and its waiters move there, in
/// their order, the first of them holding the fresh turn. Its holder keeps
/// the old turn and file. Nothing happens if another waiter did it first, or
/// the handle was replaced meanwhile.
fn retire(key: &Key, gate: &Arc<Gate>, file: &Arc<LockFile>) {
    let mut table = unpoisoned(&TABLE);
    let mut state = unpoisoned(&gate.state);
    if state.moved_to.is_some()
        || state.queue.is_empty()
        || !state.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, file))
    {
        return;
    }
    let target = match table.get(key) {
        Some(g) if !Arc::ptr_eq(g, gate) => Arc::clone(g),
        _ => {
            let fresh = Arc::new(Gate::default());
            table.insert(key.clone(), Arc::clone(&fresh));
            fresh
        }
    };
    let mut moved = unpoisoned(&target.state);
    for id in state.queue.drain(..) {
        if moved.owner.is_none() {
            moved.owner = Some(id);
        } else {
            moved.queue.push_back(id);
        }
    }
    drop(moved);
    state.moved_to = Some(Arc::clone(&target));
    drop(state);
    drop(table);
    gate.wake.notify_all();
    target.wake.notify_all();
}

impl Drop for Ticket {
    /// A ticket dropped unused leaves the queue; if the turn had come to it
    /// meanwhile, it is handed on.
    fn drop(&mut self) {
        if !self.done {
            leave(&self.key, &self.gate, self.id);
        }
    }
}

impl Turn {
    /// The process's handle of the lock file, opened with `open` if it has
    /// none yet.
    pub(super) fn file(&self, open: impl FnOnce() -> Result<LockFile>) -> Result<Arc<LockFile>> {
        let mut state = unpoisoned(&self.gate.state);
        if let Some(f) = &state.file {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(open()?);
        state.file = Some(Arc::clone(&f));
        Ok(f)
    }

    /// Whether this turn's gate was retired (its file deleted or replaced):
    /// the new file has its own gate, so this turn must not open it (with
    /// process-wide locks, two threads would both hold it); take a turn there.
    pub(super) fn retired(&self) -> bool {
        unpoisoned(&self.gate.state).moved_to.is_some()
    }

    /// Replaces the process's handle (the file was deleted or replaced on
    /// disk): the old one is closed once the caller drops its copy. Only for
    /// a turn not [`retired`](Self::retired).
    pub(super) fn reopen(&self, open: impl FnOnce() -> Result<LockFile>) -> Result<Arc<LockFile>> {
        unpoisoned(&self.gate.state).file = None;
        self.file(open)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        leave(&self.key, &self.gate, self.id);
    }
}

/// `id` leaves the gate at `key`: it hands the turn on if it held it, or
/// leaves the queue. A gate nobody holds or waits for leaves the table, and
/// its file handle is closed, while the table is locked (see [`read`]).
fn leave(key: &Key, gate: &Arc<Gate>, id: u64) {
    let mut table = unpoisoned(&TABLE);
    let mut gate = Arc::clone(gate);
    let mut state = unpoisoned(&gate.state);
    // A waiter of a retired gate may not have followed its move yet.
    while !state.has(id)
        && let Some(next) = state.moved_to.clone()
    {
        drop(state);
        gate = next;
        state = unpoisoned(&gate.state);
    }
    let gate = &gate;
    if state.owner == Some(id) {
        state.owner = state.queue.pop_front();
        if state.owner.is_some() {
            gate.wake.notify_all();
        }
    } else {
        state.queue.retain(|&q| q != id);
    }
    if state.owner.is_none() && state.queue.is_empty() {
        let file = state.file.take();
        drop(state);
        if table.get(key).is_some_and(|g| Arc::ptr_eq(g, gate)) {
            table.remove(key);
        }
        drop(file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        (u64::MAX, u64::MAX, name.into())
    }

    /// Gives up after a generous minute: a turn that never comes fails the
    /// test instead of hanging it.
    fn patience() -> impl Fn() -> bool {
        let start = std::time::Instant::now();
        move || start.elapsed() > Duration::from_secs(60)
    }

    #[test]
    fn turns_go_in_queue_order_and_skip_who_gave_up() {
        let k = key("turns-order");
        let first = try_take(k.clone()).expect("free");
        assert!(try_take(k.clone()).is_none());
        let a = enqueue(k.clone());
        let b = enqueue(k.clone());
        let c = enqueue(k.clone());
        drop(b); // gave up
        drop(first);
        let a = a.wait(patience(), |_| false).expect("a is next");
        assert!(try_take(k.clone()).is_none(), "c still waits");
        drop(a);
        let c = c.wait(patience(), |_| false).expect("then c");
        drop(c);
        assert!(
            unpoisoned(&TABLE).get(&k).is_none(),
            "an idle gate leaves the table"
        );
        drop(try_take(k).expect("free again"));
    }

    fn some_file() -> Result<LockFile> {
        let file = std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .expect("open a file");
        Ok(LockFile { file, owned: false })
    }

    #[test]
    fn waiters_move_to_a_fresh_gate_when_the_held_file_is_stale() {
        let k = key("turns-stale");
        let first = try_take(k.clone()).expect("free");
        let old = first.file(some_file).unwrap();
        let a = enqueue(k.clone());
        let b = enqueue(k.clone());
        let (a_id, b_id) = (a.id, b.id);
        // The file at the path was deleted or replaced: both waiters move
        // on, in their order, while the first still holds the old turn.
        let b = std::thread::spawn(move || b.wait(patience(), |_| true).expect("b's turn"));
        let turn_a = a.wait(patience(), |_| true).expect("a's turn at once");
        assert!(!Arc::ptr_eq(&turn_a.gate, &first.gate));
        assert!(first.retired() && !turn_a.retired());
        {
            let fresh = unpoisoned(&turn_a.gate.state);
            assert_eq!(fresh.owner, Some(a_id));
            assert_eq!(fresh.queue, [b_id], "b still waits, behind a");
            assert!(fresh.file.is_none(), "the new file gets its own handle");
        }
        assert!(
            try_take(k.clone()).is_none(),
            "newcomers queue in the fresh gate"
        );
        // The old holder keeps its handle, and nothing opened another.
        let again = first.file(|| panic!("the old handle stays")).unwrap();
        assert!(Arc::ptr_eq(&old, &again));
        let retired_gate = Arc::clone(&first.gate);
        drop(first);
        // Its turn ended in the old gate, which let go of the old handle
        // (leaving it as the holder of the old gate left every suite green).
        {
            let retired = unpoisoned(&retired_gate.state);
            assert_eq!(retired.owner, None, "the old holder's turn ended");
            assert!(retired.file.is_none(), "the old gate keeps no handle");
        }
        assert!(
            unpoisoned(&TABLE)
                .get(&k)
                .is_some_and(|g| Arc::ptr_eq(g, &turn_a.gate))
        );
        drop(turn_a);
        drop(b.join().expect("b got its turn"));
        assert!(unpoisoned(&TABLE).get(&k).is_none());
    }

    #[test]
    fn an_abandoned_waiter_leaves_the_queue() {
        let k = key("turns-abandon");
        let first = try_take(k.clone()).unwrap();
        let t = enqueue(k.clone());
        assert!(t.wait(|| true, |_| false).is_none());
        drop(first);
        assert!(unpoisoned(&TABLE).get(&k).is_none());
    }

    /// A waiter that found the old handle stale does not retire the gate
    /// once its holder has reopened the file meanwhile: its waiters stay,
    /// behind the holder of the new handle (retiring it all the same left
    /// every suite green, and would let a newcomer of this process take the
    /// same file beside that holder).
    #[test]
    fn a_gate_whose_handle_was_reopened_meanwhile_is_not_retired() {
        let k = key("turns-reopened");
        let first = try_take(k.clone()).expect("free");
        let old = first.file(some_file).unwrap();
        let new = first.reopen(some_file).unwrap();
        assert!(!Arc::ptr_eq(&old, &new));
        let waiting = enqueue(k.clone());
        retire(&k, &first.gate, &old);
        assert!(!first.retired(), "retired over a handle it no longer has");
        assert!(
            unpoisoned(&TABLE)
                .get(&k)
                .is_some_and(|g| Arc::ptr_eq(g, &first.gate))
        );
        drop(first);
        drop(waiting.wait(patience(), |_| false).expect("its turn"));
        assert!(unpoisoned(&TABLE).get(&k).is_none());
    }

    /// A waiter looks at the file when woken, or every [`RECHECK`], not in a
    /// busy loop (spinning left every suite green).
    #[test]
    fn a_waiter_does_not_spin() {
        use std::sync::atomic::AtomicUsize;
        let k = key("turns-spin");
        let first = try_take(k.clone()).expect("free");
        first.file(some_file).unwrap();
        let ticket = enqueue(k.clone());
        let checks = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let checks = Arc::clone(&checks);
            std::thread::spawn(move || {
                ticket.wait(patience(), move |_| {
                    checks.fetch_add(1, Ordering::Relaxed);
                    false
                })
            })
        };
        // A few rechecks' worth (more on a loaded machine: still far from a spin).
        std::thread::sleep(RECHECK * 3);
        drop(first);
        drop(waiter.join().unwrap().expect("its turn"));
        let n = checks.load(Ordering::Relaxed);
        assert!(
            n < 1000,
            "looked {n} times while waiting a moment: it spins"
        );
    }
}
