//! The secrets a request may carry and how they are checked: the key
//! comparison in constant time, the page login, and the page's single-use
//! WebSocket tickets. Plain data, no handlers, so the state, the config and the
//! handlers can all build on it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};

/// How long a WebSocket ticket may wait to be used.
pub(crate) const TICKET_LIFETIME: Duration = Duration::from_secs(30);
/// Outstanding tickets kept at most; the oldest go first.
const MAX_TICKETS: usize = 1024;

/// Compares two byte strings in time that depends only on their lengths, not on
/// where they first differ, so the key cannot be guessed byte by byte from
/// answer times.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    // Keeps the optimiser from turning the loop into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// The page login, kept as the `Authorization` value a browser sends for it.
#[derive(Clone)]
pub(crate) struct Login {
    /// `base64(user:password)`.
    credentials: String,
}

impl Login {
    pub(crate) fn new(user: &str, password: &str) -> Self {
        Login {
            credentials: base64(format!("{user}:{password}").as_bytes()),
        }
    }

    /// Whether `headers` carry this login (the comparison takes constant time).
    pub(crate) fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        let (scheme, given) = value.split_at(value.len().min(6));
        scheme.eq_ignore_ascii_case(b"basic ")
            && constant_time_eq(given.trim_ascii(), self.credentials.as_bytes())
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Login(<redacted>)")
    }
}

/// The outstanding WebSocket tickets.
#[derive(Debug, Default)]
pub(crate) struct Tickets {
    issued: Mutex<Vec<(String, Instant)>>,
}

impl Tickets {
    /// A new ticket: 244 random bits from the system's generator, as hex.
    pub(crate) fn issue(&self) -> String {
        let ticket = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        issued.retain(|(_, at)| now.duration_since(*at) < TICKET_LIFETIME);
        if issued.len() >= MAX_TICKETS {
            issued.remove(0);
        }
        issued.push((ticket.clone(), now));
        ticket
    }

    /// Takes `ticket` if it is outstanding and fresh. Every outstanding ticket
    /// is compared in constant time, so answer times tell nothing about them.
    pub(crate) fn redeem(&self, ticket: &str) -> bool {
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        issued.retain(|(_, at)| now.duration_since(*at) < TICKET_LIFETIME);
        let mut found = None;
        for (i, (t, _)) in issued.iter().enumerate() {
            if constant_time_eq(t.as_bytes(), ticket.as_bytes()) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => {
                issued.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

/// Standard base64 with padding (RFC 4648), as in an `Authorization: Basic` value.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn base64_as_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn login_accepts_only_its_credentials() {
        let login = Login::new("Aladdin", "open sesame");
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(login.accepts(&with("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")));
        assert!(login.accepts(&with("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")));
        assert!(!login.accepts(&with("Basic QWxhZGRpbjpvcGVuIHNlc2FtZR==")));
        assert!(!login.accepts(&with("Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==")));
        assert!(!login.accepts(&with("Basic")));
        assert!(!login.accepts(&HeaderMap::new()));
        assert_eq!(format!("{login:?}"), "Login(<redacted>)");
    }

    #[test]
    fn a_ticket_is_good_once() {
        let tickets = Tickets::default();
        let t = tickets.issue();
        assert_eq!(t.len(), 64);
        assert!(!tickets.redeem("nope"));
        assert!(!tickets.redeem(""));
        assert!(tickets.redeem(&t));
        assert!(!tickets.redeem(&t), "single use");
    }

    #[test]
    fn equal_only_when_identical() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(!constant_time_eq(b"\0", b""));
    }
}
