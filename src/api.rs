//! Wire types of the HTTP API, shared by the server and the client. `docs/API.md` is
//! their prose description; a change here is a change there.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::document::DocSignature;
use crate::notary::{PublicKeyInfo, Signed};

/// `type` of a submission receipt statement.
pub const SUBMISSION_RECEIPT_TYPE: &str = "congvan.submission-receipt/v1";
/// `type` of a directory statement.
pub const DIRECTORY_TYPE: &str = "congvan.directory/v1";

/// Largest payload a submission may carry inline (`SubmitRequest::payload`); larger ones
/// are uploaded with `PUT /v1/documents/{id}/payload`.
pub const INLINE_PAYLOAD_BYTES_MAX: u64 = 1 << 20;

/// congvan's client sends payloads up to this size inline and uploads larger ones with
/// `PUT`: above it, base64 and parsing a long JSON string cost the server more than the
/// second request saves (measured at 100 KiB: 10% fewer documents per second inline).
/// It matches the largest payload the server keeps in its database.
pub const INLINE_SEND_BYTES_MAX: u64 = 64 * 1024;

/// The JSON body of an error response.
#[derive(Serialize, Deserialize, Debug)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The detail of an error response.
#[derive(Serialize, Deserialize, Debug)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// `POST /v1/documents`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The manifest, as signed.
    pub manifest: Box<RawValue>,
    /// Its signatures.
    pub signatures: Vec<DocSignature>,
    /// The whole payload in base64, for payloads up to 1 MiB: the document is then
    /// accepted in this one request and the answer carries the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// The body of `GET /v1/whoami`: the caller's identity as the server sees it.
#[derive(Debug, Serialize, Deserialize)]
pub struct WhoAmI {
    /// `org` or `auditor`.
    pub kind: String,
    /// The organisation id, or the auditor's scope.
    pub id: String,
    /// The SAN URI.
    pub uri: String,
    /// The organisation's (or auditor role's) name.
    pub name: String,
    /// The organisation's status (organisations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::directory::OrgStatus>,
    /// The client certificate of the connection.
    pub certificate: CertificateView,
}

/// A certificate as the API shows it (what `pki::CertInfo` puts on the wire).
#[derive(Debug, Serialize, Deserialize)]
pub struct CertificateView {
    /// The subject DN, RFC 4514 style.
    pub subject: String,
    /// The issuer DN.
    pub issuer: String,
    /// The serial number, hex with colons.
    pub serial: String,
    /// SHA-256 of the DER encoding, lower-case hex.
    pub fingerprint_sha256: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
}

/// The path of a document's payload (`PUT` to upload, `GET` to fetch): the one place the
/// server's answers name it; the client's endpoints write their own paths.
pub fn payload_path(id: &Uuid) -> String {
    format!("/v1/documents/{id}/payload")
}

/// The answer to `POST /v1/documents` (201 new, 200 identical replay).
#[derive(Debug, Serialize, Deserialize)]
pub struct SubmitResponse {
    /// The document id.
    pub id: Uuid,
    /// `awaiting_payload` or `accepted`.
    pub state: String,
    /// SHA-256 of the manifest's canonical bytes.
    pub manifest_sha256: String,
    /// Where to `PUT` the payload.
    pub payload_url: String,
    /// The submission receipt, once the payload is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Signed>,
}

/// The answer to `PUT /v1/documents/{id}/payload` (201 new, 200 replay).
#[derive(Debug, Serialize, Deserialize)]
pub struct UploadResponse {
    /// The server-signed submission receipt.
    pub receipt: Signed,
}

/// The statement of a submission receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionReceipt {
    /// [`SUBMISSION_RECEIPT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The document.
    pub document_id: Uuid,
    /// The sender.
    pub sender: String,
    /// The recipients.
    pub recipients: Vec<String>,
    /// SHA-256 of the manifest's canonical bytes.
    pub manifest_sha256: String,
    /// SHA-256 of the payload.
    pub payload_sha256: String,
    /// Payload size in bytes.
    pub payload_size: u64,
    /// When the server accepted the payload (RFC 3339).
    pub accepted_at: String,
    /// The index of the `submitted` event in the delivery log.
    pub log_index: u64,
}

/// `GET /v1/documents/{id}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DocumentView {
    /// The document id.
    pub id: Uuid,
    /// `awaiting_payload` or `accepted`.
    pub state: String,
    /// The manifest's canonical JSON, exactly as signed.
    pub manifest: Box<RawValue>,
    /// SHA-256 of the manifest's canonical bytes.
    pub manifest_sha256: String,
    /// The signatures.
    pub signatures: Vec<DocSignature>,
    /// When the manifest was accepted.
    pub submitted_at: String,
    /// When the payload was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    /// The submission receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Signed>,
    /// For a classified document, the cipher that sealed it and whether it is certified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_with: Option<crate::seal::policy::SealMark>,
    /// OCSP responses (base64 DER) the server judged the signers by at submission, signed
    /// by their CAs' responders: a recipient judges the signatures with them as of the
    /// acceptance time (long-term validation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocsp: Vec<String>,
}

/// A link between two documents made by a recall, an update or a replacement. Both
/// ends show it: the later document `recalls`/`updates`/`replaces` the earlier one, which
/// is `recalled_by`/`updated_by`/`replaced_by` the later one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocLink {
    /// `recalls`, `updates`, `replaces`, `recalled_by`, `updated_by` or `replaced_by`.
    pub relation: String,
    /// The other document.
    pub id: Uuid,
}

/// One line of an inbox or sent listing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListItem {
    /// Position in the listing (for paging).
    pub seq: u64,
    /// The document id.
    pub id: Uuid,
    /// The sender.
    pub sender: String,
    /// The recipients.
    pub recipients: Vec<String>,
    /// Document type.
    pub doc_type: String,
    /// Number.
    pub number: String,
    /// Notation.
    pub notation: String,
    /// Subject (empty for classified documents).
    pub subject: String,
    /// Urgency 0–4.
    pub urgency: u8,
    /// Classification.
    pub classification: String,
    /// Lifecycle state.
    pub state: String,
    /// When the payload was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    /// In an inbox: when this recipient first fetched the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<String>,
    /// In an inbox: this recipient's latest receipt status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_status: Option<String>,
    /// For a classified document, the cipher that sealed it and whether it is certified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_with: Option<crate::seal::policy::SealMark>,
    /// Inbox only: the unit the document was addressed to, when that is a unit merged
    /// into the caller (the document is offered to its successor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressed_to: Option<String>,
    /// Recalls, updates and replacements linking this document to others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<DocLink>,
    /// In an inbox: the sender recalled the document and this recipient agreed (15); it
    /// is listed only with `state=history`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recalled: bool,
    /// In an inbox: the incoming number (số đến) this recipient's register gave the
    /// document when it accepted it (03).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_number: Option<u64>,
}

/// A page of a listing.
#[derive(Debug, Serialize, Deserialize)]
pub struct ListPage {
    /// Newest first.
    pub items: Vec<ListItem>,
    /// Pass as `before=` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// `GET /v1/server-keys`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ServerKeysResponse {
    /// The server's public keys.
    pub keys: Vec<PublicKeyInfo>,
    /// The delivery log's origin (checkpoints name it; the `log` key signs them).
    pub log_origin: String,
}

/// One entry of `GET /v1/log/entries`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogEntry {
    /// Its index in the log.
    pub index: u64,
    /// The leaf: the event's RFC 8785 bytes, verbatim.
    pub leaf: Box<RawValue>,
}

/// `GET /v1/log/entries`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogEntries {
    /// The entries the caller may see, in index order.
    pub entries: Vec<LogEntry>,
    /// Where the next page starts, if the range is not exhausted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_start: Option<u64>,
    /// For `start=&end=` reads: the entries of the page the caller may not read, as bare
    /// leaf hashes, so that every index of the range is accounted for. Never given for
    /// `document=` reads (the count would tell who else acted on the document).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<HiddenEntry>,
}

/// An entry the caller may not read: its index and leaf hash only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenEntry {
    /// Its index in the log.
    pub index: u64,
    /// The RFC 9162 leaf hash (SHA-256 of 0x00 and the leaf), base64.
    pub leaf_hash: String,
}

/// `GET /v1/log/proofs/range?start=&end=&size=`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RangeProof {
    /// The first index of the range.
    pub start: u64,
    /// One past the last index.
    pub end: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The hashes of the subtrees outside the range, base64, in the verifier's order.
    pub proof: Vec<String>,
}

/// A Merkle proof (`GET /v1/log/proofs/…`).
#[derive(Debug, Serialize, Deserialize)]
pub struct LogProof {
    /// Inclusion: the entry's index; consistency: the older size.
    pub from: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The hashes, base64.
    pub proof: Vec<String>,
}

/// One organisation in the directory statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryOrg {
    /// Id.
    pub id: String,
    /// Vietnamese name.
    pub name: String,
    /// Parent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// `active`, `merged`, `retired` or `planned` (listed ahead of the reform plan that
    /// activates it).
    pub status: String,
    /// The successor, for a merged organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// The government identifier code (mã định danh), the edXML `OrganId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Signature roles its documents must carry.
    pub required_signatures: Vec<String>,
    /// Its registered encryption certificate (ASCII-armoured OpenPGP), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_cert: Option<String>,
    /// The organisation's own endorsement of `encryption_cert`, signed with its seal
    /// certificate; clients refuse to seal to a certificate without a valid one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_endorsement: Option<crate::directory::endorsement::SignedEndorsement>,
    /// Its document-signing certificates (PEM), if registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_certs: Option<String>,
}

/// One security officer role in the directory statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryAuditor {
    /// Scope.
    pub scope: String,
    /// Name.
    pub name: String,
}

/// The statement of `GET /v1/directory`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryStatement {
    /// [`DIRECTORY_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// When the statement was made.
    pub issued_at: String,
    /// Every organisation.
    pub orgs: Vec<DirectoryOrg>,
    /// Every security officer role.
    pub auditors: Vec<DirectoryAuditor>,
    /// The server's cipher for classified documents and what it is certified for; clients
    /// refuse before sealing what it may not carry.
    pub seal: crate::seal::policy::SealPolicy,
}

/// The current UTC time as RFC 3339 with second precision, as used on the wire.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// `type` of a recipient's delivery receipt.
pub const DELIVERY_RECEIPT_TYPE: &str = "congvan.delivery-receipt/v1";

/// What a recipient signs to acknowledge a document (edXML status).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryReceipt {
    /// [`DELIVERY_RECEIPT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The document.
    pub document_id: Uuid,
    /// The recipient organisation (the signer).
    pub recipient: String,
    /// SHA-256 of the manifest's canonical bytes.
    pub manifest_sha256: String,
    /// SHA-256 of the payload.
    pub payload_sha256: String,
    /// edXML status: 01 arrived, 02 rejected, 03 accepted, 04 assigned, 05 processing,
    /// 06 completed, 13 recall requested, 15 recall/update agreed, 16 refused.
    pub status: String,
    /// When (RFC 3339).
    pub time: String,
    /// A note (required for 02: the reason).
    pub note: String,
}

/// `POST /v1/documents/{id}/receipts`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// The statement.
    pub receipt: DeliveryReceipt,
    /// The recipient organisation's signature over the statement's RFC 8785 bytes.
    pub signature: DocSignature,
}

/// The answer to `POST /v1/documents/{id}/receipts`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReceiptResponse {
    /// The document.
    pub document_id: Uuid,
    /// The recipient.
    pub recipient: String,
    /// The recorded status.
    pub status: String,
    /// When the server recorded it.
    pub recorded_at: String,
    /// The index of the `receipt` event in the delivery log.
    pub log_index: u64,
    /// The incoming number (số đến) the recipient's register gave the document, once it
    /// has been accepted (03).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_number: Option<u64>,
}

/// `GET /v1/registers/incoming?year=`: an organisation's incoming register of a year.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingRegisterView {
    /// The organisation.
    pub org: String,
    /// Its name, for the register's cover.
    pub org_name: String,
    /// The year (Vietnam time).
    pub year: i32,
    /// When the register was closed, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// Every line, in number order.
    pub entries: Vec<crate::registers::IncomingEntry>,
}

/// The answer to registering a paper document.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperRegistered {
    /// The register's year.
    pub year: i32,
    /// The incoming number given.
    pub number: u64,
}

/// The answer to closing a register.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterClosedView {
    /// The organisation.
    pub org: String,
    /// The year.
    pub year: i32,
    /// When it was closed (the first close, if closed twice).
    pub closed_at: String,
    /// How many numbers the year's register holds (1 to `count`).
    pub count: u64,
}

/// One recipient's state in `GET /v1/documents/{id}/status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecipientStatus {
    /// The recipient.
    pub org: String,
    /// For a recipient merged since: the successor that now holds its inbox, to which the
    /// document is offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_to: Option<String>,
    /// First fetch of the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetched_at: Option<String>,
    /// Number of fetches.
    pub fetch_count: u64,
    /// Latest receipt status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Time stated in the latest receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_time: Option<String>,
    /// Note of the latest receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Every signed receipt, oldest first.
    pub receipts: Vec<serde_json::Value>,
    /// `recall` or `update` when the sender's recall or update of the document (status
    /// 13, recall requested) is pending for this recipient or was answered (15/16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// `GET /v1/documents/{id}/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusView {
    /// The document.
    pub id: Uuid,
    /// The sender.
    pub sender: String,
    /// Urgency 0–4.
    pub urgency: u8,
    /// When the payload was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<String>,
    /// Each recipient.
    pub recipients: Vec<RecipientStatus>,
    /// Recalls, updates and replacements linking this document to others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<DocLink>,
}

/// `GET /v1/crls`: the CRLs the server checks signatures against (PEM; each is signed by
/// its CA, so the server cannot forge them).
#[derive(Debug, Serialize, Deserialize)]
pub struct CrlsResponse {
    /// PEM-encoded CRLs.
    pub crls: Vec<String>,
}
