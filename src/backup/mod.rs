//! `congvan backup`, `backup verify` and `restore`: the operator's side of online backups.
//!
//! A backup directory holds a chain of *sets*, each taken from the running server through
//! its local socket (`server::admin`) at one consistent cut (`store::snapshot`):
//!
//! ```text
//! DIR/sets/000001/set.json        what the set holds, written last
//!                 records.jsonl   log leaves and store records (JSON lines)
//!                 files/keys/…    the server's signing keys (0600)
//!                 config/…        the configuration files and registered keys
//! DIR/sets/000002/…               an incremental set: only what changed since 000001
//! DIR/blobs/sha256/ab/…           payload files, by digest, shared by all sets
//! ```
//!
//! A set is written as `NNNNNN.partial` and renamed into place only when everything in it
//! is on disk, so an interrupted backup (a killed process, a full disk, a server that went
//! away) leaves a `.partial` set that `backup verify` and `restore` refuse as incomplete
//! and the next `backup` discards and takes again. Blob files are written under a
//! temporary name, checked against their digest, then renamed, so a blob present under
//! its name is complete, and an interrupted backup's blobs are reused.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::ledger;
use crate::pki::identity::hex;
use crate::store::StoreError;
use crate::store::backup::{CheckpointRef, Item};

mod restore;
mod take;
mod verify;

pub use restore::{RestoreReport, restore};
pub use take::{take, take_configured};
pub use verify::{VerifyReport, verify};

/// The format marker of `set.json`.
pub const FORMAT: &str = "congvan-backup/v1";
/// Longest line of a backup stream or records file (a blob chunk in base64 and more).
const LINE_BYTES_MAX: usize = 4 << 20;

/// Errors of backup, verification and restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The server's backup socket could not be reached.
    #[error(
        "cannot reach the running server's backup socket {socket}: {source} (is `congvan serve` running with this data directory, and are you its user?)"
    )]
    Connect {
        /// The socket.
        socket: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The server refused or failed the backup.
    #[error("the server could not take the backup: {0}")]
    Server(String),
    /// The backup directory holds an interrupted set.
    #[error("{0}")]
    Incomplete(String),
    /// The backup directory is damaged or does not agree with itself.
    #[error("the backup does not verify: {0}")]
    Invalid(String),
    /// The restore target is not a new, empty directory.
    #[error("{0} exists and is not empty: restore into a new directory")]
    TargetNotEmpty(String),
    /// The restored store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BackupError {
    /// The command's exit code (README, "exit codes"): a backup that does not verify or
    /// is incomplete is 3, an unreachable server 6, a server that refused 7, anything
    /// else 1.
    pub fn exit_code(&self) -> u8 {
        use crate::client::audit::exit;
        match self {
            BackupError::Invalid(_) | BackupError::Incomplete(_) => exit::NOT_VERIFIED,
            BackupError::Connect { .. } => exit::UNREACHABLE,
            BackupError::Server(_) => exit::REFUSED,
            _ => exit::FAILED,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn invalid(message: impl Into<String>) -> BackupError {
    BackupError::Invalid(message.into())
}

/// A payload file named in a set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// `set.json`: what one set holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetManifest {
    /// [`FORMAT`].
    pub format: String,
    /// 1, 2, … in the directory.
    pub sequence: u64,
    /// When it was taken (RFC 3339).
    pub created_at: String,
    /// The first log entry it holds.
    pub log_from: u64,
    /// The log's size at the cut.
    pub log_to: u64,
    /// The log's origin (the checkpoint key's name).
    pub log_origin: String,
    /// The latest checkpoint of at most `log_to` entries.
    pub checkpoint: Option<CheckpointRef>,
    /// SHA-256 of `records.jsonl`.
    pub records_sha256: String,
    /// Lines of `records.jsonl` that are leaves.
    pub leaves: u64,
    /// Lines that are records.
    pub records: u64,
    /// Payload files this set added.
    pub blobs: Vec<BlobRef>,
    /// Configuration files copied: stored name → original path.
    pub config_files: BTreeMap<String, String>,
    /// SHA-256 of the previous set's `set.json` (empty for the first).
    pub previous_set_sha256: String,
}

/// Progress of a running backup.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Log entries received.
    pub leaves: u64,
    /// Records received.
    pub records: u64,
    /// Payload files received or already present.
    pub blobs: u64,
    /// Of those, already present in the backup directory (not sent again).
    pub blobs_present: u64,
    /// Bytes received.
    pub blob_bytes: u64,
}

/// What a finished backup did.
#[derive(Clone, Debug)]
pub struct BackupSummary {
    /// The set written.
    pub set: PathBuf,
    /// Its manifest.
    pub manifest: SetManifest,
    /// Whether it was the first (full) set.
    pub full: bool,
    /// Interrupted sets discarded first.
    pub discarded: Vec<String>,
    /// Bytes of payload files received.
    pub blob_bytes: u64,
    /// Payload files named but already in the directory (not sent again).
    pub blobs_present: u64,
    /// How long the server held writers back to mark the cut, in microseconds.
    pub cut_us: u64,
}

fn sets_dir(dir: &Path) -> PathBuf {
    dir.join("sets")
}

fn set_name(sequence: u64) -> String {
    format!("{sequence:06}")
}

/// The complete sets of a directory in order (sequence, path).
type Sets = Vec<(u64, PathBuf)>;

/// The complete sets in order, and the names of interrupted ones.
fn list_sets(dir: &Path) -> Result<(Sets, Vec<String>), BackupError> {
    let sets = sets_dir(dir);
    let mut complete = Vec::new();
    let mut partial = Vec::new();
    let entries = match fs::read_dir(&sets) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((complete, partial)),
        Err(e) => return Err(io(&sets)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(&sets))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.parse::<u64>() {
            Ok(n) if name.len() == 6 && entry.path().join("set.json").is_file() => {
                complete.push((n, entry.path()))
            }
            _ => partial.push(name),
        }
    }
    complete.sort();
    partial.sort();
    Ok((complete, partial))
}

fn read_manifest(set: &Path) -> Result<(SetManifest, String), BackupError> {
    let path = set.join("set.json");
    let bytes = fs::read(&path).map_err(io(&path))?;
    let manifest: SetManifest =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    if manifest.format != FORMAT {
        return Err(invalid(format!(
            "{}: format {:?}, expected {FORMAT:?}",
            path.display(),
            manifest.format
        )));
    }
    Ok((manifest, sha256_hex(&bytes)))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

fn create_private_dir(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io(path))
}

fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>, BackupError> {
    B64.decode(text)
        .map_err(|e| invalid(format!("{what}: bad base64: {e}")))
}

/// A file name the server may give inside a set: `keys/<name>`, one plain component.
fn safe_file_name(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("keys/")?;
    let ok = !rest.is_empty()
        && rest != "."
        && rest != ".."
        && !rest.contains('/')
        && !rest.contains('\0');
    ok.then_some(rest)
}

/// The root of a set's checkpoint, verified with the log key kept in that set.
fn checkpoint_root(set: &Path, origin: &str, c: &CheckpointRef) -> Result<String, BackupError> {
    let public =
        crate::notary::public_key_in(&set.join("files/keys"), crate::notary::KeyPurpose::Log)
            .map_err(|e| invalid(e.to_string()))?;
    let vkey = ledger::verifier_key(origin, &public);
    let verified = ledger::checkpoint::verify(&c.note, &vkey)
        .map_err(|e| invalid(format!("the latest set's checkpoint does not verify: {e}")))?;
    Ok(hex(&verified.root.0))
}

fn finish_blob(writer: crate::store::BlobWriter, r: &BlobRef) -> Result<(), BackupError> {
    let verified = writer
        .finish(&r.sha256, r.size)
        .map_err(|e| BackupError::Server(format!("blob {}: {e}", r.sha256)))?;
    verified.commit()?;
    Ok(())
}

/// One line of `records.jsonl`, decoded.
enum Record {
    Leaf(u64, Vec<u8>),
    Put(String, Vec<u8>, Vec<u8>),
}

/// Reads a set's records file, checking its digest against the manifest as it goes; the
/// digest is compared once the file ends (`each` has seen every line by then, so callers
/// must not act irreversibly on a set before [`verify`] passed).
fn read_records(
    set: &Path,
    manifest: &SetManifest,
    each: &mut dyn FnMut(Record) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let path = set.join("records.jsonl");
    let file = fs::File::open(&path).map_err(io(&path))?;
    let mut reader = BufReader::new(file);
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut line = Vec::new();
    let (mut leaves, mut records) = (0u64, 0u64);
    loop {
        line.clear();
        let n = (&mut reader)
            .take(LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut line)
            .map_err(io(&path))?;
        if n == 0 {
            break;
        }
        hash.update(&line);
        let item: Item = serde_json::from_slice(&line)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        match item {
            Item::Leaf { index, leaf } => {
                leaves += 1;
                each(Record::Leaf(index, decode_b64(&leaf, "leaf")?))?;
            }
            Item::Put { tree, key, value } => {
                records += 1;
                let key = decode_b64(&key, "key")?;
                let value = decode_b64(&value, "value")?;
                each(Record::Put(tree, key, value))?;
            }
            _ => return Err(invalid(format!("{}: unexpected line", path.display()))),
        }
    }
    if hex(hash.finish().as_ref()) != manifest.records_sha256 {
        return Err(invalid(format!(
            "{} does not have the digest set.json records: it was changed or truncated",
            path.display()
        )));
    }
    if leaves != manifest.leaves || records != manifest.records {
        return Err(invalid(format!(
            "{} holds {leaves} leaves and {records} records, set.json says {} and {}",
            path.display(),
            manifest.leaves,
            manifest.records
        )));
    }
    Ok(())
}
