//! The signed organisation directory and the server's public keys.

use axum::Json;
use axum::extract::State;

use crate::api::{
    self, DIRECTORY_TYPE, DirectoryAuditor, DirectoryOrg, DirectoryStatement, ServerKeysResponse,
};
use crate::directory::OrgStatus;
use crate::notary::{KeyPurpose, Signed};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::error::ApiError;

/// `GET /v1/directory`: the tree, signed with the server's directory key.
pub async fn directory(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Signed>, ApiError> {
    let statement = DirectoryStatement {
        kind: DIRECTORY_TYPE.to_owned(),
        issued_at: api::now_rfc3339(),
        orgs: state
            .directory
            .orgs()
            .map(|o| DirectoryOrg {
                id: o.id.to_string(),
                name: o.name.clone(),
                parent: o.parent.as_ref().map(ToString::to_string),
                status: match &o.status {
                    OrgStatus::Active => "active".into(),
                    OrgStatus::Merged { .. } => "merged".into(),
                    OrgStatus::Retired => "retired".into(),
                },
                merged_into: match &o.status {
                    OrgStatus::Merged { into } => Some(into.to_string()),
                    _ => None,
                },
                required_signatures: o.required_signatures.clone(),
            })
            .collect(),
        auditors: state
            .directory
            .auditors()
            .map(|a| DirectoryAuditor {
                scope: a.scope.to_string(),
                name: a.name.clone(),
            })
            .collect(),
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
        keys: state.keys.public_keys(),
    })
}
