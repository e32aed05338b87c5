//! The `X-API-Key` check on every `/v1` route and on the WebSocket upgrade.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::reply::ApiError;
use super::state::AppState;

/// Answers `401` unless the request carries the server's key in `X-API-Key`
/// (header names are case-insensitive).
pub(crate) async fn require_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(given) = req.headers().get("x-api-key") else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing X-API-Key header",
        ));
    };
    if !constant_time_eq(given.as_bytes(), state.config().api_key().as_bytes()) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong API key"));
    }
    Ok(next.run(req).await)
}

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

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

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
