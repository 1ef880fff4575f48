//! Recipients' signed receipts, and per-recipient delivery status.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rustls_pki_types::UnixTime;

use super::documents::{parse_id, read_limited, visible_document};
use crate::api::{
    self, DELIVERY_RECEIPT_TYPE, DocLink, ReceiptRequest, ReceiptResponse, RecipientStatus,
    StatusView,
};
use crate::document::Role;
use crate::document::status::{self, Request};
use crate::pki::Identity;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::store::{DocState, ReceiptRecord, ReceiptWrite, StoreError};

/// Largest receipt request body.
const RECEIPT_BODY_BYTES_MAX: usize = 128 * 1024;
/// Longest receipt note, in characters.
const NOTE_CHARS_MAX: usize = 1000;
/// How far a receipt's stated time may be from the server's clock.
const RECEIPT_CLOCK_SKEW: time::Duration = time::Duration::hours(24);
/// The edXML status codes a receipt may carry.
pub const RECEIPT_STATUSES: [&str; 9] = ["01", "02", "03", "04", "05", "06", "13", "15", "16"];

/// `POST /v1/documents/{id}/receipts`: a recipient's signed receipt.
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<ReceiptResponse>), ApiError> {
    let org = caller
        .org()
        .ok_or(ApiError::RoleForbidden("only recipients sign receipts"))?
        .clone();
    let id = parse_id(&raw_id)?;
    let record = visible_document(&state, &caller, &id)?;
    // The recipient this receipt answers for: the caller, or a unit merged into it.
    let directory = state.directory();
    let Some(addressee) = super::documents::addressee(&directory, &org, &record) else {
        return Err(ApiError::DocumentNotFound);
    };
    let addressee = addressee.to_owned();
    super::documents::ensure_active_recipient(&directory, &org)?;
    if record.state != DocState::Accepted {
        return Err(ApiError::PayloadNotAvailable);
    }
    let body = read_limited(&state, body, RECEIPT_BODY_BYTES_MAX).await?;
    let request: ReceiptRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::RequestInvalid(e.to_string()))?;
    let receipt = &request.receipt;
    let invalid = |m: String| Err(ApiError::ReceiptInvalid(m));
    if receipt.kind != DELIVERY_RECEIPT_TYPE {
        return invalid(format!("type must be {DELIVERY_RECEIPT_TYPE}"));
    }
    if receipt.document_id != id {
        return invalid("the receipt names another document".into());
    }
    if receipt.recipient != org.as_str() {
        return invalid(format!(
            "the receipt is for {}, but this connection is {org}",
            receipt.recipient
        ));
    }
    if receipt.manifest_sha256 != record.manifest_sha256
        || receipt.payload_sha256 != record.payload_sha256
    {
        return invalid("the receipt's digests do not match the document".into());
    }
    if !RECEIPT_STATUSES.contains(&receipt.status.as_str()) {
        return invalid(format!(
            "status {:?} is not one of {}",
            receipt.status,
            RECEIPT_STATUSES.join(", ")
        ));
    }
    if receipt.status == "02" && receipt.note.trim().is_empty() {
        return invalid("status 02 (rejected) needs a note giving the reason".into());
    }
    if receipt.note.chars().count() > NOTE_CHARS_MAX
        || !unicode_normalization::is_nfc(&receipt.note)
        || receipt.note.chars().any(|c| c.is_control() && c != '\n')
    {
        return invalid(format!(
            "the note must be NFC text of at most {NOTE_CHARS_MAX} characters"
        ));
    }
    let stated = time::OffsetDateTime::parse(
        &receipt.time,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| ApiError::ReceiptInvalid(format!("time {:?} is not RFC 3339", receipt.time)))?;
    if (stated - time::OffsetDateTime::now_utc()).abs() > RECEIPT_CLOCK_SKEW {
        return invalid("the receipt's time is more than a day from the server's clock".into());
    }
    if request.signature.role != Role::Organization {
        return invalid(
            "a receipt is signed with the organisation's key (role organization)".into(),
        );
    }

    let statement = serde_json::to_value(receipt).map_err(|e| ApiError::Internal(e.to_string()))?;
    let canonical = crate::document::manifest::canonical_bytes(&statement)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let trust = state
        .trust
        .current()
        .ok_or_else(|| ApiError::Unavailable("the server's trust material is unusable".into()))?;
    let signature = request.signature.clone();
    let signer = tokio::task::spawn_blocking(move || {
        signature.verify(&trust.signing, &canonical, UnixTime::now())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|error| ApiError::Signature {
        role: Role::Organization,
        error,
    })?;
    // A receipt is the organisation's act: its seal certificate, never a person's.
    crate::document::check_signer(Role::Organization, &signer.cert, &org, "")
        .map_err(ApiError::SignerRole)?;

    let signed = serde_json::json!({"receipt": statement, "signature": request.signature});
    // A recall or update is pending for the addressee (the merged unit, when its
    // successor answers for it).
    let pending = pending_request(&state, &id, &addressee)?;
    super::documents::ensure_space(&state, 0)?;
    let recorded_at = api::now_rfc3339();
    let new_status = receipt.status.clone();
    let written = state
        .store
        .record_receipt_as(
            &record,
            &addressee,
            org.as_str(),
            ReceiptRecord {
                status: receipt.status.clone(),
                time: receipt.time.clone(),
                note: receipt.note.clone(),
                recorded_at: recorded_at.clone(),
                receipt: signed,
                log_index: None,
            },
            |delivery| {
                let recorded: Vec<&str> = delivery
                    .receipts
                    .iter()
                    .map(|r| r.status.as_str())
                    .collect();
                status::judge(&recorded, delivery.fetch_count > 0, pending, &new_status)
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Status(refusal) => ApiError::Status(refusal),
            other => other.into(),
        })?;
    let (delivery, log_index) = match written {
        ReceiptWrite::Recorded(delivery, index) => (delivery, index),
        ReceiptWrite::Replayed(same) => {
            // The same status again: an idempotent retry, answered with the first entry.
            let incoming_number = state.store.delivery(&id, &addressee)?.incoming_number;
            return Ok((
                StatusCode::OK,
                Json(ReceiptResponse {
                    document_id: id,
                    recipient: org.to_string(),
                    status: same.status.clone(),
                    recorded_at: same.recorded_at.clone(),
                    log_index: same.log_index.unwrap_or_default(),
                    incoming_number,
                }),
            ));
        }
    };
    tracing::info!(document = %id, recipient = %org, status = %receipt.status, "receipt recorded");
    Ok((
        StatusCode::CREATED,
        Json(ReceiptResponse {
            document_id: id,
            recipient: org.to_string(),
            status: receipt.status.clone(),
            recorded_at,
            log_index,
            incoming_number: delivery.incoming_number,
        }),
    ))
}

/// The recall or update of document `id` that is pending for `recipient`, if any: the
/// latest accepted recall or update whose recipients include it. A recall outweighs an
/// update, since agreeing to it cancels the document.
pub fn pending_request(
    state: &AppState,
    id: &uuid::Uuid,
    recipient: &str,
) -> Result<Option<Request>, ApiError> {
    let mut pending = None;
    for link in state.store.links_to(id)? {
        if !link.recipients.iter().any(|r| r == recipient) {
            continue;
        }
        match link.kind.as_str() {
            "recall" => pending = Some(Request::Recall),
            "update" if pending.is_none() => pending = Some(Request::Update),
            _ => {}
        }
    }
    Ok(pending)
}

/// The links of `record` to other documents. For a recipient (`viewer`), only links to
/// documents it received itself: a recipient must not learn of documents sent to others.
pub fn links_of(
    state: &AppState,
    record: &crate::store::DocumentRecord,
    viewer: Option<&str>,
) -> Result<Vec<DocLink>, ApiError> {
    let mut out = Vec::new();
    if let Some(business) = &record.business {
        let visible = match viewer {
            None => true,
            Some(org) => state
                .store
                .document(&business.target)?
                .is_some_and(|d| d.recipients.iter().any(|r| r == org)),
        };
        if visible {
            out.push(DocLink {
                relation: format!("{}s", business.kind),
                id: business.target,
            });
        }
    }
    for link in state.store.links_to(&record.id)? {
        if viewer.is_some_and(|org| !link.recipients.iter().any(|r| r == org)) {
            continue;
        }
        out.push(DocLink {
            relation: match link.kind.as_str() {
                "recall" => "recalled_by",
                "update" => "updated_by",
                _ => "replaced_by",
            }
            .to_owned(),
            id: link.document_id,
        });
    }
    Ok(out)
}

/// `GET /v1/documents/{id}/status`: each recipient's fetches and latest receipt, for the
/// sender and for security officers in scope.
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<StatusView>, ApiError> {
    let id = parse_id(&raw_id)?;
    let record = visible_document(&state, &caller, &id)?;
    let directory = state.directory();
    if let Identity::Org(org) = &caller.identity {
        let sender_is_mine = crate::directory::OrgId::parse(&record.sender)
            .is_ok_and(|s| directory.speaks_for(org, &s));
        if !sender_is_mine {
            return Err(ApiError::RoleForbidden(
                "delivery status is for the sender and security officers",
            ));
        }
    }
    let mut recipients = Vec::new();
    for org in &record.recipients {
        let delivery = state.store.delivery(&id, org)?;
        let latest = delivery.receipts.last();
        // A document still waiting at a merged unit is offered to its successor: the
        // sender sees where it went.
        let offered_to = crate::directory::OrgId::parse(org)
            .ok()
            .and_then(|id| directory.successor(&id))
            .map(|s| s.id.to_string());
        recipients.push(RecipientStatus {
            offered_to,
            org: org.to_string(),
            fetched_at: delivery.first_fetched_at.clone(),
            fetch_count: delivery.fetch_count,
            status: latest.map(|r| r.status.clone()),
            status_time: latest.map(|r| r.time.clone()),
            note: latest.map(|r| r.note.clone()).filter(|n| !n.is_empty()),
            receipts: delivery
                .receipts
                .iter()
                .map(|r| r.receipt.clone())
                .collect(),
            request: pending_request(&state, &id, org)?.map(|r| match r {
                Request::Recall => "recall".to_owned(),
                Request::Update => "update".to_owned(),
            }),
        });
    }
    Ok(Json(StatusView {
        id,
        sender: record.sender.clone(),
        urgency: record.urgency,
        accepted_at: record.accepted_at.clone(),
        recipients,
        links: links_of(&state, &record, None)?,
    }))
}
