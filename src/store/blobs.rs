//! Payloads as content-addressed files: `blobs/sha256/ab/abcdef…`.
//!
//! A payload is streamed into a temporary file under `tmp/` while its SHA-256 and size are
//! computed; only if both match what the manifest promised is the file fsynced, renamed
//! into place and its directory fsynced. A failed or abandoned upload leaves nothing
//! behind but a temporary file, which is removed when the writer is dropped and, after a
//! crash, when the store opens.
//!
//! While a large payload arrives, the writer asks the kernel every
//! [`WRITE_BEHIND_BYTES`] to start writing what it has so far back to the disk
//! (write-behind). Without it the kernel keeps the whole payload dirty in memory (its
//! background threshold is a tenth of the RAM) and the final fsync writes all of it while
//! the client waits; with it the disk works while the network does, and the final fsync,
//! which still decides durability, has only the last window left to write.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::digest;

use super::StoreError;

/// Bytes written between two requests to start writeback. Large enough that the
/// request costs nothing next to the writes, small enough that the disk starts early and
/// little is left for the final fsync.
pub const WRITE_BEHIND_BYTES: u64 = 8 << 20;
use crate::pki::identity::hex;

/// Why a finished upload was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// More or fewer bytes than promised.
    #[error("the payload has {actual} bytes; the manifest says {expected}")]
    SizeMismatch {
        /// From the manifest.
        expected: u64,
        /// Received.
        actual: u64,
    },
    /// A different SHA-256 than promised.
    #[error("the payload's SHA-256 is {actual}; the manifest says {expected}")]
    DigestMismatch {
        /// From the manifest.
        expected: String,
        /// Received.
        actual: String,
    },
    /// Disk trouble.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The blob area of the data directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl BlobStore {
    /// Opens the blob area under `data_dir`, removing temporary files left by a crash.
    pub fn open(data_dir: &Path) -> Result<BlobStore, StoreError> {
        let root = data_dir.join("blobs/sha256");
        let tmp = data_dir.join("tmp");
        fs::create_dir_all(&root).map_err(io(&root))?;
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        for entry in fs::read_dir(&tmp).map_err(io(&tmp))?.flatten() {
            let _ = fs::remove_file(entry.path());
        }
        Ok(BlobStore { root, tmp })
    }

    /// The path of the blob with this digest (lower-case hex).
    pub fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("00");
        self.root.join(prefix).join(sha256)
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let mut name = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut name).map_err(
            |_| StoreError::Io {
                path: self.tmp.display().to_string(),
                source: std::io::Error::other("random number generator failed"),
            },
        )?;
        let path = self.tmp.join(format!("upload-{}", hex(&name)));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(BlobWriter {
            store: self.clone(),
            file: Some(file),
            path,
            hasher: digest::Context::new(&digest::SHA256),
            size: 0,
            written_back: 0,
        })
    }
}

/// A blob being written; dropped unfinished, it removes its temporary file.
pub struct BlobWriter {
    store: BlobStore,
    file: Option<File>,
    path: PathBuf,
    hasher: digest::Context,
    size: u64,
    /// Where the last request to start writeback ended.
    written_back: u64,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a chunk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let file = self.file.as_mut().ok_or_else(|| StoreError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other("writer already finished"),
        })?;
        file.write_all(chunk).map_err(io(&self.path))?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if self.size - self.written_back >= WRITE_BEHIND_BYTES {
            start_writeback(file, self.written_back, self.size - self.written_back);
            self.written_back = self.size;
        }
        Ok(())
    }

    /// Checks size and digest; the blob can then be inspected and committed.
    pub fn finish(
        mut self,
        expected_sha256: &str,
        expected_size: u64,
    ) -> Result<VerifiedBlob, BlobError> {
        if self.size != expected_size {
            return Err(BlobError::SizeMismatch {
                expected: expected_size,
                actual: self.size,
            });
        }
        let actual = hex(self.hasher.clone().finish().as_ref());
        if actual != expected_sha256 {
            return Err(BlobError::DigestMismatch {
                expected: expected_sha256.to_owned(),
                actual,
            });
        }
        let file = self.file.take().ok_or_else(|| StoreError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other("writer already finished"),
        })?;
        file.sync_all().map_err(io(&self.path))?;
        drop(file);
        Ok(VerifiedBlob {
            store: self.store.clone(),
            path: std::mem::take(&mut self.path),
            sha256: actual,
            committed: false,
        })
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` back to the disk, without
/// waiting for it. Linux's `POSIX_FADV_DONTNEED` starts writeback of the dirty pages in
/// the range (as `sync_file_range(SYNC_FILE_RANGE_WRITE)` does, which needs `unsafe`
/// through libc) and then drops only the pages already clean, so pages still being written
/// stay cached. It is advice: durability comes from the fsync in
/// [`BlobWriter::finish`] alone, so a failure here is ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

/// Elsewhere the final fsync writes the whole payload, as before.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// A complete upload whose size and digest matched, still in its temporary file; dropped
/// without [`VerifiedBlob::commit`], it is removed.
pub struct VerifiedBlob {
    store: BlobStore,
    path: PathBuf,
    sha256: String,
    committed: bool,
}

impl VerifiedBlob {
    /// The temporary file, for checks that read it before it is committed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the blob into place under its digest and makes the rename durable.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let target = self.store.path(&self.sha256);
        let dir = target.parent().unwrap_or(&self.store.root).to_owned();
        let created_dir = !dir.exists();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        // Same digest, same bytes: renaming over an existing blob is harmless.
        fs::rename(&self.path, &target).map_err(io(&target))?;
        self.committed = true;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
        if created_dir {
            File::open(&self.store.root)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.store.root))?;
        }
        Ok(())
    }
}

impl Drop for VerifiedBlob {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After `finish` the path has moved to the VerifiedBlob and is empty here.
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly by design")]

    use super::*;

    /// Bytes that differ at every position, so a misplaced or repeated chunk shows.
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    /// Chunks of uneven sizes that straddle the write-behind windows must land in order:
    /// the committed blob holds exactly the bytes written, under their digest.
    #[test]
    fn write_behind_keeps_every_byte_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let window = usize::try_from(WRITE_BEHIND_BYTES).unwrap();
        let payload = noise(2 * window + 777_777);
        let mut writer = store.writer().unwrap();
        for chunk in payload.chunks(999_983) {
            writer.write(chunk).unwrap();
        }
        assert!(writer.written_back >= WRITE_BEHIND_BYTES);
        let sha = hex(digest::digest(&digest::SHA256, &payload).as_ref());
        let blob = writer.finish(&sha, payload.len() as u64).unwrap();
        blob.commit().unwrap();
        assert!(fs::read(store.path(&sha)).unwrap() == payload);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    /// A payload whose last byte differs, after windows were already written back, is
    /// refused and its temporary file removed: write-behind decides nothing.
    #[test]
    fn write_behind_does_not_let_a_wrong_digest_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let window = usize::try_from(WRITE_BEHIND_BYTES).unwrap();
        let payload = noise(window + 4_096);
        let sha = hex(digest::digest(&digest::SHA256, &payload).as_ref());
        let mut altered = payload.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        let mut writer = store.writer().unwrap();
        writer.write(&altered).unwrap();
        assert!(writer.written_back > 0);
        let refused = writer.finish(&sha, payload.len() as u64);
        assert!(matches!(refused, Err(BlobError::DigestMismatch { .. })));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(!store.path(&sha).exists());
    }
}
