//! The error answer of the protocol: `{"status": N, "message": "..."}`, and the
//! extractors that turn every malformed request into one.

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::state::AppState;

/// An error answer with the protocol's JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn no_lock(id: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, format!("no lock with id {id}"))
    }
}

/// The database refused a change (nothing changed): `503`, which clients retry.
impl From<super::store::StoreError> for ApiError {
    fn from(e: super::store::StoreError) -> Self {
        tracing::error!(target: "relukko::server", "{e}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the lock could not be stored: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "status": self.status.as_u16(), "message": self.message });
        let mut response = (self.status, axum::Json(body)).into_response();
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            // The body was left unread, so this connection cannot carry another
            // request; say so, or a client may reuse it and lose its next request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A JSON request body; every rejection becomes an [`ApiError`]:
/// not JSON, a missing field or a wrong type: `422` (the contract's code, where
/// axum alone would say `400` for a syntax error); no `application/json`
/// content type: `415`; too big: `413`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = match &rejection {
        JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        other => other.status(),
    };
    ApiError::new(status, rejection.body_text())
}

/// The `{id}` of a lock path.
///
/// An id that is not a UUID cannot name a lock, so it is answered `404` ("no
/// lock with that id"), the code clients already handle for a lock that is
/// gone. (Upstream's framework would answer `400` here.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct LockId(pub(crate) Uuid);

impl<S: Send + Sync> FromRequestParts<S> for LockId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no lock with that id: {}", e.body_text()),
                )
            })?;
        Uuid::try_parse(&raw).map(LockId).map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no lock with id {raw:?}: not a UUID"),
            )
        })
    }
}

/// Reads every request body in full (up to the body limit) before routing.
///
/// An answer given without reading the body (401, 404, 405, a `GET` with a
/// body) would otherwise leave the body's unread part on the connection, and
/// hyper then closes it after the answer without saying so: a client that
/// reuses the pooled connection loses its next request. Bodies are small
/// (64 KiB at most by default), so reading them costs nothing worth saving.
pub(crate) async fn read_whole_body(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limit = state.config().body_limit;
    let timeout = state.config().limits.body_timeout;
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        // Over the limit, or the client stopped sending: either way this
        // connection cannot carry another request (see `into_response`).
        Ok(Err(_)) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes, or was cut short"),
        )
        .into_response(),
        // A body sent slowly holds a connection; a stranger must not hold
        // one for as long as they like.
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {timeout:?}"),
        )
        .into_response(),
    }
}
