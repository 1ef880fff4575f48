//! Verifying an audit export offline, with nothing but the profile: the pinned log key,
//! the CA anchor and the CRLs in the export.

use std::collections::BTreeMap;
use std::path::Path;

use uuid::Uuid;

use super::{
    EXPORT_TYPE, EXPORT_TYPE_V1, Export, ExportEntry, REMEMBERED, VerifyError, VerifyReport,
    decode_hash, decode_proof,
};
use crate::api::{DELIVERY_RECEIPT_TYPE, DeliveryReceipt, HiddenEntry};
use crate::client::ClientError;
use crate::client::state::pinned_log_verifier_key;
use crate::ledger::{self, Event, checkpoint};
use crate::pki::signing::SigningTrust;

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

    let crl_dir = tempfile::tempdir().map_err(ClientError::TempFile)?;
    let crl_path = crl_dir.path().join("crls.pem");
    std::fs::write(&crl_path, export.crls.concat()).map_err(ClientError::TempFile)?;
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
    crate::document::receipt::verify_recorded(trust, actor, signed, time).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
