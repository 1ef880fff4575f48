//! Durable state: sled for metadata and indexes, content-addressed files for payloads.
//!
//! This module and `ledger/` are the only ones that know sled. The store is a cheap
//! clonable handle; opening it takes sled's exclusive lock on the data directory, so two
//! servers can never write the same data. Nothing is reported written until
//! `Committer::commit` has made it durable against power loss.
//!
//! Trees:
//! - `docs`: document id (16 bytes) → [`DocumentRecord`] (JSON);
//! - `inbox`: recipient id, 0x00, sequence (u64 BE) → document id;
//! - `sent`: sender id, 0x00, sequence (u64 BE) → document id;
//! - `deliveries`: document id (16 bytes), recipient id → [`DeliveryRecord`] (JSON);
//! - `log_leaves`, `log_hashes`, `log_docs`, `log_meta`: the Merkle log, one tree per kind
//!   of key (see `ledger::trees`), written in the same transactions as the state changes it
//!   records; a store with the single `log` tree of earlier builds is migrated on open;
//! - `checkpoints`: tree size (u64 BE) → signed checkpoint note;
//! - `registers`: incoming registers and outgoing numbers in use (see [`registers`]).
//! - `links`: target document id (16 bytes), acting document id (16 bytes) →
//!   [`LinkRecord`] (JSON): the recalls, updates and replacements of a document, written
//!   in the transaction that accepts the acting document.
//! - `certs`: SHA-256 of a certificate chain's canonical bytes → those bytes, written once
//!   by the transaction of the first record that refers to it (see `records`).

use std::path::{Path, PathBuf};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

pub mod backup;
pub mod blobs;
mod commit;
mod records;
pub mod registers;
mod snapshot;
#[cfg(test)]
mod tests;

pub use blobs::{BlobError, BlobStore, BlobWriter, VerifiedBlob};
use commit::Committer;
pub use records::{
    DeliveryRecord, DocState, DocumentRecord, Inserted, LinkRecord, OutgoingNumber, ReceiptRecord,
    ReceiptWrite, SignerRecord, chain_refs, submission_receipt,
};

use crate::directory::OrgId;
use crate::document::ReceiptStatus;
use crate::document::status::{StatusRefusal, Verdict};
pub use crate::ledger::BusinessRef;
use crate::ledger::{self, Event, LedgerError, Log};
use crate::notary::{NotaryError, Signed};
use crate::registers::{IncomingEntry, Medium};
use snapshot::{Gate, Kept};

/// sled log segment size. Values larger than a quarter of a segment go to separate blob
/// files; 8 MiB segments keep every record we write inline.
const SEGMENT_BYTES: usize = 8 << 20;
/// Payloads up to this size that arrive inline are kept in the database, in the same
/// atomic commit as their document, instead of in a file of their own: one group-committed
/// write instead of a file created, fsynced, renamed and its directory fsynced.
pub const SMALL_PAYLOAD_BYTES_MAX: u64 = 64 * 1024;
/// Longest page of an index listing.
pub const PAGE_ITEMS_MAX: usize = 500;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or written.
    #[error("database {path}: {source}")]
    Db {
        /// The database directory.
        path: String,
        /// The cause.
        source: sled::Error,
    },
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored record does not decode: the store is damaged.
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt {
        /// Which record.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The durable commit failed.
    #[error("durable commit failed: {0}")]
    Commit(String),
    /// The record is not in the state the operation needs.
    #[error("{0}")]
    State(String),
    /// The log refused an append.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The outgoing number and notation were already used in their period by another
    /// document of the same sender.
    #[error("number {code} was already used in this numbering period by document {earlier}")]
    NumberInUse {
        /// The number and notation.
        code: String,
        /// The document that used them first.
        earlier: Uuid,
    },
    /// The incoming register of that year is closed.
    #[error("the incoming register of {org} for {year} is closed")]
    RegisterClosed {
        /// The organisation.
        org: String,
        /// The year.
        year: i32,
    },
    /// A receipt's status breaks the status rules; nothing was written.
    #[error(transparent)]
    Status(#[from] crate::document::status::StatusRefusal),
    /// The server's receipt for an accepted document could not be signed.
    #[error("signing the submission receipt: {0}")]
    Receipt(#[source] NotaryError),
    /// A write would eat into the disk reserve.
    #[error("{needed} bytes are needed but only {available} are free on the data disk")]
    DiskFull {
        /// Bytes the write needs, reserve included.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
}

impl StoreError {
    /// True when the cause is a full disk (ENOSPC or EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        let raw = match self {
            StoreError::Io { source, .. } => source.raw_os_error(),
            StoreError::Db {
                source: sled::Error::Io(e),
                ..
            } => e.raw_os_error(),
            StoreError::Commit(msg) => {
                return msg.contains("No space left") || msg.contains("quota");
            }
            StoreError::DiskFull { .. } => return true,
            _ => None,
        };
        matches!(raw, Some(28) | Some(122))
    }
}

/// A handle to the server's durable state.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    docs: sled::Tree,
    inbox: sled::Tree,
    sent: sled::Tree,
    deliveries: sled::Tree,
    log: ledger::LogTrees,
    checkpoints: sled::Tree,
    /// Small payloads (at most [`SMALL_PAYLOAD_BYTES_MAX`]) by SHA-256, stored in the
    /// same commit as their document.
    payloads: sled::Tree,
    /// Incoming registers and outgoing numbers in use.
    registers: sled::Tree,
    /// Recalls, updates and replacements, by target.
    links: sled::Tree,
    /// Signers' certificate chains by digest, shared by the records that refer to them.
    certs: sled::Tree,
    blobs: BlobStore,
    committer: Committer,
    dir: PathBuf,
    /// Writers pass through it so that a running backup sees one consistent cut: every
    /// write to `docs` or `deliveries` enters it and records the key's previous value
    /// (see `snapshot`); a new write path that skips it would make backups inexact.
    gate: std::sync::Arc<Gate>,
    /// Added to sled's id generator for index sequence numbers: a restored store starts
    /// above every sequence number it restored, so new documents list as newest.
    seq_base: u64,
}

/// The key in sled's default tree of [`Store::seq_base`] (u64 BE).
const SEQ_BASE_KEY: &[u8] = b"seq_base";

fn db_err(path: &Path) -> impl FnOnce(sled::Error) -> StoreError + '_ {
    move |source| StoreError::Db {
        path: path.display().to_string(),
        source,
    }
}

/// How long [`open_db`] waits for a lock that the same process is still releasing.
const LOCK_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled's database at `path`. sled releases its file lock only when its last
/// background write of a closed database ends, so reopening a store right after closing
/// it in the same process can find the lock still held for a moment: that case is retried
/// for up to [`LOCK_RELEASE_WAIT`]. A lock held by another process (a second server on the
/// same data directory) still fails, after that wait.
pub(crate) fn open_db(path: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_RELEASE_WAIT;
    loop {
        match sled::Config::new()
            .path(path)
            .segment_size(SEGMENT_BYTES)
            .open()
        {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        let db_path = data_dir.join("db");
        let db = open_db(&db_path).map_err(db_err(&db_path))?;
        let tree = |name: &str| db.open_tree(name).map_err(db_err(&db_path));
        let docs = tree("docs")?;
        let inbox = tree("inbox")?;
        let sent = tree("sent")?;
        let deliveries = tree("deliveries")?;
        // Migrates a store of the first log layout before anything else reads the log.
        let (log, migration) = ledger::LogTrees::open(&db, || {
            commit::sync_now(&db, &db_path).map_err(|e| LedgerError::Storage(e.to_string()))
        })?;
        if migration != ledger::Migration::None {
            tracing::info!(
                ?migration,
                "the delivery log was moved to one tree per kind of key"
            );
        }
        let checkpoints = tree("checkpoints")?;
        let payloads = tree("payloads")?;
        let registers = tree("registers")?;
        let seq_base = match db.get(SEQ_BASE_KEY).map_err(db_err(&db_path))? {
            None => 0,
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    key: "seq_base".into(),
                    reason: "not 8 bytes".into(),
                })?,
        };
        let links = tree("links")?;
        let certs = tree("certs")?;
        let blobs = BlobStore::open(data_dir)?;
        let committer =
            Committer::start(db.clone(), db_path.clone()).map_err(|source| StoreError::Io {
                path: db_path.display().to_string(),
                source,
            })?;
        Ok(Store {
            db,
            docs,
            inbox,
            sent,
            deliveries,
            log,
            checkpoints,
            payloads,
            registers,
            links,
            certs,
            blobs,
            committer,
            dir: data_dir.to_owned(),
            gate: std::sync::Arc::default(),
            seq_base,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The next sequence number for the inbox and sent indexes.
    fn next_seq(&self) -> Result<u64, StoreError> {
        let id = self.db.generate_id().map_err(db_err(&self.dir))?;
        Ok(self.seq_base.saturating_add(id))
    }

    /// Refuses (with [`StoreError::DiskFull`]) when fewer than `needed` bytes are free on
    /// the data disk.
    pub fn ensure_space(&self, needed: u64) -> Result<(), StoreError> {
        let available = fs2::available_space(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.display().to_string(),
            source,
        })?;
        if available < needed {
            return Err(StoreError::DiskFull { needed, available });
        }
        Ok(())
    }

    /// The payload blobs.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Waits until every write made so far is durable (group commit).
    pub async fn commit(&self) -> Result<(), StoreError> {
        self.committer.commit().await.map_err(StoreError::Commit)
    }

    /// The document with this id.
    pub fn document(&self, id: &Uuid) -> Result<Option<DocumentRecord>, StoreError> {
        match self.docs.get(id.as_bytes()).map_err(db_err(&self.dir))? {
            None => Ok(None),
            Some(bytes) => self.decode(id, &bytes).map(Some),
        }
    }

    /// Decodes a stored record, reading its chains from the `certs` tree.
    fn decode(&self, id: &Uuid, bytes: &[u8]) -> Result<DocumentRecord, StoreError> {
        records::decode_stored(bytes, corrupt(id), |digest| {
            self.certs.get(digest).map_err(db_err(&self.dir))
        })
    }

    /// Inserts a new document record unless one with its id exists; durable on return.
    pub async fn insert_document(&self, record: &DocumentRecord) -> Result<Inserted, StoreError> {
        let id = record.id;
        let result = {
            // Held until the write is applied (see `snapshot`), not across the commit.
            let gate = self.gate.enter();
            (&self.docs, &self.certs).transaction(|(docs, certs)| {
                if let Some(bytes) = docs.get(id.as_bytes())? {
                    return Ok(Some(bytes));
                }
                gate.keep(Kept::Docs, id.as_bytes(), None);
                put_record(docs, certs, record)?;
                Ok(None)
            })
        };
        // The existing record may not be durable yet (a concurrent insert): commit before
        // reporting it.
        let existing = finish(result, &self.dir)?;
        self.commit().await?;
        match existing {
            None => Ok(Inserted::Created),
            Some(bytes) => Ok(Inserted::Exists(Box::new(self.decode(&id, &bytes)?))),
        }
    }

    /// Marks a document's payload as stored, files the document in its recipients'
    /// inboxes and its sender's sent list, and appends the `submitted` event, in one
    /// atomic, durable commit. `receipt` makes the server's receipt from the event's log
    /// index. Returns the record and the index.
    pub async fn accept_payload(
        &self,
        id: &Uuid,
        accepted_at: &str,
        receipt: impl Fn(u64) -> Result<Signed, NotaryError>,
    ) -> Result<(DocumentRecord, u64), StoreError> {
        let seq = self.next_seq()?;
        let result = {
            // Held until the write is applied (see `snapshot`), not across the commit.
            let gate = self.gate.enter();
            let l = &self.log;
            (
                &self.docs,
                &self.inbox,
                &self.sent,
                &self.registers,
                &self.links,
                &self.certs,
                &l.leaves,
                &l.hashes,
                &l.docs,
                &l.meta,
            )
                .transaction(
                    |(docs, inbox, sent, registers, links, certs, lv, lh, ld, lm)| {
                        let log = &ledger::TxLog::new((lv, lh, ld, lm));
                        let abort = ConflictableTransactionError::Abort;
                        let bytes = docs
                            .get(id.as_bytes())?
                            .ok_or(abort(StoreError::State("no such document".into())))?;
                        gate.keep(Kept::Docs, id.as_bytes(), Some(&bytes));
                        let mut record = decode_in(certs, id, &bytes)?;
                        if record.state != DocState::AwaitingPayload {
                            return Err(abort(StoreError::State(
                                "the payload was already accepted".into(),
                            )));
                        }
                        let manifest: serde_json::Value =
                            serde_json::from_str(&record.manifest).unwrap_or_default();
                        let deadline = manifest["deadline"].as_str().map(str::to_owned);
                        let index = file_accepted(
                            (docs, inbox, sent, registers, links, certs, log),
                            &gate,
                            &mut record,
                            deadline,
                            seq,
                            accepted_at,
                            &receipt,
                        )?;
                        Ok((record, index))
                    },
                )
        };
        let out = finish(result, &self.dir)?;
        self.commit().await?;
        Ok(out)
    }

    /// Stores a new document whose payload came with it (a one-request submission): the
    /// record, its inbox and sent entries, the `submitted` event (with the manifest's
    /// `deadline`, which the caller has parsed) and, for a small payload
    /// passed as `small_payload`, the payload itself, in one atomic, durable commit (a
    /// larger payload must already be a committed blob). If a document with its id exists,
    /// nothing is written and that one is returned.
    pub async fn insert_accepted(
        &self,
        record: &DocumentRecord,
        deadline: Option<&str>,
        small_payload: Option<&[u8]>,
        accepted_at: &str,
        receipt: impl Fn(u64) -> Result<Signed, NotaryError>,
    ) -> Result<Result<(DocumentRecord, u64), Box<DocumentRecord>>, StoreError> {
        if small_payload.is_some_and(|p| p.len() as u64 > SMALL_PAYLOAD_BYTES_MAX) {
            return Err(StoreError::State(
                "payload too large for the database".into(),
            ));
        }
        let seq = self.next_seq()?;
        let id = record.id;
        let result = {
            // Held until the write is applied (see `snapshot`), not across the commit.
            let gate = self.gate.enter();
            let l = &self.log;
            (
                &self.docs,
                &self.inbox,
                &self.sent,
                &self.payloads,
                &self.registers,
                &self.links,
                &self.certs,
                &l.leaves,
                &l.hashes,
                &l.docs,
                &l.meta,
            )
                .transaction(|t| {
                    let (docs, inbox, sent, payloads, registers, links, certs, lv, lh, ld, lm) = t;
                    let log = &ledger::TxLog::new((lv, lh, ld, lm));
                    if let Some(bytes) = docs.get(id.as_bytes())? {
                        return Ok(Err(Box::new(decode_in(certs, &id, &bytes)?)));
                    }
                    gate.keep(Kept::Docs, id.as_bytes(), None);
                    if let Some(payload) = small_payload {
                        payloads.insert(record.payload_sha256.as_bytes(), payload)?;
                    }
                    let mut record = record.clone();
                    let index = file_accepted(
                        (docs, inbox, sent, registers, links, certs, log),
                        &gate,
                        &mut record,
                        deadline.map(str::to_owned),
                        seq,
                        accepted_at,
                        &receipt,
                    )?;
                    Ok(Ok((record, index)))
                })
        };
        let out = finish(result, &self.dir)?;
        // An existing record may not be durable yet (a concurrent insert): commit anyway.
        self.commit().await?;
        Ok(out)
    }

    /// A small payload kept in the database, if this one is.
    pub fn small_payload(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .payloads
            .get(sha256.as_bytes())
            .map_err(db_err(&self.dir))?
            .map(|bytes| bytes.to_vec()))
    }

    /// Documents in an index for `org`, newest first, after the cursor `before` (a
    /// sequence number from a previous page), at most `limit`.
    fn list(
        &self,
        tree: &sled::Tree,
        org: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, DocumentRecord)>, StoreError> {
        let limit = limit.clamp(1, PAGE_ITEMS_MAX);
        let start = index_key(org, 0);
        let end = index_key(org, before.unwrap_or(u64::MAX));
        let mut out = Vec::new();
        for item in tree.range(start..end).rev() {
            let (key, value) = item.map_err(db_err(&self.dir))?;
            let seq = key
                .get(key.len().saturating_sub(8)..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            let id = Uuid::from_slice(&value).map_err(|e| StoreError::Corrupt {
                key: format!("index of {org}"),
                reason: e.to_string(),
            })?;
            if let Some(record) = self.document(&id)? {
                out.push((seq, record));
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The inbox of `org`, newest first.
    pub fn inbox(
        &self,
        org: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, DocumentRecord)>, StoreError> {
        self.list(&self.inbox, org, before, limit)
    }

    /// What `org` has sent, newest first.
    pub fn sent(
        &self,
        org: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, DocumentRecord)>, StoreError> {
        self.list(&self.sent, org, before, limit)
    }
}

impl Store {
    /// What happened to document `id` at `recipient` (empty if nothing yet).
    pub fn delivery(&self, id: &Uuid, recipient: &str) -> Result<DeliveryRecord, StoreError> {
        match self
            .deliveries
            .get(delivery_key(id, recipient))
            .map_err(db_err(&self.dir))?
        {
            None => Ok(DeliveryRecord::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                key: format!("delivery {id} {recipient}"),
                reason: e.to_string(),
            }),
        }
    }

    /// Every recipient's delivery record of document `id`.
    pub fn deliveries(&self, id: &Uuid) -> Result<Vec<(String, DeliveryRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.deliveries.scan_prefix(id.as_bytes()) {
            let (key, value) = item.map_err(db_err(&self.dir))?;
            let recipient = String::from_utf8_lossy(&key[16..]).into_owned();
            let record = serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                key: format!("delivery {id} {recipient}"),
                reason: e.to_string(),
            })?;
            out.push((recipient, record));
        }
        Ok(out)
    }

    /// Applies `change` to the delivery record of `id` at `recipient` and appends the
    /// event `event` makes of the new record, atomically; durable on return.
    async fn update_delivery(
        &self,
        id: &Uuid,
        recipient: &str,
        change: impl Fn(&mut DeliveryRecord, u64),
        event: impl Fn() -> Event,
        incoming: Option<(&str, &IncomingEntry)>,
    ) -> Result<(DeliveryRecord, u64), StoreError> {
        let key = delivery_key(id, recipient);
        let corrupt = |e: serde_json::Error| {
            ConflictableTransactionError::Abort(StoreError::Corrupt {
                key: format!("delivery {id} {recipient}"),
                reason: e.to_string(),
            })
        };
        let result = {
            // Held until the write is applied (see `snapshot`), not across the commit.
            let gate = self.gate.enter();
            let l = &self.log;
            (
                &self.deliveries,
                &self.registers,
                &l.leaves,
                &l.hashes,
                &l.docs,
                &l.meta,
            )
                .transaction(|(deliveries, registers, lv, lh, ld, lm)| {
                    let log = &ledger::TxLog::new((lv, lh, ld, lm));
                    let old = deliveries.get(&key)?;
                    gate.keep(Kept::Deliveries, &key, old.as_ref());
                    let mut record: DeliveryRecord = match old {
                        None => DeliveryRecord::default(),
                        Some(bytes) => serde_json::from_slice(&bytes).map_err(corrupt)?,
                    };
                    // The incoming number is taken in the same transaction as the receipt that
                    // earns it: both are written, or neither, so the sequence has no gaps.
                    if let Some((register, entry)) = incoming {
                        record.incoming_number = Some(registers::assign_incoming(
                            registers,
                            &gate,
                            register,
                            entry.clone(),
                        )?);
                    }
                    let index = ledger::append(log, &event())?;
                    change(&mut record, index);
                    deliveries.insert(
                        key.as_slice(),
                        serde_json::to_vec(&record).map_err(corrupt)?,
                    )?;
                    Ok((record, index))
                })
        };
        let out = finish(result, &self.dir)?;
        self.commit().await?;
        Ok(out)
    }

    /// Records that `recipient` fetched the payload of `document` at `at`, with its
    /// `delivered` event; durable on return. Returns the record and the event's index.
    pub async fn record_fetch(
        &self,
        document: &DocumentRecord,
        recipient: &str,
        at: &str,
    ) -> Result<(DeliveryRecord, u64), StoreError> {
        self.record_fetch_as(document, recipient, recipient, at)
            .await
    }

    /// [`Store::record_fetch`] by `actor` on behalf of the addressee `recipient` (the
    /// successor of a merged unit fetching what was sent to that unit).
    pub async fn record_fetch_as(
        &self,
        document: &DocumentRecord,
        recipient: &str,
        actor: &str,
        at: &str,
    ) -> Result<(DeliveryRecord, u64), StoreError> {
        self.update_delivery(
            &document.id,
            recipient,
            |r, _| {
                if r.first_fetched_at.is_none() {
                    r.first_fetched_at = Some(at.to_owned());
                }
                r.last_fetched_at = Some(at.to_owned());
                r.fetch_count += 1;
            },
            || Event::Delivered {
                time: at.to_owned(),
                document_id: document.id,
                actor: actor.to_owned(),
                sender: document.sender.to_string(),
                recipients: strings(&document.recipients),
                payload_sha256: document.payload_sha256.clone(),
            },
            None,
        )
        .await
    }

    /// Records a recipient's signed receipt with its `receipt` event, if `judge` (the
    /// status rules, applied to the delivery record as it is inside the transaction)
    /// allows it; durable on return. A status the rules call a replay writes nothing and
    /// returns the entry already recorded for it; a refused one writes nothing either.
    /// An acceptance (03) also enters the document in the incoming register (once: a
    /// document keeps its first number), in the same transaction.
    pub async fn record_receipt(
        &self,
        document: &DocumentRecord,
        recipient: &str,
        receipt: ReceiptRecord,
        judge: impl Fn(&DeliveryRecord) -> Result<Verdict, StatusRefusal>,
    ) -> Result<ReceiptWrite, StoreError> {
        self.record_receipt_as(document, recipient, recipient, receipt, judge)
            .await
    }

    /// [`Store::record_receipt`] signed by `actor` on behalf of the addressee `recipient`
    /// (the successor of a merged unit); the incoming number is the actor's.
    pub async fn record_receipt_as(
        &self,
        document: &DocumentRecord,
        recipient: &str,
        actor: &str,
        receipt: ReceiptRecord,
        judge: impl Fn(&DeliveryRecord) -> Result<Verdict, StatusRefusal>,
    ) -> Result<ReceiptWrite, StoreError> {
        let id = document.id;
        let key = delivery_key(&id, recipient);
        let incoming = if receipt.status == ReceiptStatus::Accepted {
            Some(incoming_entry(document, &receipt.recorded_at)?)
        } else {
            None
        };
        let corrupt = |e: serde_json::Error| {
            ConflictableTransactionError::Abort(StoreError::Corrupt {
                key: format!("delivery {id} {recipient}"),
                reason: e.to_string(),
            })
        };
        let result = {
            // Held until the write is applied (see `snapshot`), not across the commit.
            let gate = self.gate.enter();
            let l = &self.log;
            (
                &self.deliveries,
                &self.registers,
                &l.leaves,
                &l.hashes,
                &l.docs,
                &l.meta,
            )
                .transaction(|(deliveries, registers, lv, lh, ld, lm)| {
                    let log = &ledger::TxLog::new((lv, lh, ld, lm));
                    let old = deliveries.get(&key)?;
                    let mut record: DeliveryRecord = match &old {
                        None => DeliveryRecord::default(),
                        Some(bytes) => serde_json::from_slice(bytes).map_err(corrupt)?,
                    };
                    match judge(&record) {
                        Err(refusal) => {
                            return Err(ConflictableTransactionError::Abort(StoreError::Status(
                                refusal,
                            )));
                        }
                        Ok(Verdict::Replay) => {
                            if let Some(earlier) =
                                record.receipts.iter().find(|r| r.status == receipt.status)
                            {
                                return Ok(ReceiptWrite::Replayed(Box::new(earlier.clone())));
                            }
                        }
                        Ok(Verdict::Record) => {}
                    }
                    // The incoming number is taken in the same transaction as the receipt
                    // that earns it: both are written, or neither, so the sequence has no
                    // gaps.
                    if let Some(entry) = &incoming {
                        record.incoming_number = Some(registers::assign_incoming(
                            registers,
                            &gate,
                            actor,
                            entry.clone(),
                        )?);
                    }
                    let index = ledger::append(
                        log,
                        &Event::Receipt {
                            time: receipt.recorded_at.clone(),
                            document_id: id,
                            actor: actor.to_owned(),
                            sender: document.sender.to_string(),
                            recipients: strings(&document.recipients),
                            status: receipt.status.code().to_owned(),
                            receipt: serde_json::to_value(&receipt.receipt).map_err(corrupt)?,
                        },
                    )?;
                    let mut entry = receipt.clone();
                    entry.log_index = Some(index);
                    record.receipts.push(entry);
                    gate.keep(Kept::Deliveries, &key, old.as_ref());
                    deliveries.insert(
                        key.as_slice(),
                        serde_json::to_vec(&record).map_err(corrupt)?,
                    )?;
                    Ok(ReceiptWrite::Recorded(record, index))
                })
        };
        let out = finish(result, &self.dir)?;
        // A replayed entry may not be durable yet (a concurrent request): commit anyway.
        self.commit().await?;
        Ok(out)
    }

    /// The later documents that recall, update or replace document `target`, oldest
    /// first.
    pub fn links_to(&self, target: &Uuid) -> Result<Vec<LinkRecord>, StoreError> {
        let mut out: Vec<LinkRecord> = Vec::new();
        for item in self.links.scan_prefix(target.as_bytes()) {
            let (_, value) = item.map_err(db_err(&self.dir))?;
            out.push(
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    key: format!("link to {target}"),
                    reason: e.to_string(),
                })?,
            );
        }
        out.sort_by(|a, b| a.accepted_at.cmp(&b.accepted_at));
        Ok(out)
    }

    /// Appends an event on its own (a refusal); durable on return.
    pub async fn log_event(&self, event: &Event) -> Result<u64, StoreError> {
        let result = self
            .log
            .as_tuple()
            .transaction(|t| ledger::append(&ledger::TxLog::of(t), event));
        let index = finish(result, &self.dir)?;
        self.commit().await?;
        Ok(index)
    }

    /// Appends a `directory_changed` event if `digest` differs from the last one logged;
    /// durable on return. Returns the index when an event was appended.
    pub async fn log_directory(&self, digest: &[u8], at: &str) -> Result<Option<u64>, StoreError> {
        let result = self.log.as_tuple().transaction(|t| {
            let log = &ledger::TxLog::of(t);
            if ledger::last_directory_digest(log)?.as_deref() == Some(digest) {
                return Ok(None);
            }
            let index = ledger::append(
                log,
                &Event::DirectoryChanged {
                    time: at.to_owned(),
                    directory_sha256: crate::pki::identity::hex(digest),
                },
            )?;
            ledger::set_directory_digest(log, digest)?;
            Ok(Some(index))
        });
        let index = finish(result, &self.dir)?;
        if index.is_some() {
            self.commit().await?;
        }
        Ok(index)
    }

    /// Appends a `reorganised` event for each plan in force not logged before; durable on
    /// return. Returns the indexes appended.
    pub async fn log_reforms(
        &self,
        plans: &[crate::directory::reform::PlanState],
        at: &str,
    ) -> Result<Vec<u64>, StoreError> {
        // Every plan not logged yet is appended in one transaction, as one group.
        let result = self.log.as_tuple().transaction(|t| {
            let log = &ledger::TxLog::of(t);
            let mut fresh = Vec::new();
            for state in plans {
                let plan = &state.plan;
                if !ledger::reform_logged(log, &plan.id)?
                    && !fresh.iter().any(|(id, _): &(&str, Event)| *id == plan.id)
                {
                    fresh.push((
                        plan.id.as_str(),
                        Event::Reorganised {
                            time: at.to_owned(),
                            plan_id: plan.id.clone(),
                            plan_sha256: plan.sha256.clone(),
                            effective_at: plan.effective_at_rfc3339(),
                            effects: state.effects.clone(),
                            successors: state.successors.clone(),
                        },
                    ));
                }
            }
            let events: Vec<Event> = fresh.iter().map(|(_, e)| e.clone()).collect();
            let first = ledger::append_batch(log, &events)?;
            let mut appended = Vec::with_capacity(fresh.len());
            for (offset, (plan_id, _)) in fresh.iter().enumerate() {
                let index = first + offset as u64;
                ledger::set_reform_logged(log, plan_id, index)?;
                appended.push(index);
            }
            Ok(appended)
        });
        let appended = finish(result, &self.dir)?;
        if !appended.is_empty() {
            self.commit().await?;
        }
        Ok(appended)
    }

    /// Read access to the log.
    pub fn log(&self) -> Log {
        Log::new(self.log.clone())
    }

    /// The latest checkpoint issued: its size and signed note.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, StoreError> {
        match self.checkpoints.last().map_err(db_err(&self.dir))? {
            None => Ok(None),
            Some((k, v)) => {
                let size = <[u8; 8]>::try_from(k.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        key: "checkpoint".into(),
                        reason: "key".into(),
                    })?;
                Ok(Some((size, String::from_utf8_lossy(&v).into_owned())))
            }
        }
    }

    /// Keeps a signed checkpoint; durable on return.
    pub async fn save_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.checkpoints
            .insert(size.to_be_bytes(), note.as_bytes())
            .map_err(db_err(&self.dir))?;
        self.commit().await
    }
}

/// Unwraps a transaction's result into the store's error type.
fn finish<T>(result: Result<T, TransactionError<StoreError>>, dir: &Path) -> Result<T, StoreError> {
    match result {
        Ok(v) => Ok(v),
        Err(TransactionError::Abort(e)) => Err(e),
        Err(TransactionError::Storage(e)) => Err(db_err(dir)(e)),
    }
}

/// Inside a transaction: appends the `submitted` event for `record`, marks it accepted
/// with its receipt, stores it and files it in the inboxes and the sent list.
fn file_accepted(
    (docs, inbox, sent, registers, links, certs, log): (
        &sled::transaction::TransactionalTree,
        &sled::transaction::TransactionalTree,
        &sled::transaction::TransactionalTree,
        &sled::transaction::TransactionalTree,
        &sled::transaction::TransactionalTree,
        &sled::transaction::TransactionalTree,
        &ledger::TxLog<'_>,
    ),
    gate: &snapshot::Entered<'_>,
    record: &mut DocumentRecord,
    deadline: Option<String>,
    seq: u64,
    accepted_at: &str,
    receipt: &impl Fn(u64) -> Result<Signed, NotaryError>,
) -> Result<u64, ConflictableTransactionError<StoreError>> {
    let abort = ConflictableTransactionError::Abort;
    // The outgoing number is checked here, in the transaction that accepts the document,
    // so that two submissions racing with one number cannot both be accepted.
    if let Some(outgoing) = &record.outgoing {
        let key = registers::outgoing_key(record.sender.as_str(), &outgoing.key);
        match registers::outgoing_holder(registers, &key)? {
            Some(earlier) if earlier != record.id && outgoing.amends != Some(earlier) => {
                return Err(abort(StoreError::NumberInUse {
                    code: outgoing.code.clone(),
                    earlier,
                }));
            }
            Some(_) => {}
            None => {
                gate.keep(Kept::Registers, &key, None);
                registers.insert(key, record.id.as_bytes().as_slice())?;
            }
        }
    }
    let index = ledger::append(
        log,
        &Event::Submitted {
            time: accepted_at.to_owned(),
            document_id: record.id,
            actor: record.sender.to_string(),
            sender: record.sender.to_string(),
            recipients: strings(&record.recipients),
            classification: record.classification.name().to_owned(),
            urgency: record.urgency.into(),
            deadline,
            manifest_sha256: record.manifest_sha256.clone(),
            payload_sha256: record.payload_sha256.clone(),
            payload_size: record.payload_size,
            sealed_with: record.sealed_with.clone(),
            business: record.business.clone(),
        },
    )?;
    if let Some(business) = &record.business {
        let link = LinkRecord {
            kind: business.kind.clone(),
            document_id: record.id,
            recipients: record.recipients.clone(),
            accepted_at: accepted_at.to_owned(),
        };
        links.insert(
            link_key(&business.target, &record.id),
            serde_json::to_vec(&link).map_err(|e| {
                abort(StoreError::Corrupt {
                    key: format!("link {}", record.id),
                    reason: e.to_string(),
                })
            })?,
        )?;
    }
    record.state = DocState::Accepted;
    record.accepted_at = Some(accepted_at.to_owned());
    record.receipt = Some(receipt(index).map_err(|e| abort(StoreError::Receipt(e)))?);
    record.log_index = Some(index);
    put_record(docs, certs, record)?;
    for recipient in &record.recipients {
        inbox.insert(
            index_key(recipient.as_str(), seq),
            record.id.as_bytes().as_slice(),
        )?;
    }
    sent.insert(
        index_key(record.sender.as_str(), seq),
        record.id.as_bytes().as_slice(),
    )?;
    Ok(index)
}

/// The incoming register's line for an electronic document accepted at `at` (its number
/// is given in the transaction).
fn incoming_entry(document: &DocumentRecord, at: &str) -> Result<IncomingEntry, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: document.id.to_string(),
        reason,
    };
    let manifest: crate::document::Manifest =
        serde_json::from_str(&document.manifest).map_err(|e| corrupt(e.to_string()))?;
    let year = crate::registers::local_date(at)
        .map_err(|e| corrupt(e.to_string()))?
        .year();
    Ok(IncomingEntry {
        number: 0,
        year,
        received_at: at.to_owned(),
        medium: Medium::Electronic,
        document_id: Some(document.id),
        author: document.sender.to_string(),
        code: format!("{}-{}", manifest.code.number, manifest.code.notation),
        date: manifest.promulgated.date,
        doc_type: manifest.doc_type,
        subject: manifest.subject,
        assigned_to: String::new(),
        note: String::new(),
    })
}

/// Organisation ids as the log writes them.
fn strings(orgs: &[OrgId]) -> Vec<String> {
    orgs.iter().map(ToString::to_string).collect()
}

fn link_key(target: &Uuid, actor: &Uuid) -> Vec<u8> {
    let mut key = target.as_bytes().to_vec();
    key.extend_from_slice(actor.as_bytes());
    key
}

fn delivery_key(id: &Uuid, recipient: &str) -> Vec<u8> {
    let mut key = id.as_bytes().to_vec();
    key.extend_from_slice(recipient.as_bytes());
    key
}

fn index_key(org: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(org.len() + 9);
    key.extend_from_slice(org.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Inside a transaction: writes `record` in its stored shape, and each certificate chain
/// it refers to unless the `certs` tree has it already. Chains are content-addressed and
/// never changed or removed, so one written by an earlier transaction is the same bytes.
fn put_record(
    docs: &sled::transaction::TransactionalTree,
    certs: &sled::transaction::TransactionalTree,
    record: &DocumentRecord,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let (bytes, chains) = records::encode_stored(record)
        .map_err(|e| ConflictableTransactionError::Abort(corrupt(&record.id)(e.to_string())))?;
    for chain in chains {
        if certs.get(chain.digest)?.is_none() {
            certs.insert(&chain.digest[..], chain.bytes)?;
        }
    }
    docs.insert(record.id.as_bytes(), bytes)?;
    Ok(())
}

/// Inside a transaction: decodes a stored record, reading its chains from `certs`.
fn decode_in(
    certs: &sled::transaction::TransactionalTree,
    id: &Uuid,
    bytes: &[u8],
) -> Result<DocumentRecord, ConflictableTransactionError<StoreError>> {
    records::decode_stored(
        bytes,
        |reason| ConflictableTransactionError::Abort(corrupt(id)(reason)),
        |digest| Ok(certs.get(digest)?),
    )
}

/// The error of a record `id` that does not decode.
fn corrupt(id: &Uuid) -> impl Fn(String) -> StoreError + '_ {
    move |reason| StoreError::Corrupt {
        key: id.to_string(),
        reason,
    }
}

/// The record as the previous build stored it (chains inline): what the tests compare
/// old records with.
#[cfg(test)]
fn encode(record: &DocumentRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| corrupt(&record.id)(e.to_string()))
}

/// Decodes a record that refers to no chain in the `certs` tree (the previous build's
/// shape).
#[cfg(test)]
fn decode(id: &Uuid, bytes: &[u8]) -> Result<DocumentRecord, StoreError> {
    records::decode_stored(bytes, corrupt(id), |_| Ok(None))
}
