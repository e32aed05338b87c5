//! The lines users see on stderr: waiting progress, the skip notice, release
//! warnings.
//!
//! They are written straight to the process's stderr, not through `eprint!`:
//! libtest captures the `print!`/`eprint!` macros of a passing test, and a
//! line saying "waiting 40s for hil-rig-3, held by alice" is most useful
//! exactly while the test has not failed yet.

use std::io::Write;
use std::sync::Once;

/// Writes `relukko: <msg>` as one line to stderr, bypassing test capture.
pub fn line(msg: &str) {
    let text = format!("relukko: {msg}\n");
    // One write of the whole line, so lines of parallel tests do not interleave.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Says once per process that locking is skipped.
pub(crate) fn skip_notice() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        line(&format!(
            "locking is skipped ({} is set, or a skip locker is used): tests run without holding their resources",
            relukko_protocol::vars::SKIP
        ));
    });
}
