//! Who is calling: the identity of the verified client certificate, as an extractor.
//!
//! The TLS layer verified the certificate during the handshake; the accept loop parses
//! it once per connection and attaches the result to every request on that connection
//! as a [`PeerCert`]. Handlers take a [`Caller`], which also requires the identity to be
//! known to the organisation directory. A handler that does not take a `Caller` still
//! runs only for verified certificates, because the handshake refuses everything else.
//!
//! A connection also keeps its certificate chain as a [`PeerChain`], re-verified before a
//! request whenever the trust material was reloaded since the last check (or the leaf's
//! validity ended, or a minute passed), so that a revocation or an expiry reaches
//! connections opened before it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rustls::pki_types::CertificateDer;

use super::AppState;
use super::error::ApiError;
use super::tls::{PeerRefusal, TrustReloader};
use crate::directory::OrgId;
use crate::pki::{CertInfo, Identity};

/// The parsed client certificate of a connection, attached to each of its requests.
#[derive(Clone, Debug)]
pub struct PeerCert(pub Arc<Result<CertInfo, String>>);

impl PeerCert {
    /// The identity URI for log lines, or a marker when there is none.
    pub fn log_label(&self) -> String {
        match self.0.as_ref() {
            Ok(info) => info.identity.uri(),
            Err(_) => "-".to_owned(),
        }
    }
}

/// The longest a verified chain is trusted without a reload before it is checked again:
/// it bounds how late an expired CRL (or an intermediate's expiry) is noticed on an open
/// connection.
const REVERIFY_AFTER: Duration = Duration::from_secs(60);

/// A connection's client certificate chain and when it was last verified.
pub struct PeerChain {
    chain: Vec<CertificateDer<'static>>,
    /// The end of the leaf's validity, when known.
    not_after: Option<SystemTime>,
    checked: Mutex<Checked>,
}

struct Checked {
    /// The trust generation the chain was last verified against.
    generation: u64,
    /// When the verdict must be renewed even without a reload.
    until: Instant,
}

impl PeerChain {
    /// A chain (leaf first) that the handshake verified against trust `generation`;
    /// `not_after` is the end of the leaf's validity.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        not_after: Option<SystemTime>,
        generation: u64,
    ) -> Self {
        let until = next_check(not_after);
        PeerChain {
            chain,
            not_after,
            checked: Mutex::new(Checked { generation, until }),
        }
    }

    /// Whether the chain still passes the trust in force. Cheap (an atomic load and a
    /// clock read) unless the trust changed or the verdict is due for renewal.
    pub fn check(&self, trust: &TrustReloader) -> Result<(), ApiError> {
        // Read the generation before verifying: a reload during the verification makes
        // the next request verify again rather than trust a verdict on old material.
        let generation = trust.generation();
        let Ok(mut checked) = self.checked.lock() else {
            // A panicked holder: refuse rather than guess.
            return Err(ApiError::Unavailable(
                "the connection's certificate could not be re-checked".into(),
            ));
        };
        if checked.generation == generation && Instant::now() < checked.until {
            return Ok(());
        }
        match trust.verify_peer(&self.chain) {
            Ok(()) => {
                *checked = Checked {
                    generation,
                    until: next_check(self.not_after),
                };
                Ok(())
            }
            Err(PeerRefusal::Revoked) => Err(ApiError::CertificateRevoked),
            Err(PeerRefusal::Expired) => Err(ApiError::CertificateExpired),
            Err(PeerRefusal::Unavailable) => Err(ApiError::Unavailable(
                "the server's trust material is unusable; retry later".into(),
            )),
            Err(PeerRefusal::Untrusted(detail)) => Err(ApiError::CertificateUntrusted(detail)),
        }
    }
}

/// When a verdict taken now must be renewed: within [`REVERIFY_AFTER`], and just after the
/// leaf stops being valid (the verifier compares whole seconds, hence the extra second).
fn next_check(not_after: Option<SystemTime>) -> Instant {
    let mut wait = REVERIFY_AFTER;
    if let Some(end) = not_after {
        let left = end
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        wait = wait.min(left + Duration::from_secs(1));
    }
    Instant::now() + wait
}

/// A caller whose certificate is verified and whose identity the directory knows.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The identity.
    pub identity: Identity,
    /// The certificate it was read from.
    pub cert: CertInfo,
}

impl Caller {
    /// The organisation, when the caller is a committee.
    pub fn org(&self) -> Option<&OrgId> {
        match &self.identity {
            Identity::Org(id) => Some(id),
            Identity::Auditor(_) | Identity::Person(_) => None,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<PeerCert>()
            .ok_or_else(|| ApiError::IdentityInvalid("no client certificate".into()))?;
        let cert = match peer.0.as_ref() {
            Ok(info) => info.clone(),
            Err(reason) => return Err(ApiError::IdentityInvalid(reason.clone())),
        };
        let known = match &cert.identity {
            Identity::Org(id) => state.directory().org(id).is_some(),
            Identity::Auditor(scope) => state.directory().auditor(scope).is_some(),
            // A person's document-signing certificate signs for its organisation; it is
            // not a party that connects. (It lacks clientAuth anyway; this holds even
            // if a CA issued one with it.)
            Identity::Person(_) => {
                return Err(ApiError::IdentityInvalid(format!(
                    "{} is a person's signing certificate, not a TLS identity",
                    cert.identity.uri()
                )));
            }
        };
        if !known {
            return Err(ApiError::UnknownIdentity(cert.identity.uri()));
        }
        Ok(Caller {
            identity: cert.identity.clone(),
            cert,
        })
    }
}
