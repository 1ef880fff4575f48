//! The tamper-evident delivery log: an RFC 6962/9162 Merkle tree over canonical JSON
//! events, kept in sled, with C2SP signed-note checkpoints.
//!
//! Storage, in four sled trees written in the same transaction as the state change an
//! append records (see [`trees`] for why four, and for the migration from the single
//! `log` tree of earlier stores):
//! - `log_leaves`: index (u64 BE) → the leaf: the event's RFC 8785 bytes;
//! - `log_hashes`: stored-hash index (u64 BE) → a 32-byte node hash, in the layout of
//!   `tlog_tiles::tlog` (Go's sumdb `tlog`): each append writes the leaf hash and the
//!   hashes of the perfect subtrees it completes (two on average, at most 64), so an
//!   append is O(log n) and the tree is never rebuilt;
//! - `log_docs`: document id (16 bytes) + index → nothing: the events of one document;
//! - `log_meta`: `S` → the size (u64 BE); `G` → the digest of the last directory logged;
//!   `R\0` + plan id → the reform plans logged; `layout` → the layout version.
//!
//! [`append_batch`] appends several events in one transaction, reading and writing the
//! size once. Hashing, proofs and the checkpoint format are the `tlog_tiles` crate's; the
//! note signature format is `signed_note`'s. Start-up reads the size and nothing else.

use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};
use tlog_tiles::tlog::{self, Hash, HashReader};
use uuid::Uuid;

pub mod checkpoint;
pub mod memory;
pub mod trees;

pub use checkpoint::{CheckpointError, NoteSigner, VerifiedCheckpoint, verifier_key};
pub use trees::{LogTrees, Migration, TxLog};

const SIZE_KEY: &[u8] = b"S";
const DIRECTORY_KEY: &[u8] = b"G";
/// Prefix of the keys that remember which reform plans were logged.
const REFORM_KEY_PREFIX: &[u8] = b"R\0";
/// Most entries one read returns.
pub const ENTRIES_PAGE_MAX: u64 = 1000;

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// sled failed.
    #[error("log storage: {0}")]
    Storage(String),
    /// A stored value is not what the log wrote: the store is damaged or tampered with.
    #[error("log entry {index} is damaged: {reason}")]
    Corrupt {
        /// Which entry or hash.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A proof or range was asked for outside the tree.
    #[error("{0}")]
    Range(String),
    /// An event could not be encoded.
    #[error("event: {0}")]
    Event(String),
}

impl From<sled::Error> for LedgerError {
    fn from(e: sled::Error) -> Self {
        LedgerError::Storage(e.to_string())
    }
}

/// A document's business operation on an earlier one, as recorded and logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessRef {
    /// `recall`, `update` or `replace`.
    pub kind: String,
    /// The earlier document.
    pub target: Uuid,
}

/// One log event. Leaves are the RFC 8785 bytes of its JSON, which carries a `type`.
/// Events name documents, organisations and digests; never a subject, a file name or
/// any plaintext of a classified document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// A document's payload was accepted: it is in its recipients' inboxes.
    Submitted {
        /// When.
        time: String,
        /// The document.
        document_id: Uuid,
        /// Who did it (the sender).
        actor: String,
        /// The sender.
        sender: String,
        /// The recipients.
        recipients: Vec<String>,
        /// Classification.
        classification: String,
        /// Urgency 0–4.
        urgency: u8,
        /// The deadline for urgency 4.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<String>,
        /// SHA-256 of the manifest's canonical bytes.
        manifest_sha256: String,
        /// SHA-256 of the payload.
        payload_sha256: String,
        /// Payload size.
        payload_size: u64,
        /// For a classified document: the cipher that sealed it, and whether the server
        /// declared it certified.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sealed_with: Option<crate::seal::policy::SealMark>,
        /// The earlier document this one recalls, updates or replaces, so that an
        /// officer's report can link them from the log alone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        business: Option<BusinessRef>,
    },
    /// A recipient fetched the payload.
    Delivered {
        /// When.
        time: String,
        /// The document.
        document_id: Uuid,
        /// The recipient who fetched.
        actor: String,
        /// The sender.
        sender: String,
        /// The recipients.
        recipients: Vec<String>,
        /// SHA-256 of the payload delivered.
        payload_sha256: String,
    },
    /// A recipient's signed receipt was recorded.
    Receipt {
        /// When the server recorded it.
        time: String,
        /// The document.
        document_id: Uuid,
        /// The recipient.
        actor: String,
        /// The sender.
        sender: String,
        /// The recipients.
        recipients: Vec<String>,
        /// edXML status.
        status: String,
        /// The signed receipt (statement and X.509 signature), verifiable offline.
        receipt: serde_json::Value,
    },
    /// A request concerning a document was refused.
    Refused {
        /// When.
        time: String,
        /// The document, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document_id: Option<Uuid>,
        /// Who asked: the authenticated caller, the only party a refusal names.
        actor: String,
        /// Never written since issue 11: the sender an unverified request claimed. Read
        /// only so that leaves logged before then still parse; visibility ignores it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender: Option<String>,
        /// Never written since issue 11: the recipients an unverified request claimed.
        /// Read only so that older leaves still parse; visibility ignores them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recipients: Vec<String>,
        /// The API error code.
        code: String,
    },
    /// The directory (tree or registered keys) changed.
    DirectoryChanged {
        /// When.
        time: String,
        /// SHA-256 over the tree and every registered certificate.
        directory_sha256: String,
    },
    /// A reform plan came into force: units merged, divided, activated, moved, retired.
    Reorganised {
        /// When the server put it in force.
        time: String,
        /// The plan's id.
        plan_id: String,
        /// SHA-256 of the plan file.
        plan_sha256: String,
        /// The plan's own effective time.
        effective_at: String,
        /// Its effects in words, exactly as the dry run shows them.
        effects: Vec<String>,
        /// Every merged unit with the active unit that carries it on after the plan, so
        /// that a successor's fetches and receipts for its predecessors' documents can be
        /// attributed from the log alone.
        successors: std::collections::BTreeMap<String, String>,
    },
}

impl Event {
    /// The RFC 8785 bytes of the event: the leaf.
    pub fn leaf(&self) -> Result<Vec<u8>, LedgerError> {
        serde_jcs::to_vec(self).map_err(|e| LedgerError::Event(e.to_string()))
    }

    /// Parses a leaf.
    pub fn from_leaf(bytes: &[u8]) -> Result<Event, LedgerError> {
        serde_json::from_slice(bytes).map_err(|e| LedgerError::Event(e.to_string()))
    }

    /// The document, if the event concerns one.
    pub fn document_id(&self) -> Option<Uuid> {
        match self {
            Event::Submitted { document_id, .. }
            | Event::Delivered { document_id, .. }
            | Event::Receipt { document_id, .. } => Some(*document_id),
            Event::Refused { document_id, .. } => *document_id,
            Event::DirectoryChanged { .. } | Event::Reorganised { .. } => None,
        }
    }

    /// Every organisation the event concerns (actor, sender, recipients).
    pub fn parties(&self) -> Vec<&str> {
        let mut out = Vec::new();
        match self {
            Event::Submitted {
                actor,
                sender,
                recipients,
                ..
            }
            | Event::Delivered {
                actor,
                sender,
                recipients,
                ..
            }
            | Event::Receipt {
                actor,
                sender,
                recipients,
                ..
            } => {
                out.push(actor.as_str());
                out.push(sender.as_str());
                out.extend(recipients.iter().map(String::as_str));
            }
            Event::Refused {
                actor,
                sender,
                recipients,
                ..
            } => {
                out.push(actor.as_str());
                out.extend(sender.iter().map(String::as_str));
                out.extend(recipients.iter().map(String::as_str));
            }
            Event::DirectoryChanged { .. } | Event::Reorganised { .. } => {}
        }
        out
    }

    /// Whether the organisation `org` may read the event, exactly as the document API
    /// would let it: the submission to its sender and every recipient; a delivery or a
    /// receipt to its sender and the recipient who fetched or signed (not to the other
    /// recipients, who may not read each other's status); a refusal to the caller it
    /// refused; directory changes to everyone.
    pub fn readable_by_org(&self, org: &str) -> bool {
        match self {
            Event::Submitted {
                sender, recipients, ..
            } => sender == org || recipients.iter().any(|r| r == org),
            Event::Delivered { actor, sender, .. } | Event::Receipt { actor, sender, .. } => {
                actor == org || sender == org
            }
            Event::Refused { actor, .. } => actor == org,
            Event::DirectoryChanged { .. } | Event::Reorganised { .. } => true,
        }
    }

    /// The organisations whose security officers may read the event: any officer whose
    /// scope holds one of them sees it, as `GET /v1/documents/{id}/status` would show it.
    /// A refusal is under its caller alone, whatever older leaves claimed; directory
    /// changes are for everyone and have no parties.
    pub fn audit_parties(&self) -> Vec<&str> {
        match self {
            Event::Refused { actor, .. } => vec![actor.as_str()],
            other => other.parties(),
        }
    }

    /// The event's time.
    pub fn time(&self) -> &str {
        match self {
            Event::Submitted { time, .. }
            | Event::Delivered { time, .. }
            | Event::Receipt { time, .. }
            | Event::Refused { time, .. }
            | Event::DirectoryChanged { time, .. }
            | Event::Reorganised { time, .. } => time,
        }
    }
}

fn leaf_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn hash_key(stored: u64) -> [u8; 8] {
    stored.to_be_bytes()
}

fn doc_key(id: &Uuid, index: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(id.as_bytes());
    k[16..].copy_from_slice(&index.to_be_bytes());
    k
}

fn decode_u64(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// Reads stored hashes inside a transaction, remembering a sled conflict so the
/// transaction can be retried (tlog's reader interface cannot carry it).
struct TxReader<'a> {
    tx: &'a TransactionalTree,
    failure: std::cell::RefCell<Option<UnabortableTransactionError>>,
}

impl HashReader for TxReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        let mut out = Vec::with_capacity(indexes.len());
        for &i in indexes {
            match self.tx.get(hash_key(i)) {
                Ok(Some(v)) => out.push(Hash(
                    <[u8; 32]>::try_from(v.as_ref()).map_err(|_| tlog::Error::MalformedHash)?,
                )),
                Ok(None) => return Err(tlog::Error::InvalidInput(format!("missing hash {i}"))),
                Err(e) => {
                    *self.failure.borrow_mut() = Some(e);
                    return Err(tlog::Error::InvalidInput("storage".into()));
                }
            }
        }
        Ok(out)
    }
}

/// Appends `event` inside a sled transaction on the log's trees; returns its index.
pub fn append<E>(tx: &TxLog<'_>, event: &Event) -> Result<u64, ConflictableTransactionError<E>>
where
    E: From<LedgerError>,
{
    let abort = |e: LedgerError| ConflictableTransactionError::Abort(E::from(e));
    let leaf = event.leaf().map_err(abort)?;
    append_leaf(tx, &leaf, event.document_id())
}

/// Appends `events` in order inside one sled transaction on the log's trees; returns the
/// index of the first (the others follow it). The size is read and written once for the
/// whole group, so a group costs less than its events appended one by one.
pub fn append_batch<E>(
    tx: &TxLog<'_>,
    events: &[Event],
) -> Result<u64, ConflictableTransactionError<E>>
where
    E: From<LedgerError>,
{
    let abort = |e: LedgerError| ConflictableTransactionError::Abort(E::from(e));
    let first = read_size(tx)?;
    let mut next = first;
    for event in events {
        let leaf = event.leaf().map_err(abort)?;
        write_leaf(tx, next, &leaf, event.document_id())?;
        next += 1;
    }
    if next != first {
        tx.meta.insert(SIZE_KEY, &next.to_be_bytes()[..])?;
    }
    Ok(first)
}

/// Appends a leaf as it was stored (a restore from a backup re-appends the backup's
/// leaves byte for byte, so the rebuilt tree has the same roots) inside a sled transaction
/// on the log's trees; returns its index. `document` is the event's document, for the
/// per-document index.
pub fn append_leaf<E>(
    tx: &TxLog<'_>,
    leaf: &[u8],
    document: Option<Uuid>,
) -> Result<u64, ConflictableTransactionError<E>>
where
    E: From<LedgerError>,
{
    let index = read_size(tx)?;
    write_leaf(tx, index, leaf, document)?;
    tx.meta.insert(SIZE_KEY, &(index + 1).to_be_bytes()[..])?;
    Ok(index)
}

/// The log's size inside a transaction.
fn read_size<E>(tx: &TxLog<'_>) -> Result<u64, ConflictableTransactionError<E>>
where
    E: From<LedgerError>,
{
    match tx.meta.get(SIZE_KEY)? {
        None => Ok(0),
        Some(v) => decode_u64(&v).ok_or_else(|| {
            ConflictableTransactionError::Abort(E::from(LedgerError::Corrupt {
                index: 0,
                reason: "size record".into(),
            }))
        }),
    }
}

/// Writes the leaf at `index` (which must be the size), its stored hashes and its
/// per-document key; the caller writes the new size.
fn write_leaf<E>(
    tx: &TxLog<'_>,
    index: u64,
    leaf: &[u8],
    document: Option<Uuid>,
) -> Result<(), ConflictableTransactionError<E>>
where
    E: From<LedgerError>,
{
    // The hashes of earlier appends in the same transaction are read back from the
    // transaction's own writes, so a group needs no state of its own.
    let reader = TxReader {
        tx: tx.hashes,
        failure: std::cell::RefCell::new(None),
    };
    let hashes = match tlog::stored_hashes(index, leaf, &reader) {
        Ok(h) => h,
        Err(e) => {
            if let Some(failure) = reader.failure.into_inner() {
                return Err(failure.into());
            }
            return Err(ConflictableTransactionError::Abort(E::from(
                LedgerError::Corrupt {
                    index,
                    reason: format!("stored hashes: {e}"),
                },
            )));
        }
    };
    let first = tlog::stored_hash_index(0, index);
    for (i, h) in hashes.iter().enumerate() {
        tx.hashes.insert(&hash_key(first + i as u64), &h.0[..])?;
    }
    tx.leaves.insert(&leaf_key(index), leaf)?;
    if let Some(id) = document {
        tx.docs.insert(&doc_key(&id, index), &[][..])?;
    }
    Ok(())
}

/// The digest of the last directory logged, inside a transaction.
pub fn last_directory_digest(
    tx: &TxLog<'_>,
) -> Result<Option<Vec<u8>>, UnabortableTransactionError> {
    Ok(tx.meta.get(DIRECTORY_KEY)?.map(|v| v.to_vec()))
}

/// Whether the reform plan `plan_id` has been logged, inside a transaction.
pub fn reform_logged(tx: &TxLog<'_>, plan_id: &str) -> Result<bool, UnabortableTransactionError> {
    Ok(tx.meta.get(reform_key(plan_id))?.is_some())
}

/// Records that the reform plan `plan_id` was logged at `index`, inside a transaction.
pub fn set_reform_logged(
    tx: &TxLog<'_>,
    plan_id: &str,
    index: u64,
) -> Result<(), UnabortableTransactionError> {
    tx.meta.insert(reform_key(plan_id), &index.to_be_bytes())?;
    Ok(())
}

fn reform_key(plan_id: &str) -> Vec<u8> {
    let mut key = REFORM_KEY_PREFIX.to_vec();
    key.extend_from_slice(plan_id.as_bytes());
    key
}

/// Records the digest of the directory just logged, inside a transaction.
pub fn set_directory_digest(
    tx: &TxLog<'_>,
    digest: &[u8],
) -> Result<(), UnabortableTransactionError> {
    tx.meta.insert(DIRECTORY_KEY, digest)?;
    Ok(())
}

/// Read access to the log (proofs, entries, roots).
#[derive(Clone)]
pub struct Log {
    trees: LogTrees,
}

impl HashReader for Log {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        let mut out = Vec::with_capacity(indexes.len());
        for &i in indexes {
            let v = self
                .trees
                .hashes
                .get(hash_key(i))
                .map_err(|e| tlog::Error::InvalidInput(e.to_string()))?
                .ok_or_else(|| tlog::Error::InvalidInput(format!("missing hash {i}")))?;
            out.push(Hash(
                <[u8; 32]>::try_from(v.as_ref()).map_err(|_| tlog::Error::MalformedHash)?,
            ));
        }
        Ok(out)
    }
}

impl Log {
    /// The log in `trees`.
    pub fn new(trees: LogTrees) -> Log {
        Log { trees }
    }

    /// The number of entries.
    pub fn size(&self) -> Result<u64, LedgerError> {
        match self.trees.meta.get(SIZE_KEY)? {
            None => Ok(0),
            Some(v) => decode_u64(&v).ok_or_else(|| LedgerError::Corrupt {
                index: 0,
                reason: "size record".into(),
            }),
        }
    }

    /// The leaf at `index`.
    pub fn leaf(&self, index: u64) -> Result<Vec<u8>, LedgerError> {
        self.trees
            .leaves
            .get(leaf_key(index))?
            .map(|v| v.to_vec())
            .ok_or_else(|| LedgerError::Corrupt {
                index,
                reason: "missing".into(),
            })
    }

    /// Leaves in `[start, end)`, at most [`ENTRIES_PAGE_MAX`].
    pub fn leaves(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let end = end.min(start.saturating_add(ENTRIES_PAGE_MAX));
        let mut out = Vec::new();
        for item in self.trees.leaves.range(leaf_key(start)..leaf_key(end)) {
            let (k, v) = item?;
            let index = decode_u64(&k).unwrap_or(u64::MAX);
            out.push((index, v.to_vec()));
        }
        Ok(out)
    }

    /// The indexes of the events of one document.
    pub fn document_events(&self, id: &Uuid) -> Result<Vec<u64>, LedgerError> {
        let mut out = Vec::new();
        for item in self.trees.docs.scan_prefix(id.as_bytes()) {
            let (k, _) = item?;
            if let Some(index) = k.get(16..).and_then(decode_u64) {
                out.push(index);
            }
        }
        Ok(out)
    }

    /// The root hash of the tree of `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash, LedgerError> {
        tlog::tree_hash(size, self).map_err(|e| LedgerError::Range(e.to_string()))
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        if index >= size || size > self.size()? {
            return Err(LedgerError::Range(format!(
                "index {index} is not in a tree of size {size} (the log has {} entries)",
                self.size()?
            )));
        }
        tlog::prove_record(size, index, self).map_err(|e| LedgerError::Range(e.to_string()))
    }

    /// The consistency proof between the trees of `from` and `to` entries.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, LedgerError> {
        if from == 0 || from > to || to > self.size()? {
            return Err(LedgerError::Range(format!(
                "no consistency proof from {from} to {to} (the log has {} entries)",
                self.size()?
            )));
        }
        tlog::prove_tree(to, from, self).map_err(|e| LedgerError::Range(e.to_string()))
    }
}

/// The largest power of two smaller than `n` (RFC 9162, section 2.1.1); `n` is at least 2.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

impl Log {
    /// The hash of the subtree over `[lo, hi)` of the RFC 9162 tree, from stored hashes:
    /// a power-of-two subtree is one stored hash (it is always aligned), any other is
    /// split as the RFC splits it.
    fn subtree_hash(&self, lo: u64, hi: u64) -> Result<Hash, LedgerError> {
        let n = hi - lo;
        if n.is_power_of_two() {
            let level = n.trailing_zeros() as u8;
            let stored = tlog::stored_hash_index(level, lo >> level);
            let hashes = self
                .read_hashes(&[stored])
                .map_err(|e| LedgerError::Range(e.to_string()))?;
            return hashes.first().copied().ok_or_else(|| LedgerError::Corrupt {
                index: lo,
                reason: "missing subtree hash".into(),
            });
        }
        let k = split_point(n);
        Ok(tlog::node_hash(
            self.subtree_hash(lo, lo + k)?,
            self.subtree_hash(lo + k, hi)?,
        ))
    }

    /// The range proof of entries `[start, end)` in the tree of `size` entries: the hashes
    /// of the subtrees wholly outside the range, in the order [`check_range`] consumes
    /// them. With every leaf hash of the range, they recompute the root, so a range
    /// checked this way has no entry missing, added or moved. At most two per level.
    pub fn range_proof(&self, start: u64, end: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        let stored = self.size()?;
        if start >= end || end > size || size > stored {
            return Err(LedgerError::Range(format!(
                "no range [{start}, {end}) in a tree of size {size} (the log has {stored} entries)"
            )));
        }
        let mut out = Vec::new();
        self.range_walk(0, size, start, end, &mut out)?;
        Ok(out)
    }

    fn range_walk(
        &self,
        lo: u64,
        hi: u64,
        start: u64,
        end: u64,
        out: &mut Vec<Hash>,
    ) -> Result<(), LedgerError> {
        if hi <= start || lo >= end {
            out.push(self.subtree_hash(lo, hi)?);
        } else if !(start <= lo && hi <= end) {
            // Partly inside: hi - lo is at least 2 here, so there is a split.
            let k = split_point(hi - lo);
            self.range_walk(lo, lo + k, start, end, out)?;
            self.range_walk(lo + k, hi, start, end, out)?;
        }
        Ok(())
    }
}

/// Checks that `leaf_hashes` are entries `[start, start + len)` of the tree of `size`
/// entries with root `root`, given the [`Log::range_proof`] of that range. Every proof
/// hash must be used, so a proof cannot smuggle in extra material.
pub fn check_range(
    proof: &[Hash],
    size: u64,
    root: Hash,
    start: u64,
    leaf_hashes: &[Hash],
) -> bool {
    fn walk(
        lo: u64,
        hi: u64,
        start: u64,
        leaves: &[Hash],
        proof: &mut std::slice::Iter<'_, Hash>,
    ) -> Option<Hash> {
        let end = start + leaves.len() as u64;
        if hi <= start || lo >= end {
            return proof.next().copied();
        }
        if start <= lo && hi <= end {
            let from = usize::try_from(lo - start).ok()?;
            let to = usize::try_from(hi - start).ok()?;
            return Some(mth(leaves.get(from..to)?));
        }
        let k = split_point(hi - lo);
        let left = walk(lo, lo + k, start, leaves, proof)?;
        let right = walk(lo + k, hi, start, leaves, proof)?;
        Some(tlog::node_hash(left, right))
    }
    let Some(end) = start.checked_add(leaf_hashes.len() as u64) else {
        return false;
    };
    if leaf_hashes.is_empty() || end > size {
        return false;
    }
    let mut iter = proof.iter();
    walk(0, size, start, leaf_hashes, &mut iter) == Some(root) && iter.next().is_none()
}

/// The RFC 9162 root of a list of leaf hashes.
fn mth(hashes: &[Hash]) -> Hash {
    match hashes {
        [] => tlog::EMPTY_HASH,
        [one] => *one,
        _ => {
            let k = split_point(hashes.len() as u64) as usize;
            tlog::node_hash(mth(&hashes[..k]), mth(&hashes[k..]))
        }
    }
}

/// The leaf hash of a leaf (RFC 9162: SHA-256 of 0x00 and the leaf).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    tlog::record_hash(leaf)
}

/// What a full scan of the stored log found.
#[derive(Debug)]
pub struct StoreAudit {
    /// Entries scanned.
    pub size: u64,
    /// The first entry whose leaf does not hash to its stored hash, or is missing.
    pub first_bad_index: Option<u64>,
    /// The root recomputed from the leaves alone.
    pub recomputed_root: Hash,
    /// The root computed from the stored hashes.
    pub stored_root: Hash,
    /// The recomputed root at `checkpoint_size`, when asked for.
    pub root_at_checkpoint: Option<Hash>,
}

impl Log {
    /// Scans every leaf (offline, with the server stopped): each must hash to its stored
    /// leaf hash, and the root recomputed from the leaves must equal the stored one.
    /// Memory stays O(log n).
    pub fn audit(&self, checkpoint_size: Option<u64>) -> Result<StoreAudit, LedgerError> {
        let size = self.size()?;
        let mut stack: Vec<(u64, Hash)> = Vec::new();
        let mut first_bad_index = None;
        let mut root_at_checkpoint = None;
        let fold = |stack: &[(u64, Hash)]| {
            let mut iter = stack.iter().rev();
            match iter.next() {
                None => tlog::EMPTY_HASH,
                Some((_, last)) => iter.fold(*last, |acc, (_, h)| tlog::node_hash(*h, acc)),
            }
        };
        if checkpoint_size == Some(0) {
            root_at_checkpoint = Some(tlog::EMPTY_HASH);
        }
        for index in 0..size {
            let leaf_hash = match self.trees.leaves.get(leaf_key(index))? {
                Some(leaf) => tlog::record_hash(&leaf),
                None => {
                    first_bad_index.get_or_insert(index);
                    tlog::EMPTY_HASH
                }
            };
            let stored = self.read_hashes(&[tlog::stored_hash_index(0, index)]).ok();
            if stored.as_ref().and_then(|h| h.first()) != Some(&leaf_hash) {
                first_bad_index.get_or_insert(index);
            }
            stack.push((1, leaf_hash));
            while stack.len() >= 2 && stack[stack.len() - 1].0 == stack[stack.len() - 2].0 {
                let (n, right) = stack.pop().unwrap_or((0, tlog::EMPTY_HASH));
                let (_, left) = stack.pop().unwrap_or((0, tlog::EMPTY_HASH));
                stack.push((2 * n, tlog::node_hash(left, right)));
            }
            if checkpoint_size == Some(index + 1) {
                root_at_checkpoint = Some(fold(&stack));
            }
        }
        Ok(StoreAudit {
            size,
            first_bad_index,
            recomputed_root: fold(&stack),
            stored_root: self.root(size).unwrap_or(tlog::EMPTY_HASH),
            root_at_checkpoint,
        })
    }
}

/// Checks that `leaf` is entry `index` of the tree of `size` entries with root `root`.
pub fn check_inclusion(proof: &[Hash], size: u64, root: Hash, index: u64, leaf: &[u8]) -> bool {
    index < size
        && tlog::check_record(&proof.to_vec(), size, root, index, tlog::record_hash(leaf)).is_ok()
}

/// Checks that the tree of `from` entries with root `old` is a prefix of the tree of `to`
/// entries with root `new`.
pub fn check_consistency(proof: &[Hash], from: u64, old: Hash, to: u64, new: Hash) -> bool {
    if from == to {
        return proof.is_empty() && old == new;
    }
    from >= 1 && from < to && tlog::check_tree(&proof.to_vec(), to, new, from, old).is_ok()
}

/// The root of a list of leaves, recomputed from scratch (offline verification).
pub fn root_of_leaves(leaves: &[Vec<u8>]) -> Hash {
    let hashes: Vec<Hash> = leaves.iter().map(|l| tlog::record_hash(l)).collect();
    mth(&hashes)
}

/// The root of the first `size` of a list of leaf hashes, recomputed from scratch; `None`
/// when there are fewer.
pub fn root_of_prefix(hashes: &[Hash], size: u64) -> Option<Hash> {
    hashes.get(..usize::try_from(size).ok()?).map(mth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sled::Transactional;

    fn event(i: u64) -> Event {
        Event::DirectoryChanged {
            time: format!("t{i}"),
            directory_sha256: format!("{i:064}"),
        }
    }

    fn fresh() -> (tempfile::TempDir, LogTrees) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let (trees, _) = LogTrees::open(&db, || Ok(())).unwrap();
        (dir, trees)
    }

    fn append_one(trees: &LogTrees, e: &Event) -> u64 {
        trees
            .as_tuple()
            .transaction(|t| append::<LedgerError>(&TxLog::of(t), e))
            .unwrap()
    }

    #[test]
    fn roots_and_proofs_agree_with_a_from_scratch_computation() {
        let (_dir, tree) = fresh();
        let log = Log::new(tree.clone());
        let mut leaves = Vec::new();
        let mut roots = Vec::new();
        for i in 0..70u64 {
            let e = event(i);
            assert_eq!(append_one(&tree, &e), i);
            leaves.push(e.leaf().unwrap());
            let root = log.root(i + 1).unwrap();
            assert_eq!(root, root_of_leaves(&leaves), "size {}", i + 1);
            roots.push(root);
        }
        assert_eq!(log.size().unwrap(), 70);
        for size in [1u64, 2, 3, 7, 8, 9, 33, 64, 70] {
            let root = roots[size as usize - 1];
            for index in 0..size {
                let proof = log.inclusion_proof(index, size).unwrap();
                assert!(check_inclusion(
                    &proof,
                    size,
                    root,
                    index,
                    &leaves[index as usize]
                ));
                assert!(!check_inclusion(&proof, size, root, index, b"tampered"));
            }
            for from in 1..=size {
                let proof = log.consistency_proof(from, size).unwrap();
                assert!(
                    check_consistency(&proof, from, roots[from as usize - 1], size, root),
                    "{from}->{size}"
                );
                if from < size {
                    assert!(!check_consistency(
                        &proof,
                        from,
                        roots[size as usize - 1],
                        size,
                        root
                    ));
                }
            }
        }
        let audit = log.audit(Some(33)).unwrap();
        assert_eq!(audit.first_bad_index, None);
        assert_eq!(audit.recomputed_root, roots[69]);
        assert_eq!(audit.stored_root, roots[69]);
        assert_eq!(audit.root_at_checkpoint, Some(roots[32]));
        // One byte of a leaf changed: named.
        let mut leaf = tree.leaves.get(leaf_key(41)).unwrap().unwrap().to_vec();
        leaf[5] ^= 1;
        tree.leaves.insert(leaf_key(41), leaf).unwrap();
        let audit = log.audit(None).unwrap();
        assert_eq!(audit.first_bad_index, Some(41));
        assert_ne!(audit.recomputed_root, audit.stored_root);
        assert!(log.inclusion_proof(70, 70).is_err());
        assert!(log.consistency_proof(0, 5).is_err());
        assert!(log.consistency_proof(5, 71).is_err());
    }

    #[test]
    fn range_proofs_account_for_every_entry_of_every_range() {
        let (_dir, tree) = fresh();
        let log = Log::new(tree.clone());
        let mut hashes = Vec::new();
        for i in 0..37u64 {
            let e = event(i);
            append_one(&tree, &e);
            hashes.push(leaf_hash(&e.leaf().unwrap()));
        }
        for size in [1u64, 2, 5, 8, 13, 32, 37] {
            let root = log.root(size).unwrap();
            assert_eq!(root_of_prefix(&hashes, size), Some(root));
            for start in 0..size {
                for end in start + 1..=size {
                    let range = &hashes[start as usize..end as usize];
                    let proof = log.range_proof(start, end, size).unwrap();
                    assert!(
                        check_range(&proof, size, root, start, range),
                        "{start}..{end}/{size}"
                    );
                    // One entry left out, the range shifted, or the root of another
                    // size: refused.
                    if range.len() > 1 {
                        let mut short = range.to_vec();
                        short.remove(range.len() / 2);
                        assert!(!check_range(&proof, size, root, start, &short));
                        let mut swapped = range.to_vec();
                        swapped.swap(0, 1);
                        assert!(
                            range[0] == range[1]
                                || !check_range(&proof, size, root, start, &swapped)
                        );
                    }
                    if start > 0 {
                        assert!(!check_range(&proof, size, root, start - 1, range));
                    }
                }
            }
        }
        assert!(log.range_proof(3, 3, 10).is_err());
        assert!(log.range_proof(0, 38, 38).is_err());
        assert!(!check_range(&[], 5, tlog::EMPTY_HASH, 0, &[]));
        assert!(!check_range(
            &[],
            u64::MAX,
            tlog::EMPTY_HASH,
            u64::MAX,
            &hashes[..2]
        ));
        assert!(!check_range(
            &[Hash([1; 32]); 70],
            u64::MAX,
            tlog::EMPTY_HASH,
            7,
            &hashes[..2]
        ));
    }

    #[test]
    fn readers_follow_the_document_api() {
        let id = Uuid::now_v7();
        let receipt = Event::Receipt {
            time: "t".into(),
            document_id: id,
            actor: "a".into(),
            sender: "s".into(),
            recipients: vec!["a".into(), "b".into()],
            status: "02".into(),
            receipt: serde_json::Value::Null,
        };
        assert!(receipt.readable_by_org("a") && receipt.readable_by_org("s"));
        assert!(!receipt.readable_by_org("b"), "a co-recipient");
        // A refusal logged before issue 11 with claimed parties is its caller's alone.
        let old: Event = serde_json::from_str(
            r#"{"type":"refused","time":"t","actor":"x","sender":"s","recipients":["a"],"code":"c"}"#,
        )
        .unwrap();
        assert!(old.readable_by_org("x") && !old.readable_by_org("s"));
        assert_eq!(old.audit_parties(), ["x"]);
    }

    #[test]
    fn hostile_proofs_are_refused_without_panicking() {
        let root = root_of_leaves(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        for proof in [vec![], vec![Hash([0; 32]); 1], vec![Hash([7; 32]); 70]] {
            for (index, size) in [(0, 3), (2, 3), (5, 3), (0, 0), (u64::MAX - 1, u64::MAX)] {
                assert!(!check_inclusion(&proof, size, root, index, b"a"));
            }
            for (from, to) in [(1, 3), (0, 3), (3, 1), (2, u64::MAX)] {
                assert!(!check_consistency(&proof, from, root, to, root));
            }
        }
    }
}
