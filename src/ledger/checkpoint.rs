//! Checkpoints: C2SP tlog-checkpoint bodies (origin, size, base64 root hash) in C2SP
//! signed notes, signed with the server's Ed25519 log key.
//!
//! ```text
//! congvan.example/log
//! 1234
//! pX3rSP4t8ZcVqAmDZ2nHd+5ZUmdmaRY4vOK3J3P1o08=
//!
//! — congvan.example/log Az3grgAA…
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::checkpoint::Checkpoint;
use tlog_tiles::tlog::Hash;

/// Errors making or checking a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note or its body is malformed.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The signature does not verify with the expected key.
    #[error("the checkpoint is not signed by the expected log key: {0}")]
    BadSignature(String),
    /// Signing failed.
    #[error("signing the checkpoint failed: {0}")]
    Sign(String),
}

/// Signs notes with a key held elsewhere (the notary), under a name.
pub struct NoteSigner<F> {
    name: String,
    id: u32,
    sign: F,
}

/// The note verifier key string (`name+id+base64(0x01 || key)`) for an Ed25519 key.
pub fn verifier_key(name: &str, public_key: &[u8]) -> String {
    let encoded = [&[0x01u8][..], public_key].concat();
    format!(
        "{name}+{:08x}+{}",
        signed_note::key_id(name, &encoded),
        B64.encode(&encoded)
    )
}

impl<F: Fn(&[u8]) -> Result<Vec<u8>, String>> NoteSigner<F> {
    /// A signer named `name` for the Ed25519 `public_key`, signing with `sign`.
    pub fn new(name: &str, public_key: &[u8], sign: F) -> Self {
        let encoded = [&[0x01u8][..], public_key].concat();
        NoteSigner {
            name: name.to_owned(),
            id: signed_note::key_id(name, &encoded),
            sign,
        }
    }
}

impl<F: Fn(&[u8]) -> Result<Vec<u8>, String>> signed_note::Signer for NoteSigner<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        (self.sign)(msg).map_err(|_| signature::Error::new())
    }
}

/// Makes the signed note for a tree of `size` entries with `root`.
pub fn sign(
    origin: &str,
    size: u64,
    root: Hash,
    signer: &dyn signed_note::Signer,
) -> Result<String, CheckpointError> {
    let body = Checkpoint::new(origin, size, root, "")
        .map_err(|e| CheckpointError::Malformed(e.to_string()))?
        .to_bytes();
    let mut note = Note::new(&body, &[]).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    note.add_sigs(&[signer])
        .map_err(|e| CheckpointError::Sign(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|e| CheckpointError::Malformed(e.to_string()))
}

/// A checkpoint whose signature verified.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedCheckpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
    /// The note as received.
    pub note: String,
}

/// Verifies a signed checkpoint note with the verifier key `vkey`.
pub fn verify(note: &str, vkey: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
    let verifier = StandardVerifier::new(vkey)
        .map_err(|e| CheckpointError::BadSignature(format!("key: {e}")))?;
    let origin = signed_note::Verifier::name(&verifier).to_owned();
    let parsed =
        Note::from_bytes(note.as_bytes()).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    let list = VerifierList::new(vec![Box::new(verifier)]);
    parsed
        .verify(&list)
        .map_err(|e| CheckpointError::BadSignature(e.to_string()))?;
    let checkpoint = Checkpoint::from_bytes(parsed.text())
        .map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    if checkpoint.origin() != origin {
        return Err(CheckpointError::BadSignature(format!(
            "origin {:?} is not the key's name {origin:?}",
            checkpoint.origin()
        )));
    }
    Ok(VerifiedCheckpoint {
        origin,
        size: checkpoint.size(),
        root: *checkpoint.hash(),
        note: note.to_owned(),
    })
}
