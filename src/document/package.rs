//! The inner package of a classified document: what is encrypted.
//!
//! ```text
//! "congvan-inner-v1\n"                      17 bytes, the format marker
//! length                                    u32, big-endian: bytes of the inner manifest
//! inner manifest                            its RFC 8785 canonical JSON (≤ 64 KiB)
//! files                                     the attachments, concatenated in manifest order
//! ```
//!
//! The inner manifest is the full manifest (subject, attachment names, sizes, digests);
//! its `payload` describes the files concatenated, unencrypted. It must agree with the
//! outer manifest on every routing field; the recipient checks that before writing a
//! single file.

use std::io::{Read, Write};

use super::manifest::{self, Layer, Manifest, ManifestRules, ParsedManifest};

/// The format marker.
pub const INNER_MAGIC: &[u8] = b"congvan-inner-v1\n";

/// Why an inner package was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Not an inner package.
    #[error("the decrypted content is not a congvan inner package: {0}")]
    Format(String),
    /// The inner manifest is invalid.
    #[error("inner manifest: {0}")]
    Manifest(#[from] manifest::ManifestError),
    /// The inner and outer manifests disagree.
    #[error("the inner manifest does not match the outer one: {0} differs")]
    Mismatch(&'static str),
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes the package header (marker, length, inner manifest) to `out`; the files follow.
pub fn write_header(out: &mut dyn Write, inner_canonical: &[u8]) -> Result<(), PackageError> {
    let len = u32::try_from(inner_canonical.len())
        .map_err(|_| PackageError::Format("inner manifest too large".into()))?;
    out.write_all(INNER_MAGIC)?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(inner_canonical)?;
    Ok(())
}

/// Reads the package header from `input`, leaving it positioned at the first file.
pub fn read_header(
    input: &mut dyn Read,
    rules: &ManifestRules,
) -> Result<ParsedManifest, PackageError> {
    let mut magic = [0u8; INNER_MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|_| PackageError::Format("too short".into()))?;
    if magic != INNER_MAGIC {
        return Err(PackageError::Format("wrong format marker".into()));
    }
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|_| PackageError::Format("too short".into()))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > manifest::MANIFEST_BYTES_MAX {
        return Err(manifest::ManifestError::TooLarge(len).into());
    }
    let mut text = vec![0u8; len];
    input
        .read_exact(&mut text)
        .map_err(|_| PackageError::Format("truncated inner manifest".into()))?;
    let text = String::from_utf8(text)
        .map_err(|_| PackageError::Format("inner manifest is not UTF-8".into()))?;
    let parsed = manifest::parse_layer(&text, rules, Layer::Inner)?;
    if parsed.canonical != text.as_bytes() {
        return Err(PackageError::Format(
            "inner manifest is not in canonical form".into(),
        ));
    }
    Ok(parsed)
}

/// Checks that the inner manifest agrees with the outer one on everything but the
/// content fields (subject, attachments, payload).
pub fn check_matches_outer(inner: &Manifest, outer: &Manifest) -> Result<(), PackageError> {
    let checks: [(&'static str, bool); 17] = [
        ("version", inner.version == outer.version),
        ("id", inner.id == outer.id),
        ("sender", inner.sender == outer.sender),
        ("recipients", inner.recipients == outer.recipients),
        ("code", inner.code == outer.code),
        ("doc_type", inner.doc_type == outer.doc_type),
        ("promulgated", inner.promulgated == outer.promulgated),
        ("signer", inner.signer == outer.signer),
        ("urgency", inner.urgency == outer.urgency),
        ("deadline", inner.deadline == outer.deadline),
        (
            "classification",
            inner.classification == outer.classification,
        ),
        ("steering", inner.steering == outer.steering),
        ("due", inner.due == outer.due),
        ("response_for", inner.response_for == outer.response_for),
        ("business", inner.business == outer.business),
        ("created_at", inner.created_at == outer.created_at),
        (
            "outer content",
            outer.subject.is_empty() && outer.attachments.is_empty(),
        ),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((field, _)) => Err(PackageError::Mismatch(field)),
        None => Ok(()),
    }
}
