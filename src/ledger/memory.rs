//! The server's memory of the latest checkpoint it signed, kept outside its data
//! directory.
//!
//! Restoring an older backup (or any older copy of the data directory) brings back a
//! log that ends before checkpoints the server has already published. If the server then
//! grew that log again, it would sign checkpoints that contradict the ones auditors hold:
//! a fork signed by the server's own key. The data directory cannot remember what came
//! after it was copied, so the server keeps its latest signed note in a file elsewhere
//! (`[log] checkpoint_memory`), written before the note is published, and refuses to sign
//! anything that does not extend it unless the operator acknowledges the rollback.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Errors reading or writing the memory file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The latest signed checkpoint, remembered in one file.
#[derive(Debug)]
pub struct CheckpointMemory {
    path: PathBuf,
    /// Serialises writers so that a smaller checkpoint never overwrites a larger one.
    lock: Mutex<()>,
}

impl CheckpointMemory {
    /// The memory kept in `path`.
    pub fn new(path: &Path) -> CheckpointMemory {
        CheckpointMemory {
            path: path.to_owned(),
            lock: Mutex::new(()),
        }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The remembered note, if any.
    pub fn load(&self) -> Result<Option<String>, MemoryError> {
        match std::fs::read_to_string(&self.path) {
            Ok(note) => Ok(Some(note)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.io(source)),
        }
    }

    /// Remembers `note` (of a tree of `size` entries) durably unless a larger one is
    /// remembered already; `current_size` reads the size of the remembered note.
    pub fn remember(
        &self,
        size: u64,
        note: &str,
        current_size: impl Fn(&str) -> Option<u64>,
    ) -> Result<(), MemoryError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(current) = self.load()? {
            if current_size(&current).is_some_and(|s| s > size) {
                return Ok(());
            }
        }
        self.write(note)
    }

    /// Replaces the memory, keeping the abandoned note beside it for the record (after
    /// an acknowledged rollback).
    pub fn replace_after_rollback(&self, note: Option<&str>) -> Result<PathBuf, MemoryError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut kept = self.path.clone().into_os_string();
        kept.push(format!(".rolled-back-{stamp}"));
        let kept = PathBuf::from(kept);
        std::fs::rename(&self.path, &kept).map_err(|source| self.io(source))?;
        if let Some(note) = note {
            self.write(note)?;
        }
        Ok(kept)
    }

    /// Writes a temporary file, syncs it and renames it over the memory, then syncs the
    /// directory, so a crash leaves the old note or the new one, never a torn one.
    fn write(&self, note: &str) -> Result<(), MemoryError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| self.io(source))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = std::fs::File::create(&tmp).map_err(|source| self.io(source))?;
        file.write_all(note.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| self.io(source))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|source| self.io(source))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| self.io(source))?;
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> MemoryError {
        MemoryError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }
}
