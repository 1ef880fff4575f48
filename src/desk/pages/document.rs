//! One document: opening (verifying and decrypting) it, its screen, its files and the
//! clerk's receipt.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::desk::register::{show_date, show_rfc3339};
use crate::desk::{DeskError, DeskState};
use crate::document::Role;

use super::*;

/// A document verified and decrypted in this process.
pub struct Opened {
    manifest: crate::document::Manifest,
    files: Vec<(String, String, Vec<u8>)>,
    signers: Vec<(Role, String)>,
    sealed_with: Option<crate::seal::policy::SealMark>,
    accepted_at: String,
    notices: Vec<String>,
    certs: Vec<CertLine>,
}

/// One certificate of a verified signer's chain, for the details.
#[derive(Clone)]
pub struct CertLine {
    role: Role,
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    fingerprint: String,
}

/// The certificates of the signatures whose leaf the verified fetch named as a signer (a
/// second read of the document must not add a certificate the verification did not see).
pub(super) async fn signer_certificates(
    state: &DeskState,
    id: Uuid,
    signers: &[(Role, String)],
) -> Vec<CertLine> {
    use base64::Engine as _;
    let Ok(view) = state.client().document(&id).await else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for signature in &view.signatures {
        let infos: Vec<crate::pki::CertInfo> = signature
            .chain
            .iter()
            .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .filter_map(|der| crate::pki::CertInfo::from_der(&der).ok())
            .collect();
        let verified = infos
            .first()
            .is_some_and(|leaf| signers.contains(&(signature.role, leaf.subject.clone())));
        if !verified {
            continue;
        }
        lines.extend(infos.into_iter().map(|info| CertLine {
            role: signature.role,
            subject: info.subject,
            issuer: info.issuer,
            not_before: show_rfc3339(&info.not_before),
            not_after: show_rfc3339(&info.not_after),
            fingerprint: info.fingerprint_sha256,
        }));
    }
    lines
}

/// The last few documents opened, in memory only.
#[derive(Default)]
pub struct OpenedCache(pub(super) VecDeque<(Uuid, Arc<Opened>)>);

/// The outcomes of the last few sends, for the result page.
#[derive(Default)]
pub struct SentCache(pub(super) VecDeque<(Uuid, Arc<crate::client::send::SendOutcome>)>);

/// A private directory (0700, removed when dropped) for plaintext the desk must hand to
/// file-based client code: in memory-backed storage when the system has it
/// (`$XDG_RUNTIME_DIR`, then `/dev/shm`), so that decrypted files and uploads do not reach
/// a disk; else in the profile's state directory.
pub(super) fn scratch_dir(state: &DeskState) -> Result<tempfile::TempDir, DeskError> {
    let candidates = [
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        Some(PathBuf::from("/dev/shm")),
    ];
    for base in candidates.into_iter().flatten() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("congvan-desk-")
            .tempdir_in(&base)
        {
            return Ok(dir);
        }
    }
    let state_dir = state.client().profile().state_dir.clone();
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| DeskError::Internal(format!("{}: {e}", state_dir.display())))?;
    tempfile::Builder::new()
        .prefix("congvan-desk-")
        .tempdir_in(&state_dir)
        .map_err(|e| DeskError::Internal(format!("{}: {e}", state_dir.display())))
}

/// Fetches, verifies and decrypts a document with the CLI's code. The files pass through
/// a private scratch directory ([`scratch_dir`]) only for as long as the fetch needs it
/// (the client's verified fetch writes files), then live in memory.
pub(super) async fn open(state: &DeskState, id: Uuid) -> Result<Arc<Opened>, DeskError> {
    if let Ok(cache) = state.opened().lock() {
        if let Some((_, opened)) = cache.0.iter().find(|(i, _)| *i == id) {
            return Ok(opened.clone());
        }
    }
    let staging = scratch_dir(state)?;
    let fetched = state
        .client()
        .fetch_document(&id, staging.path())
        .await
        .map_err(from_client)?;
    let paths = fetched.files.clone();
    let attachments = fetched.manifest.attachments.clone();
    let files = tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .zip(attachments)
            .map(|(path, a)| {
                std::fs::read(path)
                    .map(|bytes| (a.name, a.media_type, bytes))
                    .map_err(|e| DeskError::Internal(format!("{}: {e}", path.display())))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| DeskError::Internal(e.to_string()))??;
    drop(staging);
    let certs = signer_certificates(state, id, &fetched.signers).await;
    let opened = Arc::new(Opened {
        certs,
        manifest: fetched.manifest,
        files,
        signers: fetched.signers,
        sealed_with: fetched.sealed_with,
        accepted_at: fetched.accepted_at,
        notices: fetched.notices,
    });
    if let Ok(mut register) = state.register().write() {
        register.remember_subject(id, opened.manifest.subject.clone());
        // Fetching makes the server record 01 when no receipt exists yet, as the CLI does.
    }
    if let Ok(mut cache) = state.opened().lock() {
        cache.0.push_front((id, opened.clone()));
        cache.0.truncate(OPENED_DOCUMENTS_MAX);
    }
    Ok(opened)
}

pub(super) struct AttachmentRow {
    index: usize,
    name: String,
    size: String,
}

/// A document's page.
#[derive(Template)]
#[template(path = "document.html")]
pub(super) struct DocumentPage<'a> {
    f: Frame<'a>,
    id: Uuid,
    heading: String,
    done: Option<String>,
    verified: bool,
    failure: String,
    classified: bool,
    class_label: String,
    seal_mark: Option<String>,
    seal_uncertified: bool,
    notices: Vec<String>,
    doc_type: String,
    code: String,
    subject: String,
    sender: String,
    promulgated: String,
    urgency_label: String,
    signer_line: String,
    due: String,
    signers: Vec<(String, String)>,
    certs: Vec<(String, String, String, String)>,
    accepted_line: String,
    digests: Vec<(String, String)>,
    attachments: Vec<AttachmentRow>,
    timeline: Vec<(String, String)>,
    incoming: String,
}

#[derive(Deserialize)]
pub(super) struct DocQuery {
    #[serde(default)]
    done: Option<String>,
}

pub(super) fn parse_uuid(raw: &str) -> Result<Uuid, DeskError> {
    Uuid::parse_str(raw).map_err(|_| DeskError::NotFound)
}

pub(super) fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub(super) async fn document(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<DocQuery>,
) -> Result<Response, DeskError> {
    committee(&state)?;
    let id = parse_uuid(&raw)?;
    if state
        .register()
        .read()
        .map(|r| r.get(&id).is_none())
        .unwrap_or(true)
    {
        refresh_register(&state).await?;
    }
    let row = state
        .register()
        .read()
        .map_err(|_| DeskError::Internal("register lock poisoned".into()))?
        .get(&id)
        .cloned()
        .ok_or(DeskError::NotFound)?;
    let f = frame(&state, &headers, "inbox", format!("/doc/{id}"));
    let t = f.t;
    let opened = open(&state, id).await;
    let item = &row.item;
    let mut timeline = Vec::new();
    if let Some(at) = &item.accepted_at {
        timeline.push((show_rfc3339(at), t.get("timeline-accepted")));
    }
    if let Some(at) = &item.fetched_at {
        timeline.push((show_rfc3339(at), t.get("timeline-fetched")));
    }
    timeline.push((
        String::new(),
        format!(
            "{}: {}",
            t.get("timeline-status"),
            status_label(&t, item.receipt_status.as_deref())
        ),
    ));
    let incoming = match (&row.incoming_number(), item.receipt_status.as_deref()) {
        (Some(n), _) => t.arg("incoming-number", "number", n),
        (None, Some("03" | "04" | "05" | "06")) => t.get("incoming-number-pending"),
        _ => String::new(),
    };
    let mark = item.sealed_with.as_ref();
    let mut page = DocumentPage {
        id,
        heading: format!("{} {}/{}", item.doc_type, item.number, item.notation),
        done: q
            .done
            .filter(|s| ReceiptStatus::from_code(s).is_some())
            .map(|s| t.arg("action-done-notice", "status", &s)),
        verified: false,
        failure: String::new(),
        classified: item.classification != "thuong",
        class_label: t.get(class_key(&item.classification)),
        seal_mark: mark.map(|m| {
            if m.certified {
                t.arg("certified-cipher", "cipher", &m.cipher)
            } else {
                t.arg("uncertified-cipher", "cipher", &m.cipher)
            }
        }),
        seal_uncertified: mark.is_some_and(|m| !m.certified),
        notices: Vec::new(),
        doc_type: item.doc_type.clone(),
        code: format!("{}/{}", item.number, item.notation),
        subject: String::new(),
        sender: item.sender.clone(),
        promulgated: String::new(),
        urgency_label: t.get(urgency_key(item.urgency)),
        signer_line: String::new(),
        due: String::new(),
        signers: Vec::new(),
        certs: Vec::new(),
        accepted_line: String::new(),
        digests: Vec::new(),
        attachments: Vec::new(),
        timeline,
        incoming,
        f,
    };
    match opened {
        Ok(opened) => {
            let m = &opened.manifest;
            page.verified = true;
            page.notices = opened.notices.clone();
            page.subject = m.subject.clone();
            page.promulgated = format!(
                "{}, {}",
                m.promulgated.place,
                show_date(&m.promulgated.date)
            );
            page.signer_line = t.args(
                "doc-signer-line",
                &[
                    ("competence", &m.signer.competence),
                    ("position", &m.signer.position),
                    ("name", &m.signer.full_name),
                ],
            );
            page.due = m.due.as_deref().map(show_date).unwrap_or_default();
            page.signers = opened
                .signers
                .iter()
                .map(|(role, subject)| {
                    let key = match role {
                        Role::Organization => "role-organization",
                        Role::Person => "role-person",
                    };
                    (t.get(key), subject.clone())
                })
                .collect();
            page.certs = opened
                .certs
                .iter()
                .map(|c| {
                    let role = match c.role {
                        Role::Organization => t.get("role-organization"),
                        Role::Person => t.get("role-person"),
                    };
                    (
                        format!("{role}: {}", c.subject),
                        c.issuer.clone(),
                        t.args(
                            "doc-cert-validity",
                            &[("from", &c.not_before), ("to", &c.not_after)],
                        ),
                        c.fingerprint.clone(),
                    )
                })
                .collect();
            page.accepted_line = t.arg(
                "doc-accepted-at",
                "time",
                &show_rfc3339(&opened.accepted_at),
            );
            page.digests = m
                .attachments
                .iter()
                .map(|a| (a.name.clone(), a.sha256.clone()))
                .collect();
            page.attachments = m
                .attachments
                .iter()
                .enumerate()
                .map(|(index, a)| AttachmentRow {
                    index,
                    name: a.name.clone(),
                    size: human_size(a.size),
                })
                .collect();
            if opened.sealed_with.is_some() {
                page.seal_uncertified = opened.sealed_with.as_ref().is_some_and(|m| !m.certified);
            }
        }
        Err(error) => {
            page.failure = format!("{} [{}]", error, error.code());
        }
    }
    html(&page)
}

#[derive(Deserialize)]
pub(super) struct FileQuery {
    #[serde(default)]
    inline: Option<String>,
}

pub(super) async fn file(
    State(state): State<DeskState>,
    Path((raw, index)): Path<(String, usize)>,
    Query(q): Query<FileQuery>,
) -> Result<Response, DeskError> {
    committee(&state)?;
    let id = parse_uuid(&raw)?;
    let opened = open(&state, id).await?;
    let (name, media_type, bytes) = opened.files.get(index).ok_or(DeskError::NotFound)?;
    // Only types a browser shows without running code may open in a tab; everything else
    // is a download. The CSP's sandbox-free default-src 'none' still applies to both.
    let viewable = matches!(
        media_type.as_str(),
        "application/pdf" | "text/plain" | "image/png" | "image/jpeg"
    );
    let disposition = if q.inline.is_some() && viewable {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let value = format!(
        "{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(name)
    );
    let mut response = bytes.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(if viewable {
            media_type
        } else {
            "application/octet-stream"
        })
        .map_err(|e| DeskError::Internal(e.to_string()))?,
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&value).map_err(|e| DeskError::Internal(e.to_string()))?,
    );
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct ReceiptForm {
    status: String,
    #[serde(default)]
    note: String,
}

pub(super) async fn receipt(
    State(state): State<DeskState>,
    Path(raw): Path<String>,
    Form(form): Form<ReceiptForm>,
) -> Result<Response, DeskError> {
    committee(&state)?;
    let id = parse_uuid(&raw)?;
    let Some(status) = ReceiptStatus::from_code(&form.status) else {
        return Err(DeskError::Input(format!(
            "status {:?} is not one of {}",
            form.status,
            ReceiptStatus::list()
        )));
    };
    let note = form.note.trim();
    if status == ReceiptStatus::Returned && note.is_empty() {
        return Err(DeskError::Input(
            "returning a document (02) needs the reason in the note".into(),
        ));
    }
    let answer = state
        .client()
        .acknowledge(&id, status, note)
        .await
        .map_err(from_client)?;
    if let Ok(mut register) = state.register().write() {
        register.set_status(&id, &answer.status, answer.incoming_number);
    }
    Ok(Redirect::to(&format!("/doc/{id}?done={}", answer.status)).into_response())
}
