//! Who is calling: the identity of the verified client certificate, as an extractor.
//!
//! The TLS layer verified the certificate during the handshake; the accept loop parses
//! it once per connection and attaches the result to every request on that connection
//! as a [`PeerCert`]. Handlers take a [`Caller`], which also requires the identity to be
//! known to the organisation directory. A handler that does not take a `Caller` still
//! runs only for verified certificates, because the handshake refuses everything else.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
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
