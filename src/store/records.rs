//! The records the store keeps, typed: organisation ids, classification, urgency,
//! signatures and receipts are the domain's types, so nothing re-parses them. Each is
//! written exactly as it was when these fields were strings and JSON values (same field
//! names, same order, same bytes; `tests` decodes records in the old form to prove it).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::OrgId;
use crate::document::manifest::{Classification, Urgency};
use crate::document::receipt::SignedReceipt;
use crate::document::{DocSignature, ReceiptStatus, Role};
pub use crate::ledger::BusinessRef;
use crate::notary::Signed;
use crate::seal::policy::SealMark;

/// Where a document is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocState {
    /// Manifest and signatures accepted; the payload has not arrived.
    AwaitingPayload,
    /// Payload stored; the document is in its recipients' inboxes.
    Accepted,
}

/// A verified signer, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerRecord {
    /// The role it signed in (stored as `person` or `organization`).
    pub role: Role,
    /// The certificate's subject.
    pub subject: String,
    /// SHA-256 of the certificate.
    pub fingerprint_sha256: String,
}

/// Everything the server keeps about one document (the payload is a blob).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// The document id.
    pub id: Uuid,
    /// The sender's organisation.
    pub sender: OrgId,
    /// The recipients.
    pub recipients: Vec<OrgId>,
    /// The classification (stored as `thuong`, `mat`, `toi_mat` or `tuyet_mat`).
    pub classification: Classification,
    /// The urgency (stored as the edXML priority 0–4).
    pub urgency: Urgency,
    /// The manifest's canonical JSON (RFC 8785), exactly as signed.
    pub manifest: String,
    /// SHA-256 of `manifest`.
    pub manifest_sha256: String,
    /// The signatures as received.
    #[serde(serialize_with = "as_json_value")]
    pub signatures: Vec<DocSignature>,
    /// Who signed, as verified at submission.
    pub signers: Vec<SignerRecord>,
    /// The payload's SHA-256.
    pub payload_sha256: String,
    /// The payload's size.
    pub payload_size: u64,
    /// When the manifest was accepted (RFC 3339).
    pub submitted_at: String,
    /// Lifecycle state.
    pub state: DocState,
    /// When the payload was accepted.
    pub accepted_at: Option<String>,
    /// The server-signed submission receipt, once accepted.
    #[serde(serialize_with = "as_json_value")]
    pub receipt: Option<Signed>,
    /// The log index of the `submitted` event.
    #[serde(default)]
    pub log_index: Option<u64>,
    /// For a classified document, the cipher that sealed it as the server declared it
    /// when it accepted the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_with: Option<SealMark>,
    /// The OCSP responses (base64 DER, as the responder signed them) that judged the
    /// signers at submission: evidence that lets a recipient judge the signatures as they
    /// were then, years later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocsp: Vec<String>,
    /// Its place in the sender's outgoing register: the numbering period, number and
    /// notation (see `registers::Numbering`), unique per sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<OutgoingNumber>,
    /// The earlier document this one recalls, updates or replaces (from the manifest's
    /// `business`); absent for a new document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business: Option<BusinessRef>,
}

/// Writes a field as its JSON value would be written: object keys in sorted order at
/// every level. Signatures and receipts were stored as `serde_json::Value` before they
/// were typed, so this keeps new records byte for byte what old ones are.
fn as_json_value<T: Serialize, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(value)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// A document's outgoing number as the register keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingNumber {
    /// The numbering period, number and notation, as one key.
    pub key: String,
    /// The number and notation as printed, for messages.
    pub code: String,
    /// The document this one updates or replaces, which may hold the same number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amends: Option<Uuid>,
}

/// A later document that acts on an earlier one (the `links` tree).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// `recall`, `update` or `replace`.
    pub kind: String,
    /// The later (acting) document.
    pub document_id: Uuid,
    /// Its recipients: a recall or update concerns these recipients of the target only.
    pub recipients: Vec<OrgId>,
    /// When it was accepted.
    pub accepted_at: String,
}

/// A recipient's signed receipt, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// edXML status (stored as its code: `01`…`06`, `13`, `15`, `16`).
    pub status: ReceiptStatus,
    /// The time the recipient states.
    pub time: String,
    /// The recipient's note.
    pub note: String,
    /// When the server recorded it.
    pub recorded_at: String,
    /// The signed receipt as received (statement and signature).
    pub receipt: SignedReceipt,
    /// The index of its `receipt` event in the log.
    #[serde(default)]
    pub log_index: Option<u64>,
}

/// What happened to one document at one recipient.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// First time the recipient fetched the payload.
    pub first_fetched_at: Option<String>,
    /// Last time it fetched the payload.
    pub last_fetched_at: Option<String>,
    /// How many times.
    pub fetch_count: u64,
    /// Its signed receipts, oldest first.
    pub receipts: Vec<ReceiptRecord>,
    /// The incoming number (số đến) the recipient's register gave it on acceptance (03).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_number: Option<u64>,
}

/// The outcome of [`Store::record_receipt`](crate::store::Store::record_receipt).
#[derive(Debug)]
pub enum ReceiptWrite {
    /// Recorded: the delivery record as it now is, and the event's log index.
    Recorded(DeliveryRecord, u64),
    /// The status was already recorded: the earlier entry, nothing written.
    Replayed(Box<ReceiptRecord>),
}

/// The outcome of [`Store::insert_document`](crate::store::Store::insert_document).
#[derive(Debug)]
pub enum Inserted {
    /// New.
    Created,
    /// A record with this id already exists (returned as stored).
    Exists(Box<DocumentRecord>),
}
