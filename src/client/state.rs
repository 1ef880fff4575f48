//! What the client remembers between runs, in the profile's `state_dir`: the server's
//! public keys (pinned on first use) and the last verified directory.
//!
//! The keys arrive over TLS from a server whose certificate chains to the profile's trust
//! anchor; pinning them means a later change (a new server key, or a different server
//! behind the same name) is noticed and refused instead of silently trusted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Client, ClientError};
use crate::api::{DIRECTORY_TYPE, DirectoryStatement, ServerKeysResponse};
use crate::notary::{self, KeyPurpose, PublicKeyInfo, Signed};
use crate::pki::pem::write_public;

#[derive(Serialize, Deserialize)]
struct PinnedKeys {
    server: String,
    keys: Vec<PublicKeyInfo>,
    #[serde(default)]
    log_origin: String,
}

impl Client {
    fn state_file(&self, name: &str) -> PathBuf {
        self.profile().state_dir.join(name)
    }

    /// The server's public keys, pinned on first use; an unexpected change is an error.
    pub async fn server_keys(&self) -> Result<Vec<PublicKeyInfo>, ClientError> {
        let path = self.state_file("server-keys.json");
        let fetched: ServerKeysResponse = self.get_server_keys().await?;
        if let Ok(text) = std::fs::read_to_string(&path) {
            let pinned: PinnedKeys = serde_json::from_str(&text)
                .map_err(|e| ClientError::Trust(format!("{} is damaged: {e}", path.display())))?;
            for key in &pinned.keys {
                if !fetched.keys.contains(key) {
                    return Err(ClientError::Trust(format!(
                        "the server's {:?} key changed since it was pinned in {}; if the \
                         operator rotated it, check the new key with them and delete that file",
                        key.purpose,
                        path.display()
                    )));
                }
            }
            if !pinned.log_origin.is_empty() && pinned.log_origin != fetched.log_origin {
                return Err(ClientError::Trust(format!(
                    "the server's log origin changed from {:?} to {:?} since it was pinned",
                    pinned.log_origin, fetched.log_origin
                )));
            }
            return Ok(pinned.keys);
        }
        let pinned = PinnedKeys {
            server: self.base_url().to_owned(),
            keys: fetched.keys,
            log_origin: fetched.log_origin,
        };
        let text =
            serde_json::to_vec_pretty(&pinned).map_err(|e| ClientError::Protocol(e.to_string()))?;
        write_public(&path, &text)?;
        Ok(pinned.keys)
    }

    /// The note verifier key of the server's log, from the pinned keys.
    pub async fn log_verifier_key(&self) -> Result<String, ClientError> {
        self.server_keys().await?;
        pinned_log_verifier_key(&self.profile().state_dir)
    }

    /// The directory, verified with the pinned directory key, and cached.
    pub async fn directory(&self) -> Result<DirectoryStatement, ClientError> {
        let keys = self.server_keys().await?;
        let signed: Signed = self.get_directory().await?;
        notary::verify(&signed, &keys, KeyPurpose::Directory, DIRECTORY_TYPE)
            .map_err(|e| ClientError::Trust(format!("directory: {e}")))?;
        let statement: DirectoryStatement = serde_json::from_value(signed.statement.clone())
            .map_err(|e| ClientError::Protocol(format!("directory: {e}")))?;
        let text =
            serde_json::to_vec_pretty(&signed).map_err(|e| ClientError::Protocol(e.to_string()))?;
        write_public(&self.state_file("directory.json"), &text)?;
        Ok(statement)
    }
}

/// The log's note verifier key from the keys pinned in `state_dir` (offline).
pub fn pinned_log_verifier_key(state_dir: &std::path::Path) -> Result<String, ClientError> {
    use base64::Engine as _;
    let path = state_dir.join("server-keys.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ClientError::Trust(format!(
            "no pinned server keys in {} ({e}); run `congvan audit checkpoint` once online",
            path.display()
        ))
    })?;
    let pinned: PinnedKeys = serde_json::from_str(&text)
        .map_err(|e| ClientError::Trust(format!("{} is damaged: {e}", path.display())))?;
    let key = pinned
        .keys
        .iter()
        .find(|k| k.purpose == KeyPurpose::Log)
        .ok_or_else(|| ClientError::Trust("no log key pinned".into()))?;
    let public = base64::engine::general_purpose::STANDARD
        .decode(&key.public_key)
        .map_err(|e| ClientError::Trust(format!("pinned log key: {e}")))?;
    if pinned.log_origin.is_empty() {
        return Err(ClientError::Trust("no log origin pinned".into()));
    }
    Ok(crate::ledger::verifier_key(&pinned.log_origin, &public))
}

/// Folder of [`PendingUpload`]s inside the state directory.
const PENDING_DIR: &str = "pending";

/// One file of a pending upload as it was when the manifest was signed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingFile {
    /// Where the file was read from.
    pub path: PathBuf,
    /// Its size in bytes then.
    pub size: u64,
    /// Its SHA-256 then (lower-case hex).
    pub sha256: String,
}

/// A document whose signed manifest was (or was about to be) submitted but whose payload
/// the server has not yet confirmed: what `send --resume` needs to finish the upload
/// without signing again. It is kept in the state directory with mode 0600 (the sealed
/// payload of a classified document is ciphertext, the rest is what the server sees
/// anyway) and removed when the upload completes.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingUpload {
    /// The document id.
    pub id: uuid::Uuid,
    /// The signed submission, byte for byte as first sent.
    pub submit: crate::api::SubmitRequest,
    /// The expanded recipient list.
    pub recipients: Vec<crate::directory::OrgId>,
    /// The files as they were signed.
    pub files: Vec<PendingFile>,
    /// For a classified document, the sealed payload kept beside this record: sealing
    /// again would give another ciphertext, hence another digest than the signed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<PathBuf>,
}

impl PendingUpload {
    /// The files the upload reads: the sealed payload, or the files themselves.
    pub fn upload_files(&self) -> Vec<PathBuf> {
        match &self.sealed {
            Some(sealed) => vec![sealed.clone()],
            None => self.files.iter().map(|f| f.path.clone()).collect(),
        }
    }
}

/// The path of the record of document `id`'s pending upload under `state_dir`.
pub fn pending_path(state_dir: &std::path::Path, id: &uuid::Uuid) -> PathBuf {
    state_dir.join(PENDING_DIR).join(format!("{id}.json"))
}

/// The path where a classified document's sealed payload is kept until its upload ends.
pub fn pending_sealed_path(state_dir: &std::path::Path, id: &uuid::Uuid) -> PathBuf {
    state_dir.join(PENDING_DIR).join(format!("{id}.sealed"))
}

/// Creates the folder of pending uploads, readable by its owner only.
pub fn create_pending_dir(state_dir: &std::path::Path) -> Result<PathBuf, ClientError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let dir = state_dir.join(PENDING_DIR);
    let io = |e: std::io::Error| ClientError::File {
        path: dir.to_path_buf(),
        source: e,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    Ok(dir)
}

impl Client {
    /// Remembers a pending upload (mode 0600), replacing an earlier record of it.
    pub fn save_pending(&self, pending: &PendingUpload) -> Result<(), ClientError> {
        create_pending_dir(&self.profile().state_dir)?;
        let text =
            serde_json::to_vec_pretty(pending).map_err(|e| ClientError::Protocol(e.to_string()))?;
        crate::pki::pem::write_secret(
            &pending_path(&self.profile().state_dir, &pending.id),
            &text,
        )?;
        Ok(())
    }

    /// The pending upload of document `id`, if this client remembers one.
    pub fn load_pending(&self, id: &uuid::Uuid) -> Result<Option<PendingUpload>, ClientError> {
        let path = pending_path(&self.profile().state_dir, id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ClientError::Input(format!("{} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::File {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    /// Forgets the pending upload of document `id` and its sealed payload, if any.
    pub fn remove_pending(&self, id: &uuid::Uuid) -> Result<(), ClientError> {
        let state_dir = &self.profile().state_dir;
        for path in [
            pending_path(state_dir, id),
            pending_sealed_path(state_dir, id),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ClientError::File {
                        path: path.to_path_buf(),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// The ids of the uploads this client remembers as pending, in id order (ids are
    /// UUIDv7, so that is the order they were made in).
    pub fn pending_ids(&self) -> Result<Vec<uuid::Uuid>, ClientError> {
        let dir = self.profile().state_dir.join(PENDING_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(ClientError::File {
                    path: dir.to_path_buf(),
                    source: e,
                });
            }
        };
        let mut ids: Vec<uuid::Uuid> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                uuid::Uuid::parse_str(name.strip_suffix(".json")?).ok()
            })
            .collect();
        ids.sort();
        Ok(ids)
    }
}
