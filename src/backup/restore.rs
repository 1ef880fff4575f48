//! `restore`: a verified backup made into a new data directory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{
    BackupError, Record, VerifyReport, create_private_dir, invalid, io, list_sets, read_manifest,
    read_records, verify, write_private,
};
use crate::ledger;
use crate::store::{BlobStore, Store, StoreError};

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
