//! `GET /v1/whoami`: the caller's identity as the server sees it.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::directory::OrgStatus;
use crate::pki::{CertInfo, Identity};
use crate::server::AppState;
use crate::server::auth::Caller;

/// The body of `GET /v1/whoami`.
#[derive(Serialize)]
pub struct WhoAmI {
    /// `org` or `auditor`.
    kind: &'static str,
    /// The organisation id, or the auditor's scope.
    id: String,
    /// The SAN URI.
    uri: String,
    /// The organisation's (or auditor role's) name.
    name: String,
    /// The organisation's status (organisations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<OrgStatus>,
    /// The client certificate.
    certificate: CertInfo,
}

/// `GET /v1/whoami`.
pub async fn whoami(State(state): State<AppState>, caller: Caller) -> Json<WhoAmI> {
    let directory = state.directory();
    let (kind, id, name, status) = match &caller.identity {
        Identity::Org(id) => {
            let org = directory.org(id);
            (
                "org",
                id.to_string(),
                org.map(|o| o.name.clone()).unwrap_or_default(),
                org.map(|o| o.status.clone()),
            )
        }
        Identity::Auditor(scope) => (
            "auditor",
            scope.to_string(),
            state
                .directory()
                .auditor(scope)
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            None,
        ),
        // The `Caller` extractor never admits a person certificate.
        Identity::Person(id) => ("person", id.to_string(), String::new(), None),
    };
    Json(WhoAmI {
        kind,
        id,
        uri: caller.identity.uri(),
        name,
        status,
        certificate: caller.cert,
    })
}
