//! Signatures over a manifest's canonical bytes, as they travel.
//!
//! A document carries one signature per role: `organization` (the agency's seal) and
//! `person` (the competent person). Which roles are required is a per-organisation
//! policy; the default is both. Each signature is `raw` (algorithm + signature bytes +
//! the signer's certificate chain) or `cms` (a detached CMS SignedData in DER).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::UnixTime;
use serde::{Deserialize, Serialize};

use crate::pki::signing::{
    CHAIN_CERTS_MAX, RawAlgorithm, SignatureError, SigningTrust, VerifiedSigner,
};

/// Largest base64 text of one signature value or certificate, in bytes.
pub const B64_FIELD_BYTES_MAX: usize = 96 * 1024;
/// Most signatures on one document.
pub const SIGNATURES_MAX: usize = 4;

/// Whose signature this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The competent person (chữ ký của người có thẩm quyền).
    Person,
    /// The organisation (chữ ký của cơ quan, tổ chức).
    Organization,
}

impl Role {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Person => "person",
            Role::Organization => "organization",
        }
    }
}

/// How the signature is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureFormat {
    /// Raw signature bytes with an algorithm name and a certificate chain.
    Raw,
    /// Detached CMS SignedData (DER).
    Cms,
}

/// One signature as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocSignature {
    /// Whose signature.
    pub role: Role,
    /// Raw or CMS.
    pub format: SignatureFormat,
    /// For `raw`: `ecdsa-p256-sha256`, `ed25519`, `rsa-pkcs1-sha256` or `rsa-pss-sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// The signature (raw) or the CMS structure (cms), base64.
    pub value: String,
    /// Certificates, base64 DER: for `raw` the signer's chain, leaf first; for `cms`
    /// optional extra intermediates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

impl DocSignature {
    /// Makes a raw signature entry.
    pub fn raw(role: Role, algorithm: RawAlgorithm, signature: &[u8], chain: &[Vec<u8>]) -> Self {
        DocSignature {
            role,
            format: SignatureFormat::Raw,
            algorithm: Some(algorithm.name().to_owned()),
            value: B64.encode(signature),
            chain: chain.iter().map(|c| B64.encode(c)).collect(),
        }
    }

    /// Makes a CMS signature entry.
    pub fn cms(role: Role, der: &[u8]) -> Self {
        DocSignature {
            role,
            format: SignatureFormat::Cms,
            algorithm: None,
            value: B64.encode(der),
            chain: Vec::new(),
        }
    }

    /// Verifies this signature over `message` (the manifest's canonical bytes).
    pub fn verify(
        &self,
        trust: &SigningTrust,
        message: &[u8],
        now: UnixTime,
    ) -> Result<VerifiedSigner, SignatureError> {
        let value = decode_b64("value", &self.value)?;
        if self.chain.len() > CHAIN_CERTS_MAX {
            return Err(SignatureError::Malformed(format!(
                "more than {CHAIN_CERTS_MAX} certificates in the chain"
            )));
        }
        let chain = self
            .chain
            .iter()
            .map(|c| decode_b64("chain", c))
            .collect::<Result<Vec<_>, _>>()?;
        match self.format {
            SignatureFormat::Raw => {
                let name = self.algorithm.as_deref().ok_or_else(|| {
                    SignatureError::Malformed("a raw signature needs an algorithm".into())
                })?;
                let algorithm = RawAlgorithm::from_name(name)
                    .ok_or_else(|| SignatureError::Unsupported(name.chars().take(40).collect()))?;
                trust.verify_raw(message, algorithm, &value, &chain, now)
            }
            SignatureFormat::Cms => {
                if self.algorithm.is_some() {
                    return Err(SignatureError::Malformed(
                        "a CMS signature names its algorithm inside".into(),
                    ));
                }
                trust.verify_cms(message, &value, &chain, now)
            }
        }
    }
}

fn decode_b64(field: &str, text: &str) -> Result<Vec<u8>, SignatureError> {
    if text.len() > B64_FIELD_BYTES_MAX {
        return Err(SignatureError::Malformed(format!("{field} is too long")));
    }
    B64.decode(text)
        .map_err(|e| SignatureError::Malformed(format!("{field} is not base64: {e}")))
}
