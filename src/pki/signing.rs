//! Document signatures: verifying a signer's certificate chain, usage and revocation, and
//! the signature itself (raw, or detached CMS SignedData as `openssl cms` makes it), and
//! making raw signatures on the client.
//!
//! Chain validation is rustls-webpki's: chain to a configured anchor, validity at the
//! given time, revocation of every certificate in the chain against the CRLs with unknown
//! status refused and expired CRLs refused. webpki's EKU check is applied with
//! `required_if_present` (so that intermediates without the EKU pass) and the leaf is
//! then required, here, to carry id-kp-documentSigning explicitly.
//!
//! A signature is judged at a time ([`JudgedAt`]). On submission that is now, and any
//! revocation refuses (webpki's all-or-nothing check). A recipient judges a document at
//! the server's signed acceptance time instead: the chain must have been valid then, and
//! webpki's revocation check cannot say *when* a certificate stopped being good, so the
//! CRL entries are read here (x509-parser) after webpki has built and checked the path
//! without them. The CRLs' signatures, issuers and freshness are still checked. A
//! revocation after the time of signing for a reason that says the key was retired, not
//! stolen (superseded, affiliation changed, cessation of operation, privilege withdrawn,
//! certificate hold) leaves the signature valid and is reported. A compromise (of the
//! key, the CA or the attribute authority) or a revocation that gives no reason or
//! `unspecified` invalidates from the entry's invalidityDate, and without one it
//! invalidates every signature the key ever made, because nobody can say since when the
//! key was in someone else's hands.

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
use x509_parser::revocation_list::{CertificateRevocationList, RevokedCertificate};

use super::identity::CertInfo;
use super::keystore::{KeyDer, KeySource, Unlocker};
use super::pem::{read_certs, read_crl_file};
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
    /// A certificate in the chain is revoked in a way that covers the time of signing
    /// (the message says which certificate, why and since when).
    #[error("{0}")]
    RevokedAtSigning(String),
    /// The signer's OCSP responder could not be reached, timed out, or answered with an
    /// error status, and no CRL covers the certificate.
    #[error("the signer's OCSP responder cannot answer: {0}")]
    OcspUnavailable(String),
    /// An OCSP response cannot be used: malformed, about another certificate, not signed
    /// by the issuer or its delegated responder, or not current.
    #[error("{0}")]
    OcspInvalid(String),
}

impl From<super::ocsp::OcspError> for SignatureError {
    fn from(e: super::ocsp::OcspError) -> Self {
        use super::ocsp::OcspError as E;
        match e {
            E::Status(_) | E::NoResponder(_) => SignatureError::OcspUnavailable(e.to_string()),
            _ => SignatureError::OcspInvalid(e.to_string()),
        }
    }
}

/// How long after an OCSP response's nextUpdate it still stands as evidence for a
/// document accepted then, in seconds: the payload's upload may take that long after the
/// manifest's signatures were checked (its body timeouts bound a live upload; a sender
/// may also upload later, and the window says how much later is still covered).
pub const OCSP_EVIDENCE_GRACE_SECONDS: i64 = 24 * 3600;

/// Where to ask about a signer's certificate over OCSP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspTarget {
    /// The signer's certificate, DER.
    pub leaf: Vec<u8>,
    /// Its issuer's certificate, DER (the CertID names it).
    pub issuer: Vec<u8>,
    /// The responder URL from the leaf's authorityInfoAccess.
    pub url: String,
    /// Whether a loaded CRL of the issuer already covers the leaf.
    pub crl_covers: bool,
}

/// The time a signature is judged at.
#[derive(Clone, Copy, Debug)]
pub enum JudgedAt {
    /// Now: the chain must be valid now and nothing in it revoked (a submission).
    Now(UnixTime),
    /// A past time at which the signature is known to have existed, attested by someone
    /// other than the signer (the server's signed acceptance time), judged with CRLs that
    /// must be current at `crls_current_at` (now, for a recipient's fetch).
    Signed {
        /// When the signature is known to have existed.
        signed: UnixTime,
        /// The time the CRLs must still be current at.
        crls_current_at: UnixTime,
    },
}

/// A certificate of a signer's chain that was revoked after the time of signing, in a
/// way that leaves the signature valid: what the recipient is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaterRevocation {
    /// The revoked certificate's subject.
    pub certificate: String,
    /// The CRL entry's reason (`superseded`, `keyCompromise`…, or `unspecified`).
    pub reason: String,
    /// The revocation date, RFC 3339.
    pub revoked_at: String,
    /// The entry's invalidityDate (since when the key is suspect), RFC 3339, if stated.
    pub invalid_since: Option<String>,
    /// True for a routine reason (the key was retired, not stolen); false for a
    /// compromise dated after the time of signing.
    pub routine: bool,
    /// The time of signing the signature was judged at, RFC 3339.
    pub signed_at: String,
}

impl std::fmt::Display for LaterRevocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was revoked on {} (reason {})",
            self.certificate, self.revoked_at, self.reason
        )?;
        match (&self.invalid_since, self.routine) {
            (Some(since), false) => write!(
                f,
                "; the CA states it was invalid since {since}, after the document was accepted on {}, so this signature stands",
                self.signed_at
            ),
            _ => write!(
                f,
                " after the document was accepted on {}; a routine revocation after acceptance does not affect this signature",
                self.signed_at
            ),
        }
    }
}

/// A signature that verified: who made it.
#[derive(Clone, Debug)]
pub struct VerifiedSigner {
    /// The signer's certificate, parsed.
    pub cert: CertInfo,
    /// The signer's certificate in DER.
    pub leaf_der: Vec<u8>,
    /// Certificates of the chain revoked after the time of signing without invalidating
    /// it (only when judged at a past time).
    pub later_revocations: Vec<LaterRevocation>,
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
    /// The anchors' certificates, for checking CRL signatures by hand.
    anchor_certs: Vec<Vec<u8>>,
    crls: Vec<CertRevocationList<'static>>,
    /// The CRLs in DER, for reading entries by hand.
    crl_ders: Vec<Vec<u8>>,
    /// The text of each CRL file, exactly as loaded: what `/v1/crls` serves, so that a
    /// client never sees a CRL the server is not yet judging signatures by.
    crl_texts: Vec<String>,
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
        let mut anchor_certs = Vec::new();
        for path in anchor_files {
            for cert in read_certs(path)? {
                let anchor = webpki::anchor_from_trusted_cert(&cert)
                    .map_err(|e| PkiError::BadCertificate(format!("{}: {e}", path.display())))?
                    .to_owned();
                anchors.push(anchor);
                anchor_certs.push(cert.to_vec());
            }
        }
        let mut crls = Vec::new();
        let mut crl_ders = Vec::new();
        let mut crl_texts = Vec::new();
        let mut crls_next_update: Option<u64> = None;
        for path in crl_files {
            let (text, ders) = read_crl_file(path)?;
            crl_texts.push(text);
            for der in ders {
                crl_ders.push(der.to_vec());
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
            anchor_certs,
            crls,
            crl_ders,
            crl_texts,
            crls_next_update,
            validated: Mutex::new(HashMap::new()),
        })
    }

    /// The text of each CRL file these signatures are judged against, as loaded.
    pub fn crl_texts(&self) -> &[String] {
        &self.crl_texts
    }

    /// Verifies a raw signature over `message` made by the first certificate of `chain`.
    pub fn verify_raw(
        &self,
        message: &[u8],
        algorithm: RawAlgorithm,
        signature: &[u8],
        chain: &[Vec<u8>],
        at: JudgedAt,
    ) -> Result<VerifiedSigner, SignatureError> {
        self.verify_raw_with_ocsp(message, algorithm, signature, chain, at, &[])
    }

    /// [`Self::verify_raw`], judging the signer's certificate also (or, where no CRL
    /// covers it, only) by the OCSP responses in `ocsp` (DER), see
    /// `Self::verify_chain`.
    pub fn verify_raw_with_ocsp(
        &self,
        message: &[u8],
        algorithm: RawAlgorithm,
        signature: &[u8],
        chain: &[Vec<u8>],
        at: JudgedAt,
        ocsp: &[Vec<u8>],
    ) -> Result<VerifiedSigner, SignatureError> {
        let (leaf, rest) = chain
            .split_first()
            .ok_or_else(|| SignatureError::Malformed("empty certificate chain".into()))?;
        let signer = self.verify_chain(leaf, rest, at, ocsp)?;
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
        at: JudgedAt,
    ) -> Result<VerifiedSigner, SignatureError> {
        self.verify_cms_with_ocsp(message, cms_der, extra_chain, at, &[])
    }

    /// [`Self::verify_cms`] with OCSP responses, as [`Self::verify_raw_with_ocsp`].
    pub fn verify_cms_with_ocsp(
        &self,
        message: &[u8],
        cms_der: &[u8],
        extra_chain: &[Vec<u8>],
        at: JudgedAt,
        ocsp: &[Vec<u8>],
    ) -> Result<VerifiedSigner, SignatureError> {
        let parsed = super::cms::parse_detached(cms_der)?;
        let mut intermediates: Vec<Vec<u8>> = parsed.other_certs.clone();
        intermediates.extend(extra_chain.iter().cloned());
        let signer = self.verify_chain(&parsed.signer_cert, &intermediates, at, ocsp)?;
        parsed.verify(message)?;
        Ok(signer)
    }

    /// Where to ask about the signer of a chain over OCSP: `Ok(None)` when its certificate
    /// names no OCSP responder, or when a loaded CRL covers it and `even_if_crl_covers` is
    /// false (both cheap checks, made first). Otherwise the path is built (without
    /// revocation) to find the leaf's issuer, so a chain that does not verify is refused
    /// here already.
    pub fn ocsp_target(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        now: UnixTime,
        even_if_crl_covers: bool,
    ) -> Result<Option<OcspTarget>, SignatureError> {
        let Some(url) = super::ocsp::responder_url(leaf)? else {
            return Ok(None);
        };
        let crl_covers = self.crl_covers(leaf)?;
        if crl_covers && !even_if_crl_covers {
            return Ok(None);
        }
        let path = self.path_of(leaf, intermediates, now)?;
        let issuer = path.get(1).cloned().ok_or_else(|| {
            SignatureError::UntrustedChain("the signer's certificate has no issuer".into())
        })?;
        Ok(Some(OcspTarget {
            leaf: leaf.to_vec(),
            issuer,
            url,
            crl_covers,
        }))
    }

    /// The verified path of `leaf` at `at` without revocation, leaf first and the anchor
    /// certificate last.
    fn path_of(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        at: UnixTime,
    ) -> Result<Vec<Vec<u8>>, SignatureError> {
        let leaf_der = CertificateDer::from(leaf);
        let ee = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| SignatureError::Malformed(format!("certificate: {e}")))?;
        let presented: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let path = ee
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &presented,
                at,
                KeyUsage::required_if_present(EKU_DOCUMENT_SIGNING_DER),
                None,
                None,
            )
            .map_err(map_webpki)?;
        let mut ders = vec![leaf.to_vec()];
        ders.extend(
            path.intermediate_certificates()
                .map(|c| c.der().as_ref().to_vec()),
        );
        let top = ders.last().cloned().unwrap_or_else(|| leaf.to_vec());
        ders.push(self.anchor_of(&top)?.to_vec());
        Ok(ders)
    }

    /// Whether a loaded CRL (of the scope this module reads, see `judge_revocation`)
    /// was issued by the issuer of `cert_der`.
    fn crl_covers(&self, cert_der: &[u8]) -> Result<bool, SignatureError> {
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| SignatureError::Malformed(format!("certificate: {e}")))?;
        Ok(self.crl_ders.iter().any(|der| {
            CertificateRevocationList::from_der(der).is_ok_and(|(_, crl)| {
                crl.issuer().as_raw() == cert.issuer().as_raw()
                    && !crl.extensions().iter().any(|e| {
                        e.oid == x509_parser::oid_registry::OID_X509_EXT_ISSUER_DISTRIBUTION_POINT
                            || e.oid == x509_parser::oid_registry::OID_X509_EXT_DELTA_CRL_INDICATOR
                    })
            })
        }))
    }

    /// Validates a signer's chain for document signing at `at`: now (or recalls that it
    /// did, see the type's documentation), or at a past time of signing (never
    /// remembered: recipients judge few signatures). With OCSP responses the chain is
    /// judged certificate by certificate (`validate_chain_at`), the leaf by the response
    /// that names it and by its issuer's CRL where one is loaded, and never remembered:
    /// the server caches responses instead.
    fn verify_chain(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        at: JudgedAt,
        ocsp: &[Vec<u8>],
    ) -> Result<VerifiedSigner, SignatureError> {
        if intermediates.len() + 1 > CHAIN_CERTS_MAX {
            return Err(SignatureError::Malformed(format!(
                "more than {CHAIN_CERTS_MAX} certificates in the chain"
            )));
        }
        let now = match at {
            JudgedAt::Now(now) if !ocsp.is_empty() => {
                let signer = self.validate_chain_at(leaf, intermediates, now, now, ocsp, true)?;
                if !signer.later_revocations.is_empty() {
                    return Err(SignatureError::Revoked);
                }
                return Ok(signer);
            }
            JudgedAt::Now(now) => now,
            JudgedAt::Signed {
                signed,
                crls_current_at,
            } => {
                return self.validate_chain_at(
                    leaf,
                    intermediates,
                    signed,
                    crls_current_at,
                    ocsp,
                    false,
                );
            }
        };
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
            later_revocations: Vec::new(),
        })
    }

    /// Validates a signer's chain as of `signed`, judging revocation entry by entry; the
    /// leaf also by the OCSP response in `ocsp` that names it (`live`: the response must
    /// be current at `signed`, which is now; otherwise it must have been current when the
    /// document was accepted at `signed`).
    fn validate_chain_at(
        &self,
        leaf: &[u8],
        intermediates: &[Vec<u8>],
        signed: UnixTime,
        crls_current_at: UnixTime,
        ocsp: &[Vec<u8>],
        live: bool,
    ) -> Result<VerifiedSigner, SignatureError> {
        // Path, validity at the time of signing and usage, without revocation: webpki
        // would refuse any listed certificate whatever the entry says. The path comes
        // leaf first, each certificate followed by its issuer, the anchor last.
        let ders = self.path_of(leaf, intermediates, signed)?;
        if !has_document_signing_eku(leaf)? {
            return Err(SignatureError::WrongUsage);
        }
        let Some((anchor, path)) = ders.split_last() else {
            return Err(SignatureError::Malformed(
                "an empty certificate path".into(),
            ));
        };
        let path_ders: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
        let mut later = Vec::new();
        for (i, der) in path_ders.iter().enumerate() {
            let issuer = path_ders.get(i + 1).copied().unwrap_or(anchor.as_slice());
            let by_ocsp = if i == 0 && !ocsp.is_empty() {
                let (judged, revocation) = self.judge_ocsp(der, issuer, ocsp, signed, live)?;
                later.extend(revocation);
                judged
            } else {
                false
            };
            // A leaf judged by OCSP is also judged by its issuer's CRL where one is
            // loaded: either source saying revoked refuses.
            if by_ocsp && !self.crl_covers(der)? {
                continue;
            }
            if let Some(revocation) =
                self.judge_revocation(der, issuer, i == 0, signed, crls_current_at)?
            {
                later.push(revocation);
            }
        }
        let cert =
            CertInfo::from_der(leaf).map_err(|e| SignatureError::NoIdentity(e.to_string()))?;
        Ok(VerifiedSigner {
            cert,
            leaf_der: leaf.to_vec(),
            later_revocations: later,
        })
    }

    /// Judges the leaf `cert_der` by the response in `ocsp` that names it: `Ok((true, _))`
    /// when one does and it leaves a signature made at `signed` valid (with the later
    /// revocation it reports, if any), an error when it does not. Responses about other
    /// certificates are skipped, but if none is about this one that is an error too: the
    /// caller gave responses because it expected them to decide.
    fn judge_ocsp(
        &self,
        cert_der: &[u8],
        issuer_der: &[u8],
        ocsp: &[Vec<u8>],
        signed: UnixTime,
        live: bool,
    ) -> Result<(bool, Option<LaterRevocation>), SignatureError> {
        use super::ocsp::{OcspError, OcspStatus, check_response};
        let mut last = OcspError::OtherCertificate;
        let checked = ocsp
            .iter()
            .find_map(|der| match check_response(der, cert_der, issuer_der) {
                Ok(checked) => Some(checked),
                Err(e) => {
                    last = e;
                    None
                }
            });
        let Some(checked) = checked else {
            return Err(last.into());
        };
        let signed = unix_seconds(signed);
        if live {
            checked.current_at(signed)?;
        } else {
            checked.covers(signed, OCSP_EVIDENCE_GRACE_SECONDS)?;
        }
        let subject = X509Certificate::from_der(cert_der)
            .map(|(_, c)| format!("the signer's certificate ({})", c.subject()))
            .unwrap_or_else(|_| "the signer's certificate".into());
        match checked.status {
            OcspStatus::Good => Ok((true, None)),
            OcspStatus::Unknown => Err(SignatureError::RevocationUnknown(format!(
                "the OCSP responder does not know {subject}"
            ))),
            OcspStatus::Revoked { .. } if live => Err(SignatureError::Revoked),
            OcspStatus::Revoked { revoked_at, reason } => {
                judge_fact(reason, revoked_at, None, subject, signed).map(|l| (true, Some(l)))
            }
        }
    }

    /// The configured anchor certificate that issued `top`, the last certificate of a
    /// path webpki verified.
    fn anchor_of(&self, top: &[u8]) -> Result<&[u8], SignatureError> {
        let (_, top) = X509Certificate::from_der(top)
            .map_err(|e| SignatureError::Malformed(format!("certificate: {e}")))?;
        self.anchor_certs
            .iter()
            .find(|der| {
                X509Certificate::from_der(der).is_ok_and(|(_, anchor)| {
                    anchor.subject().as_raw() == top.issuer().as_raw()
                        && top.verify_signature(Some(anchor.public_key())).is_ok()
                })
            })
            .map(Vec::as_slice)
            .ok_or_else(|| {
                SignatureError::UntrustedChain("the path's anchor certificate is not loaded".into())
            })
    }

    /// Judges the revocation status of `cert_der` (issued by `issuer_der`) at `signed`:
    /// `Ok(None)` if no current CRL of its issuer lists it, `Ok(Some(..))` if one lists it
    /// in a way that leaves a signature made at `signed` valid, an error otherwise.
    fn judge_revocation(
        &self,
        cert_der: &[u8],
        issuer_der: &[u8],
        is_leaf: bool,
        signed: UnixTime,
        crls_current_at: UnixTime,
    ) -> Result<Option<LaterRevocation>, SignatureError> {
        let malformed = |e: String| SignatureError::Malformed(format!("certificate: {e}"));
        let (_, cert) =
            X509Certificate::from_der(cert_der).map_err(|e| malformed(e.to_string()))?;
        let (_, issuer) =
            X509Certificate::from_der(issuer_der).map_err(|e| malformed(e.to_string()))?;
        if issuer.subject().as_raw() != cert.issuer().as_raw() {
            return Err(SignatureError::UntrustedChain(
                "the path's certificates are not in issuing order".into(),
            ));
        }
        if let Ok(Some(usage)) = issuer.key_usage() {
            if !usage.value.crl_sign() {
                return Err(SignatureError::RevocationUnknown(format!(
                    "{} may not sign CRLs",
                    issuer.subject()
                )));
            }
        }
        let mut authoritative = false;
        let mut found = None;
        for der in &self.crl_ders {
            let Ok((_, crl)) = CertificateRevocationList::from_der(der) else {
                continue;
            };
            if crl.issuer().as_raw() != cert.issuer().as_raw() {
                continue;
            }
            // Partitioned CRLs (issuingDistributionPoint) and delta CRLs need scope rules
            // this check does not implement; a certificate that only they cover has an
            // unknown status, which refuses.
            if crl.extensions().iter().any(|e| {
                e.oid == x509_parser::oid_registry::OID_X509_EXT_ISSUER_DISTRIBUTION_POINT
                    || e.oid == x509_parser::oid_registry::OID_X509_EXT_DELTA_CRL_INDICATOR
            }) {
                continue;
            }
            crl.verify_signature(issuer.public_key()).map_err(|_| {
                SignatureError::RevocationUnknown(format!(
                    "a CRL naming {} as its issuer does not verify with that issuer's key",
                    issuer.subject()
                ))
            })?;
            if let Some(next) = crl.next_update() {
                if next.timestamp() <= unix_seconds(crls_current_at) {
                    return Err(SignatureError::RevocationUnknown(format!(
                        "the CRL of {} expired at {}",
                        issuer.subject(),
                        rfc3339(next.timestamp())
                    )));
                }
            }
            authoritative = true;
            if let Some(entry) = crl
                .iter_revoked_certificates()
                .find(|e| e.raw_serial() == cert.raw_serial())
            {
                let subject = if is_leaf {
                    format!("the signer's certificate ({})", cert.subject())
                } else {
                    format!("the CA certificate {}", cert.subject())
                };
                found = Some(judge_entry(entry, subject, unix_seconds(signed))?);
            }
        }
        if !authoritative {
            return Err(SignatureError::RevocationUnknown(format!(
                "no current CRL from {}",
                issuer.subject()
            )));
        }
        Ok(found)
    }
}

/// CRL reason codes (RFC 5280 §5.3.1) after which signatures made before the revocation
/// stay valid, because the reason says the key was retired, not stolen:
/// affiliationChanged, superseded, cessationOfOperation, certificateHold (a suspension)
/// and privilegeWithdrawn. Everything else, including no reason and `unspecified` (what
/// an operator types in a hurry for a stolen key), is treated as a compromise.
const ROUTINE_REASONS: [u8; 5] = [3, 4, 5, 6, 9];

fn reason_name(code: Option<u8>) -> &'static str {
    match code {
        None => "none stated",
        Some(0) => "unspecified",
        Some(1) => "keyCompromise",
        Some(2) => "cACompromise",
        Some(3) => "affiliationChanged",
        Some(4) => "superseded",
        Some(5) => "cessationOfOperation",
        Some(6) => "certificateHold",
        Some(8) => "removeFromCRL",
        Some(9) => "privilegeWithdrawn",
        Some(10) => "aACompromise",
        Some(_) => "unknown",
    }
}

/// Judges one CRL entry against the time of signing (seconds since the epoch).
fn judge_entry(
    entry: &RevokedCertificate<'_>,
    subject: String,
    signed: i64,
) -> Result<LaterRevocation, SignatureError> {
    judge_fact(
        entry.reason_code().map(|(_, r)| r.0),
        entry.revocation_date.timestamp(),
        invalidity_date(entry),
        subject,
        signed,
    )
}

/// Judges one revocation (from a CRL entry or an OCSP response: reason code, revocation
/// time and invalidity date, seconds since the epoch) against the time of signing.
fn judge_fact(
    code: Option<u8>,
    revoked_at: i64,
    invalid_since: Option<i64>,
    subject: String,
    signed: i64,
) -> Result<LaterRevocation, SignatureError> {
    let reason = reason_name(code);
    let accepted = rfc3339(signed);
    let routine = code.is_some_and(|c| ROUTINE_REASONS.contains(&c));
    let later = LaterRevocation {
        certificate: subject.clone(),
        reason: reason.to_owned(),
        revoked_at: rfc3339(revoked_at),
        invalid_since: invalid_since.map(rfc3339),
        routine,
        signed_at: accepted.clone(),
    };
    if routine {
        // A routine retirement: the certificate was good until it was revoked (or until
        // the invalidity date, if the CA stated an earlier one).
        let cutoff = invalid_since.map_or(revoked_at, |d| d.min(revoked_at));
        if signed < cutoff {
            return Ok(later);
        }
        return Err(SignatureError::RevokedAtSigning(format!(
            "{subject} was revoked on {} (reason {reason}), before the document was accepted on {accepted}",
            rfc3339(cutoff)
        )));
    }
    match invalid_since {
        Some(since) if signed < since => Ok(later),
        Some(since) => Err(SignatureError::RevokedAtSigning(format!(
            "{subject} was revoked on {} (reason {reason}); the CA states it was invalid since {}, before the document was accepted on {accepted}",
            rfc3339(revoked_at),
            rfc3339(since)
        ))),
        None => Err(SignatureError::RevokedAtSigning(format!(
            "{subject} was revoked on {} (reason {reason}) with no date since which it is invalid, so no signature made with its key can be trusted, not even on this document (accepted {accepted})",
            rfc3339(revoked_at)
        ))),
    }
}

/// The entry's invalidityDate in seconds since the epoch. RFC 5280 says GeneralizedTime,
/// but rcgen 0.14 (which makes the DEMO CRLs) writes UTCTime, so both are read. One that
/// cannot be read counts as absent, which only ever makes the judgement stricter.
fn invalidity_date(entry: &RevokedCertificate<'_>) -> Option<i64> {
    if let Some((_, t)) = entry.invalidity_date() {
        return Some(t.timestamp());
    }
    let ext = entry.find_extension(&x509_parser::oid_registry::OID_X509_EXT_INVALIDITY_DATE)?;
    x509_parser::time::ASN1Time::from_der(ext.value)
        .ok()
        .map(|(_, t)| t.timestamp())
}

fn unix_seconds(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

/// RFC 3339 for seconds since the epoch, for messages.
pub(crate) fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{seconds} s after 1970"))
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
#[allow(clippy::unwrap_used, reason = "tests fail loudly by design")]
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
            JudgedAt::Now(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                (now.unix_timestamp() + offset) as u64,
            )))
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

    /// A root, an intermediate, a seal certificate and its key, for judging revocation.
    struct Pki {
        dir: tempfile::TempDir,
        root: Ca,
        intermediate: Ca,
        leaf_der: Vec<u8>,
        key: SigningKey,
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let root = Ca::new_root("root").unwrap();
        let intermediate = root.new_intermediate("intermediate").unwrap();
        let spec = LeafSpec::new(LeafKind::DocumentSigning, "seal").uri("urn:congvan:org:hn");
        let issued = intermediate.issue(&spec).unwrap();
        issued.write(dir.path(), "sign").unwrap();
        let key =
            SigningKey::load(&dir.path().join("sign.crt"), &dir.path().join("sign.key")).unwrap();
        Pki {
            dir,
            root,
            intermediate,
            leaf_der: issued.der,
            key,
        }
    }

    fn entry(
        der: &[u8],
        at: time::OffsetDateTime,
        reason: Option<rcgen::RevocationReason>,
    ) -> rcgen::RevokedCertParams {
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(cert.raw_serial()),
            revocation_time: at,
            reason_code: reason,
            invalidity_date: None,
        }
    }

    impl Pki {
        /// Trust with the given root and intermediate CRL texts (None: leave it out).
        fn trust(&self, root_crl: Option<String>, int_crl: Option<String>) -> SigningTrust {
            let anchors = [write(self.dir.path(), "root.crt", self.root.cert_pem())];
            let mut crls = Vec::new();
            for (name, text) in [("root.crl", root_crl), ("int.crl", int_crl)] {
                if let Some(text) = text {
                    crls.push(write(self.dir.path(), name, &text));
                }
            }
            SigningTrust::load(&anchors, &crls).unwrap()
        }

        /// Judges a fresh signature as if made `ago` seconds before now.
        fn judge(
            &self,
            trust: &SigningTrust,
            ago: i64,
            crls_at: i64,
        ) -> Result<VerifiedSigner, SignatureError> {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let t = |s: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s as u64));
            let message = b"manifest";
            let signature = self.key.sign(message).unwrap();
            trust.verify_raw(
                message,
                self.key.algorithm(),
                &signature,
                &self.key.chain,
                JudgedAt::Signed {
                    signed: t(now - ago),
                    crls_current_at: t(now + crls_at),
                },
            )
        }
    }

    #[test]
    fn judging_at_a_time_of_signing_keeps_the_crl_checks() {
        let p = pki();
        let now = time::OffsetDateTime::now_utc();
        let empty_root = p.root.sign_crl(1, Vec::new()).unwrap();
        let empty_int = p.intermediate.sign_crl(1, Vec::new()).unwrap();

        // Nothing revoked: valid, nothing to report.
        let trust = p.trust(Some(empty_root.clone()), Some(empty_int.clone()));
        assert!(p.judge(&trust, 60, 0).unwrap().later_revocations.is_empty());

        // No CRL from the leaf's issuer: unknown status refuses.
        let trust = p.trust(Some(empty_root.clone()), None);
        let e = p.judge(&trust, 60, 0).unwrap_err();
        assert!(matches!(e, SignatureError::RevocationUnknown(_)), "{e:?}");

        // A CRL that names the intermediate as issuer but is signed by another key (a
        // forged "superseded" list from a server, say) refuses.
        let impostor = Ca::new_root("intermediate").unwrap();
        let forged = impostor
            .sign_crl(
                2,
                vec![entry(
                    &p.leaf_der,
                    now,
                    Some(rcgen::RevocationReason::Superseded),
                )],
            )
            .unwrap();
        let trust = p.trust(Some(empty_root.clone()), Some(forged));
        let e = p.judge(&trust, 60, 0).unwrap_err();
        assert!(
            matches!(&e, SignatureError::RevocationUnknown(m) if m.contains("does not verify")),
            "{e:?}"
        );

        // CRLs past their nextUpdate at the time they must be current refuse.
        let trust = p.trust(Some(empty_root.clone()), Some(empty_int.clone()));
        let e = p.judge(&trust, 60, 400 * 86_400).unwrap_err();
        assert!(
            matches!(&e, SignatureError::RevocationUnknown(m) if m.contains("expired")),
            "{e:?}"
        );

        // A revocation with no reason after the signing counts as a compromise of
        // unknown date.
        let revoked = p
            .intermediate
            .sign_crl(2, vec![entry(&p.leaf_der, now, None)])
            .unwrap();
        let trust = p.trust(Some(empty_root.clone()), Some(revoked));
        let e = p.judge(&trust, 60, 0).unwrap_err();
        assert!(
            matches!(&e, SignatureError::RevokedAtSigning(m) if m.contains("reason none stated")),
            "{e:?}"
        );

        // The issuing CA retired (superseded) after the signing: valid, and reported.
        let int_der =
            crate::pki::pem::read_certs(&p.dir.path().join("sign.crt")).unwrap()[1].to_vec();
        let root_crl = p
            .root
            .sign_crl(
                2,
                vec![entry(
                    &int_der,
                    now,
                    Some(rcgen::RevocationReason::Superseded),
                )],
            )
            .unwrap();
        let trust = p.trust(Some(root_crl.clone()), Some(empty_int.clone()));
        let signer = p.judge(&trust, 60, 0).unwrap();
        assert_eq!(signer.later_revocations.len(), 1);
        assert!(
            signer.later_revocations[0]
                .certificate
                .contains("the CA certificate")
        );
        assert_eq!(signer.later_revocations[0].reason, "superseded");
        // …but a signature judged now (a submission) is refused.
        let e = trust
            .verify_raw(
                b"manifest",
                p.key.algorithm(),
                &p.key.sign(b"manifest").unwrap(),
                &p.key.chain,
                JudgedAt::Now(UnixTime::now()),
            )
            .unwrap_err();
        assert_eq!(e, SignatureError::Revoked);
        // …and one made after the retirement is refused too.
        let e = p.judge(&trust, -5, 0).unwrap_err();
        assert!(matches!(e, SignatureError::RevokedAtSigning(_)), "{e:?}");
    }
}
