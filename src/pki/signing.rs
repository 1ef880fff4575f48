//! Document signatures: verifying a signer's certificate chain, usage and revocation, and
//! the signature itself (raw, or detached CMS SignedData as `openssl cms` makes it), and
//! making raw signatures on the client.
//!
//! Chain validation is rustls-webpki's: chain to a configured anchor, validity at the
//! given time, revocation of every certificate in the chain against the CRLs with unknown
//! status refused and expired CRLs refused. webpki's EKU check is applied with
//! `required_if_present` (so that intermediates without the EKU pass) and the leaf is
//! then required, here, to carry id-kp-documentSigning explicitly.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ring::rand::SystemRandom;
use ring::signature::{self as ring_sig, KeyPair as _};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::identity::CertInfo;
use super::keystore::{KeyDer, KeySource, Unlocker};
use super::pem::{read_certs, read_crls};
use super::token::TokenKey;
use super::{EKU_DOCUMENT_SIGNING, PkiError};

/// DER content octets of id-kp-documentSigning (1.3.6.1.5.5.7.3.36).
const EKU_DOCUMENT_SIGNING_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x24];
/// Longest chain a signer may present (leaf included).
pub const CHAIN_CERTS_MAX: usize = 8;

/// Signature algorithms accepted for raw signatures (and their wire names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawAlgorithm {
    /// ECDSA P-256 with SHA-256, DER-encoded signature.
    EcdsaP256Sha256,
    /// Ed25519.
    Ed25519,
    /// RSA PKCS#1 v1.5 with SHA-256 (2048–8192 bits).
    RsaPkcs1Sha256,
    /// RSA-PSS with SHA-256, MGF1-SHA-256, salt 32 (2048–8192 bits).
    RsaPssSha256,
}

impl RawAlgorithm {
    /// Parses the wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ecdsa-p256-sha256" => RawAlgorithm::EcdsaP256Sha256,
            "ed25519" => RawAlgorithm::Ed25519,
            "rsa-pkcs1-sha256" => RawAlgorithm::RsaPkcs1Sha256,
            "rsa-pss-sha256" => RawAlgorithm::RsaPssSha256,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            RawAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            RawAlgorithm::Ed25519 => "ed25519",
            RawAlgorithm::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            RawAlgorithm::RsaPssSha256 => "rsa-pss-sha256",
        }
    }

    fn verifier(self) -> &'static dyn rustls_pki_types::SignatureVerificationAlgorithm {
        match self {
            RawAlgorithm::EcdsaP256Sha256 => webpki::ring::ECDSA_P256_SHA256,
            RawAlgorithm::Ed25519 => webpki::ring::ED25519,
            RawAlgorithm::RsaPkcs1Sha256 => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            RawAlgorithm::RsaPssSha256 => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        }
    }
}

/// Why a signature was refused. Each maps to one stable API error code.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature or certificate bytes cannot be parsed.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// The signature does not verify over the manifest with the signer's key.
    #[error("the signature does not match the manifest and the signer's key")]
    BadSignature,
    /// The chain does not lead to a configured trust anchor.
    #[error("the signer's certificate does not chain to a trusted CA: {0}")]
    UntrustedChain(String),
    /// The signer's certificate (or one in its chain) is expired or not yet valid.
    #[error("the signer's certificate is not valid now: {0}")]
    NotValidNow(String),
    /// The signer's certificate (or one in its chain) is revoked.
    #[error("the signer's certificate is revoked")]
    Revoked,
    /// Revocation status cannot be established (no current CRL for an issuer).
    #[error("the signer's revocation status cannot be established: {0}")]
    RevocationUnknown(String),
    /// The certificate is not for document signing.
    #[error("the signer's certificate lacks EKU id-kp-documentSigning (1.3.6.1.5.5.7.3.36)")]
    WrongUsage,
    /// The certificate carries no congvan identity.
    #[error("the signer's certificate carries no congvan identity: {0}")]
    NoIdentity(String),
    /// An algorithm congvan does not accept.
    #[error("unsupported signature algorithm: {0}")]
    Unsupported(String),
}

/// A signature that verified: who made it.
#[derive(Clone, Debug)]
pub struct VerifiedSigner {
    /// The signer's certificate, parsed.
    pub cert: CertInfo,
    /// The signer's certificate in DER.
    pub leaf_der: Vec<u8>,
}

/// Trust anchors and CRLs for document-signing certificates.
///
/// Chain validation (path building, validity, revocation of every certificate, usage) is
/// remembered per presented chain: a committee signs thousands of documents with one
/// certificate, and re-validating its chain for each one would cost four signature checks
/// more than the document's own. A remembered result is used only inside the window in
/// which it stays true without new information: after every certificate's notBefore,
/// before every certificate's notAfter and before the earliest CRL's nextUpdate. New CRLs
/// make a new `SigningTrust` (the server reloads them into a fresh one), so a revocation
/// takes effect for the next signature. Only successes are remembered; the manifest's own
/// signature is always checked.
pub struct SigningTrust {
    anchors: Vec<TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    /// The earliest nextUpdate of the CRLs (seconds since the epoch).
    crls_next_update: Option<u64>,
    validated: Mutex<HashMap<[u8; 32], Validated>>,
}

/// A chain that validated, and the window in which that result holds.
struct Validated {
    signer: VerifiedSigner,
    not_before: u64,
    not_after: u64,
}

/// Chains remembered at most; the memory is cleared when it is full.
const VALIDATED_CHAINS_MAX: usize = 4096;

impl SigningTrust {
    /// Loads anchors and CRLs from PEM files.
    pub fn load(anchor_files: &[PathBuf], crl_files: &[PathBuf]) -> Result<Self, PkiError> {
        let mut anchors = Vec::new();
        for path in anchor_files {
            for cert in read_certs(path)? {
                let anchor = webpki::anchor_from_trusted_cert(&cert)
                    .map_err(|e| PkiError::BadCertificate(format!("{}: {e}", path.display())))?
                    .to_owned();
                anchors.push(anchor);
            }
        }
        let mut crls = Vec::new();
        let mut crls_next_update: Option<u64> = None;
        for path in crl_files {
            for der in read_crls(path)? {
                let crl = OwnedCertRevocationList::from_der(&der).map_err(|e| {
                    PkiError::BadCertificate(format!("{}: CRL {e}", path.display()))
                })?;
                crls.push(CertRevocationList::from(crl));
                // A CRL without nextUpdate never expires; one we cannot read expires now.
                let next =
                    match x509_parser::revocation_list::CertificateRevocationList::from_der(&der) {
                        Ok((_, parsed)) => parsed
                            .next_update()
                            .map(|t| u64::try_from(t.timestamp()).unwrap_or(0)),
                        Err(_) => Some(0),
                    };
                if let Some(next) = next {
                    crls_next_update = Some(crls_next_update.map_or(next, |n| n.min(next)));
                }
            }
        }
        Ok(SigningTrust {
            anchors,
            crls,
            crls_next_update,
            validated: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies a raw signature over `message` made by the first certificate of `chain`.
    pub fn verify_raw(
        &self,
        message: &[u8],
        algorithm: RawAlgorithm,
        signature: &[u8],
        chain: &[Vec<u8>],
        now: UnixTime,
    ) -> Result<VerifiedSigner, SignatureError> {
        let (leaf, rest) = chain
            .split_first()
            .ok_or_else(|| SignatureError::Malformed("empty certificate chain".into()))?;
        let signer = self.verify_chain(leaf, rest, now)?;
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let ee = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| SignatureError::Malformed(format!("certificate: {e}")))?;
        ee.verify_signature(algorithm.verifier(), message, signature)
            .map_err(|e| match e {
                webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                    SignatureError::Unsupported(format!(
                        "{} does not match the certificate's key",
                        algorithm.name()
                    ))
                }
                _ => SignatureError::BadSignature,
            })?;
        Ok(signer)
    }

    /// Verifies a detached CMS SignedData over `message`.
    pub fn verify_cms(
        &self,
        message: &[u8],
        cms_der: &[u8],
        extra_chain: &[Vec<u8>],
        now: UnixTime,
    ) -> Result<VerifiedSigner, SignatureError> {
        let parsed = super::cms::parse_detached(cms_der)?;
        let mut intermediates: Vec<Vec<u8>> = parsed.other_certs.clone();
        intermediates.extend(extra_chain.iter().cloned());
        let signer = self.verify_chain(&parsed.signer_cert, &intermediates, now)?;
        parsed.verify(message)?;
        Ok(signer)
    }

    /// Validates a signer's chain for document signing, now (or recalls that it did, see
    /// the type's documentation).
    fn verify_chain(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        now: UnixTime,
    ) -> Result<VerifiedSigner, SignatureError> {
        if intermediates.len() + 1 > CHAIN_CERTS_MAX {
            return Err(SignatureError::Malformed(format!(
                "more than {CHAIN_CERTS_MAX} certificates in the chain"
            )));
        }
        let key = chain_key(leaf, intermediates);
        let seconds = now.as_secs();
        if let Ok(memory) = self.validated.lock() {
            if let Some(v) = memory.get(&key) {
                if v.not_before <= seconds && seconds < v.not_after {
                    return Ok(v.signer.clone());
                }
            }
        }
        let signer = self.validate_chain(leaf, intermediates, now)?;
        let mut not_before = 0u64;
        let mut not_after = self.crls_next_update.unwrap_or(u64::MAX);
        for der in std::iter::once(leaf).chain(intermediates.iter().map(Vec::as_slice)) {
            let Ok((_, cert)) = X509Certificate::from_der(der) else {
                // Validated but unreadable here: do not remember it.
                return Ok(signer);
            };
            let validity = cert.validity();
            not_before =
                not_before.max(u64::try_from(validity.not_before.timestamp()).unwrap_or(0));
            not_after = not_after.min(u64::try_from(validity.not_after.timestamp()).unwrap_or(0));
        }
        if let Ok(mut memory) = self.validated.lock() {
            if memory.len() >= VALIDATED_CHAINS_MAX {
                memory.clear();
            }
            memory.insert(
                key,
                Validated {
                    signer: signer.clone(),
                    not_before,
                    not_after,
                },
            );
        }
        Ok(signer)
    }

    /// Validates a signer's chain for document signing, now, from scratch.
    fn validate_chain(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        now: UnixTime,
    ) -> Result<VerifiedSigner, SignatureError> {
        let leaf_der = CertificateDer::from(leaf);
        let ee = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| SignatureError::Malformed(format!("certificate: {e}")))?;
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let crl_refs: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = RevocationOptionsBuilder::new(&crl_refs)
            .map(|b| {
                b.with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(UnknownStatusPolicy::Deny)
                    .with_expiration_policy(ExpirationPolicy::Enforce)
                    .build()
            })
            .ok();
        if revocation.is_none() {
            return Err(SignatureError::RevocationUnknown(
                "no CRLs are configured".into(),
            ));
        }
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            &intermediates,
            now,
            KeyUsage::required_if_present(EKU_DOCUMENT_SIGNING_DER),
            revocation,
            None,
        )
        .map_err(map_webpki)?;
        if !has_document_signing_eku(leaf)? {
            return Err(SignatureError::WrongUsage);
        }
        let cert =
            CertInfo::from_der(leaf).map_err(|e| SignatureError::NoIdentity(e.to_string()))?;
        Ok(VerifiedSigner {
            cert,
            leaf_der: leaf.to_vec(),
        })
    }
}

/// Verifies a raw signature with the public key of certificate `leaf` alone: no chain, no
/// revocation, no usage. The last step of [`SigningTrust::verify_raw`]; used on its own to
/// measure the cost of signature checks.
pub fn verify_with_certificate(
    leaf: &[u8],
    algorithm: RawAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let der = CertificateDer::from(leaf);
    EndEntityCert::try_from(&der)
        .and_then(|ee| ee.verify_signature(algorithm.verifier(), message, signature))
        .is_ok()
}

/// SHA-256 over the chain as presented, each certificate length-prefixed.
fn chain_key(leaf: &[u8], intermediates: &[Vec<u8>]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for der in std::iter::once(leaf).chain(intermediates.iter().map(Vec::as_slice)) {
        ctx.update(&(der.len() as u64).to_be_bytes());
        ctx.update(der);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

fn map_webpki(e: webpki::Error) -> SignatureError {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } | E::CertNotValidYet { .. } | E::InvalidCertValidity => {
            SignatureError::NotValidNow(format!("{e:?}"))
        }
        E::CertRevoked => SignatureError::Revoked,
        E::UnknownRevocationStatus | E::CrlExpired { .. } => {
            SignatureError::RevocationUnknown(format!("{e:?}"))
        }
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => SignatureError::WrongUsage,
        E::BadDer | E::BadDerTime | E::TrailingData(_) | E::MalformedExtensions => {
            SignatureError::Malformed(format!("certificate: {e:?}"))
        }
        other => SignatureError::UntrustedChain(format!("{other:?}")),
    }
}

fn has_document_signing_eku(der: &[u8]) -> Result<bool, SignatureError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| SignatureError::Malformed(format!("certificate: {e}")))?;
    let eku = cert
        .extended_key_usage()
        .map_err(|e| SignatureError::Malformed(format!("EKU: {e}")))?;
    let wanted = x509_parser::der_parser::oid::Oid::from(EKU_DOCUMENT_SIGNING)
        .map_err(|_| SignatureError::Malformed("EKU OID".into()))?;
    Ok(eku.is_some_and(|e| e.value.other.contains(&wanted)))
}

/// A private key that can make raw document signatures (client side).
pub struct SigningKey {
    inner: KeyInner,
    /// The signer's certificate chain in DER, leaf first.
    pub chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The algorithm and where the key is, never key material.
        let place = match &self.inner {
            KeyInner::Token(k) => k.describe(),
            _ => "in memory".to_owned(),
        };
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm().name())
            .field("key", &place)
            .finish_non_exhaustive()
    }
}

enum KeyInner {
    Ecdsa(ring_sig::EcdsaKeyPair),
    Ed25519(ring_sig::Ed25519KeyPair),
    Rsa(Arc<ring_sig::RsaKeyPair>),
    /// An ECDSA P-256 key on a PKCS#11 token.
    Token(TokenKey),
}

impl SigningKey {
    /// Loads a key file (plain PKCS#8 or PKCS#1; an encrypted PKCS#8 file asks for its
    /// passphrase on the terminal) and its certificate chain. Profiles go through
    /// [`crate::pki::keystore::Unlocker::signing_key`], which also knows tokens and where
    /// passphrases come from.
    pub fn load(cert_path: &std::path::Path, key_path: &std::path::Path) -> Result<Self, PkiError> {
        Unlocker::default().signing_key(cert_path, &KeySource::File(key_path.to_owned()))
    }

    /// A key from its DER (P-256, Ed25519 or RSA) with its chain, checked against the
    /// chain's leaf. The paths name the files in messages.
    pub(crate) fn from_der(
        chain: Vec<Vec<u8>>,
        key: &KeyDer,
        cert_path: &std::path::Path,
        key_path: &std::path::Path,
    ) -> Result<Self, PkiError> {
        let bad = |reason: &str| PkiError::Pem {
            path: key_path.display().to_string(),
            reason: reason.to_owned(),
        };
        let inner = match key {
            KeyDer::Pkcs8(bytes) => {
                let bytes = bytes.as_slice();
                if let Ok(k) = ring_sig::EcdsaKeyPair::from_pkcs8(
                    &ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING,
                    bytes,
                    &SystemRandom::new(),
                ) {
                    KeyInner::Ecdsa(k)
                } else if let Ok(k) = ring_sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes) {
                    KeyInner::Ed25519(k)
                } else if let Ok(k) = ring_sig::RsaKeyPair::from_pkcs8(bytes) {
                    KeyInner::Rsa(Arc::new(k))
                } else {
                    return Err(bad("not a P-256, Ed25519 or RSA PKCS#8 key"));
                }
            }
            KeyDer::Pkcs1(bytes) => KeyInner::Rsa(Arc::new(
                ring_sig::RsaKeyPair::from_der(bytes).map_err(|_| bad("invalid RSA key"))?,
            )),
        };
        let key = SigningKey { inner, chain };
        key.check_matches_certificate(cert_path)?;
        Ok(key)
    }

    /// A key on a token with its chain, checked against the chain's leaf: by the public
    /// point when the token keeps the public key, else by a test signature, so that a
    /// profile naming the wrong key fails here and not at the server.
    pub(crate) fn from_token(
        chain: Vec<Vec<u8>>,
        key: TokenKey,
        cert_path: &std::path::Path,
    ) -> Result<Self, PkiError> {
        let leaf = chain
            .first()
            .ok_or_else(|| PkiError::BadCertificate("empty chain".into()))?;
        let (_, cert) =
            X509Certificate::from_der(leaf).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        let spki_key = cert.public_key().subject_public_key.data.as_ref();
        let matches = match key.public_point() {
            Some(point) => point == spki_key,
            None => {
                let challenge = b"congvan: does this token key belong to this certificate?";
                let signature = key.sign_p256_sha256(challenge)?;
                verify_with_certificate(leaf, RawAlgorithm::EcdsaP256Sha256, challenge, &signature)
            }
        };
        if !matches {
            return Err(key.mismatch(cert_path).into());
        }
        Ok(SigningKey {
            inner: KeyInner::Token(key),
            chain,
        })
    }

    /// The raw algorithm this key signs with.
    pub fn algorithm(&self) -> RawAlgorithm {
        match self.inner {
            KeyInner::Ecdsa(_) | KeyInner::Token(_) => RawAlgorithm::EcdsaP256Sha256,
            KeyInner::Ed25519(_) => RawAlgorithm::Ed25519,
            KeyInner::Rsa(_) => RawAlgorithm::RsaPssSha256,
        }
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let rng = SystemRandom::new();
        let failed = || PkiError::Generate("signing failed".into());
        match &self.inner {
            KeyInner::Ecdsa(k) => Ok(k
                .sign(&rng, message)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec()),
            KeyInner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            KeyInner::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&ring_sig::RSA_PSS_SHA256, &rng, message, &mut sig)
                    .map_err(|_| failed())?;
                Ok(sig)
            }
            KeyInner::Token(k) => Ok(k.sign_p256_sha256(message)?),
        }
    }

    fn check_matches_certificate(&self, cert_path: &std::path::Path) -> Result<(), PkiError> {
        let leaf = self
            .chain
            .first()
            .ok_or_else(|| PkiError::BadCertificate("empty chain".into()))?;
        let (_, cert) =
            X509Certificate::from_der(leaf).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        let spki_key = cert.public_key().subject_public_key.data.as_ref();
        let ours: &[u8] = match &self.inner {
            KeyInner::Ecdsa(k) => k.public_key().as_ref(),
            KeyInner::Ed25519(k) => k.public_key().as_ref(),
            KeyInner::Rsa(k) => k.public_key().as_ref(),
            // Checked when the key was found on the token.
            KeyInner::Token(_) => return Ok(()),
        };
        if spki_key != ours {
            return Err(PkiError::BadCertificate(format!(
                "{} does not belong to the private key beside it",
                cert_path.display()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pki::demo::{Ca, LeafKind, LeafSpec};

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_remembered_chain_is_used_only_inside_its_validity_window() {
        let dir = tempfile::tempdir().unwrap();
        let root = Ca::new_root("root").unwrap();
        let intermediate = root.new_intermediate("intermediate").unwrap();
        let mut spec = LeafSpec::new(LeafKind::DocumentSigning, "signer").uri("urn:congvan:org:hn");
        let now = time::OffsetDateTime::now_utc();
        spec.not_after = now + time::Duration::hours(2);
        let issued = intermediate.issue(&spec).unwrap();
        issued.write(dir.path(), "sign").unwrap();
        let anchors = [write(dir.path(), "root.crt", root.cert_pem())];
        let crls = [
            write(
                dir.path(),
                "root.crl",
                &root.sign_crl(1, Vec::new()).unwrap(),
            ),
            write(
                dir.path(),
                "int.crl",
                &intermediate.sign_crl(1, Vec::new()).unwrap(),
            ),
        ];
        let trust = SigningTrust::load(&anchors, &crls).unwrap();
        let key =
            SigningKey::load(&dir.path().join("sign.crt"), &dir.path().join("sign.key")).unwrap();
        let message = b"manifest";
        let signature = key.sign(message).unwrap();
        let at = |offset: i64| {
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                (now.unix_timestamp() + offset) as u64,
            ))
        };
        // Validated from scratch, then remembered.
        trust
            .verify_raw(message, key.algorithm(), &signature, &key.chain, at(0))
            .unwrap();
        assert_eq!(trust.validated.lock().unwrap().len(), 1);
        trust
            .verify_raw(message, key.algorithm(), &signature, &key.chain, at(60))
            .unwrap();
        // The memory never vouches for a time past the leaf's notAfter…
        let late = trust.verify_raw(
            message,
            key.algorithm(),
            &signature,
            &key.chain,
            at(3 * 3600),
        );
        assert!(
            matches!(late, Err(SignatureError::NotValidNow(_))),
            "{late:?}"
        );
        // …nor before its notBefore.
        let early = trust.verify_raw(message, key.algorithm(), &signature, &key.chain, at(-7200));
        assert!(
            matches!(early, Err(SignatureError::NotValidNow(_))),
            "{early:?}"
        );
        // And the manifest's own signature is always checked.
        let mut forged = signature.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(
            trust
                .verify_raw(message, key.algorithm(), &forged, &key.chain, at(0))
                .unwrap_err(),
            SignatureError::BadSignature
        );
    }
}
