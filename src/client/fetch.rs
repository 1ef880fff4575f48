//! The recipient's side: fetch a document and verify it without trusting the server,
//! decrypt a classified one, write its files; acknowledge with a signed receipt.
//!
//! Verification, in order: the manifest the server returns hashes to the digest in its
//! receipt; the server's submission receipt verifies with its pinned receipts key and
//! names this manifest; every signature verifies against the profile's trust anchor with
//! the CAs' current CRLs (fetched from the server, but signed by the CAs), judged as of
//! the receipt's acceptance time (a certificate retired since, for a routine reason, does
//! not make the document unreadable; a compromised one does), for the sender's
//! organisation, each role by its own kind of certificate (the person's issued to the
//! manifest's signer), covering the roles the sender's policy requires; the payload hashes to
//! the manifest's digest; for a classified document, the OpenPGP message decrypts with our
//! key and carries a valid signature by the sender's registered key, and the inner
//! manifest agrees with the outer one; every file hashes to its digest. Only then are the
//! files moved into the output directory. Any mismatch removes everything written.

use std::fs::{self, File};
use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::digest;
use rustls_pki_types::UnixTime;
use uuid::Uuid;

use super::transfer::{Progress, Watch};
use super::{Client, ClientError};
use crate::api::{
    DELIVERY_RECEIPT_TYPE, DeliveryReceipt, DocumentView, ReceiptRequest, ReceiptResponse,
};
use crate::directory::OrgId;
use crate::document::manifest::{self, Attachment, Manifest, ManifestRules};
use crate::document::package;
use crate::document::receipt::ReceiptStatus;
use crate::document::{DocSignature, Role, sha256_hex};
use crate::pki::Identity;
use crate::pki::identity::hex;
use crate::pki::pem::write_public;
use crate::pki::signing::{JudgedAt, SigningKey, SigningTrust};
use crate::seal::Cipher;

/// Largest decrypted inner package accepted (guards against compression bombs).
pub const PLAINTEXT_BYTES_MAX: u64 = 2 << 30;

/// Longest reason quoted in a `02` receipt (the server takes notes up to 1000 characters).
const RETURN_NOTE_CHARS_MAX: usize = 900;

/// What a verified fetch produced.
#[derive(Debug)]
pub struct Fetched {
    /// The verified manifest (the inner one for a classified document).
    pub manifest: Manifest,
    /// The files written, in manifest order.
    pub files: Vec<PathBuf>,
    /// Who signed the outer manifest: (role, certificate subject).
    pub signers: Vec<(Role, String)>,
    /// For a classified document, the cipher that sealed it, as the server recorded it.
    pub sealed_with: Option<crate::seal::policy::SealMark>,
    /// When the server accepted the document (its signed receipt's time), the time the
    /// signatures were judged at.
    pub accepted_at: String,
    /// Loud notices for people: this organisation's own registered key, and certificates
    /// of the signers' chains revoked after acceptance in a way that leaves the
    /// signatures valid, in plain words for the recipient.
    pub notices: Vec<String>,
}

/// How far in the future a receipt's acceptance time may lie (clock skew).
const ACCEPTED_AT_SKEW_SECONDS: u64 = 300;

fn refuse(msg: impl Into<String>) -> ClientError {
    ClientError::Trust(msg.into())
}

/// Rules for parsing manifests on the client: any document type (the server's list is
/// its own business), no payload limit.
fn client_rules() -> ManifestRules {
    ManifestRules {
        doc_types: Vec::new(),
        payload_bytes_max: u64::MAX,
    }
}

pub(super) fn parse_manifest_any_type(
    text: &str,
    layer: manifest::Layer,
) -> Result<manifest::ParsedManifest, ClientError> {
    let mut rules = client_rules();
    // Accept the manifest's own type: the type list is server policy, not integrity.
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| refuse(format!("manifest: {e}")))?;
    if let Some(t) = value.get("doc_type").and_then(|t| t.as_str()) {
        rules.doc_types.push(t.to_owned());
    }
    manifest::parse_layer(text, &rules, layer).map_err(|e| refuse(format!("manifest: {e}")))
}

impl Client {
    /// The CA-signed CRLs the server uses, saved in the state directory, and the
    /// signing trust built from them and the profile's anchor.
    pub async fn signing_trust(&self) -> Result<SigningTrust, ClientError> {
        let crls: crate::api::CrlsResponse = self.crls().await?;
        let path = self.profile().state_dir.join("crls.pem");
        write_public(&path, crls.crls.concat().as_bytes())?;
        let ca = self.profile().ca.clone();
        tokio::task::spawn_blocking(move || SigningTrust::load(&[ca], &[path]))
            .await
            .map_err(ClientError::Background)?
            .map_err(ClientError::from)
    }

    /// Fetches document `id`, verifies everything, and writes its files into `out`; then
    /// confirms its arrival with a signed `01` receipt. A document this client refuses
    /// (a signature, digest, decryption or inner-manifest check fails) is returned to
    /// its sender with a signed `02` receipt giving the reason, after `01`, so that the
    /// sender and the officers never see "fetched" as the last word on a document that
    /// was not accepted. The refusal is still an error here; its message says whether
    /// the document was returned.
    pub async fn fetch_document(&self, id: &Uuid, out: &Path) -> Result<Fetched, ClientError> {
        self.fetch_document_watched(id, out, &Watch::quiet()).await
    }

    /// [`Client::fetch_document`] while `watch` shows the download's progress.
    pub async fn fetch_document_watched(
        &self,
        id: &Uuid,
        out: &Path,
        watch: &Watch,
    ) -> Result<Fetched, ClientError> {
        let mut downloaded = false;
        // Ctrl-C or SIGTERM (with a watch that handles them) drops the fetch here: its
        // staging directory, which may hold decrypted text not yet verified, is removed
        // on the way out and nothing is left under a final name.
        let verified = tokio::select! {
            result = self.fetch_verified(id, out, &mut downloaded, watch) => result,
            () = watch.interrupted() => {
                return Err(ClientError::Interrupted(format!(
                    "fetch of {id} stopped: nothing was written to {} and the partial \
                     download was removed; run the same fetch again to get the document",
                    out.display()
                )));
            }
        };
        match verified {
            Ok(mut fetched) => {
                if let Err(e) = self.acknowledge(id, ReceiptStatus::Arrived, "").await {
                    fetched
                        .notices
                        .push(format!("could not confirm the arrival (01) of {id}: {e}"));
                }
                Ok(fetched)
            }
            Err(ClientError::Trust(reason)) => {
                let outcome = match self.return_document(id, &reason, downloaded).await {
                    Ok(()) => "returned to the sender with status 02".to_owned(),
                    Err(e) => format!("could not return it to the sender: {e}"),
                };
                Err(ClientError::Trust(format!("{reason} ({outcome})")))
            }
            Err(other) => Err(other),
        }
    }

    /// Returns a refused document: `01` (it arrived), then `02` with `reason`. The
    /// arrival is only true once the payload was fetched, so a document refused on its
    /// manifest alone is downloaded (and discarded) first.
    async fn return_document(
        &self,
        id: &Uuid,
        reason: &str,
        downloaded: bool,
    ) -> Result<(), ClientError> {
        if !downloaded {
            let mut response = self.payload(id).await?;
            while response
                .chunk()
                .await
                .map_err(|e| ClientError::Protocol(super::error_chain(&e)))?
                .is_some()
            {}
        }
        self.acknowledge(id, ReceiptStatus::Arrived, "").await?;
        let note: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(RETURN_NOTE_CHARS_MAX)
            .collect();
        self.acknowledge(
            id,
            ReceiptStatus::Returned,
            &format!("refused by the recipient's client: {note}"),
        )
        .await?;
        Ok(())
    }

    async fn fetch_verified(
        &self,
        id: &Uuid,
        out: &Path,
        downloaded: &mut bool,
        watch: &Watch,
    ) -> Result<Fetched, ClientError> {
        let me = self.own_org()?;
        let view: DocumentView = self.document(id).await?;
        let text = view.manifest.get();
        if sha256_hex(text.as_bytes()) != view.manifest_sha256 {
            return Err(refuse(
                "the manifest does not hash to the digest the server states",
            ));
        }
        let outer = parse_manifest_any_type(text, manifest::Layer::Outer)?;
        if outer.canonical != text.as_bytes() {
            return Err(refuse("the manifest is not in canonical form"));
        }
        let manifest = outer.manifest.clone();
        if manifest.id != *id {
            return Err(refuse("the server returned another document"));
        }
        let directory = self.directory().await?;
        // A document sent to a unit that has since merged into this one is ours to
        // receive: the signed directory says who carries on whom.
        let addressed_to_us = manifest.recipients.iter().any(|r| {
            r == &me || successor_in(&directory, r.as_str()).is_some_and(|s| s == me.as_str())
        });
        if !addressed_to_us {
            return Err(refuse(format!("{me} is not a recipient of this document")));
        }
        let sender_entry = directory
            .orgs
            .iter()
            .find(|o| o.id == manifest.sender.as_str())
            .ok_or_else(|| {
                refuse(format!(
                    "sender {} is not in the directory",
                    manifest.sender
                ))
            })?;

        // The time the signatures are judged at: when the server accepted the document,
        // as its receipt (signed with the pinned receipts key) says.
        let receipt = view.receipt.as_ref().ok_or_else(|| {
            refuse("the document has no submission receipt, so there is no time to judge its signatures at")
        })?;
        let keys = self.server_keys().await?;
        let statement =
            super::send::check_receipt(receipt, &keys, &manifest, &view.manifest_sha256)?;
        let accepted = accepted_time(&statement.accepted_at)?;

        // Outer signatures, verified here against our own trust anchor.
        let trust = self.signing_trust().await?;
        let signatures = view.signatures.clone();
        let ocsp = view
            .ocsp
            .iter()
            .take(crate::document::signature::SIGNATURES_MAX)
            .map(|b| B64.decode(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refuse(format!("a stored OCSP response is not base64: {e}")))?;
        let required = sender_entry.required_signatures.clone();
        let checked_manifest = manifest.clone();
        let canonical = outer.canonical.clone();
        let client = self.clone();
        let own_directory = directory.clone();
        let own_id = me.clone();
        let sender_entry_owned = sender_entry.clone();
        let classified = manifest.classification.is_classified();
        let (verified, own_notices, sender_cert) = tokio::task::spawn_blocking(move || {
            let verified = verify_outer_signatures_with_ocsp(
                &trust,
                &canonical,
                &checked_manifest,
                &signatures,
                &required,
                JudgedAt::Signed {
                    signed: accepted,
                    crls_current_at: UnixTime::now(),
                },
                &ocsp,
            )?;
            // Our own entry: the owner is the one party who can tell that the server
            // lists another key in its name.
            let notices = client.own_key_notices(&trust, &own_directory, &own_id);
            // The sender's OpenPGP certificate checks the inner signature of a classified
            // document, so it must be the sender's own, endorsed with its seal.
            let sender_cert = if classified {
                Some(super::keys::check_entry(&trust, &sender_entry_owned)?.0)
            } else {
                None
            };
            Ok::<_, ClientError>((verified, notices, sender_cert))
        })
        .await
        .map_err(ClientError::Background)??;

        fs::create_dir_all(out).map_err(|e| ClientError::File {
            path: out.to_path_buf(),
            source: e,
        })?;
        let staging = tempfile::Builder::new()
            .prefix(".congvan-fetch-")
            .tempdir_in(out)
            .map_err(|e| ClientError::File {
                path: out.to_path_buf(),
                source: e,
            })?;

        // The payload, hashed as it arrives.
        let payload_path = staging.path().join("payload");
        watch.progress.begin("fetching", manifest.payload.size);
        let download = self
            .download(
                id,
                &payload_path,
                &manifest.payload.sha256,
                manifest.payload.size,
                watch.progress.as_ref(),
            )
            .await;
        watch.progress.end();
        // The server recorded the fetch as soon as it started sending.
        *downloaded = true;
        download?;

        let (content_manifest, content_path, offset) = if manifest.classification.is_classified() {
            let sender_cert = sender_cert.ok_or_else(|| {
                refuse(format!(
                    "sender {} has no registered OpenPGP certificate",
                    manifest.sender
                ))
            })?;
            let key_path = self
                .profile()
                .openpgp_key
                .clone()
                .ok_or_else(|| ClientError::Input("the profile has no openpgp_key".into()))?;
            let cipher_name = view
                .sealed_with
                .as_ref()
                .map_or(crate::seal::policy::OPENPGP_CIPHER, |m| m.cipher.as_str());
            let cipher = self.cipher(cipher_name)?;
            let plain_path = staging.path().join("plaintext");
            let outer_manifest = manifest.clone();
            let plain = plain_path.clone();
            let (inner, offset) = tokio::task::spawn_blocking(move || {
                open_inner(
                    cipher.as_ref(),
                    &payload_path,
                    &plain,
                    &key_path,
                    &sender_cert,
                    &outer_manifest,
                )
            })
            .await
            .map_err(ClientError::Background)??;
            (inner, plain_path, offset)
        } else {
            (manifest.clone(), payload_path, 0)
        };

        let files = {
            let attachments = content_manifest.attachments.clone();
            let staging_dir = staging.path().to_owned();
            tokio::task::spawn_blocking(move || {
                split_files(&content_path, offset, &attachments, &staging_dir)
            })
            .await
            .map_err(ClientError::Background)??
        };
        // Everything verified: move the files into place, never over an existing file.
        if let Some((name, _)) = files.iter().find(|(name, _)| out.join(name).exists()) {
            return Err(ClientError::Input(format!(
                "{} already exists; fetch into another --out directory (nothing was written)",
                out.join(name).display()
            )));
        }
        let mut written = Vec::new();
        for (name, staged) in files {
            let target = out.join(&name);
            fs::rename(&staged, &target).map_err(|e| ClientError::File {
                path: target.to_path_buf(),
                source: e,
            })?;
            written.push(target);
        }
        let record = serde_json::json!({
            "manifest": serde_json::from_str::<serde_json::Value>(text).unwrap_or_default(),
            "signatures": view.signatures,
            "receipt": view.receipt,
        });
        let record_text = serde_json::to_vec_pretty(&record).map_err(ClientError::Encode)?;
        write_public(&out.join(format!(".congvan-{id}.json")), &record_text)?;
        Ok(Fetched {
            manifest: content_manifest,
            files: written,
            signers: verified.signers,
            sealed_with: view.sealed_with.clone(),
            accepted_at: statement.accepted_at,
            notices: own_notices.into_iter().chain(verified.notices).collect(),
        })
    }

    pub(super) fn own_org(&self) -> Result<OrgId, ClientError> {
        let chain = crate::pki::pem::read_certs(&self.profile().tls_cert)?;
        let leaf = chain
            .first()
            .ok_or_else(|| ClientError::Input("empty TLS certificate".into()))?;
        match crate::pki::CertInfo::from_der(leaf)?.identity {
            Identity::Org(id) => Ok(id),
            Identity::Auditor(_) => Err(ClientError::Input(
                "this profile is a security officer's, not a committee's".into(),
            )),
            Identity::Person(_) => Err(ClientError::Input(
                "the profile's TLS certificate is a person's signing certificate".into(),
            )),
        }
    }

    async fn download(
        &self,
        id: &Uuid,
        path: &Path,
        sha256: &str,
        size: u64,
        progress: &dyn Progress,
    ) -> Result<(), ClientError> {
        let mut response = self.payload(id).await?;
        let mut file = File::create(path).map_err(|e| ClientError::File {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut hasher = digest::Context::new(&digest::SHA256);
        let mut received = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ClientError::Protocol(super::error_chain(&e)))?
        {
            received += chunk.len() as u64;
            if received > size {
                return Err(refuse("the payload is longer than the manifest says"));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(ClientError::TempFile)?;
            progress.advance(chunk.len() as u64);
        }
        if received != size || hex(hasher.finish().as_ref()) != sha256 {
            return Err(refuse(
                "the payload does not match the signed manifest (size or SHA-256 differs): it was altered",
            ));
        }
        Ok(())
    }

    /// Signs and sends a receipt for document `id`.
    pub async fn acknowledge(
        &self,
        id: &Uuid,
        status: ReceiptStatus,
        note: &str,
    ) -> Result<ReceiptResponse, ClientError> {
        let me = self.own_org()?;
        let view: DocumentView = self.document(id).await?;
        let outer = parse_manifest_any_type(view.manifest.get(), manifest::Layer::Outer)?;
        let receipt = DeliveryReceipt {
            kind: DELIVERY_RECEIPT_TYPE.to_owned(),
            document_id: *id,
            recipient: me.to_string(),
            manifest_sha256: sha256_hex(&outer.canonical),
            payload_sha256: outer.manifest.payload.sha256.clone(),
            status: status.code().to_owned(),
            time: crate::api::now_rfc3339(),
            note: unicode_normalization::UnicodeNormalization::nfc(note).collect(),
        };
        let signer = self.org_signer()?;
        let request = signed_receipt(&signer.org_key, receipt)?;
        let (_, answer) = self.post_receipt(id, &request).await?;
        Ok(answer)
    }
}

/// The active organisation that carries on `id` in a directory statement: its
/// `merged_into`, followed through later mergers (at most the tree's depth of steps).
pub fn successor_in<'a>(
    directory: &'a crate::api::DirectoryStatement,
    id: &str,
) -> Option<&'a str> {
    let find = |id: &str| directory.orgs.iter().find(|o| o.id == id);
    let mut cursor = find(id)?;
    for _ in 0..=crate::directory::TREE_DEPTH_MAX {
        match (cursor.status.as_str(), &cursor.merged_into) {
            ("merged", Some(into)) => cursor = find(into)?,
            ("active", _) if cursor.id != id => return Some(cursor.id.as_str()),
            _ => return None,
        }
    }
    None
}

/// A delivery receipt signed by the recipient organisation's document-signing key over
/// its RFC 8785 bytes, ready to post.
pub fn signed_receipt(
    key: &SigningKey,
    receipt: DeliveryReceipt,
) -> Result<ReceiptRequest, ClientError> {
    use crate::document::receipt::{self, ReceiptError};
    receipt::sign(key, receipt).map_err(|e| match e {
        ReceiptError::Sign(e) => ClientError::Pki(e),
        other => ClientError::Input(other.to_string()),
    })
}

/// Parses a receipt's acceptance time, refusing one in the future.
pub(super) fn accepted_time(text: &str) -> Result<UnixTime, ClientError> {
    let when = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            refuse(format!(
                "the receipt's acceptance time {text:?} is not RFC 3339"
            ))
        })?;
    let seconds = u64::try_from(when.unix_timestamp()).map_err(|_| {
        refuse(format!(
            "the receipt's acceptance time {text} is before 1970"
        ))
    })?;
    if seconds > UnixTime::now().as_secs() + ACCEPTED_AT_SKEW_SECONDS {
        return Err(refuse(format!(
            "the receipt's acceptance time {text} is in the future"
        )));
    }
    Ok(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        seconds,
    )))
}

/// The outer signatures that verified.
#[derive(Debug)]
pub struct VerifiedSignatures {
    /// (role, certificate subject) of each signature.
    pub signers: Vec<(Role, String)>,
    /// Later revocations that leave the signatures valid, as sentences.
    pub notices: Vec<String>,
}

/// The recipient's check of a document's outer signatures, which never trusts the
/// server's verdict: each verifies over `canonical` with `trust` judged at `at`, is made
/// by the sender's certificate of the kind its role needs (the person's issued to the
/// manifest's `signer.full_name`), no role or certificate appears twice, and every role
/// in `required` is present.
pub fn verify_outer_signatures(
    trust: &SigningTrust,
    canonical: &[u8],
    manifest: &Manifest,
    signatures: &[DocSignature],
    required: &[String],
    at: JudgedAt,
) -> Result<VerifiedSignatures, ClientError> {
    verify_outer_signatures_with_ocsp(trust, canonical, manifest, signatures, required, at, &[])
}

/// [`verify_outer_signatures`], with the OCSP responses the server stored with the
/// document (DER): each signer whose certificate one of them names is judged by it as of
/// the acceptance time, and by its issuer's CRL where the client has one. The responses
/// are signed by the signers' CAs, so the server can withhold them (the signature then
/// has no revocation evidence and is refused) but not forge them.
pub fn verify_outer_signatures_with_ocsp(
    trust: &SigningTrust,
    canonical: &[u8],
    manifest: &Manifest,
    signatures: &[DocSignature],
    required: &[String],
    at: JudgedAt,
    ocsp: &[Vec<u8>],
) -> Result<VerifiedSignatures, ClientError> {
    let mut signers = Vec::new();
    let mut notices = Vec::new();
    let mut fingerprints = Vec::new();
    for sig in signatures {
        let signer = match sig.signer_chain() {
            // Only the responses about this signer: a response about another is no
            // evidence for it, and would refuse it as "about another certificate".
            Ok((leaf, _)) if !ocsp.is_empty() => {
                let mine: Vec<Vec<u8>> = ocsp
                    .iter()
                    .filter(|der| crate::pki::ocsp::names_certificate(der, &leaf))
                    .cloned()
                    .collect();
                sig.verify_at_with_ocsp(trust, canonical, at, &mine)
            }
            _ => sig.verify_at(trust, canonical, at),
        }
        .map_err(|e| refuse(format!("{} signature: {e}", sig.role.name())))?;
        if signers.iter().any(|(r, _)| *r == sig.role)
            || fingerprints.contains(&signer.cert.fingerprint_sha256)
        {
            return Err(refuse(
                "a role or a certificate appears twice among the signatures",
            ));
        }
        crate::document::check_signer(
            sig.role,
            &signer.cert,
            &manifest.sender,
            &manifest.signer.full_name,
        )
        .map_err(|e| refuse(e.to_string()))?;
        fingerprints.push(signer.cert.fingerprint_sha256.clone());
        for later in &signer.later_revocations {
            notices.push(format!("{} signature: {later}", sig.role.name()));
        }
        signers.push((sig.role, signer.cert.subject.clone()));
    }
    for role in required {
        if !signers.iter().any(|(r, _)| r.name() == role) {
            return Err(refuse(format!(
                "the sender's policy requires a {role} signature; it is missing"
            )));
        }
    }
    Ok(VerifiedSignatures { signers, notices })
}

/// Decrypts the payload into `plain_path`, verifies the sender's inner signature, reads
/// the inner manifest and checks it against the outer one. Returns the inner manifest and
/// the offset of the first file in the plaintext.
fn open_inner(
    cipher: &dyn Cipher,
    payload: &Path,
    plain_path: &Path,
    key_path: &Path,
    sender_cert: &[u8],
    outer: &Manifest,
) -> Result<(Manifest, u64), ClientError> {
    let key = fs::read(key_path).map_err(|e| ClientError::File {
        path: key_path.to_path_buf(),
        source: e,
    })?;
    let mut input = BufReader::new(File::open(payload).map_err(ClientError::TempFile)?);
    let mut plain = File::create(plain_path).map_err(ClientError::TempFile)?;
    cipher
        .open(
            &mut input,
            &mut plain,
            &key,
            sender_cert,
            PLAINTEXT_BYTES_MAX,
        )
        .map_err(|e| refuse(format!("classified payload: {e}")))?;
    drop(plain);
    let mut plain = BufReader::new(File::open(plain_path).map_err(ClientError::TempFile)?);
    let mut rules = client_rules();
    rules.doc_types.push(outer.doc_type.clone());
    let inner = package::read_header(&mut plain, &rules).map_err(|e| refuse(e.to_string()))?;
    package::check_matches_outer(&inner.manifest, outer).map_err(|e| refuse(e.to_string()))?;
    let offset = plain.stream_position().map_err(ClientError::TempFile)?;
    let total = fs::metadata(plain_path)
        .map_err(ClientError::TempFile)?
        .len();
    if total - offset != inner.manifest.payload.size {
        return Err(refuse(
            "the decrypted files do not have the size the inner manifest says",
        ));
    }
    Ok((inner.manifest, offset))
}

/// Splits `source` (from `offset`) into the attachments, checking each size and digest,
/// writing each into `staging`. Returns (file name, staged path) pairs.
fn split_files(
    source: &Path,
    offset: u64,
    attachments: &[Attachment],
    staging: &Path,
) -> Result<Vec<(String, PathBuf)>, ClientError> {
    let mut input = BufReader::new(File::open(source).map_err(ClientError::TempFile)?);
    input
        .seek(std::io::SeekFrom::Start(offset))
        .map_err(ClientError::TempFile)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for (i, attachment) in attachments.iter().enumerate() {
        let staged = staging.join(format!("file-{i}"));
        let mut file = File::create(&staged).map_err(ClientError::TempFile)?;
        let mut hasher = digest::Context::new(&digest::SHA256);
        let mut left = attachment.size;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = input
                .read(&mut buf[..want])
                .map_err(ClientError::TempFile)?;
            if n == 0 {
                return Err(refuse(format!("{} is truncated", attachment.name)));
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(ClientError::TempFile)?;
            left -= n as u64;
        }
        file.sync_all().map_err(ClientError::TempFile)?;
        if hex(hasher.finish().as_ref()) != attachment.sha256 {
            return Err(refuse(format!(
                "{} does not match its SHA-256 in the manifest",
                attachment.name
            )));
        }
        out.push((attachment.name.clone(), staged));
    }
    Ok(out)
}
