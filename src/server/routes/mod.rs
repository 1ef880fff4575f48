//! The HTTP routes, one module per resource.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use super::AppState;

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
