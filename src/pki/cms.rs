//! Detached CMS SignedData (RFC 5652), as `openssl cms -sign -binary -md sha256
//! -outform DER` produces it: parsed with the RustCrypto `cms` crate, checked strictly,
//! and verified with webpki's signature algorithms.
//!
//! Accepted: exactly one SignerInfo; digest SHA-256; detached id-data content; signed
//! attributes, if present, must hold content-type id-data and exactly one message digest,
//! which must equal SHA-256 of the manifest's canonical bytes; the signature is over the
//! DER of the signed attributes (or over the content when there are none).

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use ring::digest;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm};
use webpki::EndEntityCert;

use super::signing::SignatureError;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Longest CMS structure accepted, in bytes.
pub const CMS_BYTES_MAX: usize = 64 * 1024;

/// A parsed detached signature, ready to verify.
#[derive(Debug)]
pub struct DetachedCms {
    /// The signer's certificate (DER).
    pub signer_cert: Vec<u8>,
    /// Other certificates carried in the structure (DER), usable as intermediates.
    pub other_certs: Vec<Vec<u8>>,
    signed_message: SignedOver,
    algorithm: &'static dyn SignatureVerificationAlgorithm,
    signature: Vec<u8>,
}

#[derive(Debug)]
enum SignedOver {
    /// The DER of the signed attributes, and the message digest they carry.
    Attributes {
        der: Vec<u8>,
        message_digest: Vec<u8>,
    },
    /// The content itself (no signed attributes).
    Content,
}

fn malformed(what: impl std::fmt::Display) -> SignatureError {
    SignatureError::Malformed(format!("CMS: {what}"))
}

/// Parses and checks the structure of a detached SignedData.
pub fn parse_detached(der_bytes: &[u8]) -> Result<DetachedCms, SignatureError> {
    if der_bytes.len() > CMS_BYTES_MAX {
        return Err(malformed(format!("larger than {CMS_BYTES_MAX} bytes")));
    }
    let info = cms::content_info::ContentInfo::from_der(der_bytes).map_err(malformed)?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(malformed("not a SignedData"));
    }
    let signed: cms::signed_data::SignedData = info.content.decode_as().map_err(malformed)?;
    if signed.encap_content_info.econtent_type != ID_DATA {
        return Err(malformed("the signed content type is not id-data"));
    }
    if signed.encap_content_info.econtent.is_some() {
        return Err(malformed(
            "the signature is not detached (use openssl cms -sign -binary without -nodetach)",
        ));
    }
    let mut signers = signed.signer_infos.0.iter();
    let signer = match (signers.next(), signers.next()) {
        (Some(s), None) => s,
        (None, _) => return Err(malformed("no SignerInfo")),
        (Some(_), Some(_)) => return Err(malformed("more than one SignerInfo")),
    };
    if signer.digest_alg.oid != ID_SHA256 {
        return Err(SignatureError::Unsupported(format!(
            "CMS digest {} (use -md sha256)",
            signer.digest_alg.oid
        )));
    }

    let mut certs = Vec::new();
    for choice in signed.certificates.iter().flat_map(|set| set.0.iter()) {
        if let cms::cert::CertificateChoices::Certificate(cert) = choice {
            certs.push(cert);
        }
    }
    let signer_index = certs
        .iter()
        .position(|cert| matches_sid(cert, &signer.sid))
        .ok_or_else(|| malformed("the signer's certificate is not in the structure"))?;
    let mut signer_cert = Vec::new();
    let mut other_certs = Vec::new();
    for (i, cert) in certs.iter().enumerate() {
        let der = cert.to_der().map_err(malformed)?;
        if i == signer_index {
            signer_cert = der;
        } else {
            other_certs.push(der);
        }
    }

    let signed_message = match &signer.signed_attrs {
        None => SignedOver::Content,
        Some(attrs) => {
            let mut content_type_ok = false;
            let mut message_digest = None;
            for attr in attrs.iter() {
                if attr.oid == ID_CONTENT_TYPE {
                    let mut values = attr.values.iter();
                    content_type_ok = match (values.next(), values.next()) {
                        (Some(v), None) => v.decode_as::<ObjectIdentifier>().ok() == Some(ID_DATA),
                        _ => false,
                    };
                } else if attr.oid == ID_MESSAGE_DIGEST {
                    let mut values = attr.values.iter();
                    match (values.next(), values.next(), &message_digest) {
                        (Some(v), None, None) => {
                            let octets: OctetString = v.decode_as().map_err(malformed)?;
                            message_digest = Some(octets.as_bytes().to_vec());
                        }
                        _ => return Err(malformed("the message digest attribute is ambiguous")),
                    }
                }
            }
            if !content_type_ok {
                return Err(malformed("signed attributes lack content-type id-data"));
            }
            let message_digest = message_digest
                .ok_or_else(|| malformed("signed attributes lack a message digest"))?;
            SignedOver::Attributes {
                der: attrs.to_der().map_err(malformed)?,
                message_digest,
            }
        }
    };

    let sig_oid = signer.signature_algorithm.oid;
    let algorithm: &'static dyn SignatureVerificationAlgorithm =
        if sig_oid == ECDSA_WITH_SHA256 || sig_oid == ID_EC_PUBLIC_KEY {
            webpki::ring::ECDSA_P256_SHA256
        } else if sig_oid == RSA_ENCRYPTION || sig_oid == SHA256_WITH_RSA {
            webpki::ring::RSA_PKCS1_2048_8192_SHA256
        } else if sig_oid == RSASSA_PSS {
            webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY
        } else if sig_oid == ID_ED25519 {
            webpki::ring::ED25519
        } else {
            return Err(SignatureError::Unsupported(format!(
                "CMS signature algorithm {sig_oid}"
            )));
        };

    Ok(DetachedCms {
        signer_cert,
        other_certs,
        signed_message,
        algorithm,
        signature: signer.signature.as_bytes().to_vec(),
    })
}

fn matches_sid(cert: &x509_cert::Certificate, sid: &cms::signed_data::SignerIdentifier) -> bool {
    use cms::signed_data::SignerIdentifier;
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            cert.tbs_certificate.issuer == ias.issuer
                && cert.tbs_certificate.serial_number == ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(|ext| ext.extn_id == ID_SUBJECT_KEY_ID)
            .any(|ext| {
                OctetString::from_der(ext.extn_value.as_bytes())
                    .is_ok_and(|v| v.as_bytes() == ski.0.as_bytes())
            }),
    }
}

impl DetachedCms {
    /// Verifies the signature over `message` with the signer certificate's key.
    pub fn verify(&self, message: &[u8]) -> Result<(), SignatureError> {
        let signed: &[u8] = match &self.signed_message {
            SignedOver::Attributes {
                der,
                message_digest,
            } => {
                let actual = digest::digest(&digest::SHA256, message);
                if actual.as_ref() != message_digest.as_slice() {
                    return Err(SignatureError::BadSignature);
                }
                der
            }
            SignedOver::Content => message,
        };
        let cert = CertificateDer::from(self.signer_cert.as_slice());
        let ee = EndEntityCert::try_from(&cert)
            .map_err(|e| SignatureError::Malformed(format!("certificate: {e}")))?;
        ee.verify_signature(self.algorithm, signed, &self.signature)
            .map_err(|_| SignatureError::BadSignature)
    }
}

/// Makes a detached CMS SignedData over `message` with an ECDSA P-256 key (a file or a
/// token), as `openssl cms -sign -binary -md sha256 -outform DER` does: signed attributes
/// content-type id-data and the message digest, the signer named by issuer and serial, its
/// chain carried. `openssl cms -verify` and [`parse_detached`] accept it.
pub fn sign_detached(
    key: &super::signing::SigningKey,
    message: &[u8],
) -> Result<Vec<u8>, super::PkiError> {
    use cms::cert::IssuerAndSerialNumber;
    use cms::content_info::CmsVersion;
    use cms::signed_data::{
        CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo,
        SignerInfos,
    };
    use der::Any;
    use der::asn1::SetOfVec;
    use x509_cert::attr::Attribute;
    use x509_cert::spki::AlgorithmIdentifierOwned;

    use super::PkiError;
    use super::signing::RawAlgorithm;

    let failed = |e: der::Error| PkiError::Generate(format!("CMS: {e}"));
    if key.algorithm() != RawAlgorithm::EcdsaP256Sha256 {
        return Err(PkiError::Generate(
            "CMS signatures are made with ECDSA P-256 keys only".into(),
        ));
    }
    let leaf_der = key
        .chain
        .first()
        .ok_or_else(|| PkiError::BadCertificate("empty chain".into()))?;
    let leaf = x509_cert::Certificate::from_der(leaf_der).map_err(failed)?;
    let algorithm = |oid| AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    };
    let digest = digest::digest(&digest::SHA256, message);
    let attribute = |oid, value: Any| -> Result<Attribute, PkiError> {
        let mut values = SetOfVec::new();
        values.insert(value).map_err(failed)?;
        Ok(Attribute { oid, values })
    };
    let mut signed_attrs = SetOfVec::new();
    signed_attrs
        .insert(attribute(
            ID_CONTENT_TYPE,
            Any::encode_from(&ID_DATA).map_err(failed)?,
        )?)
        .map_err(failed)?;
    signed_attrs
        .insert(attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest.as_ref()).map_err(failed)?)
                .map_err(failed)?,
        )?)
        .map_err(failed)?;
    // The signature covers the DER of the attributes as a SET (RFC 5652, 5.4).
    let signature = key.sign(&signed_attrs.to_der().map_err(failed)?)?;
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.tbs_certificate.issuer.clone(),
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: algorithm(ID_SHA256),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm(ECDSA_WITH_SHA256),
        signature: OctetString::new(signature).map_err(failed)?,
        unsigned_attrs: None,
    };
    let mut certificates = SetOfVec::new();
    for der in &key.chain {
        let cert = x509_cert::Certificate::from_der(der).map_err(failed)?;
        certificates
            .insert(cms::cert::CertificateChoices::Certificate(cert))
            .map_err(failed)?;
    }
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms
        .insert(algorithm(ID_SHA256))
        .map_err(failed)?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer).map_err(failed)?;
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(certificates)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    cms::content_info::ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(failed)?,
    }
    .to_der()
    .map_err(failed)
}
