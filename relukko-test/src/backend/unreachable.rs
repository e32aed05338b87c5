//! A short memory of an unreachable server.
//!
//! With the server down, each acquisition spends its whole retry budget
//! (several seconds) before failing with the same cause; a run of fourteen
//! tests then spends half a minute on identical failures. Once an
//! acquisition found the server unreachable after all its retries, later
//! ones in this process fail at once with the same cause for [`FOR`], then
//! try again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::http::Cause;
use crate::error::Error;
use crate::rt::unpoisoned;

/// How long a server found unreachable is not tried again.
pub(crate) const FOR: Duration = Duration::from_secs(30);

/// The server URL, when it was found unreachable, and why.
#[derive(Debug, Clone)]
struct Memory {
    base_url: String,
    at: Instant,
    url: String,
    cause: String,
}

static LAST: Mutex<Option<Memory>> = Mutex::new(None);

fn last() -> std::sync::MutexGuard<'static, Option<Memory>> {
    unpoisoned(&LAST)
}

/// The error to fail with at once, if `base_url` was found unreachable less
/// than [`FOR`] before `now`.
pub(crate) fn recent(base_url: &str, now: Instant) -> Option<Error> {
    let m = last().clone()?;
    let ago = now.checked_duration_since(m.at)?;
    if m.base_url != base_url || ago >= FOR {
        return None;
    }
    Some(Error::Transport {
        url: m.url,
        source: Box::new(Cause(format!(
            "{} (not tried again: this process found the server unreachable {} ago, \
             after all its retries; it tries again {} after that)",
            m.cause,
            crate::report::duration(ago),
            crate::report::duration(FOR)
        ))),
    })
}

/// Remembers how an acquisition at `base_url` ended: an unreachable server
/// (a transport error or a timeout, after the retries) is remembered, any
/// other outcome forgets it.
pub(crate) fn note<T>(base_url: &str, result: &crate::error::Result<T>, now: Instant) {
    let mut last = last();
    match result {
        Err(Error::Transport { url, source }) => {
            *last = Some(Memory {
                base_url: base_url.to_owned(),
                at: now,
                url: url.clone(),
                cause: source.to_string(),
            });
        }
        Err(e @ Error::Timeout { url, .. }) => {
            *last = Some(Memory {
                base_url: base_url.to_owned(),
                at: now,
                url: url.clone(),
                cause: e.to_string(),
            });
        }
        // A wait that timed out, a bad answer...: the server was reached.
        Err(_) | Ok(_) => {
            if last.as_ref().is_some_and(|m| m.base_url == base_url) {
                *last = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down(url: &str) -> crate::error::Result<()> {
        Err(Error::Transport {
            url: format!("{url}/v1/locks/"),
            source: Box::new(Cause("Connection refused".into())),
        })
    }

    #[test]
    fn an_unreachable_server_fails_at_once_for_a_while() {
        // One test: the memory is process-wide.
        let t0 = Instant::now();
        let url = "http://127.0.0.1:1";
        note(url, &down(url), t0);
        let e = recent(url, t0 + Duration::from_secs(3)).expect("remembered");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "cannot reach http://127.0.0.1:1/v1/locks/: Connection refused (not tried again"
            ),
            "{text}"
        );
        assert!(text.contains("unreachable 3.0s ago"), "{text}");
        assert!(recent("http://127.0.0.1:2", t0).is_none(), "another server");
        assert!(recent(url, t0 + FOR).is_none(), "tried again after a while");
        // Reached again (even with an error of another kind): forgotten.
        note::<()>(
            url,
            &Err(Error::Config {
                name: "x".into(),
                reason: "y".into(),
            }),
            t0,
        );
        assert!(recent(url, t0).is_none());
    }
}
