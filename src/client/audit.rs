//! The security officer's tools: check that the log only grows, prove a document's
//! events, export what the officer may see, verify an export offline, report overdue
//! deliveries.
//!
//! Trust comes from the profile alone: the server's keys pinned on first use, the CA
//! anchor, and the last checkpoint remembered in the profile's state directory. A new
//! checkpoint that is smaller than the remembered one, or not consistent with it, means
//! the server's log was rolled back or forked; that is reported as an error.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::UnixTime;
use serde::{Deserialize, Serialize};
use tlog_tiles::tlog::Hash;
use uuid::Uuid;

use super::state::pinned_log_verifier_key;
use super::{Client, ClientError};
use crate::api::{
    DELIVERY_RECEIPT_TYPE, DeliveryReceipt, HiddenEntry, LogEntries, LogProof, RangeProof,
};
use crate::config::Deadlines;
use crate::directory::OrgId;
use crate::document::{DocSignature, Role};
use crate::ledger::{self, Event, VerifiedCheckpoint, checkpoint};
use crate::pki::pem::write_public;
use crate::pki::signing::{JudgedAt, SigningTrust};

/// `type` of an audit export file. Version 2 accounts for every index of its range;
/// version 1 files (entries the officer could read, nothing else) are refused, because
/// nothing in them shows that an entry was left out.
pub const EXPORT_TYPE: &str = "congvan.audit-export/v2";
const EXPORT_TYPE_V1: &str = "congvan.audit-export/v1";
const REMEMBERED: &str = "checkpoint.txt";

/// Exit codes of `congvan audit` (documented in the README's command table).
pub mod exit {
    /// Everything verified (or the command did what it was asked).
    pub const OK: u8 = 0;
    /// Any other failure: network, server refusal, profile, usage of the files.
    pub const FAILED: u8 = 1;
    /// It does not verify: a forged, altered, incomplete or inconsistent export, log or
    /// checkpoint. The evidence is bad, not the tool.
    pub const NOT_VERIFIED: u8 = 3;
    /// The input cannot be read: no such file, not an export, an unsupported version,
    /// or a data directory without a store.
    pub const UNREADABLE: u8 = 4;
    /// Nothing to prove: no event of that document is visible to this profile.
    pub const NOTHING_FOUND: u8 = 5;
    /// The server could not be reached: no connection, or the TLS handshake refused.
    pub const UNREACHABLE: u8 = 6;
    /// The server (or, checked first by the client, the server's declared rules) refused
    /// the request with an error code.
    pub const REFUSED: u8 = 7;
}

fn trust_err(msg: impl Into<String>) -> ClientError {
    ClientError::Trust(msg.into())
}

/// Why `audit verify` could not say "everything verifies".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file cannot be read as an export of this version.
    #[error("cannot read the export {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The export's checkpoint does not verify with the pinned log key.
    #[error("the export does not verify: {0}")]
    NotVerified(String),
    /// The profile or its trust material cannot be used.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl VerifyError {
    /// The process exit code for this failure (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyError::Unreadable { .. } => exit::UNREADABLE,
            VerifyError::NotVerified(_) => exit::NOT_VERIFIED,
            VerifyError::Client(ClientError::LogInconsistent(_) | ClientError::Trust(_)) => {
                exit::NOT_VERIFIED
            }
            VerifyError::Client(_) => exit::FAILED,
        }
    }
}

/// What `audit checkpoint` found.
#[derive(Debug)]
pub struct CheckpointCheck {
    /// The checkpoint just fetched and verified.
    pub current: VerifiedCheckpoint,
    /// The one remembered before, if any.
    pub previous: Option<VerifiedCheckpoint>,
}

/// One verified event of a document.
#[derive(Debug)]
pub struct ProvedEvent {
    /// Its index.
    pub index: u64,
    /// The event.
    pub event: Event,
}

/// An export file: everything needed to verify offline that the entries `[start, end)`
/// of the log the checkpoint commits to are all there, unaltered.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// [`EXPORT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The server's URL.
    pub server: String,
    /// When it was made.
    pub exported_at: String,
    /// The signed checkpoint every proof is against.
    pub checkpoint: String,
    /// The first index of the range exported.
    pub start: u64,
    /// One past the last index; `start = 0` and `end` = the checkpoint's size is the
    /// whole log.
    pub end: u64,
    /// The hashes of the subtrees outside `[start, end)` (base64; empty for the whole
    /// log): with every leaf hash of the range they recompute the checkpoint's root.
    pub range_proof: Vec<String>,
    /// The CA-signed CRLs, for checking the receipts' signatures.
    pub crls: Vec<String>,
    /// The entries of the range the officer may read, each with its inclusion proof.
    pub entries: Vec<ExportEntry>,
    /// The entries of the range the officer may not read, as bare leaf hashes.
    pub hidden: Vec<HiddenEntry>,
}

/// One exported entry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEntry {
    /// Its index.
    pub index: u64,
    /// The leaf, verbatim.
    pub leaf: Box<serde_json::value::RawValue>,
    /// Its inclusion proof (base64 hashes).
    pub proof: Vec<String>,
}

/// What `audit verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// The checkpoint's size.
    pub size: u64,
    /// The first index of the range.
    pub start: u64,
    /// One past the last index of the range.
    pub end: u64,
    /// Entries read and checked.
    pub entries: usize,
    /// Entries accounted for by their leaf hash only.
    pub hidden: usize,
    /// Receipt signatures checked.
    pub receipts: usize,
    /// Whether every leaf hash of the range, with the range proof, recomputed the root.
    pub recomputed_root: bool,
    /// The size of the checkpoint remembered in the profile, when the export reproduced
    /// its root too.
    pub remembered_size: Option<u64>,
    /// Problems, the first bad index first.
    pub problems: Vec<String>,
    /// The first index whose entry does not verify.
    pub first_bad_index: Option<u64>,
}

impl VerifyReport {
    /// Whether the export covers the whole log its checkpoint commits to.
    pub fn whole_log(&self) -> bool {
        self.start == 0 && self.end == self.size
    }
}

fn decode_hash(text: &str) -> Result<Hash, ClientError> {
    let bytes = B64
        .decode(text)
        .map_err(|e| trust_err(format!("hash: {e}")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Hash)
        .map_err(|_| trust_err("hash is not 32 bytes"))
}

fn decode_proof(proof: &[String]) -> Result<Vec<Hash>, ClientError> {
    proof.iter().map(|p| decode_hash(p)).collect()
}

impl Client {
    /// Fetches the current checkpoint and verifies its signature with the pinned key.
    pub async fn fetch_checkpoint(&self) -> Result<VerifiedCheckpoint, ClientError> {
        let vkey = self.log_verifier_key().await?;
        let note = self.log_checkpoint().await?;
        checkpoint::verify(&note, &vkey).map_err(|e| trust_err(e.to_string()))
    }

    /// `audit checkpoint`: fetch, verify, check consistency with the remembered one,
    /// remember the new one. A rollback or fork is an error.
    pub async fn audit_checkpoint(&self) -> Result<CheckpointCheck, ClientError> {
        let current = self.fetch_checkpoint().await?;
        let vkey = self.log_verifier_key().await?;
        let path = self.profile().state_dir.join(REMEMBERED);
        let previous = match std::fs::read_to_string(&path) {
            Ok(note) => Some(checkpoint::verify(&note, &vkey).map_err(|e| {
                trust_err(format!(
                    "the remembered checkpoint {} does not verify: {e}",
                    path.display()
                ))
            })?),
            Err(_) => None,
        };
        if let Some(prev) = &previous {
            if current.size < prev.size {
                return Err(ClientError::LogInconsistent(format!(
                    "the log shrank from {} to {} entries since the checkpoint remembered in {}: \
                     the server's log was rolled back",
                    prev.size,
                    current.size,
                    path.display()
                )));
            }
            let consistent = if prev.size == 0 {
                true
            } else if prev.size == current.size {
                prev.root == current.root
            } else {
                let proof: LogProof = self.consistency_proof(prev.size, current.size).await?;
                let hashes = decode_proof(&proof.proof)?;
                ledger::check_consistency(&hashes, prev.size, prev.root, current.size, current.root)
            };
            if !consistent {
                return Err(ClientError::LogInconsistent(format!(
                    "the log of {} entries is not an extension of the {} entries remembered in {}: \
                     the server's log was rewritten or forked",
                    current.size,
                    prev.size,
                    path.display()
                )));
            }
        }
        write_public(&path, current.note.as_bytes())?;
        Ok(CheckpointCheck { current, previous })
    }

    /// Every entry the caller may see, in index order.
    pub async fn visible_entries(
        &self,
        size: u64,
    ) -> Result<Vec<crate::api::LogEntry>, ClientError> {
        Ok(self.entries_in(0, size).await?.0)
    }

    /// The entries of `[start, end)`: those the caller may read, and the leaf hashes of
    /// the others, each in index order.
    pub async fn entries_in(
        &self,
        start: u64,
        end: u64,
    ) -> Result<(Vec<crate::api::LogEntry>, Vec<HiddenEntry>), ClientError> {
        let mut entries = Vec::new();
        let mut hidden = Vec::new();
        let mut at = start;
        while at < end {
            let page: LogEntries = self.log_entries(at, end).await?;
            entries.extend(page.entries);
            hidden.extend(page.hidden);
            match page.next_start {
                Some(next) if next > at => at = next,
                _ => break,
            }
        }
        Ok((entries, hidden))
    }

    /// `audit prove ID`: the document's events, each proved included in the current
    /// checkpoint (which is also checked for consistency with the remembered one).
    pub async fn prove_document(
        &self,
        id: &Uuid,
    ) -> Result<(CheckpointCheck, Vec<ProvedEvent>), ClientError> {
        let check = self.audit_checkpoint().await?;
        let cp = &check.current;
        let page: LogEntries = self.log_entries_of(id).await?;
        let mut out = Vec::new();
        for entry in page.entries {
            if entry.index >= cp.size {
                continue;
            }
            let proof: LogProof = self.inclusion_proof(entry.index, cp.size).await?;
            let hashes = decode_proof(&proof.proof)?;
            let leaf = entry.leaf.get().as_bytes();
            if !ledger::check_inclusion(&hashes, cp.size, cp.root, entry.index, leaf) {
                return Err(ClientError::LogInconsistent(format!(
                    "entry {} is not in the log the checkpoint commits to",
                    entry.index
                )));
            }
            let event = Event::from_leaf(leaf).map_err(|e| trust_err(e.to_string()))?;
            if event.document_id() != Some(*id) {
                return Err(trust_err(format!(
                    "entry {} is about another document",
                    entry.index
                )));
            }
            out.push(ProvedEvent {
                index: entry.index,
                event,
            });
        }
        Ok((check, out))
    }

    /// `audit export`: the checkpoint, every entry of the whole log (those the officer
    /// may read with their inclusion proofs, the others as leaf hashes), and the CRLs,
    /// into one file.
    pub async fn export(&self, out: &Path) -> Result<Export, ClientError> {
        self.export_range(out, None).await
    }

    /// `audit export --start --end`: as [`Client::export`], for the entries `[start, end)`
    /// of the current checkpoint (the whole log when `range` is `None`), with the range
    /// proof that ties the range to the checkpoint's root.
    pub async fn export_range(
        &self,
        out: &Path,
        range: Option<(u64, u64)>,
    ) -> Result<Export, ClientError> {
        let check = self.audit_checkpoint().await?;
        let cp = check.current;
        let (start, end) = range.unwrap_or((0, cp.size));
        if (start, end) != (0, cp.size) && (start >= end || end > cp.size) {
            return Err(ClientError::Input(format!(
                "the range [{start}, {end}) is not inside the log of {} entries; give \
                 --start below --end, and --end at most {}",
                cp.size, cp.size
            )));
        }
        let crls: crate::api::CrlsResponse = self.crls().await?;
        let range_proof = if (start, end) == (0, cp.size) {
            Vec::new()
        } else {
            let proof: RangeProof = self.range_proof(start, end, cp.size).await?;
            proof.proof
        };
        let (visible, hidden) = self.entries_in(start, end).await?;
        let mut entries = Vec::new();
        for entry in visible {
            let proof: LogProof = self.inclusion_proof(entry.index, cp.size).await?;
            entries.push(ExportEntry {
                index: entry.index,
                leaf: entry.leaf,
                proof: proof.proof,
            });
        }
        let export = Export {
            kind: EXPORT_TYPE.into(),
            server: self.base_url().to_owned(),
            exported_at: crate::api::now_rfc3339(),
            checkpoint: cp.note,
            start,
            end,
            range_proof,
            crls: crls.crls,
            entries,
            hidden,
        };
        let text =
            serde_json::to_vec_pretty(&export).map_err(|e| ClientError::Input(e.to_string()))?;
        write_public(out, &text)?;
        Ok(export)
    }
}

/// Reads an export file; anything but a readable export of this version is
/// [`VerifyError::Unreadable`].
pub fn read_export(path: &Path) -> Result<Export, VerifyError> {
    let unreadable = |reason: String| VerifyError::Unreadable {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| unreadable(format!("not JSON: {e}")))?;
    match value.get("type").and_then(|t| t.as_str()) {
        Some(EXPORT_TYPE) => {}
        Some(EXPORT_TYPE_V1) => {
            return Err(unreadable(format!(
                "a {EXPORT_TYPE_V1} file cannot show that no entry was left out; \
                 export again with `congvan audit export`"
            )));
        }
        _ => return Err(unreadable(format!("not a {EXPORT_TYPE} file"))),
    }
    serde_json::from_slice(&text).map_err(|e| unreadable(e.to_string()))
}

/// One entry of an export, read or hidden, on its way through verification.
enum Slot<'a> {
    Read(&'a ExportEntry),
    Hidden(&'a HiddenEntry),
}

/// `audit verify FILE`, offline. Checks the checkpoint's signature with the pinned key;
/// that every index of the export's range is there exactly once, read or as a leaf hash;
/// every read entry's inclusion proof (naming the first bad index); that the range's leaf
/// hashes and the range proof recompute the checkpoint's root (so nothing was left out,
/// added or moved); that every signed statement an entry embeds agrees with the entry
/// field by field and verifies against the profile's anchor and the exported CRLs; that
/// an entry agrees with its document's submission; and, for an export from index 0,
/// that it reproduces the root of the checkpoint remembered in the profile.
pub fn verify_export(
    export_path: &Path,
    profile: &crate::config::ClientProfile,
) -> Result<VerifyReport, VerifyError> {
    let export = read_export(export_path)?;
    let vkey = pinned_log_verifier_key(&profile.state_dir)?;
    let cp = checkpoint::verify(&export.checkpoint, &vkey)
        .map_err(|e| VerifyError::NotVerified(e.to_string()))?;

    let crl_dir = tempfile::tempdir().map_err(|e| ClientError::Input(e.to_string()))?;
    let crl_path = crl_dir.path().join("crls.pem");
    std::fs::write(&crl_path, export.crls.concat())
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let trust = SigningTrust::load(std::slice::from_ref(&profile.ca), &[crl_path])
        .map_err(|e| VerifyError::NotVerified(format!("the exported CRLs: {e}")))?;

    let mut report = VerifyReport {
        size: cp.size,
        start: export.start,
        end: export.end,
        ..VerifyReport::default()
    };
    let bad = |report: &mut VerifyReport, index: u64, problem: String| {
        if report.first_bad_index.is_none_or(|i| index < i) {
            report.first_bad_index = Some(index);
        }
        report.problems.push(format!("entry {index}: {problem}"));
    };
    let whole_empty = export.start == 0 && export.end == 0 && cp.size == 0;
    if !whole_empty && (export.start >= export.end || export.end > cp.size) {
        report.problems.push(format!(
            "the range [{}, {}) is not inside the checkpoint's {} entries",
            export.start, export.end, cp.size
        ));
        return Ok(report);
    }

    // Every index of the range, exactly once.
    let mut slots: BTreeMap<u64, Slot<'_>> = BTreeMap::new();
    let mut previous = None;
    for entry in &export.entries {
        if previous.is_some_and(|p| entry.index <= p) {
            bad(&mut report, entry.index, "entries are out of order".into());
        }
        previous = Some(entry.index);
        if slots.insert(entry.index, Slot::Read(entry)).is_some() {
            bad(&mut report, entry.index, "appears twice".into());
        }
    }
    for hidden in &export.hidden {
        if slots.insert(hidden.index, Slot::Hidden(hidden)).is_some() {
            bad(&mut report, hidden.index, "appears twice".into());
        }
    }
    for &index in slots.keys() {
        if index < export.start || index >= export.end {
            bad(
                &mut report,
                index,
                format!(
                    "is outside the export's range [{}, {})",
                    export.start, export.end
                ),
            );
        }
    }
    let mut missing = 0u64;
    for index in export.start..export.end {
        if !slots.contains_key(&index) {
            missing += 1;
            if missing <= 10 {
                bad(
                    &mut report,
                    index,
                    "is missing from the export: an entry was left out".into(),
                );
            }
        }
    }
    if missing > 10 {
        report.problems.push(format!(
            "{missing} entries in all are missing from the export"
        ));
    }

    // Each entry, and the leaf hashes of the whole range in order.
    let mut hashes = Vec::with_capacity(slots.len());
    let mut submissions: BTreeMap<Uuid, Event> = BTreeMap::new();
    // Who carries on whom, from the `reorganised` entries read so far: a successor fetches
    // and acknowledges what was sent to the units merged into it.
    let mut successors: BTreeMap<String, String> = BTreeMap::new();
    for (&index, slot) in &slots {
        let entry = match slot {
            Slot::Hidden(hidden) => {
                report.hidden += 1;
                match decode_hash(&hidden.leaf_hash) {
                    Ok(h) => hashes.push(h),
                    Err(e) => bad(&mut report, index, format!("hidden entry: {e}")),
                }
                continue;
            }
            Slot::Read(entry) => entry,
        };
        report.entries += 1;
        let leaf = entry.leaf.get().as_bytes();
        hashes.push(ledger::leaf_hash(leaf));
        let included = decode_proof(&entry.proof)
            .map(|proof| ledger::check_inclusion(&proof, cp.size, cp.root, index, leaf))
            .unwrap_or(false);
        if !included {
            bad(
                &mut report,
                index,
                "not in the log the checkpoint commits to: altered or forged".into(),
            );
            continue;
        }
        let event = match Event::from_leaf(leaf) {
            Ok(e) => e,
            Err(e) => {
                bad(&mut report, index, format!("not an event: {e}"));
                continue;
            }
        };
        if let Event::Receipt {
            actor,
            receipt,
            time,
            ..
        } = &event
        {
            report.receipts += 1;
            if let Err(problem) = check_receipt_signature(&trust, actor, receipt, time) {
                bad(&mut report, index, problem);
            }
        }
        if let Event::Reorganised {
            successors: after, ..
        } = &event
        {
            successors.extend(after.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let submission = event.document_id().and_then(|id| submissions.get(&id));
        for problem in disagreements(&event, submission, &successors) {
            bad(&mut report, index, problem);
        }
        if let Event::Submitted { document_id, .. } = &event {
            submissions.insert(*document_id, event);
        }
    }

    // The range, tied to the checkpoint's root.
    if missing == 0 && hashes.len() as u64 == export.end - export.start {
        if whole_empty {
            report.recomputed_root = cp.root == ledger::root_of_leaves(&[]);
        } else {
            report.recomputed_root = decode_proof(&export.range_proof).is_ok_and(|proof| {
                ledger::check_range(&proof, cp.size, cp.root, export.start, &hashes)
            });
        }
        if !report.recomputed_root {
            report.problems.push(
                "the leaf hashes of the range do not recompute the checkpoint's root: \
                 an entry was added, removed, replaced or moved"
                    .into(),
            );
        }
    }

    // The checkpoint remembered in the profile: an export from index 0 holds every leaf
    // hash of its prefix, so it must reproduce that root too.
    let remembered_path = profile.state_dir.join(REMEMBERED);
    if let Ok(note) = std::fs::read_to_string(&remembered_path) {
        if let Ok(remembered) = checkpoint::verify(&note, &vkey) {
            if export.start == 0 && remembered.size <= export.end && missing == 0 {
                if ledger::root_of_prefix(&hashes, remembered.size) == Some(remembered.root) {
                    report.remembered_size = Some(remembered.size);
                } else {
                    report.problems.push(format!(
                        "the export does not reproduce the checkpoint of {} entries remembered \
                         in {}: the log was rewritten since",
                        remembered.size,
                        remembered_path.display()
                    ));
                }
            }
        }
    }
    Ok(report)
}

/// Where an entry disagrees with what it embeds, or with its document's submission (when
/// the export holds it): a receipt must say what its signed statement says (document,
/// recipient, status), and sender, recipients and digests must match the submission. The
/// one who fetched or signed must be a recipient, or the successor (per `successors`, from
/// the log's `reorganised` entries) of one.
fn disagreements(
    event: &Event,
    submission: Option<&Event>,
    successors: &BTreeMap<String, String>,
) -> Vec<String> {
    let acts_for_a_recipient = |recipients: &[String], actor: &str| {
        recipients
            .iter()
            .any(|r| r == actor || successors.get(r).is_some_and(|s| s == actor))
    };
    let mut out = Vec::new();
    if let Event::Receipt {
        document_id,
        actor,
        sender,
        recipients,
        status,
        receipt,
        ..
    } = event
    {
        match receipt
            .get("receipt")
            .cloned()
            .map(serde_json::from_value::<DeliveryReceipt>)
        {
            Some(Ok(statement)) => {
                if statement.kind != DELIVERY_RECEIPT_TYPE {
                    out.push(format!(
                        "the embedded statement is a {:?}, not a delivery receipt",
                        statement.kind
                    ));
                }
                if statement.document_id != *document_id {
                    out.push(format!(
                        "the entry names document {document_id}, its signed receipt {}",
                        statement.document_id
                    ));
                }
                if statement.recipient != *actor {
                    out.push(format!(
                        "the entry names recipient {actor}, its signed receipt {}",
                        statement.recipient
                    ));
                }
                if statement.status != *status {
                    out.push(format!(
                        "the entry says status {status}, its signed receipt says {}: relabelled",
                        statement.status
                    ));
                }
                if let Some(Event::Submitted {
                    manifest_sha256,
                    payload_sha256,
                    ..
                }) = submission
                {
                    if statement.manifest_sha256 != *manifest_sha256
                        || statement.payload_sha256 != *payload_sha256
                    {
                        out.push(
                            "the signed receipt's digests are not the submitted document's".into(),
                        );
                    }
                }
            }
            Some(Err(e)) => out.push(format!("the embedded receipt is malformed: {e}")),
            None => out.push("the entry embeds no signed receipt".into()),
        }
        if !acts_for_a_recipient(recipients, actor) {
            out.push(format!("{actor} signed a receipt but is not a recipient"));
        }
        out.extend(party_disagreements(sender, recipients, submission));
    }
    if let Event::Delivered {
        actor,
        sender,
        recipients,
        payload_sha256,
        ..
    } = event
    {
        if !acts_for_a_recipient(recipients, actor) {
            out.push(format!("{actor} fetched but is not a recipient"));
        }
        if let Some(Event::Submitted {
            payload_sha256: submitted,
            ..
        }) = submission
        {
            if payload_sha256 != submitted {
                out.push("the payload delivered is not the one submitted".into());
            }
        }
        out.extend(party_disagreements(sender, recipients, submission));
    }
    out
}

fn party_disagreements(
    sender: &str,
    recipients: &[String],
    submission: Option<&Event>,
) -> Option<String> {
    match submission {
        Some(Event::Submitted {
            sender: s,
            recipients: r,
            ..
        }) if s != sender || r != recipients => Some(
            "the entry's sender or recipients are not those of the document's submission".into(),
        ),
        _ => None,
    }
}

fn check_receipt_signature(
    trust: &SigningTrust,
    actor: &str,
    signed: &serde_json::Value,
    time: &str,
) -> Result<(), String> {
    let statement = signed
        .get("receipt")
        .ok_or("the receipt has no statement")?;
    let signature: DocSignature =
        serde_json::from_value(signed.get("signature").cloned().unwrap_or_default())
            .map_err(|e| format!("the receipt's signature is malformed: {e}"))?;
    let bytes = crate::document::manifest::canonical_bytes(statement).map_err(|e| e.to_string())?;
    let when = time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("event time {time:?} is not RFC 3339"))?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        when.unix_timestamp().max(0) as u64,
    ));
    // Judged as of the log's time for the event (the server's signed record of when it
    // took the receipt): a recipient's certificate retired later for a routine reason
    // leaves its old receipts valid. The CRLs must have been current then.
    let signer = signature
        .verify_at(
            trust,
            &bytes,
            JudgedAt::Signed {
                signed: at,
                crls_current_at: at,
            },
        )
        .map_err(|e| format!("the receipt's signature does not verify: {e}"))?;
    let actor_id = OrgId::parse(actor).map_err(|e| format!("receipt actor {actor:?}: {e}"))?;
    // A receipt is the organisation's act: its seal certificate, never a person's.
    crate::document::check_signer(Role::Organization, &signer.cert, &actor_id, "")
        .map_err(|e| format!("the receipt is signed by {}: {e}", signer.cert.identity))
}

/// One line of `audit report`.
#[derive(Clone, Debug, Serialize)]
pub struct ReportRow {
    /// The recipient that has not fetched or acknowledged.
    pub recipient: String,
    /// The document.
    pub document_id: Uuid,
    /// Its sender.
    pub sender: String,
    /// Urgency 0–4.
    pub urgency: u8,
    /// When it was submitted.
    pub submitted_at: String,
    /// When the recipient first fetched it.
    pub fetched_at: Option<String>,
    /// The recipient's latest receipt status (01 counts as not yet acknowledged).
    pub status: Option<String>,
    /// When it was due.
    pub due_at: String,
    /// Past due now.
    pub overdue: bool,
    /// Classification (`thuong`, `mat`, …).
    pub classification: String,
    /// For a classified document, the cipher that sealed it (an uncertified one is marked
    /// in every output).
    pub sealed_with: Option<crate::seal::policy::SealMark>,
    /// The recipient returned the document (02): the reason it gave. Returned documents
    /// always stay in the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returned: Option<String>,
    /// Recalls, updates and replacements linking the document to others, from the log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<crate::api::DocLink>,
}

/// Builds the report from log entries: for each document submitted since `since`, each
/// recipient that has not fetched it, has not acknowledged it beyond "01 arrived", or
/// returned it (02, with its reason).
pub fn report(
    entries: &[Event],
    deadlines: &Deadlines,
    since: Option<time::OffsetDateTime>,
    now: time::OffsetDateTime,
) -> Vec<ReportRow> {
    struct Doc {
        sender: String,
        recipients: Vec<String>,
        urgency: u8,
        classification: String,
        sealed_with: Option<crate::seal::policy::SealMark>,
        submitted: time::OffsetDateTime,
        submitted_at: String,
        deadline: Option<String>,
        fetched: BTreeMap<String, String>,
        status: BTreeMap<String, String>,
        returned: BTreeMap<String, String>,
    }
    let mut links: BTreeMap<Uuid, Vec<crate::api::DocLink>> = BTreeMap::new();
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    };
    let mut docs: BTreeMap<Uuid, Doc> = BTreeMap::new();
    // After a reform, a successor fetches and acknowledges what was sent to the units
    // merged into it; the log's `reorganised` events say who carries on whom, so its acts
    // count for the addressee.
    let mut successors: BTreeMap<String, String> = BTreeMap::new();
    let addressee = |doc: &Doc, actor: &str, successors: &BTreeMap<String, String>| {
        if doc.recipients.iter().any(|r| r == actor) {
            return actor.to_owned();
        }
        doc.recipients
            .iter()
            .find(|r| successors.get(*r).is_some_and(|s| s == actor))
            .cloned()
            .unwrap_or_else(|| actor.to_owned())
    };
    for event in entries {
        match event {
            Event::Reorganised {
                successors: after, ..
            } => {
                successors.extend(after.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            Event::Submitted {
                time,
                document_id,
                sender,
                recipients,
                urgency,
                deadline,
                classification,
                sealed_with,
                business,
                ..
            } => {
                if let Some(b) = business {
                    let (forward, backward) = match b.kind.as_str() {
                        "recall" => ("recalls", "recalled_by"),
                        "update" => ("updates", "updated_by"),
                        _ => ("replaces", "replaced_by"),
                    };
                    links
                        .entry(*document_id)
                        .or_default()
                        .push(crate::api::DocLink {
                            relation: forward.to_owned(),
                            id: b.target,
                        });
                    links
                        .entry(b.target)
                        .or_default()
                        .push(crate::api::DocLink {
                            relation: backward.to_owned(),
                            id: *document_id,
                        });
                }
                if let Some(t) = parse(time) {
                    docs.insert(
                        *document_id,
                        Doc {
                            sender: sender.clone(),
                            recipients: recipients.clone(),
                            urgency: *urgency,
                            classification: classification.clone(),
                            sealed_with: sealed_with.clone(),
                            submitted: t,
                            submitted_at: time.clone(),
                            deadline: deadline.clone(),
                            fetched: BTreeMap::new(),
                            status: BTreeMap::new(),
                            returned: BTreeMap::new(),
                        },
                    );
                }
            }
            Event::Delivered {
                time,
                document_id,
                actor,
                ..
            } => {
                if let Some(doc) = docs.get_mut(document_id) {
                    let who = addressee(doc, actor, &successors);
                    doc.fetched.entry(who).or_insert_with(|| time.clone());
                }
            }
            Event::Receipt {
                document_id,
                actor,
                status,
                receipt,
                ..
            } => {
                if let Some(doc) = docs.get_mut(document_id) {
                    let who = addressee(doc, actor, &successors);
                    if status == "02" {
                        let reason = receipt["receipt"]["note"].as_str().unwrap_or_default();
                        doc.returned.insert(who.clone(), reason.to_owned());
                    }
                    doc.status.insert(who, status.clone());
                }
            }
            _ => {}
        }
    }
    let mut rows = Vec::new();
    for (id, doc) in docs {
        if since.is_some_and(|s| doc.submitted < s) {
            continue;
        }
        let due = match (&doc.deadline, doc.urgency) {
            (Some(d), 4) => parse(d).unwrap_or(doc.submitted),
            _ => {
                let hours = i64::try_from(deadlines.hours(doc.urgency)).unwrap_or(i64::MAX / 3600);
                doc.submitted
                    .checked_add(time::Duration::hours(hours.min(i64::MAX / 3600)))
                    .unwrap_or(doc.submitted)
            }
        };
        let due_at = due
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        for recipient in &doc.recipients {
            let fetched_at = doc.fetched.get(recipient).cloned();
            let status = doc.status.get(recipient).cloned();
            let acknowledged = status.as_deref().is_some_and(|s| s != "01");
            let returned = doc.returned.get(recipient).cloned();
            if fetched_at.is_some() && acknowledged && returned.is_none() {
                continue;
            }
            rows.push(ReportRow {
                recipient: recipient.clone(),
                document_id: id,
                sender: doc.sender.clone(),
                urgency: doc.urgency,
                submitted_at: doc.submitted_at.clone(),
                fetched_at,
                status,
                due_at: due_at.clone(),
                overdue: now > due,
                classification: doc.classification.clone(),
                sealed_with: doc.sealed_with.clone(),
                returned,
                links: links.get(&id).cloned().unwrap_or_default(),
            });
        }
    }
    rows.sort_by(|a, b| {
        a.recipient
            .cmp(&b.recipient)
            .then(a.submitted_at.cmp(&b.submitted_at))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> time::OffsetDateTime {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn entries_must_agree_with_their_signed_receipt_and_their_submission() {
        let id = Uuid::now_v7();
        let submitted = Event::Submitted {
            time: "2026-11-26T08:00:00Z".into(),
            document_id: id,
            actor: "hn/cm".into(),
            sender: "hn/cm".into(),
            recipients: vec!["a".into(), "b".into()],
            classification: "thuong".into(),
            urgency: 1,
            deadline: None,
            manifest_sha256: "m".into(),
            payload_sha256: "p".into(),
            payload_size: 1,
            sealed_with: None,
            business: None,
        };
        let statement = |status: &str, recipient: &str| {
            serde_json::json!({"receipt": {
                "type": DELIVERY_RECEIPT_TYPE, "document_id": id, "recipient": recipient,
                "manifest_sha256": "m", "payload_sha256": "p", "status": status,
                "time": "2026-11-26T09:00:00Z", "note": "",
            }, "signature": {}})
        };
        let receipt = |status: &str, signed: serde_json::Value| Event::Receipt {
            time: "2026-11-26T09:00:01Z".into(),
            document_id: id,
            actor: "a".into(),
            sender: "hn/cm".into(),
            recipients: vec!["a".into(), "b".into()],
            status: status.into(),
            receipt: signed,
        };
        let honest = receipt("02", statement("02", "a"));
        assert!(disagreements(&honest, Some(&submitted), &BTreeMap::new()).is_empty());
        let relabelled =
            disagreements(&receipt("03", statement("02", "a")), None, &BTreeMap::new());
        assert!(relabelled[0].contains("relabelled"), "{relabelled:?}");
        let other = disagreements(&receipt("02", statement("02", "b")), None, &BTreeMap::new());
        assert!(other[0].contains("recipient a"), "{other:?}");
        let bare = disagreements(
            &receipt("02", serde_json::Value::Null),
            None,
            &BTreeMap::new(),
        );
        assert!(bare[0].contains("embeds no signed receipt"), "{bare:?}");
        let delivered = |payload: &str, recipients: Vec<String>| Event::Delivered {
            time: "2026-11-26T09:00:00Z".into(),
            document_id: id,
            actor: "a".into(),
            sender: "hn/cm".into(),
            recipients,
            payload_sha256: payload.into(),
        };
        let both = vec!["a".to_owned(), "b".to_owned()];
        assert!(
            disagreements(
                &delivered("p", both.clone()),
                Some(&submitted),
                &BTreeMap::new()
            )
            .is_empty()
        );
        assert_eq!(
            disagreements(&delivered("q", both), Some(&submitted), &BTreeMap::new()).len(),
            1
        );
        assert_eq!(
            disagreements(
                &delivered("p", vec!["a".into()]),
                Some(&submitted),
                &BTreeMap::new()
            )
            .len(),
            1
        );
        assert_eq!(
            disagreements(&delivered("p", vec!["b".into()]), None, &BTreeMap::new()).len(),
            1
        );
    }

    #[test]
    fn report_finds_unfetched_and_unacknowledged_and_applies_deadlines() {
        let id = Uuid::now_v7();
        let submitted = |urgency: u8| Event::Submitted {
            time: "2026-11-26T08:00:00Z".into(),
            document_id: id,
            actor: "hn/cm".into(),
            sender: "hn/cm".into(),
            recipients: vec!["a".into(), "b".into(), "c".into()],
            classification: "thuong".into(),
            sealed_with: None,
            business: None,
            urgency,
            deadline: None,
            manifest_sha256: String::new(),
            payload_sha256: String::new(),
            payload_size: 0,
        };
        let delivered = |who: &str| Event::Delivered {
            time: "2026-11-26T09:00:00Z".into(),
            document_id: id,
            actor: who.into(),
            sender: "hn/cm".into(),
            recipients: vec![],
            payload_sha256: String::new(),
        };
        let receipt = |who: &str, status: &str| Event::Receipt {
            time: "2026-11-26T09:30:00Z".into(),
            document_id: id,
            actor: who.into(),
            sender: "hn/cm".into(),
            recipients: vec![],
            status: status.into(),
            receipt: serde_json::Value::Null,
        };
        // a: fetched and accepted; b: fetched, only "arrived"; c: nothing.
        let events = vec![
            submitted(3),
            delivered("a"),
            receipt("a", "03"),
            delivered("b"),
            receipt("b", "01"),
        ];
        let rows = report(
            &events,
            &Deadlines::default(),
            None,
            t("2026-11-26T10:30:00Z"),
        );
        assert_eq!(
            rows.iter()
                .map(|r| r.recipient.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert!(
            rows.iter().all(|r| r.overdue),
            "hỏa tốc is due within 2 hours"
        );
        let rows = report(
            &events,
            &Deadlines::default(),
            None,
            t("2026-11-26T09:59:00Z"),
        );
        assert!(rows.iter().all(|r| !r.overdue));
        let mut events = events;
        events[0] = submitted(0);
        let rows = report(
            &events,
            &Deadlines::default(),
            None,
            t("2026-11-27T09:00:00Z"),
        );
        assert!(rows.iter().all(|r| !r.overdue), "thường has 72 hours");
        let rows = report(
            &events,
            &Deadlines::default(),
            Some(t("2026-11-27T00:00:00Z")),
            t("2026-11-27T09:00:00Z"),
        );
        assert!(rows.is_empty());
    }
}
