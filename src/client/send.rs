//! `congvan send`: build a manifest for some files, sign it with the organisation's and
//! the competent person's keys, seal it when classified; `client::upload` submits it,
//! uploads the payload and checks the server's receipt.
//!
//! The payload of an unclassified document is its attachments concatenated in manifest
//! order; each attachment's size and SHA-256 are in the manifest, so a recipient can split
//! and check it without any container format.

use std::io::Read;
use std::path::{Path, PathBuf};

use ring::digest;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::keys::EndorsedKeys;
use super::state::PendingFile;
use super::{Client, ClientError};
use crate::api::{SubmissionReceipt, SubmitRequest};
use crate::config::ClientProfile;
use crate::directory::OrgId;
use crate::document::draft::{Draft, SealedPayload, outer_manifest};
use crate::document::manifest::Layer;
use crate::document::manifest::{
    Attachment, Business, BusinessKind, Classification, Manifest, PayloadInfo, Signer, Urgency,
};
use crate::document::package;
use crate::document::{DocSignature, Role, SignatureFormat};
use crate::notary::{self, Signed};
use crate::pki::identity::{hex, subject_name_and_title};
use crate::pki::signing::SigningKey;
use crate::seal::Cipher;
use std::io::Write as _;

/// Everything `congvan send` needs besides the profile.
#[derive(Clone, Debug)]
pub struct SendRequest {
    /// Recipients named one by one.
    pub to: Vec<OrgId>,
    /// Organisations whose active children all receive the document.
    pub to_children: Vec<OrgId>,
    /// Document type (CV, QĐ, CT…).
    pub doc_type: String,
    /// Number.
    pub number: String,
    /// Notation.
    pub notation: String,
    /// Subject.
    pub subject: String,
    /// Urgency.
    pub urgency: Urgency,
    /// Deadline for urgency 4 (RFC 3339).
    pub deadline: Option<String>,
    /// Classification (only `thuong` until encryption lands).
    pub classification: Classification,
    /// Steering type 1–3.
    pub steering: u8,
    /// Response due date.
    pub due: Option<String>,
    /// The document this one answers.
    pub response_for: Option<Uuid>,
    /// Business operation and target.
    pub business: BusinessKind,
    /// Target of recall/update/replace.
    pub business_target: Option<Uuid>,
    /// Place of promulgation.
    pub place: String,
    /// Date of promulgation (`YYYY-MM-DD`), default today.
    pub date: Option<String>,
    /// Signer competence (TM., KT., …).
    pub competence: String,
    /// Overrides the position read from `person.crt`.
    pub position: Option<String>,
    /// Overrides the name read from `person.crt`.
    pub full_name: Option<String>,
    /// Reuse this id (to retry an earlier send idempotently).
    pub id: Option<Uuid>,
    /// The files.
    pub files: Vec<PathBuf>,
}

impl SendRequest {
    /// A new, unclassified, normal-urgency document of `doc_type` number/notation with
    /// `subject` carrying `files`, to nobody yet; set the other fields as needed.
    pub fn new(
        doc_type: &str,
        number: &str,
        notation: &str,
        subject: &str,
        files: Vec<PathBuf>,
    ) -> SendRequest {
        SendRequest {
            to: Vec::new(),
            to_children: Vec::new(),
            doc_type: doc_type.to_owned(),
            number: number.to_owned(),
            notation: notation.to_owned(),
            subject: subject.to_owned(),
            urgency: Urgency::Thuong,
            deadline: None,
            classification: Classification::Thuong,
            steering: 1,
            due: None,
            response_for: None,
            business: BusinessKind::New,
            business_target: None,
            place: String::new(),
            date: None,
            competence: "TM.".to_owned(),
            position: None,
            full_name: None,
            id: None,
            files,
        }
    }
}

/// What a successful send returns.
#[derive(Debug)]
pub struct SendOutcome {
    /// The document id.
    pub id: Uuid,
    /// The verified submission receipt.
    pub receipt: SubmissionReceipt,
    /// True when the server already had this document (an idempotent retry).
    pub replayed: bool,
    /// The expanded recipient list.
    pub recipients: Vec<OrgId>,
    /// Loud notices for people: recipients whose endorsed encryption key changed since
    /// this client last sealed to them.
    pub notices: Vec<String>,
}

/// Guesses a media type from a file extension.
pub fn media_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "txt" => "text/plain",
        "xml" => "application/xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Bytes read from a file at a time while hashing it: large reads cost fewer system calls
/// per byte hashed (SHA-256 with SHA-NI hashes about 2 GB/s here, so 64 KiB reads were one
/// call every 30 µs).
const HASH_READ_BYTES: usize = 1 << 20;

/// Hashes files: each one, and all of them concatenated. A single file is its own
/// concatenation, so it is hashed once, not twice.
fn hash_files(files: &[PathBuf]) -> Result<(Vec<Attachment>, String, u64), ClientError> {
    let single = files.len() == 1;
    let mut total = digest::Context::new(&digest::SHA256);
    let mut size_total = 0u64;
    let mut attachments = Vec::new();
    let mut buf = vec![0u8; HASH_READ_BYTES];
    let mut single_sha256 = None;
    for path in files {
        let io = |e: std::io::Error| ClientError::File {
            path: path.to_path_buf(),
            source: e,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut one = digest::Context::new(&digest::SHA256);
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            one.update(&buf[..n]);
            if !single {
                total.update(&buf[..n]);
            }
            size += n as u64;
        }
        size_total += size;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                ClientError::Input(format!("{}: file name is not UTF-8", path.display()))
            })?
            .nfc()
            .collect::<String>();
        let sha256 = hex(one.finish().as_ref());
        if single {
            single_sha256 = Some(sha256.clone());
        }
        attachments.push(Attachment {
            name,
            media_type: media_type_for(path).to_owned(),
            size,
            sha256,
        });
    }
    let total = match single_sha256 {
        Some(sha256) => sha256,
        None => hex(total.finish().as_ref()),
    };
    Ok((attachments, total, size_total))
}

fn today() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::now_utc()
        .date()
        .format(&format)
        .unwrap_or_default()
}

/// An organisation's document-signing keys, loaded once from a profile: the
/// organisation's own key and, if the profile has one, the competent person's.
pub struct OrgSigner {
    /// The organisation's key (role `organization`).
    pub org_key: SigningKey,
    /// The competent person's key (role `person`).
    pub person_key: Option<SigningKey>,
    /// The organisation the signing certificate names.
    pub org: OrgId,
    /// How the signatures are encoded (the profile's `signature_format`).
    pub format: SignatureFormat,
}

impl OrgSigner {
    /// Loads the profile's `sign_*` and `person_*` keys and checks that the signing
    /// certificate names an organisation.
    pub fn load(profile: &ClientProfile) -> Result<OrgSigner, ClientError> {
        let org_key = profile.org_signing_key()?.ok_or_else(|| {
            ClientError::Input("the profile has no sign_cert/sign_key (nor token.sign_key)".into())
        })?;
        let person_key = profile.person_signing_key()?;
        let leaf = org_key.chain.first().map(Vec::as_slice).unwrap_or_default();
        let org = match crate::pki::CertInfo::from_der(leaf)?.identity {
            crate::pki::Identity::Org(id) => id,
            other => {
                return Err(ClientError::Input(format!(
                    "the signing certificate names {other}, not an organisation"
                )));
            }
        };
        Ok(OrgSigner {
            org_key,
            person_key,
            org,
            format: profile.signature_format,
        })
    }

    /// The competent person's name and title, from the person certificate.
    pub fn person_name_and_title(&self) -> Result<(Option<String>, Option<String>), ClientError> {
        match &self.person_key {
            Some(k) => Ok(subject_name_and_title(
                k.chain.first().map(Vec::as_slice).unwrap_or_default(),
            )?),
            None => Ok((None, None)),
        }
    }

    /// The submit request for a manifest's canonical bytes, signed with both keys (no
    /// inline payload).
    pub fn submit_request(&self, canonical: &[u8]) -> Result<SubmitRequest, ClientError> {
        let sign = |role: Role, key: &SigningKey| -> Result<DocSignature, ClientError> {
            Ok(match self.format {
                SignatureFormat::Raw => {
                    DocSignature::raw(role, key.algorithm(), &key.sign(canonical)?, &key.chain)
                }
                SignatureFormat::Cms => {
                    DocSignature::cms(role, &crate::pki::cms::sign_detached(key, canonical)?)
                }
            })
        };
        let mut signatures = vec![sign(Role::Organization, &self.org_key)?];
        if let Some(k) = &self.person_key {
            signatures.push(sign(Role::Person, k)?);
        }
        let text =
            String::from_utf8(canonical.to_vec()).map_err(|e| ClientError::Input(e.to_string()))?;
        Ok(SubmitRequest {
            manifest: serde_json::value::RawValue::from_string(text)
                .map_err(ClientError::Encode)?,
            signatures,
            payload: None,
        })
    }
}

impl Client {
    /// Expands recipients (explicit ones plus active children of `to_children`).
    pub async fn expand_recipients(
        &self,
        to: &[OrgId],
        to_children: &[OrgId],
    ) -> Result<Vec<OrgId>, ClientError> {
        let mut out: Vec<OrgId> = Vec::new();
        let mut push = |id: OrgId| {
            if !out.contains(&id) {
                out.push(id);
            }
        };
        for id in to {
            push(id.clone());
        }
        if !to_children.is_empty() {
            let directory = self.directory().await?;
            for parent in to_children {
                let mut found = false;
                for org in &directory.orgs {
                    if org.parent.as_deref() == Some(parent.as_str()) && org.status == "active" {
                        found = true;
                        push(
                            OrgId::parse(&org.id)
                                .map_err(|e| ClientError::Protocol(e.to_string()))?,
                        );
                    }
                }
                if !found {
                    return Err(ClientError::Input(format!(
                        "{parent} has no active children in the directory"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Builds, seals (when classified) and signs a document, ready to submit.
    pub(super) async fn prepare_send(
        &self,
        request: &SendRequest,
    ) -> Result<Prepared, ClientError> {
        let signer = self.org_signer()?;
        let sender = signer.org.clone();
        let (cert_name, cert_title) = signer.person_name_and_title()?;

        let recipients = self
            .expand_recipients(&request.to, &request.to_children)
            .await?;
        if recipients.is_empty() {
            return Err(ClientError::Input(
                "name at least one recipient (--to or --to-children)".into(),
            ));
        }
        if request.files.is_empty() {
            return Err(ClientError::Input("name at least one file to send".into()));
        }
        // The server's declaration decides which levels may be sealed at all: refuse
        // before reading or sealing anything.
        let sealing = if request.classification.is_classified() {
            let directory = self.directory().await?;
            directory.seal.permits(request.classification)?;
            let cipher = self.cipher(&directory.seal.cipher)?;
            Some((directory, cipher))
        } else {
            None
        };
        let files = request.files.clone();
        let (attachments, payload_sha256, payload_size) =
            tokio::task::spawn_blocking(move || hash_files(&files))
                .await
                .map_err(ClientError::Background)??;
        // The files as signed, so that a resumed upload can tell whether they changed.
        let signed_files = attachments
            .iter()
            .zip(&request.files)
            .map(|(a, path)| PendingFile {
                path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
                size: a.size,
                sha256: a.sha256.clone(),
            })
            .collect();

        let mut draft = Draft::new(
            request.id.unwrap_or_else(Uuid::now_v7),
            sender.clone(),
            recipients.clone(),
            &request.doc_type,
            &request.number,
            &request.notation,
            &request.date.clone().unwrap_or_else(today),
        );
        draft.subject = request.subject.clone();
        draft.place = request.place.clone();
        draft.signer = Signer {
            competence: request.competence.clone(),
            position: request.position.clone().or(cert_title).unwrap_or_default(),
            full_name: request.full_name.clone().or(cert_name).unwrap_or_default(),
        };
        draft.urgency = request.urgency;
        draft.deadline = request.deadline.clone();
        draft.classification = request.classification;
        draft.steering = request.steering;
        draft.due = request.due.clone();
        draft.response_for = request.response_for;
        draft.business = Business {
            kind: request.business,
            target: request.business_target,
        };
        let manifest = draft.manifest(
            attachments,
            PayloadInfo {
                sha256: payload_sha256,
                size: payload_size,
                encrypted: false,
            },
        );
        let rules = crate::document::ManifestRules {
            doc_types: vec![manifest.doc_type.clone()],
            payload_bytes_max: u64::MAX,
        };
        // A classified document: seal the inner package, and send an outer manifest with
        // routing fields only. The sealed file lives until the upload is done.
        let mut sealed_file = None;
        let mut notices = Vec::new();
        let manifest = if let Some((directory, cipher)) = sealing {
            manifest
                .validate_layer(&rules, Layer::Inner)
                .map_err(ClientError::Manifest)?;
            let (file, sha256, size, key_notices) = self
                .seal_inner(&manifest, &request.files, &directory, cipher)
                .await?;
            sealed_file = Some(file);
            notices = key_notices;
            outer_manifest(manifest, SealedPayload { sha256, size })
        } else {
            manifest
        };
        manifest
            .validate_layer(&rules, Layer::Outer)
            .map_err(ClientError::Manifest)?;
        let canonical = manifest.canonical().map_err(ClientError::Manifest)?;
        let submit = signer.submit_request(&canonical)?;
        let upload_files = match &sealed_file {
            Some(file) => vec![file.path().to_owned()],
            None => request.files.clone(),
        };
        Ok(Prepared {
            manifest,
            canonical,
            submit,
            upload_files,
            sealed_file,
            signed_files,
            recipients,
            notices,
        })
    }

    /// Builds the inner package (header + files), signs and encrypts it for the
    /// recipients' registered certificates, into a temporary file. Returns the file and the
    /// ciphertext's SHA-256 and size.
    async fn seal_inner(
        &self,
        inner: &Manifest,
        files: &[PathBuf],
        directory: &crate::api::DirectoryStatement,
        cipher: std::sync::Arc<dyn Cipher>,
    ) -> Result<(tempfile::NamedTempFile, String, u64, Vec<String>), ClientError> {
        // Each recipient's key is used only with its owner's endorsement, checked here
        // against our own anchor and CRLs: the directory's signature proves only that
        // the server sent it.
        let EndorsedKeys { certs, notices } =
            self.endorsed_keys(directory, &inner.recipients).await?;
        let key_path = self
            .profile()
            .openpgp_key
            .clone()
            .ok_or_else(|| ClientError::Input("the profile has no openpgp_key".into()))?;
        let inner_canonical = inner.canonical().map_err(ClientError::Manifest)?;
        let files = files.to_vec();
        let state_dir = self.profile().state_dir.clone();
        tokio::task::spawn_blocking(move || {
            let input = ClientError::TempFile;
            let secret = std::fs::read(&key_path).map_err(|e| ClientError::File {
                path: key_path.to_path_buf(),
                source: e,
            })?;
            let mut header = Vec::new();
            package::write_header(&mut header, &inner_canonical)
                .map_err(|e| ClientError::Input(e.to_string()))?;
            let mut reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(header));
            for path in &files {
                let file = std::fs::File::open(path).map_err(|e| ClientError::File {
                    path: path.to_path_buf(),
                    source: e,
                })?;
                reader = Box::new(reader.chain(file));
            }
            std::fs::create_dir_all(&state_dir).map_err(input)?;
            let sealed = tempfile::NamedTempFile::new_in(&state_dir).map_err(input)?;
            let mut writer = HashingWriter {
                inner: std::io::BufWriter::new(sealed.reopen().map_err(input)?),
                hasher: digest::Context::new(&digest::SHA256),
                size: 0,
            };
            cipher
                .seal(&mut reader, &mut writer, &certs, &secret)
                .map_err(ClientError::Sealing)?;
            writer.inner.flush().map_err(input)?;
            // Durable before it is kept for a resume: after a power cut the kept record
            // must not point at a sealed payload that is empty or short.
            sealed.as_file().sync_all().map_err(input)?;
            Ok((
                sealed,
                hex(writer.hasher.finish().as_ref()),
                writer.size,
                notices,
            ))
        })
        .await
        .map_err(ClientError::Background)?
    }
}

/// A document ready to submit: its outer manifest signed, its payload on disk.
pub(super) struct Prepared {
    pub(super) manifest: Manifest,
    pub(super) canonical: Vec<u8>,
    pub(super) submit: SubmitRequest,
    pub(super) upload_files: Vec<PathBuf>,
    pub(super) sealed_file: Option<tempfile::NamedTempFile>,
    pub(super) signed_files: Vec<PendingFile>,
    pub(super) recipients: Vec<OrgId>,
    pub(super) notices: Vec<String>,
}

/// Verifies a submission receipt: the server's receipts key signed it, and it names this
/// document with these digests.
pub fn check_receipt(
    receipt: &Signed,
    keys: &[notary::PublicKeyInfo],
    manifest: &Manifest,
    manifest_sha256: &str,
) -> Result<SubmissionReceipt, ClientError> {
    crate::document::receipt::check_submission(receipt, keys, manifest, manifest_sha256)
        .map_err(|e| ClientError::Trust(e.to_string()))
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: digest::Context,
    size: u64,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly by design")]

    use super::*;

    fn sha256(bytes: &[u8]) -> String {
        hex(digest::digest(&digest::SHA256, bytes).as_ref())
    }

    /// One file is hashed once: its attachment digest and the payload digest are both
    /// the file's SHA-256. Several files keep one digest each and the payload digest of
    /// their concatenation. Sizes above the read buffer take several reads.
    #[test]
    fn hash_files_one_and_several() {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..HASH_READ_BYTES + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        let b = b"second file".to_vec();
        let (pa, pb) = (dir.path().join("a.bin"), dir.path().join("b.pdf"));
        std::fs::write(&pa, &a).unwrap();
        std::fs::write(&pb, &b).unwrap();

        let (one, total, size) = hash_files(std::slice::from_ref(&pa)).unwrap();
        assert_eq!(total, sha256(&a));
        assert_eq!(size, a.len() as u64);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].sha256, sha256(&a));
        assert_eq!(one[0].size, a.len() as u64);

        let (two, total, size) = hash_files(&[pa, pb]).unwrap();
        assert_eq!(total, sha256(&[a.as_slice(), b.as_slice()].concat()));
        assert_eq!(size, (a.len() + b.len()) as u64);
        assert_eq!(two[0].sha256, sha256(&a));
        assert_eq!(two[1].sha256, sha256(&b));
        assert_eq!(two[1].media_type, "application/pdf");
    }
}
