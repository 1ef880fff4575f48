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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tlog_tiles::tlog::{self, Hash};
use uuid::Uuid;

use crate::ledger::{self, Event};
use crate::pki::identity::hex;
use crate::store::backup::{CheckpointRef, Item, Since, Want};
use crate::store::{BlobStore, DocState, DocumentRecord, Store, StoreError};

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

/// Takes a backup of the running server whose backup socket is `socket` into `dir`: a
/// full set when `dir` has none, else an incremental one after the latest. `config_files`
/// are copied into the set. `progress` is called now and then while data arrives.
pub fn take(
    socket: &Path,
    dir: &Path,
    config_files: &[PathBuf],
    progress: &mut dyn FnMut(&Progress),
) -> Result<BackupSummary, BackupError> {
    create_private_dir(&sets_dir(dir))?;
    // One backup into a directory at a time: a second one would discard the first's
    // unfinished set as if it had been interrupted. The lock ends with the process, so a
    // killed backup never leaves it held.
    let lock_path = dir.join("lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    fs2::FileExt::try_lock_exclusive(&lock).map_err(|_| {
        BackupError::Server(format!(
            "another backup into {} is running; wait for it to finish",
            dir.display()
        ))
    })?;
    let (complete, partial) = list_sets(dir)?;
    // An interrupted set is discarded: the backup is taken again from the last good one.
    for name in &partial {
        let path = sets_dir(dir).join(name);
        fs::remove_dir_all(&path).map_err(io(&path))?;
    }
    let previous = match complete.last() {
        Some((_, path)) => Some(read_manifest(path)?),
        None => None,
    };
    let since = match &previous {
        None => Since::default(),
        Some((m, _)) => Since {
            log_size: m.log_to,
            checkpoint_size: m.checkpoint.as_ref().map_or(0, |c| c.size),
            checkpoint_root: match (&m.checkpoint, complete.last()) {
                (Some(c), Some((_, path))) => Some(checkpoint_root(path, &m.log_origin, c)?),
                _ => None,
            },
        },
    };
    let previous_origin = previous.as_ref().map(|(m, _)| m.log_origin.clone());
    let sequence = previous.as_ref().map_or(1, |(m, _)| m.sequence + 1);
    let partial_dir = sets_dir(dir).join(format!("{}.partial", set_name(sequence)));
    create_private_dir(&partial_dir)?;
    let result = take_set(
        socket,
        dir,
        &partial_dir,
        sequence,
        since,
        previous_origin,
        previous.map(|(_, h)| h).unwrap_or_default(),
        config_files,
        progress,
    );
    match result {
        Ok(mut summary) => {
            summary.discarded = partial;
            Ok(summary)
        }
        Err(e) => {
            // A backup that failed cleanly leaves the directory as it was, so the sets
            // before it still verify; only a killed one leaves a `.partial` set behind.
            let _ = fs::remove_dir_all(&partial_dir);
            Err(e)
        }
    }
}

/// Receives one set into `partial_dir` and renames it into place.
#[allow(
    clippy::too_many_arguments,
    reason = "one private step of `take`, called once"
)]
fn take_set(
    socket: &Path,
    dir: &Path,
    partial_dir: &Path,
    sequence: u64,
    since: Since,
    previous_origin: Option<String>,
    previous_set_sha256: String,
    config_files: &[PathBuf],
    progress: &mut dyn FnMut(&Progress),
) -> Result<BackupSummary, BackupError> {
    let blobs = BlobStore::open(dir)?;
    // Configuration and registered keys, as the operator's files are now (first,
    // so that an unreadable one fails the backup before anything is transferred).
    let mut config_map = BTreeMap::new();
    for (i, path) in config_files.iter().enumerate() {
        let bytes = fs::read(path).map_err(io(path))?;
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let stored = format!("{i:03}-{base}");
        write_private(&partial_dir.join("config").join(&stored), &bytes)?;
        config_map.insert(stored, path.display().to_string());
    }

    let stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|source| BackupError::Connect {
            socket: socket.display().to_string(),
            source,
        })?;
    let mut request = serde_json::to_vec(&since).map_err(|e| invalid(e.to_string()))?;
    request.push(b'\n');
    (&stream).write_all(&request).map_err(io(socket))?;
    let mut reader = BufReader::new(&stream);

    let records_path = partial_dir.join("records.jsonl");
    let mut records = BufWriter::new(fs::File::create(&records_path).map_err(io(&records_path))?);
    let mut records_hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut progress_now = Progress::default();
    let mut last_report = std::time::Instant::now();
    let mut begin: Option<(u64, u64, String, Option<CheckpointRef>)> = None;
    let mut blob: Option<(crate::store::BlobWriter, BlobRef)> = None;
    let mut blob_list = Vec::new();
    let mut files_written = HashSet::new();
    let mut line = Vec::new();
    let (end, cut_us) = loop {
        line.clear();
        let n = match (&mut reader)
            .take(LINE_BYTES_MAX as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            // A server that stops (or is killed) mid-stream resets the socket: the same
            // incomplete backup as a clean end of stream.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => return Err(io(socket)(e)),
        };
        if n == 0 || line.last() != Some(&b'\n') {
            return Err(BackupError::Server(
                "the server closed the connection before the backup was complete".into(),
            ));
        }
        let item: Item = serde_json::from_slice(&line)
            .map_err(|e| BackupError::Server(format!("unreadable answer: {e}")))?;
        // A blob ends where the next item that is not a chunk begins.
        if !matches!(item, Item::Chunk { .. }) {
            if let Some((writer, r)) = blob.take() {
                finish_blob(writer, &r)?;
                blob_list.push(r);
            }
        }
        match item {
            Item::Begin {
                log_from,
                log_to,
                log_origin,
                checkpoint,
            } => {
                if previous_origin.as_ref().is_some_and(|o| *o != log_origin) {
                    return Err(BackupError::Server(format!(
                        "this server's log is {log_origin:?} but the backup directory holds \
                         {:?}: back up into a new directory",
                        previous_origin.unwrap_or_default()
                    )));
                }
                if log_from != since.log_size || begin.is_some() {
                    return Err(BackupError::Server(format!(
                        "the server began at log entry {log_from}, not {}",
                        since.log_size
                    )));
                }
                begin = Some((log_from, log_to, log_origin, checkpoint));
            }
            Item::Leaf { .. } | Item::Put { .. } => {
                if begin.is_none() {
                    return Err(BackupError::Server("data before the cut".into()));
                }
                if matches!(item, Item::Leaf { .. }) {
                    progress_now.leaves += 1;
                } else {
                    progress_now.records += 1;
                }
                records.write_all(&line).map_err(io(&records_path))?;
                records_hash.update(&line);
            }
            Item::File { name, data } => {
                let Some(file) = safe_file_name(&name) else {
                    return Err(BackupError::Server(format!(
                        "unexpected file name {name:?}"
                    )));
                };
                if !files_written.insert(file.to_owned()) {
                    return Err(BackupError::Server(format!("file {name:?} sent twice")));
                }
                let bytes = decode_b64(&data, &name)?;
                write_private(&partial_dir.join("files/keys").join(file), &bytes)?;
            }
            Item::Blob { sha256, size } => {
                if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(BackupError::Server(format!("bad blob name {sha256:?}")));
                }
                // A file is under its digest only once it was checked against it, so one
                // that is there need not travel again (an earlier set, or an interrupted
                // backup, brought it).
                let have = fs::metadata(blobs.path(&sha256)).is_ok_and(|m| m.len() == size);
                let mut answer = serde_json::to_vec(&Want { want: !have })
                    .map_err(|e| invalid(e.to_string()))?;
                answer.push(b'\n');
                (&stream).write_all(&answer).map_err(io(socket))?;
                if have {
                    progress_now.blobs_present += 1;
                    blob_list.push(BlobRef { sha256, size });
                } else {
                    blob = Some((blobs.writer()?, BlobRef { sha256, size }));
                }
            }
            Item::Chunk { data } => {
                let Some((writer, _)) = blob.as_mut() else {
                    return Err(BackupError::Server("a chunk outside a blob".into()));
                };
                let bytes = decode_b64(&data, "blob chunk")?;
                writer.write(&bytes)?;
                progress_now.blob_bytes += bytes.len() as u64;
            }
            Item::End {
                leaves,
                records: count,
                blobs: blob_count,
                cut_us,
                ..
            } => {
                if leaves != progress_now.leaves
                    || count != progress_now.records
                    || blob_count != blob_list.len() as u64
                {
                    return Err(BackupError::Server(
                        "the counts at the end do not match what arrived".into(),
                    ));
                }
                break (begin, cut_us);
            }
            Item::Error { message } => return Err(BackupError::Server(message)),
        }
        progress_now.blobs = blob_list.len() as u64;
        if last_report.elapsed() >= std::time::Duration::from_secs(1) {
            progress(&progress_now);
            last_report = std::time::Instant::now();
        }
    };
    let Some((log_from, log_to, log_origin, checkpoint)) = end else {
        return Err(BackupError::Server("no cut was announced".into()));
    };
    let file = records
        .into_inner()
        .map_err(|e| io(&records_path)(e.into_error()))?;
    file.sync_all().map_err(io(&records_path))?;
    drop(file);

    let manifest = SetManifest {
        format: FORMAT.into(),
        sequence,
        created_at: crate::api::now_rfc3339(),
        log_from,
        log_to,
        log_origin,
        checkpoint,
        records_sha256: hex(records_hash.finish().as_ref()),
        leaves: progress_now.leaves,
        records: progress_now.records,
        blobs: blob_list,
        config_files: config_map,
        previous_set_sha256,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| invalid(e.to_string()))?;
    write_private(&partial_dir.join("set.json"), &json)?;
    for sub in ["files/keys", "files", "config"] {
        let d = partial_dir.join(sub);
        if d.is_dir() {
            sync_dir(&d)?;
        }
    }
    sync_dir(partial_dir)?;
    let final_dir = sets_dir(dir).join(set_name(sequence));
    fs::rename(partial_dir, &final_dir).map_err(io(&final_dir))?;
    sync_dir(&sets_dir(dir))?;
    progress(&progress_now);
    Ok(BackupSummary {
        set: final_dir,
        full: sequence == 1,
        discarded: Vec::new(),
        blob_bytes: progress_now.blob_bytes,
        blobs_present: progress_now.blobs_present,
        cut_us,
        manifest,
    })
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

/// What `restore` made.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    /// The backup as verified first.
    pub verified: VerifyReport,
    /// The new data directory.
    pub data: PathBuf,
    /// Where the backed-up configuration files are (for the operator to put in place).
    pub config: PathBuf,
}

/// Verifies the backup in `dir`, then makes a new data directory `data` from it that
/// `congvan serve` starts on: the records of every set in order, the log re-appended leaf
/// by leaf (and checked against every checkpoint), the payload files and the server's
/// signing keys. `data` must not exist or be empty.
pub async fn restore(dir: &Path, data: &Path) -> Result<RestoreReport, BackupError> {
    let verified = verify(dir)?;
    if data.exists() {
        let mut entries = fs::read_dir(data).map_err(io(data))?;
        if entries.next().is_some() {
            return Err(BackupError::TargetNotEmpty(data.display().to_string()));
        }
    }
    create_private_dir(data)?;
    let store = Store::open(data)?;
    let (sets, _) = list_sets(dir)?;
    const LEAVES_PER_TRANSACTION: usize = 1000;
    for (_, path) in &sets {
        let (m, _) = read_manifest(path)?;
        let mut first = m.log_from;
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(LEAVES_PER_TRANSACTION);
        read_records(path, &m, &mut |record| {
            match record {
                Record::Leaf(_, leaf) => {
                    batch.push(leaf);
                    if batch.len() == LEAVES_PER_TRANSACTION {
                        store.restore_leaves(first, &batch)?;
                        first += batch.len() as u64;
                        batch.clear();
                    }
                }
                Record::Put(tree, key, value) => store.restore_put(&tree, &key, &value)?,
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            store.restore_leaves(first, &batch)?;
        }
    }
    // Payload files: every accepted document's, unless kept in the database.
    let source = BlobStore::open(dir)?;
    {
        for r in &verified.blob_files {
            let from = source.path(&r.sha256);
            let mut file = fs::File::open(&from).map_err(io(&from))?;
            let mut writer = store.blobs().writer()?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).map_err(io(&from))?;
                if n == 0 {
                    break;
                }
                writer.write(buf.get(..n).unwrap_or_default())?;
            }
            writer
                .finish(&r.sha256, r.size)
                .map_err(|e| invalid(format!("payload {}: {e}", r.sha256)))?
                .commit()?;
        }
    }
    // The server's signing keys, from the latest set.
    let latest = verified.sets.last().cloned().unwrap_or_default();
    let keys = latest.join("files/keys");
    for entry in fs::read_dir(&keys).map_err(io(&keys))? {
        let entry = entry.map_err(io(&keys))?;
        let bytes = fs::read(entry.path()).map_err(io(&entry.path()))?;
        write_private(&data.join("keys").join(entry.file_name()), &bytes)?;
    }
    store.restore_finish().await?;
    // The restored log must extend every checkpoint the backup holds.
    let log = store.log();
    let size = log.size().map_err(StoreError::from)?;
    if size != verified.log_size {
        return Err(invalid(format!(
            "the restored log has {size} entries, the backup {}",
            verified.log_size
        )));
    }
    let public = crate::notary::public_key_in(&data.join("keys"), crate::notary::KeyPurpose::Log)
        .map_err(|e| invalid(e.to_string()))?;
    let origin = read_manifest(&latest)?.0.log_origin;
    let vkey = ledger::verifier_key(&origin, &public);
    for (size, note) in store.checkpoints()? {
        let c = ledger::checkpoint::verify(&note, &vkey)
            .map_err(|e| invalid(format!("checkpoint {size}: {e}")))?;
        if log.root(c.size).map_err(StoreError::from)? != c.root {
            return Err(invalid(format!(
                "the restored log does not extend the checkpoint of {} entries",
                c.size
            )));
        }
    }
    Ok(RestoreReport {
        verified,
        data: data.to_owned(),
        config: latest.join("config"),
    })
}
