//! The desk's screens: routes, handlers and their compile-time-checked templates
//! (askama, `src/desk/templates/`). Every string comes from the catalogue ([`Tr`]).
//!
//! This module holds the routes, the frame every page shares and the small helpers the
//! screens share; each screen (or pair of screens) has a file: `inbox`, `document`,
//! `compose` (with the send result), `outgoing`, `audit`.

use askama::Template;
use axum::Router;
use axum::extract::Form;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n::{Lang, Tr};
use super::{DeskError, DeskRole, DeskState, LANG_COOKIE, lang_of};
use crate::client::ClientError;
use crate::directory::OrgId;
use crate::document::receipt::ReceiptStatus;

mod audit;
mod compose;
mod document;
mod inbox;
mod outgoing;

use self::{audit::*, compose::*, document::*, inbox::*, outgoing::*};
pub use document::{CertLine, Opened, OpenedCache, SentCache};
pub use inbox::{InboxPage, InboxRow, refresh_register, render_inbox};

/// The stylesheet, served from the binary.
const DESK_CSS: &str = include_str!("../assets/desk.css");
/// The script (polling, drag-and-drop, upload progress, preview), served from the binary.
const DESK_JS: &str = include_str!("../assets/desk.js");
/// Documents whose decrypted files the desk keeps in memory for display and download.
const OPENED_DOCUMENTS_MAX: usize = 8;
/// Send outcomes kept for the result page.
const SENT_OUTCOMES_MAX: usize = 64;
/// Documents per page of the outgoing register (each needs a status request).
const OUTGOING_ROWS: usize = 20;
/// Server listing page used to fill the register.
const LISTING_PAGE: usize = 500;
/// The receipt statuses' codes, in order (their one home is `ReceiptStatus`).
fn status_codes() -> impl Iterator<Item = &'static str> {
    ReceiptStatus::ALL.into_iter().map(ReceiptStatus::code)
}
/// Classification wire names, in order.
const CLASSES: [&str; 4] = ["thuong", "mat", "toi-mat", "tuyet-mat"];

/// The routes (behind `super::guard`, added by [`super::app`]).
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
        Some(code) if ReceiptStatus::from_code(code).is_some() => t.get(&format!("status-{code}")),
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
