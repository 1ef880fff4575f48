//! Revocation: adding a certificate to its issuer's CRL (`congvan pki revoke`).
//!
//! The CRL is re-issued with every entry it had, the new one, a CRL number one higher and
//! a fresh validity window, then written atomically; a running server notices the change
//! and stops accepting the certificate without a restart.

use std::path::Path;

use rcgen::{RevocationReason, RevokedCertParams, SerialNumber};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::PkiError;
use super::demo::{Ca, Layout};
use super::pem::{read_certs, read_crls, write_public};

/// What `revoke` did.
#[derive(Debug)]
pub struct Revoked {
    /// The CRL file that now lists the certificate.
    pub crl_path: std::path::PathBuf,
    /// The revoked serial, hex with colons.
    pub serial: String,
    /// The new CRL number.
    pub crl_number: u64,
    /// False when the certificate was already listed (the CRL is re-issued anyway).
    pub newly_revoked: bool,
}

/// Why a certificate is revoked: the reasons `congvan pki revoke` offers (RFC 5280
/// CRLReason). The binary maps its arguments to these, so that only `pki` knows rcgen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No reason given.
    Unspecified,
    /// The key is known or suspected to be compromised.
    KeyCompromise,
    /// The holder's affiliation changed.
    AffiliationChanged,
    /// A routine replacement: documents accepted before it stay trusted.
    Superseded,
    /// The holder ceased to operate.
    CessationOfOperation,
}

impl From<Reason> for RevocationReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Unspecified => RevocationReason::Unspecified,
            Reason::KeyCompromise => RevocationReason::KeyCompromise,
            Reason::AffiliationChanged => RevocationReason::AffiliationChanged,
            Reason::Superseded => RevocationReason::Superseded,
            Reason::CessationOfOperation => RevocationReason::CessationOfOperation,
        }
    }
}

/// Revokes the first certificate in `cert_path`, which must have been issued by the root
/// or the intermediate CA of the PKI at `layout`.
pub fn revoke(
    layout: &Layout,
    cert_path: &Path,
    reason: Option<Reason>,
) -> Result<Revoked, PkiError> {
    revoke_with(layout, cert_path, reason, None)
}

/// Like [`revoke`], with the entry's invalidityDate: since when the key is known or
/// suspected to be compromised. Recipients treat signatures made before it as valid;
/// a key-compromise entry without one invalidates every signature the key made.
pub fn revoke_with(
    layout: &Layout,
    cert_path: &Path,
    reason: Option<Reason>,
    invalid_since: Option<OffsetDateTime>,
) -> Result<Revoked, PkiError> {
    let target = read_certs(cert_path)?
        .into_iter()
        .next()
        .ok_or_else(|| PkiError::BadCertificate("empty certificate file".into()))?;
    let (_, target) =
        X509Certificate::from_der(&target).map_err(|e| PkiError::BadCertificate(e.to_string()))?;

    let mut issuer_match = None;
    for (cert, key, crl, is_root) in [
        (
            layout.intermediate_cert(),
            layout.intermediate_key(),
            layout.intermediate_crl(),
            false,
        ),
        (
            layout.root_cert(),
            layout.root_key(),
            layout.root_crl(),
            true,
        ),
    ] {
        let ca_der = read_certs(&cert)?
            .into_iter()
            .next()
            .ok_or_else(|| PkiError::BadCertificate("empty CA file".into()))?;
        let (_, ca) = X509Certificate::from_der(&ca_der)
            .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        if ca.subject().as_raw() == target.issuer().as_raw()
            && target.verify_signature(Some(ca.public_key())).is_ok()
        {
            issuer_match = Some((cert, key, crl, is_root));
            break;
        }
    }
    let (ca_cert, ca_key, crl_path, is_root) =
        issuer_match.ok_or_else(|| PkiError::NotIssuedHere(cert_path.display().to_string()))?;
    let ca = Ca::load(&ca_cert, &ca_key, is_root)?;

    let mut entries = Vec::new();
    let mut crl_number = 0u64;
    if crl_path.exists() {
        for der in read_crls(&crl_path)? {
            let (_, crl) = CertificateRevocationList::from_der(&der)
                .map_err(|e| PkiError::BadCertificate(format!("CRL: {e}")))?;
            if let Some(n) = crl.crl_number() {
                crl_number = crl_number.max(biguint_to_u64(&n.to_bytes_be()));
            }
            for entry in crl.iter_revoked_certificates() {
                entries.push(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(entry.raw_serial()),
                    revocation_time: entry.revocation_date.to_datetime(),
                    reason_code: entry.reason_code().and_then(|(_, r)| reason_from_code(r.0)),
                    // Kept: dropping it would turn "compromised since D" into
                    // "compromised since ever" at the next revocation.
                    invalidity_date: entry
                        .invalidity_date()
                        .map(|(_, t)| t.to_datetime())
                        .or_else(|| {
                            // rcgen writes UTCTime here; read it back the same way.
                            let ext = entry.find_extension(
                                &x509_parser::oid_registry::OID_X509_EXT_INVALIDITY_DATE,
                            )?;
                            x509_parser::time::ASN1Time::from_der(ext.value)
                                .ok()
                                .map(|(_, t)| t.to_datetime())
                        }),
                });
            }
        }
    }
    let serial = target.raw_serial();
    let newly_revoked = !entries.iter().any(|e| e.serial_number.to_bytes() == serial);
    if newly_revoked {
        entries.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(serial),
            revocation_time: OffsetDateTime::now_utc(),
            reason_code: reason.map(RevocationReason::from),
            invalidity_date: invalid_since,
        });
    }
    let crl_number = crl_number.saturating_add(1);
    let pem = ca.sign_crl(crl_number, entries)?;
    write_public(&crl_path, pem.as_bytes())?;
    Ok(Revoked {
        crl_path,
        serial: target.raw_serial_as_string(),
        crl_number,
        newly_revoked,
    })
}

fn biguint_to_u64(be: &[u8]) -> u64 {
    // CRL numbers beyond 64 bits never come from this PKI; saturate rather than wrap.
    if be.len() > 8 {
        return u64::MAX - 1;
    }
    be.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

fn reason_from_code(code: u8) -> Option<RevocationReason> {
    use RevocationReason::*;
    Some(match code {
        0 => Unspecified,
        1 => KeyCompromise,
        2 => CaCompromise,
        3 => AffiliationChanged,
        4 => Superseded,
        5 => CessationOfOperation,
        6 => CertificateHold,
        8 => RemoveFromCrl,
        9 => PrivilegeWithdrawn,
        10 => AaCompromise,
        _ => return None,
    })
}
