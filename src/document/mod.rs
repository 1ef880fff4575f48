//! The document: its manifest (model, validation, canonical bytes) and its signatures.
//!
//! Nothing here knows HTTP or storage; the X.509 and CMS work behind signature
//! verification lives in `pki`.

pub mod draft;
pub mod manifest;
pub mod package;
pub mod receipt;
pub mod signature;
pub mod status;

pub use manifest::{Manifest, ManifestError, ManifestRules, ParsedManifest};
pub use receipt::ReceiptStatus;
pub use signature::{DocSignature, Role, RoleError, SignatureFormat, check_signer};

use ring::digest;

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::pki::identity::hex(digest::digest(&digest::SHA256, bytes).as_ref())
}
