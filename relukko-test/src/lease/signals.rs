//! Release on SIGINT, SIGTERM and SIGHUP: a test stopped by Ctrl-C, by
//! nextest's `terminate-after`, or by a cancelled CI job frees its locks at
//! once instead of after the lease and the server's grace.
//!
//! While a lease is alive or being acquired (a count, see [`Guard`]), the
//! signal is caught, every held lease is released and every create still in
//! flight is cleaned up, in parallel and within [`BOUND`] in all; then the
//! default disposition is restored and the signal raised again, so the exit
//! status (killed by the signal), core dumps and nextest's report stay as they
//! would be without us.
//!
//! Only signals whose disposition is the default when we first need them are
//! caught: one the program ignores stays ignored, and one it handles itself
//! (a handler installed before) is left to that handler, which decides
//! whether the process ends (an `exit` then runs our exit handler). With no
//! lease alive our handler just does the default (ends the process): the
//! plumbing (`signal-hook`) cannot be removed once installed.
//!
//! The handler itself only flips atomics and writes one byte to a pipe
//! (async-signal-safe); the release runs on a normal thread.
//! `RELUKKO_SIGNALS=off` turns all of this off.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[cfg_attr(not(unix), allow(dead_code))]
/// The longest the release after a signal may take, all leases together.
pub(crate) const BOUND: Duration = Duration::from_secs(2);

/// Leases alive or being acquired.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// While one lives, a signal releases every lease (see the module docs).
#[derive(Debug)]
pub(crate) struct Guard(());

impl Guard {
    pub(crate) fn new() -> Guard {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        imp::install();
        Guard(())
    }
}

/// Whether a signal is ending the process: a lock got now is being cleaned
/// up already, and must never reach a test.
pub(crate) fn stopping() -> bool {
    imp::stopping()
}

impl Drop for Guard {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg_attr(not(unix), allow(dead_code))]
/// Whether `RELUKKO_SIGNALS` leaves signal handling on (unset, `on`, ...).
fn enabled() -> bool {
    // Read here, not with the locking settings: every lease installs the
    // handlers, also one of a locker built without the environment.
    let v = crate::settings::vars::process()
        .raw(crate::settings::vars::SIGNALS)
        .unwrap_or_default();
    let v = v.to_string_lossy();
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "off" | "0" | "false" | "no"
    )
}

#[cfg_attr(not(unix), allow(dead_code))]
/// Releases every lease and cleans up every create in flight, in parallel,
/// waiting at most [`BOUND`]. Runs on a normal thread.
fn release_everything(signal: &'static str) -> (usize, bool) {
    // Before the clean-up's first look: a create either sees this and is
    // not sent, or is marked on its way before the look.
    #[cfg(feature = "relukko")]
    crate::client::pending::stop_creates();
    let started = tokio::time::Instant::now();
    let leases = super::exit::live();
    let parts: usize = leases.iter().map(|l| l.parts()).sum();
    let work = async move {
        let releases = leases.iter().map(|l| l.release_now(BOUND, signal));
        let until = started + BOUND;
        #[cfg(feature = "relukko")]
        let (_, _) = futures_util::future::join(
            futures_util::future::join_all(releases),
            crate::client::pending::clean_up_all(until),
        )
        .await;
        #[cfg(not(feature = "relukko"))]
        let _ = (futures_util::future::join_all(releases).await, until);
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    crate::rt::spawn(async move {
        work.await;
        let _ = tx.send(());
    });
    let done = rx.recv_timeout(BOUND).is_ok();
    (parts, done)
}

#[cfg(unix)]
mod imp {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::low_level::{emulate_default_handler, signal_name};

    use super::ACTIVE;

    /// The write end of the self-pipe, read by the release thread.
    static WAKE: AtomicI32 = AtomicI32::new(-1);
    /// A signal is being handled: a second one ends the process at once.
    static RELEASING: AtomicBool = AtomicBool::new(false);

    pub(super) fn stopping() -> bool {
        RELEASING.load(Ordering::SeqCst)
    }

    pub(super) fn install() {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| {
            if !super::enabled() {
                return;
            }
            if let Err(e) = try_install() {
                crate::report::stderr::line(&format!(
                    "cannot catch SIGINT/SIGTERM/SIGHUP ({e}): a stopped test's locks expire after their lease"
                ));
            }
        });
    }

    fn try_install() -> std::io::Result<()> {
        let (mut rx, tx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        // Lives for the whole process: the handler may write at any time.
        WAKE.store(tx.as_raw_fd(), Ordering::SeqCst);
        std::mem::forget(tx);
        std::thread::Builder::new()
            .name("relukko-signals".to_owned())
            .spawn(move || {
                let mut byte = [0u8; 1];
                loop {
                    match rx.read_exact(&mut byte) {
                        Ok(()) => return on_signal(i32::from(byte[0])),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        // Cannot happen (the write end is never closed).
                        Err(_) => return,
                    }
                }
            })?;
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            if !is_default(sig) {
                // Ignored, or handled by the program: leave it be.
                continue;
            }
            // SAFETY: the action only uses atomics, write(2) and
            // `emulate_default_handler`, all async-signal-safe.
            unsafe { signal_hook::low_level::register(sig, move || handler(sig)) }?;
        }
        Ok(())
    }

    /// Whether `sig` has its default disposition now.
    fn is_default(sig: i32) -> bool {
        // SAFETY: a query only (null new action) into a zeroed struct.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_DFL
        }
    }

    /// In the signal handler: async-signal-safe code only.
    fn handler(sig: i32) {
        if ACTIVE.load(Ordering::SeqCst) == 0 || RELEASING.swap(true, Ordering::SeqCst) {
            // Nothing held, or a second signal while releasing: the default.
            let _ = emulate_default_handler(sig);
            return;
        }
        let byte = sig as u8;
        // SAFETY: write(2) of one byte from a live buffer to a descriptor
        // that is never closed.
        unsafe {
            libc::write(WAKE.load(Ordering::SeqCst), (&byte as *const u8).cast(), 1);
        }
    }

    /// On the release thread: release, then end as the signal would have.
    fn on_signal(sig: i32) {
        let started = std::time::Instant::now();
        let name = signal_name(sig).unwrap_or("a signal");
        let (parts, done) = super::release_everything(name);
        crate::report::stderr::line(&format!(
            "{name}: {} {parts} lock(s) in {}{}",
            if done { "released" } else { "tried to release" },
            crate::report::duration(started.elapsed()),
            if done { "" } else { " (gave up waiting)" }
        ));
        let _ = emulate_default_handler(sig);
        // Only reached if the default was to carry on (it is not, for these).
        std::process::abort();
    }
}

#[cfg(not(unix))]
mod imp {
    /// Not built for this platform yet: locks of a stopped process expire
    /// after their lease, as before.
    pub(super) fn install() {}

    pub(super) fn stopping() -> bool {
        false
    }
}
