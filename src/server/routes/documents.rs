//! Documents: submit (manifest + signatures), upload the payload, read them back.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::StreamExt;
use rustls_pki_types::UnixTime;
use uuid::Uuid;

use crate::api::{
    self, DocumentView, INLINE_PAYLOAD_BYTES_MAX, SUBMISSION_RECEIPT_TYPE, SubmissionReceipt,
    SubmitRequest, SubmitResponse, UploadResponse,
};
use crate::directory::{Directory, OrgId, OrgStatus};
use crate::document::manifest::BusinessKind;
use crate::document::{
    self, DocSignature, Manifest, ManifestError, ParsedManifest, Role, sha256_hex,
};
use crate::notary::{KeyPurpose, Signed};
use crate::pki::Identity;
use crate::pki::signing::JudgedAt;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::store::{
    BlobError, DocState, DocumentRecord, Inserted, OutgoingNumber, SMALL_PAYLOAD_BYTES_MAX,
    SignerRecord, StoreError,
};

/// Largest `POST /v1/documents` body: a full manifest plus four signatures with chains
/// (512 KiB), plus an inline payload in base64.
pub const SUBMIT_BODY_BYTES_MAX: usize =
    512 * 1024 + (INLINE_PAYLOAD_BYTES_MAX as usize).div_ceil(3) * 4;
/// Chunks of an upload queued for the writer thread at most.
const UPLOAD_QUEUE_CHUNKS: usize = 8;

fn sender_org(caller: &Caller) -> Result<&OrgId, ApiError> {
    caller.org().ok_or(ApiError::RoleForbidden(
        "security officers read and audit; only committees send documents",
    ))
}

/// `POST /v1/documents`.
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    let sender = sender_org(&caller)?.clone();
    let body = read_limited(&state, body, SUBMIT_BODY_BYTES_MAX).await?;
    let request: SubmitRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::RequestInvalid(e.to_string()))?;
    let parsed = document::manifest::parse(request.manifest.get(), &state.rules)?;
    // From here on the request names a document: refusals go into the log, under the
    // caller alone (the manifest's parties are claims until its signatures verify).
    let result = submit_parsed(&state, &caller, &sender, &request, &parsed).await;
    if let Err(e) = &result {
        if !matches!(e, ApiError::IdConflict(_)) {
            super::log::log_refusal(&state, &caller, Some(parsed.manifest.id), e).await;
        }
    }
    result
}

async fn submit_parsed(
    state: &AppState,
    caller: &Caller,
    sender: &OrgId,
    request: &SubmitRequest,
    parsed: &ParsedManifest,
) -> Result<Response, ApiError> {
    let sender = sender.clone();
    let manifest = &parsed.manifest;
    if manifest.sender != sender {
        return Err(ApiError::SenderMismatch {
            tls: sender.to_string(),
            manifest: manifest.sender.to_string(),
        });
    }
    let directory = state.directory();
    let sender_entry = directory
        .org(&sender)
        .ok_or_else(|| ApiError::UnknownIdentity(caller.identity.uri()))?;
    if !sender_entry.status.is_active() {
        return Err(ApiError::SenderInactive(inactive(
            &directory, &sender, "send as",
        )));
    }
    state.seal.permits(manifest.classification)?;
    for recipient in &manifest.recipients {
        let Some(org) = directory.org(recipient) else {
            return Err(ApiError::RecipientUnknown(recipient.to_string()));
        };
        if !org.status.is_active() {
            return Err(ApiError::RecipientInactive(inactive(
                &directory, recipient, "send to",
            )));
        }
        if !directory.may_send(&sender, recipient) {
            return Err(ApiError::RoutingDenied {
                from: sender.to_string(),
                to: recipient.to_string(),
            });
        }
        if manifest.classification.is_classified() && org.encryption_cert.is_none() {
            return Err(ApiError::RecipientNoEncryptionKey(recipient.to_string()));
        }
    }

    let manifest_sha256 = sha256_hex(&parsed.canonical);
    let outgoing = outgoing_number(state, manifest)?;
    // An id already in use by this sender: the same manifest is a replay, anything else
    // a conflict. Another sender's id is not even looked at before the signatures verify,
    // so that 409 against 422 tells nobody whether someone else's document exists.
    let existing = state.store.document(&manifest.id)?;
    if let Some(existing) = existing.as_ref().filter(|e| e.sender == sender.as_str()) {
        return replay_or_conflict(existing.clone(), &manifest_sha256);
    }

    // The outgoing register, checked early so that a clerk learns at once; the
    // transaction that accepts the document checks again, against racing submissions.
    if let Some(earlier) = state
        .store
        .outgoing_holder(sender.as_str(), &outgoing.key)?
    {
        if outgoing.amends != Some(earlier) {
            return Err(ApiError::NumberInUse {
                code: outgoing.code.clone(),
                earlier: earlier.to_string(),
            });
        }
    }
    let (signers, ocsp) = verify_signatures(
        state,
        parsed,
        &request.signatures,
        &sender_entry.required_signatures,
    )
    .await?;
    if let Some(existing) = existing {
        return replay_or_conflict(existing, &manifest_sha256);
    }

    let record = DocumentRecord {
        id: manifest.id,
        sender: sender.to_string(),
        recipients: manifest
            .recipients
            .iter()
            .map(ToString::to_string)
            .collect(),
        classification: manifest.classification.name().to_owned(),
        urgency: manifest.urgency.into(),
        manifest: String::from_utf8(parsed.canonical.clone())
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        manifest_sha256: manifest_sha256.clone(),
        signatures: serde_json::to_value(&request.signatures)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        signers,
        payload_sha256: manifest.payload.sha256.clone(),
        payload_size: manifest.payload.size,
        submitted_at: api::now_rfc3339(),
        state: DocState::AwaitingPayload,
        accepted_at: None,
        receipt: None,
        log_index: None,
        sealed_with: state.seal.mark(manifest.classification),
        outgoing: Some(outgoing),
        business: business_ref(state, manifest)?,
        ocsp,
    };
    if let Some(encoded) = &request.payload {
        return accept_inline(state, record, manifest.deadline.as_deref(), encoded).await;
    }
    ensure_space(state, 0)?;
    match state.store.insert_document(&record).await? {
        Inserted::Created => {
            tracing::info!(
                document = %record.id,
                sender = %record.sender,
                recipients = record.recipients.len(),
                "document submitted, awaiting payload"
            );
            Ok((StatusCode::CREATED, Json(submit_response(&record)?)).into_response())
        }
        Inserted::Exists(existing) => replay_or_conflict(*existing, &manifest_sha256),
    }
}

/// Checks a recall, update or replacement against its target and returns what to record.
/// The target must be an accepted document of the same sender that is not itself a
/// recall; a recall or update may only go to the target's recipients (it asks them to
/// answer 15 or 16 on the target). A target of another sender gets the same answer as
/// one that does not exist, so that nothing is confirmed to outsiders.
fn business_ref(
    state: &AppState,
    manifest: &document::Manifest,
) -> Result<Option<crate::store::BusinessRef>, ApiError> {
    use document::manifest::BusinessKind;
    let (kind, target) = match (manifest.business.kind, manifest.business.target) {
        (BusinessKind::New, _) | (_, None) => return Ok(None),
        (BusinessKind::Recall, Some(t)) => ("recall", t),
        (BusinessKind::Update, Some(t)) => ("update", t),
        (BusinessKind::Replace, Some(t)) => ("replace", t),
    };
    let invalid = |why: String| Err(ApiError::BusinessTargetInvalid(why));
    let Some(earlier) = state
        .store
        .document(&target)?
        .filter(|d| d.sender == manifest.sender.as_str())
    else {
        return invalid(format!(
            "{kind}: {target} is not a document sent by {}",
            manifest.sender
        ));
    };
    if earlier.state != DocState::Accepted {
        return invalid(format!("{kind}: {target} was never delivered (no payload)"));
    }
    if earlier
        .business
        .as_ref()
        .is_some_and(|b| b.kind == "recall")
    {
        return invalid(format!("{kind}: {target} is itself a recall"));
    }
    if kind != "replace" {
        if let Some(outsider) = manifest
            .recipients
            .iter()
            .find(|r| !earlier.recipients.iter().any(|e| e == r.as_str()))
        {
            return invalid(format!(
                "{kind}: {outsider} is not a recipient of {target}, so it has nothing to {kind}"
            ));
        }
    }
    Ok(Some(crate::store::BusinessRef {
        kind: kind.to_owned(),
        target,
    }))
}

/// Reads a whole body of at most `limit` bytes, within the body timeout.
pub async fn read_limited(state: &AppState, body: Body, limit: usize) -> Result<Bytes, ApiError> {
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

fn replay_or_conflict(
    existing: DocumentRecord,
    manifest_sha256: &str,
) -> Result<Response, ApiError> {
    if existing.manifest_sha256 == manifest_sha256 {
        Ok((StatusCode::OK, Json(submit_response(&existing)?)).into_response())
    } else {
        Err(ApiError::IdConflict(existing.id.to_string()))
    }
}

pub fn state_name(state: DocState) -> &'static str {
    match state {
        DocState::AwaitingPayload => "awaiting_payload",
        DocState::Accepted => "accepted",
    }
}

fn receipt_of(record: &DocumentRecord) -> Result<Option<Signed>, ApiError> {
    record
        .receipt
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| ApiError::Internal(format!("stored receipt of {}: {e}", record.id)))
}

fn submit_response(record: &DocumentRecord) -> Result<SubmitResponse, ApiError> {
    Ok(SubmitResponse {
        id: record.id,
        state: state_name(record.state).to_owned(),
        manifest_sha256: record.manifest_sha256.clone(),
        payload_url: format!("/v1/documents/{}/payload", record.id),
        receipt: receipt_of(record)?,
    })
}

/// Verifies every signature (off the async threads) and applies the sender's role policy.
/// Returns the signers and the OCSP responses (base64 DER) that judged them, to be stored
/// with the document as evidence.
async fn verify_signatures(
    state: &AppState,
    parsed: &ParsedManifest,
    signatures: &[DocSignature],
    required: &[String],
) -> Result<(Vec<SignerRecord>, Vec<String>), ApiError> {
    if signatures.len() > document::signature::SIGNATURES_MAX {
        return Err(ApiError::SignatureRoleDuplicate(format!(
            "at most {} signatures are accepted",
            document::signature::SIGNATURES_MAX
        )));
    }
    let mut roles = BTreeSet::new();
    for sig in signatures {
        if !roles.insert(sig.role) {
            return Err(ApiError::SignatureRoleDuplicate(format!(
                "two signatures claim the role {}",
                sig.role.name()
            )));
        }
    }
    for role in [Role::Person, Role::Organization] {
        if required.iter().any(|r| r == role.name()) && !roles.contains(&role) {
            return Err(ApiError::SignatureRoleMissing(role.name()));
        }
    }
    let trust = state
        .trust
        .current()
        .ok_or_else(|| ApiError::Unavailable("the server's trust material is unusable".into()))?;
    // OCSP first, on the async side: a signer whose certificate names a responder and
    // that no CRL covers (or every such signer, with `[ocsp] prefer`) is asked about
    // before its signature is judged. A chain that does not even verify is left to the
    // judgement below, which names its fault.
    let mut evidence: Vec<Vec<Vec<u8>>> = Vec::with_capacity(signatures.len());
    for sig in signatures {
        let mut responses = Vec::new();
        if let (true, Ok((leaf, others))) = (state.ocsp.enabled(), sig.signer_chain()) {
            let now = UnixTime::now();
            if let Ok(Some(target)) =
                trust
                    .signing
                    .ocsp_target(&leaf, &others, now, state.ocsp.preferred())
            {
                let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
                let der = state
                    .ocsp
                    .response(&target, seconds)
                    .await
                    .map_err(|error| ApiError::Signature {
                        role: sig.role,
                        error,
                    })?;
                responses.push(der);
            }
        }
        evidence.push(responses);
    }
    let message = parsed.canonical.clone();
    let signatures = signatures.to_vec();
    let sender = parsed.manifest.sender.clone();
    let signer_name = parsed.manifest.signer.full_name.clone();
    tokio::task::spawn_blocking(move || {
        let now = UnixTime::now();
        let mut records = Vec::new();
        let mut fingerprints = BTreeSet::new();
        for (sig, ocsp) in signatures.iter().zip(&evidence) {
            let signer = sig
                .verify_at_with_ocsp(&trust.signing, &message, JudgedAt::Now(now), ocsp)
                .map_err(|error| ApiError::Signature {
                    role: sig.role,
                    error,
                })?;
            if !fingerprints.insert(signer.cert.fingerprint_sha256.clone()) {
                return Err(ApiError::SignatureRoleDuplicate(
                    "one certificate cannot sign for two roles".into(),
                ));
            }
            document::check_signer(sig.role, &signer.cert, &sender, &signer_name)
                .map_err(ApiError::SignerRole)?;
            records.push(SignerRecord {
                role: sig.role.name().to_owned(),
                subject: signer.cert.subject,
                fingerprint_sha256: signer.cert.fingerprint_sha256,
            });
        }
        let stored = evidence
            .iter()
            .flatten()
            .map(|der| B64.encode(der))
            .collect();
        Ok((records, stored))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("signature verification task: {e}")))?
}

/// "X is merged into S: send to S", naming the successor where there is one, so that a
/// refusal teaches the corrected command.
fn inactive(directory: &Directory, id: &OrgId, advice: &str) -> String {
    match directory.org(id).map(|o| &o.status) {
        Some(OrgStatus::Merged { into }) => match directory.successor(id) {
            Some(s) if &s.id != into => format!(
                "{id} is not active: it was merged into {into}, which was merged into {s}; {advice} {s} ({})",
                s.name,
                s = s.id
            ),
            Some(s) => format!(
                "{id} is not active: it was merged into {into} ({}); {advice} {into}",
                s.name
            ),
            None => format!("{id} is not active: it was merged into {into}"),
        },
        Some(OrgStatus::Planned) => {
            format!("{id} is not active yet: it is planned, waiting for a reform plan")
        }
        Some(OrgStatus::Retired) => format!("{id} is not active: it was retired"),
        _ => format!("{id} is not active"),
    }
}

/// Refuses a recipient that is no longer active (merged, retired) when it would receive:
/// fetch a payload addressed to it or acknowledge it. Its successor does that now, so the
/// document is received once, by the unit that carries on.
pub fn ensure_active_recipient(directory: &Directory, org: &OrgId) -> Result<(), ApiError> {
    match directory.org(org) {
        Some(o) if !o.status.is_active() => Err(ApiError::RecipientInactive(inactive(
            directory,
            org,
            "its successor receives for it:",
        ))),
        _ => Ok(()),
    }
}

/// The recipient of `record` that `org` acts for: itself, or else a merged unit it
/// succeeds (a document sent to a unit before it merged is offered to its successor).
pub fn addressee<'a>(
    directory: &Directory,
    org: &OrgId,
    record: &'a DocumentRecord,
) -> Option<&'a str> {
    record
        .recipients
        .iter()
        .find(|r| r.as_str() == org.as_str())
        .or_else(|| {
            record
                .recipients
                .iter()
                .find(|r| OrgId::parse(r).is_ok_and(|r| directory.speaks_for(org, &r)))
        })
        .map(String::as_str)
}

/// The document's place in its sender's outgoing register: numbering period (from the
/// configured rule), number and notation. An update or replacement may reuse the number
/// of the document it amends.
fn outgoing_number(state: &AppState, manifest: &Manifest) -> Result<OutgoingNumber, ApiError> {
    let period = state
        .numbering
        .period_of(
            &manifest.doc_type,
            &manifest.promulgated.date,
            manifest.classification.is_classified(),
        )
        .map_err(|e| ApiError::Manifest(ManifestError::Invalid(e.to_string())))?;
    let amends = match manifest.business.kind {
        BusinessKind::Update | BusinessKind::Replace => manifest.business.target,
        BusinessKind::New | BusinessKind::Recall => None,
    };
    Ok(OutgoingNumber {
        key: format!(
            "{period}\0{}\0{}",
            manifest.code.number, manifest.code.notation
        ),
        code: format!("{}-{}", manifest.code.number, manifest.code.notation),
        amends,
    })
}

pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::IdInvalid(raw.chars().take(64).collect()))
}

/// Loads a document the caller may see: its sender, or one of its recipients. Anyone
/// else gets the same 404 as for a document that does not exist.
pub fn visible_document(
    state: &AppState,
    caller: &Caller,
    id: &Uuid,
) -> Result<DocumentRecord, ApiError> {
    let record = state
        .store
        .document(id)?
        .ok_or(ApiError::DocumentNotFound)?;
    let directory = state.directory();
    let visible = match &caller.identity {
        // A committee sees its own documents and those of the units merged into it.
        Identity::Org(org) => {
            let mine = |id: &str| OrgId::parse(id).is_ok_and(|id| directory.speaks_for(org, &id));
            mine(&record.sender) || record.recipients.iter().any(|r| mine(r))
        }
        Identity::Auditor(scope) => {
            let in_scope = |id: &str| OrgId::parse(id).is_ok_and(|id| directory.audits(scope, &id));
            in_scope(&record.sender) || record.recipients.iter().any(|r| in_scope(r))
        }
        // The `Caller` extractor never admits a person certificate.
        Identity::Person(_) => false,
    };
    if visible {
        Ok(record)
    } else {
        Err(ApiError::DocumentNotFound)
    }
}

/// `PUT /v1/documents/{id}/payload`: streamed; SHA-256 and size must match the manifest.
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut body = Some(body);
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
async fn drain_unread(body: Body) {
    let mut body = body.into_data_stream();
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
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let sender = sender_org(caller)?.clone();
    let id = parse_id(raw_id)?;
    let record = state
        .store
        .document(&id)?
        .ok_or(ApiError::DocumentNotFound)?;
    if record.sender != sender.as_str() {
        return Err(ApiError::DocumentNotFound);
    }
    if record.state == DocState::Accepted {
        // An identical replay: the payload is stored; answer with the original receipt
        // without reading the body.
        let receipt = receipt_of(&record)?
            .ok_or_else(|| ApiError::Internal(format!("accepted {id} has no receipt")))?;
        return Ok((StatusCode::OK, Json(UploadResponse { receipt })).into_response());
    }
    // A document not yet accepted when its sender merged is not sent by it afterwards.
    let directory = state.directory();
    if directory
        .org(&sender)
        .is_some_and(|o| !o.status.is_active())
    {
        return Err(ApiError::SenderInactive(inactive(
            &directory, &sender, "send as",
        )));
    }
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if length != record.payload_size {
            return Err(ApiError::PayloadSizeMismatch(format!(
                "Content-Length is {length}; the manifest says {}",
                record.payload_size
            )));
        }
    }

    let _slot = state
        .uploads
        .acquire(&caller.identity.uri())
        .ok_or(ApiError::TooManyUploads)?;
    ensure_space(state, record.payload_size)?;
    let check = if record.classification == "thuong" {
        None
    } else {
        Some(recipient_set_check(state, &record)?)
    };
    let Some(body) = body.take() else {
        return Err(ApiError::Internal("the upload body was taken twice".into()));
    };
    if let Err(e) = receive_payload(state, &record, body, check).await {
        super::log::log_refusal(state, caller, Some(id), &e).await;
        return Err(e);
    }

    let accepted_at = api::now_rfc3339();
    let make_receipt = receipt_maker(state, &record, &accepted_at);
    match state
        .store
        .accept_payload(&id, &accepted_at, make_receipt)
        .await
    {
        Ok((stored, index)) => {
            tracing::info!(document = %id, size = record.payload_size, log_index = index, "payload accepted");
            let receipt = receipt_of(&stored)?
                .ok_or_else(|| ApiError::Internal(format!("accepted {id} has no receipt")))?;
            Ok((StatusCode::CREATED, Json(UploadResponse { receipt })).into_response())
        }
        // A concurrent identical upload won the race: answer with its receipt.
        Err(StoreError::State(_)) => {
            let current = state
                .store
                .document(&id)?
                .ok_or(ApiError::DocumentNotFound)?;
            let receipt = receipt_of(&current)?
                .ok_or_else(|| ApiError::Internal(format!("accepted {id} has no receipt")))?;
            Ok((StatusCode::OK, Json(UploadResponse { receipt })).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Makes the server's signed submission receipt for `record`, given its log index.
fn receipt_maker<'a>(
    state: &AppState,
    record: &'a DocumentRecord,
    accepted_at: &'a str,
) -> impl Fn(u64) -> Result<serde_json::Value, String> + 'a {
    let keys = state.keys.clone();
    move |log_index: u64| {
        let statement = SubmissionReceipt {
            kind: SUBMISSION_RECEIPT_TYPE.to_owned(),
            document_id: record.id,
            sender: record.sender.clone(),
            recipients: record.recipients.clone(),
            manifest_sha256: record.manifest_sha256.clone(),
            payload_sha256: record.payload_sha256.clone(),
            payload_size: record.payload_size,
            accepted_at: accepted_at.to_owned(),
            log_index,
        };
        let value = serde_json::to_value(&statement).map_err(|e| e.to_string())?;
        let signed = keys
            .sign(KeyPurpose::Receipts, value)
            .map_err(|e| e.to_string())?;
        serde_json::to_value(&signed).map_err(|e| e.to_string())
    }
}

/// A one-request submission: the payload came inline with the manifest. It is checked
/// exactly as an upload is (size, digest, the sealed shape of a classified payload),
/// stored, and the document is accepted in the same durable commit that records it.
async fn accept_inline(
    state: &AppState,
    record: DocumentRecord,
    deadline: Option<&str>,
    encoded: &str,
) -> Result<Response, ApiError> {
    use base64::Engine as _;
    if record.payload_size > INLINE_PAYLOAD_BYTES_MAX {
        return Err(ApiError::RequestInvalid(format!(
            "payloads over {INLINE_PAYLOAD_BYTES_MAX} bytes are uploaded with PUT {}, not inline",
            format_args!("/v1/documents/{}/payload", record.id)
        )));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| ApiError::RequestInvalid(format!("payload is not base64: {e}")))?;
    if payload.len() as u64 != record.payload_size {
        return Err(ApiError::PayloadSizeMismatch(format!(
            "the inline payload has {} bytes; the manifest says {}",
            payload.len(),
            record.payload_size
        )));
    }
    ensure_space(state, record.payload_size)?;
    let check = if record.classification == "thuong" {
        None
    } else {
        Some(recipient_set_check(state, &record)?)
    };
    // A small payload goes into the database with the record; a larger one into a blob
    // file first (fsynced and renamed into place before the record refers to it).
    let small = record.payload_size <= SMALL_PAYLOAD_BYTES_MAX;
    let blobs = state.store.blobs().clone();
    let expected_sha256 = record.payload_sha256.clone();
    let expected_size = record.payload_size;
    let payload = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        if small {
            let actual = sha256_hex(&payload);
            if actual != expected_sha256 {
                return Err(ApiError::PayloadDigestMismatch(format!(
                    "the payload's SHA-256 is {actual}; the manifest says {expected_sha256}"
                )));
            }
            if let Some(check) = check {
                check(&mut payload.as_slice())?;
            }
        } else {
            let mut writer = blobs.writer()?;
            writer.write(&payload)?;
            let blob = finish_blob(writer, &expected_sha256, expected_size)?;
            if let Some(check) = check {
                check(&mut payload.as_slice())?;
            }
            blob.commit()?;
        }
        Ok(payload)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("inline payload task: {e}")))??;

    let accepted_at = api::now_rfc3339();
    let make_receipt = receipt_maker(state, &record, &accepted_at);
    match state
        .store
        .insert_accepted(
            &record,
            deadline,
            small.then_some(payload.as_slice()),
            &accepted_at,
            make_receipt,
        )
        .await?
    {
        Ok((stored, index)) => {
            tracing::info!(
                document = %stored.id,
                sender = %stored.sender,
                recipients = stored.recipients.len(),
                size = stored.payload_size,
                log_index = index,
                "document submitted and accepted in one request"
            );
            Ok((StatusCode::CREATED, Json(submit_response(&stored)?)).into_response())
        }
        Err(existing) => replay_or_conflict(*existing, &record.manifest_sha256),
    }
}

/// Checks a written blob's size and digest against the manifest.
fn finish_blob(
    writer: crate::store::blobs::BlobWriter,
    expected_sha256: &str,
    expected_size: u64,
) -> Result<crate::store::blobs::VerifiedBlob, ApiError> {
    writer
        .finish(expected_sha256, expected_size)
        .map_err(|e| match e {
            BlobError::SizeMismatch { .. } => ApiError::PayloadSizeMismatch(e.to_string()),
            BlobError::DigestMismatch { .. } => ApiError::PayloadDigestMismatch(e.to_string()),
            BlobError::Store(e) => e.into(),
        })
}

/// A check run on a complete, digest-verified payload before it is committed; it reads
/// the payload from the reader it is given.
type PayloadCheck =
    Box<dyn FnOnce(&mut (dyn std::io::Read + Send + Sync)) -> Result<(), ApiError> + Send>;

/// The check for a classified payload: a sealed message for exactly the recipients'
/// registered encryption keys. It reads only the message's headers and never decrypts.
fn recipient_set_check(
    state: &AppState,
    record: &DocumentRecord,
) -> Result<PayloadCheck, ApiError> {
    let directory = state.directory();
    let cipher = state.cipher.clone();
    let mut expected: Vec<(String, Vec<String>)> = Vec::new();
    for recipient in &record.recipients {
        let cert = OrgId::parse(recipient)
            .ok()
            .and_then(|id| directory.org(&id).and_then(|o| o.encryption_cert.clone()))
            .ok_or_else(|| ApiError::RecipientNoEncryptionKey(recipient.clone()))?;
        let ids = cipher
            .recipient_ids(&cert)
            .map_err(|_| ApiError::RecipientNoEncryptionKey(recipient.clone()))?;
        expected.push((recipient.clone(), ids));
    }
    Ok(Box::new(move |payload| {
        let envelope = cipher
            .recipients_of(payload)
            .map_err(|e| ApiError::ClassifiedNotEncrypted(e.to_string()))?;
        let known: std::collections::HashSet<&str> = expected
            .iter()
            .flat_map(|(_, ids)| ids.iter().map(String::as_str))
            .collect();
        for id in &envelope.recipients {
            if !known.contains(id.as_str()) {
                return Err(ApiError::RecipientSetMismatch(format!(
                    "the payload is also encrypted to key {id}, which belongs to no recipient"
                )));
            }
        }
        let present: std::collections::HashSet<&str> =
            envelope.recipients.iter().map(String::as_str).collect();
        for (org, ids) in &expected {
            if !ids.iter().any(|r| present.contains(r.as_str())) {
                return Err(ApiError::RecipientSetMismatch(format!(
                    "the payload is not encrypted to the registered key of recipient {org}"
                )));
            }
        }
        Ok(())
    }))
}

/// Streams the body into a blob on a blocking thread, enforcing size and digest, runs
/// `check` on the complete file, and commits it.
async fn receive_payload(
    state: &AppState,
    record: &DocumentRecord,
    body: Body,
    check: Option<PayloadCheck>,
) -> Result<(), ApiError> {
    let expected_size = record.payload_size;
    let expected_sha256 = record.payload_sha256.clone();
    let mut writer = state.store.blobs().writer()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(UPLOAD_QUEUE_CHUNKS);
    let write_task = tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        while let Some(chunk) = rx.blocking_recv() {
            writer.write(&chunk)?;
        }
        let blob = finish_blob(writer, &expected_sha256, expected_size)?;
        if let Some(check) = check {
            let path = blob.path();
            let mut file = std::fs::File::open(path)
                .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))?;
            check(&mut file)?;
        }
        blob.commit().map_err(ApiError::from)
    });

    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let mut failure = None;
    let idle = state.limits.body_idle_timeout();
    loop {
        let next = match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => {
                failure = Some(ApiError::BodyTimeout(idle.as_secs()));
                break;
            }
        };
        match next {
            Ok(chunk) => {
                received += chunk.len() as u64;
                if received > expected_size {
                    failure = Some(ApiError::PayloadSizeMismatch(format!(
                        "the payload is longer than the {expected_size} bytes the manifest says"
                    )));
                    break;
                }
                if tx.send(chunk).await.is_err() {
                    // The writer stopped early (disk error); its result says why.
                    break;
                }
            }
            Err(e) => {
                failure = Some(ApiError::UploadIncomplete(e.to_string()));
                break;
            }
        }
    }
    drop(tx);
    let written = write_task
        .await
        .map_err(|e| ApiError::Internal(format!("upload writer task: {e}")))?;
    match failure {
        // The writer drops its temporary file when it sees the channel close early.
        Some(e) => Err(e),
        None => written,
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
    let record = visible_document(&state, &caller, &id)?;
    let manifest = serde_json::value::RawValue::from_string(record.manifest.clone())
        .map_err(|e| ApiError::Internal(format!("stored manifest of {id}: {e}")))?;
    let signatures: Vec<DocSignature> = serde_json::from_value(record.signatures.clone())
        .map_err(|e| ApiError::Internal(format!("stored signatures of {id}: {e}")))?;
    Ok(Json(DocumentView {
        id,
        state: state_name(record.state).to_owned(),
        manifest,
        manifest_sha256: record.manifest_sha256.clone(),
        signatures,
        submitted_at: record.submitted_at.clone(),
        accepted_at: record.accepted_at.clone(),
        receipt: receipt_of(&record)?,
        sealed_with: record.sealed_with.clone(),
        ocsp: record.ocsp.clone(),
    }))
}

/// `GET /v1/documents/{id}/payload`: the payload, streamed.
pub async fn payload(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw_id)?;
    let record = visible_document(&state, &caller, &id)?;
    if caller.org().is_none() {
        return Err(ApiError::RoleForbidden(
            "security officers see delivery metadata, not payloads",
        ));
    }
    if record.state != DocState::Accepted {
        return Err(ApiError::PayloadNotAvailable);
    }
    let small = if record.payload_size <= SMALL_PAYLOAD_BYTES_MAX {
        state.store.small_payload(&record.payload_sha256)?
    } else {
        None
    };
    let file = match small {
        Some(_) => None,
        None => {
            let path = state.store.blobs().path(&record.payload_sha256);
            Some(tokio::fs::File::open(&path).await.map_err(|e| {
                ApiError::Internal(format!("payload of {id} at {}: {e}", path.display()))
            })?)
        }
    };
    let mut log_index = None;
    if let Some(org) = caller.org() {
        let directory = state.directory();
        if let Some(recipient) = addressee(&directory, org, &record) {
            ensure_active_recipient(&directory, org)?;
            ensure_space(&state, 0)?;
            // The delivery is in the log before the first byte leaves.
            let (_, index) = state
                .store
                .record_fetch_as(&record, recipient, org.as_str(), &api::now_rfc3339())
                .await?;
            log_index = Some(index);
        }
    }
    let body = match (small, file) {
        (Some(bytes), _) => Body::from(Bytes::copy_from_slice(&bytes)),
        (None, Some(file)) => {
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
        }
        (None, None) => return Err(ApiError::Internal(format!("payload of {id} is missing"))),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, record.payload_size.to_string()),
            (
                header::HeaderName::from_static("x-congvan-payload-sha256"),
                record.payload_sha256.clone(),
            ),
            (
                header::HeaderName::from_static("x-congvan-log-index"),
                log_index.map(|i| i.to_string()).unwrap_or_default(),
            ),
        ],
        body,
    )
        .into_response())
}

/// Refuses with `507` when a write of `extra` bytes would eat into the disk reserve.
pub fn ensure_space(state: &AppState, extra: u64) -> Result<(), ApiError> {
    state
        .store
        .ensure_space(extra.saturating_add(state.limits.disk_reserve_bytes))
        .map_err(ApiError::from)
}
