//! TLS 1.3 with mandatory client certificates, and live reloading of CRLs.
//!
//! The verifier is rustls' `WebPkiClientVerifier`: chain to a configured anchor, EKU
//! clientAuth, validity now, and revocation of every certificate in the chain checked
//! against the CRLs, with unknown status refused. Session resumption is disabled so that
//! every connection presents, and has verified, its certificate against the current CRLs:
//! a revoked certificate cannot ride on an old session ticket.
//!
//! The same reloader holds the trust material for document signatures (anchors and
//! CRLs, by default the TLS ones). All of it is re-read when any of its files changes
//! (checked every `crl_check_interval`) or on [`TrustReloader::reload`] (SIGHUP). If it
//! cannot be loaded, the server refuses every connection until it can: it fails closed
//! rather than keep trusting a certificate that a half-written CRL was meant to revoke.
//!
//! Every load bumps a generation counter. Connections keep their client's certificate
//! chain and, before each request, re-verify it with [`TrustReloader::verify_peer`] when
//! the generation changed since they last did: a revocation reaches connections that were
//! opened before it, not only new handshakes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ring::digest;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;
use crate::pki::PkiError;
use crate::pki::pem::{is_owner_only, read_certs, read_crls, read_private_key};
use crate::pki::signing::SigningTrust;

/// Errors loading TLS material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// The trust material in force: the TLS acceptor and the document-signing trust.
#[derive(Clone)]
pub struct Trust {
    /// Accepts TLS connections.
    pub acceptor: TlsAcceptor,
    /// The client-certificate verifier inside `acceptor`, kept to re-verify the chains of
    /// open connections against this material.
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// Verifies document-signing certificates.
    pub signing: Arc<SigningTrust>,
}

/// Where the trust material comes from.
#[derive(Clone, Debug)]
pub struct TrustSources {
    /// TLS files and reload settings.
    pub tls: TlsConfig,
    /// Anchors for document-signing certificates.
    pub signing_anchors: Vec<PathBuf>,
    /// CRLs for document-signing certificates.
    pub signing_crls: Vec<PathBuf>,
}

/// The current trust material, rebuilt when the files behind it change.
pub struct TrustReloader {
    sources: TrustSources,
    current: RwLock<Option<Trust>>,
    /// SHA-256 of every input file at the last load, to notice changes.
    stamp: Mutex<Vec<[u8; 32]>>,
    /// Bumped by every load, successful or not, so connections notice cheaply.
    generation: AtomicU64,
}

/// Why an open connection's certificate chain no longer passes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerRefusal {
    /// A certificate in the chain is revoked.
    Revoked,
    /// A certificate in the chain is expired or not yet valid.
    Expired,
    /// The chain fails for another reason (unknown issuer, revocation status unknown, an
    /// expired CRL…); the detail is for people.
    Untrusted(String),
    /// The trust material is unusable, so nothing can be verified.
    Unavailable,
}

impl TrustReloader {
    /// Loads the trust material; fails if it is not usable, so a server never starts blind.
    pub fn new(sources: &TrustSources) -> Result<Arc<TrustReloader>, TlsError> {
        let stamp = file_stamp(sources);
        let trust = build(sources)?;
        if !is_owner_only(&sources.tls.key) {
            tracing::warn!(
                key = %sources.tls.key.display(),
                "the server's private key can be read by other users: chmod 0600 it"
            );
        }
        Ok(Arc::new(TrustReloader {
            sources: sources.clone(),
            current: RwLock::new(Some(trust)),
            stamp: Mutex::new(stamp),
            generation: AtomicU64::new(0),
        }))
    }

    /// The number of loads since start; changes whenever the trust in force may have.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Verifies a client's certificate chain (leaf first) against the trust in force now,
    /// exactly as a new handshake would: chain, validity now, revocation of every
    /// certificate, EKU clientAuth.
    pub fn verify_peer(&self, chain: &[CertificateDer<'static>]) -> Result<(), PeerRefusal> {
        let Some(trust) = self.current() else {
            return Err(PeerRefusal::Unavailable);
        };
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(PeerRefusal::Untrusted("no client certificate".into()));
        };
        match trust
            .verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
        {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(e)) => Err(match e {
                rustls::CertificateError::Revoked => PeerRefusal::Revoked,
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. }
                | rustls::CertificateError::NotValidYet
                | rustls::CertificateError::NotValidYetContext { .. } => PeerRefusal::Expired,
                other => PeerRefusal::Untrusted(format!("{other:?}")),
            }),
            Err(other) => Err(PeerRefusal::Untrusted(other.to_string())),
        }
    }

    /// The trust material to use now, or `None` while it is broken.
    pub fn current(&self) -> Option<Trust> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            // A writer panicked mid-update: refuse rather than guess.
            Err(_) => None,
        }
    }

    /// How often the input files are checked for changes.
    pub fn check_interval(&self) -> std::time::Duration {
        self.sources.tls.crl_check_interval
    }

    /// The acceptor to use for a new connection, or `None` while the material is broken.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.current().map(|t| t.acceptor)
    }

    /// Re-reads all trust material now.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamp = file_stamp(&self.sources);
        let result = build(&self.sources);
        let (next, outcome) = match result {
            Ok(trust) => (Some(trust), Ok(())),
            Err(e) => (None, Err(e)),
        };
        if let Ok(mut guard) = self.current.write() {
            *guard = next;
        }
        if let Ok(mut guard) = self.stamp.lock() {
            *guard = stamp;
        }
        // After the swap, so a connection that sees the new number also sees the new trust.
        self.generation.fetch_add(1, Ordering::AcqRel);
        match &outcome {
            Ok(()) => tracing::info!(
                crls = self.sources.tls.crls.len(),
                "trust material reloaded"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "TLS material unusable: refusing all connections until it is fixed"
            ),
        }
        outcome
    }

    /// Reloads if any input file changed since the last load.
    pub fn reload_if_changed(&self) {
        let stamp = file_stamp(&self.sources);
        let changed = match self.stamp.lock() {
            Ok(guard) => *guard != stamp,
            Err(_) => true,
        };
        if changed {
            let _ = self.reload();
        }
    }
}

fn input_files(sources: &TrustSources) -> Vec<&PathBuf> {
    let tls = &sources.tls;
    let mut files = vec![&tls.cert, &tls.key];
    files.extend(tls.client_ca.iter());
    files.extend(tls.crls.iter());
    files.extend(sources.signing_anchors.iter());
    files.extend(sources.signing_crls.iter());
    files
}

fn file_stamp(sources: &TrustSources) -> Vec<[u8; 32]> {
    input_files(sources)
        .into_iter()
        .map(|path| {
            let mut out = [0u8; 32];
            if let Ok(bytes) = std::fs::read(path) {
                out.copy_from_slice(digest::digest(&digest::SHA256, &bytes).as_ref());
            }
            out
        })
        .collect()
}

/// The rustls crypto provider used everywhere in congvan: ring ([`crate::pki::tls_provider`]).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    crate::pki::tls_provider()
}

fn build(sources: &TrustSources) -> Result<Trust, TlsError> {
    let (acceptor, verifier) = build_acceptor(&sources.tls)?;
    Ok(Trust {
        acceptor,
        verifier,
        signing: Arc::new(SigningTrust::load(
            &sources.signing_anchors,
            &sources.signing_crls,
        )?),
    })
}

fn build_acceptor(
    config: &TlsConfig,
) -> Result<(TlsAcceptor, Arc<dyn ClientCertVerifier>), TlsError> {
    let provider = provider();
    let chain = read_certs(&config.cert)?;
    let key = read_private_key(&config.key)?;
    let mut roots = RootCertStore::empty();
    for path in &config.client_ca {
        for cert in read_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Rustls(format!("{}: {e}", path.display())))?;
        }
    }
    let mut crls = Vec::new();
    for path in &config.crls {
        crls.extend(read_crls(path)?);
    }
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .with_crls(crls);
    if config.crl_enforce_next_update {
        verifier = verifier.enforce_revocation_expiration();
    }
    let verifier = verifier
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    Ok((TlsAcceptor::from(Arc::new(server)), verifier))
}
