//! Building a manifest: the one place a sender assembles a [`Manifest`], used by
//! `congvan send` (and through it the demo and the desk) and by the load generator.
//!
//! A [`Draft`] holds what a person decides (recipients, type, number, subject, signer…);
//! [`Draft::manifest`] adds what the files decide (attachments and payload) and the time.
//! Text fields are put in Unicode NFC here, because the server refuses a manifest that is
//! not NFC and the signatures cover the exact bytes. The rule that the outer manifest of a
//! classified document carries routing fields only is written once, in
//! [`outer_manifest`].

use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::manifest::{
    Attachment, Business, BusinessKind, Classification, DocCode, MANIFEST_VERSION, Manifest,
    PayloadInfo, Promulgated, Signer, Urgency,
};
use crate::directory::OrgId;

/// A document being prepared: every manifest field a sender chooses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The document id (UUIDv7), the idempotency key.
    pub id: Uuid,
    /// The sending organisation.
    pub sender: OrgId,
    /// Every recipient, already expanded.
    pub recipients: Vec<OrgId>,
    /// Document type (CV, QĐ, CT…).
    pub doc_type: String,
    /// Number.
    pub number: String,
    /// Notation.
    pub notation: String,
    /// Subject (trích yếu).
    pub subject: String,
    /// Date of promulgation, `YYYY-MM-DD`.
    pub date: String,
    /// Place of promulgation.
    pub place: String,
    /// The competent signer.
    pub signer: Signer,
    /// Urgency.
    pub urgency: Urgency,
    /// Deadline for urgency 4 (RFC 3339).
    pub deadline: Option<String>,
    /// Classification.
    pub classification: Classification,
    /// Steering type 1–3.
    pub steering: u8,
    /// Date by which a response is due.
    pub due: Option<String>,
    /// The document this one answers.
    pub response_for: Option<Uuid>,
    /// The business operation and its target.
    pub business: Business,
    /// When the manifest says it was made (RFC 3339, UTC); the time [`Draft::manifest`]
    /// is called when `None`. A retry of an interrupted send sets the first attempt's
    /// time, so that it signs the same bytes.
    pub created_at: Option<String>,
}

impl Draft {
    /// A new, unclassified, normal-urgency document (`new` business, steering 1, no
    /// subject, place or signer yet) of `doc_type` from `sender` to `recipients`; set the
    /// other fields as needed.
    pub fn new(
        id: Uuid,
        sender: OrgId,
        recipients: Vec<OrgId>,
        doc_type: &str,
        number: &str,
        notation: &str,
        date: &str,
    ) -> Draft {
        Draft {
            id,
            sender,
            recipients,
            doc_type: doc_type.to_owned(),
            number: number.to_owned(),
            notation: notation.to_owned(),
            subject: String::new(),
            date: date.to_owned(),
            place: String::new(),
            signer: Signer {
                competence: String::new(),
                position: String::new(),
                full_name: String::new(),
            },
            urgency: Urgency::Thuong,
            deadline: None,
            classification: Classification::Thuong,
            steering: 1,
            due: None,
            response_for: None,
            business: Business {
                kind: BusinessKind::New,
                target: None,
            },
            created_at: None,
        }
    }

    /// The manifest of an unclassified document, or the inner manifest of a classified
    /// one: this draft with `attachments` and the `payload` they make, made now.
    pub fn manifest(&self, attachments: Vec<Attachment>, payload: PayloadInfo) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            id: self.id,
            sender: self.sender.clone(),
            recipients: self.recipients.clone(),
            code: DocCode {
                number: nfc(&self.number),
                notation: nfc(&self.notation),
            },
            doc_type: nfc(&self.doc_type),
            subject: nfc(&self.subject),
            promulgated: Promulgated {
                date: self.date.clone(),
                place: nfc(&self.place),
            },
            signer: Signer {
                competence: nfc(&self.signer.competence),
                position: nfc(&self.signer.position),
                full_name: nfc(&self.signer.full_name),
            },
            urgency: self.urgency,
            deadline: self.deadline.clone(),
            classification: self.classification,
            steering: self.steering,
            due: self.due.clone(),
            response_for: self.response_for,
            business: self.business.clone(),
            attachments,
            payload,
            created_at: self
                .created_at
                .clone()
                .unwrap_or_else(crate::api::now_rfc3339),
        }
    }
}

/// What a sealed (encrypted) payload is, as the outer manifest states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedPayload {
    /// SHA-256 of the OpenPGP message, lower-case hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The outer manifest of a classified document, made from its inner manifest: the server
/// sees routing fields only, so the subject and the attachments are dropped and the
/// payload is the sealed message. Every other field (and so the id, the time and the
/// signer) is the inner manifest's, which lets a recipient check that the two agree.
pub fn outer_manifest(inner: Manifest, sealed: SealedPayload) -> Manifest {
    Manifest {
        subject: String::new(),
        attachments: Vec::new(),
        payload: PayloadInfo {
            sha256: sealed.sha256,
            size: sealed.size,
            encrypted: true,
        },
        ..inner
    }
}

/// `s` in NFC. Most text already is (and ASCII always is): the quick check lets it be
/// copied instead of decomposed and recomposed.
fn nfc(s: &str) -> String {
    match unicode_normalization::is_nfc_quick(s.chars()) {
        unicode_normalization::IsNormalized::Yes => s.to_owned(),
        _ => s.nfc().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::manifest::{Layer, ManifestRules};

    fn draft() -> Draft {
        let mut d = Draft::new(
            Uuid::now_v7(),
            OrgId::parse("hn/cm").unwrap(),
            vec![OrgId::parse("hn/cm/chuc-son").unwrap()],
            "CV",
            "12",
            "CV/HU",
            "2026-01-01",
        );
        // "Hà Nội" written with a combining grave accent, as some keyboards type it.
        d.place = "Ha\u{300} Nội".into();
        d.subject = "Về việc thử".into();
        d.signer = Signer {
            competence: "TM.".into(),
            position: "Bí thư".into(),
            full_name: "Nguyễn Văn A".into(),
        };
        d
    }

    fn attachment() -> (Vec<Attachment>, PayloadInfo) {
        let sha = "ab".repeat(32);
        (
            vec![Attachment {
                name: "a.pdf".into(),
                media_type: "application/pdf".into(),
                size: 3,
                sha256: sha.clone(),
            }],
            PayloadInfo {
                sha256: sha,
                size: 3,
                encrypted: false,
            },
        )
    }

    #[test]
    fn a_draft_makes_the_same_canonical_bytes_as_the_literal_it_replaces() {
        let d = draft();
        let (attachments, payload) = attachment();
        let built = d.manifest(attachments.clone(), payload.clone());
        let literal = Manifest {
            version: MANIFEST_VERSION,
            id: d.id,
            sender: d.sender.clone(),
            recipients: d.recipients.clone(),
            code: DocCode {
                number: "12".into(),
                notation: "CV/HU".into(),
            },
            doc_type: "CV".into(),
            subject: "Về việc thử".into(),
            promulgated: Promulgated {
                date: "2026-01-01".into(),
                place: "Hà Nội".into(),
            },
            signer: d.signer.clone(),
            urgency: Urgency::Thuong,
            deadline: None,
            classification: Classification::Thuong,
            steering: 1,
            due: None,
            response_for: None,
            business: Business {
                kind: BusinessKind::New,
                target: None,
            },
            attachments,
            payload,
            created_at: built.created_at.clone(),
        };
        assert_eq!(built.canonical().unwrap(), literal.canonical().unwrap());
        assert_eq!(built.promulgated.place, "Hà Nội", "text is put in NFC");
        built
            .validate_layer(&ManifestRules::default(), Layer::Outer)
            .unwrap();
    }

    #[test]
    fn a_draft_with_a_time_makes_the_same_bytes_twice() {
        let mut d = draft();
        d.created_at = Some("2026-01-01T08:00:00Z".into());
        let (attachments, payload) = attachment();
        let first = d.manifest(attachments.clone(), payload.clone());
        let again = d.manifest(attachments, payload);
        assert_eq!(first.created_at, "2026-01-01T08:00:00Z");
        assert_eq!(first.canonical().unwrap(), again.canonical().unwrap());
    }

    #[test]
    fn the_outer_manifest_of_a_classified_document_keeps_routing_fields_only() {
        let mut d = draft();
        d.classification = Classification::Mat;
        let (attachments, payload) = attachment();
        let inner = d.manifest(attachments, payload);
        inner
            .validate_layer(&ManifestRules::default(), Layer::Inner)
            .unwrap();
        let sealed = SealedPayload {
            sha256: "cd".repeat(32),
            size: 900,
        };
        let outer = outer_manifest(inner.clone(), sealed);
        assert!(outer.subject.is_empty());
        assert!(outer.attachments.is_empty());
        assert!(outer.payload.encrypted);
        assert_eq!(outer.payload.size, 900);
        assert_eq!(
            (
                outer.id,
                &outer.recipients,
                &outer.created_at,
                &outer.signer
            ),
            (
                inner.id,
                &inner.recipients,
                &inner.created_at,
                &inner.signer
            )
        );
        outer
            .validate_layer(&ManifestRules::default(), Layer::Outer)
            .unwrap();
    }
}
