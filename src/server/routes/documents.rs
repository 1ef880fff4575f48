//! Documents: submit (manifest + signatures), upload the payload, read them back. The
//! rules are the exchange's (`crate::exchange`); these handlers extract, call and render.

use axum::Json;
use axum::body::{Body, BodyDataStream};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{parse_id, read_limited, render};
use crate::api::{DocumentView, INLINE_PAYLOAD_BYTES_MAX};
use crate::exchange::payload::{PayloadContent, UploadStart};
use crate::exchange::{self, Answer};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;

/// Largest `POST /v1/documents` body: a full manifest plus four signatures with chains
/// (512 KiB), plus an inline payload in base64.
pub const SUBMIT_BODY_BYTES_MAX: usize =
    512 * 1024 + (INLINE_PAYLOAD_BYTES_MAX as usize).div_ceil(3) * 4;

/// `POST /v1/documents`.
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    exchange::sender_of(&caller.identity)?;
    let body = read_limited(&state, body, SUBMIT_BODY_BYTES_MAX).await?;
    let exchange = state.exchange();
    let submission = exchange.decode_submission(&body, &state.rules)?;
    // From here on the request names a document: refusals go into the log, under the
    // caller alone (the manifest's parties are claims until its signatures verify).
    match exchange.submit(&caller.identity, &submission).await {
        Ok(answer) => Ok(render(answer)),
        Err(e) => {
            let e = ApiError::from(e);
            if !matches!(e, ApiError::IdConflict(_)) {
                let id = Some(submission.parsed.manifest.id);
                super::log::log_refusal(&state, &caller, id, &e).await;
            }
            Err(e)
        }
    }
}

/// `GET /v1/documents/{id}`: manifest, signatures and state, for the sender, the
/// recipients and auditors in scope.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<DocumentView>, ApiError> {
    let id = parse_id(&raw_id)?;
    let record = state.exchange().visible_document(&caller.identity, &id)?;
    let manifest = serde_json::value::RawValue::from_string(record.manifest)
        .map_err(|e| ApiError::Internal(format!("stored manifest of {id}: {e}")))?;
    Ok(Json(DocumentView {
        id,
        state: exchange::state_name(record.state).to_owned(),
        manifest,
        manifest_sha256: record.manifest_sha256,
        signatures: record.signatures,
        submitted_at: record.submitted_at,
        accepted_at: record.accepted_at,
        receipt: record.receipt,
        sealed_with: record.sealed_with,
        ocsp: record.ocsp,
    }))
}

/// `GET /v1/documents/{id}/payload`: the payload, streamed.
pub async fn payload(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw_id)?;
    let out = state.exchange().open_payload(&caller.identity, &id).await?;
    let body = match out.content {
        PayloadContent::Small(bytes) => Body::from(bytes),
        PayloadContent::File(file) => {
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, out.size.to_string()),
            (
                header::HeaderName::from_static("x-congvan-payload-sha256"),
                out.sha256,
            ),
            (
                header::HeaderName::from_static("x-congvan-log-index"),
                out.log_index.map(|i| i.to_string()).unwrap_or_default(),
            ),
        ],
        body,
    )
        .into_response())
}

/// `PUT /v1/documents/{id}/payload`: streamed; SHA-256 and size must match the manifest.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut body = Some(body.into_data_stream());
    let answer = upload_body(&state, &caller, &raw_id, &headers, &mut body).await;
    if let Some(unread) = body {
        drain_unread(unread).await;
    }
    answer
}

/// Most of an unread request body that is read and thrown away before an early answer.
const DRAIN_BYTES_MAX: usize = 16 << 20;
/// Longest time spent doing so.
const DRAIN_TIME_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and discards what a client is still sending (bounded in bytes and time) before
/// the server answers without having read the body (a refusal, a replay). Over HTTP/2 an
/// answer followed by a reset of the unread stream is legal, but Debian 12's curl (7.88)
/// then reports "stream error" and never shows the status; after a drained body it sees
/// the answer. Bodies over the bound still end in a reset.
async fn drain_unread(mut body: BodyDataStream) {
    let drained = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut body).await {
            seen = seen.saturating_add(chunk.len());
            if seen > DRAIN_BYTES_MAX {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME_MAX, drained).await;
}

async fn upload_body(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    headers: &HeaderMap,
    body: &mut Option<BodyDataStream>,
) -> Result<Response, ApiError> {
    exchange::sender_of(&caller.identity)?;
    let id = parse_id(raw_id)?;
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let exchange = state.exchange();
    let pending = match exchange.start_upload(&caller.identity, &id, content_length)? {
        UploadStart::Replayed(receipt) => return Ok(render(Answer::Replayed(receipt))),
        UploadStart::Ready(pending) => pending,
    };
    let _slot = state
        .uploads
        .acquire(&caller.identity.uri())
        .ok_or(ApiError::TooManyUploads)?;
    match exchange.upload(pending, body).await {
        Ok(answer) => Ok(render(answer)),
        Err(refusal) => {
            let e = ApiError::from(refusal.error);
            if refusal.while_receiving {
                super::log::log_refusal(state, caller, Some(id), &e).await;
            }
            Err(e)
        }
    }
}
