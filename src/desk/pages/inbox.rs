//! The incoming register: refreshing it from the server, the inbox screen and its poll.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::api::ListPage;
use crate::client::endpoints::ListQuery;
use crate::desk::i18n::Tr;
use crate::desk::register::{self, Filter, RegisterItem, show_rfc3339, show_time};
use crate::desk::{DeskError, DeskRole, DeskState};

use super::*;

/// Reads the inbox listing from the server until it reaches what the register already
/// holds, and merges it. Returns how many documents were new.
pub async fn refresh_register(state: &DeskState) -> Result<usize, DeskError> {
    let known = state
        .register()
        .read()
        .map_err(|_| DeskError::Internal("register lock poisoned".into()))?
        .latest_seq;
    let mut fresh = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let query = ListQuery::limit(LISTING_PAGE).before(before);
        let page: ListPage = state.client().inbox(&query).await.map_err(from_client)?;
        let reached_known = page.items.iter().any(|i| known.is_some_and(|k| i.seq <= k));
        fresh.extend(
            page.items
                .into_iter()
                .filter(|i| known.is_none_or(|k| i.seq > k))
                .map(|item| RegisterItem { item }),
        );
        match page.next_before {
            Some(next) if !reached_known && fresh.len() < register::REGISTER_ITEMS_MAX => {
                before = Some(next);
            }
            _ => break,
        }
    }
    let mut register = state
        .register()
        .write()
        .map_err(|_| DeskError::Internal("register lock poisoned".into()))?;
    Ok(register.merge(fresh))
}

/// One row of the incoming register as shown.
pub struct InboxRow {
    id: Uuid,
    urgency: u8,
    urgency_label: String,
    classified: bool,
    class_label: String,
    sender: String,
    code: String,
    subject: String,
    received: String,
    deadline: String,
    status: String,
    incoming: String,
    overdue: bool,
}

/// The incoming register page.
#[derive(Template)]
#[template(path = "inbox.html")]
pub struct InboxPage<'a> {
    f: Frame<'a>,
    filter: Filter,
    statuses: Vec<(&'static str, String)>,
    urgencies: Vec<(String, String)>,
    classes: Vec<(&'static str, String)>,
    rows: Vec<InboxRow>,
    count: String,
    latest: String,
    show_incoming: bool,
    page_label: String,
    prev_link: Option<String>,
    next_link: Option<String>,
}

pub(super) fn filter_query(filter: &Filter, page: usize) -> String {
    let mut q = String::from("/inbox?");
    let pairs = [
        ("status", &filter.status),
        ("urgency", &filter.urgency),
        ("classification", &filter.classification),
        ("sender", &filter.sender),
        ("from", &filter.from),
        ("to", &filter.to),
        ("q", &filter.q),
        ("overdue", &filter.overdue),
    ];
    for (name, value) in pairs {
        if !value.is_empty() {
            q.push_str(name);
            q.push('=');
            q.push_str(&percent_encode(value));
            q.push('&');
        }
    }
    q.push_str(&format!("page={page}"));
    q
}

pub(super) fn percent_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub(super) fn urgency_options(t: &Tr<'_>) -> Vec<(String, String)> {
    (0..=4u8)
        .map(|u| (u.to_string(), t.get(urgency_key(u))))
        .collect()
}

pub(super) fn class_options(t: &Tr<'_>) -> Vec<(&'static str, String)> {
    CLASSES.iter().map(|c| (*c, t.get(class_key(c)))).collect()
}

/// Renders the incoming register page from the register in memory (no network): the
/// part the inbox benchmark measures.
pub fn render_inbox(
    state: &DeskState,
    headers: &HeaderMap,
    filter: Filter,
    now: time::OffsetDateTime,
) -> Result<Response, DeskError> {
    let f = frame(state, headers, "inbox", "/inbox".into());
    let t = f.t;
    let register = state
        .register()
        .read()
        .map_err(|_| DeskError::Internal("register lock poisoned".into()))?;
    let selection = register.select(&filter, state.deadlines(), now);
    let show_incoming = selection
        .rows
        .iter()
        .any(|r| r.item.incoming_number.is_some());
    let rows = selection
        .rows
        .iter()
        .map(|row| {
            let item = &row.item;
            InboxRow {
                id: item.id,
                urgency: item.urgency,
                urgency_label: t.get(urgency_key(item.urgency)),
                classified: item.classification != "thuong",
                class_label: t.get(class_key(&item.classification)),
                sender: item.sender.clone(),
                code: format!("{}/{}", item.number, item.notation),
                subject: register
                    .subject(row)
                    .map(str::to_owned)
                    .unwrap_or_else(|| t.get("subject-sealed")),
                received: item
                    .accepted_at
                    .as_deref()
                    .map(show_rfc3339)
                    .unwrap_or_default(),
                deadline: register::due_at(item, state.deadlines())
                    .map(show_time)
                    .unwrap_or_default(),
                status: status_label(&t, item.receipt_status.as_deref()),
                incoming: row.incoming_number().unwrap_or_default(),
                overdue: register::overdue(row, state.deadlines(), now),
            }
        })
        .collect();
    let page = InboxPage {
        statuses: status_codes()
            .map(|s| (s, t.get(&format!("status-{s}"))))
            .collect(),
        urgencies: urgency_options(&t),
        classes: class_options(&t),
        rows,
        count: t.args(
            "inbox-count",
            &[
                ("shown", &selection.matched.to_string()),
                ("total", &selection.total.to_string()),
            ],
        ),
        latest: register
            .latest_seq
            .map(|s| s.to_string())
            .unwrap_or_default(),
        show_incoming,
        page_label: t.args(
            "page-of",
            &[
                ("page", &selection.page.to_string()),
                ("pages", &selection.pages.to_string()),
            ],
        ),
        prev_link: (selection.page > 1).then(|| filter_query(&filter, selection.page - 1)),
        next_link: (selection.page < selection.pages)
            .then(|| filter_query(&filter, selection.page + 1)),
        filter,
        f,
    };
    html(&page)
}

pub(super) async fn inbox(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Result<Response, DeskError> {
    if matches!(state.role(), DeskRole::Auditor(_)) {
        return Ok(Redirect::to("/audit").into_response());
    }
    refresh_register(&state).await?;
    render_inbox(&state, &headers, filter, time::OffsetDateTime::now_utc())
}

#[derive(Deserialize)]
pub(super) struct PollQuery {
    #[serde(default)]
    after: Option<u64>,
}

pub(super) async fn poll(
    State(state): State<DeskState>,
    Query(q): Query<PollQuery>,
) -> Result<Response, DeskError> {
    committee(&state)?;
    refresh_register(&state).await?;
    let register = state
        .register()
        .read()
        .map_err(|_| DeskError::Internal("register lock poisoned".into()))?;
    let new = register.count_after(q.after);
    Ok(axum::Json(serde_json::json!({"latest": register.latest_seq, "new": new})).into_response())
}
