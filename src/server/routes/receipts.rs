//! Recipients' signed receipts, and per-recipient delivery status. The rules are the
//! exchange's (`crate::exchange::receipts`); these handlers extract, call and render.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;

use super::{parse_id, read_limited, render};
use crate::api::StatusView;
use crate::exchange::ExchangeError;
use crate::pki::Identity;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;

/// Largest receipt request body.
const RECEIPT_BODY_BYTES_MAX: usize = 128 * 1024;

/// `POST /v1/documents/{id}/receipts`: a recipient's signed receipt.
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    if !matches!(caller.identity, Identity::Org(_)) {
        return Err(ExchangeError::RoleForbidden("only recipients sign receipts").into());
    }
    let id = parse_id(&raw_id)?;
    let exchange = state.exchange();
    // Whether this caller may answer for the document is settled before its body is read.
    let (record, addressee) = exchange.receipt_target(&caller.identity, &id)?;
    let body = read_limited(&state, body, RECEIPT_BODY_BYTES_MAX).await?;
    let answer = exchange
        .post_receipt(&caller.identity, &record, &addressee, &body)
        .await?;
    Ok(render(answer))
}

/// `GET /v1/documents/{id}/status`: each recipient's fetches and latest receipt, for the
/// sender and for security officers in scope.
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<StatusView>, ApiError> {
    let id = parse_id(&raw_id)?;
    Ok(Json(state.exchange().status(&caller.identity, &id)?))
}
