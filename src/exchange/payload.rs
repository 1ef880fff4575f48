//! Payloads: accepting one (inline with its manifest, or uploaded afterwards) and handing
//! it to a recipient.
//!
//! Both ways in share one sequence (`Exchange::accept`'s parts): the disk reserve is
//! checked for the payload's size, a classified payload gets the recipient-set check
//! (a sealed message for exactly the recipients' registered keys, read from its headers,
//! never decrypted), the bytes are checked against the manifest's size and digest, and
//! the document is accepted in the same durable commit that logs it and signs its
//! receipt.

use std::fmt::Display;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::submission::{replay_or_conflict, submit_response};
use super::{Answer, Exchange, ExchangeError, accepted_receipt, inactive};
use crate::api::{self, INLINE_PAYLOAD_BYTES_MAX, SubmitResponse, UploadResponse};
use crate::directory::OrgId;
use crate::document::manifest::Classification;
use crate::document::sha256_hex;
use crate::notary::{KeyPurpose, NotaryError, Signed};
use crate::pki::Identity;
use crate::store::{
    BlobWriter, DocState, DocumentRecord, SMALL_PAYLOAD_BYTES_MAX, StoreError, VerifiedBlob,
    submission_receipt,
};

/// Chunks of an upload queued for the writer thread at most.
const UPLOAD_QUEUE_CHUNKS: usize = 8;

/// A check run on a complete, digest-verified payload before it is committed; it reads
/// the payload from the reader it is given.
type PayloadCheck =
    Box<dyn FnOnce(&mut (dyn std::io::Read + Send + Sync)) -> Result<(), ExchangeError> + Send>;

/// Where an upload stands once the document it names is known.
#[derive(Debug)]
pub enum UploadStart {
    /// The payload is already stored: the original receipt, and the body is not read.
    Replayed(UploadResponse),
    /// The document awaits this payload.
    Ready(PendingUpload),
}

/// A document awaiting the payload being uploaded.
#[derive(Debug)]
pub struct PendingUpload {
    record: Box<DocumentRecord>,
}

/// An upload refused or failed, and whether that happened while its body was being
/// received (those refusals go into the log; the ones before and after do not).
#[derive(Debug)]
pub struct UploadRefusal {
    /// Why.
    pub error: ExchangeError,
    /// True when the body was being received.
    pub while_receiving: bool,
}

impl From<ExchangeError> for UploadRefusal {
    fn from(error: ExchangeError) -> Self {
        UploadRefusal {
            error,
            while_receiving: false,
        }
    }
}

/// A payload ready to be streamed to a recipient.
#[derive(Debug)]
pub struct PayloadOut {
    /// Its size.
    pub size: u64,
    /// Its SHA-256 (lower-case hex).
    pub sha256: String,
    /// The index of the `fetched` event, when a recipient fetched it.
    pub log_index: Option<u64>,
    /// The bytes.
    pub content: PayloadContent,
}

/// Where the payload's bytes are.
#[derive(Debug)]
pub enum PayloadContent {
    /// A small payload, kept in the database with its document.
    Small(Vec<u8>),
    /// A blob file, opened.
    File(tokio::fs::File),
}

impl Exchange {
    /// The first half of `PUT /v1/documents/{id}/payload`: the document must be the
    /// caller's, its sender still active and `content_length` (when given) its size.
    pub fn start_upload(
        &self,
        caller: &Identity,
        id: &uuid::Uuid,
        content_length: Option<u64>,
    ) -> Result<UploadStart, ExchangeError> {
        let sender = super::sender_of(caller)?;
        let record = self
            .store
            .document(id)?
            .ok_or(ExchangeError::DocumentNotFound)?;
        if &record.sender != sender {
            return Err(ExchangeError::DocumentNotFound);
        }
        if record.state == DocState::Accepted {
            // An identical replay: the payload is stored; answer with the original
            // receipt without reading the body.
            let receipt = accepted_receipt(&record)?;
            return Ok(UploadStart::Replayed(UploadResponse { receipt }));
        }
        // A document not yet accepted when its sender merged is not sent by it afterwards.
        if self
            .directory
            .org(sender)
            .is_some_and(|o| !o.status.is_active())
        {
            return Err(ExchangeError::SenderInactive(inactive(
                &self.directory,
                sender,
                "send as",
            )));
        }
        if let Some(length) = content_length {
            if length != record.payload_size {
                return Err(ExchangeError::PayloadSizeMismatch(format!(
                    "Content-Length is {length}; the manifest says {}",
                    record.payload_size
                )));
            }
        }
        Ok(UploadStart::Ready(PendingUpload {
            record: Box::new(record),
        }))
    }

    /// The second half of an upload: the shared acceptance sequence on a streamed body.
    /// The body is taken from `body` only once the payload may be received; a body left
    /// there was never read (the caller may drain it before answering).
    pub async fn upload<S, E>(
        &self,
        pending: PendingUpload,
        body: &mut Option<S>,
    ) -> Result<Answer<UploadResponse>, UploadRefusal>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        let record = *pending.record;
        let check = self.prepare(&record)?;
        let Some(stream) = body.take() else {
            return Err(ExchangeError::Internal("the upload body was taken twice".into()).into());
        };
        self.receive_payload(&record, stream, check)
            .await
            .map_err(|error| UploadRefusal {
                error,
                while_receiving: true,
            })?;

        let id = record.id;
        let accepted_at = api::now_rfc3339();
        let make_receipt = self.receipt_maker(&record, &accepted_at);
        match self
            .store
            .accept_payload(&id, &accepted_at, make_receipt)
            .await
        {
            Ok((stored, index)) => {
                tracing::info!(document = %id, size = record.payload_size, log_index = index, "payload accepted");
                let receipt = accepted_receipt(&stored)?;
                Ok(Answer::Created(UploadResponse { receipt }))
            }
            // A concurrent identical upload won the race: answer with its receipt.
            Err(StoreError::State(_)) => {
                let current = self
                    .store
                    .document(&id)
                    .map_err(ExchangeError::from)?
                    .ok_or(ExchangeError::DocumentNotFound)?;
                let receipt = accepted_receipt(&current)?;
                Ok(Answer::Replayed(UploadResponse { receipt }))
            }
            Err(e) => Err(ExchangeError::from(e).into()),
        }
    }

    /// A one-request submission: the payload came inline with the manifest. It is
    /// checked exactly as an upload is (size, digest, the sealed shape of a classified
    /// payload), stored, and the document is accepted in the same durable commit that
    /// records it.
    pub(super) async fn accept_inline(
        &self,
        record: DocumentRecord,
        deadline: Option<&str>,
        encoded: &str,
    ) -> Result<Answer<SubmitResponse>, ExchangeError> {
        use base64::Engine as _;
        if record.payload_size > INLINE_PAYLOAD_BYTES_MAX {
            return Err(ExchangeError::RequestInvalid(format!(
                "payloads over {INLINE_PAYLOAD_BYTES_MAX} bytes are uploaded with PUT {}, not inline",
                crate::api::payload_path(&record.id)
            )));
        }
        let payload = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(ExchangeError::PayloadNotBase64)?;
        if payload.len() as u64 != record.payload_size {
            return Err(ExchangeError::PayloadSizeMismatch(format!(
                "the inline payload has {} bytes; the manifest says {}",
                payload.len(),
                record.payload_size
            )));
        }
        let check = self.prepare(&record)?;
        // A small payload goes into the database with the record; a larger one into a
        // blob file first (fsynced and renamed into place before the record refers to it).
        let small = record.payload_size <= SMALL_PAYLOAD_BYTES_MAX;
        let blobs = self.store.blobs().clone();
        let expected_sha256 = record.payload_sha256.clone();
        let expected_size = record.payload_size;
        let payload = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ExchangeError> {
            if small {
                let actual = sha256_hex(&payload);
                if actual != expected_sha256 {
                    return Err(ExchangeError::PayloadDigestMismatch(format!(
                        "the payload's SHA-256 is {actual}; the manifest says {expected_sha256}"
                    )));
                }
                if let Some(check) = check {
                    check(&mut payload.as_slice())?;
                }
            } else {
                let mut writer = blobs.writer()?;
                writer.write(&payload)?;
                let blob = finish_blob(writer, &expected_sha256, expected_size)?;
                if let Some(check) = check {
                    check(&mut payload.as_slice())?;
                }
                blob.commit()?;
            }
            Ok(payload)
        })
        .await
        .map_err(|source| ExchangeError::Task {
            what: "inline payload",
            source,
        })??;

        let accepted_at = api::now_rfc3339();
        let make_receipt = self.receipt_maker(&record, &accepted_at);
        match self
            .store
            .insert_accepted(
                &record,
                deadline,
                small.then_some(payload.as_slice()),
                &accepted_at,
                make_receipt,
            )
            .await?
        {
            Ok((stored, index)) => {
                tracing::info!(
                    document = %stored.id,
                    sender = %stored.sender,
                    recipients = stored.recipients.len(),
                    size = stored.payload_size,
                    log_index = index,
                    "document submitted and accepted in one request"
                );
                Ok(Answer::Created(submit_response(&stored)))
            }
            Err(existing) => replay_or_conflict(*existing, &record.manifest_sha256),
        }
    }

    /// The steps both ways in take before any byte is stored: the disk reserve for the
    /// payload's size, and for a classified document the recipient-set check.
    fn prepare(&self, record: &DocumentRecord) -> Result<Option<PayloadCheck>, ExchangeError> {
        self.ensure_space(record.payload_size)?;
        if record.classification == Classification::Thuong {
            Ok(None)
        } else {
            self.recipient_set_check(record).map(Some)
        }
    }

    /// Makes the server's signed submission receipt for `record`, given its log index.
    fn receipt_maker<'a>(
        &self,
        record: &'a DocumentRecord,
        accepted_at: &'a str,
    ) -> impl Fn(u64) -> Result<Signed, NotaryError> + 'a {
        let keys = self.keys.clone();
        move |log_index: u64| {
            let statement = submission_receipt(record, accepted_at, log_index);
            let value = serde_json::to_value(&statement)
                .map_err(|e| NotaryError::Statement(e.to_string()))?;
            keys.sign(KeyPurpose::Receipts, value)
        }
    }

    /// The check for a classified payload: a sealed message for exactly the recipients'
    /// registered encryption keys. It reads only the message's headers and never decrypts.
    fn recipient_set_check(&self, record: &DocumentRecord) -> Result<PayloadCheck, ExchangeError> {
        let cipher = self.cipher.clone();
        let mut expected: Vec<(OrgId, Vec<String>)> = Vec::new();
        for recipient in &record.recipients {
            let cert = self
                .directory
                .org(recipient)
                .and_then(|o| o.encryption_cert.clone())
                .ok_or_else(|| ExchangeError::RecipientNoEncryptionKey(recipient.to_string()))?;
            let ids = cipher
                .recipient_ids(&cert)
                .map_err(|_| ExchangeError::RecipientNoEncryptionKey(recipient.to_string()))?;
            expected.push((recipient.clone(), ids));
        }
        Ok(Box::new(move |payload| {
            let envelope = cipher
                .recipients_of(payload)
                .map_err(ExchangeError::ClassifiedNotEncrypted)?;
            let known: std::collections::HashSet<&str> = expected
                .iter()
                .flat_map(|(_, ids)| ids.iter().map(String::as_str))
                .collect();
            for id in &envelope.recipients {
                if !known.contains(id.as_str()) {
                    return Err(ExchangeError::RecipientSetMismatch(format!(
                        "the payload is also encrypted to key {id}, which belongs to no recipient"
                    )));
                }
            }
            let present: std::collections::HashSet<&str> =
                envelope.recipients.iter().map(String::as_str).collect();
            for (org, ids) in &expected {
                if !ids.iter().any(|r| present.contains(r.as_str())) {
                    return Err(ExchangeError::RecipientSetMismatch(format!(
                        "the payload is not encrypted to the registered key of recipient {org}"
                    )));
                }
            }
            Ok(())
        }))
    }

    /// Streams the body into a blob on a blocking thread, enforcing size and digest, runs
    /// `check` on the complete file, and commits it.
    async fn receive_payload<S, E>(
        &self,
        record: &DocumentRecord,
        body: S,
        check: Option<PayloadCheck>,
    ) -> Result<(), ExchangeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Display,
    {
        let expected_size = record.payload_size;
        let expected_sha256 = record.payload_sha256.clone();
        let mut writer = self.store.blobs().writer()?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(UPLOAD_QUEUE_CHUNKS);
        let write_task = tokio::task::spawn_blocking(move || -> Result<(), ExchangeError> {
            while let Some(chunk) = rx.blocking_recv() {
                writer.write(&chunk)?;
            }
            let blob = finish_blob(writer, &expected_sha256, expected_size)?;
            if let Some(check) = check {
                let path = blob.path();
                let mut file = std::fs::File::open(path)
                    .map_err(|e| ExchangeError::Internal(format!("{}: {e}", path.display())))?;
                check(&mut file)?;
            }
            blob.commit().map_err(ExchangeError::from)
        });

        let mut stream = std::pin::pin!(body);
        let mut received: u64 = 0;
        let mut failure = None;
        let idle = self.body_idle_timeout;
        loop {
            let next = match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(_) => {
                    failure = Some(ExchangeError::BodyTimeout(idle.as_secs()));
                    break;
                }
            };
            match next {
                Ok(chunk) => {
                    received += chunk.len() as u64;
                    if received > expected_size {
                        failure = Some(ExchangeError::PayloadSizeMismatch(format!(
                            "the payload is longer than the {expected_size} bytes the manifest says"
                        )));
                        break;
                    }
                    if tx.send(chunk).await.is_err() {
                        // The writer stopped early (disk error); its result says why.
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(ExchangeError::UploadIncomplete(e.to_string()));
                    break;
                }
            }
        }
        drop(tx);
        let written = write_task.await.map_err(|source| ExchangeError::Task {
            what: "upload writer",
            source,
        })?;
        match failure {
            // The writer drops its temporary file when it sees the channel close early.
            Some(e) => Err(e),
            None => written,
        }
    }

    /// `GET /v1/documents/{id}/payload`: the payload of a document the caller may see,
    /// for a committee only. A recipient's fetch is in the log before the first byte
    /// leaves.
    pub async fn open_payload(
        &self,
        caller: &Identity,
        id: &uuid::Uuid,
    ) -> Result<PayloadOut, ExchangeError> {
        let record = self.visible_document(caller, id)?;
        let Identity::Org(org) = caller else {
            return Err(ExchangeError::RoleForbidden(
                "security officers see delivery metadata, not payloads",
            ));
        };
        if record.state != DocState::Accepted {
            return Err(ExchangeError::PayloadNotAvailable);
        }
        let small = if record.payload_size <= SMALL_PAYLOAD_BYTES_MAX {
            self.store.small_payload(&record.payload_sha256)?
        } else {
            None
        };
        let file = match small {
            Some(_) => None,
            None => {
                let path = self.store.blobs().path(&record.payload_sha256);
                Some(tokio::fs::File::open(&path).await.map_err(|source| {
                    ExchangeError::PayloadFile {
                        id: *id,
                        path: path.display().to_string(),
                        source,
                    }
                })?)
            }
        };
        let mut log_index = None;
        if let Some(recipient) = self.addressee(org, &record) {
            self.ensure_active_recipient(org)?;
            self.ensure_space(0)?;
            let (_, index) = self
                .store
                .record_fetch_as(
                    &record,
                    recipient.as_str(),
                    org.as_str(),
                    &api::now_rfc3339(),
                )
                .await?;
            log_index = Some(index);
        }
        let content = match (small, file) {
            (Some(bytes), _) => PayloadContent::Small(bytes),
            (None, Some(file)) => PayloadContent::File(file),
            (None, None) => {
                return Err(ExchangeError::Internal(format!(
                    "payload of {id} is missing"
                )));
            }
        };
        Ok(PayloadOut {
            size: record.payload_size,
            sha256: record.payload_sha256,
            log_index,
            content,
        })
    }
}

/// Checks a written blob's size and digest against the manifest (a mismatch is
/// [`ExchangeError::Blob`], answered as `payload_size_mismatch` or
/// `payload_digest_mismatch`).
fn finish_blob(
    writer: BlobWriter,
    expected_sha256: &str,
    expected_size: u64,
) -> Result<VerifiedBlob, ExchangeError> {
    Ok(writer.finish(expected_sha256, expected_size)?)
}
