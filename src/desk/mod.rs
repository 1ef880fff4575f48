//! The desk: a web console on the clerk's own machine (`congvan desk --profile P`).
//!
//! It serves server-rendered pages on loopback only, holds the profile's keys, and talks
//! to the congvan server through [`crate::client::Client`] with the profile's mutual-TLS
//! identity, exactly as the CLI does: documents are verified and decrypted here, never on
//! the server.
//!
//! The desk defends itself like a local admin console (docs/DESK.md):
//! - it binds loopback addresses only ([`bind_loopback`]);
//! - a one-time launch token in the printed URL becomes an HttpOnly, SameSite=Strict
//!   session cookie; every other request without that cookie is refused;
//! - a `Host` that is not its own loopback name and port is refused (DNS rebinding);
//! - a state-changing request must carry its own `Origin` and the session's CSRF token;
//! - every page carries a strict Content-Security-Policy with no external origin, and
//!   every asset is served from the binary.
//!
//! This module and `server/` are the two that know axum: the desk is a second, local HTTP
//! server with its own state, and shares no routes with the congvan server.

pub mod i18n;
pub mod pages;
pub mod register;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::net::TcpListener;

use crate::client::Client;
use crate::directory::OrgId;
use crate::pki::Identity;
use i18n::{Catalogue, Lang};
use register::Register;

/// The session cookie's name, before the port: browsers scope cookies by host, not by
/// port, so each desk on this machine names its own (`congvan_desk_<port>`).
pub const SESSION_COOKIE: &str = "congvan_desk";
/// The language cookie's name.
pub const LANG_COOKIE: &str = "congvan_desk_lang";
/// The Content-Security-Policy of every answer: nothing from any other origin, no inline
/// script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";
/// Largest upload (all attachments of one document together), in bytes.
pub const UPLOAD_BYTES_MAX: usize = 1 << 30;

/// Errors of the desk: each refusal has an HTTP status, a stable code and a sentence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeskError {
    /// The desk was asked to listen on an address other people can reach.
    #[error("the desk listens on loopback only (127.0.0.1 or ::1), not {0}")]
    NotLoopback(SocketAddr),
    /// The listener could not be opened.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        cause: String,
    },
    /// The request has no valid session (no launch token, or a wrong cookie).
    #[error("this desk needs the link it printed at start (the one-time token); open that link")]
    SessionRequired,
    /// The `Host` header is not the desk's own loopback name and port.
    #[error("the Host header {0:?} is not this desk's own address")]
    HostRefused(String),
    /// A state-changing request came from another origin (or named none).
    #[error(
        "a change was requested from another origin ({0:?}); only the desk's own pages may ask"
    )]
    OriginRefused(String),
    /// A state-changing request lacked the session's CSRF token.
    #[error("the form's security token is missing or wrong; reload the page and try again")]
    CsrfInvalid,
    /// What the clerk entered cannot be used.
    #[error("{0}")]
    Input(String),
    /// No such page or document.
    #[error("not found")]
    NotFound,
    /// The action is not for this profile (a committee's action on an auditor's desk).
    #[error("{0}")]
    WrongProfile(&'static str),
    /// The congvan server or the checks on its answers refused.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// A template or the catalogue failed (a bug, not input).
    #[error("internal error: {0}")]
    Internal(String),
}

impl DeskError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            DeskError::SessionRequired => StatusCode::UNAUTHORIZED,
            DeskError::HostRefused(_) => StatusCode::MISDIRECTED_REQUEST,
            DeskError::OriginRefused(_) | DeskError::CsrfInvalid | DeskError::WrongProfile(_) => {
                StatusCode::FORBIDDEN
            }
            DeskError::Input(_) => StatusCode::BAD_REQUEST,
            DeskError::NotFound => StatusCode::NOT_FOUND,
            DeskError::Client(_) => StatusCode::BAD_GATEWAY,
            DeskError::NotLoopback(_) | DeskError::Bind { .. } | DeskError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable machine-readable code (documented in docs/API.md).
    pub fn code(&self) -> &str {
        match self {
            DeskError::NotLoopback(_) => "desk_not_loopback",
            DeskError::Bind { .. } => "desk_bind_failed",
            DeskError::SessionRequired => "desk_session_required",
            DeskError::HostRefused(_) => "desk_host_refused",
            DeskError::OriginRefused(_) => "desk_origin_refused",
            DeskError::CsrfInvalid => "desk_csrf_invalid",
            DeskError::Input(_) => "desk_input_invalid",
            DeskError::NotFound => "desk_not_found",
            DeskError::WrongProfile(_) => "desk_wrong_profile",
            DeskError::Client(e) => e.api_code().unwrap_or("desk_server_refused"),
            DeskError::Internal(_) => "desk_internal",
        }
    }
}

impl IntoResponse for DeskError {
    fn into_response(self) -> Response {
        let status = self.status();
        // The page is deliberately bare: an error may be answered before any session
        // exists, so it must not need the catalogue's language cookie or the layout.
        let body = pages::error_page(&self);
        let mut response = (status, body).into_response();
        if let Ok(code) = HeaderValue::from_str(self.code()) {
            response.headers_mut().insert("x-desk-error", code);
        }
        response
    }
}

/// Who the profile speaks for.
#[derive(Clone, Debug)]
pub enum DeskRole {
    /// A committee's clerk: registers, compose, receive.
    Committee(OrgId),
    /// A security officer: the delivery report and the log.
    Auditor(OrgId),
}

/// The desk's state: one cheap handle shared by every request.
#[derive(Clone)]
pub struct DeskState(Arc<Inner>);

struct Inner {
    client: Client,
    role: DeskRole,
    port: u16,
    launch_token: Mutex<Option<String>>,
    session: String,
    csrf: String,
    catalogue: Catalogue,
    register: RwLock<Register>,
    opened: Mutex<pages::OpenedCache>,
    sent: Mutex<pages::SentCache>,
    deadlines: crate::config::Deadlines,
}

fn random_token() -> Result<String, DeskError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DeskError::Internal("no randomness for the session token".into()))?;
    Ok(crate::pki::identity::hex(&bytes))
}

impl DeskState {
    /// A desk for `client`'s profile that will be reached on loopback port `port`.
    pub fn new(client: Client, port: u16) -> Result<DeskState, DeskError> {
        let chain = crate::pki::pem::read_certs(&client.profile().tls_cert)
            .map_err(|e| DeskError::Client(e.into()))?;
        let leaf = chain.first().ok_or_else(|| {
            DeskError::Input("the profile's TLS certificate file is empty".into())
        })?;
        let role = match crate::pki::CertInfo::from_der(leaf)
            .map_err(|e| DeskError::Client(e.into()))?
            .identity
        {
            Identity::Org(org) => DeskRole::Committee(org),
            Identity::Auditor(scope) => DeskRole::Auditor(scope),
            Identity::Person(_) => {
                return Err(DeskError::Input(
                    "the profile's TLS certificate is a person's signing certificate".into(),
                ));
            }
        };
        let catalogue = Catalogue::load().map_err(|e| DeskError::Internal(e.to_string()))?;
        Ok(DeskState(Arc::new(Inner {
            deadlines: client.profile().deadlines.clone(),
            client,
            role,
            port,
            launch_token: Mutex::new(Some(random_token()?)),
            session: random_token()?,
            csrf: random_token()?,
            catalogue,
            register: RwLock::new(Register::default()),
            opened: Mutex::new(pages::OpenedCache::default()),
            sent: Mutex::new(pages::SentCache::default()),
        })))
    }

    /// The URL to open once: it carries the one-time launch token (`None` once used).
    pub fn launch_url(&self) -> Option<String> {
        let token = self.0.launch_token.lock().ok()?.clone()?;
        Some(format!("http://127.0.0.1:{}/?token={token}", self.0.port))
    }

    /// The session's CSRF token (for tests that replay forms outside a browser).
    pub fn csrf_token(&self) -> &str {
        &self.0.csrf
    }

    /// Who the profile speaks for.
    pub fn role(&self) -> &DeskRole {
        &self.0.role
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.0.client
    }

    /// The message catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.0.catalogue
    }

    /// The incoming register.
    pub fn register(&self) -> &RwLock<Register> {
        &self.0.register
    }

    /// The deadlines overdue rows are judged by.
    pub fn deadlines(&self) -> &crate::config::Deadlines {
        &self.0.deadlines
    }

    pub(crate) fn opened(&self) -> &Mutex<pages::OpenedCache> {
        &self.0.opened
    }

    pub(crate) fn sent(&self) -> &Mutex<pages::SentCache> {
        &self.0.sent
    }

    /// The name of this desk's session cookie.
    pub fn session_cookie(&self) -> String {
        format!("{SESSION_COOKIE}_{}", self.0.port)
    }

    fn own_hosts(&self) -> [String; 3] {
        let port = self.0.port;
        [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
    }
}

/// Opens the desk's listener, refusing any address that is not loopback.
pub async fn bind_loopback(addr: SocketAddr) -> Result<TcpListener, DeskError> {
    let loopback = match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    if !loopback {
        return Err(DeskError::NotLoopback(addr));
    }
    TcpListener::bind(addr).await.map_err(|e| DeskError::Bind {
        addr,
        cause: e.to_string(),
    })
}

/// The desk's routes behind its defences.
pub fn app(state: DeskState) -> Router {
    pages::routes()
        .layer(axum::extract::DefaultBodyLimit::max(UPLOAD_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Serves the desk on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: DeskState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compares two secrets without revealing where they differ: every byte is looked at
/// whatever the earlier ones were (the length of a token is not secret).
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language of a request.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_cookie(cookie(headers, LANG_COOKIE))
}

/// The desk's defences, in order: Host, then the launch token or the session cookie,
/// then (for anything but GET and HEAD) Origin and the CSRF token. Every answer gets the
/// security headers.
async fn guard(State(state): State<DeskState>, request: Request, next: Next) -> Response {
    let mut response = match check(&state, &request) {
        Ok(Some(launch)) => launch,
        Ok(None) => uniform(next.run(request).await),
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    let fixed = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        // Not "no-referrer": with it, browsers send `Origin: null` on the desk's own form
        // posts, and the Origin check could not tell them from a foreign page's.
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Gives axum's own refusals (a query, form or path it could not read; an unknown route
/// or method) the desk's shape: a code and a sentence.
fn uniform(response: Response) -> Response {
    let status = response.status();
    if !status.is_client_error() || response.headers().contains_key("x-desk-error") {
        return response;
    }
    match status {
        StatusCode::NOT_FOUND => DeskError::NotFound.into_response(),
        StatusCode::PAYLOAD_TOO_LARGE => DeskError::Input(format!(
            "the upload is larger than the desk takes ({UPLOAD_BYTES_MAX} bytes)"
        ))
        .into_response(),
        _ => DeskError::Input(format!(
            "the request is not what this page takes ({})",
            status.canonical_reason().unwrap_or("refused")
        ))
        .into_response(),
    }
}

/// `Ok(Some(answer))` ends the request (the launch redirect); `Ok(None)` lets it through.
fn check(state: &DeskState, request: &Request) -> Result<Option<Response>, DeskError> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let own_hosts = state.own_hosts();
    if !own_hosts.iter().any(|own| own == host) {
        return Err(DeskError::HostRefused(host.chars().take(100).collect()));
    }
    let query = request.uri().query();
    if request.uri().path() == "/" && request.method() == Method::GET {
        if let Some(offered) = query_param(query, "token") {
            return launch(state, offered).map(Some);
        }
    }
    let session_ok =
        cookie(headers, &state.session_cookie()).is_some_and(|c| same_secret(c, &state.0.session));
    if !session_ok {
        return Err(DeskError::SessionRequired);
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let own_origin = format!("http://{host}");
        if origin != own_origin {
            return Err(DeskError::OriginRefused(origin.chars().take(100).collect()));
        }
        let token = headers
            .get("x-csrf-token")
            .and_then(|h| h.to_str().ok())
            .or_else(|| query_param(query, "csrf"))
            .unwrap_or_default();
        if !same_secret(token, &state.0.csrf) {
            return Err(DeskError::CsrfInvalid);
        }
    }
    Ok(None)
}

/// Trades the one-time launch token for the session cookie, once.
fn launch(state: &DeskState, offered: &str) -> Result<Response, DeskError> {
    let mut slot = state
        .0
        .launch_token
        .lock()
        .map_err(|_| DeskError::Internal("launch token lock poisoned".into()))?;
    let valid = slot.as_deref().is_some_and(|t| same_secret(t, offered));
    if !valid {
        return Err(DeskError::SessionRequired);
    }
    *slot = None;
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        state.session_cookie(),
        state.0.session
    );
    let mut response = (StatusCode::SEE_OTHER, Body::empty()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/inbox"));
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| DeskError::Internal(e.to_string()))?,
    );
    Ok(response)
}
