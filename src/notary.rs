//! Statements the server signs: submission receipts, the directory, (later) log
//! checkpoints. One Ed25519 key per purpose, generated on first start and kept in the data
//! directory (PKCS#8, 0600); the public halves are published at `GET /v1/server-keys`.
//!
//! A signed statement is `{"statement": {...}, "signature": {"key_id", "alg", "value"}}`
//! where the signature covers the RFC 8785 canonical bytes of `statement`. Every statement
//! carries a `type` naming what it is, so a signature can never be replayed as another kind.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{self as ring_sig, Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pki::identity::hex;

/// What a server key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// Submission and delivery receipts.
    Receipts,
    /// The organisation directory.
    Directory,
    /// Log checkpoints.
    Log,
}

impl KeyPurpose {
    const ALL: [KeyPurpose; 3] = [KeyPurpose::Receipts, KeyPurpose::Directory, KeyPurpose::Log];

    fn file_name(self) -> &'static str {
        match self {
            KeyPurpose::Receipts => "receipts.ed25519.pk8",
            KeyPurpose::Directory => "directory.ed25519.pk8",
            KeyPurpose::Log => "log.ed25519.pk8",
        }
    }
}

/// Errors of the notary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotaryError {
    /// A key file could not be read or written.
    #[error("server key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The statement could not be canonicalised.
    #[error("statement: {0}")]
    Statement(String),
    /// The signature does not verify, or names an unknown key.
    #[error("server signature invalid: {0}")]
    BadSignature(String),
}

/// A server public key as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyInfo {
    /// First 16 bytes of SHA-256 of the public key, hex.
    pub key_id: String,
    /// What it signs.
    pub purpose: KeyPurpose,
    /// Always `ed25519`.
    pub alg: String,
    /// The raw 32-byte public key, base64.
    pub public_key: String,
}

/// A signature over a statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementSignature {
    /// Which key.
    pub key_id: String,
    /// Always `ed25519`.
    pub alg: String,
    /// The signature, base64.
    pub value: String,
}

/// A statement with the server's signature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// What is stated.
    pub statement: Value,
    /// The server's signature over its canonical bytes.
    pub signature: StatementSignature,
}

struct Key {
    pair: Ed25519KeyPair,
    info: PublicKeyInfo,
}

/// The server's signing keys.
pub struct ServerKeys {
    keys: Vec<Key>,
}

fn key_id(public: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public);
    hex(&digest.as_ref()[..16])
}

impl ServerKeys {
    /// Loads the keys from `dir`, generating any that are missing.
    pub fn load_or_create(dir: &Path) -> Result<ServerKeys, NotaryError> {
        let mut keys = Vec::new();
        for purpose in KeyPurpose::ALL {
            let path = dir.join(purpose.file_name());
            let err = |reason: String| NotaryError::Key {
                path: path.display().to_string(),
                reason,
            };
            let pkcs8 = if path.exists() {
                if !crate::pki::pem::is_owner_only(&path) {
                    tracing::warn!(key = %path.display(), "server key readable by others: chmod 0600 it");
                }
                std::fs::read(&path).map_err(|e| err(e.to_string()))?
            } else {
                let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                    .map_err(|_| err("key generation failed".into()))?;
                crate::pki::pem::write_secret(&path, doc.as_ref())
                    .map_err(|e| err(e.to_string()))?;
                tracing::info!(key = %path.display(), ?purpose, "generated server signing key");
                doc.as_ref().to_vec()
            };
            let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
                .map_err(|e| err(format!("not an Ed25519 PKCS#8 key: {e}")))?;
            let public = pair.public_key().as_ref();
            let info = PublicKeyInfo {
                key_id: key_id(public),
                purpose,
                alg: "ed25519".into(),
                public_key: B64.encode(public),
            };
            keys.push(Key { pair, info });
        }
        Ok(ServerKeys { keys })
    }

    /// The published public keys.
    pub fn public_keys(&self) -> Vec<PublicKeyInfo> {
        self.keys.iter().map(|k| k.info.clone()).collect()
    }

    /// The key for a purpose.
    fn key(&self, purpose: KeyPurpose) -> Result<&Key, NotaryError> {
        self.keys
            .iter()
            .find(|k| k.info.purpose == purpose)
            .ok_or_else(|| NotaryError::Statement(format!("no {purpose:?} key")))
    }

    /// Signs a statement with the key for `purpose`.
    pub fn sign(&self, purpose: KeyPurpose, statement: Value) -> Result<Signed, NotaryError> {
        let key = self.key(purpose)?;
        let bytes =
            serde_jcs::to_vec(&statement).map_err(|e| NotaryError::Statement(e.to_string()))?;
        let sig = key.pair.sign(&bytes);
        Ok(Signed {
            statement,
            signature: StatementSignature {
                key_id: key.info.key_id.clone(),
                alg: "ed25519".into(),
                value: B64.encode(sig.as_ref()),
            },
        })
    }

    /// Signs raw bytes with the key for `purpose` (for formats with their own framing,
    /// such as signed notes).
    pub fn sign_bytes(&self, purpose: KeyPurpose, message: &[u8]) -> Result<Vec<u8>, NotaryError> {
        Ok(self.key(purpose)?.pair.sign(message).as_ref().to_vec())
    }

    /// The raw public key for `purpose`.
    pub fn public_key(&self, purpose: KeyPurpose) -> Result<Vec<u8>, NotaryError> {
        Ok(self.key(purpose)?.pair.public_key().as_ref().to_vec())
    }
}

/// The raw public key of the key for `purpose` kept in `dir`, without creating one (a
/// backup's copy of the server's keys is read, never completed).
pub fn public_key_in(dir: &Path, purpose: KeyPurpose) -> Result<Vec<u8>, NotaryError> {
    let path = dir.join(purpose.file_name());
    let err = |reason: String| NotaryError::Key {
        path: path.display().to_string(),
        reason,
    };
    let pkcs8 = std::fs::read(&path).map_err(|e| err(e.to_string()))?;
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|e| err(format!("not an Ed25519 PKCS#8 key: {e}")))?;
    Ok(pair.public_key().as_ref().to_vec())
}

/// Verifies a signed statement against published keys, requiring the key's purpose and
/// the statement's `type`.
pub fn verify(
    signed: &Signed,
    keys: &[PublicKeyInfo],
    purpose: KeyPurpose,
    statement_type: &str,
) -> Result<(), NotaryError> {
    let key = keys
        .iter()
        .find(|k| k.key_id == signed.signature.key_id && k.purpose == purpose)
        .ok_or_else(|| {
            NotaryError::BadSignature(format!(
                "key {} is not a known {purpose:?} key of this server",
                signed.signature.key_id
            ))
        })?;
    if signed.signature.alg != "ed25519" || key.alg != "ed25519" {
        return Err(NotaryError::BadSignature("algorithm is not ed25519".into()));
    }
    if signed.statement.get("type").and_then(Value::as_str) != Some(statement_type) {
        return Err(NotaryError::BadSignature(format!(
            "statement is not a {statement_type}"
        )));
    }
    let public = B64
        .decode(&key.public_key)
        .map_err(|e| NotaryError::BadSignature(e.to_string()))?;
    let sig = B64
        .decode(&signed.signature.value)
        .map_err(|e| NotaryError::BadSignature(e.to_string()))?;
    let bytes =
        serde_jcs::to_vec(&signed.statement).map_err(|e| NotaryError::Statement(e.to_string()))?;
    ring_sig::UnparsedPublicKey::new(&ring_sig::ED25519, public)
        .verify(&bytes, &sig)
        .map_err(|_| NotaryError::BadSignature("signature does not verify".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ServerKeys::load_or_create(dir.path()).unwrap();
        let published = keys.public_keys();
        let statement = serde_json::json!({"type": "t", "a": "Chúc Sơn"});
        let signed = keys.sign(KeyPurpose::Receipts, statement).unwrap();
        verify(&signed, &published, KeyPurpose::Receipts, "t").unwrap();
        // Wrong purpose, wrong type, changed content.
        assert!(verify(&signed, &published, KeyPurpose::Directory, "t").is_err());
        assert!(verify(&signed, &published, KeyPurpose::Receipts, "u").is_err());
        let mut changed = signed.clone();
        changed.statement["a"] = "Xuân Mai".into();
        assert!(verify(&changed, &published, KeyPurpose::Receipts, "t").is_err());
        // Reloading gives the same keys.
        let again = ServerKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(again.public_keys(), published);
    }
}
