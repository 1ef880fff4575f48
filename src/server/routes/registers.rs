//! Registers: an organisation's incoming register (list, paper registration, closing).
//!
//! Only the organisation itself reads or writes its register; security officers audit
//! delivery through the log, not through registers.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{ensure_space, read_limited};
use crate::api::{self, IncomingRegisterView, PaperRegistered, RegisterClosedView};
use crate::directory::OrgId;
use crate::registers::{self, IncomingEntry, Medium, PaperRegistration};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;

/// Largest paper registration body.
const PAPER_BODY_BYTES_MAX: usize = 16 * 1024;

/// The register year parameter.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearQuery {
    /// The year; the current one (Vietnam time) when absent.
    year: Option<i32>,
}

fn register_owner(state: &AppState, caller: &Caller) -> Result<OrgId, ApiError> {
    let org = caller
        .org()
        .ok_or(ApiError::RoleForbidden(
            "registers belong to committees; security officers audit through the log",
        ))?
        .clone();
    if state.directory().org(&org).is_none() {
        return Err(ApiError::UnknownIdentity(caller.identity.uri()));
    }
    Ok(org)
}

fn this_year() -> Result<i32, ApiError> {
    registers::local_date(&api::now_rfc3339())
        .map(|d| d.year())
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `GET /v1/registers/incoming?year=`: the caller's incoming register of a year.
pub async fn incoming(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<YearQuery>,
) -> Result<Json<IncomingRegisterView>, ApiError> {
    let org = register_owner(&state, &caller)?;
    let year = match query.year {
        Some(y) => y,
        None => this_year()?,
    };
    let entries = state.store.incoming_register(org.as_str(), year)?;
    let closed_at = state.store.register_closed_at(org.as_str(), year)?;
    let org_name = state
        .directory()
        .org(&org)
        .map(|o| o.name.clone())
        .unwrap_or_default();
    Ok(Json(IncomingRegisterView {
        org: org.to_string(),
        org_name,
        year,
        closed_at,
        entries,
    }))
}

/// `POST /v1/registers/incoming`: registers a paper document (metadata only) in the
/// caller's incoming register, in the same sequence as electronic documents.
pub async fn register_paper(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<PaperRegistered>), ApiError> {
    let org = register_owner(&state, &caller)?;
    let body = read_limited(&state, body, PAPER_BODY_BYTES_MAX).await?;
    let paper: PaperRegistration =
        serde_json::from_slice(&body).map_err(|e| ApiError::RequestInvalid(e.to_string()))?;
    paper
        .validate()
        .map_err(|e| ApiError::RequestInvalid(e.to_string()))?;
    ensure_space(&state, 0)?;
    let now = api::now_rfc3339();
    let current = this_year()?;
    let year = paper.year.unwrap_or(current);
    if year != current && year != current - 1 {
        return Err(ApiError::RequestInvalid(format!(
            "a paper document is registered in {current} or, until it is closed, in {}",
            current - 1
        )));
    }
    let entry = IncomingEntry {
        number: 0,
        year,
        received_at: now,
        medium: Medium::Paper,
        document_id: None,
        author: paper.author,
        code: paper.code,
        date: paper.date,
        doc_type: paper.doc_type,
        subject: paper.subject,
        assigned_to: paper.assigned_to,
        note: paper.note,
    };
    let number = state.store.register_paper(org.as_str(), entry).await?;
    tracing::info!(org = %org, year, number, "paper document registered");
    Ok((StatusCode::CREATED, Json(PaperRegistered { year, number })))
}

/// `POST /v1/registers/incoming/close?year=`: closes a past year's register; nothing can
/// be entered in it afterwards. Closing again answers with the first closing.
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<YearQuery>,
) -> Result<Json<RegisterClosedView>, ApiError> {
    let org = register_owner(&state, &caller)?;
    let year = query
        .year
        .ok_or_else(|| ApiError::RequestInvalid("year is required".into()))?;
    let now = api::now_rfc3339();
    let ended =
        registers::year_has_ended(year, &now).map_err(|e| ApiError::Internal(e.to_string()))?;
    if !ended {
        return Err(ApiError::RegisterYearOpen(year));
    }
    ensure_space(&state, 0)?;
    let closed_at = state.store.close_register(org.as_str(), year, &now).await?;
    let count = state.store.incoming_register(org.as_str(), year)?.len() as u64;
    Ok(Json(RegisterClosedView {
        org: org.to_string(),
        year,
        closed_at,
        count,
    }))
}
