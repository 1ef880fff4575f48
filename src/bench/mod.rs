//! `congvan bench`: a load generator for a running server, as `pgbench` is to PostgreSQL.
//!
//! Modes:
//!
//! - `submit`: sign and submit documents (manifest, then payload), checking each receipt;
//! - `fetch`: read accepted documents from the profile's inbox (manifest and payload,
//!   checking the payload's digest against the manifest);
//! - `ack`: sign and post delivery receipts for documents in the inbox;
//! - `inbox`: read the first page of the inbox;
//! - `mixed`: each worker submits a document to a recipient, which fetches and
//!   acknowledges it (`--recipient-profile`);
//! - `raw`: POST (or PUT) a fixed body to any URL with the same TLS client, for baselines;
//! - `ceiling`: how many documents per second the machine's cores could verify, doing
//!   nothing but the two signatures of each one (ring, one thread per core);
//! - `seal`: seal and open one file with the product's OpenPGP layer.
//!
//! Every network mode keeps connections alive (one HTTP/1.1 or HTTP/2 client per
//! worker), prints a progress line each second on standard error, and ends with
//! operations per second, MB/s, latency percentiles and errors by code; `--json` prints a
//! machine-readable report instead. A warm-up period runs first and is not counted.
//!
//! Documents are built the way `congvan send` builds them (NFC manifest, RFC 8785 bytes,
//! organisation and person signatures) with keys loaded once. Each unclassified document
//! gets its own payload (its id in the first bytes, then a random block), so the server
//! hashes and stores every byte; a classified document reuses one payload sealed before
//! the run for the chosen recipients (sealing is the client's cost, measured by `seal`).

pub mod report;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ring::digest;
use ring::rand::SecureRandom;
use uuid::Uuid;

use crate::api::{
    DELIVERY_RECEIPT_TYPE, DeliveryReceipt, DocumentView, INLINE_SEND_BYTES_MAX, ListPage,
    SubmitRequest, SubmitResponse, UploadResponse,
};
use crate::client::fetch::signed_receipt;
use crate::client::send::{OrgSigner, check_receipt};
use crate::client::{Client, ClientError};
use crate::config::ClientProfile;
use crate::directory::OrgId;
use crate::document::manifest::{
    self, Business, BusinessKind, Classification, DocCode, MANIFEST_VERSION, Manifest, PayloadInfo,
    Promulgated, Signer, Urgency,
};
use crate::document::sha256_hex;
use crate::notary::PublicKeyInfo;
use crate::pki::identity::hex;
use crate::pki::signing::verify_with_certificate;
use crate::seal::{Cipher, OpenPgp};

pub use report::{KindReport, Report};

/// Size of the random block payloads are made of.
const BLOCK_BYTES: usize = 1 << 20;
/// Largest `raw` body (it is sent from memory).
const RAW_BODY_BYTES_MAX: u64 = 4 << 30;

/// Errors that stop a benchmark before it runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The client could not be set up or a preparatory request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The options cannot be used.
    #[error("{0}")]
    Input(String),
}

/// What a worker does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Submit signed documents.
    Submit,
    /// Fetch documents from the inbox.
    Fetch,
    /// Acknowledge documents in the inbox.
    Ack,
    /// Submit, fetch and acknowledge.
    Mixed,
    /// Read the first page of the inbox.
    Inbox,
    /// POST a fixed body to a URL.
    Raw,
}

/// Options shared by the network modes.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The mode.
    pub mode: Mode,
    /// Concurrent workers (each one request at a time).
    pub concurrency: usize,
    /// Measured duration.
    pub duration: Duration,
    /// Unmeasured warm-up before it.
    pub warmup: Duration,
    /// Payload (or raw body) size in bytes.
    pub size: u64,
    /// How many recipients each submitted document names (chosen from the directory).
    pub recipients: usize,
    /// Explicit recipients (override `recipients`).
    pub to: Vec<OrgId>,
    /// Classification of submitted documents.
    pub classification: Classification,
    /// The recipient's profile, for `mixed`.
    pub recipient_profile: Option<ClientProfile>,
    /// The URL for `raw`.
    pub url: Option<String>,
    /// The method for `raw` (POST or PUT).
    pub method: reqwest::Method,
    /// Send payloads up to [`INLINE_SEND_BYTES_MAX`] inline with the manifest (one
    /// request, as `congvan send` does); otherwise manifest first, then `PUT` payload.
    pub inline: bool,
    /// Stop after this many operations per worker (instead of at the end of `duration`).
    pub count: Option<u64>,
    /// Pace the workers to this many operations per second in total (open loop: latency
    /// is measured from each operation's scheduled start).
    pub rate: Option<f64>,
    /// Print a progress line each second.
    pub progress: bool,
}

/// A benchmark's outcome of one operation.
type OpResult = Result<u64, ClientError>;

/// Counters shared by workers and the progress printer.
#[derive(Default)]
struct Live {
    ok: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
}

/// Per-worker measurements of one operation kind.
#[derive(Default)]
struct Samples {
    latencies_us: Vec<u32>,
    bytes: u64,
    errors: BTreeMap<String, u64>,
}

impl Samples {
    fn record(&mut self, started: Instant, outcome: &OpResult) {
        match outcome {
            Ok(bytes) => {
                let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                self.latencies_us.push(us);
                self.bytes += bytes;
            }
            Err(e) => *self.errors.entry(error_code(e)).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.bytes += other.bytes;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }
}

fn error_code(e: &ClientError) -> String {
    match e {
        ClientError::Api { code, .. } => code.clone(),
        ClientError::Transport { .. } => "transport".into(),
        ClientError::Trust(_) => "trust".into(),
        ClientError::Protocol(_) => "protocol".into(),
        _ => "client".into(),
    }
}

/// Parses `10s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: use e.g. 30s, 500ms or 2m"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a duration"))
}

/// Parses `100KiB`, `1GiB`, `10kB`, `512` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: use e.g. 100KiB, 1GiB or 4096"))?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => return Err(format!("{text:?}: the unit must be B, KiB, MiB or GiB")),
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A sender: keys loaded once, and what every document shares.
struct Sender {
    client: Client,
    /// The keys, loaded once and shared by all workers.
    signer: Arc<OrgSigner>,
    recipients: Vec<OrgId>,
    server_keys: Vec<PublicKeyInfo>,
    classification: Classification,
    size: u64,
    block: Bytes,
    /// For a classified document: the sealed payload and its SHA-256.
    sealed: Option<(Bytes, String)>,
    /// The signer's name and title, from the person certificate.
    person: (String, String),
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
        let mut block = vec![0u8; BLOCK_BYTES.min(options.size.max(1) as usize)];
        ring::rand::SystemRandom::new()
            .fill(&mut block)
            .map_err(|_| BenchError::Input("no randomness".into()))?;
        let block = Bytes::from(block);
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
            let secret = std::fs::read(&key_path)
                .map_err(|e| BenchError::Input(format!("{}: {e}", key_path.display())))?;
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
            .map_err(|e| BenchError::Input(e.to_string()))?
            .map_err(|e| BenchError::Input(format!("sealing: {e}")))?;
            let sha = sha256_hex(&sealed);
            Some((Bytes::from(sealed), sha))
        } else {
            None
        };
        let server_keys = client.server_keys().await?;
        Ok(Sender {
            client,
            signer,
            recipients,
            server_keys,
            classification: options.classification,
            size: options.size,
            block,
            sealed,
            person: (
                person.0.unwrap_or_else(|| "Bench".into()),
                person.1.unwrap_or_else(|| "Bench".into()),
            ),
            inline: options.inline,
        })
    }

    /// Builds and signs one document; returns the request, the manifest and the payload.
    fn build(&self) -> Result<(SubmitRequest, Manifest, Vec<u8>, Vec<Bytes>), ClientError> {
        let id = Uuid::now_v7();
        let (chunks, sha256, size, encrypted) = match &self.sealed {
            Some((sealed, sha)) => (vec![sealed.clone()], sha.clone(), sealed.len() as u64, true),
            None => {
                let chunks = payload_chunks(&self.block, self.size, &id);
                let mut ctx = digest::Context::new(&digest::SHA256);
                for chunk in &chunks {
                    ctx.update(chunk);
                }
                (chunks, hex(ctx.finish().as_ref()), self.size, false)
            }
        };
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            id,
            sender: self.signer.org.clone(),
            recipients: self.recipients.clone(),
            code: DocCode {
                // Each document gets a number of its own: the outgoing register refuses
                // a number used twice in its period, also across runs against one server.
                number: id.simple().to_string(),
                notation: "CV/BENCH".into(),
            },
            doc_type: "CV".into(),
            subject: if encrypted {
                String::new()
            } else {
                "Văn bản đo tải".into()
            },
            promulgated: Promulgated {
                date: "2026-01-01".into(),
                place: "Hà Nội".into(),
            },
            signer: Signer {
                competence: "TM.".into(),
                position: self.person.1.clone(),
                full_name: self.person.0.clone(),
            },
            urgency: Urgency::Thuong,
            deadline: None,
            classification: self.classification,
            steering: 1,
            due: None,
            response_for: None,
            business: Business {
                kind: BusinessKind::New,
                target: None,
            },
            attachments: if encrypted {
                Vec::new()
            } else {
                vec![manifest::Attachment {
                    name: "bench.pdf".into(),
                    media_type: "application/pdf".into(),
                    size,
                    sha256: sha256.clone(),
                }]
            },
            payload: PayloadInfo {
                sha256,
                size,
                encrypted,
            },
            created_at: crate::api::now_rfc3339(),
        };
        let canonical = manifest
            .canonical()
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let request = self.signer.submit_request(&canonical)?;
        Ok((request, manifest, canonical, chunks))
    }

    /// Submits one document and checks its receipt; returns the payload size.
    async fn submit_one(&self) -> Result<(Uuid, u64), ClientError> {
        let (mut request, manifest, canonical, chunks) = self.build()?;
        let chunks = if self.inline && manifest.payload.size <= INLINE_SEND_BYTES_MAX {
            use base64::Engine as _;
            request.payload =
                Some(base64::engine::general_purpose::STANDARD.encode(chunks.concat()));
            Vec::new()
        } else {
            chunks
        };
        let (_, answer): (u16, SubmitResponse) =
            self.client.post_json("/v1/documents", &request).await?;
        let receipt = match answer.receipt {
            Some(r) => r,
            None => {
                let stream =
                    futures_util::stream::iter(chunks.into_iter().map(Ok::<Bytes, std::io::Error>));
                let (_, uploaded): (u16, UploadResponse) = self
                    .client
                    .put_stream(
                        &answer.payload_url,
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
            let path = match before {
                Some(b) => format!("/v1/inbox?limit=500&before={b}"),
                None => "/v1/inbox?limit=500".to_owned(),
            };
            let page: ListPage = self.client.get_json(&path).await?;
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

    /// Reads the first page (50 items) of the inbox; returns the answer's size.
    async fn inbox_page(&self) -> OpResult {
        let page: serde_json::Value = self.client.get_json("/v1/inbox?limit=50").await?;
        Ok(page["items"].as_array().map_or(0, |a| a.len() as u64))
    }

    /// Reads a document's manifest and payload, checking the payload's digest.
    async fn fetch_one(&self, id: &Uuid) -> OpResult {
        let view: DocumentView = self.client.get_json(&format!("/v1/documents/{id}")).await?;
        let manifest: serde_json::Value = serde_json::from_str(view.manifest.get())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let expected = manifest["payload"]["sha256"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut response = self
            .client
            .get_stream(&format!("/v1/documents/{id}/payload"))
            .await?;
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
        let view: DocumentView = self.client.get_json(&format!("/v1/documents/{id}")).await?;
        let manifest: serde_json::Value = serde_json::from_str(view.manifest.get())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let receipt = DeliveryReceipt {
            kind: DELIVERY_RECEIPT_TYPE.to_owned(),
            document_id: *id,
            recipient: self.me().to_string(),
            manifest_sha256: view.manifest_sha256.clone(),
            payload_sha256: manifest["payload"]["sha256"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            status: "01".to_owned(),
            time: crate::api::now_rfc3339(),
            note: String::new(),
        };
        let request = signed_receipt(&self.signer.org_key, receipt)?;
        let (_, _answer): (u16, serde_json::Value) = self
            .client
            .post_json(&format!("/v1/documents/{id}/receipts"), &request)
            .await?;
        Ok(0)
    }
}

/// The work of one run, shared by its workers.
enum Work {
    Submit(Box<Sender>),
    Fetch(Recipient, Vec<Uuid>),
    Ack(Recipient, Vec<Uuid>),
    Mixed(Box<Sender>, Recipient),
    Inbox(Recipient),
    Raw {
        client: reqwest::Client,
        method: reqwest::Method,
        url: String,
        body: Bytes,
    },
}

/// Runs a network benchmark.
pub async fn run(
    profile: &ClientProfile,
    server: Option<&str>,
    options: &LoadOptions,
) -> Result<Report, BenchError> {
    if options.concurrency == 0 {
        return Err(BenchError::Input("--concurrency must be at least 1".into()));
    }
    // Open loop: each worker (one connection, one request at a time) starts an operation
    // every `interval`, staggered.
    let interval = match options.rate {
        None => None,
        Some(rate) => Some(
            Duration::try_from_secs_f64(options.concurrency as f64 / rate)
                .ok()
                .filter(|_| rate.is_finite() && rate >= 0.001)
                .ok_or_else(|| {
                    BenchError::Input(format!("--rate {rate}: use at least 0.001 operations/s"))
                })?,
        ),
    };
    let base = server.unwrap_or(&profile.server).to_owned();
    // One work description per worker, each with its own client (connection).
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
            let mut body = vec![0u8; options.size as usize];
            ring::rand::SystemRandom::new()
                .fill(&mut body)
                .map_err(|_| BenchError::Input("no randomness".into()))?;
            let body = Bytes::from(body);
            for _ in 0..options.concurrency {
                let client = Client::new(profile, &base)?;
                works.push(Work::Raw {
                    client: client.http().clone(),
                    method: options.method.clone(),
                    url: url.clone(),
                    body: body.clone(),
                });
            }
        }
        Mode::Submit => {
            let first = Sender::new(Client::new(profile, &base)?, options).await?;
            for _ in 1..options.concurrency {
                works.push(Work::Submit(Box::new(
                    first.clone_with(Client::new(profile, &base)?),
                )));
            }
            works.push(Work::Submit(Box::new(first)));
        }
        Mode::Fetch | Mode::Ack => {
            let signer = Arc::new(OrgSigner::load(profile)?);
            let probe = Recipient::new(Client::new(profile, &base)?, signer.clone());
            let ids = probe.inbox(100_000).await?;
            if ids.is_empty() {
                return Err(BenchError::Input(format!(
                    "the inbox of {} has no accepted documents; submit some to it first (congvan bench submit --to {})",
                    probe.me(),
                    probe.me()
                )));
            }
            for w in 0..options.concurrency {
                let recipient = Recipient::new(Client::new(profile, &base)?, signer.clone());
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
                let client = Client::new(profile, &base)?;
                works.push(Work::Inbox(Recipient::new(client, signer.clone())));
            }
        }
        Mode::Mixed => {
            let recipient_profile = options
                .recipient_profile
                .clone()
                .ok_or_else(|| BenchError::Input("mixed mode needs --recipient-profile".into()))?;
            let signer = Arc::new(OrgSigner::load(&recipient_profile)?);
            let mut sender_options = options.clone();
            sender_options.to = vec![signer.org.clone()];
            let first = Sender::new(Client::new(profile, &base)?, &sender_options).await?;
            for _ in 0..options.concurrency {
                works.push(Work::Mixed(
                    Box::new(first.clone_with(Client::new(profile, &base)?)),
                    Recipient::new(Client::new(&recipient_profile, &base)?, signer.clone()),
                ));
            }
        }
    }

    let live = Arc::new(Live::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    // A run bounded by a count has no warm-up and no deadline.
    let (measure_from, end) = match options.count {
        Some(_) => (start, None),
        None => (
            start + options.warmup,
            Some(start + options.warmup + options.duration),
        ),
    };
    let progress = options.progress.then(|| {
        let live = live.clone();
        let stop = stop.clone();
        let warmup = if options.count.is_some() {
            Duration::ZERO
        } else {
            options.warmup
        };
        tokio::spawn(progress_printer(live, stop, start, warmup))
    });
    let workers = works.len();
    let mut handles = Vec::new();
    for (i, work) in works.into_iter().enumerate() {
        let plan = Plan {
            measure_from,
            end,
            count: options.count,
            schedule: interval
                .map(|every| (start + every.mul_f64(i as f64 / workers as f64), every)),
        };
        handles.push(tokio::spawn(worker(Arc::new(work), live.clone(), plan)));
    }
    let mut by_kind: BTreeMap<&'static str, Samples> = BTreeMap::new();
    for handle in handles {
        let samples = handle
            .await
            .map_err(|e| BenchError::Input(format!("worker: {e}")))?;
        for (kind, s) in samples {
            by_kind.entry(kind).or_default().merge(s);
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }
    let measured = match end {
        Some(end) => end.saturating_duration_since(measure_from),
        None => start.elapsed(),
    };
    Ok(Report::new(options, measured, by_kind))
}

/// When a worker works.
struct Plan {
    measure_from: Instant,
    /// No new operation starts after this.
    end: Option<Instant>,
    /// Operations per worker, if bounded by count.
    count: Option<u64>,
    /// First start and interval, when paced.
    schedule: Option<(Instant, Duration)>,
}

impl Sender {
    /// The same sender on another connection (its own worker).
    fn clone_with(&self, client: Client) -> Sender {
        Sender {
            client,
            signer: self.signer.clone(),
            recipients: self.recipients.clone(),
            server_keys: self.server_keys.clone(),
            classification: self.classification,
            size: self.size,
            block: self.block.clone(),
            sealed: self.sealed.clone(),
            person: self.person.clone(),
            inline: self.inline,
        }
    }
}

async fn worker(work: Arc<Work>, live: Arc<Live>, plan: Plan) -> Vec<(&'static str, Samples)> {
    let mut samples: BTreeMap<&'static str, Samples> = BTreeMap::new();
    let mut cursor = 0usize;
    let mut done = 0u64;
    loop {
        if plan.count.is_some_and(|c| done >= c) {
            break;
        }
        // The operation's start: now, or its slot in the schedule (which it may be
        // behind; the delay then counts as latency, as a user would see it).
        let started = match plan.schedule {
            Some((first, every)) => {
                let slot = first + every.mul_f64(done as f64);
                tokio::time::sleep_until(slot.into()).await;
                slot
            }
            None => Instant::now(),
        };
        if plan.end.is_some_and(|end| started >= end) {
            break;
        }
        done += 1;
        let measured = started >= plan.measure_from;
        let mut note = |kind: &'static str, started: Instant, outcome: OpResult| {
            match &outcome {
                Ok(bytes) => {
                    live.ok.fetch_add(1, Ordering::Relaxed);
                    live.bytes.fetch_add(*bytes, Ordering::Relaxed);
                }
                Err(_) => {
                    live.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            if measured {
                samples.entry(kind).or_default().record(started, &outcome);
            }
        };
        match work.as_ref() {
            Work::Submit(sender) => {
                let outcome = sender.submit_one().await.map(|(_, size)| size);
                note("submit", started, outcome);
            }
            Work::Fetch(recipient, ids) | Work::Ack(recipient, ids) => {
                let Some(id) = ids.get(cursor % ids.len().max(1)) else {
                    break;
                };
                cursor += 1;
                if matches!(work.as_ref(), Work::Fetch(..)) {
                    note("fetch", started, recipient.fetch_one(id).await);
                } else {
                    note("ack", started, recipient.ack_one(id).await);
                }
            }
            Work::Inbox(recipient) => {
                note("inbox", started, recipient.inbox_page().await);
            }
            Work::Mixed(sender, recipient) => match sender.submit_one().await {
                Ok((id, size)) => {
                    note("submit", started, Ok(size));
                    let t = Instant::now();
                    note("fetch", t, recipient.fetch_one(&id).await);
                    let t = Instant::now();
                    note("ack", t, recipient.ack_one(&id).await);
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
    }
    samples.into_iter().collect()
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

async fn progress_printer(
    live: Arc<Live>,
    stop: Arc<AtomicBool>,
    start: Instant,
    warmup: Duration,
) {
    use std::io::Write as _;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_ok = 0u64;
    let mut last_bytes = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let ok = live.ok.load(Ordering::Relaxed);
        let bytes = live.bytes.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let elapsed = start.elapsed();
        let phase = if elapsed < warmup { " (warm-up)" } else { "" };
        let line = format!(
            "[{:>5.1}s] {ok} ok, {errors} errors, {}/s, {:.1} MB/s{phase}",
            elapsed.as_secs_f64(),
            ok - last_ok,
            (bytes - last_bytes) as f64 / 1e6,
        );
        last_ok = ok;
        last_bytes = bytes;
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
    }
    if tty {
        let _ = writeln!(std::io::stderr());
    }
}

/// The signature ceiling: documents per second the machine's cores could verify if they
/// did nothing but check the two signatures of each document, with ring, one thread per
/// core, for `duration`.
pub fn signature_ceiling(
    profile: &ClientProfile,
    duration: Duration,
) -> Result<CeilingReport, BenchError> {
    let signer = OrgSigner::load(profile)?;
    let org = &signer.org_key;
    let person = signer.person_key.as_ref().unwrap_or(org);
    // A manifest-sized message, signed by both keys.
    let message = vec![b'm'; 1200];
    let pairs = [org, person]
        .iter()
        .map(|k| -> Result<_, BenchError> {
            let signature = k.sign(&message).map_err(ClientError::from)?;
            let leaf = k.chain.first().cloned().unwrap_or_default();
            Ok((k.algorithm(), leaf, signature))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pairs = Arc::new(pairs);
    let message = Arc::new(message);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let pairs = pairs.clone();
            let message = message.clone();
            std::thread::spawn(move || {
                let mut docs = 0u64;
                let mut failures = 0u64;
                while start.elapsed() < duration {
                    for _ in 0..16 {
                        for (alg, leaf, signature) in pairs.iter() {
                            if !verify_with_certificate(leaf, *alg, &message, signature) {
                                failures += 1;
                            }
                        }
                        docs += 1;
                    }
                }
                (docs, failures)
            })
        })
        .collect();
    let mut docs = 0u64;
    let mut failures = 0u64;
    for h in handles {
        let (d, f) = h
            .join()
            .map_err(|_| BenchError::Input("a verification thread panicked".into()))?;
        docs += d;
        failures += f;
    }
    if failures > 0 {
        return Err(BenchError::Input(format!(
            "{failures} signatures failed to verify in the ceiling measurement"
        )));
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(CeilingReport {
        threads,
        algorithm: org.algorithm().name().to_owned(),
        docs_per_s: docs as f64 / seconds,
        seconds,
    })
}

/// The outcome of [`signature_ceiling`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct CeilingReport {
    /// Verification threads (one per core).
    pub threads: usize,
    /// The signature algorithm of the profile's keys.
    pub algorithm: String,
    /// Documents (two signatures each) verified per second on all threads.
    pub docs_per_s: f64,
    /// How long it ran.
    pub seconds: f64,
}

/// The outcome of [`seal_file`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct SealReport {
    /// Plaintext bytes.
    pub bytes: u64,
    /// Ciphertext bytes.
    pub sealed_bytes: u64,
    /// Seconds to sign and encrypt into the output file.
    pub seal_s: f64,
    /// Seconds to decrypt and verify back.
    pub open_s: f64,
    /// Plaintext MB/s sealing.
    pub seal_mb_s: f64,
    /// Plaintext MB/s opening.
    pub open_mb_s: f64,
}

/// Seals `input` with the profile's OpenPGP key (as sender and recipient) into `output`,
/// then opens it again, checking the plaintext's SHA-256; times both.
pub fn seal_file(
    profile: &ClientProfile,
    input: &std::path::Path,
    output: &std::path::Path,
) -> Result<SealReport, BenchError> {
    use std::io::{BufReader, BufWriter, Write};
    let io = |p: &std::path::Path| {
        let p = p.display().to_string();
        move |e: std::io::Error| BenchError::Input(format!("{p}: {e}"))
    };
    let key_path = profile
        .openpgp_key
        .clone()
        .ok_or_else(|| BenchError::Input("the profile has no openpgp_key".into()))?;
    let cert_path = key_path.with_file_name("openpgp.cert");
    let secret = std::fs::read(&key_path).map_err(io(&key_path))?;
    let cert = std::fs::read(&cert_path).map_err(io(&cert_path))?;
    let cipher = OpenPgp::default();

    let started = Instant::now();
    let mut reader =
        BufReader::with_capacity(1 << 20, std::fs::File::open(input).map_err(io(input))?);
    let mut writer =
        BufWriter::with_capacity(1 << 20, std::fs::File::create(output).map_err(io(output))?);
    cipher
        .seal(
            &mut reader,
            &mut writer,
            std::slice::from_ref(&cert),
            &secret,
        )
        .map_err(|e| BenchError::Input(format!("sealing: {e}")))?;
    writer.flush().map_err(io(output))?;
    drop(writer);
    let seal_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut sealed =
        BufReader::with_capacity(1 << 20, std::fs::File::open(output).map_err(io(output))?);
    let mut sink = HashSink(digest::Context::new(&digest::SHA256));
    let bytes = cipher
        .open(&mut sealed, &mut sink, &secret, &cert, u64::MAX)
        .map_err(|e| BenchError::Input(format!("opening: {e}")))?;
    let open_s = started.elapsed().as_secs_f64();

    let mut check = digest::Context::new(&digest::SHA256);
    let mut file = std::fs::File::open(input).map_err(io(input))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).map_err(io(input))?;
        if n == 0 {
            break;
        }
        check.update(&buf[..n]);
    }
    if check.finish().as_ref() != sink.0.finish().as_ref() {
        return Err(BenchError::Input(
            "the opened plaintext differs from the input".into(),
        ));
    }
    let sealed_bytes = std::fs::metadata(output).map_err(io(output))?.len();
    Ok(SealReport {
        bytes,
        sealed_bytes,
        seal_s,
        open_s,
        seal_mb_s: bytes as f64 / 1e6 / seal_s,
        open_mb_s: bytes as f64 / 1e6 / open_s,
    })
}

struct HashSink(digest::Context);

impl std::io::Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in [
            "",
            "s",
            "10h",
            "-1s",
            "1e400s",
            "99999999999999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("100KiB").unwrap(), 102_400);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("10kB").unwrap(), 10_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "KiB", "1TiB", "99999999999999999999GiB", "-5"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

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
