//! The HTTP routes, one module per resource.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use super::AppState;
use super::error::ApiError;

mod directory;
mod documents;
mod identity;
mod lists;
pub mod log;
mod ops;
mod receipts;
mod registers;

/// All routes of the API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/whoami", get(identity::whoami))
        .route("/v1/server-keys", get(directory::server_keys))
        .route("/v1/directory", get(directory::directory))
        .route(
            "/v1/documents",
            post(documents::submit).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/documents/{id}", get(documents::get))
        .route(
            "/v1/documents/{id}/payload",
            put(documents::upload)
                .get(documents::payload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/documents/{id}/receipts",
            post(receipts::post).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/documents/{id}/status", get(receipts::status))
        .route("/v1/crls", get(directory::crls))
        .route("/v1/log/checkpoint", get(log::checkpoint))
        .route("/v1/log/entries", get(log::entries))
        .route("/v1/log/proofs/inclusion", get(log::inclusion))
        .route("/v1/log/proofs/consistency", get(log::consistency))
        .route("/v1/log/proofs/range", get(log::range))
        .route("/v1/inbox", get(lists::inbox))
        .route("/v1/sent", get(lists::sent))
        .route(
            "/v1/registers/incoming",
            get(registers::incoming).post(registers::register_paper),
        )
        .route("/v1/registers/incoming/close", post(registers::close))
}

/// A document id from a path, or `id_invalid` naming (the start of) what was given.
pub fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::IdInvalid(raw.chars().take(64).collect()))
}

/// Reads a whole body of at most `limit` bytes, within the body timeout.
pub async fn read_limited(
    state: &AppState,
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    use http_body_util::BodyExt;
    let timeout = state.limits.body_idle_timeout();
    let collect = http_body_util::Limited::new(body, limit).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(ApiError::BodyTimeout(timeout.as_secs())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::BodyTooLarge(limit as u64))
        }
        Ok(Err(e)) => Err(ApiError::UploadIncomplete(e.to_string())),
    }
}

/// Refuses with `507` when a write of `extra` bytes would eat into the disk reserve.
pub fn ensure_space(state: &AppState, extra: u64) -> Result<(), ApiError> {
    state
        .store
        .ensure_space(extra.saturating_add(state.limits.disk_reserve_bytes))
        .map_err(ApiError::from)
}

/// `201 Created` for something the exchange made now, `200 OK` for a replay, with its JSON.
pub fn render<T: serde::Serialize>(answer: crate::exchange::Answer<T>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match answer {
        crate::exchange::Answer::Created(body) => {
            (axum::http::StatusCode::CREATED, axum::Json(body)).into_response()
        }
        crate::exchange::Answer::Replayed(body) => {
            (axum::http::StatusCode::OK, axum::Json(body)).into_response()
        }
    }
}
