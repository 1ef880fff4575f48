//! The store's side of online backup and restore: what a backup of a running server
//! contains (a stream of [`Item`]s read at one consistent cut) and how a restore writes
//! it into a new store.
//!
//! What changed since the previous backup is found through the log, not by comparing
//! the whole store: entries `[from, to)` are new; a document is new or changed exactly
//! when its `submitted` event is among them (accepted records never change again); a
//! delivery record changed exactly when a `delivered` or `receipt` event names it; index
//! entries and small payloads belong to the documents submitted; checkpoints are keyed by
//! size. A full backup (`from` = 0) also carries the documents still awaiting their
//! payload; an incremental one does not (their senders send the payload again).

use std::collections::{BTreeSet, HashSet};
use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sled::{IVec, Transactional};
use uuid::Uuid;

use super::snapshot::{Gate, Kept};
use super::{Store, StoreError, db_err, delivery_key, finish};
use crate::ledger::{self, ENTRIES_PAGE_MAX, Event};

/// Bytes of a blob carried by one [`Item::Chunk`].
pub const CHUNK_BYTES: usize = 1 << 20;

/// What a backup asks for: everything after what the backup directory already holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    /// Log entries the backup directory holds (0: a full backup).
    pub log_size: u64,
    /// The size of the latest checkpoint it holds (0: none).
    pub checkpoint_size: u64,
    /// That checkpoint's root (hex): the server refuses to continue a backup directory
    /// whose history its log does not extend.
    #[serde(default)]
    pub checkpoint_root: Option<String>,
}

/// A signed checkpoint as carried in a backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// The tree size.
    pub size: u64,
    /// The signed note.
    pub note: String,
}

/// One line of a backup stream (JSON). Binary values are base64.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    /// The cut: the log entries `[log_from, log_to)` follow.
    Begin {
        /// The first log entry carried.
        log_from: u64,
        /// The log's size at the cut.
        log_to: u64,
        /// The log's origin line (the checkpoint key's name).
        log_origin: String,
        /// The latest checkpoint of at most `log_to` entries.
        checkpoint: Option<CheckpointRef>,
    },
    /// A log leaf, in index order.
    Leaf {
        /// Its index.
        index: u64,
        /// The leaf bytes.
        leaf: String,
    },
    /// A record of a store tree.
    Put {
        /// `docs`, `deliveries`, `inbox`, `sent`, `payloads`, `checkpoints`, `registers`,
        /// `links` or `certs`.
        tree: String,
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// A file of the data directory (the server's signing keys).
    File {
        /// Its path under the data directory.
        name: String,
        /// Its contents.
        data: String,
    },
    /// A payload file: the reader answers whether it wants it ([`Want`]); if it does,
    /// its bytes follow in [`Item::Chunk`]s.
    Blob {
        /// Its SHA-256 (lower-case hex).
        sha256: String,
        /// Its size.
        size: u64,
    },
    /// A piece of the current blob.
    Chunk {
        /// The bytes.
        data: String,
    },
    /// The backup is complete.
    End {
        /// Leaves carried.
        leaves: u64,
        /// Records carried.
        records: u64,
        /// Blobs carried.
        blobs: u64,
        /// Their bytes.
        blob_bytes: u64,
        /// How long writers were held back while the cut was marked, in microseconds.
        #[serde(default)]
        cut_us: u64,
    },
    /// The server could not complete the backup.
    Error {
        /// Why.
        message: String,
    },
}

/// The reader's answer to an [`Item::Blob`]: a backup directory that already holds the
/// file (same digest) does not need it again, so payload files travel once, by digest,
/// and a backup taken again after an interruption does not send them again.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Want {
    /// True to receive the file.
    pub want: bool,
}

/// The trees a backup carries records of, by name.
pub const TREES: [&str; 9] = [
    "docs",
    "deliveries",
    "inbox",
    "sent",
    "payloads",
    "checkpoints",
    "registers",
    "links",
    "certs",
];

/// Ends the backup's snapshot however the backup ends.
struct EndOnDrop<'a>(&'a Gate);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn put(tree: &str, key: &[u8], value: &[u8]) -> Item {
    Item::Put {
        tree: tree.to_owned(),
        key: b64(key),
        value: b64(value),
    }
}

impl Store {
    /// Streams a backup of everything after `since` to `emit`, read at one consistent
    /// cut of the running store (blocking; call off the async threads). Writers are held
    /// back only while the cut is marked. `emit` failing (the reader went away) stops the
    /// backup. Returns the final [`Item::End`] counts as emitted.
    pub fn backup(
        &self,
        since: &Since,
        log_origin: &str,
        emit: &mut dyn FnMut(Item) -> Result<(), StoreError>,
        want: &mut dyn FnMut() -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let log = self.log();
        let cut_started = std::time::Instant::now();
        let (pre, size) = self
            .gate
            .begin(|| log.size())
            .ok_or_else(|| StoreError::State("a backup is already running".into()))?;
        let cut_us = cut_started.elapsed().as_micros() as u64;
        let _end = EndOnDrop(&self.gate);
        let to = size?;
        if since.log_size > to {
            return Err(StoreError::State(format!(
                "the backup directory already holds {} log entries but this server's log has \
                 {to}: it is another server's backup, or this server's log was rolled back; \
                 back up into a new directory",
                since.log_size
            )));
        }
        if since.checkpoint_size > since.log_size {
            return Err(StoreError::State(format!(
                "a checkpoint of {} entries cannot come from a backup of {} log entries",
                since.checkpoint_size, since.log_size
            )));
        }
        if let Some(root) = &since.checkpoint_root {
            let ours = log.root(since.checkpoint_size)?;
            if crate::pki::identity::hex(&ours.0) != *root {
                return Err(StoreError::State(format!(
                    "the backup directory holds another history: this server's first {} log \
                     entries are not the ones its latest checkpoint signed; back up into a new \
                     directory",
                    since.checkpoint_size
                )));
            }
        }
        let from = since.log_size;
        let checkpoint = match self
            .checkpoints
            .range(..=to.to_be_bytes())
            .next_back()
            .transpose()
            .map_err(db_err(&self.dir))?
        {
            None => None,
            Some((k, v)) => Some(CheckpointRef {
                size: checkpoint_size(&k)?,
                note: String::from_utf8_lossy(&v).into_owned(),
            }),
        };
        emit(Item::Begin {
            log_from: from,
            log_to: to,
            log_origin: log_origin.to_owned(),
            checkpoint,
        })?;

        // The log: leaves below the cut never change.
        let mut submitted: Vec<(Uuid, String, u64)> = Vec::new();
        let mut delivery_keys: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut start = from;
        while start < to {
            let end = to.min(start.saturating_add(ENTRIES_PAGE_MAX));
            let page = log.leaves(start, end)?;
            if page.len() as u64 != end - start {
                return Err(StoreError::Corrupt {
                    key: format!("log entries {start}..{end}"),
                    reason: "missing".into(),
                });
            }
            for (i, (index, leaf)) in page.into_iter().enumerate() {
                if index != start + i as u64 {
                    return Err(StoreError::Corrupt {
                        key: format!("log entry {}", start + i as u64),
                        reason: "missing".into(),
                    });
                }
                match Event::from_leaf(&leaf)? {
                    Event::Submitted {
                        document_id,
                        payload_sha256,
                        payload_size,
                        ..
                    } => submitted.push((document_id, payload_sha256, payload_size)),
                    Event::Delivered {
                        document_id, actor, ..
                    }
                    | Event::Receipt {
                        document_id, actor, ..
                    } => {
                        delivery_keys.insert(delivery_key(&document_id, &actor));
                    }
                    _ => {}
                }
                emit(Item::Leaf {
                    index,
                    leaf: b64(&leaf),
                })?;
            }
            start = end;
        }
        let mut records = 0u64;
        // The certificate chains the documents carried refer to, each once.
        let chains: std::cell::RefCell<BTreeSet<[u8; 32]>> = Default::default();
        let mut emit_put = |tree: &str, key: &[u8], value: &[u8]| {
            records += 1;
            if tree == "docs" {
                let refs =
                    super::records::chain_refs(value).map_err(|reason| StoreError::Corrupt {
                        key: Uuid::from_slice(key)
                            .map(|id| id.to_string())
                            .unwrap_or_default(),
                        reason,
                    })?;
                chains.borrow_mut().extend(refs);
            }
            emit(put(tree, key, value))
        };

        // Documents and deliveries, as they were at the cut.
        if from == 0 {
            for item in self.docs.iter() {
                let (k, v) = item.map_err(db_err(&self.dir))?;
                if let Some(v) = pre.at_cut(Kept::Docs, &k, Some(v)) {
                    emit_put("docs", &k, &v)?;
                }
            }
            for item in self.deliveries.iter() {
                let (k, v) = item.map_err(db_err(&self.dir))?;
                if let Some(v) = pre.at_cut(Kept::Deliveries, &k, Some(v)) {
                    emit_put("deliveries", &k, &v)?;
                }
            }
        } else {
            for (id, _, _) in &submitted {
                let live = self.docs.get(id.as_bytes()).map_err(db_err(&self.dir))?;
                match pre.at_cut(Kept::Docs, id.as_bytes(), live) {
                    Some(v) => emit_put("docs", id.as_bytes(), &v)?,
                    None => {
                        return Err(StoreError::Corrupt {
                            key: id.to_string(),
                            reason: "a document in the log has no record".into(),
                        });
                    }
                }
            }
            for key in &delivery_keys {
                let live = self.deliveries.get(key).map_err(db_err(&self.dir))?;
                if let Some(v) = pre.at_cut(Kept::Deliveries, key, live) {
                    emit_put("deliveries", key, &v)?;
                }
            }
        }

        // The chains of the documents carried, read live: a chain is written once, by the
        // transaction of the first record that refers to it, and never changed or removed,
        // and its key is the digest of its bytes. So every chain a record at the cut
        // refers to is in the tree now, with exactly the bytes it had then, and needs no
        // pre-image; the cut stays exact.
        let carried = chains.take();
        for digest in carried {
            match self.certs.get(digest).map_err(db_err(&self.dir))? {
                Some(v) => emit_put("certs", &digest, &v)?,
                None => {
                    return Err(StoreError::Corrupt {
                        key: crate::pki::identity::hex(&digest),
                        reason: "a document refers to a certificate chain that is missing".into(),
                    });
                }
            }
        }

        // Index entries of the documents submitted in the range (entries made after the
        // cut belong to documents submitted after it and are left out).
        let ids: HashSet<Uuid> = submitted.iter().map(|(id, _, _)| *id).collect();
        for (name, tree) in [("inbox", &self.inbox), ("sent", &self.sent)] {
            for item in tree.iter() {
                let (k, v) = item.map_err(db_err(&self.dir))?;
                if Uuid::from_slice(&v).is_ok_and(|id| ids.contains(&id)) {
                    emit_put(name, &k, &v)?;
                }
            }
        }

        // Registers, whole and as they were at the cut: they are small (a line per
        // registered document), and paper registrations have no log entry to follow.
        for item in self.registers.iter() {
            let (k, v) = item.map_err(db_err(&self.dir))?;
            if let Some(v) = pre.at_cut(Kept::Registers, &k, Some(v)) {
                emit_put("registers", &k, &v)?;
            }
        }

        // Links of the documents submitted in the range to the earlier documents they
        // recall, update or replace (key: target id, then the acting document's id);
        // written once, in the transaction that accepted the acting document.
        for item in self.links.iter() {
            let (k, v) = item.map_err(db_err(&self.dir))?;
            if k.get(16..32)
                .and_then(|b| Uuid::from_slice(b).ok())
                .is_some_and(|id| ids.contains(&id))
            {
                emit_put("links", &k, &v)?;
            }
        }

        // Checkpoints signed up to the cut and not in the directory yet.
        for item in self
            .checkpoints
            .range(since.checkpoint_size.to_be_bytes()..=to.to_be_bytes())
        {
            let (k, v) = item.map_err(db_err(&self.dir))?;
            emit_put("checkpoints", &k, &v)?;
        }

        // Payloads: small ones are records, larger ones files streamed in chunks.
        let mut payloads_seen: HashSet<&str> = HashSet::new();
        let mut large: Vec<(&str, u64)> = Vec::new();
        for (_, sha256, size) in &submitted {
            if !payloads_seen.insert(sha256.as_str()) {
                continue;
            }
            match self
                .payloads
                .get(sha256.as_bytes())
                .map_err(db_err(&self.dir))?
            {
                Some(v) => emit_put("payloads", sha256.as_bytes(), &v)?,
                None => large.push((sha256.as_str(), *size)),
            }
        }
        let mut blob_bytes = 0u64;
        for (sha256, size) in &large {
            let path = self.blobs.path(sha256);
            let io = |source| StoreError::Io {
                path: path.display().to_string(),
                source,
            };
            let mut file = std::fs::File::open(&path).map_err(io)?;
            emit(Item::Blob {
                sha256: (*sha256).to_owned(),
                size: *size,
            })?;
            if !want()? {
                continue;
            }
            let mut buf = vec![0u8; CHUNK_BYTES];
            let mut sent = 0u64;
            loop {
                let n = file.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                sent += n as u64;
                emit(Item::Chunk {
                    data: b64(buf.get(..n).unwrap_or_default()),
                })?;
            }
            if sent != *size {
                return Err(StoreError::Corrupt {
                    key: format!("blob {sha256}"),
                    reason: format!("{sent} bytes stored, {size} recorded"),
                });
            }
            blob_bytes += sent;
        }

        // The server's signing keys (needed to check its own checkpoints after a restore).
        let keys = self.dir.join("keys");
        if let Ok(entries) = std::fs::read_dir(&keys) {
            let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            names.sort();
            for name in names {
                let path = keys.join(&name);
                let data = std::fs::read(&path).map_err(|source| StoreError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                emit(Item::File {
                    name: format!("keys/{}", name.to_string_lossy()),
                    data: b64(&data),
                })?;
            }
        }

        if pre.overflowed() {
            return Err(StoreError::State(format!(
                "the server changed more than {} MiB of records during the backup; run it \
                 again at a quieter time",
                super::snapshot::PRE_IMAGE_BYTES_MAX >> 20
            )));
        }
        emit(Item::End {
            leaves: to - from,
            records,
            blobs: large.len() as u64,
            blob_bytes,
            cut_us,
        })
    }

    /// Restore only, into a new store: writes one record of a backup.
    pub fn restore_put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let tree = match tree {
            "docs" => &self.docs,
            "deliveries" => &self.deliveries,
            "inbox" => &self.inbox,
            "sent" => &self.sent,
            "payloads" => &self.payloads,
            "checkpoints" => &self.checkpoints,
            "registers" => &self.registers,
            "links" => &self.links,
            "certs" => &self.certs,
            other => {
                return Err(StoreError::Corrupt {
                    key: other.to_owned(),
                    reason: "not a tree a backup carries".into(),
                });
            }
        };
        tree.insert(key, value).map_err(db_err(&self.dir))?;
        Ok(())
    }

    /// Restore only, into a new store: appends leaves byte for byte, the first at index
    /// `first` (which must be the log's size), in one transaction.
    pub fn restore_leaves(&self, first: u64, leaves: &[Vec<u8>]) -> Result<(), StoreError> {
        let parsed = leaves
            .iter()
            .map(|leaf| Event::from_leaf(leaf).map_err(StoreError::from))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self.log.as_tuple().transaction(|t| {
            let log = &ledger::TxLog::of(t);
            let mut directory: Option<Vec<u8>> = None;
            for (i, (leaf, event)) in leaves.iter().zip(&parsed).enumerate() {
                let index = ledger::append_leaf::<StoreError>(log, leaf, event.document_id())?;
                if index != first + i as u64 {
                    return Err(sled::transaction::ConflictableTransactionError::Abort(
                        StoreError::Corrupt {
                            key: format!("log entry {}", first + i as u64),
                            reason: format!("restored at index {index}"),
                        },
                    ));
                }
                if let Event::DirectoryChanged {
                    directory_sha256, ..
                } = event
                {
                    directory = unhex(directory_sha256);
                }
                // A restored server must not log a reform plan a second time.
                if let Event::Reorganised { plan_id, .. } = event {
                    ledger::set_reform_logged(log, plan_id, index)?;
                }
            }
            if let Some(digest) = &directory {
                ledger::set_directory_digest(log, digest)?;
            }
            Ok(())
        });
        finish(result, &self.dir)
    }

    /// Restore only: starts new index sequence numbers above every restored one, then
    /// makes everything durable.
    pub async fn restore_finish(&self) -> Result<(), StoreError> {
        let mut max = 0u64;
        for tree in [&self.inbox, &self.sent] {
            for item in tree.iter() {
                let (k, _) = item.map_err(db_err(&self.dir))?;
                if let Some(seq) = k
                    .get(k.len().saturating_sub(8)..)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                {
                    max = max.max(seq);
                }
            }
        }
        self.db
            .insert(
                super::SEQ_BASE_KEY,
                &max.saturating_add(1).to_be_bytes()[..],
            )
            .map_err(db_err(&self.dir))?;
        self.commit().await
    }

    /// The checkpoints kept, by size (for checking a restored log against them).
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let mut out = Vec::new();
        for item in self.checkpoints.iter() {
            let (k, v) = item.map_err(db_err(&self.dir))?;
            out.push((
                checkpoint_size(&k)?,
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }
}

fn checkpoint_size(k: &IVec) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(k.as_ref())
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            key: "checkpoint".into(),
            reason: "key".into(),
        })
}

/// Decodes lower-case hex; `None` for anything else.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly by design")]

    use super::*;
    use crate::store::{DocState, DocumentRecord};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A stand-in for the server's submission receipt of log entry `i`.
    fn receipt(i: u64) -> Result<crate::notary::Signed, crate::notary::NotaryError> {
        Ok(crate::notary::Signed {
            statement: serde_json::json!({ "index": i }),
            signature: crate::notary::StatementSignature {
                key_id: "k".into(),
                alg: "ed25519".into(),
                value: String::new(),
            },
        })
    }

    fn record(payload: &[u8]) -> DocumentRecord {
        let sha = crate::pki::identity::hex(
            ring::digest::digest(&ring::digest::SHA256, payload).as_ref(),
        );
        DocumentRecord {
            id: Uuid::now_v7(),
            sender: "hn/cm".parse().unwrap(),
            recipients: vec!["hn/cm/chuc-son".parse().unwrap()],
            classification: crate::document::manifest::Classification::Thuong,
            urgency: crate::document::manifest::Urgency::Thuong,
            manifest: "{}".into(),
            manifest_sha256: sha.clone(),
            signatures: vec![],
            signers: vec![],
            payload_sha256: sha,
            payload_size: payload.len() as u64,
            submitted_at: "2026-12-01T00:00:00Z".into(),
            state: DocState::AwaitingPayload,
            accepted_at: None,
            receipt: None,
            log_index: None,
            sealed_with: None,
            outgoing: None,
            business: None,
            ocsp: Vec::new(),
        }
    }

    /// Writes made while a backup runs (an acceptance of a waiting document, a new
    /// document, a fetch) are not in it: it is the store exactly as it was at its cut.
    #[test]
    fn a_backup_is_the_store_as_it_was_at_its_cut() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = record(b"a");
        rt.block_on(store.insert_accepted(&a, None, Some(b"a"), "t", receipt))
            .unwrap()
            .unwrap();
        let b = record(b"b");
        rt.block_on(store.insert_document(&b)).unwrap();
        // B's payload arrives as a file, as an upload would leave it.
        let mut writer = store.blobs().writer().unwrap();
        writer.write(b"b").unwrap();
        writer
            .finish(&b.payload_sha256, 1)
            .unwrap()
            .commit()
            .unwrap();
        let c = record(b"c");

        let mut items = Vec::new();
        let mut emit = |item: Item| {
            if matches!(item, Item::Begin { .. }) {
                // After the cut, before anything is read.
                rt.block_on(store.accept_payload(&b.id, "t", receipt))
                    .unwrap();
                rt.block_on(store.insert_accepted(&c, None, Some(b"c"), "t", receipt))
                    .unwrap()
                    .unwrap();
                let stored = store.document(&a.id).unwrap().unwrap();
                rt.block_on(store.record_fetch(&stored, "hn/cm/chuc-son", "t"))
                    .unwrap();
            }
            items.push(item);
            Ok(())
        };
        store
            .backup(&Since::default(), "o", &mut emit, &mut || Ok(true))
            .unwrap();

        assert!(
            matches!(items[0], Item::Begin { log_to: 1, .. }),
            "{:?}",
            items[0]
        );
        let leaves = items
            .iter()
            .filter(|i| matches!(i, Item::Leaf { .. }))
            .count();
        assert_eq!(leaves, 1);
        let puts: Vec<(String, Vec<u8>, Vec<u8>)> = items
            .iter()
            .filter_map(|i| match i {
                Item::Put { tree, key, value } => Some((
                    tree.clone(),
                    B64.decode(key).unwrap(),
                    B64.decode(value).unwrap(),
                )),
                _ => None,
            })
            .collect();
        let docs: Vec<DocumentRecord> = puts
            .iter()
            .filter(|(t, _, _)| t == "docs")
            .map(|(_, _, v)| serde_json::from_slice(v).unwrap())
            .collect();
        assert_eq!(docs.len(), 2, "{docs:?}");
        let state = |id: Uuid| docs.iter().find(|d| d.id == id).map(|d| d.state);
        assert_eq!(state(a.id), Some(DocState::Accepted));
        assert_eq!(state(b.id), Some(DocState::AwaitingPayload));
        assert_eq!(state(c.id), None);
        assert!(!puts.iter().any(|(t, _, _)| t == "deliveries"));
        // A's inbox and sent entries and small payload, nothing of B's or C's.
        let count = |tree: &str| puts.iter().filter(|(t, _, _)| t == tree).count();
        assert_eq!(
            (count("inbox"), count("sent"), count("payloads")),
            (1, 1, 1)
        );
        assert!(matches!(items.last(), Some(Item::End { leaves: 1, .. })));
        // The gate is open again: a second backup sees everything.
        let mut later = Vec::new();
        store
            .backup(
                &Since::default(),
                "o",
                &mut |i| {
                    later.push(i);
                    Ok(())
                },
                &mut || Ok(true),
            )
            .unwrap();
        assert!(
            matches!(later[0], Item::Begin { log_to: 4, .. }),
            "{:?}",
            later[0]
        );
    }

    /// Restores a backup stream into a new store the way `backup::restore` does.
    fn restore(items: &[Item]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut leaves = Vec::new();
        for item in items {
            match item {
                Item::Leaf { leaf, .. } => leaves.push(B64.decode(leaf).unwrap()),
                Item::Put { tree, key, value } => store
                    .restore_put(tree, &B64.decode(key).unwrap(), &B64.decode(value).unwrap())
                    .unwrap(),
                _ => {}
            }
        }
        store.restore_leaves(0, &leaves).unwrap();
        (dir, store)
    }

    /// A backup carries each certificate chain its documents refer to once, and restores;
    /// a backup as the previous build took it (chains inline in the records, no `certs`
    /// items) restores too.
    #[test]
    fn chains_travel_once_in_a_backup_and_a_backup_of_the_old_shape_restores() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let signed = |payload: &[u8]| DocumentRecord {
            signatures: vec![crate::document::DocSignature::raw(
                crate::document::Role::Person,
                crate::pki::signing::RawAlgorithm::EcdsaP256Sha256,
                b"sig",
                &[b"leaf".to_vec(), b"ca".to_vec()],
            )],
            ..record(payload)
        };
        let mut ids = Vec::new();
        for payload in [b"a", b"b"] {
            let document = signed(payload);
            ids.push(document.id);
            rt.block_on(store.insert_accepted(&document, None, Some(payload), "t", receipt))
                .unwrap()
                .unwrap();
        }
        let mut items = Vec::new();
        store
            .backup(
                &Since::default(),
                "o",
                &mut |i| {
                    items.push(i);
                    Ok(())
                },
                &mut || Ok(true),
            )
            .unwrap();
        let certs = items
            .iter()
            .filter(|i| matches!(i, Item::Put { tree, .. } if tree == "certs"))
            .count();
        assert_eq!(certs, 1, "one chain shared by two documents travels once");
        let (_new_dir, restored) = restore(&items);
        for id in &ids {
            let original = store.document(id).unwrap().unwrap();
            assert_eq!(original.signatures[0].chain.len(), 2);
            assert_eq!(restored.document(id).unwrap().unwrap(), original);
        }

        // The previous build's backup: records with their chains inline, no chains apart.
        let old: Vec<Item> = items
            .iter()
            .filter(|i| !matches!(i, Item::Put { tree, .. } if tree == "certs"))
            .map(|i| match i {
                Item::Put { tree, key, .. } if tree == "docs" => {
                    let id = Uuid::from_slice(&B64.decode(key).unwrap()).unwrap();
                    let record = store.document(&id).unwrap().unwrap();
                    put("docs", id.as_bytes(), &serde_json::to_vec(&record).unwrap())
                }
                other => other.clone(),
            })
            .collect();
        let (_old_dir, restored) = restore(&old);
        for id in &ids {
            assert_eq!(
                restored.document(id).unwrap().unwrap(),
                store.document(id).unwrap().unwrap()
            );
        }
        // A record whose chain is not in the backup is refused when read, not read
        // without its chain.
        let broken: Vec<Item> = items
            .iter()
            .filter(|i| !matches!(i, Item::Put { tree, .. } if tree == "certs"))
            .cloned()
            .collect();
        let (_broken_dir, restored) = restore(&broken);
        assert!(matches!(
            restored.document(&ids[0]),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
