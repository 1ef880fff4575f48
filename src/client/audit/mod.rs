//! The security officer's tools: check that the log only grows, prove a document's
//! events, export what the officer may see, verify an export offline, report overdue
//! deliveries.
//!
//! Trust comes from the profile alone: the server's keys pinned on first use, the CA
//! anchor, and the last checkpoint remembered in the profile's state directory. A new
//! checkpoint that is smaller than the remembered one, or not consistent with it, means
//! the server's log was rolled back or forked; that is reported as an error.
//! The parts: `online` (the calls that talk to the server), `offline` (verifying an
//! export with nothing but the profile) and [`report`] (overdue deliveries).

mod offline;
mod online;
mod report;

pub use offline::{read_export, verify_export};
pub use report::{ReportRow, report};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tlog_tiles::tlog::Hash;

use super::ClientError;
use crate::api::HiddenEntry;
use crate::ledger::{Event, VerifiedCheckpoint};

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
