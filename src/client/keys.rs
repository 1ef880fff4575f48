//! Encryption keys the client may rely on: its own endorsement (`congvan key endorse`),
//! the check of every recipient's endorsement before sealing, and the memory of each
//! recipient's endorsed key (`state_dir/endorsed-keys.json`).
//!
//! The directory is signed by the server, which only proves that the server sent it. An
//! encryption certificate is used only with its organisation's endorsement, checked here
//! against the profile's own trust anchor and the CAs' CRLs, so that an operator who
//! registers a key of its own in a committee's name is refused before anything is sealed.
//! On top, the client remembers the key it last saw endorsed for each organisation: a new
//! key is shown loudly (it may be a legitimate rotation, or a stolen seal key at work), and
//! an older endorsement of another key (a replaced key served again) is refused.

use std::collections::BTreeMap;

use rustls_pki_types::UnixTime;
use serde::{Deserialize, Serialize};

use super::{Client, ClientError};
use crate::api::{DirectoryOrg, DirectoryStatement};
use crate::config::ClientProfile;
use crate::directory::OrgId;
use crate::directory::endorsement::{
    EndorsementError, KeyEndorsement, SignedEndorsement, VerifiedEndorsement, parse_time,
};
use crate::pki::pem::write_public;
use crate::pki::signing::SigningTrust;
use crate::seal::{Cipher, OpenPgp};

/// The state file remembering each organisation's endorsed key.
pub const PINNED_KEYS_FILE: &str = "endorsed-keys.json";

/// Makes the profile organisation's endorsement of the OpenPGP certificate `cert` (made by
/// congvan or exported from gpg), signed with the profile's seal key (`sign_cert`,
/// `sign_key`), valid for `days` but never past the seal certificate's own end.
pub fn endorse_key(
    profile: &ClientProfile,
    cert: &[u8],
    days: i64,
) -> Result<SignedEndorsement, ClientError> {
    let (cert_path, key_source) = profile.sign_key_source().ok_or_else(|| {
        ClientError::Input("the profile has no sign_cert/sign_key (the seal)".into())
    })?;
    let seal = profile.keys.signing_key(&cert_path, &key_source)?;
    let leaf = seal.chain.first().map(Vec::as_slice).unwrap_or_default();
    let info = crate::pki::CertInfo::from_der(leaf)?;
    let org = match info.identity {
        crate::pki::Identity::Org(id) => id,
        other => {
            return Err(ClientError::Input(format!(
                "{} names {other}, not an organisation: only the organisation's seal \
                 certificate can endorse its key",
                cert_path.display()
            )));
        }
    };
    let fingerprint = OpenPgp::default()
        .check_cert(cert)
        .map_err(ClientError::UnusableCertificate)?;
    let seal_end = parse_time("the seal certificate's notAfter", &info.not_after)
        .map_err(ClientError::EndorsementNotMade)?;
    let refused = ClientError::EndorsementNotMade;
    KeyEndorsement::new(org, &fingerprint, time::OffsetDateTime::now_utc(), days)
        .and_then(|s| s.ending_no_later_than(seal_end))
        .and_then(|s| s.sign(&seal))
        .map_err(refused)
}

/// Checks one directory entry's encryption certificate and endorsement with `trust` now.
pub fn check_entry(
    trust: &SigningTrust,
    entry: &DirectoryOrg,
) -> Result<(Vec<u8>, VerifiedEndorsement), ClientError> {
    let org = OrgId::parse(&entry.id).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let refuse = |error: EndorsementError| ClientError::Endorsement {
        org: org.clone(),
        error,
    };
    let cert = entry
        .encryption_cert
        .clone()
        .ok_or_else(|| ClientError::NoEncryptionKey(org.clone()))?;
    let fingerprint = OpenPgp::default()
        .check_cert(cert.as_bytes())
        .map_err(|source| ClientError::UnusableKey {
            org: org.clone(),
            source,
        })?;
    let endorsement = entry
        .encryption_endorsement
        .as_ref()
        .ok_or_else(|| refuse(EndorsementError::Missing))?;
    let verified = endorsement
        .verify(trust, &org, &fingerprint, UnixTime::now())
        .map_err(refuse)?;
    Ok((cert.into_bytes(), verified))
}

/// One remembered key.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pinned {
    fingerprint: String,
    issued_at: String,
}

#[derive(Default, Serialize, Deserialize)]
struct PinnedFile {
    orgs: BTreeMap<String, Pinned>,
}

/// Compares a verified endorsement with the remembered one and updates the memory;
/// returns a notice when the key changed, or refuses an older endorsement of another key.
fn compare_with_pin(
    pins: &mut PinnedFile,
    verified: &VerifiedEndorsement,
) -> Result<Option<String>, EndorsementError> {
    let key = verified.org.to_string();
    let fresh = Pinned {
        fingerprint: verified.fingerprint.clone(),
        issued_at: verified.issued_at.clone(),
    };
    let Some(old) = pins.orgs.get(&key).cloned() else {
        pins.orgs.insert(key, fresh);
        return Ok(None);
    };
    let newer = match (
        parse_time("issued_at", &fresh.issued_at),
        parse_time("issued_at", &old.issued_at),
    ) {
        (Ok(new), Ok(old)) => new > old,
        // A damaged memory is replaced by what verified.
        (Ok(_), Err(_)) => true,
        (Err(e), _) => return Err(e),
    };
    if old.fingerprint.eq_ignore_ascii_case(&fresh.fingerprint) {
        if newer {
            pins.orgs.insert(key, fresh);
        }
        return Ok(None);
    }
    if !newer {
        return Err(EndorsementError::Superseded {
            offered: fresh.fingerprint,
            offered_issued_at: fresh.issued_at,
            pinned: old.fingerprint,
            pinned_issued_at: old.issued_at,
        });
    }
    let notice = format!(
        "NOTICE: the encryption key of {org} CHANGED: was {old_fp}, now {new_fp} (endorsed by \
         its seal certificate on {issued}). If {org} did not announce a new key, stop and \
         check with them by another channel.",
        org = verified.org,
        old_fp = old.fingerprint,
        new_fp = fresh.fingerprint,
        issued = fresh.issued_at,
    );
    pins.orgs.insert(key, fresh);
    Ok(Some(notice))
}

/// Encryption certificates of some recipients, each checked against its endorsement.
pub struct EndorsedKeys {
    /// The certificates, in recipient order.
    pub certs: Vec<Vec<u8>>,
    /// Loud notices for people (changed keys).
    pub notices: Vec<String>,
}

impl Client {
    /// The encryption certificates of `recipients` from a verified `directory`, each
    /// checked against its organisation's endorsement with the profile's anchor and the
    /// CAs' current CRLs, and compared with the keys remembered from earlier runs. Refuses,
    /// naming the organisation, if any endorsement fails; nothing is remembered then.
    pub async fn endorsed_keys(
        &self,
        directory: &DirectoryStatement,
        recipients: &[OrgId],
    ) -> Result<EndorsedKeys, ClientError> {
        let trust = self.signing_trust().await?;
        let mut entries = Vec::new();
        for recipient in recipients {
            let entry = directory
                .orgs
                .iter()
                .find(|o| o.id == recipient.as_str())
                .cloned()
                .ok_or_else(|| ClientError::NotInDirectory(recipient.clone()))?;
            entries.push(entry);
        }
        let checked = tokio::task::spawn_blocking(move || {
            entries
                .iter()
                .map(|e| check_entry(&trust, e))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(ClientError::Background)??;

        let path = self.profile().state_dir.join(PINNED_KEYS_FILE);
        let mut pins: PinnedFile = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Trust(format!("{} is damaged: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PinnedFile::default(),
            Err(source) => return Err(ClientError::File { path, source }),
        };
        let mut notices = Vec::new();
        let mut certs = Vec::new();
        for (cert, verified) in checked {
            if let Some(notice) = compare_with_pin(&mut pins, &verified).map_err(|error| {
                ClientError::Endorsement {
                    org: verified.org.clone(),
                    error,
                }
            })? {
                notices.push(notice);
            }
            certs.push(cert);
        }
        let text =
            serde_json::to_vec_pretty(&pins).map_err(|e| ClientError::Protocol(e.to_string()))?;
        write_public(&path, &text)?;
        Ok(EndorsedKeys { certs, notices })
    }

    /// Checks this organisation's own entry in `directory`: its key must be endorsed and
    /// must be the profile's own (`openpgp_cert`). Returns loud notices, never an error:
    /// the document being fetched is verified on its own, and the owner is the one party
    /// who must hear that the server lists another key in its name.
    pub fn own_key_notices(
        &self,
        trust: &SigningTrust,
        directory: &DirectoryStatement,
        me: &OrgId,
    ) -> Vec<String> {
        let Some(entry) = directory.orgs.iter().find(|o| o.id == me.as_str()) else {
            return vec![format!("WARNING: the directory does not list {me}")];
        };
        let mut notices = Vec::new();
        match check_entry(trust, entry) {
            Ok((_, verified)) => {
                let own = self
                    .profile()
                    .openpgp_cert
                    .as_ref()
                    .and_then(|p| std::fs::read(p).ok())
                    .and_then(|c| OpenPgp::default().check_cert(&c).ok());
                if let Some(own) = own {
                    if !own.eq_ignore_ascii_case(&verified.fingerprint) {
                        notices.push(format!(
                            "WARNING: the directory lists {} as the encryption key of {me}, \
                             endorsed on {}, but this profile's key is {own}",
                            verified.fingerprint, verified.issued_at
                        ));
                    }
                }
            }
            Err(e) => notices.push(format!(
                "WARNING: senders will refuse to seal to {me}: {e}. Endorse your key \
                 (`congvan key endorse`) and have the operator register it"
            )),
        }
        notices
    }
}

/// Why `directory set-key` refused to register a key, or could not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterKeyError {
    /// The server's configuration or organisation tree could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The organisation is not in the tree.
    #[error("{org} is not in the organisation tree {orgs}")]
    UnknownOrg {
        /// The organisation.
        org: OrgId,
        /// The tree file.
        orgs: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The certificate is not an OpenPGP certificate congvan can seal to.
    #[error("{path} cannot be used as an encryption key")]
    NotEncryptionKey {
        /// The certificate file.
        path: String,
        /// Why.
        #[source]
        source: crate::seal::SealError,
    },
    /// No endorsement was given. The message names the code the clients would give, so
    /// that the operator can look it up, and says how to get one.
    #[error(
        "refusing the encryption key {fingerprint} for {org} [{}]: {source}; ask {org} for \
         one (`congvan key endorse`) and pass it with --endorsement",
        .source.code()
    )]
    NoEndorsement {
        /// The certificate's fingerprint.
        fingerprint: String,
        /// The organisation.
        org: OrgId,
        /// Always [`EndorsementError::Missing`].
        #[source]
        source: Box<EndorsementError>,
    },
    /// The endorsement does not hold (with the code the clients would give).
    #[error("refusing the encryption key {fingerprint} for {org} [{}]: {source}", .source.code())]
    Refused {
        /// The certificate's fingerprint.
        fingerprint: String,
        /// The organisation.
        org: OrgId,
        /// Why (boxed: the error stays small on the happy path).
        #[source]
        source: Box<EndorsementError>,
    },
    /// Trust material could not be read, or a file not written.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
}

/// A key `directory set-key` registered.
#[derive(Debug)]
pub struct RegisteredKey {
    /// The certificate's OpenPGP fingerprint.
    pub fingerprint: String,
    /// Where the certificate was written (in the keys directory).
    pub cert_path: std::path::PathBuf,
    /// The endorsement as verified.
    pub endorsement: VerifiedEndorsement,
}

/// `directory set-key`, on the server host: registers the OpenPGP certificate in `cert`
/// as `org`'s encryption key, in the keys directory of the server configured by `config`,
/// with the organisation's endorsement read from `endorsement`.
///
/// The server serves endorsements without judging them; this check is here so that an
/// honest operator's mistake is caught at once, with the code the clients would give.
pub fn register_key(
    config: &crate::config::ServerConfig,
    org: &OrgId,
    cert: &std::path::Path,
    endorsement: Option<&std::path::Path>,
) -> Result<RegisteredKey, RegisterKeyError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| RegisterKeyError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let (directory, _) = config.load_directory()?;
    if directory.org(org).is_none() {
        return Err(RegisterKeyError::UnknownOrg {
            org: org.clone(),
            orgs: config.orgs.display().to_string(),
        });
    }
    let bytes = read(cert)?;
    let fingerprint = OpenPgp::default().check_cert(&bytes).map_err(|source| {
        RegisterKeyError::NotEncryptionKey {
            path: cert.display().to_string(),
            source,
        }
    })?;
    let refuse = |source: EndorsementError| RegisterKeyError::Refused {
        fingerprint: fingerprint.clone(),
        org: org.clone(),
        source: Box::new(source),
    };
    let Some(endorsement_path) = endorsement else {
        return Err(RegisterKeyError::NoEndorsement {
            fingerprint: fingerprint.clone(),
            org: org.clone(),
            source: Box::new(EndorsementError::Missing),
        });
    };
    let endorsement_bytes = read(endorsement_path)?;
    let parsed = SignedEndorsement::from_slice(&endorsement_bytes).map_err(refuse)?;
    let trust = SigningTrust::load(&config.signing_anchors, &config.signing_crls)?;
    let verified = parsed
        .verify(&trust, org, &fingerprint, UnixTime::now())
        .map_err(refuse)?;
    // The endorsement first: a server that reloads between the two writes then serves
    // the old certificate with a new endorsement, which clients refuse (fail closed)
    // until the certificate follows, never an unendorsed new key.
    let endorsement_json = parsed.to_json().map_err(refuse)?;
    write_public(
        &config
            .keys_dir
            .join(crate::directory::endorsement_file(org)),
        &endorsement_json,
    )?;
    let cert_path = config
        .keys_dir
        .join(crate::directory::encryption_cert_file(org));
    write_public(&cert_path, &bytes)?;
    Ok(RegisteredKey {
        fingerprint,
        cert_path,
        endorsement: verified,
    })
}

/// Why `key endorse` could not endorse a certificate file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndorseFileError {
    /// No certificate named, and the profile names none.
    #[error("the profile has no openpgp_cert; name the certificate with --cert")]
    NoCert,
    /// The certificate file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Signing the endorsement failed. The cause keeps its own exit code.
    #[error("{0}")]
    Client(#[source] ClientError),
    /// The endorsement could not be serialised.
    #[error("{0}")]
    Endorsement(#[source] EndorsementError),
}

/// `key endorse`: endorses the certificate file `cert` (default: the profile's
/// `openpgp_cert`) for `days`; returns the endorsement and its JSON file's bytes.
pub fn endorse_key_file(
    profile: &ClientProfile,
    cert: Option<&std::path::Path>,
    days: i64,
) -> Result<(SignedEndorsement, Vec<u8>), EndorseFileError> {
    let cert_path = match cert {
        Some(path) => path.to_owned(),
        None => profile
            .openpgp_cert
            .clone()
            .ok_or(EndorseFileError::NoCert)?,
    };
    let bytes = std::fs::read(&cert_path).map_err(|source| EndorseFileError::Read {
        path: cert_path.display().to_string(),
        source,
    })?;
    let endorsement = endorse_key(profile, &bytes, days).map_err(EndorseFileError::Client)?;
    let json = endorsement
        .to_json()
        .map_err(EndorseFileError::Endorsement)?;
    Ok((endorsement, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(fp: &str, issued_at: &str) -> VerifiedEndorsement {
        VerifiedEndorsement {
            org: OrgId::parse("hn/cm/chuc-son").unwrap(),
            fingerprint: fp.into(),
            issued_at: issued_at.into(),
            not_after: "2030-01-01T00:00:00Z".into(),
            signer_subject: "CN=x".into(),
        }
    }

    #[test]
    fn pins_notice_changes_and_refuse_older_endorsements_of_other_keys() {
        let mut pins = PinnedFile::default();
        let a = verified("AAAA", "2026-01-01T00:00:00Z");
        let b = verified("BBBB", "2026-06-01T00:00:00Z");
        assert_eq!(compare_with_pin(&mut pins, &a).unwrap(), None);
        assert_eq!(compare_with_pin(&mut pins, &a).unwrap(), None);
        let notice = compare_with_pin(&mut pins, &b).unwrap().unwrap();
        assert!(
            notice.contains("AAAA") && notice.contains("BBBB"),
            "{notice}"
        );
        assert!(notice.contains("2026-06-01T00:00:00Z"), "{notice}");
        let err = compare_with_pin(&mut pins, &a).unwrap_err();
        assert_eq!(err.code(), "endorsement_superseded");
        // A renewed endorsement of the same key is quiet.
        let b2 = verified("BBBB", "2026-09-01T00:00:00Z");
        assert_eq!(compare_with_pin(&mut pins, &b2).unwrap(), None);
        assert_eq!(
            pins.orgs["hn/cm/chuc-son"].issued_at,
            "2026-09-01T00:00:00Z"
        );
    }
}
