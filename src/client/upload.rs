//! Submitting and uploading a document, watched: `send` after its manifest is signed,
//! and `send --resume`, which finishes an interrupted upload with the signed submission
//! kept in the state directory ([`PendingUpload`]); the uploads still pending, for `sent`.

use std::io::Read as _;
use std::path::PathBuf;

use futures_util::StreamExt;
use uuid::Uuid;

use super::fetch::parse_manifest_any_type;
use super::send::{Prepared, SendOutcome, SendRequest, check_receipt};
use super::state::{PendingFile, PendingUpload, pending_path, pending_sealed_path};
use super::transfer::{Counter, Interrupted, Stage, Watch, resume_command};
use super::{Client, ClientError};
use crate::api::{
    DocumentView, INLINE_SEND_BYTES_MAX, SubmitRequest, SubmitResponse, UploadResponse,
};
use crate::directory::OrgId;
use crate::document::manifest::{Layer, Manifest};
use crate::document::sha256_hex;

impl Client {
    /// Sends a document (see the module documentation), quietly and without catching
    /// interruptions.
    pub async fn send_document(&self, request: &SendRequest) -> Result<SendOutcome, ClientError> {
        done(self.send_document_watched(request, &Watch::quiet()).await?)
    }

    /// Sends a document while `watch` shows its progress and catches an interruption.
    /// Before the signed manifest is submitted, what a retry needs is remembered in the
    /// state directory ([`PendingUpload`]) so that `send --resume` can finish an upload
    /// that was interrupted without signing again; it is forgotten once the server's
    /// receipt verifies, or when the server refuses the manifest itself.
    pub async fn send_document_watched(
        &self,
        request: &SendRequest,
        watch: &Watch,
    ) -> Result<Sent, ClientError> {
        // A retry with `--id` of an upload this client still keeps would sign a new
        // manifest (the server answers 409) and lose the kept one: point at the resume.
        if let Some(id) = request.id {
            if self.load_pending(&id)?.is_some() {
                return Err(ClientError::Input(format!(
                    "document {id} has an interrupted upload kept by this client; finish it \
                     with: {}",
                    resume_command(self, &id)
                )));
            }
        }
        let prepared = tokio::select! {
            prepared = self.prepare_send(request) => prepared?,
            () = watch.interrupted() => {
                return Ok(Sent::Interrupted(Interrupted {
                    id: request.id.unwrap_or_default(),
                    stage: Stage::Preparing,
                    sent: 0,
                    total: 0,
                    resume_command: String::new(),
                }));
            }
        };
        let Prepared {
            manifest,
            canonical,
            submit,
            upload_files,
            sealed_file,
            signed_files,
            recipients,
            notices,
        } = prepared;
        let id = manifest.id;
        let sealed = match sealed_file {
            Some(file) => {
                super::state::create_pending_dir(&self.profile().state_dir)?;
                let path = pending_sealed_path(&self.profile().state_dir, &id);
                file.persist(&path).map_err(|e| ClientError::File {
                    path: path.to_path_buf(),
                    source: e.into(),
                })?;
                Some(path)
            }
            None => None,
        };
        let pending = PendingUpload {
            id,
            submit: SubmitRequest {
                manifest: submit.manifest.clone(),
                signatures: submit.signatures.clone(),
                payload: None,
            },
            recipients: recipients.clone(),
            files: signed_files,
            sealed,
        };
        self.save_pending(&pending)?;
        let upload_files = match &pending.sealed {
            Some(path) => vec![path.clone()],
            None => upload_files,
        };
        let result = self
            .submit_and_upload_watched(
                &manifest,
                &canonical,
                submit,
                &upload_files,
                recipients,
                watch,
            )
            .await;
        let sent = self.settle_pending(&id, result)?;
        Ok(match sent {
            Sent::Done(mut outcome) => {
                outcome.notices = notices;
                Sent::Done(outcome)
            }
            other => other,
        })
    }

    /// Forgets a pending upload that completed, or whose manifest the server refused
    /// (a retry of the same signed manifest would be refused again); keeps it otherwise.
    pub(super) fn settle_pending(
        &self,
        id: &Uuid,
        result: Result<Sent, ClientError>,
    ) -> Result<Sent, ClientError> {
        match &result {
            Ok(Sent::Done(_)) => self.remove_pending(id)?,
            Err(ClientError::Api { code, .. }) if REFUSES_THE_DOCUMENT.contains(&code.as_str()) => {
                self.remove_pending(id)?;
            }
            // Anything else (the connection's certificate, limits, a payload that did not
            // match files changed during the upload, the server's trouble) leaves the
            // signed submission and any sealed payload kept for `--resume`.
            _ => {}
        }
        result
    }

    /// Submits a signed manifest with the payload (the files concatenated): inline in the
    /// same request when it is at most [`INLINE_SEND_BYTES_MAX`], else uploaded after
    /// it; then verifies the receipt.
    pub async fn submit_and_upload(
        &self,
        manifest: &Manifest,
        canonical: &[u8],
        submit: SubmitRequest,
        files: &[PathBuf],
        recipients: Vec<OrgId>,
    ) -> Result<SendOutcome, ClientError> {
        done(
            self.submit_and_upload_watched(
                manifest,
                canonical,
                submit,
                files,
                recipients,
                &Watch::quiet(),
            )
            .await?,
        )
    }

    /// [`Client::submit_and_upload`] while `watch` shows the upload's progress and
    /// catches an interruption.
    pub async fn submit_and_upload_watched(
        &self,
        manifest: &Manifest,
        canonical: &[u8],
        mut submit: SubmitRequest,
        files: &[PathBuf],
        recipients: Vec<OrgId>,
        watch: &Watch,
    ) -> Result<Sent, ClientError> {
        let interrupted = |stage, sent| {
            Sent::Interrupted(Interrupted {
                id: manifest.id,
                stage,
                sent,
                total: manifest.payload.size,
                resume_command: resume_command(self, &manifest.id),
            })
        };
        let keys = self.server_keys().await?;
        if manifest.payload.size <= INLINE_SEND_BYTES_MAX && submit.payload.is_none() {
            let files = files.to_vec();
            let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ClientError> {
                let mut all = Vec::new();
                for path in &files {
                    std::fs::File::open(path)
                        .and_then(|mut f| f.read_to_end(&mut all))
                        .map_err(|e| ClientError::File {
                            path: path.to_path_buf(),
                            source: e,
                        })?;
                }
                Ok(all)
            })
            .await
            .map_err(ClientError::Background)??;
            // A file that changed since it was hashed goes the long way and is refused
            // there with the server's payload_* code.
            if bytes.len() as u64 == manifest.payload.size {
                use base64::Engine as _;
                submit.payload = Some(base64::engine::general_purpose::STANDARD.encode(&bytes));
            }
        }
        let (status, answer): (u16, SubmitResponse) = tokio::select! {
            answer = self.submit(&submit) => answer?,
            () = watch.interrupted() => return Ok(interrupted(Stage::Submitting, 0)),
        };
        let manifest_sha256 = sha256_hex(canonical);
        if answer.id != manifest.id || answer.manifest_sha256 != manifest_sha256 {
            return Err(ClientError::Protocol(
                "the server acknowledged a different document".into(),
            ));
        }
        let mut replayed = status == 200;
        let receipt = match answer.receipt {
            Some(receipt) => receipt,
            None => {
                let counter = Counter::new(watch.progress.clone());
                watch.progress.begin("sending", manifest.payload.size);
                let body = payload_body(files.to_vec(), counter.clone());
                let upload = tokio::select! {
                    uploaded = self.put_stream(&answer.payload_url, body, manifest.payload.size) => uploaded,
                    () = watch.interrupted() => {
                        let sent = counter.stop();
                        watch.progress.end();
                        return Ok(interrupted(Stage::Uploading, sent));
                    }
                };
                watch.progress.end();
                let (status, uploaded): (u16, UploadResponse) = upload?;
                replayed &= status == 200;
                uploaded.receipt
            }
        };
        let receipt = check_receipt(&receipt, &keys, manifest, &manifest_sha256)?;
        Ok(Sent::Done(SendOutcome {
            id: manifest.id,
            receipt,
            replayed,
            recipients,
            notices: Vec::new(),
        }))
    }
}

/// What [`Client::send_document_watched`] ended with.
#[derive(Debug)]
pub enum Sent {
    /// The document was sent and its receipt verifies.
    Done(SendOutcome),
    /// The person interrupted it: what was done and how to finish.
    Interrupted(Interrupted),
}

/// The outcome of a send that cannot be interrupted (its watch catches nothing).
fn done(sent: Sent) -> Result<SendOutcome, ClientError> {
    match sent {
        Sent::Done(outcome) => Ok(outcome),
        Sent::Interrupted(report) => Err(ClientError::Input(report.to_string())),
    }
}

/// Bytes read from a payload file at a time while it is sent: each read is a trip to
/// tokio's blocking pool and each chunk at least one HTTP/2 frame, so 1 MiB reads make
/// 16 times fewer of both than 64 KiB ones (the server accepts frames up to 256 KiB).
const SEND_READ_BYTES: usize = 1 << 20;

/// The files concatenated, as a streamed request body, counted as it is read.
fn payload_body(files: Vec<PathBuf>, counter: Counter) -> reqwest::Body {
    let stream = futures_util::stream::iter(files)
        .then(|path| async move {
            let file = tokio::fs::File::open(path).await;
            let stream: futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> =
                match file {
                    Ok(f) => {
                        tokio_util::io::ReaderStream::with_capacity(f, SEND_READ_BYTES).boxed()
                    }
                    Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
                };
            stream
        })
        .flatten()
        .inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                counter.add(bytes.len() as u64);
            }
        });
    reqwest::Body::wrap_stream(stream)
}
/// A document this client submitted whose payload the server does not have yet, as
/// `congvan sent` lists it.
#[derive(Clone, Debug)]
pub struct PendingSent {
    /// The document id.
    pub id: Uuid,
    /// The server's state for it: `awaiting_payload`, or `not_submitted` when the server
    /// never received the signed manifest.
    pub state: String,
    /// Document type, number and notation, as `TYPE NUMBER-NOTATION`.
    pub code: String,
    /// The recipients.
    pub recipients: Vec<String>,
    /// Payload bytes still to send.
    pub size: u64,
    /// The command that finishes the upload.
    pub resume_command: String,
}

/// The refusals of the signed manifest itself: sending the same submission again would
/// be refused again, so the kept copy is forgotten. Every other refusal keeps it.
const REFUSES_THE_DOCUMENT: &[&str] = &[
    "manifest_too_large",
    "manifest_unknown_field",
    "manifest_not_nfc",
    "manifest_invalid",
    "doc_type_unknown",
    "signature_invalid",
    "signature_untrusted",
    "signature_expired",
    "signature_revoked",
    "signature_wrong_usage",
    "signature_no_identity",
    "signature_unsupported",
    "signature_malformed",
    "signature_role_missing",
    "signature_role_duplicate",
    "signer_mismatch",
    "signer_kind_mismatch",
    "signer_name_mismatch",
    "sender_mismatch",
    "sender_inactive",
    "recipient_unknown",
    "recipient_inactive",
    "routing_denied",
    "number_in_use",
    "cipher_not_certified",
    "recipient_no_encryption_key",
    "classified_not_encrypted",
    "recipient_set_mismatch",
    "business_target_invalid",
    "id_conflict",
];

impl Client {
    /// Finishes the interrupted upload of document `id` with the signed submission this
    /// client kept: no new signature, so no new `created_at` and no 409. A document the
    /// server already holds whole is reported as sent (its receipt verified, `replayed`
    /// set); files that changed since signing, or a classified document whose sealed
    /// payload is gone, are refused with what to do instead.
    pub async fn resume_send(&self, id: &Uuid, watch: &Watch) -> Result<Sent, ClientError> {
        let pending = self.load_pending(id)?;
        let kept = match &pending {
            Some(p) => Some(parse_manifest_any_type(
                p.submit.manifest.get(),
                Layer::Outer,
            )?),
            None => None,
        };
        match self.document(id).await {
            Ok(view) if view.state != AWAITING_PAYLOAD => {
                // Complete on the server: ours only if it is the manifest this client
                // kept, or (nothing kept) one our organisation sent. A document sent to us
                // under that id is not something to resume.
                let ours = match &kept {
                    Some(k) => sha256_hex(&k.canonical) == view.manifest_sha256,
                    None => {
                        parse_manifest_any_type(view.manifest.get(), Layer::Outer)?
                            .manifest
                            .sender
                            == self.own_org()?
                    }
                };
                if !ours {
                    return Err(ClientError::Input(format!(
                        "the server holds document {id}, but not as the upload this client \
                         kept: there is nothing of yours to resume under this id"
                    )));
                }
                let outcome = self.already_complete(id, view).await?;
                self.remove_pending(id)?;
                return Ok(Sent::Done(outcome));
            }
            Ok(view) => {
                if let Some(k) = &kept
                    && sha256_hex(&k.canonical) != view.manifest_sha256
                {
                    return Err(ClientError::Input(format!(
                        "the server awaits another manifest under document {id} than the one \
                         this client kept; it cannot be resumed from here"
                    )));
                }
            }
            // Not there: the signed manifest never arrived; the kept submission sends it.
            Err(ClientError::Api { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
        let (Some(pending), Some(parsed)) = (pending, kept) else {
            return Err(ClientError::Input(format!(
                "this client kept no upload of document {id} to resume (nothing in {}); it \
                 cannot be finished without signing again: send the document again as a new \
                 one (without --resume)",
                pending_path(&self.profile().state_dir, id).display()
            )));
        };
        if parsed.manifest.id != *id {
            return Err(ClientError::Input(format!(
                "{} names document {}, not {id}: the file is damaged",
                pending_path(&self.profile().state_dir, id).display(),
                parsed.manifest.id
            )));
        }
        let check = SignedFiles {
            files: pending.files.clone(),
            sealed: pending.sealed.clone(),
            payload_sha256: parsed.manifest.payload.sha256.clone(),
            payload_size: parsed.manifest.payload.size,
        };
        // Re-hashing large files takes a while: Ctrl-C is answered during it too.
        tokio::select! {
            checked = tokio::task::spawn_blocking(move || check.unchanged()) => {
                checked.map_err(ClientError::Background)??;
            }
            () = watch.interrupted() => {
                return Ok(Sent::Interrupted(Interrupted {
                    id: *id,
                    stage: Stage::Submitting,
                    sent: 0,
                    total: parsed.manifest.payload.size,
                    resume_command: resume_command(self, id),
                }));
            }
        }
        let submit = SubmitRequest {
            manifest: pending.submit.manifest.clone(),
            signatures: pending.submit.signatures.clone(),
            payload: None,
        };
        let result = self
            .submit_and_upload_watched(
                &parsed.manifest,
                &parsed.canonical,
                submit,
                &pending.upload_files(),
                pending.recipients.clone(),
                watch,
            )
            .await;
        self.settle_pending(id, result)
    }

    /// The outcome of a document the server already holds whole: its receipt verified
    /// against the manifest the server returns.
    async fn already_complete(
        &self,
        id: &Uuid,
        view: DocumentView,
    ) -> Result<SendOutcome, ClientError> {
        let parsed = parse_manifest_any_type(view.manifest.get(), Layer::Outer)?;
        let receipt = view.receipt.as_ref().ok_or_else(|| {
            ClientError::Protocol(format!(
                "the server says document {id} is {} but shows no receipt",
                view.state
            ))
        })?;
        let keys = self.server_keys().await?;
        let receipt =
            super::send::check_receipt(receipt, &keys, &parsed.manifest, &view.manifest_sha256)?;
        Ok(SendOutcome {
            id: *id,
            receipt,
            replayed: true,
            recipients: parsed.manifest.recipients,
            notices: Vec::new(),
        })
    }

    /// The uploads this client began and the server has not completed, with the
    /// server's state for each. Records of uploads the server did complete (the client
    /// stopped before it could forget them) are forgotten here.
    pub async fn pending_sent(&self) -> Result<Vec<PendingSent>, ClientError> {
        let mut out = Vec::new();
        for id in self.pending_ids()? {
            let Some(pending) = self.load_pending(&id)? else {
                continue;
            };
            let parsed = parse_manifest_any_type(pending.submit.manifest.get(), Layer::Outer)?;
            let kept_sha256 = sha256_hex(&parsed.canonical);
            let state = match self.document(&id).await {
                // Another manifest under this id (a document sent to us, or a clash): the
                // kept upload is not it; show it rather than forget it.
                Ok(view) if view.manifest_sha256 != kept_sha256 => "id_conflict".to_owned(),
                Ok(view) if view.state == AWAITING_PAYLOAD => view.state,
                Ok(_) => {
                    self.remove_pending(&id)?;
                    continue;
                }
                Err(ClientError::Api { status: 404, .. }) => "not_submitted".to_owned(),
                Err(e) => return Err(e),
            };
            let m = &parsed.manifest;
            out.push(PendingSent {
                id,
                state,
                code: format!("{} {}-{}", m.doc_type, m.code.number, m.code.notation),
                recipients: m.recipients.iter().map(ToString::to_string).collect(),
                size: m.payload.size,
                resume_command: resume_command(self, &id),
            });
        }
        Ok(out)
    }
}

/// The server's state of a document whose payload has not arrived.
const AWAITING_PAYLOAD: &str = "awaiting_payload";

/// What a resumed upload checks on disk before sending anything.
struct SignedFiles {
    files: Vec<PendingFile>,
    sealed: Option<PathBuf>,
    payload_sha256: String,
    payload_size: u64,
}

impl SignedFiles {
    /// Refuses files that differ from what was signed (their SHA-256 or size), and a
    /// sealed payload that is gone or differs from the signed digest.
    fn unchanged(&self) -> Result<(), ClientError> {
        for file in &self.files {
            let (size, sha256) = hash_file(&file.path).map_err(|e| {
                ClientError::Input(format!(
                    "{}: {e}; resuming needs the files exactly as they were signed",
                    file.path.display()
                ))
            })?;
            if size != file.size || sha256 != file.sha256 {
                return Err(ClientError::Input(format!(
                    "{} changed since the document was signed (its SHA-256 differs: {} then, \
                     {sha256} now): resuming would send other bytes than the signed manifest \
                     names; restore the file, or send the document again as a new one",
                    file.path.display(),
                    file.sha256
                )));
            }
        }
        if let Some(sealed) = &self.sealed {
            let refused = |why: String| {
                ClientError::Input(format!(
                    "the sealed payload kept for this classified document {why}; sealing again \
                     cannot give the same digest (every sealing is randomised), so the signed \
                     manifest cannot be finished: send the document again as a new one"
                ))
            };
            let (size, sha256) = hash_file(sealed)
                .map_err(|e| refused(format!("cannot be read ({}: {e})", sealed.display())))?;
            if size != self.payload_size || sha256 != self.payload_sha256 {
                return Err(refused(format!(
                    "({}) does not hash to the signed digest",
                    sealed.display()
                )));
            }
        }
        Ok(())
    }
}

/// The size and SHA-256 (lower-case hex) of a file, read in pieces.
fn hash_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; SEND_READ_BYTES];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, crate::pki::identity::hex(hasher.finish().as_ref())))
}
