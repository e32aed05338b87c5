//! The `X-API-Key` check on every `/v1` route and on the WebSocket upgrade.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::credentials::constant_time_eq;
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
