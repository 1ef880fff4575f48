//! The security officer's calls to the server: fetch and check checkpoints, prove a
//! document's events, export a range of the log.

use std::path::Path;

use uuid::Uuid;

use super::{
    CheckpointCheck, EXPORT_TYPE, Export, ExportEntry, ProvedEvent, REMEMBERED, decode_proof,
    trust_err,
};
use crate::api::{HiddenEntry, LogEntries, LogProof, RangeProof};
use crate::client::{Client, ClientError};
use crate::ledger::{self, Event, VerifiedCheckpoint, checkpoint};
use crate::pki::pem::write_public;

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
            return Err(ClientError::RangeOutsideLog {
                start,
                end,
                size: cp.size,
            });
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
        let text = serde_json::to_vec_pretty(&export).map_err(ClientError::Encode)?;
        write_public(out, &text)?;
        Ok(export)
    }
}
