//! Key endorsements: an organisation's own statement, signed with its seal certificate,
//! that an OpenPGP certificate (named by fingerprint) is its encryption key.
//!
//! The server registers and serves encryption certificates, so a certificate alone proves
//! nothing about whose key it is: the operator could register its own. An endorsement is
//! `{type, org, openpgp_fingerprint, not_before, not_after, issued_at}` in RFC 8785 bytes,
//! signed like a manifest (a [`DocSignature`] of role `organization`, raw or CMS) by the
//! organisation's seal certificate: a document-signing certificate whose SAN URI is exactly
//! `urn:congvan:org:<org>`. Anyone with the CA's anchor and CRLs can check it; nobody
//! without the organisation's seal key can make one. Clients check it before they seal.
//!
//! This module parses, builds and verifies endorsements; it computes no OpenPGP
//! fingerprints (the caller asks the cipher) and parses no certificates (the signature
//! check goes through `pki::signing`).

use rustls_pki_types::UnixTime;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::directory::OrgId;
use crate::document::{DocSignature, Role};
use crate::pki::Identity;
use crate::pki::signing::{SignatureError, SigningKey, SigningTrust};

/// `type` of a key endorsement statement.
pub const ENDORSEMENT_TYPE: &str = "congvan.key-endorsement/v1";
/// Largest endorsement accepted, in bytes (a raw signature with a 3-certificate chain is
/// about 3 KiB; CMS with extra certificates stays far below this).
pub const ENDORSEMENT_BYTES_MAX: usize = 64 * 1024;
/// How far a verifier's clock may lag the signer's: an endorsement whose `not_before` is
/// at most this far in the future is accepted, so that a key endorsed a moment ago on a
/// machine whose clock runs slightly ahead is usable at once.
pub const CLOCK_SKEW_S: i64 = 300;
/// Longest validity an endorsement may claim, in days (about five years): an
/// endorsement cannot be withdrawn except by revoking the seal certificate, so it must
/// expire.
pub const VALIDITY_DAYS_MAX: i64 = 5 * 366;

/// Why an endorsement was refused. Each maps to one stable code ([`Self::code`]),
/// documented in `docs/API.md`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndorsementError {
    /// The key has no endorsement at all.
    #[error("the encryption key has no endorsement by the organisation's seal certificate")]
    Missing,
    /// The endorsement cannot be parsed, or breaks a format rule.
    #[error("malformed key endorsement: {0}")]
    Malformed(String),
    /// The endorsement speaks for, or is signed by, another organisation.
    #[error("the endorsement is for another organisation: {0}")]
    WrongOrg(String),
    /// The endorsement names another OpenPGP certificate.
    #[error("the endorsement names key {endorsed}, not the registered key {registered}")]
    FingerprintMismatch {
        /// The fingerprint in the endorsement.
        endorsed: String,
        /// The fingerprint of the certificate it was offered with.
        registered: String,
    },
    /// The endorsement is not valid now (expired, or not yet valid).
    #[error("the endorsement is valid from {not_before} to {not_after}, not now")]
    Expired {
        /// Start of validity.
        not_before: String,
        /// End of validity.
        not_after: String,
    },
    /// The signer is not the organisation's seal certificate (a person certificate, a
    /// certificate without a congvan identity or without document signing, or a signature
    /// of role `person`).
    #[error("the endorsement is not signed by an organisation seal certificate: {0}")]
    NotSeal(String),
    /// The signature does not verify over the statement (a forged or altered endorsement).
    #[error("the endorsement's signature does not match its statement")]
    SignatureInvalid,
    /// The signer's certificate does not chain to the trust anchor, is expired or revoked,
    /// or its revocation status is unknown.
    #[error("the endorsement's signer is not trusted: {0}")]
    Untrusted(String),
    /// A valid endorsement of another key, but older than the endorsement this client
    /// already saw: the server is serving a key the organisation has since replaced.
    #[error(
        "this endorsement of {offered} (issued {offered_issued_at}) is older than the \
         endorsement of {pinned} (issued {pinned_issued_at}) seen before: a replaced key"
    )]
    Superseded {
        /// The fingerprint offered now.
        offered: String,
        /// When its endorsement was issued.
        offered_issued_at: String,
        /// The fingerprint remembered.
        pinned: String,
        /// When the remembered endorsement was issued.
        pinned_issued_at: String,
    },
}

impl EndorsementError {
    /// The stable code of this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            EndorsementError::Missing => "endorsement_missing",
            EndorsementError::Malformed(_) => "endorsement_malformed",
            EndorsementError::WrongOrg(_) => "endorsement_wrong_org",
            EndorsementError::FingerprintMismatch { .. } => "endorsement_fingerprint_mismatch",
            EndorsementError::Expired { .. } => "endorsement_expired",
            EndorsementError::NotSeal(_) => "endorsement_not_seal",
            EndorsementError::SignatureInvalid => "endorsement_signature_invalid",
            EndorsementError::Untrusted(_) => "endorsement_untrusted",
            EndorsementError::Superseded { .. } => "endorsement_superseded",
        }
    }
}

/// The statement an organisation signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEndorsement {
    /// [`ENDORSEMENT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The organisation whose key this is.
    pub org: OrgId,
    /// The OpenPGP certificate's primary key fingerprint, upper-case hex.
    pub openpgp_fingerprint: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
    /// When the organisation made the endorsement, RFC 3339.
    pub issued_at: String,
}

/// An endorsement as it travels: the statement and the seal signature over its RFC 8785
/// bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEndorsement {
    /// What is endorsed.
    pub statement: KeyEndorsement,
    /// The seal signature (role `organization`).
    pub signature: DocSignature,
}

/// An endorsement that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEndorsement {
    /// The organisation.
    pub org: OrgId,
    /// The endorsed fingerprint.
    pub fingerprint: String,
    /// When it was made (RFC 3339).
    pub issued_at: String,
    /// Its end of validity (RFC 3339).
    pub not_after: String,
    /// The seal certificate's subject, for people.
    pub signer_subject: String,
}

/// Parses an RFC 3339 time of an endorsement; `field` names it in the error.
pub fn parse_time(field: &str, text: &str) -> Result<OffsetDateTime, EndorsementError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        EndorsementError::Malformed(format!(
            "{field} is not an RFC 3339 time ({:?}): {e}",
            text.chars().take(40).collect::<String>()
        ))
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Checks the syntax of an OpenPGP fingerprint: upper-case hex, 40 (v4) or 64 (v6) digits.
fn check_fingerprint(fp: &str) -> Result<(), EndorsementError> {
    let hex = fp
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    if hex && (fp.len() == 40 || fp.len() == 64) {
        Ok(())
    } else {
        Err(EndorsementError::Malformed(
            "openpgp_fingerprint must be 40 or 64 upper-case hex digits".into(),
        ))
    }
}

impl KeyEndorsement {
    /// A statement that `org`'s key is `fingerprint`, issued `now` and valid for `days`.
    pub fn new(
        org: OrgId,
        fingerprint: &str,
        now: OffsetDateTime,
        days: i64,
    ) -> Result<Self, EndorsementError> {
        if !(1..=VALIDITY_DAYS_MAX).contains(&days) {
            return Err(EndorsementError::Malformed(format!(
                "the validity must be 1 to {VALIDITY_DAYS_MAX} days"
            )));
        }
        let statement = KeyEndorsement {
            kind: ENDORSEMENT_TYPE.to_owned(),
            org,
            openpgp_fingerprint: fingerprint.to_ascii_uppercase(),
            not_before: rfc3339(now),
            not_after: rfc3339(now + time::Duration::days(days)),
            issued_at: rfc3339(now),
        };
        statement.check()?;
        Ok(statement)
    }

    /// Shortens the validity to end no later than `limit` (the seal certificate's own
    /// end, so that an endorsement never outlives the certificate that vouches for it).
    pub fn ending_no_later_than(mut self, limit: OffsetDateTime) -> Result<Self, EndorsementError> {
        let not_after = parse_time("not_after", &self.not_after)?;
        if limit < not_after {
            self.not_after = rfc3339(limit);
        }
        self.check()?;
        Ok(self)
    }

    /// Checks the format rules: type, fingerprint syntax, times that parse and make sense.
    pub fn check(&self) -> Result<(OffsetDateTime, OffsetDateTime), EndorsementError> {
        if self.kind != ENDORSEMENT_TYPE {
            return Err(EndorsementError::Malformed(format!(
                "type must be {ENDORSEMENT_TYPE:?}"
            )));
        }
        check_fingerprint(&self.openpgp_fingerprint)?;
        let not_before = parse_time("not_before", &self.not_before)?;
        let not_after = parse_time("not_after", &self.not_after)?;
        let issued_at = parse_time("issued_at", &self.issued_at)?;
        if not_after <= not_before {
            return Err(EndorsementError::Malformed(
                "not_after must be later than not_before".into(),
            ));
        }
        if not_after - not_before > time::Duration::days(VALIDITY_DAYS_MAX) {
            return Err(EndorsementError::Malformed(format!(
                "an endorsement may be valid for at most {VALIDITY_DAYS_MAX} days"
            )));
        }
        if issued_at > not_after {
            return Err(EndorsementError::Malformed(
                "issued_at is after not_after".into(),
            ));
        }
        Ok((not_before, not_after))
    }

    /// The RFC 8785 bytes the seal signature covers.
    pub fn canonical(&self) -> Result<Vec<u8>, EndorsementError> {
        serde_jcs::to_vec(self).map_err(|e| EndorsementError::Malformed(e.to_string()))
    }

    /// Signs the statement with the organisation's seal key (raw signature).
    pub fn sign(self, seal: &SigningKey) -> Result<SignedEndorsement, EndorsementError> {
        let canonical = self.canonical()?;
        let value = seal
            .sign(&canonical)
            .map_err(|e| EndorsementError::Malformed(e.to_string()))?;
        Ok(SignedEndorsement {
            statement: self,
            signature: DocSignature::raw(Role::Organization, seal.algorithm(), &value, &seal.chain),
        })
    }
}

impl SignedEndorsement {
    /// Parses an endorsement strictly (unknown and duplicate fields refused, size capped)
    /// and checks its statement's format.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EndorsementError> {
        if bytes.len() > ENDORSEMENT_BYTES_MAX {
            return Err(EndorsementError::Malformed(format!(
                "larger than {ENDORSEMENT_BYTES_MAX} bytes"
            )));
        }
        let parsed: SignedEndorsement = serde_json::from_slice(bytes)
            .map_err(|e| EndorsementError::Malformed(e.to_string()))?;
        parsed.statement.check()?;
        Ok(parsed)
    }

    /// The endorsement as pretty JSON, for files.
    pub fn to_json(&self) -> Result<Vec<u8>, EndorsementError> {
        let mut out = serde_json::to_vec_pretty(self)
            .map_err(|e| EndorsementError::Malformed(e.to_string()))?;
        out.push(b'\n');
        Ok(out)
    }

    /// Verifies that this endorsement makes `fingerprint` the encryption key of `org` at
    /// `now`: the statement names both, is valid now, and carries a signature of role
    /// `organization` that verifies against `trust` (anchor, chain, CRLs, document-signing
    /// usage) by a certificate whose identity is exactly `urn:congvan:org:<org>`.
    pub fn verify(
        &self,
        trust: &SigningTrust,
        org: &OrgId,
        fingerprint: &str,
        now: UnixTime,
    ) -> Result<VerifiedEndorsement, EndorsementError> {
        let (not_before, not_after) = self.statement.check()?;
        if &self.statement.org != org {
            return Err(EndorsementError::WrongOrg(format!(
                "it endorses a key of {}",
                self.statement.org
            )));
        }
        if !self
            .statement
            .openpgp_fingerprint
            .eq_ignore_ascii_case(fingerprint)
        {
            return Err(EndorsementError::FingerprintMismatch {
                endorsed: self.statement.openpgp_fingerprint.clone(),
                registered: fingerprint.to_owned(),
            });
        }
        let seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if seconds.saturating_add(CLOCK_SKEW_S) < not_before.unix_timestamp()
            || seconds >= not_after.unix_timestamp()
        {
            return Err(EndorsementError::Expired {
                not_before: self.statement.not_before.clone(),
                not_after: self.statement.not_after.clone(),
            });
        }
        if self.signature.role != Role::Organization {
            return Err(EndorsementError::NotSeal(
                "the signature's role is not organization".into(),
            ));
        }
        let canonical = self.statement.canonical()?;
        let signer = self
            .signature
            .verify(trust, &canonical, now)
            .map_err(|e| match e {
                SignatureError::BadSignature => EndorsementError::SignatureInvalid,
                SignatureError::Malformed(m) => EndorsementError::Malformed(m),
                SignatureError::Unsupported(m) => {
                    EndorsementError::Malformed(format!("unsupported algorithm: {m}"))
                }
                SignatureError::WrongUsage | SignatureError::NoIdentity(_) => {
                    EndorsementError::NotSeal(e.to_string())
                }
                other => EndorsementError::Untrusted(other.to_string()),
            })?;
        match &signer.cert.identity {
            Identity::Org(id) if id == org => {}
            Identity::Org(other) => {
                return Err(EndorsementError::WrongOrg(format!(
                    "it is signed by the seal certificate of {other}"
                )));
            }
            other => {
                return Err(EndorsementError::NotSeal(format!(
                    "the signer's certificate names {other}"
                )));
            }
        }
        Ok(VerifiedEndorsement {
            org: org.clone(),
            fingerprint: self.statement.openpgp_fingerprint.clone(),
            issued_at: self.statement.issued_at.clone(),
            not_after: self.statement.not_after.clone(),
            signer_subject: signer.cert.subject,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> KeyEndorsement {
        KeyEndorsement::new(
            OrgId::parse("hn/cm/chuc-son").unwrap(),
            "0123456789abcdef0123456789ABCDEF01234567",
            OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            365,
        )
        .unwrap()
    }

    #[test]
    fn canonical_bytes_are_sorted_and_stable() {
        let s = statement();
        let bytes = s.canonical().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("{\"issued_at\":\"2027-01-15T08:00:00Z\""),
            "{text}"
        );
        assert!(
            text.contains("\"openpgp_fingerprint\":\"0123456789ABCDEF"),
            "{text}"
        );
        let back: KeyEndorsement = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.canonical().unwrap(), bytes);
    }

    #[test]
    fn format_rules_are_enforced() {
        let mut s = statement();
        s.kind = "congvan.key-endorsement/v2".into();
        assert_eq!(s.check().unwrap_err().code(), "endorsement_malformed");
        let mut s = statement();
        s.openpgp_fingerprint = "XYZ".into();
        assert!(s.check().is_err());
        let mut s = statement();
        s.not_after = s.not_before.clone();
        assert!(s.check().is_err());
        let mut s = statement();
        s.not_after = "2040-01-01T00:00:00Z".into();
        assert!(s.check().is_err(), "more than five years");
        assert!(
            KeyEndorsement::new(
                s.org.clone(),
                &s.openpgp_fingerprint,
                OffsetDateTime::now_utc(),
                0
            )
            .is_err()
        );
    }

    #[test]
    fn hostile_bytes_are_refused_without_panicking() {
        for bad in [
            &b""[..],
            b"{}",
            b"[]",
            b"{\"statement\":{},\"signature\":{}}",
            b"\xff\xfe",
            &[b'['; 100_000][..],
        ] {
            assert!(SignedEndorsement::from_slice(bad).is_err());
        }
        // Unknown and duplicate fields.
        let s = serde_json::to_value(statement()).unwrap();
        let sig = serde_json::json!({"role": "organization", "format": "raw", "algorithm": "ed25519", "value": "AA=="});
        let mut extra = serde_json::json!({"statement": s, "signature": sig});
        assert!(SignedEndorsement::from_slice(&serde_json::to_vec(&extra).unwrap()).is_ok());
        extra["statement"]["comment"] = serde_json::json!("x");
        assert!(SignedEndorsement::from_slice(&serde_json::to_vec(&extra).unwrap()).is_err());
        let text =
            serde_json::to_string(&serde_json::json!({"statement": s, "signature": sig})).unwrap();
        let duplicated = text.replacen("\"statement\":{", "\"statement\":{},\"statement\":{", 1);
        assert_ne!(duplicated, text);
        assert!(SignedEndorsement::from_slice(duplicated.as_bytes()).is_err());
    }
}
