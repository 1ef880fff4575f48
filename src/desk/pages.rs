//! The desk's screens: routes, handlers and their compile-time-checked templates
//! (askama, `src/desk/templates/`). Every string comes from the catalogue ([`Tr`]).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;

use super::i18n::{Lang, Tr};
use super::register::{self, Filter, RegisterItem, show_date, show_rfc3339, show_time};
use super::{DeskError, DeskRole, DeskState, LANG_COOKIE, lang_of};
use crate::api::ListPage;
use crate::client::ClientError;
use crate::client::endpoints::ListQuery;
use crate::client::send::SendRequest;
use crate::directory::OrgId;
use crate::document::Role;
use crate::document::manifest::{BusinessKind, Classification, Urgency};

/// The stylesheet, served from the binary.
const DESK_CSS: &str = include_str!("assets/desk.css");
/// The script (polling, drag-and-drop, upload progress, preview), served from the binary.
const DESK_JS: &str = include_str!("assets/desk.js");
/// Documents whose decrypted files the desk keeps in memory for display and download.
const OPENED_DOCUMENTS_MAX: usize = 8;
/// Send outcomes kept for the result page.
const SENT_OUTCOMES_MAX: usize = 64;
/// Documents per page of the outgoing register (each needs a status request).
const OUTGOING_ROWS: usize = 20;
/// Server listing page used to fill the register.
const LISTING_PAGE: usize = 500;
/// The receipt statuses a clerk may sign here.
const STATUSES: [&str; 9] = ["01", "02", "03", "04", "05", "06", "13", "15", "16"];
/// Classification wire names, in order.
const CLASSES: [&str; 4] = ["thuong", "mat", "toi-mat", "tuyet-mat"];

/// The routes (behind [`super::guard`], added by [`super::app`]).
pub fn routes() -> Router<DeskState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/assets/desk.css", get(css))
        .route("/assets/desk.js", get(js))
        .route("/lang", post(set_lang))
        .route("/inbox", get(inbox))
        .route("/inbox/poll", get(poll))
        .route("/doc/{id}", get(document))
        .route("/doc/{id}/file/{index}", get(file))
        .route("/doc/{id}/receipt", post(receipt))
        .route("/compose", get(compose).post(send))
        .route("/sent/{id}", get(sent))
        .route("/outgoing", get(outgoing))
        .route("/audit", get(audit))
        .route("/audit.csv", get(audit_csv))
        .route("/audit/doc/{id}", get(audit_document))
}

/// What every page's frame (base.html) shows.
pub struct Frame<'a> {
    /// The catalogue in the request's language.
    pub t: Tr<'a>,
    /// The session's CSRF token, carried by every form.
    pub csrf: &'a str,
    /// Who the desk speaks for.
    pub who: String,
    /// Whether this is a security officer's desk.
    pub auditor: bool,
    /// The current section.
    pub active: &'static str,
    /// Where the language switch returns to.
    pub back: String,
}

fn frame<'a>(
    state: &'a DeskState,
    headers: &HeaderMap,
    active: &'static str,
    back: String,
) -> Frame<'a> {
    let t = Tr::new(state.catalogue(), lang_of(headers));
    let (who, auditor) = match state.role() {
        DeskRole::Committee(org) => (t.arg("signed-in-as", "org", org.as_str()), false),
        DeskRole::Auditor(scope) => (t.arg("auditor-as", "scope", scope.as_str()), true),
    };
    Frame {
        t,
        csrf: state.csrf_token(),
        who,
        auditor,
        active,
        back,
    }
}

fn html(template: &impl Template) -> Result<Response, DeskError> {
    let body = template
        .render()
        .map_err(|e| DeskError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    code: &'a str,
    message: String,
}

/// The bare page of a refusal: its code and sentence.
pub fn error_page(error: &DeskError) -> axum::response::Html<String> {
    let page = ErrorPage {
        code: error.code(),
        message: error.to_string(),
    };
    axum::response::Html(
        page.render()
            .unwrap_or_else(|_| format!("{}: {}", error.code(), error)),
    )
}

fn committee(state: &DeskState) -> Result<OrgId, DeskError> {
    match state.role() {
        DeskRole::Committee(org) => Ok(org.clone()),
        DeskRole::Auditor(_) => Err(DeskError::WrongProfile(
            "this is a security officer's desk: committees' screens need a committee profile",
        )),
    }
}

/// Client errors the clerk caused are input errors; the rest keep the server's code.
fn from_client(error: ClientError) -> DeskError {
    match error {
        ClientError::Input(message) => DeskError::Input(message),
        other if other.is_input() => DeskError::Input(other.to_string()),
        other => DeskError::Client(other),
    }
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        DESK_CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        DESK_JS,
    )
}

#[derive(Deserialize)]
struct LangForm {
    lang: String,
    #[serde(default)]
    back: String,
}

async fn set_lang(Form(form): Form<LangForm>) -> Result<Response, DeskError> {
    let lang = Lang::from_cookie(Some(&form.lang));
    // Only a path on this desk: never another origin, never a protocol-relative URL.
    let back = if form.back.starts_with('/') && !form.back.starts_with("//") {
        form.back
    } else {
        "/inbox".to_owned()
    };
    let mut response = Redirect::to(&back).into_response();
    let cookie = format!("{LANG_COOKIE}={}; SameSite=Strict; Path=/", lang.tag());
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| DeskError::Internal(e.to_string()))?,
    );
    Ok(response)
}

fn urgency_key(u: u8) -> &'static str {
    match u {
        0 => "urgency-0",
        1 => "urgency-1",
        2 => "urgency-2",
        3 => "urgency-3",
        _ => "urgency-4",
    }
}

fn class_key(c: &str) -> &'static str {
    match c {
        "mat" => "class-mat",
        "toi-mat" => "class-toi-mat",
        "tuyet-mat" => "class-tuyet-mat",
        _ => "class-thuong",
    }
}

fn status_label(t: &Tr<'_>, status: Option<&str>) -> String {
    match status {
        Some(code) if STATUSES.contains(&code) => t.get(&format!("status-{code}")),
        Some(other) => other.to_owned(),
        None => t.get("status-none"),
    }
}

fn seal_note(t: &Tr<'_>, mark: Option<&crate::seal::policy::SealMark>) -> String {
    match mark {
        Some(m) if !m.certified => t.arg("uncertified-cipher", "cipher", &m.cipher),
        _ => String::new(),
    }
}

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

fn filter_query(filter: &Filter, page: usize) -> String {
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

fn percent_encode(value: &str) -> String {
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

fn urgency_options(t: &Tr<'_>) -> Vec<(String, String)> {
    (0..=4u8)
        .map(|u| (u.to_string(), t.get(urgency_key(u))))
        .collect()
}

fn class_options(t: &Tr<'_>) -> Vec<(&'static str, String)> {
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
        statuses: STATUSES
            .iter()
            .map(|s| (*s, t.get(&format!("status-{s}"))))
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

async fn inbox(
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
struct PollQuery {
    #[serde(default)]
    after: Option<u64>,
}

async fn poll(
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
async fn signer_certificates(
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
pub struct OpenedCache(VecDeque<(Uuid, Arc<Opened>)>);

/// The outcomes of the last few sends, for the result page.
#[derive(Default)]
pub struct SentCache(VecDeque<(Uuid, Arc<crate::client::send::SendOutcome>)>);

/// A private directory (0700, removed when dropped) for plaintext the desk must hand to
/// file-based client code: in memory-backed storage when the system has it
/// (`$XDG_RUNTIME_DIR`, then `/dev/shm`), so that decrypted files and uploads do not reach
/// a disk; else in the profile's state directory.
fn scratch_dir(state: &DeskState) -> Result<tempfile::TempDir, DeskError> {
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
async fn open(state: &DeskState, id: Uuid) -> Result<Arc<Opened>, DeskError> {
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

struct AttachmentRow {
    index: usize,
    name: String,
    size: String,
}

/// A document's page.
#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPage<'a> {
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
struct DocQuery {
    #[serde(default)]
    done: Option<String>,
}

fn parse_uuid(raw: &str) -> Result<Uuid, DeskError> {
    Uuid::parse_str(raw).map_err(|_| DeskError::NotFound)
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

async fn document(
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
            .filter(|s| STATUSES.contains(&s.as_str()))
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
struct FileQuery {
    #[serde(default)]
    inline: Option<String>,
}

async fn file(
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
struct ReceiptForm {
    status: String,
    #[serde(default)]
    note: String,
}

async fn receipt(
    State(state): State<DeskState>,
    Path(raw): Path<String>,
    Form(form): Form<ReceiptForm>,
) -> Result<Response, DeskError> {
    committee(&state)?;
    let id = parse_uuid(&raw)?;
    if !STATUSES.contains(&form.status.as_str()) {
        return Err(DeskError::Input(format!(
            "status {:?} is not one of {}",
            form.status,
            STATUSES.join(", ")
        )));
    }
    let note = form.note.trim();
    if form.status == "02" && note.is_empty() {
        return Err(DeskError::Input(
            "returning a document (02) needs the reason in the note".into(),
        ));
    }
    let answer = state
        .client()
        .acknowledge(&id, &form.status, note)
        .await
        .map_err(from_client)?;
    if let Ok(mut register) = state.register().write() {
        register.set_status(&id, &answer.status, answer.incoming_number);
    }
    Ok(Redirect::to(&format!("/doc/{id}?done={}", answer.status)).into_response())
}

/// One organisation in the recipients tree.
struct TreeNode {
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
struct ComposePage<'a> {
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
struct ComposeQuery {
    #[serde(default)]
    business: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    response_for: String,
}

fn tree_of(t: &Tr<'_>, orgs: &[crate::api::DirectoryOrg]) -> Vec<TreeNode> {
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

async fn compose(
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
struct Uploads {
    dir: tempfile::TempDir,
    files: Vec<PathBuf>,
}

fn safe_file_name(raw: &str) -> Result<String, DeskError> {
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

fn opt(fields: &HashMap<String, String>, name: &str) -> Option<String> {
    fields
        .get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn parse_request(
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

async fn send(
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
struct SentPage<'a> {
    f: Frame<'a>,
    id: Uuid,
    accepted_at: String,
    recipients: String,
    payload_sha256: String,
    payload_size: String,
    log_index: u64,
    notices: Vec<String>,
}

async fn sent(
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

struct GridRow {
    org: String,
    fetched: String,
    code: String,
    status: String,
    note: String,
}

struct OutgoingDoc {
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
struct OutgoingPage<'a> {
    f: Frame<'a>,
    docs: Vec<OutgoingDoc>,
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct OutgoingQuery {
    #[serde(default)]
    before: Option<u64>,
}

async fn outgoing(
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

struct ReportLine {
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
struct AuditPage<'a> {
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

fn auditor(state: &DeskState) -> Result<(), DeskError> {
    match state.role() {
        DeskRole::Auditor(_) => Ok(()),
        DeskRole::Committee(_) => Err(DeskError::WrongProfile(
            "the delivery report is for security officers' profiles",
        )),
    }
}

/// The checkpoint lines, or the alarm when the log is not consistent with what this desk
/// saw before.
async fn checkpoint_state(
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

async fn report_rows(
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

async fn audit(
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

fn csv_cell(value: &str) -> String {
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

async fn audit_csv(
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

async fn audit_document(
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
