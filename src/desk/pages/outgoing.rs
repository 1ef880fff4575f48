//! The outgoing register: what this committee sent and where each recipient is.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::ListPage;
use crate::client::endpoints::ListQuery;
use crate::desk::register::show_rfc3339;
use crate::desk::{DeskError, DeskState};

use super::*;

pub(super) struct GridRow {
    org: String,
    fetched: String,
    code: String,
    status: String,
    note: String,
}

pub(super) struct OutgoingDoc {
    id: Uuid,
    urgency: u8,
    urgency_label: String,
    classified: bool,
    class_label: String,
    seal_note: String,
    code: String,
    subject: String,
    sent: String,
    recipients: Vec<GridRow>,
}

/// The outgoing register.
#[derive(Template)]
#[template(path = "outgoing.html")]
pub(super) struct OutgoingPage<'a> {
    f: Frame<'a>,
    docs: Vec<OutgoingDoc>,
    next_link: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct OutgoingQuery {
    #[serde(default)]
    before: Option<u64>,
}

pub(super) async fn outgoing(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(q): Query<OutgoingQuery>,
) -> Result<Response, DeskError> {
    committee(&state)?;
    let query = ListQuery::limit(OUTGOING_ROWS).before(q.before);
    let listing: ListPage = state.client().sent(&query).await.map_err(from_client)?;
    let client = state.client();
    let statuses = futures_util::future::join_all(
        listing
            .items
            .iter()
            .map(|item| async move { client.status(&item.id).await.ok() }),
    )
    .await;
    let f = frame(&state, &headers, "outgoing", "/outgoing".into());
    let t = f.t;
    let docs = listing
        .items
        .iter()
        .zip(statuses)
        .map(|(item, status)| {
            let recipients = match status {
                Some(view) => view
                    .recipients
                    .iter()
                    .map(|r| GridRow {
                        org: r.org.clone(),
                        fetched: r
                            .fetched_at
                            .as_deref()
                            .map(show_rfc3339)
                            .unwrap_or_else(|| t.get("outgoing-not-fetched")),
                        code: r.status.clone().unwrap_or_default(),
                        status: match (&r.status, &r.status_time) {
                            (Some(_), Some(time)) => format!(
                                "{} ({})",
                                status_label(&t, r.status.as_deref()),
                                show_rfc3339(time)
                            ),
                            _ => status_label(&t, r.status.as_deref()),
                        },
                        note: r.note.clone().unwrap_or_default(),
                    })
                    .collect(),
                None => item
                    .recipients
                    .iter()
                    .map(|org| GridRow {
                        org: org.clone(),
                        fetched: String::new(),
                        code: String::new(),
                        status: String::new(),
                        note: String::new(),
                    })
                    .collect(),
            };
            OutgoingDoc {
                id: item.id,
                urgency: item.urgency,
                urgency_label: t.get(urgency_key(item.urgency)),
                classified: item.classification != "thuong",
                class_label: t.get(class_key(&item.classification)),
                seal_note: seal_note(&t, item.sealed_with.as_ref()),
                code: format!("{} {}/{}", item.doc_type, item.number, item.notation),
                subject: item.subject.clone(),
                sent: item
                    .accepted_at
                    .as_deref()
                    .map(show_rfc3339)
                    .unwrap_or_default(),
                recipients,
            }
        })
        .collect();
    let page = OutgoingPage {
        docs,
        next_link: listing.next_before.map(|b| format!("/outgoing?before={b}")),
        f,
    };
    html(&page)
}
