//! OCSP (RFC 6960): the responder a certificate names, the request for its status, and
//! the check of a response, all without touching the network (the server fetches; see
//! `server::ocsp`).
//!
//! Encoding and decoding are RustCrypto's `x509-ocsp`; the response's signature is
//! verified with rustls-webpki (ring), by the certificate's issuer or by a responder
//! certificate the issuer delegated with EKU id-kp-OCSPSigning. A response is bound to
//! one certificate by its CertID (SHA-1 of the issuer's name and key, and the serial
//! number, as RFC 5019 responders expect): a response for any other certificate, from
//! any other CA or signed by any other key is refused. Whether a response is current is
//! judged by the caller ([`CheckedResponse::current_at`], [`CheckedResponse::covers`]),
//! because the server judges it now and a recipient judges the stored response at the
//! document's time of acceptance.

use der::asn1::{AnyRef, Null, OctetString};
use der::{Decode, Encode};
use rustls_pki_types::CertificateDer;
use webpki::EndEntityCert;
use x509_cert::Certificate;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    TbsRequest, Version,
};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

/// id-sha1 (1.3.14.3.2.26): the CertID hash. SHA-1 only names the certificate here (the
/// issuer's name and key); nothing is signed or trusted on it.
const OID_SHA1: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-pkix-ocsp-basic.
const OID_OCSP_BASIC: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// Largest OCSP response accepted, in bytes: a real one is 1–4 KiB.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// Clock difference tolerated between the responder and us, in seconds.
pub const CLOCK_SKEW_SECONDS: i64 = 300;
/// How long a response without nextUpdate counts as current after its thisUpdate, in
/// seconds: RFC 6960 says such a responder always has newer information, so it is used
/// for one submission only, never cached.
pub const NO_NEXT_UPDATE_SECONDS: i64 = 300;

/// Why an OCSP response cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OcspError {
    /// The bytes are not an OCSP response, or not a basic one.
    #[error("the OCSP response cannot be parsed: {0}")]
    Malformed(String),
    /// The responder answered with an error status (malformedRequest, tryLater…).
    #[error("the OCSP responder answered {0}")]
    Status(String),
    /// The response is about another certificate.
    #[error("the OCSP response is about another certificate (serial or issuer differ)")]
    OtherCertificate,
    /// Neither the issuer nor a responder it delegated signed the response.
    #[error(
        "the OCSP response is not signed by the certificate's issuer or a responder it delegated"
    )]
    BadSignature,
    /// The response is not current at the time it is judged at.
    #[error("the OCSP response is not current: {0}")]
    NotCurrent(String),
    /// The certificate carries no OCSP responder URL, or one congvan cannot use.
    #[error("no usable OCSP responder: {0}")]
    NoResponder(String),
}

/// What a response says about the certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspStatus {
    /// Not revoked as of thisUpdate.
    Good,
    /// Revoked at `revoked_at` (seconds since the epoch), with the CRL reason code if
    /// the responder gave one.
    Revoked {
        /// The revocation time.
        revoked_at: i64,
        /// RFC 5280 reason code.
        reason: Option<u8>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A response whose signature and binding to one certificate were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedResponse {
    /// The certificate's status.
    pub status: OcspStatus,
    /// thisUpdate, seconds since the epoch.
    pub this_update: i64,
    /// nextUpdate, seconds since the epoch, if the responder gave one.
    pub next_update: Option<i64>,
}

impl CheckedResponse {
    /// Whether the response is current at `now`: produced no later than `now` (with
    /// [`CLOCK_SKEW_SECONDS`]) and not past its nextUpdate (or, without one, at most
    /// [`NO_NEXT_UPDATE_SECONDS`] old).
    pub fn current_at(&self, now: i64) -> Result<(), OcspError> {
        if self.this_update > now + CLOCK_SKEW_SECONDS {
            return Err(OcspError::NotCurrent(format!(
                "its thisUpdate {} is in the future",
                super::signing::rfc3339(self.this_update)
            )));
        }
        let until = self
            .next_update
            .unwrap_or(self.this_update + NO_NEXT_UPDATE_SECONDS);
        if until + CLOCK_SKEW_SECONDS < now {
            return Err(OcspError::NotCurrent(format!(
                "it was current until {}",
                super::signing::rfc3339(until)
            )));
        }
        Ok(())
    }

    /// Whether the response can stand as evidence for a signature made by `signed`:
    /// produced no later than that (with [`CLOCK_SKEW_SECONDS`]) and current at some
    /// moment in the `grace` seconds before it. The server fetched it while it verified
    /// the manifest; the time of signing is when the payload was accepted, which the
    /// upload may delay past the response's nextUpdate by at most its body timeouts.
    pub fn covers(&self, signed: i64, grace: i64) -> Result<(), OcspError> {
        if self.this_update > signed + CLOCK_SKEW_SECONDS {
            return Err(OcspError::NotCurrent(format!(
                "its thisUpdate {} is after the document was accepted",
                super::signing::rfc3339(self.this_update)
            )));
        }
        let until = self
            .next_update
            .unwrap_or(self.this_update + NO_NEXT_UPDATE_SECONDS);
        if until + grace < signed {
            return Err(OcspError::NotCurrent(format!(
                "it was current until {}, long before the document was accepted",
                super::signing::rfc3339(until)
            )));
        }
        Ok(())
    }
}

/// The OCSP responder URL (`http://…`) in the certificate's authorityInfoAccess, if any.
pub fn responder_url(cert_der: &[u8]) -> Result<Option<String>, OcspError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| OcspError::Malformed(format!("certificate: {e}")))?;
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in &aia.accessdescs {
                if desc.access_method == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                {
                    if let GeneralName::URI(uri) = desc.access_location {
                        return Ok(Some(uri.to_owned()));
                    }
                }
            }
        }
    }
    Ok(None)
}

/// The CertID naming `leaf` (issued by `issuer`).
fn cert_id(leaf: &[u8], issuer: &[u8]) -> Result<CertId, OcspError> {
    let leaf = <Certificate as Decode>::from_der(leaf)
        .map_err(|e| OcspError::Malformed(format!("certificate: {e}")))?;
    let issuer = <Certificate as Decode>::from_der(issuer)
        .map_err(|e| OcspError::Malformed(format!("issuer certificate: {e}")))?;
    let name = issuer
        .tbs_certificate
        .subject
        .to_der()
        .map_err(|e| OcspError::Malformed(e.to_string()))?;
    let key = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let sha1 = |b: &[u8]| {
        OctetString::new(
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
                .as_ref()
                .to_vec(),
        )
        .map_err(|e| OcspError::Malformed(e.to_string()))
    };
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: OID_SHA1,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: sha1(&name)?,
        issuer_key_hash: sha1(key)?,
        serial_number: leaf.tbs_certificate.serial_number.clone(),
    })
}

/// A DER OCSP request for `leaf`'s status, unsigned and without a nonce (RFC 5019: the
/// CA may answer from a pre-signed response; freshness is judged by thisUpdate).
pub fn request_der(leaf: &[u8], issuer: &[u8]) -> Result<Vec<u8>, OcspError> {
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id(leaf, issuer)?,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    request
        .to_der()
        .map_err(|e| OcspError::Malformed(e.to_string()))
}

/// Checks that `der` is a successful OCSP response about `leaf`, signed by `issuer` or by
/// a responder certificate `issuer` issued for OCSP signing (valid when the response was
/// produced), and says what it states. Time is not judged here.
pub fn check_response(
    der: &[u8],
    leaf: &[u8],
    issuer: &[u8],
) -> Result<CheckedResponse, OcspError> {
    if der.len() > RESPONSE_BYTES_MAX {
        return Err(OcspError::Malformed(format!(
            "{} bytes, more than {RESPONSE_BYTES_MAX}",
            der.len()
        )));
    }
    let response =
        <OcspResponse as Decode>::from_der(der).map_err(|e| OcspError::Malformed(e.to_string()))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(OcspError::Status(format!("{:?}", response.response_status)));
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| OcspError::Malformed("a successful response without a body".into()))?;
    if bytes.response_type != OID_OCSP_BASIC {
        return Err(OcspError::Malformed(format!(
            "response type {} is not id-pkix-ocsp-basic",
            bytes.response_type
        )));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = <BasicOcspResponse as Decode>::from_der(basic_der)
        .map_err(|e| OcspError::Malformed(e.to_string()))?;
    // The signed bytes exactly as received: the first element of the BasicOCSPResponse
    // SEQUENCE (a DER decoder has already refused any non-minimal encoding).
    let elements: Vec<AnyRef<'_>> = <Vec<AnyRef<'_>> as Decode>::from_der(basic_der)
        .map_err(|e| OcspError::Malformed(e.to_string()))?;
    let tbs = elements
        .first()
        .ok_or_else(|| OcspError::Malformed("empty BasicOCSPResponse".into()))?
        .to_der()
        .map_err(|e| OcspError::Malformed(e.to_string()))?;

    let wanted = cert_id(leaf, issuer)?;
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| r.cert_id == wanted)
        .ok_or(OcspError::OtherCertificate)?;

    let produced_at = seconds(&basic.tbs_response_data.produced_at);
    let signature = basic
        .signature
        .as_bytes()
        .ok_or_else(|| OcspError::Malformed("signature has unused bits".into()))?;
    let algorithm = basic.signature_algorithm.oid.to_string();
    let mut signed_by_issuer = verify_signature(issuer, &algorithm, &tbs, signature);
    if !signed_by_issuer {
        for responder in basic.certs.iter().flatten() {
            let Ok(responder_der) = responder.to_der() else {
                continue;
            };
            if delegated_responder(&responder_der, issuer, produced_at)
                && verify_signature(&responder_der, &algorithm, &tbs, signature)
            {
                signed_by_issuer = true;
                break;
            }
        }
    }
    if !signed_by_issuer {
        return Err(OcspError::BadSignature);
    }

    let status = match &single.cert_status {
        CertStatus::Good(_) => OcspStatus::Good,
        CertStatus::Revoked(info) => OcspStatus::Revoked {
            revoked_at: seconds(&info.revocation_time),
            reason: info.revocation_reason.map(|r| r as u8),
        },
        CertStatus::Unknown(_) => OcspStatus::Unknown,
    };
    Ok(CheckedResponse {
        status,
        this_update: seconds(&single.this_update),
        next_update: single.next_update.as_ref().map(seconds),
    })
}

/// Whether the response `der` has a SingleResponse for the serial number of `leaf`: a
/// filter for picking a signer's responses out of a document's, nothing more (the binding
/// to the issuer and the signature are checked by [`check_response`]).
pub fn names_certificate(der: &[u8], leaf: &[u8]) -> bool {
    let Ok(leaf) = <Certificate as Decode>::from_der(leaf) else {
        return false;
    };
    let Ok(response) = <OcspResponse as Decode>::from_der(der) else {
        return false;
    };
    let Some(basic) = response
        .response_bytes
        .and_then(|b| <BasicOcspResponse as Decode>::from_der(b.response.as_bytes()).ok())
    else {
        return false;
    };
    basic
        .tbs_response_data
        .responses
        .iter()
        .any(|r| r.cert_id.serial_number == leaf.tbs_certificate.serial_number)
}

fn seconds(t: &x509_ocsp::OcspGeneralizedTime) -> i64 {
    i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Whether `responder` was issued by `issuer` for OCSP signing (EKU id-kp-OCSPSigning)
/// and was valid at `at`. Its own revocation is not checked: RFC 6960 §4.2.2.2.1 leaves
/// that to the CA (id-pkix-ocsp-nocheck, short-lived responder certificates).
fn delegated_responder(responder: &[u8], issuer: &[u8], at: i64) -> bool {
    let (Ok((_, responder)), Ok((_, issuer))) = (
        X509Certificate::from_der(responder),
        X509Certificate::from_der(issuer),
    ) else {
        return false;
    };
    responder.issuer().as_raw() == issuer.subject().as_raw()
        && responder
            .verify_signature(Some(issuer.public_key()))
            .is_ok()
        && responder.validity().not_before.timestamp() <= at + CLOCK_SKEW_SECONDS
        && at <= responder.validity().not_after.timestamp() + CLOCK_SKEW_SECONDS
        && matches!(responder.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing)
}

/// Verifies `signature` over `message` with the key of certificate `signer`, for the
/// signature algorithm named by its dotted OID.
fn verify_signature(signer: &[u8], algorithm: &str, message: &[u8], signature: &[u8]) -> bool {
    use webpki::ring as alg;
    let candidates: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = match algorithm {
        "1.2.840.10045.4.3.2" => &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
        "1.2.840.10045.4.3.3" => &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
        "1.2.840.113549.1.1.11" => &[alg::RSA_PKCS1_2048_8192_SHA256],
        "1.2.840.113549.1.1.12" => &[alg::RSA_PKCS1_2048_8192_SHA384],
        "1.2.840.113549.1.1.13" => &[alg::RSA_PKCS1_2048_8192_SHA512],
        "1.3.101.112" => &[alg::ED25519],
        _ => &[],
    };
    let der = CertificateDer::from(signer);
    let Ok(cert) = EndEntityCert::try_from(&der) else {
        return false;
    };
    candidates
        .iter()
        .any(|a| cert.verify_signature(*a, message, signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(this_update: i64, next_update: Option<i64>) -> CheckedResponse {
        CheckedResponse {
            status: OcspStatus::Good,
            this_update,
            next_update,
        }
    }

    #[test]
    fn a_response_is_current_between_this_update_and_next_update_within_the_skew() {
        let r = response(1_000_000, Some(1_003_600));
        assert!(r.current_at(1_000_000).is_ok());
        assert!(r.current_at(1_000_000 - CLOCK_SKEW_SECONDS).is_ok());
        assert!(
            r.current_at(1_000_000 - CLOCK_SKEW_SECONDS - 1).is_err(),
            "from the future"
        );
        assert!(r.current_at(1_003_600 + CLOCK_SKEW_SECONDS).is_ok());
        assert!(
            r.current_at(1_003_600 + CLOCK_SKEW_SECONDS + 1).is_err(),
            "expired"
        );
        let without = response(1_000_000, None);
        assert!(
            without
                .current_at(1_000_000 + NO_NEXT_UPDATE_SECONDS)
                .is_ok()
        );
        assert!(
            without
                .current_at(1_000_000 + NO_NEXT_UPDATE_SECONDS + CLOCK_SKEW_SECONDS + 1)
                .is_err()
        );
    }

    #[test]
    fn stored_evidence_must_predate_the_acceptance_and_be_current_shortly_before_it() {
        let r = response(1_000_000, Some(1_003_600));
        assert!(r.covers(1_000_100, 0).is_ok());
        assert!(
            r.covers(1_000_000 - CLOCK_SKEW_SECONDS - 1, 0).is_err(),
            "made after"
        );
        assert!(r.covers(1_003_600 + 10, 0).is_err(), "stale at acceptance");
        assert!(
            r.covers(1_003_600 + 10, 60).is_ok(),
            "within the upload grace"
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [&b""[..], b"\x30\x03\x0a\x01\x00", b"\x30\x80", &[0xff; 100]] {
            assert!(check_response(bytes, b"x", b"y").is_err());
            assert!(!names_certificate(bytes, b"x"));
        }
    }
}
