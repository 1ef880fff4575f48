//! The records the store keeps, typed: organisation ids, classification, urgency,
//! signatures and receipts are the domain's types, so nothing re-parses them. Each is
//! written exactly as it was when these fields were strings and JSON values (same field
//! names, same order, same bytes; `tests` decodes records in the old form to prove it).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{SUBMISSION_RECEIPT_TYPE, SubmissionReceipt};
use crate::directory::OrgId;
use crate::document::manifest::{Classification, Urgency};
use crate::document::receipt::SignedReceipt;
use crate::document::{DocSignature, ReceiptStatus, Role};
pub use crate::ledger::BusinessRef;
use crate::notary::{Signed, StatementSignature};
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

/// The stored shape of a document record (`docs` tree), without what is stored elsewhere
/// or derivable, followed by what is needed to put it back:
/// - the signers' certificate chains live in the `certs` tree: every signature's `chain`
///   is left out and `chains` holds one SHA-256 (hex) per signature of its chain's
///   canonical bytes (empty for a signature that carries none);
/// - the signers (role, subject and fingerprint of each, a function of the same
///   certificates and the same for every document the same people sign) are kept in the
///   `certs` tree too, as the JSON array they were inline: `signers` is empty and
///   `signers_sha256` is the array's SHA-256;
/// - the server's submission receipt states only fields of the record itself, so its
///   statement is left out (`receipt` is null) and `receipt_signature` keeps the
///   signature; the statement is rebuilt on reading. It is left out only when the rebuilt
///   statement serialises to exactly the bytes signed, which is checked on writing.
///
/// Records of the previous build (chains and statement inline, neither extra field) decode
/// as they are, so nothing on disk needs rewriting.
#[derive(Serialize)]
struct Stored<'a> {
    #[serde(flatten)]
    record: &'a DocumentRecord,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    chains: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt_signature: Option<&'a StatementSignature>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signers_sha256: Option<String>,
}

/// The extra fields of a stored record, read on their own.
#[derive(Deserialize)]
struct ChainRefs {
    #[serde(default)]
    chains: Vec<String>,
    #[serde(default)]
    receipt_signature: Option<StatementSignature>,
    #[serde(default)]
    signers_sha256: Option<String>,
}

/// The statement of the server's submission receipt for `record`, accepted at
/// `accepted_at` as entry `log_index` of the log: every field is one of the record's. The
/// exchange signs it; the store rebuilds it to keep the receipt as its signature alone.
pub fn submission_receipt(
    record: &DocumentRecord,
    accepted_at: &str,
    log_index: u64,
) -> SubmissionReceipt {
    SubmissionReceipt {
        kind: SUBMISSION_RECEIPT_TYPE.to_owned(),
        document_id: record.id,
        sender: record.sender.to_string(),
        recipients: record.recipients.iter().map(ToString::to_string).collect(),
        manifest_sha256: record.manifest_sha256.clone(),
        payload_sha256: record.payload_sha256.clone(),
        payload_size: record.payload_size,
        accepted_at: accepted_at.to_owned(),
        log_index,
    }
}

/// [`submission_receipt`] for a stored record, from its own acceptance time and index.
/// `None` for a record not accepted yet.
fn receipt_statement(
    record: &DocumentRecord,
) -> Option<Result<serde_json::Value, serde_json::Error>> {
    let statement = submission_receipt(record, record.accepted_at.as_deref()?, record.log_index?);
    Some(serde_json::to_value(&statement))
}

/// True when `signed`'s statement is exactly (byte for byte, as stored) the one
/// [`receipt_statement`] rebuilds from `record`.
fn statement_derivable(record: &DocumentRecord, signed: &Signed) -> bool {
    match receipt_statement(record) {
        Some(Ok(rebuilt)) => {
            rebuilt == signed.statement
                && serde_json::to_vec(&rebuilt).ok() == serde_json::to_vec(&signed.statement).ok()
        }
        _ => false,
    }
}

/// An item of the `certs` tree: SHA-256 of `bytes` (the key) and its canonical bytes.
/// For a certificate chain, the JSON array of the base64 certificates exactly as the
/// signer sent them (so that a record read back is byte for byte the record accepted);
/// for a signer list, the JSON array of [`SignerRecord`]s as it was stored inline.
pub(crate) struct StoredChain {
    /// SHA-256 of `bytes`.
    pub digest: [u8; 32],
    /// The canonical bytes.
    pub bytes: Vec<u8>,
}

/// The canonical bytes of a chain (see [`StoredChain`]).
fn chain_bytes(chain: &[String]) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(chain)
}

/// SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Encodes `record` in its stored shape: the record's bytes, and the chains it refers to
/// (which the caller writes to the `certs` tree in the same transaction, unless there).
pub(crate) fn encode_stored(
    record: &DocumentRecord,
) -> Result<(Vec<u8>, Vec<StoredChain>), serde_json::Error> {
    let derivable = record
        .receipt
        .as_ref()
        .filter(|signed| statement_derivable(record, signed));
    if record.signatures.iter().all(|s| s.chain.is_empty())
        && derivable.is_none()
        && record.signers.is_empty()
    {
        return Ok((serde_json::to_vec(record)?, Vec::new()));
    }
    let mut slim = record.clone();
    slim.receipt = None;
    if derivable.is_none() {
        slim.receipt.clone_from(&record.receipt);
    }
    let mut refs = Vec::with_capacity(slim.signatures.len());
    let mut chains: Vec<StoredChain> = Vec::new();
    for signature in &mut slim.signatures {
        if signature.chain.is_empty() {
            refs.push(String::new());
            continue;
        }
        let bytes = chain_bytes(&signature.chain)?;
        let digest = sha256(&bytes);
        refs.push(crate::pki::identity::hex(&digest));
        signature.chain = Vec::new();
        // Two signatures by the same chain (rare) keep one copy to write.
        if !chains.iter().any(|c| c.digest == digest) {
            chains.push(StoredChain { digest, bytes });
        }
    }
    if chains.is_empty() {
        // No chain to refer to: `chains` is left out, as for a record of the previous build.
        refs.clear();
    }
    let mut signers_sha256 = None;
    if !slim.signers.is_empty() {
        let bytes = serde_json::to_vec(&slim.signers)?;
        let digest = sha256(&bytes);
        signers_sha256 = Some(crate::pki::identity::hex(&digest));
        slim.signers = Vec::new();
        chains.push(StoredChain { digest, bytes });
    }
    let bytes = serde_json::to_vec(&Stored {
        record: &slim,
        chains: &refs,
        receipt_signature: derivable.map(|signed| &signed.signature),
        signers_sha256,
    })?;
    Ok((bytes, chains))
}

/// The digests of the `certs` items a stored record refers to: its chains and its
/// signers (none for a record of the previous build's shape).
pub fn chain_refs(bytes: &[u8]) -> Result<Vec<[u8; 32]>, String> {
    let refs: ChainRefs = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    refs.chains
        .iter()
        .chain(refs.signers_sha256.iter())
        .filter(|r| !r.is_empty())
        .map(|r| unhex32(r))
        .collect()
}

fn unhex32(text: &str) -> Result<[u8; 32], String> {
    crate::store::backup::unhex(text)
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| format!("chain digest {text:?} is not 64 lower-case hex digits"))
}

/// Decodes a record in either stored shape, reading the chains it refers to with
/// `lookup` (from the `certs` tree, inside the caller's transaction if there is one).
/// `corrupt` makes the caller's error for a record that does not decode.
pub(crate) fn decode_stored<E>(
    bytes: &[u8],
    corrupt: impl Fn(String) -> E,
    mut lookup: impl FnMut(&[u8; 32]) -> Result<Option<sled::IVec>, E>,
) -> Result<DocumentRecord, E> {
    let mut record: DocumentRecord =
        serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    // A record with every chain inline and its receipt whole (the previous build's shape)
    // is complete; only a record with a signature without its chain, or accepted without
    // its receipt, has extra fields.
    let receipt_left_out = record.receipt.is_none() && record.state == DocState::Accepted;
    if record.signatures.iter().all(|s| !s.chain.is_empty())
        && !receipt_left_out
        && !record.signers.is_empty()
    {
        return Ok(record);
    }
    let refs: ChainRefs = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if let Some(hex) = &refs.signers_sha256 {
        let digest = unhex32(hex).map_err(&corrupt)?;
        let stored =
            lookup(&digest)?.ok_or_else(|| corrupt(format!("signer list {hex} is missing")))?;
        record.signers = serde_json::from_slice(&stored)
            .map_err(|e| corrupt(format!("signer list {hex}: {e}")))?;
    }
    if let Some(signature) = refs.receipt_signature {
        let statement = receipt_statement(&record)
            .ok_or_else(|| corrupt("a receipt signature without its accepted time".into()))?
            .map_err(|e| corrupt(e.to_string()))?;
        record.receipt = Some(Signed {
            statement,
            signature,
        });
    }
    if refs.chains.is_empty() {
        return Ok(record);
    }
    if refs.chains.len() != record.signatures.len() {
        return Err(corrupt(format!(
            "{} chain digests for {} signatures",
            refs.chains.len(),
            record.signatures.len()
        )));
    }
    for (signature, hex) in record.signatures.iter_mut().zip(&refs.chains) {
        if hex.is_empty() {
            continue;
        }
        let digest = unhex32(hex).map_err(&corrupt)?;
        let stored = lookup(&digest)?
            .ok_or_else(|| corrupt(format!("certificate chain {hex} is missing")))?;
        signature.chain = serde_json::from_slice(&stored)
            .map_err(|e| corrupt(format!("certificate chain {hex}: {e}")))?;
    }
    Ok(record)
}
