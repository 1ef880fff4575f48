//! Certificates: reading PEM material, identities carried in certificates, revocation lists
//! and the DEMO PKI.
//!
//! This module is the only one that parses X.509 (with x509-parser) or builds
//! certificates (with rcgen). Chain validation is never done by hand: the TLS layer uses
//! rustls' `WebPkiClientVerifier` and document signatures use rustls-webpki.

pub mod cms;
pub mod crl;
pub mod demo;
pub mod identity;
pub mod keystore;
pub mod ocsp;
pub mod pem;
pub mod signing;
pub mod token;

pub use identity::{CertInfo, Identity};

/// The rustls crypto provider used everywhere in congvan (server, client, OCSP fetches):
/// ring. It lives here, beside the certificates it serves, so that the client need not
/// reach into `server` for it.
pub fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// `id-kp-documentSigning` (RFC 9336), the EKU a document-signing certificate must carry.
pub const EKU_DOCUMENT_SIGNING: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 36];
/// The same OID in dotted form, for messages.
pub const EKU_DOCUMENT_SIGNING_DOTTED: &str = "1.3.6.1.5.5.7.3.36";
/// SAN URI prefix naming an organisation.
pub const URI_ORG_PREFIX: &str = "urn:congvan:org:";
/// SAN URI prefix naming a security officer role.
pub const URI_AUDITOR_PREFIX: &str = "urn:congvan:auditor:";
/// SAN URI prefix of a person's document-signing certificate: the competent person who
/// signs for the organisation named after the prefix. Never a TLS identity.
pub const URI_PERSON_PREFIX: &str = "urn:congvan:person:";

/// Errors of the PKI layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate could not be parsed.
    #[error("certificate cannot be parsed: {0}")]
    BadCertificate(String),
    /// A certificate names no congvan identity, or names more than one.
    #[error("certificate carries no usable congvan identity: {0}")]
    NoIdentity(String),
    /// Certificate or CRL generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(String),
    /// A DEMO PKI is already present and `--force` was not given.
    #[error("a PKI already exists in {0}; pass --force to replace it (its keys will be lost)")]
    Exists(String),
    /// The certificate to revoke was not issued by a CA of this PKI.
    #[error("{0} was not issued by a CA of this PKI")]
    NotIssuedHere(String),
    /// The organisation tree is invalid.
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    /// A key could not be unlocked, imported or protected.
    #[error(transparent)]
    Key(#[from] keystore::KeyError),
    /// A PKCS#11 token could not be used.
    #[error(transparent)]
    Token(#[from] token::TokenError),
    /// OpenPGP key generation failed.
    #[error("OpenPGP key generation failed: {0}")]
    OpenPgp(String),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Generate(e.to_string())
    }
}
