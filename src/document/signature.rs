//! Signatures over a manifest's canonical bytes, as they travel.
//!
//! A document carries one signature per role: `organization` (the agency's seal) and
//! `person` (the competent person). Which roles are required is a per-organisation
//! policy; the default is both. Each signature is `raw` (algorithm + signature bytes +
//! the signer's certificate chain) or `cms` (a detached CMS SignedData in DER).
//!
//! Each role must come from its own kind of certificate ([`check_signer`]): the
//! organisation's seal (`urn:congvan:org:<sender>`) signs as `organization`, and the
//! competent person's certificate (`urn:congvan:person:<sender>`, issued to the name the
//! manifest prints as `signer.full_name`) signs as `person`. The State's and the Party's
//! rules on electronic documents require both acts, each from its own kind of
//! certificate, so two seals, two person certificates or swapped roles are not "two
//! signatures". The server and the recipient's client run the
//! same check.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls_pki_types::UnixTime;
use serde::{Deserialize, Serialize};

use crate::directory::OrgId;
use crate::pki::identity::{CertInfo, Identity};
use crate::pki::signing::{
    CHAIN_CERTS_MAX, JudgedAt, RawAlgorithm, SignatureError, SigningTrust, VerifiedSigner,
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

    /// Verifies this signature over `message` (the manifest's canonical bytes), with the
    /// signer's chain valid and unrevoked `now`.
    pub fn verify(
        &self,
        trust: &SigningTrust,
        message: &[u8],
        now: UnixTime,
    ) -> Result<VerifiedSigner, SignatureError> {
        self.verify_at(trust, message, JudgedAt::Now(now))
    }

    /// Verifies this signature over `message`, judging the signer's chain at `at` (see
    /// [`JudgedAt`]).
    pub fn verify_at(
        &self,
        trust: &SigningTrust,
        message: &[u8],
        at: JudgedAt,
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
                trust.verify_raw(message, algorithm, &value, &chain, at)
            }
            SignatureFormat::Cms => {
                if self.algorithm.is_some() {
                    return Err(SignatureError::Malformed(
                        "a CMS signature names its algorithm inside".into(),
                    ));
                }
                trust.verify_cms(message, &value, &chain, at)
            }
        }
    }
}

/// Why a signer whose signature verified may not sign in the role it claims.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoleError {
    /// The signer's certificate speaks for someone other than the sender.
    #[error("the {role} signature was made by {signer}, not by the sender {sender}", role = role.name())]
    OtherOrganisation {
        /// The role claimed.
        role: Role,
        /// The signer certificate's identity URI.
        signer: String,
        /// The sender.
        sender: String,
    },
    /// The certificate is of the wrong kind for the role: a person's certificate signing
    /// as the organisation, or a seal signing as the person.
    #[error(
        "the {role} signature must be made with {wanted}, but it was made with {signer}",
        role = role.name(),
        wanted = match role {
            Role::Organization => "the organisation's seal certificate (urn:congvan:org:)",
            Role::Person => "a person certificate (urn:congvan:person:)",
        }
    )]
    WrongKind {
        /// The role claimed.
        role: Role,
        /// The signer certificate's identity URI.
        signer: String,
    },
    /// The person certificate is issued to another name than the manifest's signer.
    #[error(
        "the person signature's certificate is issued to {certificate:?}, but the manifest names the signer {manifest:?}"
    )]
    NameMismatch {
        /// The certificate's common name (empty when it has none, or more than one).
        certificate: String,
        /// The manifest's `signer.full_name`.
        manifest: String,
    },
}

/// Checks that a verified signer may sign in `role` for `sender`: the organisation role
/// needs the sender's seal certificate, the person role a person certificate of the
/// sender whose common name (in NFC) is `signer_full_name`, the name the manifest
/// prints. Used by the server on submission and receipts, and by the recipient's client.
pub fn check_signer(
    role: Role,
    cert: &CertInfo,
    sender: &OrgId,
    signer_full_name: &str,
) -> Result<(), RoleError> {
    let (holder, is_person) = match &cert.identity {
        Identity::Org(id) => (id, false),
        Identity::Person(id) => (id, true),
        Identity::Auditor(_) => {
            return Err(RoleError::OtherOrganisation {
                role,
                signer: cert.identity.uri(),
                sender: sender.to_string(),
            });
        }
    };
    if holder != sender {
        return Err(RoleError::OtherOrganisation {
            role,
            signer: cert.identity.uri(),
            sender: sender.to_string(),
        });
    }
    if is_person != (role == Role::Person) {
        return Err(RoleError::WrongKind {
            role,
            signer: cert.identity.uri(),
        });
    }
    if role == Role::Person {
        // The manifest is NFC by construction (the parser refuses anything else); a CA
        // may have encoded the name decomposed, which is the same name.
        let name: String = cert
            .common_name
            .as_deref()
            .map(|n| unicode_normalization::UnicodeNormalization::nfc(n).collect())
            .unwrap_or_default();
        if name.is_empty() || name != signer_full_name {
            return Err(RoleError::NameMismatch {
                certificate: name,
                manifest: signer_full_name.to_owned(),
            });
        }
    }
    Ok(())
}

fn decode_b64(field: &str, text: &str) -> Result<Vec<u8>, SignatureError> {
    if text.len() > B64_FIELD_BYTES_MAX {
        return Err(SignatureError::Malformed(format!("{field} is too long")));
    }
    B64.decode(text)
        .map_err(|e| SignatureError::Malformed(format!("{field} is not base64: {e}")))
}
