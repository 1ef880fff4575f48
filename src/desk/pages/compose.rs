//! Composing and sending a document, and the screen that says how the send went.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::client::send::SendRequest;
use crate::desk::i18n::Tr;
use crate::desk::register::show_rfc3339;
use crate::desk::{DeskError, DeskState};
use crate::directory::OrgId;
use crate::document::manifest::{BusinessKind, Classification, Urgency};

use super::*;

/// One organisation in the recipients tree.
pub(super) struct TreeNode {
    id: String,
    slug: String,
    parent: String,
    name: String,
    depth: usize,
    active: bool,
    has_children: bool,
    note: String,
}

/// The compose page.
#[derive(Template)]
#[template(path = "compose.html")]
pub(super) struct ComposePage<'a> {
    f: Frame<'a>,
    doc_types: Vec<String>,
    urgencies: Vec<(String, String)>,
    classes: Vec<(&'static str, String)>,
    businesses: Vec<(&'static str, String)>,
    business: String,
    target: String,
    response_for: String,
    today: String,
    position: String,
    full_name: String,
    tree: Vec<TreeNode>,
}

#[derive(Deserialize)]
pub(super) struct ComposeQuery {
    #[serde(default)]
    business: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    response_for: String,
}

pub(super) fn tree_of(t: &Tr<'_>, orgs: &[crate::api::DirectoryOrg]) -> Vec<TreeNode> {
    fn walk(
        t: &Tr<'_>,
        orgs: &[crate::api::DirectoryOrg],
        parent: Option<&str>,
        depth: usize,
        out: &mut Vec<TreeNode>,
    ) {
        // The directory is a tree by construction; the depth cap guards a hostile one.
        if depth > 8 {
            return;
        }
        for org in orgs.iter().filter(|o| o.parent.as_deref() == parent) {
            let has_children = orgs.iter().any(|o| o.parent.as_deref() == Some(&org.id));
            let note = match (org.status.as_str(), &org.merged_into) {
                ("active", _) => String::new(),
                (_, Some(successor)) => t.arg("compose-successor", "successor", successor),
                _ => t.get("compose-retired"),
            };
            out.push(TreeNode {
                id: org.id.clone(),
                slug: org.id.replace('/', "-"),
                parent: parent.unwrap_or_default().to_owned(),
                name: org.name.clone(),
                depth: depth.min(6),
                active: org.status == "active",
                has_children,
                note,
            });
            walk(t, orgs, Some(&org.id), depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(t, orgs, None, 0, &mut out);
    out
}

pub(super) async fn compose(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(q): Query<ComposeQuery>,
) -> Result<Response, DeskError> {
    committee(&state)?;
    let directory = state.client().directory().await.map_err(from_client)?;
    let f = frame(&state, &headers, "compose", "/compose".into());
    let t = f.t;
    let (full_name, position) = state
        .client()
        .org_signer()
        .and_then(|s| s.person_name_and_title())
        .map(|(n, p)| (n.unwrap_or_default(), p.unwrap_or_default()))
        .unwrap_or_default();
    let page = ComposePage {
        doc_types: crate::document::manifest::default_doc_types(),
        urgencies: urgency_options(&t),
        classes: class_options(&t),
        businesses: [
            ("new", "business-new"),
            ("recall", "business-recall"),
            ("update", "business-update"),
            ("replace", "business-replace"),
        ]
        .iter()
        .map(|(v, key)| (*v, t.get(key)))
        .collect(),
        business: q.business,
        target: q.target,
        response_for: q.response_for,
        today: time::OffsetDateTime::now_utc()
            .to_offset(time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC))
            .date()
            .to_string(),
        position,
        full_name,
        tree: tree_of(&t, &directory.orgs),
        f,
    };
    html(&page)
}

/// A directory for one compose request's uploads, removed when dropped.
pub(super) struct Uploads {
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
}

pub(super) fn safe_file_name(raw: &str) -> Result<String, DeskError> {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if name.is_empty()
        || name.starts_with('.')
        || name.chars().any(char::is_control)
        || name.len() > 255
    {
        return Err(DeskError::Input(format!(
            "the file name {:?} cannot be used",
            raw.chars().take(80).collect::<String>()
        )));
    }
    Ok(name.to_owned())
}

pub(super) fn opt(fields: &HashMap<String, String>, name: &str) -> Option<String> {
    fields
        .get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub(super) fn parse_request(
    fields: &HashMap<String, String>,
    to: Vec<String>,
    to_children: Vec<String>,
    files: Vec<PathBuf>,
) -> Result<SendRequest, DeskError> {
    let field = |name: &str| opt(fields, name).unwrap_or_default();
    let mut request = SendRequest::new(
        &field("doc_type"),
        &field("number"),
        &field("notation"),
        &field("subject"),
        files,
    );
    let ids = |list: Vec<String>| {
        list.iter()
            .map(|id| OrgId::parse(id).map_err(|e| DeskError::Input(e.to_string())))
            .collect::<Result<Vec<_>, _>>()
    };
    request.to = ids(to)?;
    request.to_children = ids(to_children)?;
    let urgency: u8 = field("urgency").parse().unwrap_or(0);
    request.urgency = Urgency::try_from(urgency).map_err(DeskError::Input)?;
    request.classification =
        Classification::from_name(&field("classification")).unwrap_or(Classification::Thuong);
    request.steering = field("steering").parse().unwrap_or(1);
    request.place = field("place");
    request.date = opt(fields, "date");
    request.due = opt(fields, "due");
    // A datetime-local input has no offset: it is Vietnam's local time.
    request.deadline = opt(fields, "deadline").map(|d| {
        if d.len() == 16 {
            format!("{d}:00+07:00")
        } else {
            d
        }
    });
    if let Some(c) = opt(fields, "competence") {
        request.competence = c;
    }
    request.position = opt(fields, "position");
    request.full_name = opt(fields, "full_name");
    request.business = match field("business").as_str() {
        "recall" => BusinessKind::Recall,
        "update" => BusinessKind::Update,
        "replace" => BusinessKind::Replace,
        _ => BusinessKind::New,
    };
    let uuid = |name: &str| {
        opt(fields, name)
            .map(|v| {
                Uuid::parse_str(&v)
                    .map_err(|_| DeskError::Input(format!("{name}: {v:?} is not a document id")))
            })
            .transpose()
    };
    request.business_target = uuid("business_target")?;
    request.response_for = uuid("response_for")?;
    Ok(request)
}

pub(super) async fn send(
    State(state): State<DeskState>,
    mut multipart: Multipart,
) -> Result<Response, DeskError> {
    committee(&state)?;
    let mut uploads = Uploads {
        dir: scratch_dir(&state)?,
        files: Vec::new(),
    };
    let mut fields = HashMap::new();
    let mut to = Vec::new();
    let mut to_children = Vec::new();
    let bad = |e: axum::extract::multipart::MultipartError| DeskError::Input(e.body_text());
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "files" {
            let Some(raw) = field.file_name().map(str::to_owned) else {
                continue;
            };
            if raw.is_empty() {
                continue;
            }
            let file_name = safe_file_name(&raw)?;
            if uploads
                .files
                .iter()
                .any(|p| p.file_name().and_then(|n| n.to_str()) == Some(&file_name))
            {
                return Err(DeskError::Input(format!(
                    "two attachments are named {file_name:?}"
                )));
            }
            let path = uploads.dir.path().join(&file_name);
            let mut out = tokio::fs::File::create(&path)
                .await
                .map_err(|e| DeskError::Internal(e.to_string()))?;
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
                    .await
                    .map_err(|e| DeskError::Internal(e.to_string()))?;
            }
            tokio::io::AsyncWriteExt::flush(&mut out)
                .await
                .map_err(|e| DeskError::Internal(e.to_string()))?;
            uploads.files.push(path);
        } else {
            let value = field.text().await.map_err(bad)?;
            match name.as_str() {
                "to" => to.push(value),
                "to_children" => to_children.push(value),
                _ => {
                    fields.insert(name, value);
                }
            }
        }
    }
    let request = parse_request(&fields, to, to_children, uploads.files.clone())?;
    let outcome = state
        .client()
        .send_document(&request)
        .await
        .map_err(from_client)?;
    drop(uploads);
    let id = outcome.id;
    if let Ok(mut cache) = state.sent().lock() {
        cache.0.push_front((id, Arc::new(outcome)));
        cache.0.truncate(SENT_OUTCOMES_MAX);
    }
    Ok(Redirect::to(&format!("/sent/{id}")).into_response())
}

/// The result of a send.
#[derive(Template)]
#[template(path = "sent.html")]
pub(super) struct SentPage<'a> {
    f: Frame<'a>,
    id: Uuid,
    accepted_at: String,
    recipients: String,
    payload_sha256: String,
    payload_size: String,
    log_index: u64,
    notices: Vec<String>,
}

pub(super) async fn sent(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, DeskError> {
    committee(&state)?;
    let id = parse_uuid(&raw)?;
    let outcome = state
        .sent()
        .lock()
        .ok()
        .and_then(|c| c.0.iter().find(|(i, _)| *i == id).map(|(_, o)| o.clone()))
        .ok_or(DeskError::NotFound)?;
    let page = SentPage {
        f: frame(&state, &headers, "compose", "/outgoing".into()),
        id,
        accepted_at: show_rfc3339(&outcome.receipt.accepted_at),
        recipients: outcome.receipt.recipients.join(", "),
        payload_sha256: outcome.receipt.payload_sha256.clone(),
        payload_size: human_size(outcome.receipt.payload_size),
        log_index: outcome.receipt.log_index,
        notices: outcome.notices.clone(),
    };
    html(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_file_names_lose_their_directories() {
        assert_eq!(
            safe_file_name("C:\\x\\to-trinh.pdf").unwrap(),
            "to-trinh.pdf"
        );
        assert_eq!(safe_file_name("../../etc/passwd").unwrap(), "passwd");
        assert!(safe_file_name("..").is_err());
        assert!(safe_file_name("").is_err());
        assert!(safe_file_name(".bashrc").is_err());
    }
}
