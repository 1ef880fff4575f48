//! The signed organisation directory and the server's public keys.

use axum::Json;
use axum::extract::State;

use crate::api::{
    self, CrlsResponse, DIRECTORY_TYPE, DirectoryAuditor, DirectoryOrg, DirectoryStatement,
    ServerKeysResponse,
};
use crate::directory::OrgStatus;
use crate::directory::endorsement::SignedEndorsement;
use crate::notary::{KeyPurpose, Signed};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;

/// `GET /v1/directory`: the tree, signed with the server's directory key.
pub async fn directory(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Signed>, ApiError> {
    let directory = state.directory();
    let statement = DirectoryStatement {
        kind: DIRECTORY_TYPE.to_owned(),
        issued_at: api::now_rfc3339(),
        orgs: directory
            .orgs()
            .map(|o| DirectoryOrg {
                id: o.id.to_string(),
                name: o.name.clone(),
                parent: o.parent.as_ref().map(ToString::to_string),
                status: match &o.status {
                    OrgStatus::Active => "active".into(),
                    OrgStatus::Merged { .. } => "merged".into(),
                    OrgStatus::Retired => "retired".into(),
                    OrgStatus::Planned => "planned".into(),
                },
                merged_into: match &o.status {
                    OrgStatus::Merged { into } => Some(into.to_string()),
                    _ => None,
                },
                code: o.code.clone(),
                required_signatures: o.required_signatures.clone(),
                encryption_cert: o
                    .encryption_cert
                    .as_ref()
                    .filter(|_| o.status.is_active())
                    .map(|c| String::from_utf8_lossy(c).into_owned()),
                // Served only with a certificate; the registry already dropped bytes that
                // do not parse, so a failure here only leaves the key unendorsed.
                encryption_endorsement: o
                    .encryption_endorsement
                    .as_deref()
                    .filter(|_| o.status.is_active() && o.encryption_cert.is_some())
                    .and_then(|b| SignedEndorsement::from_slice(b).ok()),
                signing_certs: o.signing_certs_pem.clone(),
            })
            .collect(),
        auditors: directory
            .auditors()
            .map(|a| DirectoryAuditor {
                scope: a.scope.to_string(),
                name: a.name.clone(),
            })
            .collect(),
        seal: (*state.seal).clone(),
    };
    let value = serde_json::to_value(&statement).map_err(|e| ApiError::Internal(e.to_string()))?;
    let signed = state
        .keys
        .sign(KeyPurpose::Directory, value)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(signed))
}

/// `GET /v1/server-keys`.
pub async fn server_keys(
    State(state): State<AppState>,
    _caller: Caller,
) -> Json<ServerKeysResponse> {
    Json(ServerKeysResponse {
        log_origin: state.log_origin.to_string(),
        keys: state.keys.public_keys(),
    })
}

/// `GET /v1/crls`: the CRLs signatures are checked against, for clients to check too.
///
/// Served from the trust snapshot that signature checks use, not re-read from disk: a
/// CRL file replaced on disk is served only once the server judges signatures by it, so
/// a client never sees a revocation that a submission made at the same moment could
/// still slip past.
pub async fn crls(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<CrlsResponse>, ApiError> {
    let trust = state
        .trust
        .current()
        .ok_or_else(|| ApiError::Unavailable("the server's trust material is unusable".into()))?;
    Ok(Json(CrlsResponse {
        crls: trust.signing.crl_texts().to_vec(),
    }))
}
