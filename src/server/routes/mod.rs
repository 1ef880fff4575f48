//! The HTTP routes, one module per resource.

use axum::Router;
use axum::routing::get;

use super::AppState;

mod identity;
mod ops;

/// All routes of the API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/whoami", get(identity::whoami))
}
