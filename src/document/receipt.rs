//! The receipts' one home: the edXML status a recipient reports ([`ReceiptStatus`]), the
//! checks of a delivery receipt, its canonical bytes, its signing and its verification
//! (now, by the server; at the logged time, by an offline audit), and the sender's check
//! of the server's submission receipt.
//!
//! The server (`exchange::receipts`), the client (`client::send`, `client::fetch`) and
//! the audit (`client::audit`) call these functions, so that a receipt is judged the same
//! way wherever it is read. Nothing here knows HTTP or storage.

use std::fmt;

use rustls_pki_types::UnixTime;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{
    DELIVERY_RECEIPT_TYPE, DeliveryReceipt, ReceiptRequest, SUBMISSION_RECEIPT_TYPE,
    SubmissionReceipt,
};
use crate::directory::{DirectoryError, OrgId};
use crate::document::manifest::{self, Manifest, ManifestError};
use crate::document::{DocSignature, Role, RoleError, check_signer};
use crate::notary::{self, KeyPurpose, NotaryError, PublicKeyInfo, Signed};
use crate::pki::PkiError;
use crate::pki::signing::{JudgedAt, SignatureError, SigningKey, SigningTrust, VerifiedSigner};

/// Longest receipt note, in characters.
pub const NOTE_CHARS_MAX: usize = 1000;
/// How far a receipt's stated time may be from the server's clock.
pub const RECEIPT_CLOCK_SKEW: time::Duration = time::Duration::hours(24);

/// An edXML status code a delivery receipt carries (QCVN 102:2016). On the wire, on disk
/// and in the log it is the same two-digit string it always was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReceiptStatus {
    /// `01`: the document arrived.
    #[serde(rename = "01")]
    Arrived,
    /// `02`: the recipient returned it (with a reason).
    #[serde(rename = "02")]
    Returned,
    /// `03`: the recipient accepted it into its incoming register.
    #[serde(rename = "03")]
    Accepted,
    /// `04`: it was assigned to someone.
    #[serde(rename = "04")]
    Assigned,
    /// `05`: it is being processed.
    #[serde(rename = "05")]
    Processing,
    /// `06`: its processing is complete.
    #[serde(rename = "06")]
    Completed,
    /// `13`: the sender requested a recall (the sender's act, never a recipient's).
    #[serde(rename = "13")]
    RecallRequested,
    /// `15`: the recipient agreed to a recall or an update.
    #[serde(rename = "15")]
    Agreed,
    /// `16`: the recipient refused a recall or an update.
    #[serde(rename = "16")]
    Refused,
}

impl ReceiptStatus {
    /// Every status, in code order.
    pub const ALL: [ReceiptStatus; 9] = [
        ReceiptStatus::Arrived,
        ReceiptStatus::Returned,
        ReceiptStatus::Accepted,
        ReceiptStatus::Assigned,
        ReceiptStatus::Processing,
        ReceiptStatus::Completed,
        ReceiptStatus::RecallRequested,
        ReceiptStatus::Agreed,
        ReceiptStatus::Refused,
    ];

    /// The two-digit edXML code.
    pub fn code(self) -> &'static str {
        match self {
            ReceiptStatus::Arrived => "01",
            ReceiptStatus::Returned => "02",
            ReceiptStatus::Accepted => "03",
            ReceiptStatus::Assigned => "04",
            ReceiptStatus::Processing => "05",
            ReceiptStatus::Completed => "06",
            ReceiptStatus::RecallRequested => "13",
            ReceiptStatus::Agreed => "15",
            ReceiptStatus::Refused => "16",
        }
    }

    /// The status with this two-digit code, if it is one.
    pub fn from_code(code: &str) -> Option<ReceiptStatus> {
        ReceiptStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The Vietnamese label, as the desk shows it (without the code).
    pub fn label_vi(self) -> &'static str {
        match self {
            ReceiptStatus::Arrived => "Đã đến",
            ReceiptStatus::Returned => "Trả lại",
            ReceiptStatus::Accepted => "Tiếp nhận",
            ReceiptStatus::Assigned => "Phân công",
            ReceiptStatus::Processing => "Đang xử lý",
            ReceiptStatus::Completed => "Hoàn thành",
            ReceiptStatus::RecallRequested => "Đề nghị thu hồi",
            ReceiptStatus::Agreed => "Đồng ý thu hồi/cập nhật",
            ReceiptStatus::Refused => "Từ chối thu hồi/cập nhật",
        }
    }

    /// The English label, as the desk shows it (without the code).
    pub fn label_en(self) -> &'static str {
        match self {
            ReceiptStatus::Arrived => "Arrived",
            ReceiptStatus::Returned => "Returned",
            ReceiptStatus::Accepted => "Accepted",
            ReceiptStatus::Assigned => "Assigned",
            ReceiptStatus::Processing => "Processing",
            ReceiptStatus::Completed => "Completed",
            ReceiptStatus::RecallRequested => "Recall requested",
            ReceiptStatus::Agreed => "Recall/update agreed",
            ReceiptStatus::Refused => "Recall/update refused",
        }
    }

    /// Whether this status answers a recall or an update (`15` or `16`).
    pub fn answers_request(self) -> bool {
        matches!(self, ReceiptStatus::Agreed | ReceiptStatus::Refused)
    }

    /// Every code, joined by ", " (for messages).
    pub fn list() -> String {
        ReceiptStatus::ALL.map(ReceiptStatus::code).join(", ")
    }
}

impl fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for ReceiptStatus {
    type Err = ReceiptError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReceiptStatus::from_code(s).ok_or_else(|| ReceiptError::UnknownStatus(s.to_owned()))
    }
}

/// Why a receipt (delivery or submission) is refused. The sentences of the kinds a
/// server reports as `receipt_invalid` are the ones the API has always given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The statement's `type` is not a delivery receipt.
    #[error("type must be {DELIVERY_RECEIPT_TYPE}")]
    WrongType,
    /// The statement names another document.
    #[error("the receipt names another document")]
    OtherDocument,
    /// The statement names another recipient than the one that posts it.
    #[error("the receipt is for {stated}, but this connection is {caller}")]
    OtherRecipient {
        /// The recipient the statement names.
        stated: String,
        /// The organisation that posts it.
        caller: OrgId,
    },
    /// The statement's digests are not the document's.
    #[error("the receipt's digests do not match the document")]
    DigestMismatch,
    /// The status is not an edXML receipt status.
    #[error("status {0:?} is not one of {list}", list = ReceiptStatus::list())]
    UnknownStatus(String),
    /// `02` without a reason.
    #[error("status 02 (rejected) needs a note giving the reason")]
    ReasonMissing,
    /// The note is too long, not NFC, or holds control characters.
    #[error("the note must be NFC text of at most {NOTE_CHARS_MAX} characters")]
    NoteInvalid,
    /// The stated time is not RFC 3339.
    #[error("time {0:?} is not RFC 3339")]
    TimeInvalid(String),
    /// The stated time is too far from the server's clock.
    #[error("the receipt's time is more than a day from the server's clock")]
    TimeSkew,
    /// The signature claims another role than the organisation's.
    #[error("a receipt is signed with the organisation's key (role organization)")]
    WrongRole,
    /// The statement has no RFC 8785 form.
    #[error("the receipt has no canonical form: {0}")]
    Canonical(#[source] ManifestError),
    /// The statement does not serialise.
    #[error("the receipt does not serialise: {0}")]
    Encode(#[source] serde_json::Error),
    /// A recorded receipt has no statement.
    #[error("the receipt has no statement")]
    NoStatement,
    /// A recorded receipt's signature does not decode.
    #[error("the receipt's signature is malformed: {0}")]
    SignatureMalformed(#[source] serde_json::Error),
    /// The time a recorded receipt is judged at is not RFC 3339.
    #[error("event time {0:?} is not RFC 3339")]
    EventTimeInvalid(String),
    /// The signature does not verify.
    #[error("the receipt's signature does not verify: {0}")]
    Signature(#[source] SignatureError),
    /// The organisation a recorded receipt is attributed to is not an organisation id.
    #[error("receipt actor {actor:?}: {source}")]
    Actor {
        /// The id as recorded.
        actor: String,
        /// Why it is not one.
        source: DirectoryError,
    },
    /// The signer's certificate is not the organisation's seal certificate.
    #[error("the receipt is signed by {identity}: {source}")]
    Signer {
        /// The signer's identity (URI).
        identity: String,
        /// Why it may not sign.
        source: RoleError,
    },
    /// Signing a receipt failed.
    #[error(transparent)]
    Sign(#[from] PkiError),
    /// The server's signature on a submission receipt does not verify.
    #[error("submission receipt: {0}")]
    SubmissionUnsigned(#[source] NotaryError),
    /// A submission receipt's statement does not decode.
    #[error("submission receipt: {0}")]
    SubmissionMalformed(#[source] serde_json::Error),
    /// A submission receipt names another document, other digests or other parties.
    #[error("the submission receipt does not match the document that was sent")]
    SubmissionMismatch,
}

/// A recipient's receipt as the server records and logs it: the statement and the
/// organisation's signature over its RFC 8785 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SignedReceipt {
    /// The statement.
    pub receipt: DeliveryReceipt,
    /// The recipient organisation's signature.
    pub signature: DocSignature,
}

impl Serialize for SignedReceipt {
    /// Written as a JSON value is (keys in sorted order, at every level), exactly as
    /// receipts have always been stored and logged, so that old and new records and log
    /// leaves are the same bytes.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = serde_json::Map::new();
        let receipt = statement(&self.receipt).map_err(serde::ser::Error::custom)?;
        let signature = serde_json::to_value(&self.signature).map_err(serde::ser::Error::custom)?;
        map.insert("receipt".to_owned(), receipt);
        map.insert("signature".to_owned(), signature);
        serde_json::Value::Object(map).serialize(s)
    }
}

/// What a delivery receipt must agree with: the document as the server stores it.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The document.
    pub document_id: Uuid,
    /// The organisation that posts the receipt (the TLS identity).
    pub recipient: &'a OrgId,
    /// SHA-256 of the manifest's canonical bytes.
    pub manifest_sha256: &'a str,
    /// SHA-256 of the payload.
    pub payload_sha256: &'a str,
}

/// Checks a posted receipt's statement against the document and the clock `now`, and
/// the role its signature claims, and returns its status. The order of the checks is the
/// order in which the server has always named the first fault.
pub fn check(
    request: &ReceiptRequest,
    expected: &Expected<'_>,
    now: time::OffsetDateTime,
) -> Result<ReceiptStatus, ReceiptError> {
    let receipt = &request.receipt;
    if receipt.kind != DELIVERY_RECEIPT_TYPE {
        return Err(ReceiptError::WrongType);
    }
    if receipt.document_id != expected.document_id {
        return Err(ReceiptError::OtherDocument);
    }
    if receipt.recipient != expected.recipient.as_str() {
        return Err(ReceiptError::OtherRecipient {
            stated: receipt.recipient.clone(),
            caller: expected.recipient.clone(),
        });
    }
    if receipt.manifest_sha256 != expected.manifest_sha256
        || receipt.payload_sha256 != expected.payload_sha256
    {
        return Err(ReceiptError::DigestMismatch);
    }
    let status: ReceiptStatus = receipt.status.parse()?;
    if status == ReceiptStatus::Returned && receipt.note.trim().is_empty() {
        return Err(ReceiptError::ReasonMissing);
    }
    if receipt.note.chars().count() > NOTE_CHARS_MAX
        || !unicode_normalization::is_nfc(&receipt.note)
        || receipt.note.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ReceiptError::NoteInvalid);
    }
    let stated = time::OffsetDateTime::parse(
        &receipt.time,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| ReceiptError::TimeInvalid(receipt.time.clone()))?;
    if (stated - now).abs() > RECEIPT_CLOCK_SKEW {
        return Err(ReceiptError::TimeSkew);
    }
    if request.signature.role != Role::Organization {
        return Err(ReceiptError::WrongRole);
    }
    Ok(status)
}

/// The statement as JSON, exactly as it is signed, recorded and logged.
pub fn statement(receipt: &DeliveryReceipt) -> Result<serde_json::Value, ReceiptError> {
    serde_json::to_value(receipt).map_err(ReceiptError::Encode)
}

/// The RFC 8785 bytes a recipient signs: those of [`statement`].
pub fn canonical_bytes(statement: &serde_json::Value) -> Result<Vec<u8>, ReceiptError> {
    manifest::canonical_bytes(statement).map_err(ReceiptError::Canonical)
}

/// A delivery receipt signed by the recipient organisation's document-signing key over
/// its RFC 8785 bytes, ready to post.
pub fn sign(key: &SigningKey, receipt: DeliveryReceipt) -> Result<ReceiptRequest, ReceiptError> {
    let canonical = canonical_bytes(&statement(&receipt)?)?;
    let signature = DocSignature::raw(
        Role::Organization,
        key.algorithm(),
        &key.sign(&canonical)?,
        &key.chain,
    );
    Ok(ReceiptRequest { receipt, signature })
}

/// Verifies a receipt's signature over `canonical` judged `at`, and that the signer is
/// `org`'s seal certificate: a receipt is the organisation's act, never a person's.
pub fn verify(
    trust: &SigningTrust,
    signature: &DocSignature,
    canonical: &[u8],
    at: JudgedAt,
    org: &OrgId,
) -> Result<VerifiedSigner, ReceiptError> {
    let signer = signature
        .verify_at(trust, canonical, at)
        .map_err(ReceiptError::Signature)?;
    check_signer(Role::Organization, &signer.cert, org, "").map_err(|source| {
        ReceiptError::Signer {
            identity: signer.cert.identity.to_string(),
            source,
        }
    })?;
    Ok(signer)
}

/// The offline check of a receipt as the log records it (`{"receipt": statement,
/// "signature": …}`), attributed to `actor`: judged as of the log's time for the event
/// (`time`, the server's signed record of when it took the receipt), so that a
/// recipient's certificate retired later for a routine reason leaves its old receipts
/// valid. The CRLs must have been current then.
pub fn verify_recorded(
    trust: &SigningTrust,
    actor: &str,
    signed: &serde_json::Value,
    time: &str,
) -> Result<(), ReceiptError> {
    let statement = signed.get("receipt").ok_or(ReceiptError::NoStatement)?;
    let signature: DocSignature =
        serde_json::from_value(signed.get("signature").cloned().unwrap_or_default())
            .map_err(ReceiptError::SignatureMalformed)?;
    let bytes = canonical_bytes(statement)?;
    let when = time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ReceiptError::EventTimeInvalid(time.to_owned()))?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(when.unix_timestamp()).unwrap_or(0),
    ));
    let actor_id = OrgId::parse(actor).map_err(|source| ReceiptError::Actor {
        actor: actor.to_owned(),
        source,
    })?;
    verify(
        trust,
        &signature,
        &bytes,
        JudgedAt::Signed {
            signed: at,
            crls_current_at: at,
        },
        &actor_id,
    )
    .map(drop)
}

/// The sender's check of a submission receipt: the server's receipts key signed it, and
/// it names this document with these digests and parties.
pub fn check_submission(
    receipt: &Signed,
    keys: &[PublicKeyInfo],
    manifest: &Manifest,
    manifest_sha256: &str,
) -> Result<SubmissionReceipt, ReceiptError> {
    notary::verify(receipt, keys, KeyPurpose::Receipts, SUBMISSION_RECEIPT_TYPE)
        .map_err(ReceiptError::SubmissionUnsigned)?;
    let statement: SubmissionReceipt = serde_json::from_value(receipt.statement.clone())
        .map_err(ReceiptError::SubmissionMalformed)?;
    if statement.document_id != manifest.id
        || statement.manifest_sha256 != manifest_sha256
        || statement.payload_sha256 != manifest.payload.sha256
        || statement.payload_size != manifest.payload.size
        || statement.sender != manifest.sender.as_str()
        || !statement
            .recipients
            .iter()
            .map(String::as_str)
            .eq(manifest.recipients.iter().map(OrgId::as_str))
    {
        return Err(ReceiptError::SubmissionMismatch);
    }
    Ok(statement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_travel_as_their_two_digit_codes() {
        for status in ReceiptStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.code()));
            let back: ReceiptStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(back, status);
            assert_eq!(ReceiptStatus::from_code(status.code()), Some(status));
            assert!(!status.label_vi().is_empty() && !status.label_en().is_empty());
        }
        assert!(serde_json::from_str::<ReceiptStatus>("\"07\"").is_err());
        assert_eq!(ReceiptStatus::list(), "01, 02, 03, 04, 05, 06, 13, 15, 16");
        assert!(matches!(
            "1".parse::<ReceiptStatus>(),
            Err(ReceiptError::UnknownStatus(s)) if s == "1"
        ));
    }

    #[test]
    fn the_statement_is_checked_in_the_servers_order() {
        let org = OrgId::parse("hn/cm/chuc-son").unwrap();
        let id = Uuid::nil();
        let now = time::OffsetDateTime::now_utc();
        let receipt = DeliveryReceipt {
            kind: DELIVERY_RECEIPT_TYPE.to_owned(),
            document_id: id,
            recipient: org.to_string(),
            manifest_sha256: "m".into(),
            payload_sha256: "p".into(),
            status: "02".into(),
            time: crate::api::now_rfc3339(),
            note: String::new(),
        };
        let request = |receipt: DeliveryReceipt| ReceiptRequest {
            receipt,
            signature: DocSignature::cms(Role::Organization, b"x"),
        };
        let expected = Expected {
            document_id: id,
            recipient: &org,
            manifest_sha256: "m",
            payload_sha256: "p",
        };
        let judge = |r: DeliveryReceipt| check(&request(r), &expected, now);
        assert!(matches!(
            judge(receipt.clone()),
            Err(ReceiptError::ReasonMissing)
        ));
        let good = DeliveryReceipt {
            note: "sai nơi nhận".into(),
            ..receipt.clone()
        };
        assert_eq!(judge(good.clone()).unwrap(), ReceiptStatus::Returned);
        let e = judge(DeliveryReceipt {
            status: "99".into(),
            ..good.clone()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "status \"99\" is not one of 01, 02, 03, 04, 05, 06, 13, 15, 16"
        );
        assert!(matches!(
            judge(DeliveryReceipt {
                payload_sha256: "q".into(),
                ..good.clone()
            }),
            Err(ReceiptError::DigestMismatch)
        ));
        assert!(matches!(
            judge(DeliveryReceipt {
                time: "2000-01-01T00:00:00Z".into(),
                ..good.clone()
            }),
            Err(ReceiptError::TimeSkew)
        ));
        let mut person = request(good);
        person.signature.role = Role::Person;
        assert!(matches!(
            check(&person, &expected, now),
            Err(ReceiptError::WrongRole)
        ));
    }
}
