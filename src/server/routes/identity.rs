//! `GET /v1/whoami`: the caller's identity as the server sees it.

use axum::Json;
use axum::extract::State;

use crate::api::{CertificateView, WhoAmI};
use crate::pki::Identity;
use crate::server::AppState;
use crate::server::auth::Caller;

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
    let cert = caller.cert;
    Json(WhoAmI {
        kind: kind.to_owned(),
        id,
        uri: caller.identity.uri(),
        name,
        status,
        certificate: CertificateView {
            subject: cert.subject,
            issuer: cert.issuer,
            serial: cert.serial,
            fingerprint_sha256: cert.fingerprint_sha256,
            not_before: cert.not_before,
            not_after: cert.not_after,
        },
    })
}
