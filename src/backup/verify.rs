//! `backup verify`: every set complete and chained by digest, every payload's digest, the
//! log rebuilt leaf by leaf against every checkpoint.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use tlog_tiles::tlog::{self, Hash};
use uuid::Uuid;

use super::{
    BackupError, BlobRef, Record, invalid, io, list_sets, read_manifest, read_records, sha256_hex,
};
use crate::ledger::{self, Event};
use crate::pki::identity::hex;
use crate::store::{BlobStore, DocState, DocumentRecord};

/// What `backup verify` checked.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// Sets, oldest first.
    pub sets: Vec<PathBuf>,
    /// Log entries.
    pub log_size: u64,
    /// Checkpoints checked against the log.
    pub checkpoints: u64,
    /// The latest checkpoint's size.
    pub latest_checkpoint: Option<u64>,
    /// Documents.
    pub documents: u64,
    /// Payload files checked by digest.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Small payloads checked by digest.
    pub small_payloads: u64,
    /// The payload files the documents need, each checked.
    pub blob_files: Vec<BlobRef>,
}

/// Checks a backup directory: every set complete and chained to the one before, every
/// records file as its manifest says, the log's root at every checkpoint equal to the
/// checkpoint's (signed with the log key in the backup), every document the log names
/// present with the payload the log names, every payload file's digest.
pub fn verify(dir: &Path) -> Result<VerifyReport, BackupError> {
    let (sets, partial) = list_sets(dir)?;
    if !partial.is_empty() {
        return Err(BackupError::Incomplete(format!(
            "the backup in {} is incomplete: set {} was interrupted (run `congvan backup` \
             again; it discards the interrupted set and takes it again)",
            dir.display(),
            partial.join(", ")
        )));
    }
    if sets.is_empty() {
        return Err(BackupError::Incomplete(format!(
            "the backup in {} is incomplete: it holds no complete set yet (run `congvan backup`)",
            dir.display()
        )));
    }
    let mut manifests = Vec::new();
    let mut previous_hash = String::new();
    let mut log_size = 0u64;
    for (i, (n, path)) in sets.iter().enumerate() {
        let (m, hash) = read_manifest(path)?;
        if m.sequence != *n || *n != i as u64 + 1 {
            return Err(invalid(format!(
                "set {} is out of sequence (sets must be 1, 2, 3…)",
                path.display()
            )));
        }
        if m.previous_set_sha256 != previous_hash {
            return Err(invalid(format!(
                "set {} does not follow the set before it",
                path.display()
            )));
        }
        if m.log_from != log_size || m.log_to < m.log_from || m.log_to - m.log_from != m.leaves {
            return Err(invalid(format!(
                "set {} holds log entries {}..{}, expected to start at {log_size}",
                path.display(),
                m.log_from,
                m.log_to
            )));
        }
        log_size = m.log_to;
        previous_hash = hash;
        manifests.push(m);
    }
    let latest_set = sets.last().map(|(_, p)| p.clone()).unwrap_or_default();
    let latest = manifests.last().cloned().ok_or_else(|| invalid("no set"))?;
    let public = crate::notary::public_key_in(
        &latest_set.join("files/keys"),
        crate::notary::KeyPurpose::Log,
    )
    .map_err(|e| invalid(e.to_string()))?;
    let vkey = ledger::verifier_key(&latest.log_origin, &public);

    // Pass 1: records (the final state of each key) and what the log says.
    let mut checkpoints: BTreeMap<u64, Hash> = BTreeMap::new();
    let mut docs: HashMap<Uuid, (DocState, String, u64, Option<u64>)> = HashMap::new();
    let mut small: HashSet<String> = HashSet::new();
    let mut submitted: Vec<(u64, Uuid, String)> = Vec::new();
    // Certificate chains carried, and those the documents refer to (by document).
    let mut chains: HashSet<[u8; 32]> = HashSet::new();
    let mut chain_refs: Vec<([u8; 32], Uuid)> = Vec::new();
    for ((_, path), m) in sets.iter().zip(&manifests) {
        let mut next = m.log_from;
        read_records(path, m, &mut |record| {
            match record {
                Record::Leaf(index, leaf) => {
                    if index != next {
                        return Err(invalid(format!("log entry {next} is missing")));
                    }
                    next += 1;
                    if let Event::Submitted {
                        document_id,
                        payload_sha256,
                        ..
                    } = Event::from_leaf(&leaf)
                        .map_err(|e| invalid(format!("log entry {index}: {e}")))?
                    {
                        submitted.push((index, document_id, payload_sha256));
                    }
                }
                Record::Put(tree, key, value) => match tree.as_str() {
                    "checkpoints" => {
                        let size = <[u8; 8]>::try_from(key.as_slice())
                            .map(u64::from_be_bytes)
                            .map_err(|_| invalid("a checkpoint key is not 8 bytes"))?;
                        let note = String::from_utf8_lossy(&value);
                        let c = ledger::checkpoint::verify(&note, &vkey).map_err(|e| {
                            invalid(format!(
                                "the checkpoint of {size} entries does not verify: {e}"
                            ))
                        })?;
                        if c.size != size {
                            return Err(invalid(format!(
                                "the checkpoint kept as {size} entries is of {}",
                                c.size
                            )));
                        }
                        checkpoints.insert(size, c.root);
                    }
                    "docs" => {
                        let id = Uuid::from_slice(&key)
                            .map_err(|_| invalid("a document key is not a UUID"))?;
                        let record: DocumentRecord = serde_json::from_slice(&value)
                            .map_err(|e| invalid(format!("document {id}: {e}")))?;
                        let refs = crate::store::chain_refs(&value)
                            .map_err(|e| invalid(format!("document {id}: {e}")))?;
                        chain_refs.extend(refs.into_iter().map(|digest| (digest, id)));
                        docs.insert(
                            id,
                            (
                                record.state,
                                record.payload_sha256,
                                record.payload_size,
                                record.log_index,
                            ),
                        );
                    }
                    "payloads" => {
                        let name = String::from_utf8_lossy(&key).into_owned();
                        if sha256_hex(&value) != name {
                            return Err(invalid(format!(
                                "the small payload kept as {name} has another digest"
                            )));
                        }
                        small.insert(name);
                    }
                    "certs" => {
                        let digest = <[u8; 32]>::try_from(key.as_slice())
                            .map_err(|_| invalid("a certificate chain's key is not 32 bytes"))?;
                        if sha256_hex(&value) != crate::pki::identity::hex(&digest) {
                            return Err(invalid(format!(
                                "the certificate chain kept as {} has another digest",
                                crate::pki::identity::hex(&digest)
                            )));
                        }
                        chains.insert(digest);
                    }
                    "deliveries" | "inbox" | "sent" | "registers" | "links" => {}
                    other => return Err(invalid(format!("unknown tree {other:?}"))),
                },
            }
            Ok(())
        })?;
        if let Some(c) = &m.checkpoint {
            let v = ledger::checkpoint::verify(&c.note, &vkey)
                .map_err(|e| invalid(format!("the set's checkpoint does not verify: {e}")))?;
            if v.size != c.size || v.size > m.log_to {
                return Err(invalid(format!(
                    "set {}: its checkpoint of {} entries is not within its log of {}",
                    m.sequence, v.size, m.log_to
                )));
            }
            checkpoints.insert(v.size, v.root);
        }
    }
    if let Some((digest, id)) = chain_refs.iter().find(|(d, _)| !chains.contains(d)) {
        return Err(invalid(format!(
            "document {id} refers to certificate chain {} that the backup does not hold",
            crate::pki::identity::hex(digest)
        )));
    }
    if let Some((&size, _)) = checkpoints.iter().next_back() {
        if size > log_size {
            return Err(invalid(format!(
                "a checkpoint of {size} entries is larger than the log of {log_size}"
            )));
        }
    }

    // Pass 2: the tree, recomputed from the leaves in O(log n) memory, against every
    // checkpoint.
    let mut stack: Vec<(u64, Hash)> = Vec::new();
    let fold = |stack: &[(u64, Hash)]| {
        let mut iter = stack.iter().rev();
        match iter.next() {
            None => tlog::EMPTY_HASH,
            Some((_, last)) => iter.fold(*last, |acc, (_, h)| tlog::node_hash(*h, acc)),
        }
    };
    let mut size = 0u64;
    if let Some(root) = checkpoints.get(&0) {
        if *root != tlog::EMPTY_HASH {
            return Err(invalid("the empty checkpoint has a root"));
        }
    }
    for ((_, path), m) in sets.iter().zip(&manifests) {
        read_records(path, m, &mut |record| {
            if let Record::Leaf(_, leaf) = record {
                stack.push((1, ledger::leaf_hash(&leaf)));
                while stack.len() >= 2 && stack[stack.len() - 1].0 == stack[stack.len() - 2].0 {
                    let (n, right) = stack.pop().unwrap_or((0, tlog::EMPTY_HASH));
                    let (_, left) = stack.pop().unwrap_or((0, tlog::EMPTY_HASH));
                    stack.push((2 * n, tlog::node_hash(left, right)));
                }
                size += 1;
                if let Some(root) = checkpoints.get(&size) {
                    if *root != fold(&stack) {
                        return Err(invalid(format!(
                            "the log's first {size} entries do not have the root their signed \
                             checkpoint states"
                        )));
                    }
                }
            }
            Ok(())
        })?;
    }

    // Documents and payloads: the log and the records agree, every payload is here.
    let mut in_log: HashMap<Uuid, u64> = HashMap::new();
    for (index, id, sha) in &submitted {
        match docs.get(id) {
            // Records older than the `log_index` field have none.
            Some((DocState::Accepted, payload, _, at))
                if payload == sha && at.is_none_or(|at| at == *index) => {}
            _ => {
                return Err(invalid(format!(
                    "document {id} (log entry {index}) has no accepted record with the payload \
                     the log names"
                )));
            }
        }
        in_log.insert(*id, *index);
    }
    // And the other way: no accepted document the log does not name (a record copied
    // after the cut would point past the log, or at another entry).
    for (id, (state, _, _, _)) in &docs {
        if *state == DocState::Accepted && !in_log.contains_key(id) {
            return Err(invalid(format!(
                "document {id} is recorded as accepted but the log has no submission of it"
            )));
        }
    }
    let blob_store = BlobStore::open(dir)?;
    let mut checked: HashSet<&str> = HashSet::new();
    let mut blob_files = Vec::new();
    let mut blob_bytes = 0u64;
    for (state, sha, size, _) in docs.values() {
        if *state != DocState::Accepted || small.contains(sha) || !checked.insert(sha) {
            continue;
        }
        let path = blob_store.path(sha);
        let (digest, bytes) = hash_file(&path).map_err(|e| match e {
            BackupError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                invalid(format!("the payload {sha} is missing"))
            }
            other => other,
        })?;
        if digest != *sha || bytes != *size {
            return Err(invalid(format!(
                "the payload file {} does not have its digest or size",
                path.display()
            )));
        }
        blob_bytes += bytes;
        blob_files.push(BlobRef {
            sha256: sha.clone(),
            size: bytes,
        });
    }
    Ok(VerifyReport {
        sets: sets.into_iter().map(|(_, p)| p).collect(),
        log_size,
        checkpoints: checkpoints.len() as u64,
        latest_checkpoint: checkpoints.keys().next_back().copied(),
        documents: docs.len() as u64,
        blobs: checked.len() as u64,
        blob_bytes,
        small_payloads: small.len() as u64,
        blob_files,
    })
}

fn hash_file(path: &Path) -> Result<(String, u64), BackupError> {
    let mut file = fs::File::open(path).map_err(io(path))?;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hash.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
    Ok((hex(hash.finish().as_ref()), total))
}
