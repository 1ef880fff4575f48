//! edXML at the client: `congvan edxml export` writes a document (verified as `fetch`
//! verifies it) and its receipts as edXML, and `congvan send --edxml` sends a document an
//! e-office system exported, signed with congvan's two signatures.
//!
//! The mapping (docs/EDXML.md): organisations by their government identifier code
//! (`code` in the directory; an organisation without one is named by its congvan id),
//! document types by their Vietnamese name, dates `YYYY/MM/DD`, priority = urgency,
//! `SteeringType` = steering, `BussinessDocType` 0/1/2/3 = new/recall/update/replace
//! with the target named by its `DocumentId`. The envelope's own signature, which
//! congvan does not verify, travels with the document as the attachment
//! [`crate::edxml::SIGNATURE_ATTACHMENT`].

use std::path::{Path, PathBuf};

use ring::digest;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::endpoints::ListQuery;
use super::fetch::{accepted_time, parse_manifest_any_type, verify_outer_signatures};
use super::send::{SendOutcome, SendRequest};
use super::{Client, ClientError};
use crate::api::{DirectoryOrg, DirectoryStatement, DocumentView, StatusView};
use crate::directory::OrgId;
use crate::document::manifest::{self, BusinessKind, Manifest, Urgency};
use crate::document::sha256_hex;
use crate::edxml::{self, EdxmlError, Envelope, Limits, Organ};
use crate::pki::identity::hex;
use crate::pki::signing::JudgedAt;

/// Document types by their Vietnamese names, as edXML's `TypeName` carries them.
pub const DOC_TYPE_NAMES: [(&str, &str); 15] = [
    ("NQ", "Nghị quyết"),
    ("QĐ", "Quyết định"),
    ("CT", "Chỉ thị"),
    ("KL", "Kết luận"),
    ("QC", "Quy chế"),
    ("QyĐ", "Quy định"),
    ("TT", "Thông tri"),
    ("HD", "Hướng dẫn"),
    ("BC", "Báo cáo"),
    ("KH", "Kế hoạch"),
    ("CTr", "Chương trình"),
    ("TB", "Thông báo"),
    ("TTr", "Tờ trình"),
    ("CV", "Công văn"),
    ("BB", "Biên bản"),
];

/// What `edxml export` wrote.
#[derive(Debug)]
pub struct Exported {
    /// The envelope.
    pub envelope: PathBuf,
    /// One status packet per recorded receipt (only for the document's sender, who is
    /// the one who sees the receipts).
    pub status_packets: Vec<PathBuf>,
}

fn unmapped(msg: impl Into<String>) -> ClientError {
    ClientError::Edxml(EdxmlError::Unmapped(msg.into()))
}

fn entry<'a>(directory: &'a DirectoryStatement, id: &str) -> Option<&'a DirectoryOrg> {
    directory.orgs.iter().find(|o| o.id == id)
}

/// The edXML `OrganId` of an organisation: its code, else its congvan id.
fn organ_id(directory: &DirectoryStatement, id: &str) -> String {
    entry(directory, id)
        .and_then(|o| o.code.clone())
        .unwrap_or_else(|| id.to_owned())
}

fn organ(directory: &DirectoryStatement, id: &str) -> Organ {
    let org = entry(directory, id);
    let in_charge = org
        .and_then(|o| o.parent.as_deref())
        .and_then(|p| entry(directory, p))
        .map(|p| p.name.clone())
        .unwrap_or_default();
    Organ {
        organ_id: organ_id(directory, id),
        organization_in_charge: in_charge,
        organ_name: org.map(|o| o.name.clone()).unwrap_or_default(),
    }
}

/// The congvan organisation an edXML `OrganId` names: by code, else by id.
fn org_of(directory: &DirectoryStatement, organ_id: &str) -> Result<OrgId, ClientError> {
    directory
        .orgs
        .iter()
        .find(|o| o.code.as_deref() == Some(organ_id))
        .or_else(|| directory.orgs.iter().find(|o| o.id == organ_id))
        .and_then(|o| OrgId::parse(&o.id).ok())
        .ok_or_else(|| {
            unmapped(format!(
                "OrganId {organ_id:?} is no organisation in the directory (by code or id)"
            ))
        })
}

fn manifest_document_id(directory: &DirectoryStatement, m: &Manifest) -> String {
    edxml::document_id(
        &organ_id(directory, m.sender.as_str()),
        &edxml::edxml_date(&m.promulgated.date),
        &m.code.number,
        &m.code.notation,
    )
}

impl Client {
    /// Writes document `id` as an edXML envelope at `out`, after verifying it as `fetch`
    /// does (manifest digest, every signature against this profile's anchor and CRLs,
    /// payload and file digests). The sender also gets one status packet per receipt,
    /// in the directory `<out>.status`. Classified documents are refused: edXML would
    /// carry their files in the clear.
    pub async fn edxml_export(&self, id: &Uuid, out: &Path) -> Result<Exported, ClientError> {
        let me = self.own_org()?;
        let view: DocumentView = self.document(id).await?;
        let text = view.manifest.get();
        if sha256_hex(text.as_bytes()) != view.manifest_sha256 {
            return Err(ClientError::Trust(
                "the manifest does not hash to the digest the server states".into(),
            ));
        }
        let parsed = parse_manifest_any_type(text, manifest::Layer::Outer)?;
        let m = parsed.manifest.clone();
        if m.id != *id {
            return Err(ClientError::Trust(
                "the server returned another document".into(),
            ));
        }
        if m.classification.is_classified() {
            return Err(unmapped(format!(
                "{id} is {}: edXML would carry its files in the clear, so classified documents are not exported",
                m.classification.label()
            )));
        }
        let directory = self.directory().await?;
        let required = entry(&directory, m.sender.as_str())
            .map(|o| o.required_signatures.clone())
            .unwrap_or_default();
        // Judged as `fetch` judges them: at the server's signed acceptance time.
        let receipt = view
            .receipt
            .as_ref()
            .ok_or_else(|| ClientError::Trust("the document has no submission receipt".into()))?;
        let keys = self.server_keys().await?;
        let statement = super::send::check_receipt(receipt, &keys, &m, &view.manifest_sha256)?;
        let accepted = accepted_time(&statement.accepted_at)?;
        let trust = self.signing_trust().await?;
        let canonical = parsed.canonical.clone();
        let signatures = view.signatures.clone();
        let checked = m.clone();
        tokio::task::spawn_blocking(move || {
            verify_outer_signatures(
                &trust,
                &canonical,
                &checked,
                &signatures,
                &required,
                JudgedAt::Signed {
                    signed: accepted,
                    crls_current_at: rustls_pki_types::UnixTime::now(),
                },
            )
        })
        .await
        .map_err(ClientError::Background)??;

        let payload = self.download_all(id, &m).await?;
        let mut attachments = Vec::new();
        let mut offset = 0usize;
        for (i, a) in m.attachments.iter().enumerate() {
            let size = usize::try_from(a.size)
                .map_err(|_| ClientError::Input(format!("{} is too large", a.name)))?;
            let data = payload
                .get(offset..offset + size)
                .ok_or_else(|| ClientError::Trust(format!("{} is truncated", a.name)))?;
            if hex(digest::digest(&digest::SHA256, data).as_ref()) != a.sha256 {
                return Err(ClientError::Trust(format!(
                    "{} does not match its SHA-256 in the manifest",
                    a.name
                )));
            }
            offset += size;
            attachments.push(edxml::Attachment {
                content_id: format!("cid:{}", i + 1),
                name: a.name.clone(),
                content_type: a.media_type.clone(),
                data: data.to_vec(),
            });
        }

        let (kind, reason) = match m.business.kind {
            BusinessKind::New => (0, "Văn bản mới"),
            BusinessKind::Recall => (1, "Thu hồi văn bản"),
            BusinessKind::Update => (2, "Cập nhật văn bản"),
            BusinessKind::Replace => (3, "Thay thế văn bản"),
        };
        let target = match m.business.target {
            None => None,
            Some(target) => {
                // The target's DocumentId, when this caller may see the target.
                match self.document(&target).await {
                    Ok(v) => parse_manifest_any_type(v.manifest.get(), manifest::Layer::Outer)
                        .ok()
                        .map(|t| manifest_document_id(&directory, &t.manifest)),
                    Err(_) => None,
                }
            }
        };
        let doc_type_name = DOC_TYPE_NAMES
            .iter()
            .find(|(code, _)| *code == m.doc_type)
            .map_or(m.doc_type.as_str(), |(_, name)| name);
        let envelope = Envelope {
            from: organ(&directory, m.sender.as_str()),
            to: m
                .recipients
                .iter()
                .map(|r| organ(&directory, r.as_str()))
                .collect(),
            document_id: manifest_document_id(&directory, &m),
            code_number: m.code.number.clone(),
            code_notation: m.code.notation.clone(),
            place: m.promulgated.place.clone(),
            promulgation_date: edxml::edxml_date(&m.promulgated.date),
            type_code: "1".into(),
            type_name: doc_type_name.to_owned(),
            subject: m.subject.clone(),
            content: m.subject.clone(),
            competence: m.signer.competence.clone(),
            position: m.signer.position.clone(),
            full_name: m.signer.full_name.clone(),
            due_date: m.due.as_deref().map(edxml::edxml_date),
            to_places: m
                .recipients
                .iter()
                .map(|r| organ(&directory, r.as_str()).organ_name)
                .collect(),
            priority: m.urgency.into(),
            steering_type: m.steering,
            trace: vec![edxml::TraceHeader {
                organ_id: organ_id(&directory, m.sender.as_str()),
                timestamp: edxml::edxml_timestamp(
                    view.accepted_at.as_deref().unwrap_or(&m.created_at),
                ),
            }],
            business: edxml::Business {
                doc_type: kind,
                reason: reason.to_owned(),
                document_id: target,
            },
            attachments,
            signature: None,
        };
        let bytes = edxml::write_envelope(&envelope)?;
        crate::pki::pem::write_public(out, &bytes)?;

        let mut status_packets = Vec::new();
        if m.sender == me {
            let status: StatusView = self.status(id).await?;
            let dir = PathBuf::from(format!("{}.status", out.display()));
            std::fs::create_dir_all(&dir).map_err(|source| ClientError::File {
                path: dir.clone(),
                source,
            })?;
            for recipient in &status.recipients {
                for signed in &recipient.receipts {
                    let r = &signed["receipt"];
                    let code = r["status"].as_str().unwrap_or_default();
                    let packet = edxml::StatusPacket {
                        response_for: edxml::ResponseFor {
                            organ_id: envelope.from.organ_id.clone(),
                            code: format!("{}/{}", m.code.number, m.code.notation),
                            promulgation_date: envelope.promulgation_date.clone(),
                            document_id: envelope.document_id.clone(),
                        },
                        from: organ(&directory, &recipient.org),
                        status_code: code.to_owned(),
                        description: r["note"].as_str().unwrap_or_default().to_owned(),
                        timestamp: edxml::edxml_timestamp(r["time"].as_str().unwrap_or_default()),
                    };
                    let path = dir.join(format!(
                        "{:02}-{}-{code}.xml",
                        status_packets.len() + 1,
                        recipient.org.replace('/', ".")
                    ));
                    crate::pki::pem::write_public(&path, &edxml::write_status(&packet)?)?;
                    status_packets.push(path);
                }
            }
        }
        Ok(Exported {
            envelope: out.to_owned(),
            status_packets,
        })
    }

    /// The whole payload of an unclassified document, checked against the manifest.
    async fn download_all(&self, id: &Uuid, m: &Manifest) -> Result<Vec<u8>, ClientError> {
        let limit = Limits::default().input_bytes_max as u64;
        if m.payload.size > limit {
            return Err(ClientError::Edxml(EdxmlError::TooLarge(format!(
                "the document's files are {} bytes; an edXML file may hold at most {limit}",
                m.payload.size
            ))));
        }
        let mut response = self.payload(id).await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ClientError::Protocol(super::error_chain(&e)))?
        {
            if (bytes.len() + chunk.len()) as u64 > m.payload.size {
                return Err(ClientError::Trust(
                    "the payload is longer than the manifest says".into(),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != m.payload.size || sha256_hex(&bytes) != m.payload.sha256 {
            return Err(ClientError::Trust(
                "the payload does not match the signed manifest (size or SHA-256 differs)".into(),
            ));
        }
        Ok(bytes)
    }

    /// Reads the edXML envelope at `path` and sends it as a congvan document from this
    /// profile's organisation, which must be its `From`.
    pub async fn send_edxml(&self, path: &Path) -> Result<SendOutcome, ClientError> {
        let limits = Limits::default();
        let size = std::fs::metadata(path)
            .map_err(|source| ClientError::File {
                path: path.to_owned(),
                source,
            })?
            .len();
        if size > limits.input_bytes_max as u64 {
            return Err(ClientError::Edxml(EdxmlError::TooLarge(format!(
                "{} is {size} bytes; at most {} are accepted",
                path.display(),
                limits.input_bytes_max
            ))));
        }
        let bytes = std::fs::read(path).map_err(|source| ClientError::File {
            path: path.to_owned(),
            source,
        })?;
        let envelope = tokio::task::spawn_blocking(move || edxml::read_envelope(&bytes, &limits))
            .await
            .map_err(ClientError::Background)??;
        let staging = tempfile::Builder::new()
            .prefix(".congvan-edxml-")
            .tempdir()
            .map_err(ClientError::TempFile)?;
        let request = self.request_from(&envelope, staging.path()).await?;
        self.send_document(&request).await
    }

    /// Maps an envelope to a send request, writing its files into `dir`.
    pub async fn request_from(
        &self,
        envelope: &Envelope,
        dir: &Path,
    ) -> Result<SendRequest, ClientError> {
        let me = self.own_org()?;
        let directory = self.directory().await?;
        let from = org_of(&directory, &envelope.from.organ_id)?;
        if from != me {
            return Err(unmapped(format!(
                "the envelope is from {} ({from}), but this profile sends as {me}",
                envelope.from.organ_id
            )));
        }
        let to = envelope
            .to
            .iter()
            .map(|t| org_of(&directory, &t.organ_id))
            .collect::<Result<Vec<_>, _>>()?;
        let type_name: String = envelope.type_name.nfc().collect();
        let doc_type = DOC_TYPE_NAMES
            .iter()
            .find(|(code, name)| {
                name.to_lowercase() == type_name.to_lowercase() || *code == type_name
            })
            .map(|(code, _)| (*code).to_owned())
            .ok_or_else(|| {
                unmapped(format!(
                    "document type {:?} is none of congvan's ({})",
                    envelope.type_name,
                    DOC_TYPE_NAMES
                        .iter()
                        .map(|(_, n)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let urgency = Urgency::try_from(envelope.priority).map_err(|_| {
            EdxmlError::Invalid(format!("Priority {} is not 0–4", envelope.priority))
        })?;
        if urgency == Urgency::HoaTocHenGio {
            return Err(unmapped(
                "priority 4 (hỏa tốc hẹn giờ) needs a deadline time, which edXML does not carry: send it with `congvan send --urgency hoa_toc_hen_gio --deadline …`",
            ));
        }
        let (business, business_target) = match envelope.business.doc_type {
            0 => (BusinessKind::New, None),
            kind => {
                let target = envelope.business.document_id.as_deref().ok_or_else(|| {
                    EdxmlError::Invalid(format!(
                        "BussinessDocType {kind} needs the DocumentId of the document it acts on"
                    ))
                })?;
                let found = self.find_sent(&directory, target).await?;
                let kind = match kind {
                    1 => BusinessKind::Recall,
                    2 => BusinessKind::Update,
                    _ => BusinessKind::Replace,
                };
                (kind, Some(found))
            }
        };

        let mut files = Vec::new();
        let mut attachments: Vec<(String, &[u8])> = envelope
            .attachments
            .iter()
            .map(|a| (a.name.nfc().collect::<String>(), a.data.as_slice()))
            .collect();
        if let Some(signature) = &envelope.signature {
            attachments.push((edxml::SIGNATURE_ATTACHMENT.to_owned(), signature));
        }
        if envelope.attachments.is_empty() {
            return Err(ClientError::Edxml(EdxmlError::Invalid(
                "the envelope carries no file".into(),
            )));
        }
        for (name, data) in attachments {
            // A name is a file name, never a path: the manifest's own rules check it again.
            if name.is_empty()
                || name == "."
                || name == ".."
                || name.contains(['/', '\\'])
                || name.chars().any(char::is_control)
                || name.len() > 255
            {
                return Err(ClientError::Edxml(EdxmlError::Invalid(format!(
                    "attachment name {name:?} is not a plain file name"
                ))));
            }
            let path = dir.join(&name);
            if path.exists() {
                return Err(ClientError::Edxml(EdxmlError::Invalid(format!(
                    "two attachments are named {name:?}"
                ))));
            }
            std::fs::write(&path, data).map_err(|source| ClientError::File {
                path: path.clone(),
                source,
            })?;
            files.push(path);
        }
        let nfc = |s: &str| s.nfc().collect::<String>();
        Ok(SendRequest {
            to,
            urgency,
            steering: envelope.steering_type.clamp(1, 3),
            due: envelope
                .due_date
                .as_deref()
                .map(edxml::iso_date)
                .transpose()?,
            business,
            business_target,
            place: nfc(&envelope.place),
            date: Some(edxml::iso_date(&envelope.promulgation_date)?),
            competence: nfc(&envelope.competence),
            position: Some(nfc(&envelope.position)).filter(|p| !p.is_empty()),
            full_name: Some(nfc(&envelope.full_name)).filter(|p| !p.is_empty()),
            ..SendRequest::new(
                &doc_type,
                &nfc(&envelope.code_number),
                &nfc(&envelope.code_notation),
                &nfc(&envelope.subject),
                files,
            )
        })
    }

    /// The id of the document this organisation sent whose edXML `DocumentId` is
    /// `document_id`.
    async fn find_sent(
        &self,
        directory: &DirectoryStatement,
        document_id: &str,
    ) -> Result<Uuid, ClientError> {
        let page: crate::api::ListPage = self.sent(&ListQuery::limit(500)).await?;
        for item in page.items {
            if !document_id.ends_with(&format!(",{}/{}", item.number, item.notation)) {
                continue;
            }
            let view: DocumentView = self.document(&item.id).await?;
            if let Ok(parsed) = parse_manifest_any_type(view.manifest.get(), manifest::Layer::Outer)
            {
                if manifest_document_id(directory, &parsed.manifest) == document_id {
                    return Ok(item.id);
                }
            }
        }
        Err(unmapped(format!(
            "the document it acts on ({document_id}) is not among the last 500 this organisation sent"
        )))
    }
}
