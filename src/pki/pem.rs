//! Reading and writing PEM files (certificates, keys, CRLs).
//!
//! PEM is read with `rustls_pki_types::pem::PemObject` (rustls-pemfile is unmaintained).
//! Files are written atomically (temporary file, fsync, rename) so a reader polling a CRL
//! never sees half a file; private keys are created with mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::PkiError;

fn pem_error(path: &Path, e: rustls_pki_types::pem::Error) -> PkiError {
    match e {
        rustls_pki_types::pem::Error::Io(source) => PkiError::Io {
            path: path.display().to_string(),
            source,
        },
        rustls_pki_types::pem::Error::NoItemsFound => PkiError::Pem {
            path: path.display().to_string(),
            reason: "no PEM section of the expected kind".into(),
        },
        other => PkiError::Pem {
            path: path.display().to_string(),
            reason: other.to_string(),
        },
    }
}

/// Reads every certificate in a PEM file (a leaf followed by its chain, or a set of roots).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(PkiError::Pem {
            path: path.display().to_string(),
            reason: "no CERTIFICATE section".into(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, SEC1 or PKCS#1) in a PEM file.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

/// Reads every CRL in a PEM file.
pub fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, PkiError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    // A configured CRL file without a CRL is a mistake (or a half-written file), not an
    // empty revocation list.
    if crls.is_empty() {
        return Err(PkiError::Pem {
            path: path.display().to_string(),
            reason: "no X509 CRL section".into(),
        });
    }
    Ok(crls)
}

/// Reads a CRL file once and returns its text with every CRL in it, so that what is
/// served to clients is byte for byte what signatures were judged against.
pub fn read_crl_file(
    path: &Path,
) -> Result<(String, Vec<CertificateRevocationListDer<'static>>), PkiError> {
    let text = fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let crls = CertificateRevocationListDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if crls.is_empty() {
        return Err(PkiError::Pem {
            path: path.display().to_string(),
            reason: "no X509 CRL section".into(),
        });
    }
    Ok((text, crls))
}

/// True when a file can be read by its owner only (no group or other permission bits).
pub fn is_owner_only(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 == 0)
        .unwrap_or(false)
}

/// Writes a public file (certificate, CRL, config) atomically with mode 0644.
pub fn write_public(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_atomic(path, contents, 0o644)
}

/// Writes a secret file (private key) atomically with mode 0600.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_atomic(path, contents, 0o600)
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    };
    // A bare file name has the empty path as its parent: that is the current directory.
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(io)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode given to open() is filtered by the umask; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}
