//! Listings: a committee's inbox and what it has sent, newest first, paged.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use crate::api::{ListItem, ListPage};
use crate::directory::OrgId;
use crate::document::ReceiptStatus;
use crate::document::status::Request;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;
use crate::store::DocumentRecord;

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
    /// Inbox only: `new` (not yet acknowledged by this recipient), `all` (default: every
    /// document in force) or `history` (also the documents recalled with this recipient's
    /// agreement).
    state: Option<String>,
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
        sender: record.sender.to_string(),
        recipients: record.recipients.iter().map(ToString::to_string).collect(),
        doc_type: text(&["doc_type"]),
        number: text(&["code", "number"]),
        notation: text(&["code", "notation"]),
        subject: text(&["subject"]),
        urgency: record.urgency.into(),
        classification: record.classification.name().to_owned(),
        state: crate::exchange::state_name(record.state).to_owned(),
        accepted_at: record.accepted_at.clone(),
        fetched_at: None,
        receipt_status: None,
        incoming_number: None,
        sealed_with: record.sealed_with.clone(),
        addressed_to: None,
        links: Vec::new(),
        recalled: false,
    }
}

fn page(items: Vec<(u64, DocumentRecord, OrgId)>, limit: usize) -> ListPage {
    let next_before = if items.len() >= limit {
        items.last().map(|(seq, _, _)| *seq)
    } else {
        None
    };
    ListPage {
        items: items.iter().map(|(seq, r, _)| item(*seq, r)).collect(),
        next_before,
    }
}

/// Which index a listing reads.
#[derive(Clone, Copy)]
enum Index {
    Inbox,
    Sent,
}

/// One page of `org`'s index merged with those of the units merged into it (their
/// archives are its own), newest first; a document filed for several of them appears
/// once, with the unit it was filed for.
fn archive_page(
    state: &AppState,
    org: &OrgId,
    index: Index,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<(u64, DocumentRecord, OrgId)>, ApiError> {
    let directory = state.directory();
    let mut owners = vec![org.clone()];
    owners.extend(directory.predecessors(org).iter().cloned());
    let mut all = Vec::new();
    for owner in &owners {
        let batch = match index {
            Index::Inbox => state.store.inbox(owner.as_str(), before, limit)?,
            Index::Sent => state.store.sent(owner.as_str(), before, limit)?,
        };
        all.extend(batch.into_iter().map(|(seq, r)| (seq, r, owner.clone())));
    }
    all.sort_by_key(|item| std::cmp::Reverse(item.0));
    let mut seen = std::collections::BTreeSet::new();
    all.retain(|(_, r, _)| seen.insert(r.id));
    all.truncate(limit);
    Ok(all)
}

fn org_of(caller: &Caller) -> Result<OrgId, ApiError> {
    caller.org().cloned().ok_or(ApiError::RoleForbidden(
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
    let (only_new, history) = match q.state.as_deref() {
        None | Some("all") => (false, false),
        Some("new") => (true, false),
        Some("history") => (false, true),
        Some(other) => {
            return Err(ApiError::RequestInvalid(format!(
                "state={other:?}: use new, all or history"
            )));
        }
    };
    let limit = q
        .limit
        .unwrap_or(PAGE_ITEMS_DEFAULT)
        .clamp(1, crate::store::PAGE_ITEMS_MAX);
    let exchange = state.exchange();
    let mut items = Vec::new();
    let mut before = q.before;
    // Filtering may drop items; keep reading pages until one is full or the index ends.
    let next_before = loop {
        let batch = archive_page(&state, &org, Index::Inbox, before, limit)?;
        let exhausted = batch.len() < limit;
        for (seq, record, owner) in &batch {
            let delivery = state.store.delivery(&record.id, owner.as_str())?;
            if only_new && !delivery.receipts.is_empty() {
                continue;
            }
            // A recall the recipient agreed to (15) takes the document out of the
            // active inbox; it stays in the history.
            let recalled = delivery
                .receipts
                .iter()
                .any(|r| r.status == ReceiptStatus::Agreed)
                && exchange.pending_request(&record.id, owner)? == Some(Request::Recall);
            if recalled && !history {
                continue;
            }
            let mut it = item(*seq, record);
            if owner != &org {
                it.addressed_to = Some(owner.to_string());
            }
            it.fetched_at = delivery.first_fetched_at.clone();
            it.receipt_status = delivery.receipts.last().map(|r| r.status.code().to_owned());
            it.links = exchange.links_of(record, Some(owner))?;
            it.recalled = recalled;
            it.incoming_number = delivery.incoming_number;
            items.push(it);
        }
        before = batch.last().map(|(seq, _, _)| *seq);
        if items.len() >= limit {
            items.truncate(limit);
            break items.last().map(|i| i.seq);
        }
        if exhausted {
            break None;
        }
    };
    Ok(Json(ListPage { items, next_before }))
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
    let items = archive_page(&state, &org, Index::Sent, q.before, limit)?;
    let mut listing = page(items, limit);
    let exchange = state.exchange();
    for it in &mut listing.items {
        if let Some(record) = state.store.document(&it.id)? {
            it.links = exchange.links_of(&record, None)?;
        }
    }
    Ok(Json(listing))
}
