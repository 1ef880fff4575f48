//! What one operation of each benchmark mode is: a sender that builds, signs and submits
//! documents, a recipient that fetches and acknowledges them, and a raw request. Every
//! request goes through the typed client ([`crate::client::endpoints`]) and every manifest
//! through the builder ([`crate::document::draft`]), as `congvan send` does.

use std::sync::Arc;

use bytes::Bytes;
use ring::digest;
use ring::rand::SecureRandom;
use uuid::Uuid;

use super::{BenchError, LoadOptions, Mode};
use crate::api::{DELIVERY_RECEIPT_TYPE, DeliveryReceipt, INLINE_SEND_BYTES_MAX};
use crate::client::endpoints::ListQuery;
use crate::client::fetch::signed_receipt;
use crate::client::send::{OrgSigner, check_receipt};
use crate::client::{Client, ClientError};
use crate::config::ClientProfile;
use crate::directory::OrgId;
use crate::document::draft::{Draft, SealedPayload, outer_manifest};
use crate::document::manifest::{Attachment, Manifest, PayloadInfo, Signer};
use crate::document::sha256_hex;
use crate::notary::PublicKeyInfo;
use crate::pki::identity::hex;
use crate::seal::{Cipher, OpenPgp};

/// Size of the random block payloads are made of.
const BLOCK_BYTES: usize = 1 << 20;
/// Largest `raw` body (it is sent from memory).
const RAW_BODY_BYTES_MAX: u64 = 4 << 30;
/// Page length when collecting the inbox's documents before a fetch or ack run.
const INBOX_SCAN_PAGE: usize = 500;
/// Page length of the `inbox` mode (what a person's first screen asks for).
const INBOX_MODE_PAGE: usize = 50;
/// At most this many inbox documents are collected for a fetch or ack run.
const INBOX_SCAN_MAX: usize = 100_000;

/// The outcome of one operation: the bytes it moved, or why it failed.
pub type OpResult = Result<u64, ClientError>;

/// A sender: keys loaded once, and what every document shares.
struct Sender {
    client: Client,
    /// The keys, loaded once and shared by all workers.
    signer: Arc<OrgSigner>,
    server_keys: Vec<PublicKeyInfo>,
    /// The manifest every document starts from, made once by the builder (for a
    /// classified run, the outer manifest of the sealed payload); each document changes
    /// only its id, number, time and (unclassified) payload digest.
    template: Manifest,
    size: u64,
    block: Bytes,
    /// For a classified document: the sealed payload and its SHA-256.
    sealed: Option<(Bytes, String)>,
    /// Send small payloads inline (one request), as `congvan send` does.
    inline: bool,
}

impl Sender {
    async fn new(client: Client, options: &LoadOptions) -> Result<Sender, BenchError> {
        let profile = client.profile().clone();
        let signer = Arc::new(OrgSigner::load(&profile)?);
        let sender = signer.org.clone();
        let person = signer.person_name_and_title()?;
        let directory = client.directory().await?;
        let recipients = if options.to.is_empty() {
            let prefix = format!("{}/", sender.as_str());
            let mut chosen = Vec::new();
            for org in &directory.orgs {
                if chosen.len() >= options.recipients {
                    break;
                }
                let eligible = org.id.starts_with(&prefix)
                    && org.status == "active"
                    && (!options.classification.is_classified() || org.encryption_cert.is_some());
                if eligible {
                    chosen.push(
                        OrgId::parse(&org.id).map_err(|e| ClientError::Protocol(e.to_string()))?,
                    );
                }
            }
            if chosen.len() < options.recipients {
                return Err(BenchError::Input(format!(
                    "{sender} has only {} active descendants{} in the directory; {} recipients were asked for (name them with --to, or use a larger tree)",
                    chosen.len(),
                    if options.classification.is_classified() {
                        " with encryption keys"
                    } else {
                        ""
                    },
                    options.recipients
                )));
            }
            chosen
        } else {
            options.to.clone()
        };
        let block = random_bytes(BLOCK_BYTES.min(options.size.max(1) as usize))?;
        let sealed = if options.classification.is_classified() {
            let mut certs = Vec::new();
            for recipient in &recipients {
                let cert = directory
                    .orgs
                    .iter()
                    .find(|o| o.id == recipient.as_str())
                    .and_then(|o| o.encryption_cert.clone())
                    .ok_or_else(|| {
                        BenchError::Input(format!("{recipient} has no encryption key"))
                    })?;
                certs.push(cert.into_bytes());
            }
            let key_path = profile
                .openpgp_key
                .clone()
                .ok_or_else(|| BenchError::Input("the profile has no openpgp_key".into()))?;
            let secret = std::fs::read(&key_path).map_err(|source| BenchError::Io {
                path: key_path.clone(),
                source,
            })?;
            let plaintext = payload_chunks(&block, options.size, &Uuid::now_v7())
                .concat()
                .to_vec();
            let sealed = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                OpenPgp::default()
                    .seal(&mut plaintext.as_slice(), &mut out, &certs, &secret)
                    .map(|()| out)
            })
            .await
            .map_err(|e| BenchError::Worker(e.to_string()))?
            .map_err(|source| BenchError::Seal {
                step: "sealing",
                source,
            })?;
            let sha = sha256_hex(&sealed);
            Some((Bytes::from(sealed), sha))
        } else {
            None
        };
        let server_keys = client.server_keys().await?;
        let mut draft = Draft::new(
            Uuid::nil(),
            sender,
            recipients,
            "CV",
            "",
            "CV/BENCH",
            "2026-01-01",
        );
        draft.subject = "Văn bản đo tải".into();
        draft.place = "Hà Nội".into();
        draft.classification = options.classification;
        draft.signer = Signer {
            competence: "TM.".into(),
            position: person.1.unwrap_or_else(|| "Bench".into()),
            full_name: person.0.unwrap_or_else(|| "Bench".into()),
        };
        let template = match &sealed {
            Some((bytes, sha256)) => outer_manifest(
                draft.manifest(Vec::new(), plain_payload(sha256.clone(), 0)),
                SealedPayload {
                    sha256: sha256.clone(),
                    size: bytes.len() as u64,
                },
            ),
            None => draft.manifest(
                vec![Attachment {
                    name: "bench.pdf".into(),
                    media_type: "application/pdf".into(),
                    size: options.size,
                    sha256: String::new(),
                }],
                plain_payload(String::new(), options.size),
            ),
        };
        Ok(Sender {
            client,
            signer,
            server_keys,
            template,
            size: options.size,
            block,
            sealed,
            inline: options.inline,
        })
    }

    /// The same sender on another connection (its own worker).
    fn clone_with(&self, client: Client) -> Sender {
        Sender {
            client,
            signer: self.signer.clone(),
            server_keys: self.server_keys.clone(),
            template: self.template.clone(),
            size: self.size,
            block: self.block.clone(),
            sealed: self.sealed.clone(),
            inline: self.inline,
        }
    }

    /// Builds one document's manifest and payload chunks.
    fn build(&self) -> (Manifest, Vec<Bytes>) {
        let id = Uuid::now_v7();
        let mut manifest = self.template.clone();
        manifest.id = id;
        // Each document gets a number of its own: the outgoing register refuses a number
        // used twice in its period, also across runs against one server.
        manifest.code.number = id.simple().to_string();
        manifest.created_at = crate::api::now_rfc3339();
        match &self.sealed {
            Some((sealed, _)) => (manifest, vec![sealed.clone()]),
            None => {
                let chunks = payload_chunks(&self.block, self.size, &id);
                let mut ctx = digest::Context::new(&digest::SHA256);
                for chunk in &chunks {
                    ctx.update(chunk);
                }
                let sha256 = hex(ctx.finish().as_ref());
                for attachment in &mut manifest.attachments {
                    attachment.sha256.clone_from(&sha256);
                }
                manifest.payload.sha256 = sha256;
                (manifest, chunks)
            }
        }
    }

    /// Submits one document and checks its receipt; returns its id and payload size.
    pub(super) async fn submit_one(&self) -> Result<(Uuid, u64), ClientError> {
        let (manifest, chunks) = self.build();
        let canonical = manifest.canonical().map_err(ClientError::Manifest)?;
        let mut request = self.signer.submit_request(&canonical)?;
        let chunks = if self.inline && manifest.payload.size <= INLINE_SEND_BYTES_MAX {
            use base64::Engine as _;
            request.payload =
                Some(base64::engine::general_purpose::STANDARD.encode(chunks.concat()));
            Vec::new()
        } else {
            chunks
        };
        let (_, answer) = self.client.submit(&request).await?;
        let receipt = match answer.receipt {
            Some(r) => r,
            None => {
                let stream =
                    futures_util::stream::iter(chunks.into_iter().map(Ok::<Bytes, std::io::Error>));
                let (_, uploaded) = self
                    .client
                    .upload(
                        &manifest.id,
                        reqwest::Body::wrap_stream(stream),
                        manifest.payload.size,
                    )
                    .await?;
                uploaded.receipt
            }
        };
        check_receipt(
            &receipt,
            &self.server_keys,
            &manifest,
            &sha256_hex(&canonical),
        )?;
        Ok((manifest.id, manifest.payload.size))
    }
}

fn plain_payload(sha256: String, size: u64) -> PayloadInfo {
    PayloadInfo {
        sha256,
        size,
        encrypted: false,
    }
}

fn random_bytes(len: usize) -> Result<Bytes, BenchError> {
    let mut bytes = vec![0u8; len];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| BenchError::NoRandomness)?;
    Ok(Bytes::from(bytes))
}

/// The payload of document `id`: the id's 16 bytes, then the block repeated, to `size`.
fn payload_chunks(block: &Bytes, size: u64, id: &Uuid) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut left = size;
    let first_len = (block.len() as u64).min(left) as usize;
    if first_len > 0 {
        let mut first = block.slice(..first_len).to_vec();
        let n = first.len().min(16);
        first[..n].copy_from_slice(&id.as_bytes()[..n]);
        chunks.push(Bytes::from(first));
        left -= first_len as u64;
    }
    while left > 0 {
        let n = (block.len() as u64).min(left) as usize;
        chunks.push(block.slice(..n));
        left -= n as u64;
    }
    chunks
}

/// A recipient: fetches and acknowledges.
struct Recipient {
    client: Client,
    /// The recipient's keys (the organisation's signs receipts).
    signer: Arc<OrgSigner>,
}

impl Recipient {
    fn new(client: Client, signer: Arc<OrgSigner>) -> Recipient {
        Recipient { client, signer }
    }

    /// The recipient organisation.
    fn me(&self) -> &OrgId {
        &self.signer.org
    }

    /// Accepted documents in the inbox, newest first, at most `max`.
    async fn inbox(&self, max: usize) -> Result<Vec<Uuid>, ClientError> {
        let mut ids = Vec::new();
        let mut before: Option<u64> = None;
        while ids.len() < max {
            let query = ListQuery::limit(INBOX_SCAN_PAGE).before(before);
            let page = self.client.inbox(&query).await?;
            ids.extend(
                page.items
                    .iter()
                    .filter(|i| i.state == "accepted")
                    .map(|i| i.id),
            );
            match page.next_before {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        ids.truncate(max);
        Ok(ids)
    }

    /// Reads the first page of the inbox; returns how many items it held.
    async fn inbox_page(&self) -> OpResult {
        let page = self
            .client
            .inbox(&ListQuery::limit(INBOX_MODE_PAGE))
            .await?;
        Ok(page.items.len() as u64)
    }

    /// The payload digest a document's manifest states.
    async fn payload_sha256(&self, id: &Uuid) -> Result<(String, String), ClientError> {
        let view = self.client.document(id).await?;
        let manifest: Manifest = serde_json::from_str(view.manifest.get())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok((manifest.payload.sha256, view.manifest_sha256))
    }

    /// Reads a document's manifest and payload, checking the payload's digest.
    async fn fetch_one(&self, id: &Uuid) -> OpResult {
        let (expected, _) = self.payload_sha256(id).await?;
        let mut response = self.client.payload(id).await?;
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut size = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ClientError::Protocol(crate::client::error_chain(&e)))?
        {
            ctx.update(&chunk);
            size += chunk.len() as u64;
        }
        if hex(ctx.finish().as_ref()) != expected {
            return Err(ClientError::Trust(format!(
                "the payload of {id} does not match its manifest"
            )));
        }
        Ok(size)
    }

    /// Signs and posts a receipt (status 01, arrived) for a document.
    async fn ack_one(&self, id: &Uuid) -> OpResult {
        let (payload_sha256, manifest_sha256) = self.payload_sha256(id).await?;
        let receipt = DeliveryReceipt {
            kind: DELIVERY_RECEIPT_TYPE.to_owned(),
            document_id: *id,
            recipient: self.me().to_string(),
            manifest_sha256,
            payload_sha256,
            status: "01".to_owned(),
            time: crate::api::now_rfc3339(),
            note: String::new(),
        };
        let request = signed_receipt(&self.signer.org_key, receipt)?;
        self.client.post_receipt(id, &request).await?;
        Ok(0)
    }
}

/// The work of one worker: its connection(s) and what it repeats.
pub enum Work {
    /// Submit documents.
    Submit(Box<SenderHandle>),
    /// Fetch these inbox documents, round robin.
    Fetch(RecipientHandle, Vec<Uuid>),
    /// Acknowledge these inbox documents, round robin.
    Ack(RecipientHandle, Vec<Uuid>),
    /// Submit a document, then fetch and acknowledge it as its recipient.
    Mixed(Box<SenderHandle>, RecipientHandle),
    /// Read the first page of the inbox.
    Inbox(RecipientHandle),
    /// Send a fixed body to a URL.
    Raw {
        /// The TLS client (the profile's certificate).
        client: reqwest::Client,
        /// POST or PUT.
        method: reqwest::Method,
        /// Where.
        url: String,
        /// What.
        body: Bytes,
    },
}

/// A sender, opaque outside this module.
pub struct SenderHandle(Sender);

/// A recipient, opaque outside this module.
pub struct RecipientHandle(Recipient);

impl Work {
    /// One work description per worker for `options`, each with its own client
    /// (connection), prepared against the server at `base`.
    pub async fn prepare(
        profile: &ClientProfile,
        base: &str,
        options: &LoadOptions,
    ) -> Result<Vec<Work>, BenchError> {
        let mut works = Vec::with_capacity(options.concurrency);
        match options.mode {
            Mode::Raw => {
                let url = options
                    .url
                    .clone()
                    .ok_or_else(|| BenchError::Input("raw mode needs --url".into()))?;
                if options.size > RAW_BODY_BYTES_MAX {
                    return Err(BenchError::Input(format!(
                        "raw bodies are held in memory: at most {RAW_BODY_BYTES_MAX} bytes"
                    )));
                }
                let body = random_bytes(options.size as usize)?;
                for _ in 0..options.concurrency {
                    let client = Client::new(profile, base)?;
                    works.push(Work::Raw {
                        client: client.http().clone(),
                        method: options.method.clone(),
                        url: url.clone(),
                        body: body.clone(),
                    });
                }
            }
            Mode::Submit => {
                let first = Sender::new(Client::new(profile, base)?, options).await?;
                for _ in 1..options.concurrency {
                    let sender = first.clone_with(Client::new(profile, base)?);
                    works.push(Work::Submit(Box::new(SenderHandle(sender))));
                }
                works.push(Work::Submit(Box::new(SenderHandle(first))));
            }
            Mode::Fetch | Mode::Ack => {
                let signer = Arc::new(OrgSigner::load(profile)?);
                let probe = Recipient::new(Client::new(profile, base)?, signer.clone());
                let ids = probe.inbox(INBOX_SCAN_MAX).await?;
                if ids.is_empty() {
                    return Err(BenchError::Input(format!(
                        "the inbox of {} has no accepted documents; submit some to it first (congvan bench submit --to {})",
                        probe.me(),
                        probe.me()
                    )));
                }
                for w in 0..options.concurrency {
                    let recipient = RecipientHandle(Recipient::new(
                        Client::new(profile, base)?,
                        signer.clone(),
                    ));
                    // Each worker walks its own slice of the inbox, round robin.
                    let mine: Vec<Uuid> = ids
                        .iter()
                        .skip(w % ids.len())
                        .step_by(options.concurrency.min(ids.len()))
                        .copied()
                        .collect();
                    works.push(if options.mode == Mode::Fetch {
                        Work::Fetch(recipient, mine)
                    } else {
                        Work::Ack(recipient, mine)
                    });
                }
            }
            Mode::Inbox => {
                let signer = Arc::new(OrgSigner::load(profile)?);
                for _ in 0..options.concurrency {
                    let client = Client::new(profile, base)?;
                    works.push(Work::Inbox(RecipientHandle(Recipient::new(
                        client,
                        signer.clone(),
                    ))));
                }
            }
            Mode::Mixed => {
                let recipient_profile = options.recipient_profile.clone().ok_or_else(|| {
                    BenchError::Input("mixed mode needs --recipient-profile".into())
                })?;
                let signer = Arc::new(OrgSigner::load(&recipient_profile)?);
                let mut sender_options = options.clone();
                sender_options.to = vec![signer.org.clone()];
                let first = Sender::new(Client::new(profile, base)?, &sender_options).await?;
                for _ in 0..options.concurrency {
                    works.push(Work::Mixed(
                        Box::new(SenderHandle(first.clone_with(Client::new(profile, base)?))),
                        RecipientHandle(Recipient::new(
                            Client::new(&recipient_profile, base)?,
                            signer.clone(),
                        )),
                    ));
                }
            }
        }
        Ok(works)
    }

    /// Does the `cursor`-th operation of this work, calling `note` with the kind, start
    /// and outcome of each request it makes (a mixed cycle makes three). Returns false
    /// when there is nothing to do (an empty list of documents).
    pub async fn step(
        &self,
        cursor: usize,
        started: std::time::Instant,
        note: &mut impl FnMut(&'static str, std::time::Instant, OpResult),
    ) -> bool {
        match self {
            Work::Submit(sender) => {
                let outcome = sender.0.submit_one().await.map(|(_, size)| size);
                note("submit", started, outcome);
            }
            Work::Fetch(recipient, ids) | Work::Ack(recipient, ids) => {
                let Some(id) = ids.get(cursor % ids.len().max(1)) else {
                    return false;
                };
                if matches!(self, Work::Fetch(..)) {
                    note("fetch", started, recipient.0.fetch_one(id).await);
                } else {
                    note("ack", started, recipient.0.ack_one(id).await);
                }
            }
            Work::Inbox(recipient) => {
                note("inbox", started, recipient.0.inbox_page().await);
            }
            Work::Mixed(sender, recipient) => match sender.0.submit_one().await {
                Ok((id, size)) => {
                    note("submit", started, Ok(size));
                    let t = std::time::Instant::now();
                    note("fetch", t, recipient.0.fetch_one(&id).await);
                    let t = std::time::Instant::now();
                    note("ack", t, recipient.0.ack_one(&id).await);
                }
                Err(e) => note("submit", started, Err(e)),
            },
            Work::Raw {
                client,
                method,
                url,
                body,
            } => {
                let outcome = raw_request(client, method, url, body.clone()).await;
                note("raw", started, outcome);
            }
        }
        true
    }
}

async fn raw_request(
    client: &reqwest::Client,
    method: &reqwest::Method,
    url: &str,
    body: Bytes,
) -> OpResult {
    let size = body.len() as u64;
    let response = client
        .request(method.clone(), url)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            cause: crate::client::error_chain(&e),
        })?;
    let status = response.status();
    let _ = response
        .bytes()
        .await
        .map_err(|e| ClientError::Protocol(crate::client::error_chain(&e)))?;
    if status.is_success() {
        Ok(size)
    } else {
        Err(ClientError::Api {
            status: status.as_u16(),
            code: format!("http_{}", status.as_u16()),
            message: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_payload_is_unique_and_exactly_its_size() {
        let block = Bytes::from(vec![9u8; 1000]);
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        for size in [0u64, 10, 1000, 2500] {
            let pa: Vec<u8> = payload_chunks(&block, size, &a).concat();
            let pb: Vec<u8> = payload_chunks(&block, size, &b).concat();
            assert_eq!(pa.len() as u64, size);
            if size >= 16 {
                assert_ne!(pa, pb, "documents differ in their first bytes");
            }
        }
    }
}
