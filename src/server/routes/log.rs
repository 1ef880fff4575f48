//! The delivery log for security officers and committees: checkpoints, entries, proofs,
//! and the logging of refusals.
//!
//! Each party sees what the document API would show it: a committee the submissions of
//! its documents and, of deliveries and receipts, those of documents it sent and its own
//! (not its co-recipients'); a security officer the events whose sender or a recipient
//! lies in its scope; a refusal only its caller (and officers over it). Range reads give
//! the other entries as leaf hashes, so that an export accounts for every index.
//! Consistency and range proofs and checkpoints reveal only hashes and sizes, and are
//! open to every caller.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{HiddenEntry, LogEntries, LogEntry, LogProof, RangeProof};
use crate::directory::OrgId;
use crate::ledger::{self, ENTRIES_PAGE_MAX, Event, NoteSigner};
use crate::notary::KeyPurpose;
use crate::pki::Identity;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Signs a checkpoint for the current size, unless the latest one already covers it.
pub async fn issue_checkpoint(state: &AppState) -> Result<(u64, String), ApiError> {
    let log = state.store.log();
    let size = log.size().map_err(internal)?;
    if let Some((latest, note)) = state.store.latest_checkpoint()? {
        if latest == size {
            return Ok((latest, note));
        }
    }
    let root = log.root(size).map_err(internal)?;
    let public = state.keys.public_key(KeyPurpose::Log).map_err(internal)?;
    let vkey = ledger::verifier_key(&state.log_origin, &public);
    if let Some(note) = state.checkpoint_memory.load().map_err(internal)? {
        let remembered = ledger::checkpoint::verify(&note, &vkey).map_err(internal)?;
        if let Some(reason) =
            contradiction(&state.store, remembered.size, remembered.root).map_err(internal)?
        {
            tracing::error!(reason = %reason, "refusing to sign a checkpoint that contradicts one signed before");
            return Err(ApiError::LogRollback(format!(
                "the log no longer extends the checkpoint of {} entries this server signed \
                 before ({reason}); no checkpoint is signed until the operator restores the \
                 data or acknowledges the rollback",
                remembered.size
            )));
        }
    }
    let keys = state.keys.clone();
    let signer = NoteSigner::new(&state.log_origin, &public, move |m: &[u8]| {
        keys.sign_bytes(KeyPurpose::Log, m)
            .map_err(|e| e.to_string())
    });
    let note =
        ledger::checkpoint::sign(&state.log_origin, size, root, &signer).map_err(internal)?;
    // The entries it covers are durable before the note is remembered, and the note is
    // remembered (outside the data directory) before anyone can see it.
    state.store.commit().await?;
    let memory = state.checkpoint_memory.clone();
    let remembered = note.clone();
    tokio::task::spawn_blocking(move || {
        memory.remember(size, &remembered, |n| {
            n.lines().nth(1).and_then(|l| l.parse().ok())
        })
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    state.store.save_checkpoint(size, &note).await?;
    tracing::info!(size, "checkpoint issued");
    Ok((size, note))
}

/// How the stored log contradicts a checkpoint of `size` entries with `root` this server
/// signed, if it does: fewer entries, or other entries under the same size. O(log n).
pub fn contradiction(
    store: &crate::store::Store,
    size: u64,
    root: tlog_tiles::tlog::Hash,
) -> Result<Option<String>, crate::ledger::LedgerError> {
    let log = store.log();
    let have = log.size()?;
    if have < size {
        return Ok(Some(format!(
            "the log has {have} entries, fewer than the {size} of that checkpoint"
        )));
    }
    if log.root(size)? != root {
        return Ok(Some(format!(
            "the log's first {size} entries are not the ones that checkpoint signed"
        )));
    }
    Ok(None)
}

/// `GET /v1/log/checkpoint`: the latest checkpoint, issued now if the log has grown.
pub async fn checkpoint(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let (_, note) = issue_checkpoint(&state).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

/// Whether `caller` may see `event`: what the document API would show it (see
/// [`Event::readable_by_org`]); a security officer sees what concerns its scope.
pub fn visible(state: &AppState, caller: &Caller, event: &Event) -> bool {
    if matches!(
        event,
        Event::DirectoryChanged { .. } | Event::Reorganised { .. }
    ) {
        return true;
    }
    match &caller.identity {
        // A committee reads the log entries of the units merged into it as its own: what
        // the document API would show it or any of them.
        Identity::Org(org) => {
            let directory = state.directory();
            event.readable_by_org(org.as_str())
                || directory
                    .predecessors(org)
                    .iter()
                    .any(|p| event.readable_by_org(p.as_str()))
        }
        Identity::Auditor(scope) => {
            let directory = state.directory();
            event
                .audit_parties()
                .into_iter()
                .any(|p| OrgId::parse(p).is_ok_and(|id| directory.audits(scope, &id)))
        }
        // The `Caller` extractor never admits a person certificate.
        Identity::Person(_) => false,
    }
}

/// Parameters of `GET /v1/log/entries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    start: Option<u64>,
    end: Option<u64>,
    document: Option<Uuid>,
}

fn entry(index: u64, leaf: Vec<u8>) -> Result<LogEntry, ApiError> {
    let text =
        String::from_utf8(leaf).map_err(|_| internal(format!("log entry {index} is not UTF-8")))?;
    Ok(LogEntry {
        index,
        leaf: serde_json::value::RawValue::from_string(text).map_err(internal)?,
    })
}

/// `GET /v1/log/entries?start=&end=` (at most 1000 indexes per page) or `?document=ID`.
pub async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EntriesQuery>,
) -> Result<Json<LogEntries>, ApiError> {
    let log = state.store.log();
    let size = log.size().map_err(internal)?;
    let mut out = Vec::new();
    let mut hidden = Vec::new();
    let mut push = |index: u64, leaf: Vec<u8>| -> Result<(), ApiError> {
        let event = Event::from_leaf(&leaf).map_err(internal)?;
        if visible(&state, &caller, &event) {
            out.push(entry(index, leaf)?);
        } else {
            hidden.push(HiddenEntry {
                index,
                leaf_hash: B64.encode(ledger::leaf_hash(&leaf).0),
            });
        }
        Ok(())
    };
    if let Some(document) = q.document {
        if q.start.is_some() || q.end.is_some() {
            return Err(ApiError::RequestInvalid(
                "give document, or start and end".into(),
            ));
        }
        for index in log.document_events(&document).map_err(internal)? {
            push(index, log.leaf(index).map_err(internal)?)?;
        }
        // What others did with the document is not even counted for this caller.
        return Ok(Json(LogEntries {
            entries: out,
            next_start: None,
            hidden: Vec::new(),
        }));
    }
    let start = q.start.unwrap_or(0);
    let end = q.end.unwrap_or(size).min(size);
    if start > end {
        return Err(ApiError::RequestInvalid(format!(
            "start {start} is after end {end}"
        )));
    }
    let page_end = end.min(start.saturating_add(ENTRIES_PAGE_MAX));
    for (index, leaf) in log.leaves(start, page_end).map_err(internal)? {
        push(index, leaf)?;
    }
    Ok(Json(LogEntries {
        entries: out,
        next_start: (page_end < end).then_some(page_end),
        hidden,
    }))
}

/// Parameters of `GET /v1/log/proofs/inclusion`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    index: u64,
    size: u64,
}

fn encode(proof: Vec<tlog_tiles::tlog::Hash>) -> Vec<String> {
    proof.iter().map(|h| B64.encode(h.0)).collect()
}

/// `GET /v1/log/proofs/inclusion?index=&size=`: for an entry the caller may see.
pub async fn inclusion(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<LogProof>, ApiError> {
    let log = state.store.log();
    let size = log.size().map_err(internal)?;
    if q.index >= q.size || q.size > size {
        return Err(ApiError::RequestInvalid(format!(
            "index {} is not in a tree of size {} (the log has {size} entries)",
            q.index, q.size
        )));
    }
    let event = Event::from_leaf(&log.leaf(q.index).map_err(internal)?).map_err(internal)?;
    if !visible(&state, &caller, &event) {
        return Err(ApiError::LogEntryHidden);
    }
    let proof = log.inclusion_proof(q.index, q.size).map_err(internal)?;
    Ok(Json(LogProof {
        from: q.index,
        size: q.size,
        proof: encode(proof),
    }))
}

/// Parameters of `GET /v1/log/proofs/consistency`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// `GET /v1/log/proofs/consistency?from=&to=`.
pub async fn consistency(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<LogProof>, ApiError> {
    let log = state.store.log();
    let size = log.size().map_err(internal)?;
    if q.from == 0 || q.from > q.to || q.to > size {
        return Err(ApiError::RequestInvalid(format!(
            "no consistency proof from {} to {} (the log has {size} entries)",
            q.from, q.to
        )));
    }
    let proof = log.consistency_proof(q.from, q.to).map_err(internal)?;
    Ok(Json(LogProof {
        from: q.from,
        size: q.to,
        proof: encode(proof),
    }))
}

/// Parameters of `GET /v1/log/proofs/range`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    start: u64,
    end: u64,
    size: u64,
}

/// `GET /v1/log/proofs/range?start=&end=&size=`: the hashes that, with the leaf hashes of
/// `[start, end)`, recompute the root of the tree of `size` entries. Like consistency
/// proofs, it reveals only hashes, and is open to every caller.
pub async fn range(
    State(state): State<AppState>,
    _caller: Caller,
    Query(q): Query<RangeQuery>,
) -> Result<Json<RangeProof>, ApiError> {
    let log = state.store.log();
    let size = log.size().map_err(internal)?;
    if q.start >= q.end || q.end > q.size || q.size > size {
        return Err(ApiError::RequestInvalid(format!(
            "no range [{}, {}) in a tree of size {} (the log has {size} entries)",
            q.start, q.end, q.size
        )));
    }
    let proof = log.range_proof(q.start, q.end, q.size).map_err(internal)?;
    Ok(Json(RangeProof {
        start: q.start,
        end: q.end,
        size: q.size,
        proof: encode(proof),
    }))
}

/// Most refusals logged per caller per minute, on average; more are answered but not
/// logged (and counted in `congvan_refusals_unlogged_total`), so a caller cannot grow the
/// log without bound by sending bad requests.
pub const REFUSALS_LOGGED_PER_MINUTE: u32 = 30;
/// Burst of refusals logged per caller before the rate applies.
pub const REFUSALS_LOGGED_BURST: u32 = 20;
/// Largest `refused` leaf. A refusal names only the caller, the document id and a code,
/// so real ones are about 200 bytes; anything larger is a bug, and is not logged.
pub const REFUSAL_LEAF_BYTES_MAX: usize = 1024;

/// Logs a refusal of a request about `document_id` under the authenticated caller alone.
/// It never names parties that the (possibly unverified) request claims, so nobody can
/// write into another party's history. It is size-bounded, rate-limited per caller and
/// skipped when the disk reserve is reached. A failure to log does not change the answer.
pub async fn log_refusal(
    state: &AppState,
    caller: &Caller,
    document_id: Option<Uuid>,
    error: &ApiError,
) {
    let (_, code) = error.status_and_code();
    let actor = match &caller.identity {
        Identity::Org(id) => id.to_string(),
        Identity::Auditor(scope) => format!("auditor:{scope}"),
        Identity::Person(id) => format!("person:{id}"),
    };
    let event = Event::Refused {
        time: crate::api::now_rfc3339(),
        document_id,
        actor,
        sender: None,
        recipients: Vec::new(),
        code: code.to_owned(),
    };
    let unlogged = |why: &str| {
        state
            .metrics
            .refusals_unlogged
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(code, reason = why, "refusal not logged");
    };
    match event.leaf() {
        Ok(leaf) if leaf.len() <= REFUSAL_LEAF_BYTES_MAX => {}
        _ => return unlogged("the entry would be too large"),
    }
    if state.refusals.check(&caller.identity.uri()).is_err() {
        return unlogged("the caller's refusal rate is exceeded");
    }
    if state
        .store
        .ensure_space(
            state
                .limits
                .disk_reserve_bytes
                .saturating_add(REFUSAL_LEAF_BYTES_MAX as u64),
        )
        .is_err()
    {
        return unlogged("the disk reserve is reached");
    }
    if let Err(e) = state.store.log_event(&event).await {
        tracing::error!(error = %e, code, "could not log a refusal");
    }
}
