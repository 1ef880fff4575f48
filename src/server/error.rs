//! The API's error type: every refusal has an HTTP status, a stable machine-readable code
//! and a human sentence. Codes are documented in `docs/API.md` and never change meaning.
//!
//! Internal failures answer with a generic message; their cause goes to the log only.

pub use crate::api::{ErrorBody, ErrorDetail};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::document::{ManifestError, Role, RoleError};
use crate::exchange::ExchangeError;
use crate::pki::signing::SignatureError;
use crate::store::{BlobError, StoreError};

/// A refusal or failure, as the API reports it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The client certificate carries no usable congvan identity.
    #[error("the client certificate carries no usable identity: {0}")]
    IdentityInvalid(String),
    /// The connection's client certificate was revoked after the connection was opened.
    #[error("the client certificate of this connection has been revoked; the connection is closed")]
    CertificateRevoked,
    /// The connection's client certificate expired after the connection was opened.
    #[error("the client certificate of this connection has expired; the connection is closed")]
    CertificateExpired,
    /// The connection's client certificate no longer verifies for another reason.
    #[error(
        "the client certificate of this connection is no longer trusted ({0}); the connection is closed"
    )]
    CertificateUntrusted(String),
    /// This identity already has as many open connections as it may.
    #[error("this identity already has {0} open connections; reuse one (keep-alive) or close one")]
    TooManyConnections(usize),
    /// Every connection slot is busy.
    #[error("the server has no free connection slot; retry shortly")]
    ServerBusy,
    /// The certificate names an organisation or auditor role the directory does not know.
    #[error("{0} is not in the organisation directory")]
    UnknownIdentity(String),
    /// The caller's kind (committee or auditor) may not use this endpoint.
    #[error("{0}")]
    RoleForbidden(&'static str),
    /// No such route.
    #[error("no such endpoint: {0}")]
    RouteNotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// The request body or query is not what the endpoint takes.
    #[error("invalid request: {0}")]
    RequestInvalid(String),
    /// The request body is larger than the endpoint accepts.
    #[error("the request body exceeds {0} bytes")]
    BodyTooLarge(u64),
    /// The manifest was refused.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// A signature was refused.
    #[error("{role} signature: {error}", role = role.name())]
    Signature {
        /// Which signature.
        role: Role,
        /// Why.
        error: SignatureError,
    },
    /// A role the sender's policy requires has no signature.
    #[error("the sender's policy requires a {0} signature, and there is none")]
    SignatureRoleMissing(&'static str),
    /// Two signatures claim the same role, or one certificate signs for two roles.
    #[error("{0}")]
    SignatureRoleDuplicate(String),
    /// A signer's certificate names another organisation than the manifest's sender.
    #[error("the {role} signature was made by {signer}, not by the sender {sender}", role = role.name())]
    SignerMismatch {
        /// Which signature.
        role: Role,
        /// The signer's identity.
        signer: String,
        /// The manifest's sender.
        sender: String,
    },
    /// A signer's certificate does not fit the role it signs in (another organisation, the
    /// wrong kind of certificate, or a person other than the manifest's signer).
    #[error("{0}")]
    SignerRole(RoleError),
    /// The TLS client is not the manifest's sender.
    #[error("the manifest's sender is {manifest}, but this connection is {tls}")]
    SenderMismatch {
        /// The TLS identity.
        tls: String,
        /// The manifest's sender.
        manifest: String,
    },
    /// The sending organisation is merged or retired.
    #[error("organisation {0} and cannot send")]
    SenderInactive(String),
    /// The outgoing number and notation were already used in their numbering period.
    #[error(
        "{code} was already used by this sender in its numbering period, by document {earlier}; give the document a new number, or send it as an update or replacement of {earlier}"
    )]
    NumberInUse {
        /// The number and notation.
        code: String,
        /// The earlier document.
        earlier: String,
    },
    /// The incoming register of a year is closed.
    #[error("{0}")]
    RegisterClosed(String),
    /// The incoming register of a year still running cannot be closed.
    #[error("the register of {0} cannot be closed before the year has ended (Vietnam time)")]
    RegisterYearOpen(i32),
    /// A recipient is not in the directory.
    #[error("recipient {0} is not in the organisation directory")]
    RecipientUnknown(String),
    /// A recipient is merged or retired.
    #[error("recipient {0}")]
    RecipientInactive(String),
    /// The routing policy forbids this sender → recipient.
    #[error(
        "{from} may not send to {to}: only ancestors, descendants and configured routes are allowed"
    )]
    RoutingDenied {
        /// The sender.
        from: String,
        /// The recipient.
        to: String,
    },
    /// A classified document's recipient has no registered encryption certificate.
    #[error(
        "recipient {0} has no registered encryption key, so it cannot receive classified documents"
    )]
    RecipientNoEncryptionKey(String),
    /// The classification level may not be sealed with the server's declared cipher
    /// (`[seal]`): "Tối mật" and "Tuyệt mật" need a certified cipher, "Mật" too unless the
    /// operator allowed the uncertified one.
    #[error("{0}")]
    CipherNotCertified(#[from] crate::seal::policy::SealRefusal),
    /// A classified payload is not a sealed message of the accepted shape.
    #[error("the classified payload is not properly encrypted: {0}")]
    ClassifiedNotEncrypted(String),
    /// A classified payload is not encrypted to exactly the recipients' keys.
    #[error("{0}")]
    RecipientSetMismatch(String),
    /// A delivery receipt was refused.
    #[error("{0}")]
    ReceiptInvalid(String),
    /// A receipt's status breaks the status rules (docs/API.md, "Status rules").
    #[error("{0}")]
    Status(#[from] crate::document::status::StatusRefusal),
    /// A recall, update or replacement names a target it may not act on.
    #[error("{0}")]
    BusinessTargetInvalid(String),
    /// The id is taken by a different document.
    #[error("document id {0} is already used by a different document")]
    IdConflict(String),
    /// No such document visible to the caller.
    #[error("no such document")]
    DocumentNotFound,
    /// The path's document id is not a UUID.
    #[error("{0:?} is not a document id")]
    IdInvalid(String),
    /// The payload's digest differs from the manifest's.
    #[error("{0}")]
    PayloadDigestMismatch(String),
    /// The payload's size differs from the manifest's.
    #[error("{0}")]
    PayloadSizeMismatch(String),
    /// The upload ended before the payload was complete.
    #[error("the upload ended early: {0}")]
    UploadIncomplete(String),
    /// The payload has not been uploaded yet.
    #[error("the payload of this document has not been uploaded")]
    PayloadNotAvailable,
    /// The log entry is not one the caller may see.
    #[error("that log entry concerns documents outside your scope")]
    LogEntryHidden,
    /// Too many requests from this identity.
    #[error("too many requests from this identity; retry in {0} s")]
    RateLimited(u64),
    /// Too many uploads at once from this identity.
    #[error("too many uploads at once from this identity; retry when one finishes")]
    TooManyUploads,
    /// The request body stalled.
    #[error("the request body sent nothing for {0} s")]
    BodyTimeout(u64),
    /// The disk is full.
    #[error("the server is out of storage space; nothing was stored, retry later")]
    InsufficientStorage,
    /// The server cannot serve this now (trust material unusable…).
    #[error("{0}")]
    Unavailable(String),
    /// Signing a checkpoint now would contradict one this server signed before (its log
    /// was rolled back while it ran).
    #[error("{0}")]
    LogRollback(String),
    /// A server-side failure; the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status and the stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::IdentityInvalid(_) => (S::FORBIDDEN, "identity_invalid"),
            ApiError::UnknownIdentity(_) => (S::FORBIDDEN, "identity_unknown"),
            ApiError::CertificateRevoked => (S::FORBIDDEN, "certificate_revoked"),
            ApiError::CertificateExpired => (S::FORBIDDEN, "certificate_expired"),
            ApiError::CertificateUntrusted(_) => (S::FORBIDDEN, "certificate_untrusted"),
            ApiError::TooManyConnections(_) => (S::TOO_MANY_REQUESTS, "too_many_connections"),
            ApiError::ServerBusy => (S::SERVICE_UNAVAILABLE, "server_busy"),
            ApiError::RoleForbidden(_) => (S::FORBIDDEN, "role_forbidden"),
            ApiError::RouteNotFound(_) => (S::NOT_FOUND, "route_not_found"),
            ApiError::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::RequestInvalid(_) => (S::BAD_REQUEST, "request_invalid"),
            ApiError::BodyTooLarge(_) => (S::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::Manifest(e) => match e {
                ManifestError::TooLarge(_) => (S::PAYLOAD_TOO_LARGE, "manifest_too_large"),
                ManifestError::UnknownField(_) => (S::BAD_REQUEST, "manifest_unknown_field"),
                ManifestError::NotNfc(_) => (S::BAD_REQUEST, "manifest_not_nfc"),
                ManifestError::UnknownDocType { .. } => {
                    (S::UNPROCESSABLE_ENTITY, "doc_type_unknown")
                }
                _ => (S::BAD_REQUEST, "manifest_invalid"),
            },
            // The signer's responder being down is nobody's fault in the request, and a
            // retry may succeed: 503, like other trust material the server cannot use.
            ApiError::Signature {
                error: SignatureError::OcspUnavailable(_),
                ..
            } => (S::SERVICE_UNAVAILABLE, "ocsp_unavailable"),
            ApiError::Signature { error, .. } => (
                S::UNPROCESSABLE_ENTITY,
                match error {
                    SignatureError::BadSignature => "signature_invalid",
                    SignatureError::UntrustedChain(_) => "signature_untrusted",
                    SignatureError::NotValidNow(_) => "signature_expired",
                    SignatureError::Revoked | SignatureError::RevokedAtSigning(_) => {
                        "signature_revoked"
                    }
                    SignatureError::RevocationUnknown(_) => "signature_revocation_unknown",
                    SignatureError::WrongUsage => "signature_wrong_usage",
                    SignatureError::NoIdentity(_) => "signature_no_identity",
                    SignatureError::Unsupported(_) => "signature_unsupported",
                    SignatureError::OcspInvalid(_) => "ocsp_response_invalid",
                    _ => "signature_malformed",
                },
            ),
            ApiError::SignatureRoleMissing(_) => {
                (S::UNPROCESSABLE_ENTITY, "signature_role_missing")
            }
            ApiError::SignatureRoleDuplicate(_) => {
                (S::UNPROCESSABLE_ENTITY, "signature_role_duplicate")
            }
            ApiError::SignerMismatch { .. } => (S::UNPROCESSABLE_ENTITY, "signer_mismatch"),
            ApiError::SignerRole(error) => (
                S::UNPROCESSABLE_ENTITY,
                match error {
                    RoleError::OtherOrganisation { .. } => "signer_mismatch",
                    RoleError::WrongKind { .. } => "signer_kind_mismatch",
                    RoleError::NameMismatch { .. } => "signer_name_mismatch",
                },
            ),
            ApiError::SenderMismatch { .. } => (S::FORBIDDEN, "sender_mismatch"),
            ApiError::SenderInactive(_) => (S::FORBIDDEN, "sender_inactive"),
            ApiError::RecipientUnknown(_) => (S::UNPROCESSABLE_ENTITY, "recipient_unknown"),
            ApiError::RecipientInactive(_) => (S::UNPROCESSABLE_ENTITY, "recipient_inactive"),
            ApiError::RoutingDenied { .. } => (S::FORBIDDEN, "routing_denied"),
            ApiError::NumberInUse { .. } => (S::CONFLICT, "number_in_use"),
            ApiError::RegisterClosed(_) => (S::CONFLICT, "register_closed"),
            ApiError::RegisterYearOpen(_) => (S::CONFLICT, "register_year_open"),
            ApiError::CipherNotCertified(_) => (S::FORBIDDEN, "cipher_not_certified"),
            ApiError::RecipientNoEncryptionKey(_) => {
                (S::UNPROCESSABLE_ENTITY, "recipient_no_encryption_key")
            }
            ApiError::ClassifiedNotEncrypted(_) => {
                (S::UNPROCESSABLE_ENTITY, "classified_not_encrypted")
            }
            ApiError::RecipientSetMismatch(_) => {
                (S::UNPROCESSABLE_ENTITY, "recipient_set_mismatch")
            }
            ApiError::ReceiptInvalid(_) => (S::UNPROCESSABLE_ENTITY, "receipt_invalid"),
            ApiError::Status(refusal) => (S::CONFLICT, refusal.code()),
            ApiError::BusinessTargetInvalid(_) => {
                (S::UNPROCESSABLE_ENTITY, "business_target_invalid")
            }
            ApiError::IdConflict(_) => (S::CONFLICT, "id_conflict"),
            ApiError::DocumentNotFound => (S::NOT_FOUND, "document_not_found"),
            ApiError::IdInvalid(_) => (S::BAD_REQUEST, "id_invalid"),
            ApiError::PayloadDigestMismatch(_) => {
                (S::UNPROCESSABLE_ENTITY, "payload_digest_mismatch")
            }
            ApiError::PayloadSizeMismatch(_) => (S::UNPROCESSABLE_ENTITY, "payload_size_mismatch"),
            ApiError::UploadIncomplete(_) => (S::BAD_REQUEST, "upload_incomplete"),
            ApiError::PayloadNotAvailable => (S::CONFLICT, "payload_not_available"),
            ApiError::RateLimited(_) => (S::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::TooManyUploads => (S::TOO_MANY_REQUESTS, "too_many_uploads"),
            ApiError::BodyTimeout(_) => (S::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::LogEntryHidden => (S::FORBIDDEN, "log_entry_hidden"),
            ApiError::InsufficientStorage => (S::INSUFFICIENT_STORAGE, "insufficient_storage"),
            ApiError::Unavailable(_) => (S::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::LogRollback(_) => (S::SERVICE_UNAVAILABLE, "log_rollback"),
            ApiError::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<ExchangeError> for ApiError {
    /// The one place where the exchange's refusals become HTTP answers: each kind keeps
    /// the status, code and sentence the API has always given it.
    fn from(e: ExchangeError) -> Self {
        use ExchangeError as E;
        match e {
            E::RoleForbidden(why) => ApiError::RoleForbidden(why),
            E::UnknownIdentity(who) => ApiError::UnknownIdentity(who),
            E::RequestInvalid(why) => ApiError::RequestInvalid(why),
            E::RequestMalformed(error) => ApiError::RequestInvalid(error.to_string()),
            E::Manifest(error) => ApiError::Manifest(error),
            E::Signature { role, error } => ApiError::Signature { role, error },
            E::SignatureRoleMissing(role) => ApiError::SignatureRoleMissing(role),
            E::SignatureRoleDuplicate(why) => ApiError::SignatureRoleDuplicate(why),
            E::SignerRole(error) => ApiError::SignerRole(error),
            E::SenderMismatch { tls, manifest } => ApiError::SenderMismatch { tls, manifest },
            E::SenderInactive(why) => ApiError::SenderInactive(why),
            E::NumberInUse { code, earlier } => ApiError::NumberInUse { code, earlier },
            E::RecipientUnknown(who) => ApiError::RecipientUnknown(who),
            E::RecipientInactive(why) => ApiError::RecipientInactive(why),
            E::RoutingDenied { from, to } => ApiError::RoutingDenied { from, to },
            E::RecipientNoEncryptionKey(who) => ApiError::RecipientNoEncryptionKey(who),
            E::CipherNotCertified(refusal) => ApiError::CipherNotCertified(refusal),
            E::ClassifiedNotEncrypted(error) => ApiError::ClassifiedNotEncrypted(error.to_string()),
            E::RecipientSetMismatch(why) => ApiError::RecipientSetMismatch(why),
            E::ReceiptInvalid(error) => ApiError::ReceiptInvalid(error.to_string()),
            E::Status(refusal) => ApiError::Status(refusal),
            E::BusinessTargetInvalid(why) => ApiError::BusinessTargetInvalid(why),
            E::IdConflict(id) => ApiError::IdConflict(id.to_string()),
            E::DocumentNotFound => ApiError::DocumentNotFound,
            E::PayloadNotBase64(error) => {
                ApiError::RequestInvalid(format!("payload is not base64: {error}"))
            }
            E::Blob(error @ BlobError::SizeMismatch { .. }) => {
                ApiError::PayloadSizeMismatch(error.to_string())
            }
            E::Blob(error @ BlobError::DigestMismatch { .. }) => {
                ApiError::PayloadDigestMismatch(error.to_string())
            }
            E::Blob(BlobError::Store(error)) => error.into(),
            other @ (E::Task { .. } | E::PayloadFile { .. } | E::CanonicalNotText(_)) => {
                ApiError::Internal(other.to_string())
            }
            E::PayloadDigestMismatch(why) => ApiError::PayloadDigestMismatch(why),
            E::PayloadSizeMismatch(why) => ApiError::PayloadSizeMismatch(why),
            E::UploadIncomplete(why) => ApiError::UploadIncomplete(why),
            E::BodyTimeout(secs) => ApiError::BodyTimeout(secs),
            E::PayloadNotAvailable => ApiError::PayloadNotAvailable,
            E::Unavailable(why) => ApiError::Unavailable(why.to_owned()),
            E::Store(error) => error.into(),
            E::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_disk_full() {
            tracing::error!(error = %e, "out of disk space");
            ApiError::InsufficientStorage
        } else if let StoreError::NumberInUse { code, earlier } = e {
            ApiError::NumberInUse {
                code,
                earlier: earlier.to_string(),
            }
        } else if let StoreError::RegisterClosed { .. } = e {
            ApiError::RegisterClosed(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(cause = %cause, "internal error");
                "the server failed to handle the request; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        };
        let retry_after = match &self {
            ApiError::RateLimited(secs) => Some(*secs),
            ApiError::TooManyUploads
            | ApiError::InsufficientStorage
            | ApiError::TooManyConnections(_)
            | ApiError::ServerBusy => Some(1),
            _ => None,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            if let Ok(value) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}
