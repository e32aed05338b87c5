//! The HTTP API: routes, handlers, and the answers for unknown routes and methods.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete as delete_route, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::require_key;
use super::clock::{now, truncate};
use super::reply::{ApiError, JsonBody, LockId, read_whole_body};
use super::state::{AppState, CreateError};
use super::{page, ws};
use relukko_protocol::Lock;

/// What the `GET` forms of `keep_alive` and `add_to_expire_at` add.
const DEFAULT_EXTENSION: time::Duration = time::Duration::minutes(5);

/// The whole application.
pub(crate) fn router(state: AppState) -> Router {
    let body_limit = state.config().body_limit;
    let protected = Router::new()
        .route("/v1/locks", get(list).post(create))
        .route("/v1/locks/", get(list).post(create))
        .route("/v1/locks/{id}", get(get_one).put(update).delete(delete))
        .route(
            "/v1/locks/{id}/keep_alive",
            get(keep_alive).put(keep_alive_by),
        )
        .route(
            "/v1/locks/{id}/add_to_expire_at",
            get(add_to_expire_at).put(add_to_expire_at_by),
        )
        .route("/ws/broadcast", get(ws::upgrade))
        .route("/metrics", get(metrics))
        .route_layer(from_fn_with_state(state.clone(), require_key));
    // What the page calls when it has a login instead of the key.
    let page_api = Router::new()
        .route("/page/locks", get(list))
        .route("/page/locks/", get(list))
        .route("/page/locks/{id}", delete_route(delete))
        .route_layer(from_fn_with_state(state.clone(), page::require_login));
    Router::new()
        .route("/healthchecker", get(healthchecker))
        .route("/", get(page::page))
        .route("/page/ticket", post(page::ticket))
        .route("/page/ws", get(page::socket))
        .merge(protected)
        .merge(page_api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(from_fn_with_state(state.clone(), read_whole_body))
        .layer(from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

/// One log line per request: method, path, status, duration (never headers:
/// the key), and the request counted in the metrics by its route template.
async fn log_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(req).await;
    state
        .metrics()
        .request(route.as_deref(), &method, response.status().as_u16());
    tracing::info!(
        target: "relukko::server",
        "{method} {path} {} {:.1?}",
        response.status().as_u16(),
        start.elapsed()
    );
    response
}

/// `GET /metrics` (behind the API-key check).
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    #[cfg(feature = "postgres")]
    let (held, expired) = match state.postgres() {
        Some(pg) => match pg.counts().await {
            Ok(counts) => counts,
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => state.counts(now()),
    };
    #[cfg(not(feature = "postgres"))]
    let (held, expired) = state.counts(now());
    let body = state.metrics().render(held, expired);
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `200` while up; with PostgreSQL, `503` while the database does not answer
/// (so a load balancer sends requests to a replica that can serve them).
async fn healthchecker(State(state): State<AppState>) -> Response {
    #[cfg(feature = "postgres")]
    if let Some(pg) = state.postgres() {
        return match pg.check().await {
            Ok(()) => Json(serde_json::json!({
                "status": "success",
                "message": "relukko-test server is up",
                "database": "reachable",
            }))
            .into_response(),
            Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        };
    }
    let _ = state;
    Json(serde_json::json!({ "status": "success", "message": "relukko-test server is up" }))
        .into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

#[derive(Debug, Deserialize)]
struct NewLock {
    lock_name: String,
    #[serde(default)]
    creator: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(body): JsonBody<NewLock>,
) -> Result<(StatusCode, Json<Lock>), ApiError> {
    let ip = peer.ip().to_canonical().to_string();
    let name = body.lock_name.clone();
    #[cfg(feature = "postgres")]
    if let Some(pg) = state.postgres() {
        for text in std::iter::once(&body.lock_name).chain(&body.creator) {
            storable_in_postgres(text)?;
        }
        return match pg
            .create(&body.lock_name, body.creator.as_deref(), &ip)
            .await?
        {
            Some(lock) => Ok((StatusCode::CREATED, Json(lock))),
            None => Err(taken(&name)),
        };
    }
    match changing(&state, move |s| s.create(body.lock_name, body.creator, ip)).await? {
        Ok(lock) => Ok((StatusCode::CREATED, Json(lock))),
        Err(CreateError::Taken) => Err(taken(&name)),
        Err(CreateError::Store(e)) => Err(e.into()),
    }
}

/// PostgreSQL's text cannot hold a NUL character: a `422` for the client,
/// not a `503` that it would retry.
#[cfg(feature = "postgres")]
fn storable_in_postgres(text: &str) -> Result<(), ApiError> {
    if text.contains('\0') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a lock name or creator with a NUL character (\\u0000) cannot be stored",
        ));
    }
    Ok(())
}

fn taken(name: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, format!("lock {name:?} is taken"))
}

/// Runs a change of the state. With a database it waits for the disk, so it
/// runs on a blocking thread and the runtime's workers stay free.
async fn changing<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> T + Send + 'static,
) -> Result<T, ApiError> {
    if !state.has_store() {
        return Ok(f(state));
    }
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the change failed: {e}"),
            )
        })
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<Lock>>, ApiError> {
    #[cfg(feature = "postgres")]
    if let Some(pg) = state.postgres() {
        return Ok(Json(pg.list().await?));
    }
    Ok(Json(state.list()))
}

async fn get_one(
    State(state): State<AppState>,
    LockId(id): LockId,
) -> Result<Json<Lock>, ApiError> {
    #[cfg(feature = "postgres")]
    if let Some(pg) = state.postgres() {
        return pg
            .get(id)
            .await?
            .map(Json)
            .ok_or_else(|| ApiError::no_lock(id));
    }
    state.get(id).map(Json).ok_or_else(|| ApiError::no_lock(id))
}

async fn delete(State(state): State<AppState>, LockId(id): LockId) -> Result<Json<Lock>, ApiError> {
    #[cfg(feature = "postgres")]
    if let Some(pg) = state.postgres() {
        return pg
            .delete(id)
            .await?
            .map(Json)
            .ok_or_else(|| ApiError::no_lock(id));
    }
    match changing(&state, move |s| s.delete(id)).await? {
        Some(Ok(lock)) => Ok(Json(lock)),
        Some(Err(e)) => Err(e.into()),
        None => Err(ApiError::no_lock(id)),
    }
}

#[derive(Debug, Deserialize)]
struct LockUpdate {
    #[serde(default)]
    creator: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

/// `PUT /v1/locks/{id}`: a `null` (or absent) field is left as it was.
async fn update(
    State(state): State<AppState>,
    LockId(id): LockId,
    JsonBody(body): JsonBody<LockUpdate>,
) -> Result<Json<Lock>, ApiError> {
    change(&state, id, move |lock, _now| {
        let mut lock = lock.clone();
        if let Some(creator) = &body.creator {
            lock.creator = Some(creator.clone());
        }
        if let Some(expires_at) = body.expires_at {
            lock.expires_at = truncate(on_the_wire(expires_at)?);
        }
        Ok(lock)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct Seconds {
    seconds: i64,
}

/// `GET .../keep_alive`: expires now + 5 minutes.
async fn keep_alive(
    State(state): State<AppState>,
    LockId(id): LockId,
) -> Result<Json<Lock>, ApiError> {
    change(&state, id, |lock, now| {
        expire_at(lock, now, DEFAULT_EXTENSION)
    })
    .await
}

/// `PUT .../keep_alive {"seconds": n}`: expires now + n seconds (n may be negative).
async fn keep_alive_by(
    State(state): State<AppState>,
    LockId(id): LockId,
    JsonBody(body): JsonBody<Seconds>,
) -> Result<Json<Lock>, ApiError> {
    let by = seconds(body.seconds)?;
    change(&state, id, move |lock, now| expire_at(lock, now, by)).await
}

/// `GET .../add_to_expire_at`: expires at the old time + 5 minutes.
async fn add_to_expire_at(
    State(state): State<AppState>,
    LockId(id): LockId,
) -> Result<Json<Lock>, ApiError> {
    change(&state, id, |lock, _| {
        expire_at(lock, lock.expires_at, DEFAULT_EXTENSION)
    })
    .await
}

/// `PUT .../add_to_expire_at {"seconds": n}`: expires at the old time + n seconds (n may be negative).
async fn add_to_expire_at_by(
    State(state): State<AppState>,
    LockId(id): LockId,
    JsonBody(body): JsonBody<Seconds>,
) -> Result<Json<Lock>, ApiError> {
    let by = seconds(body.seconds)?;
    change(&state, id, move |lock, _| {
        expire_at(lock, lock.expires_at, by)
    })
    .await
}

fn seconds(n: i64) -> Result<time::Duration, ApiError> {
    Ok(time::Duration::seconds(n))
}

fn expire_at(lock: &Lock, base: OffsetDateTime, by: time::Duration) -> Result<Lock, ApiError> {
    let expires_at = base
        .checked_add(by)
        .ok_or_else(|| out_of_range(format!("{base} + {by}")))
        .and_then(on_the_wire)?;
    Ok(Lock {
        expires_at,
        ..lock.clone()
    })
}

/// `t` in UTC, if RFC 3339 can write it (years 0000 to 9999). A stored time
/// outside that range would make every later list, answer and broadcast about
/// the lock fail to serialize, so it is refused here instead.
fn on_the_wire(t: OffsetDateTime) -> Result<OffsetDateTime, ApiError> {
    match t.checked_to_offset(time::UtcOffset::UTC) {
        Some(utc) if (0..=9999).contains(&utc.year()) => Ok(utc),
        _ => Err(out_of_range(t.to_string())),
    }
}

fn out_of_range(what: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!(
            "expires_at {what} is out of range: it must fall within the years 0000 to 9999 (UTC)"
        ),
    )
}

async fn change(
    state: &AppState,
    id: uuid::Uuid,
    f: impl Fn(&Lock, OffsetDateTime) -> Result<Lock, ApiError> + Send + Sync + 'static,
) -> Result<Json<Lock>, ApiError> {
    #[cfg(feature = "postgres")]
    if let Some(pg) = state.postgres() {
        // May run more than once (a retry after a concurrent change).
        let f = move |lock: &Lock, now| {
            let mut l = f(lock, now)?;
            l.expires_at = truncate(l.expires_at);
            if let Some(creator) = &l.creator {
                storable_in_postgres(creator)?;
            }
            Ok(l)
        };
        return match pg.update(id, f).await? {
            Some(Ok(lock)) => Ok(Json(lock)),
            Some(Err(e)) => Err(e),
            None => Err(ApiError::no_lock(id)),
        };
    }
    match changing(state, move |s| s.update(id, f)).await? {
        Some(Ok(lock)) => Ok(Json(lock)),
        Some(Err(e)) => Err(e),
        None => Err(ApiError::no_lock(id)),
    }
}
