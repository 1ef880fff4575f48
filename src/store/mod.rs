//! Durable state: sled for metadata and indexes.
//!
//! This module and `ledger/` are the only ones that know sled. The store is a cheap
//! clonable handle; opening it takes sled's exclusive lock on the data directory, so two
//! servers can never write the same data.

use std::path::{Path, PathBuf};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or written.
    #[error("database {path}: {source}")]
    Db {
        /// The database directory.
        path: String,
        /// The cause.
        source: sled::Error,
    },
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A handle to the server's durable state.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        let db_path = data_dir.join("db");
        let db = sled::Config::new()
            .path(&db_path)
            .open()
            .map_err(|source| StoreError::Db {
                path: db_path.display().to_string(),
                source,
            })?;
        Ok(Store {
            db,
            dir: data_dir.to_owned(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes everything buffered to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|source| StoreError::Db {
                path: self.dir.display().to_string(),
                source,
            })
    }
}
