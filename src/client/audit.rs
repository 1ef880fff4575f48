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
use crate::api::{LogEntries, LogProof};
use crate::config::Deadlines;
use crate::document::DocSignature;
use crate::ledger::{self, Event, VerifiedCheckpoint, checkpoint};
use crate::pki::Identity;
use crate::pki::pem::write_public;
use crate::pki::signing::SigningTrust;

/// `type` of an audit export file.
pub const EXPORT_TYPE: &str = "congvan.audit-export/v1";
const REMEMBERED: &str = "checkpoint.txt";

fn trust_err(msg: impl Into<String>) -> ClientError {
    ClientError::Trust(msg.into())
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

/// An export file: everything needed to verify offline.
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
    /// The CA-signed CRLs, for checking the receipts' signatures.
    pub crls: Vec<String>,
    /// The entries the officer may see, each with its inclusion proof.
    pub entries: Vec<ExportEntry>,
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
    /// Entries checked.
    pub entries: usize,
    /// Receipt signatures checked.
    pub receipts: usize,
    /// Whether the export held the whole log, so the root was recomputed from scratch.
    pub recomputed_root: bool,
    /// Problems, the first bad index first.
    pub problems: Vec<String>,
    /// The first index whose entry does not verify.
    pub first_bad_index: Option<u64>,
}

fn decode_proof(proof: &[String]) -> Result<Vec<Hash>, ClientError> {
    proof
        .iter()
        .map(|p| {
            let bytes = B64
                .decode(p)
                .map_err(|e| trust_err(format!("proof: {e}")))?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(Hash)
                .map_err(|_| trust_err("proof hash is not 32 bytes"))
        })
        .collect()
}

impl Client {
    /// Fetches the current checkpoint and verifies its signature with the pinned key.
    pub async fn fetch_checkpoint(&self) -> Result<VerifiedCheckpoint, ClientError> {
        let vkey = self.log_verifier_key().await?;
        let note = self.get_text("/v1/log/checkpoint").await?;
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
                let proof: LogProof = self
                    .get_json(&format!(
                        "/v1/log/proofs/consistency?from={}&to={}",
                        prev.size, current.size
                    ))
                    .await?;
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
        let mut out = Vec::new();
        let mut start = 0;
        while start < size {
            let page: LogEntries = self
                .get_json(&format!("/v1/log/entries?start={start}&end={size}"))
                .await?;
            out.extend(page.entries);
            match page.next_start {
                Some(next) if next > start => start = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// `audit prove ID`: the document's events, each proved included in the current
    /// checkpoint (which is also checked for consistency with the remembered one).
    pub async fn prove_document(
        &self,
        id: &Uuid,
    ) -> Result<(CheckpointCheck, Vec<ProvedEvent>), ClientError> {
        let check = self.audit_checkpoint().await?;
        let cp = &check.current;
        let page: LogEntries = self
            .get_json(&format!("/v1/log/entries?document={id}"))
            .await?;
        let mut out = Vec::new();
        for entry in page.entries {
            if entry.index >= cp.size {
                continue;
            }
            let proof: LogProof = self
                .get_json(&format!(
                    "/v1/log/proofs/inclusion?index={}&size={}",
                    entry.index, cp.size
                ))
                .await?;
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

    /// `audit export`: the checkpoint, every visible entry with its inclusion proof, and
    /// the CRLs, into one file.
    pub async fn export(&self, out: &Path) -> Result<Export, ClientError> {
        let check = self.audit_checkpoint().await?;
        let cp = check.current;
        let crls: crate::api::CrlsResponse = self.get_json("/v1/crls").await?;
        let mut entries = Vec::new();
        for entry in self.visible_entries(cp.size).await? {
            let proof: LogProof = self
                .get_json(&format!(
                    "/v1/log/proofs/inclusion?index={}&size={}",
                    entry.index, cp.size
                ))
                .await?;
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
            crls: crls.crls,
            entries,
        };
        let text =
            serde_json::to_vec_pretty(&export).map_err(|e| ClientError::Input(e.to_string()))?;
        write_public(out, &text)?;
        Ok(export)
    }
}

/// `audit verify FILE`, offline: the checkpoint's signature with the pinned key, every
/// entry's inclusion proof (naming the first bad index), every receipt's signature against
/// the profile's anchor and the exported CRLs, and, when the export holds the whole log,
/// the root recomputed from the leaves.
pub fn verify_export(
    export_path: &Path,
    profile: &crate::config::ClientProfile,
) -> Result<VerifyReport, ClientError> {
    let text = std::fs::read(export_path)
        .map_err(|e| ClientError::Input(format!("{}: {e}", export_path.display())))?;
    let export: Export = serde_json::from_slice(&text)
        .map_err(|e| ClientError::Input(format!("{}: {e}", export_path.display())))?;
    if export.kind != EXPORT_TYPE {
        return Err(ClientError::Input(format!("not a {EXPORT_TYPE} file")));
    }
    let vkey = pinned_log_verifier_key(&profile.state_dir)?;
    let cp = checkpoint::verify(&export.checkpoint, &vkey).map_err(|e| trust_err(e.to_string()))?;

    let crl_dir = tempfile::tempdir().map_err(|e| ClientError::Input(e.to_string()))?;
    let crl_path = crl_dir.path().join("crls.pem");
    std::fs::write(&crl_path, export.crls.concat())
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let trust = SigningTrust::load(std::slice::from_ref(&profile.ca), &[crl_path])?;

    let mut report = VerifyReport {
        size: cp.size,
        ..VerifyReport::default()
    };
    let bad = |report: &mut VerifyReport, index: u64, problem: String| {
        if report.first_bad_index.is_none_or(|i| index < i) {
            report.first_bad_index = Some(index);
        }
        report.problems.push(format!("entry {index}: {problem}"));
    };
    let mut previous = None;
    for entry in &export.entries {
        report.entries += 1;
        if previous.is_some_and(|p| entry.index <= p) {
            bad(&mut report, entry.index, "entries are out of order".into());
        }
        previous = Some(entry.index);
        let leaf = entry.leaf.get().as_bytes();
        let included = decode_proof(&entry.proof)
            .map(|proof| ledger::check_inclusion(&proof, cp.size, cp.root, entry.index, leaf))
            .unwrap_or(false);
        if !included {
            bad(
                &mut report,
                entry.index,
                "not in the log the checkpoint commits to: altered or forged".into(),
            );
            continue;
        }
        let event = match Event::from_leaf(leaf) {
            Ok(e) => e,
            Err(e) => {
                bad(&mut report, entry.index, format!("not an event: {e}"));
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
                bad(&mut report, entry.index, problem);
            }
        }
    }
    let whole = export.entries.len() as u64 == cp.size
        && export
            .entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == i as u64);
    if whole {
        report.recomputed_root = true;
        let leaves: Vec<Vec<u8>> = export
            .entries
            .iter()
            .map(|e| e.leaf.get().as_bytes().to_vec())
            .collect();
        if ledger::root_of_leaves(&leaves) != cp.root {
            report
                .problems
                .push("the root recomputed from every leaf differs from the checkpoint's".into());
        }
    }
    Ok(report)
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
    let signer = signature
        .verify(trust, &bytes, at)
        .map_err(|e| format!("the receipt's signature does not verify: {e}"))?;
    match &signer.cert.identity {
        Identity::Org(id) if id.as_str() == actor => Ok(()),
        other => Err(format!("the receipt is signed by {other}, not by {actor}")),
    }
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
}

/// Builds the report from log entries: for each document submitted since `since`, each
/// recipient that has not fetched it, or has not acknowledged it beyond "01 arrived".
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
    }
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
                ..
            } => {
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
                ..
            } => {
                if let Some(doc) = docs.get_mut(document_id) {
                    let who = addressee(doc, actor, &successors);
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
            if fetched_at.is_some() && acknowledged {
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
