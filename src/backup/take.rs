//! `congvan backup`: one set received from the running server's socket, written as
//! `.partial` and renamed into place when complete.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{
    BackupError, BackupSummary, BlobRef, FORMAT, LINE_BYTES_MAX, Progress, SetManifest,
    checkpoint_root, create_private_dir, decode_b64, finish_blob, invalid, io, list_sets,
    read_manifest, safe_file_name, set_name, sets_dir, sync_dir, write_private,
};
use crate::pki::identity::hex;
use crate::store::BlobStore;
use crate::store::backup::{CheckpointRef, Item, Since, Want};

/// `congvan backup`: takes a backup of the running server configured by `config` (read
/// from `config_path`) into `dir`, through the backup socket in its data directory (`data`
/// when the server was started with `--data`), with the files the configuration names.
pub fn take_configured(
    config_path: &Path,
    config: &crate::config::ServerConfig,
    data: Option<&Path>,
    dir: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> Result<BackupSummary, BackupError> {
    let data = data.unwrap_or(&config.data_dir);
    let socket = data.join(crate::server::BACKUP_SOCKET_NAME);
    take(&socket, dir, &config.backup_files(config_path), progress)
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
