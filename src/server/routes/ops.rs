//! Operational endpoints.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::server::AppState;

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
