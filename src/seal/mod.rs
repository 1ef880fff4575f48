//! End-to-end encryption of classified payloads.
//!
//! This module is the only one that knows sequoia-openpgp. It offers the operations the
//! rest of congvan needs (make a key, and later seal / open / list recipients) behind
//! plain byte-oriented functions, so that a deployment can plug a certified cipher module
//! in here without touching routing, storage or the log.

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::serialize::SerializeInto;

/// Errors of the sealing layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The OpenPGP library refused an operation.
    #[error("OpenPGP: {0}")]
    OpenPgp(String),
}

impl From<anyhow::Error> for SealError {
    fn from(e: anyhow::Error) -> Self {
        SealError::OpenPgp(format!("{e:#}"))
    }
}

/// A freshly generated OpenPGP key, ASCII-armoured.
pub struct GeneratedKey {
    /// The transferable secret key (keep 0600).
    pub secret_armored: Vec<u8>,
    /// The public certificate.
    pub cert_armored: Vec<u8>,
    /// The primary key's fingerprint, upper-case hex.
    pub fingerprint: String,
}

/// Makes an organisation's OpenPGP key: a certification-only primary key with a signing
/// subkey and an encryption subkey (Curve25519), valid for three years.
pub fn generate_key(user_id: &str) -> Result<GeneratedKey, SealError> {
    let (cert, _revocation) = CertBuilder::general_purpose(Some(user_id)).generate()?;
    Ok(GeneratedKey {
        secret_armored: cert.as_tsk().armored().to_vec()?,
        cert_armored: cert.armored().to_vec()?,
        fingerprint: cert.fingerprint().to_hex(),
    })
}
