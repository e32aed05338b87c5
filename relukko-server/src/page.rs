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

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::credentials::{TICKET_LIFETIME, constant_time_eq};
use super::metrics::Socket;
use super::reply::ApiError;
use super::state::AppState;

/// The page: one file with its script and styles, no outside resources.
const PAGE: &str = include_str!("page.html");
/// The page's headers: no framing (the release button), no caching, nothing
/// loaded from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

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

/// Why a state-changing request seems to come from another site's page, if
/// it does: the browser says so in `Sec-Fetch-Site`, or its `Origin` is not
/// this server. A browser sends the page login (basic auth) along with a
/// request another site's page makes, so the login alone proves nothing.
/// Clients that send neither header (curl, scripts) are not browsers on
/// another site's behalf and pass.
fn from_elsewhere(headers: &HeaderMap) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("?");
        if !matches!(site, "same-origin" | "none") {
            return Some(format!("Sec-Fetch-Site: {site}"));
        }
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("?");
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .filter(|a| !a.is_empty() && !a.contains('/'));
    // Behind a proxy the browser's host may arrive as X-Forwarded-Host.
    let this = [header::HOST.as_str(), "x-forwarded-host"]
        .into_iter()
        .filter_map(|name| headers.get(name)?.to_str().ok());
    let same = authority.is_some_and(|a| this.into_iter().any(|host| host.eq_ignore_ascii_case(a)));
    (!same).then(|| format!("Origin: {origin}"))
}

fn refused_from_elsewhere(why: &str) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("refused: this request comes from another site's page ({why})"),
    )
    .into_response()
}

/// Guards `/page/locks`: the page login or the API key; a release only from
/// the page itself.
pub(crate) async fn require_login(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != axum::http::Method::GET
        && let Some(why) = from_elsewhere(req.headers())
    {
        return refused_from_elsewhere(&why);
    }
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
    if let Some(why) = from_elsewhere(&headers) {
        return refused_from_elsewhere(&why);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_page_itself_and_clients_without_browser_headers_pass() {
        assert_eq!(from_elsewhere(&headers(&[("host", "rig:3000")])), None);
        let page = [
            ("host", "rig:3000"),
            ("origin", "http://rig:3000"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(from_elsewhere(&headers(&page)), None);
        let proxied = [
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "locks.example"),
            ("origin", "https://locks.example"),
        ];
        assert_eq!(from_elsewhere(&headers(&proxied)), None);
    }

    #[test]
    fn another_site_is_named() {
        let evil = [("host", "rig:3000"), ("origin", "https://evil.example")];
        assert_eq!(
            from_elsewhere(&headers(&evil)).as_deref(),
            Some("Origin: https://evil.example")
        );
        let cross = [("host", "rig:3000"), ("sec-fetch-site", "cross-site")];
        assert!(
            from_elsewhere(&headers(&cross))
                .unwrap()
                .contains("cross-site")
        );
        let same_site = [("host", "rig:3000"), ("sec-fetch-site", "same-site")];
        assert!(from_elsewhere(&headers(&same_site)).is_some());
        for origin in ["null", "http://rig:3001", "http://rig:3000/x", "rig:3000"] {
            let h = [("host", "rig:3000"), ("origin", origin)];
            assert!(from_elsewhere(&headers(&h)).is_some(), "{origin}");
        }
    }
}
