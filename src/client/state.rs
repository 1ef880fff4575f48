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
