//! Operational endpoints.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::server::AppState;
use crate::server::auth::Caller;

/// The body of `GET /healthz`.
#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    uptime_s: u64,
}

/// `GET /healthz`: the server is up and serving verified clients.
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs(),
    })
}

/// `GET /metrics`: counters in the Prometheus text format, for any verified caller.
pub async fn metrics(State(state): State<AppState>, _caller: Caller) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
