//! The identity a certificate carries: an organisation or a security officer role.
//!
//! The identity lives in exactly one SAN URI, `urn:congvan:org:<id>`,
//! `urn:congvan:auditor:<scope>` or `urn:congvan:person:<id>`. Common names are for
//! people to read and are never matched on to decide *who* a certificate speaks for; the
//! one place a name is compared is a person certificate's common name against the name
//! printed in the manifest it signs (`document::signature::check_signer`). A certificate
//! with zero or several congvan URIs has no identity: being strict here means one
//! certificate can never speak for two parties.
//!
//! The two kinds of document-signing certificate are told apart by the URI, a property
//! any CA can issue: an organisation's seal carries `urn:congvan:org:<id>`, the competent
//! person's certificate `urn:congvan:person:<id>` (see `certs/README.md`). A person
//! certificate is never a TLS identity: the server's `Caller` refuses it.

use std::fmt;

use ring::digest;
use serde::Serialize;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{PkiError, URI_AUDITOR_PREFIX, URI_ORG_PREFIX, URI_PERSON_PREFIX};
use crate::directory::OrgId;

/// Who a certificate speaks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Identity {
    /// A committee (its office).
    Org(OrgId),
    /// A security officer scoped to a subtree.
    Auditor(OrgId),
    /// The competent person who signs for an organisation (a person's document-signing
    /// certificate). Signs documents in the role `person`; never a TLS identity.
    Person(OrgId),
}

impl Identity {
    /// The SAN URI form (`urn:congvan:org:hn/cm`).
    pub fn uri(&self) -> String {
        match self {
            Identity::Org(id) => format!("{URI_ORG_PREFIX}{id}"),
            Identity::Auditor(scope) => format!("{URI_AUDITOR_PREFIX}{scope}"),
            Identity::Person(id) => format!("{URI_PERSON_PREFIX}{id}"),
        }
    }

    /// Parses the SAN URI form.
    pub fn from_uri(uri: &str) -> Option<Result<Identity, PkiError>> {
        let (ctor, rest): (fn(OrgId) -> Identity, &str) =
            if let Some(rest) = uri.strip_prefix(URI_ORG_PREFIX) {
                (Identity::Org, rest)
            } else if let Some(rest) = uri.strip_prefix(URI_AUDITOR_PREFIX) {
                (Identity::Auditor, rest)
            } else if let Some(rest) = uri.strip_prefix(URI_PERSON_PREFIX) {
                (Identity::Person, rest)
            } else if uri.starts_with("urn:congvan:") {
                return Some(Err(PkiError::NoIdentity(format!(
                    "unknown congvan URI kind in {uri:?}"
                ))));
            } else {
                return None;
            };
        Some(
            OrgId::parse(rest)
                .map(ctor)
                .map_err(|e| PkiError::NoIdentity(e.to_string())),
        )
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// What congvan needs to know about one certificate, parsed once.
#[derive(Clone, Debug, Serialize)]
pub struct CertInfo {
    /// The identity in its SAN URI.
    #[serde(skip)]
    pub identity: Identity,
    /// The subject DN, RFC 4514 style, for people to read.
    pub subject: String,
    /// The subject's common name, when the subject has exactly one (a person
    /// certificate's CN is the person's full name). Already part of `subject` on the wire.
    #[serde(skip)]
    pub common_name: Option<String>,
    /// The issuer DN.
    pub issuer: String,
    /// The serial number, hex with colons.
    pub serial: String,
    /// SHA-256 of the DER encoding, lower-case hex.
    pub fingerprint_sha256: String,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
}

impl CertInfo {
    /// Parses a DER certificate and extracts its congvan identity.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, PkiError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(PkiError::BadCertificate(
                "trailing bytes after the certificate".into(),
            ));
        }
        let identity = identity_of(&cert)?;
        let rfc3339 = |t: x509_parser::time::ASN1Time| {
            t.to_datetime()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let mut common_names = cert.subject().iter_common_name();
        let common_name = match (common_names.next(), common_names.next()) {
            (Some(cn), None) => cn.as_str().ok().map(str::to_owned),
            // No name, or two: nothing a person could be identified by.
            _ => None,
        };
        Ok(CertInfo {
            identity,
            subject: cert.subject().to_string(),
            common_name,
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            fingerprint_sha256: hex(digest::digest(&digest::SHA256, der).as_ref()),
            not_before: rfc3339(cert.validity().not_before),
            not_after: rfc3339(cert.validity().not_after),
        })
    }
}

/// The common name and title (OID 2.5.4.12) of a certificate's subject, for people.
pub fn subject_name_and_title(der: &[u8]) -> Result<(Option<String>, Option<String>), PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    let title_oid = x509_parser::der_parser::oid!(2.5.4.12);
    let mut cn = None;
    let mut title = None;
    for attr in cert.subject().iter_attributes() {
        let value = attr.as_str().ok().map(str::to_owned);
        if attr.attr_type() == &x509_parser::oid_registry::OID_X509_COMMON_NAME {
            cn = value;
        } else if attr.attr_type() == &title_oid {
            title = value;
        }
    }
    Ok((cn, title))
}

fn identity_of(cert: &X509Certificate<'_>) -> Result<Identity, PkiError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::BadCertificate(e.to_string()))?
        .ok_or_else(|| PkiError::NoIdentity("no subjectAltName extension".into()))?;
    let mut found: Option<Identity> = None;
    for name in &san.value.general_names {
        if let GeneralName::URI(uri) = name {
            match Identity::from_uri(uri) {
                None => {}
                Some(Err(e)) => return Err(e),
                Some(Ok(id)) => {
                    if found.is_some() {
                        return Err(PkiError::NoIdentity(
                            "more than one congvan URI in subjectAltName".into(),
                        ));
                    }
                    found = Some(id);
                }
            }
        }
    }
    found.ok_or_else(|| PkiError::NoIdentity("no urn:congvan: URI in subjectAltName".into()))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trip() {
        let id = Identity::Org(OrgId::parse("hn/cm/chuc-son").unwrap());
        assert_eq!(id.uri(), "urn:congvan:org:hn/cm/chuc-son");
        assert_eq!(Identity::from_uri(&id.uri()).unwrap().unwrap(), id);
        let a = Identity::Auditor(OrgId::parse("hn/cm").unwrap());
        assert_eq!(
            Identity::from_uri("urn:congvan:auditor:hn/cm")
                .unwrap()
                .unwrap(),
            a
        );
        assert!(Identity::from_uri("https://example.org").is_none());
        assert!(Identity::from_uri("urn:congvan:admin:hn").unwrap().is_err());
        assert!(Identity::from_uri("urn:congvan:org:HN").unwrap().is_err());
        let p = Identity::Person(OrgId::parse("hn/cm").unwrap());
        assert_eq!(p.uri(), "urn:congvan:person:hn/cm");
        assert_eq!(
            Identity::from_uri("urn:congvan:person:hn/cm")
                .unwrap()
                .unwrap(),
            p
        );
        assert!(Identity::from_uri("urn:congvan:person:").unwrap().is_err());
    }
}
