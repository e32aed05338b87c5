//! `GET /`: a page of who holds what, updated live, with a force-release button.
//!
//! Two ways in, as upstream's web UI:
//! - With a page login (`RELUKKO_USER` / `RELUKKO_PASSWORD`), HTTP basic auth
//!   protects the page and the `/page/*` endpoints it calls; the API still
//!   takes only the key.
//! - Without one, the page itself is public (it holds no data) and asks for
//!   the API key, which it keeps in the tab's `sessionStorage` and sends to
//!   `/v1` like any client.
//!
//! A browser cannot set headers on a WebSocket, so the page first trades its
//! credentials for a ticket (`POST /page/ticket`): random, single-use, valid
//! for [`TICKET_LIFETIME`], good only for `GET /page/ws?ticket=...`, which
//! streams the same events as `/ws/broadcast`. The API key never travels in a
//! URL, and `/ws/broadcast` still takes only the header.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::constant_time_eq;
use super::metrics::Socket;
use super::reply::ApiError;
use super::state::AppState;

/// The page: one file with its script and styles, no outside resources.
const PAGE: &str = include_str!("page.html");
/// How long a WebSocket ticket may wait to be used.
pub(crate) const TICKET_LIFETIME: Duration = Duration::from_secs(30);
/// Outstanding tickets kept at most; the oldest go first.
const MAX_TICKETS: usize = 1024;

/// The page's headers: no framing (the release button), no caching, nothing
/// loaded from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

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
    fn accepts(&self, headers: &HeaderMap) -> bool {
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
    fn issue(&self) -> String {
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
    fn redeem(&self, ticket: &str) -> bool {
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

/// The API key in `X-API-Key`, or the page login.
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let key = headers
        .get("x-api-key")
        .is_some_and(|k| constant_time_eq(k.as_bytes(), state.config().api_key().as_bytes()));
    let login = state
        .config()
        .page_login
        .as_ref()
        .is_some_and(|login| login.accepts(headers));
    key | login
}

fn unauthorized(state: &AppState) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "log in or send X-API-Key").into_response();
    if state.config().page_login.is_some() {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"relukko\", charset=\"UTF-8\""),
        );
    }
    response
}

/// Guards `/page/locks`: the page login or the API key.
pub(crate) async fn require_login(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if authorized(&state, req.headers()) {
        next.run(req).await
    } else {
        unauthorized(&state)
    }
}

/// `GET /`.
pub(crate) async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mode = match &state.config().page_login {
        Some(login) if !login.accepts(&headers) => return unauthorized(&state),
        Some(_) => "basic",
        None => "key",
    };
    let mut response = PAGE.replacen("{{AUTH}}", mode, 1).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `POST /page/ticket`: `{"ticket": "...", "expires_in": 30}`.
pub(crate) async fn ticket(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized(&state);
    }
    let ticket = state.tickets().issue();
    let mut response = axum::Json(serde_json::json!({
        "ticket": ticket,
        "expires_in": TICKET_LIFETIME.as_secs(),
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /page/ws?ticket=...`: the live events, for a redeemed ticket.
pub(crate) async fn socket(
    State(state): State<AppState>,
    req_uri: axum::http::Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ticket = req_uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("ticket="))
        .unwrap_or("");
    // Redeemed before the upgrade is checked: a ticket is spent on first use.
    if ticket.is_empty() || !state.tickets().redeem(ticket) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing, used or expired ticket: get one from POST /page/ticket",
        )
        .into_response();
    }
    super::ws::accept(state, ws, Socket::Page)
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
}
