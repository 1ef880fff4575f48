//! The security officer's screens: the checkpoint, the overdue report (and its CSV), a
//! document's proved events.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::client::ClientError;
use crate::desk::i18n::Tr;
use crate::desk::register::{Filter, show_rfc3339, show_time};
use crate::desk::{DeskError, DeskRole, DeskState, lang_of};

use super::*;

pub(super) struct ReportLine {
    id: Uuid,
    recipient: String,
    sender: String,
    urgency: u8,
    urgency_label: String,
    classified: bool,
    class_label: String,
    seal_note: String,
    submitted: String,
    fetched: String,
    status: String,
    due: String,
    overdue: bool,
}

/// The security officer's page: the checkpoint state and the delivery report, or one
/// document's proven timeline.
#[derive(Template)]
#[template(path = "audit.html")]
pub(super) struct AuditPage<'a> {
    f: Frame<'a>,
    heading: String,
    alarm: Option<String>,
    checkpoint: Vec<String>,
    filter: Filter,
    urgencies: Vec<(String, String)>,
    query: String,
    rows: Vec<ReportLine>,
    timeline: Vec<(String, u64, String)>,
}

pub(super) fn auditor(state: &DeskState) -> Result<(), DeskError> {
    match state.role() {
        DeskRole::Auditor(_) => Ok(()),
        DeskRole::Committee(_) => Err(DeskError::WrongProfile(
            "the delivery report is for security officers' profiles",
        )),
    }
}

/// The checkpoint lines, or the alarm when the log is not consistent with what this desk
/// saw before.
pub(super) async fn checkpoint_state(
    state: &DeskState,
    t: &Tr<'_>,
) -> Result<(Option<String>, Vec<String>, Option<u64>), DeskError> {
    match state.client().audit_checkpoint().await {
        Ok(check) => {
            let mut lines = vec![
                t.arg("audit-size", "size", &check.current.size.to_string()),
                t.arg(
                    "audit-checked-at",
                    "time",
                    &show_time(time::OffsetDateTime::now_utc()),
                ),
            ];
            lines.push(match &check.previous {
                Some(previous) => t.arg("audit-consistent", "size", &previous.size.to_string()),
                None => t.get("audit-first"),
            });
            Ok((None, lines, Some(check.current.size)))
        }
        Err(ClientError::LogInconsistent(detail)) => Ok((Some(detail), Vec::new(), None)),
        Err(other) => Err(from_client(other)),
    }
}

pub(super) async fn report_rows(
    state: &DeskState,
    size: u64,
    filter: &Filter,
) -> Result<Vec<crate::client::audit::ReportRow>, DeskError> {
    let entries = state
        .client()
        .visible_entries(size)
        .await
        .map_err(from_client)?;
    let events: Vec<crate::ledger::Event> = entries
        .iter()
        .filter_map(|e| crate::ledger::Event::from_leaf(e.leaf.get().as_bytes()).ok())
        .collect();
    let urgency: Option<u8> = filter.urgency.parse().ok();
    Ok(crate::client::audit::report(
        &events,
        state.deadlines(),
        None,
        time::OffsetDateTime::now_utc(),
    )
    .into_iter()
    .filter(|r| filter.overdue != "1" || r.overdue)
    .filter(|r| urgency.is_none_or(|u| r.urgency == u))
    .filter(|r| filter.sender.is_empty() || r.recipient.starts_with(&filter.sender))
    .collect())
}

pub(super) async fn audit(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Result<Response, DeskError> {
    auditor(&state)?;
    let f = frame(&state, &headers, "audit", "/audit".into());
    let t = f.t;
    let (alarm, checkpoint, size) = checkpoint_state(&state, &t).await?;
    let rows = match size {
        Some(size) => report_rows(&state, size, &filter).await?,
        None => Vec::new(),
    };
    let rows = rows
        .into_iter()
        .map(|r| ReportLine {
            id: r.document_id,
            recipient: r.recipient,
            sender: r.sender,
            urgency: r.urgency,
            urgency_label: t.get(urgency_key(r.urgency)),
            classified: r.classification != "thuong",
            class_label: t.get(class_key(&r.classification)),
            seal_note: seal_note(&t, r.sealed_with.as_ref()),
            submitted: show_rfc3339(&r.submitted_at),
            fetched: r
                .fetched_at
                .as_deref()
                .map(show_rfc3339)
                .unwrap_or_default(),
            status: status_label(&t, r.status.as_deref()),
            due: show_rfc3339(&r.due_at),
            overdue: r.overdue,
        })
        .collect();
    let mut query = String::new();
    if filter.overdue == "1" {
        query.push_str("?overdue=1");
    }
    let page = AuditPage {
        heading: t.get("audit-title"),
        alarm,
        checkpoint,
        urgencies: urgency_options(&t),
        query,
        rows,
        timeline: Vec::new(),
        filter,
        f,
    };
    html(&page)
}

pub(super) fn csv_cell(value: &str) -> String {
    // A cell a spreadsheet would run as a formula is quoted with a leading apostrophe.
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

pub(super) async fn audit_csv(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Result<Response, DeskError> {
    auditor(&state)?;
    let t = Tr::new(state.catalogue(), lang_of(&headers));
    let (alarm, _, size) = checkpoint_state(&state, &t).await?;
    let Some(size) = size else {
        return Err(DeskError::Client(ClientError::LogInconsistent(
            alarm.unwrap_or_default(),
        )));
    };
    let rows = report_rows(&state, size, &filter).await?;
    let mut out = String::from(
        "recipient,document_id,sender,urgency,submitted_at,fetched_at,status,due_at,overdue,classification,uncertified_cipher\n",
    );
    for r in rows {
        let cells = [
            r.recipient,
            r.document_id.to_string(),
            r.sender,
            r.urgency.to_string(),
            r.submitted_at,
            r.fetched_at.unwrap_or_default(),
            r.status.unwrap_or_default(),
            r.due_at,
            r.overdue.to_string(),
            r.classification,
            r.sealed_with
                .filter(|m| !m.certified)
                .map(|m| m.cipher)
                .unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"report.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

pub(super) async fn audit_document(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, DeskError> {
    auditor(&state)?;
    let id = parse_uuid(&raw)?;
    let f = frame(&state, &headers, "audit", format!("/audit/doc/{id}"));
    let t = f.t;
    let (alarm, mut checkpoint, timeline) = match state.client().prove_document(&id).await {
        Ok((check, events)) => {
            let lines = vec![
                t.arg("audit-size", "size", &check.current.size.to_string()),
                t.arg("audit-proved", "count", &events.len().to_string()),
            ];
            let timeline = events
                .iter()
                .map(|e| {
                    let detail = serde_json::to_value(&e.event)
                        .ok()
                        .map(|v| {
                            let kind = match v["type"].as_str().unwrap_or_default() {
                                "submitted" => t.get("event-submitted"),
                                "delivered" => t.get("event-delivered"),
                                "receipt" => t.get("event-receipt"),
                                "refused" => t.get("event-refused"),
                                other => other.to_owned(),
                            };
                            let actor = v["actor"].as_str().unwrap_or_default().to_owned();
                            let status = v["status"]
                                .as_str()
                                .map(|s| format!(" {s}"))
                                .unwrap_or_default();
                            format!("{kind} {actor}{status}")
                        })
                        .unwrap_or_default();
                    (show_rfc3339(e.event.time()), e.index, detail)
                })
                .collect();
            (None, lines, timeline)
        }
        Err(ClientError::LogInconsistent(detail)) => (Some(detail), Vec::new(), Vec::new()),
        Err(other) => return Err(from_client(other)),
    };
    if timeline.is_empty() && alarm.is_none() {
        checkpoint.push(t.get("audit-empty"));
    }
    let page = AuditPage {
        heading: format!("{} {id}", t.get("audit-timeline")),
        alarm,
        checkpoint,
        filter: Filter::default(),
        urgencies: Vec::new(),
        query: String::new(),
        rows: Vec::new(),
        timeline,
        f,
    };
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("hn/cm"), "hn/cm");
    }
}
