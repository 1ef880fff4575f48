//! A client's `client.toml` profile: which server, which trust anchor, which keys (files
//! or a PKCS#11 token), and the deadlines `audit report` applies.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::document::SignatureFormat;
use crate::pki::PkiError;
use crate::pki::keystore::{KeySource, SecretSource, TokenSettings, Unlocker};
use crate::pki::signing::SigningKey;
use crate::pki::token::KeyRef;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    server: String,
    ca: PathBuf,
    tls_cert: PathBuf,
    /// Absent when the key is on the token (`[token] tls_key`).
    tls_key: Option<PathBuf>,
    sign_cert: Option<PathBuf>,
    sign_key: Option<PathBuf>,
    person_cert: Option<PathBuf>,
    person_key: Option<PathBuf>,
    openpgp_key: Option<PathBuf>,
    openpgp_cert: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    deadlines: Deadlines,
    key_passphrase_file: Option<PathBuf>,
    key_passphrase_env: Option<String>,
    token: Option<TokenFile>,
    signature_format: Option<SignatureFormat>,
}

/// A profile's `[token]` section: the signing keys on a PKCS#11 token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    module: PathBuf,
    label: String,
    pin_file: Option<PathBuf>,
    pin_env: Option<String>,
    sign_key: Option<TokenKeyFile>,
    person_key: Option<TokenKeyFile>,
    tls_key: Option<TokenKeyFile>,
}

/// A key on the token, by label or by id (hex).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenKeyFile {
    label: Option<String>,
    id: Option<String>,
}

impl TokenKeyFile {
    fn key_ref(self, name: &str) -> Result<KeyRef, String> {
        match (self.label, self.id) {
            (Some(label), None) => Ok(KeyRef::Label(label)),
            (None, Some(id)) => parse_hex(&id)
                .map(KeyRef::Id)
                .ok_or_else(|| format!("token.{name}.id must be hex, like \"01\"")),
            _ => Err(format!("token.{name} needs exactly one of label and id")),
        }
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_start_matches("0x");
    if text.is_empty() || text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

/// How long a recipient has, by urgency, before `audit report` calls a document overdue.
/// Hỏa tốc hẹn giờ (urgency 4) uses the document's own deadline.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deadlines {
    /// Thường (0), in hours.
    pub thuong_h: u64,
    /// Khẩn (1), in hours.
    pub khan_h: u64,
    /// Thượng khẩn (2), in hours.
    pub thuong_khan_h: u64,
    /// Hỏa tốc (3), in hours.
    pub hoa_toc_h: u64,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            thuong_h: 72,
            khan_h: 24,
            thuong_khan_h: 8,
            hoa_toc_h: 2,
        }
    }
}

impl Deadlines {
    /// The allowance for an urgency 0–3, in hours.
    pub fn hours(&self, urgency: u8) -> u64 {
        match urgency {
            0 => self.thuong_h,
            1 => self.khan_h,
            2 => self.thuong_khan_h,
            _ => self.hoa_toc_h,
        }
    }
}

/// A client profile: which server, which trust anchor, which keys.
#[derive(Clone, Debug)]
pub struct ClientProfile {
    /// The file it was read from.
    pub path: PathBuf,
    /// The server's base URL (`https://localhost:8443`).
    pub server: String,
    /// The trust anchor for the server certificate (and for signatures).
    pub ca: PathBuf,
    /// The TLS client certificate chain.
    pub tls_cert: PathBuf,
    /// The TLS client key file; empty when the key is on the token ([`Self::tls_key_token`]).
    pub tls_key: PathBuf,
    /// The organisation's document-signing certificate.
    pub sign_cert: Option<PathBuf>,
    /// The organisation's document-signing key.
    pub sign_key: Option<PathBuf>,
    /// The competent person's document-signing certificate.
    pub person_cert: Option<PathBuf>,
    /// The competent person's document-signing key.
    pub person_key: Option<PathBuf>,
    /// The OpenPGP secret key.
    pub openpgp_key: Option<PathBuf>,
    /// The OpenPGP certificate.
    pub openpgp_cert: Option<PathBuf>,
    /// Where the client keeps what it has learnt (directory cache, checkpoints).
    pub state_dir: PathBuf,
    /// Delivery deadlines for `audit report`.
    pub deadlines: Deadlines,
    /// The organisation's signing key on the token (`[token] sign_key`), instead of
    /// `sign_key`.
    pub sign_key_token: Option<KeyRef>,
    /// The person's signing key on the token (`[token] person_key`), instead of
    /// `person_key`.
    pub person_key_token: Option<KeyRef>,
    /// The TLS client key on the token (`[token] tls_key`), instead of `tls_key`.
    pub tls_key_token: Option<KeyRef>,
    /// Unlocks this profile's keys (token PIN, key passphrase) once per command.
    pub keys: Unlocker,
    /// How `send` encodes its signatures: `raw` (the default) or `cms` (detached CMS
    /// SignedData, which `openssl cms -verify` checks).
    pub signature_format: SignatureFormat,
}

impl ClientProfile {
    /// Reads a client profile.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let file: ProfileFile = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let passphrase = SecretSource::from_settings(
            file.key_passphrase_file.map(resolve),
            file.key_passphrase_env,
        );
        let (token, sign_key_token, person_key_token, tls_key_token) = match file.token {
            None => (None, None, None, None),
            Some(t) => {
                let sign = t.sign_key.map(|k| k.key_ref("sign_key")).transpose();
                let person = t.person_key.map(|k| k.key_ref("person_key")).transpose();
                let tls = t.tls_key.map(|k| k.key_ref("tls_key")).transpose();
                let settings = TokenSettings {
                    module: resolve(t.module),
                    label: t.label,
                    pin: SecretSource::from_settings(t.pin_file.map(resolve), t.pin_env),
                };
                (
                    Some(settings),
                    sign.map_err(invalid)?,
                    person.map_err(invalid)?,
                    tls.map_err(invalid)?,
                )
            }
        };
        // A key named twice is a mistake the clerk must fix, not a choice to make silently.
        if sign_key_token.is_some() && file.sign_key.is_some() {
            return Err(invalid(
                "sign_key and token.sign_key are both set; keep the one that holds the key".into(),
            ));
        }
        if person_key_token.is_some() && file.person_key.is_some() {
            return Err(invalid(
                "person_key and token.person_key are both set; keep the one that holds the key"
                    .into(),
            ));
        }
        let tls_key = match (&tls_key_token, file.tls_key) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "tls_key and token.tls_key are both set; keep the one that holds the key"
                        .into(),
                ));
            }
            (None, None) => return Err(invalid("missing field `tls_key`".into())),
            (Some(_), None) => PathBuf::new(),
            (None, Some(path)) => resolve(path),
        };
        if sign_key_token.is_some() && file.sign_cert.is_none() {
            return Err(invalid(
                "token.sign_key needs sign_cert (the certificate file)".into(),
            ));
        }
        if person_key_token.is_some() && file.person_cert.is_none() {
            return Err(invalid(
                "token.person_key needs person_cert (the certificate file)".into(),
            ));
        }
        Ok(ClientProfile {
            path: path.to_owned(),
            server: file.server.trim_end_matches('/').to_owned(),
            ca: resolve(file.ca),
            tls_cert: resolve(file.tls_cert),
            tls_key,
            sign_cert: file.sign_cert.map(resolve),
            sign_key: file.sign_key.map(resolve),
            person_cert: file.person_cert.map(resolve),
            person_key: file.person_key.map(resolve),
            openpgp_key: file.openpgp_key.map(resolve),
            openpgp_cert: file.openpgp_cert.map(resolve),
            state_dir: resolve(file.state_dir.unwrap_or_else(|| PathBuf::from("state"))),
            deadlines: file.deadlines,
            sign_key_token,
            person_key_token,
            tls_key_token,
            keys: Unlocker::new(token, passphrase),
            signature_format: file.signature_format.unwrap_or(SignatureFormat::Raw),
        })
    }

    /// The organisation's signing certificate and where its key is (a file or the token).
    pub fn sign_key_source(&self) -> Option<(PathBuf, KeySource)> {
        let key = match (&self.sign_key_token, &self.sign_key) {
            (Some(key), _) => KeySource::Token(key.clone()),
            (None, Some(path)) => KeySource::File(path.clone()),
            (None, None) => return None,
        };
        Some((self.sign_cert.clone()?, key))
    }

    /// The competent person's signing certificate and where its key is.
    pub fn person_key_source(&self) -> Option<(PathBuf, KeySource)> {
        let key = match (&self.person_key_token, &self.person_key) {
            (Some(key), _) => KeySource::Token(key.clone()),
            (None, Some(path)) => KeySource::File(path.clone()),
            (None, None) => return None,
        };
        Some((self.person_cert.clone()?, key))
    }

    /// The organisation's signing key, unlocked.
    pub fn org_signing_key(&self) -> Result<Option<SigningKey>, PkiError> {
        self.sign_key_source()
            .map(|(cert, key)| self.keys.signing_key(&cert, &key))
            .transpose()
    }

    /// The competent person's signing key, unlocked.
    pub fn person_signing_key(&self) -> Result<Option<SigningKey>, PkiError> {
        self.person_key_source()
            .map(|(cert, key)| self.keys.signing_key(&cert, &key))
            .transpose()
    }
}
