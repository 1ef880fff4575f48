//! The operator's offline check of a server's data directory (`congvan audit
//! verify-store`): with the server stopped, every stored log leaf is hashed again and the
//! tree rebuilt from the leaves must reproduce the stored root and the latest signed
//! checkpoint.
//!
//! This module decides; the binary only prints. It opens the store read-write because sled
//! has no read-only mode, so it refuses a directory that holds no store or no server keys
//! before opening anything: opening would create both, and the scan would then "verify" an
//! empty log it had just made.

use std::path::{Path, PathBuf};

use crate::client::audit::exit;
use crate::config::{ConfigError, ServerConfig};
use crate::ledger::LedgerError;
use crate::ledger::checkpoint::CheckpointError;
use crate::notary::{KeyPurpose, NotaryError, ServerKeys};
use crate::store::{Store, StoreError};

/// Why the stored log could not be checked at all (a log that was checked and does not
/// verify is a [`StoreVerification`] with problems, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyStoreError {
    /// `--data` contradicts the configuration.
    #[error("{0}")]
    DataDir(#[source] ConfigError),
    /// The data directory lacks the store or the server keys.
    #[error(
        "{data} holds no {what} ({path} is missing): give the server's data directory with \
         --data, or check data_dir in the configuration"
    )]
    Missing {
        /// The data directory.
        data: String,
        /// What is missing ("store", "server keys").
        what: &'static str,
        /// The missing directory.
        path: String,
    },
    /// The store could not be opened (usually: the server still runs and holds its lock).
    #[error("cannot open the store in {data} (is the server still running?)")]
    Open {
        /// The data directory.
        data: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The stored latest checkpoint is not signed by the server's log key.
    #[error("the latest stored checkpoint does not verify with the server's log key")]
    Checkpoint(#[source] CheckpointError),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Scanning the log failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The server's keys could not be read.
    #[error(transparent)]
    Keys(#[from] NotaryError),
}

impl VerifyStoreError {
    /// The command's exit code (README, "exit codes"): a data directory that cannot be
    /// read as one is 4, anything else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyStoreError::DataDir(_) | VerifyStoreError::Missing { .. } => exit::UNREADABLE,
            _ => exit::FAILED,
        }
    }
}

/// One way the stored log fails its check; `Display` is the sentence the operator reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreProblem {
    /// A leaf does not hash to its stored leaf hash.
    #[error("entry {0} does not match its stored hash: the log was altered at index {0}")]
    AlteredEntry(u64),
    /// The root rebuilt from the leaves is not the stored tree's root.
    #[error("the root recomputed from the leaves differs from the stored tree's root")]
    RootMismatch,
    /// The latest checkpoint covers more entries than are stored.
    #[error(
        "the latest checkpoint covers {checkpoint} entries but only {stored} are stored: entries were deleted"
    )]
    EntriesDeleted {
        /// The checkpoint's size.
        checkpoint: u64,
        /// Entries stored.
        stored: u64,
    },
    /// The leaves do not reproduce the latest checkpoint's root.
    #[error("the leaves do not reproduce the root of the checkpoint at size {0}")]
    CheckpointMismatch(u64),
}

/// What `verify_store` found.
#[derive(Debug)]
pub struct StoreVerification {
    /// Entries scanned.
    pub size: u64,
    /// The size of the signed checkpoint the leaves reproduce, if there is one and they do.
    pub reproduced_checkpoint: Option<u64>,
    /// Every problem found, in the order checked; empty when the log verifies.
    pub problems: Vec<StoreProblem>,
}

impl StoreVerification {
    /// Whether the stored log verifies.
    pub fn verifies(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the stored log of the server configured by `config` (its data directory
/// replaced by `data` if given) against its leaves and its latest signed checkpoint.
pub fn verify_store(
    mut config: ServerConfig,
    data: Option<PathBuf>,
) -> Result<StoreVerification, VerifyStoreError> {
    if let Some(data) = data {
        config
            .use_data_dir(data)
            .map_err(VerifyStoreError::DataDir)?;
    }
    let data = config.data_dir.clone();
    refuse_empty(&data)?;
    let store = Store::open(&data).map_err(|source| VerifyStoreError::Open {
        data: data.display().to_string(),
        source,
    })?;
    let checkpoint = store.latest_checkpoint()?;
    let keys = ServerKeys::load_or_create(&data.join("keys"))?;
    let vkey = crate::ledger::verifier_key(&config.log.origin, &keys.public_key(KeyPurpose::Log)?);
    let verified = checkpoint
        .as_ref()
        .map(|(_, note)| crate::ledger::checkpoint::verify(note, &vkey))
        .transpose()
        .map_err(VerifyStoreError::Checkpoint)?;
    let audit = store.log().audit(verified.as_ref().map(|c| c.size))?;
    let mut problems = Vec::new();
    let mut reproduced_checkpoint = None;
    if let Some(i) = audit.first_bad_index {
        problems.push(StoreProblem::AlteredEntry(i));
    }
    if audit.recomputed_root != audit.stored_root {
        problems.push(StoreProblem::RootMismatch);
    }
    if let Some(cp) = &verified {
        if cp.size > audit.size {
            problems.push(StoreProblem::EntriesDeleted {
                checkpoint: cp.size,
                stored: audit.size,
            });
        } else if audit.root_at_checkpoint != Some(cp.root) {
            problems.push(StoreProblem::CheckpointMismatch(cp.size));
        } else {
            reproduced_checkpoint = Some(cp.size);
        }
    }
    Ok(StoreVerification {
        size: audit.size,
        reproduced_checkpoint,
        problems,
    })
}

/// Refuses a data directory without a store or server keys (see the module's comment).
fn refuse_empty(data: &Path) -> Result<(), VerifyStoreError> {
    for (what, path) in [
        ("store", data.join("db")),
        ("server keys", data.join("keys")),
    ] {
        if !path.is_dir() {
            return Err(VerifyStoreError::Missing {
                data: data.display().to_string(),
                what,
                path: path.display().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly by design")]

    use super::*;

    #[test]
    fn a_directory_without_a_store_is_refused_before_anything_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let config = ServerConfig::embedded_default(tmp.path()).unwrap();
        let data = config.data_dir.clone();
        let err = verify_store(config, None).unwrap_err();
        assert!(
            matches!(err, VerifyStoreError::Missing { what: "store", .. }),
            "{err}"
        );
        assert_eq!(err.exit_code(), exit::UNREADABLE);
        assert!(err.to_string().contains("give the server's data directory"));
        assert!(!data.exists(), "nothing created");
    }

    #[test]
    fn a_data_flag_that_contradicts_the_configuration_cannot_be_read() {
        let tmp = tempfile::tempdir().unwrap();
        let config = ServerConfig::embedded_default(tmp.path()).unwrap();
        let err = verify_store(config, Some(tmp.path().join("other"))).unwrap_err();
        assert!(matches!(err, VerifyStoreError::DataDir(_)), "{err}");
        assert_eq!(err.exit_code(), exit::UNREADABLE);
    }

    #[test]
    fn problems_read_as_the_operator_sees_them() {
        assert_eq!(
            StoreProblem::AlteredEntry(7).to_string(),
            "entry 7 does not match its stored hash: the log was altered at index 7"
        );
        assert_eq!(
            StoreProblem::EntriesDeleted {
                checkpoint: 9,
                stored: 4
            }
            .to_string(),
            "the latest checkpoint covers 9 entries but only 4 are stored: entries were deleted"
        );
    }
}
