//! The exchange: the rules of sending, receiving and answering documents, in one place
//! and without HTTP.
//!
//! - [`submission`]: who may send what to whom (sender active, routing, recipient keys,
//!   seal policy, the outgoing number, recalls/updates/replacements, both signatures);
//! - [`payload`]: accepting a payload, whether it came inline or as an upload (one
//!   sequence: disk reserve, the classified check, blob, receipt), and handing it out;
//! - [`receipts`]: recipients' signed receipts, pending recalls and updates, links
//!   between documents and the per-recipient delivery status.
//!
//! It takes typed inputs (the caller's [`Identity`], parsed manifests, bodies as plain
//! streams) and returns typed outcomes or one [`ExchangeError`], which `server::error`
//! turns into an HTTP status, a stable code and a sentence in one place. It knows neither
//! axum nor hyper: the route handlers extract, call one function here, and render.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::directory::{Directory, OrgId, OrgStatus};
use crate::document::receipt::ReceiptError;
use crate::document::{ManifestError, Role, RoleError};
use crate::notary::{ServerKeys, Signed};
use crate::pki::Identity;
use crate::pki::signing::{OcspTarget, SignatureError, SigningTrust};
use crate::registers::Numbering;
use crate::seal::Cipher;
use crate::seal::policy::{SealPolicy, SealRefusal};
use crate::store::{BlobError, DocState, DocumentRecord, Store, StoreError};

pub mod payload;
pub mod receipts;
pub mod submission;

/// A refusal or failure of the exchange. Each kind is one stable API code
/// (`server::error` maps them); the sentences are the ones the API has always given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The caller's kind (committee or security officer) may not do this.
    #[error("{0}")]
    RoleForbidden(&'static str),
    /// The certificate names an organisation the directory does not know.
    #[error("{0} is not in the organisation directory")]
    UnknownIdentity(String),
    /// The request body is not what the operation takes.
    #[error("invalid request: {0}")]
    RequestInvalid(String),
    /// The request body does not decode.
    #[error("invalid request: {0}")]
    RequestMalformed(#[source] serde_json::Error),
    /// The manifest was refused.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// A signature was refused.
    #[error("{role} signature: {error}", role = role.name())]
    Signature {
        /// Which signature.
        role: Role,
        /// Why.
        #[source]
        error: SignatureError,
    },
    /// A role the sender's policy requires has no signature.
    #[error("the sender's policy requires a {0} signature, and there is none")]
    SignatureRoleMissing(&'static str),
    /// Two signatures claim the same role, or one certificate signs for two roles.
    #[error("{0}")]
    SignatureRoleDuplicate(String),
    /// A signer's certificate does not fit the role it signs in.
    #[error("{0}")]
    SignerRole(#[source] RoleError),
    /// The TLS client is not the manifest's sender.
    #[error("the manifest's sender is {manifest}, but this connection is {tls}")]
    SenderMismatch {
        /// The TLS identity.
        tls: String,
        /// The manifest's sender.
        manifest: String,
    },
    /// The sending organisation is merged or retired (the sentence names its successor).
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
    /// The classification level may not be sealed with the server's declared cipher.
    #[error("{0}")]
    CipherNotCertified(#[from] SealRefusal),
    /// A classified payload is not a sealed message of the accepted shape.
    #[error("the classified payload is not properly encrypted: {0}")]
    ClassifiedNotEncrypted(#[source] crate::seal::SealError),
    /// A classified payload is not encrypted to exactly the recipients' keys.
    #[error("{0}")]
    RecipientSetMismatch(String),
    /// A delivery receipt was refused.
    #[error("{0}")]
    ReceiptInvalid(#[source] ReceiptError),
    /// A receipt's status breaks the status rules.
    #[error("{0}")]
    Status(#[from] crate::document::status::StatusRefusal),
    /// A recall, update or replacement names a target it may not act on.
    #[error("{0}")]
    BusinessTargetInvalid(String),
    /// The id is taken by a different document.
    #[error("document id {0} is already used by a different document")]
    IdConflict(Uuid),
    /// No such document visible to the caller.
    #[error("no such document")]
    DocumentNotFound,
    /// An inline payload is not base64.
    #[error("invalid request: payload is not base64: {0}")]
    PayloadNotBase64(#[source] base64::DecodeError),
    /// A payload written to its blob file does not have the manifest's size or digest,
    /// or the file could not be written.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The payload's digest differs from the manifest's.
    #[error("{0}")]
    PayloadDigestMismatch(String),
    /// The payload's size differs from the manifest's.
    #[error("{0}")]
    PayloadSizeMismatch(String),
    /// The upload ended before the payload was complete.
    #[error("the upload ended early: {0}")]
    UploadIncomplete(String),
    /// The request body stalled.
    #[error("the request body sent nothing for {0} s")]
    BodyTimeout(u64),
    /// The payload has not been uploaded yet.
    #[error("the payload of this document has not been uploaded")]
    PayloadNotAvailable,
    /// The server cannot do this now (its trust material is unusable).
    #[error("{0}")]
    Unavailable(&'static str),
    /// The store refused or failed (a full disk, a closed register, a damaged record…).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest's canonical bytes are not UTF-8 (they always are: RFC 8785 writes JSON
    /// text), so the manifest cannot be stored as text.
    #[error("the manifest's canonical form is not text: {0}")]
    CanonicalNotText(#[source] std::string::FromUtf8Error),
    /// A task the exchange ran off the async threads failed.
    #[error("{what} task: {source}")]
    Task {
        /// Which task.
        what: &'static str,
        /// How it failed.
        source: tokio::task::JoinError,
    },
    /// A stored document's payload file cannot be opened.
    #[error("payload of {id} at {path}: {source}")]
    PayloadFile {
        /// The document.
        id: Uuid,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A server-side failure; the detail is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The OCSP responses the exchange may ask for while it judges signers: the server's
/// bounded, cached fetcher, behind an interface so that the exchange knows no HTTP.
pub trait OcspFetch: Send + Sync {
    /// Whether OCSP is used at all.
    fn enabled(&self) -> bool;
    /// Whether every signer with a responder is asked, even one a CRL covers.
    fn preferred(&self) -> bool;
    /// The DER response about `target`, current at `now` (Unix seconds).
    fn response<'a>(
        &'a self,
        target: &'a OcspTarget,
        now: i64,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, SignatureError>> + Send + 'a>>;
}

/// What the exchange works with for one request: the directory and trust material in
/// force when the request arrived, the store, the server's keys and its configuration.
#[derive(Clone)]
pub struct Exchange {
    /// The organisation directory in force.
    pub directory: Arc<Directory>,
    /// Durable state.
    pub store: Store,
    /// The cipher that reads a classified payload's recipients (never decrypts).
    pub cipher: Arc<dyn Cipher>,
    /// The declared cipher and the classification levels it may carry.
    pub seal: Arc<SealPolicy>,
    /// The server's signing keys (submission receipts).
    pub keys: Arc<ServerKeys>,
    /// The document-signing trust in force, if the trust material is usable.
    pub signing: Option<Arc<SigningTrust>>,
    /// How outgoing numbers restart.
    pub numbering: Arc<Numbering>,
    /// OCSP responses for signers.
    pub ocsp: Arc<dyn OcspFetch>,
    /// Bytes of free disk every write leaves untouched.
    pub disk_reserve_bytes: u64,
    /// Longest silence of a body being received.
    pub body_idle_timeout: Duration,
}

/// Whether an operation made something new or answered a replay with what exists: the
/// server says `201` for the first, `200` for the second.
#[derive(Debug)]
pub enum Answer<T> {
    /// Made now.
    Created(T),
    /// Already there: the same answer as the first time.
    Replayed(T),
}

impl Exchange {
    /// Refuses when a write of `extra` bytes would eat into the disk reserve.
    pub fn ensure_space(&self, extra: u64) -> Result<(), ExchangeError> {
        self.store
            .ensure_space(extra.saturating_add(self.disk_reserve_bytes))
            .map_err(ExchangeError::from)
    }

    /// The document-signing trust, or why there is none.
    fn signing(&self) -> Result<Arc<SigningTrust>, ExchangeError> {
        self.signing.clone().ok_or(ExchangeError::Unavailable(
            "the server's trust material is unusable",
        ))
    }

    /// Loads a document the caller may see: its sender, or one of its recipients (or a
    /// security officer whose scope covers one of them). Anyone else gets the same
    /// "no such document" as for a document that does not exist.
    pub fn visible_document(
        &self,
        caller: &Identity,
        id: &Uuid,
    ) -> Result<DocumentRecord, ExchangeError> {
        let record = self
            .store
            .document(id)?
            .ok_or(ExchangeError::DocumentNotFound)?;
        let directory = &self.directory;
        let visible = match caller {
            // A committee sees its own documents and those of the units merged into it.
            Identity::Org(org) => {
                let mine = |id: &OrgId| directory.speaks_for(org, id);
                mine(&record.sender) || record.recipients.iter().any(mine)
            }
            Identity::Auditor(scope) => {
                let in_scope = |id: &OrgId| directory.audits(scope, id);
                in_scope(&record.sender) || record.recipients.iter().any(in_scope)
            }
            // The server never admits a person certificate as a caller.
            Identity::Person(_) => false,
        };
        if visible {
            Ok(record)
        } else {
            Err(ExchangeError::DocumentNotFound)
        }
    }

    /// Refuses a recipient that is no longer active (merged, retired) when it would
    /// receive: fetch a payload addressed to it or acknowledge it. Its successor does that
    /// now, so the document is received once, by the unit that carries on.
    pub fn ensure_active_recipient(&self, org: &OrgId) -> Result<(), ExchangeError> {
        match self.directory.org(org) {
            Some(o) if !o.status.is_active() => Err(ExchangeError::RecipientInactive(inactive(
                &self.directory,
                org,
                "its successor receives for it:",
            ))),
            _ => Ok(()),
        }
    }

    /// The recipient of `record` that `org` acts for: itself, or else a merged unit it
    /// succeeds (a document sent to a unit before it merged is offered to its successor).
    pub fn addressee<'r>(&self, org: &OrgId, record: &'r DocumentRecord) -> Option<&'r OrgId> {
        record.recipients.iter().find(|r| *r == org).or_else(|| {
            record
                .recipients
                .iter()
                .find(|r| self.directory.speaks_for(org, r))
        })
    }
}

/// The organisation a caller sends as: committees send, security officers do not.
pub fn sender_of(caller: &Identity) -> Result<&OrgId, ExchangeError> {
    match caller {
        Identity::Org(org) => Ok(org),
        _ => Err(ExchangeError::RoleForbidden(
            "security officers read and audit; only committees send documents",
        )),
    }
}

/// The name of a document's state on the wire.
pub fn state_name(state: DocState) -> &'static str {
    match state {
        DocState::AwaitingPayload => "awaiting_payload",
        DocState::Accepted => "accepted",
    }
}

/// The server's signed submission receipt of an accepted document; its absence is a
/// damaged record.
pub fn accepted_receipt(record: &DocumentRecord) -> Result<Signed, ExchangeError> {
    record
        .receipt
        .clone()
        .ok_or_else(|| ExchangeError::Internal(format!("accepted {} has no receipt", record.id)))
}

/// "X is merged into S: send to S", naming the successor where there is one, so that a
/// refusal teaches the corrected command.
pub fn inactive(directory: &Directory, id: &OrgId, advice: &str) -> String {
    match directory.org(id).map(|o| &o.status) {
        Some(OrgStatus::Merged { into }) => match directory.successor(id) {
            Some(s) if &s.id != into => format!(
                "{id} is not active: it was merged into {into}, which was merged into {s}; {advice} {s} ({})",
                s.name,
                s = s.id
            ),
            Some(s) => format!(
                "{id} is not active: it was merged into {into} ({}); {advice} {into}",
                s.name
            ),
            None => format!("{id} is not active: it was merged into {into}"),
        },
        Some(OrgStatus::Planned) => {
            format!("{id} is not active yet: it is planned, waiting for a reform plan")
        }
        Some(OrgStatus::Retired) => format!("{id} is not active: it was retired"),
        _ => format!("{id} is not active"),
    }
}
