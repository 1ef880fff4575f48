//! Listings: a committee's inbox and what it has sent, newest first, paged.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use crate::api::{ListItem, ListPage};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::store::{DocState, DocumentRecord};

/// Default page length.
const PAGE_ITEMS_DEFAULT: usize = 100;

/// Paging parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Return items older than this cursor (`next_before` of the previous page).
    before: Option<u64>,
    /// At most this many items (1–500).
    limit: Option<usize>,
}

fn item(seq: u64, record: &DocumentRecord) -> ListItem {
    let manifest: serde_json::Value =
        serde_json::from_str(&record.manifest).unwrap_or(serde_json::Value::Null);
    let text = |path: &[&str]| {
        let mut v = &manifest;
        for key in path {
            v = &v[*key];
        }
        v.as_str().unwrap_or_default().to_owned()
    };
    ListItem {
        seq,
        id: record.id,
        sender: record.sender.clone(),
        recipients: record.recipients.clone(),
        doc_type: text(&["doc_type"]),
        number: text(&["code", "number"]),
        notation: text(&["code", "notation"]),
        subject: text(&["subject"]),
        urgency: record.urgency,
        classification: record.classification.clone(),
        state: match record.state {
            DocState::AwaitingPayload => "awaiting_payload".into(),
            DocState::Accepted => "accepted".into(),
        },
        accepted_at: record.accepted_at.clone(),
    }
}

fn page(items: Vec<(u64, DocumentRecord)>, limit: usize) -> ListPage {
    let next_before = if items.len() >= limit {
        items.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    ListPage {
        items: items.iter().map(|(seq, r)| item(*seq, r)).collect(),
        next_before,
    }
}

fn org_of(caller: &Caller) -> Result<String, ApiError> {
    caller
        .org()
        .map(ToString::to_string)
        .ok_or(ApiError::RoleForbidden(
            "only committees have an inbox and a sent list",
        ))
}

/// `GET /v1/inbox`.
pub async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<ListPage>, ApiError> {
    let org = org_of(&caller)?;
    let limit = q
        .limit
        .unwrap_or(PAGE_ITEMS_DEFAULT)
        .clamp(1, crate::store::PAGE_ITEMS_MAX);
    Ok(Json(page(state.store.inbox(&org, q.before, limit)?, limit)))
}

/// `GET /v1/sent`.
pub async fn sent(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<ListPage>, ApiError> {
    let org = org_of(&caller)?;
    let limit = q
        .limit
        .unwrap_or(PAGE_ITEMS_DEFAULT)
        .clamp(1, crate::store::PAGE_ITEMS_MAX);
    Ok(Json(page(state.store.sent(&org, q.before, limit)?, limit)))
}
