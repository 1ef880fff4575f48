//! Where a client's private keys live and how they are unlocked: plain PKCS#8 files,
//! PKCS#8 files encrypted with a passphrase (PBES2: scrypt or PBKDF2, with AES), keys on a
//! PKCS#11 token, and keys imported from the PKCS#12 files CAs hand out.
//!
//! One [`Unlocker`] serves one command: it asks for the token PIN or the key passphrase at
//! most once (from a file or an environment variable the profile names, or on the
//! terminal without echo), keeps the token session open for every key the command uses,
//! and never writes a secret anywhere, log included. Secrets are held in `Zeroizing`
//! buffers so that they are wiped when dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pkcs8::der::pem::LineEnding;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

use super::PkiError;
use super::pem::{read_certs, read_private_key};
use super::signing::SigningKey;
use super::token::{KeyRef, TokenSession};

mod prompt;
pub use prompt::{PromptError, new_passphrase, read_password};

/// The PEM label of an encrypted PKCS#8 key (RFC 5958).
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";
/// scrypt's cost parameter for keys encrypted here (log2 N).
pub const SCRYPT_LOG_N: u8 = 14;
/// Longest secret file read (a PIN or passphrase file is a line).
const SECRET_FILE_BYTES_MAX: u64 = 4096;
/// Longest PKCS#12 file read.
pub const P12_BYTES_MAX: u64 = 1 << 20;

/// Why a key could not be unlocked, imported or protected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No PIN or passphrase could be obtained.
    #[error("cannot get the {what}: {reason}")]
    NoSecret {
        /// What was asked for ("PIN of token …", "passphrase of …").
        what: String,
        /// Why not, and what to do.
        reason: String,
    },
    /// The passphrase does not decrypt the key file.
    #[error("the passphrase does not unlock {path}")]
    WrongPassphrase {
        /// The key file.
        path: String,
    },
    /// The PKCS#12 password is wrong (the file's MAC or its encryption does not check).
    #[error("the password does not open {path} (nothing was written)")]
    P12WrongPassword {
        /// The PKCS#12 file.
        path: String,
    },
    /// The PKCS#12 file cannot be read.
    #[error("{path} is not a PKCS#12 file congvan can read: {reason} (nothing was written)")]
    P12Malformed {
        /// The PKCS#12 file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The PKCS#12 file holds no private key.
    #[error(
        "{path} holds no private key, only certificates; ask the CA for the file with the \
         key (nothing was written)"
    )]
    P12NoKey {
        /// The PKCS#12 file.
        path: String,
    },
    /// The PKCS#12 file holds more than one private key.
    #[error("{path} holds {count} private keys; congvan imports one key per file")]
    P12SeveralKeys {
        /// The PKCS#12 file.
        path: String,
        /// How many.
        count: usize,
    },
    /// No certificate in the file belongs to the key.
    #[error(
        "the private key in {path} does not belong to any certificate in it (nothing was \
         written)"
    )]
    P12KeyMismatch {
        /// The PKCS#12 file.
        path: String,
    },
    /// An output file exists already.
    #[error("{path} exists; pass --force to replace it (nothing was written)")]
    Exists {
        /// The file.
        path: String,
    },
    /// Encrypting a key failed.
    #[error("cannot encrypt the key: {0}")]
    Encrypt(String),
}

/// Where a secret (a token PIN or a key passphrase) comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SecretSource {
    /// Asked on the terminal, without echo.
    #[default]
    Terminal,
    /// The first line of a file (for unattended use; keep it 0600).
    File(PathBuf),
    /// An environment variable (for unattended use).
    Env(String),
}

impl SecretSource {
    /// A source from a profile's optional `*_file` and `*_env` settings (the file wins).
    pub fn from_settings(file: Option<PathBuf>, env: Option<String>) -> SecretSource {
        match (file, env) {
            (Some(file), _) => SecretSource::File(file),
            (None, Some(var)) => SecretSource::Env(var),
            (None, None) => SecretSource::Terminal,
        }
    }

    /// Reads the secret; `what` names it in the prompt and in errors.
    pub fn read(&self, what: &str) -> Result<Zeroizing<String>, KeyError> {
        let no = |reason: String| KeyError::NoSecret {
            what: what.to_owned(),
            reason,
        };
        let secret = match self {
            SecretSource::Terminal => Zeroizing::new(
                rpassword::prompt_password(format!("{what}: ")).map_err(|e| {
                    no(format!(
                        "no terminal to ask on ({e}); name a file or an environment \
                         variable that holds it (in the profile, or with the command's \
                         --*-file / --*-env options)"
                    ))
                })?,
            ),
            SecretSource::File(path) => {
                use std::io::Read as _;
                // A secret others can read is no secret: refuse it, as ssh refuses a
                // private key others can read, rather than use it and spread the habit.
                if !super::pem::is_owner_only(path) && path.exists() {
                    return Err(no(format!(
                        "{} can be read by other users; make it private (chmod 600) first",
                        path.display()
                    )));
                }
                let file = std::fs::File::open(path)
                    .map_err(|e| no(format!("{}: {e}", path.display())))?;
                let mut text = Zeroizing::new(String::new());
                file.take(SECRET_FILE_BYTES_MAX)
                    .read_to_string(&mut text)
                    .map_err(|e| no(format!("{}: {e}", path.display())))?;
                Zeroizing::new(text.lines().next().unwrap_or_default().to_owned())
            }
            SecretSource::Env(var) => Zeroizing::new(
                std::env::var(var)
                    .map_err(|_| no(format!("the environment variable {var} is not set")))?,
            ),
        };
        if secret.is_empty() {
            return Err(no("it is empty".into()));
        }
        Ok(secret)
    }
}

/// Where one signing key is: a file (plain or encrypted PKCS#8) or a key on the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM file.
    File(PathBuf),
    /// A key on the profile's token.
    Token(KeyRef),
}

/// The token a profile uses: its module, its label and where its PIN comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSettings {
    /// The PKCS#11 module (a shared library).
    pub module: PathBuf,
    /// The token's label.
    pub label: String,
    /// Where the user PIN comes from.
    pub pin: SecretSource,
}

/// Unlocks the keys of one profile for one command: one PIN entry, one passphrase entry.
/// Clones share the open token session and the secrets already entered.
#[derive(Clone, Default)]
pub struct Unlocker {
    token: Option<TokenSettings>,
    passphrase: SecretSource,
    state: Arc<Mutex<UnlockState>>,
}

#[derive(Default)]
struct UnlockState {
    session: Option<Arc<TokenSession>>,
    passphrase: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Unlocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets: only where they come from.
        f.debug_struct("Unlocker")
            .field("token", &self.token)
            .field("passphrase", &self.passphrase)
            .finish_non_exhaustive()
    }
}

impl Unlocker {
    /// An unlocker for a profile's token (if any) and key passphrase source.
    pub fn new(token: Option<TokenSettings>, passphrase: SecretSource) -> Unlocker {
        Unlocker {
            token,
            passphrase,
            state: Arc::default(),
        }
    }

    /// The token settings, if the profile has a token.
    pub fn token(&self) -> Option<&TokenSettings> {
        self.token.as_ref()
    }

    /// Loads a signing key and its certificate chain (`cert`, PEM), checking that they
    /// belong together.
    pub fn signing_key(&self, cert: &Path, key: &KeySource) -> Result<SigningKey, PkiError> {
        let chain: Vec<Vec<u8>> = read_certs(cert)?.into_iter().map(|c| c.to_vec()).collect();
        match key {
            KeySource::File(path) => {
                let der = self.pkcs8_der(path)?;
                SigningKey::from_der(chain, &der, cert, path)
            }
            KeySource::Token(key) => {
                let session = self.token_session()?;
                let key = session.find_key(key)?;
                SigningKey::from_token(chain, key, cert)
            }
        }
    }

    /// Reads a private key file for TLS: plain PEM (PKCS#8, SEC1, PKCS#1) or encrypted
    /// PKCS#8, decrypted with the profile's passphrase.
    pub fn tls_key(&self, path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
        if is_encrypted(path)? {
            let der = self.decrypt(path)?;
            return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec())));
        }
        read_private_key(path)
    }

    /// The DER of a key file's PKCS#8 (decrypted if needed) or PKCS#1 key.
    fn pkcs8_der(&self, path: &Path) -> Result<KeyDer, PkiError> {
        if is_encrypted(path)? {
            return Ok(KeyDer::Pkcs8(self.decrypt(path)?));
        }
        Ok(match read_private_key(path)? {
            PrivateKeyDer::Pkcs8(der) => {
                KeyDer::Pkcs8(Zeroizing::new(der.secret_pkcs8_der().to_vec()))
            }
            PrivateKeyDer::Pkcs1(der) => {
                KeyDer::Pkcs1(Zeroizing::new(der.secret_pkcs1_der().to_vec()))
            }
            _ => {
                return Err(PkiError::Pem {
                    path: path.display().to_string(),
                    reason: "use a PKCS#8 key (openssl pkcs8 -topk8)".into(),
                });
            }
        })
    }

    /// Decrypts an encrypted PKCS#8 file with the passphrase entered earlier in this
    /// command, or asks for it (once).
    fn decrypt(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        let text = read_limited(path, P12_BYTES_MAX)?;
        let text = String::from_utf8(text.to_vec()).map_err(|_| PkiError::Pem {
            path: path.display().to_string(),
            reason: "not a PEM file".into(),
        })?;
        let (label, doc) =
            pkcs8::der::SecretDocument::from_pem(&text).map_err(|e| PkiError::Pem {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        if label != ENCRYPTED_LABEL {
            return Err(PkiError::Pem {
                path: path.display().to_string(),
                reason: format!("expected {ENCRYPTED_LABEL}, found {label}"),
            });
        }
        let info =
            EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| PkiError::Pem {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let mut state = self.lock()?;
        let passphrase = match &state.passphrase {
            Some(p) => p.clone(),
            None => self
                .passphrase
                .read(&format!("passphrase of {}", path.display()))?,
        };
        let plain = info
            .decrypt(passphrase.as_bytes())
            .map_err(|_| KeyError::WrongPassphrase {
                path: path.display().to_string(),
            })?;
        state.passphrase = Some(passphrase);
        Ok(Zeroizing::new(plain.as_bytes().to_vec()))
    }

    /// The token session of this command, opened and logged in on first use.
    fn token_session(&self) -> Result<Arc<TokenSession>, PkiError> {
        let mut state = self.lock()?;
        if let Some(session) = &state.session {
            return Ok(Arc::clone(session));
        }
        let settings = self.token.as_ref().ok_or_else(|| KeyError::NoSecret {
            what: "token".into(),
            reason: "the profile names a key on a token but has no [token] section".into(),
        })?;
        let session = Arc::new(TokenSession::open(&settings.module, &settings.label)?);
        let pin = settings
            .pin
            .read(&format!("PIN of token {:?}", settings.label))?;
        session.login(&pin)?;
        state.session = Some(Arc::clone(&session));
        Ok(session)
    }

    /// A PKCS#10 certificate signing request for `key` on the token, with subject
    /// `common_name`, signed by the key itself (PEM). The CA decides everything else the
    /// certificate says; the request only proves possession of the key.
    pub fn token_csr(&self, key: &KeyRef, common_name: &str) -> Result<String, PkiError> {
        let session = self.token_session()?;
        let key = session.find_key(key)?;
        let point = key.public_point().map(<[u8]>::to_vec).ok_or_else(|| {
            PkiError::Generate(format!(
                "{} has no public key object beside it, so its public key is unknown",
                key.describe()
            ))
        })?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let csr = params.serialize_request(&CsrSigner { key, point })?;
        Ok(csr.pem()?)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, UnlockState>, PkiError> {
        self.state
            .lock()
            .map_err(|_| PkiError::Generate("the key store was poisoned by a panic".into()))
    }
}

/// A token key as rcgen's signer, for certificate requests.
struct CsrSigner {
    key: super::token::TokenKey,
    point: Vec<u8>,
}

impl rcgen::PublicKeyData for CsrSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for CsrSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key
            .sign_p256_sha256(msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A private key's DER, wiped on drop.
pub(crate) enum KeyDer {
    /// PKCS#8 `PrivateKeyInfo`.
    Pkcs8(Zeroizing<Vec<u8>>),
    /// PKCS#1 `RSAPrivateKey`.
    Pkcs1(Zeroizing<Vec<u8>>),
}

/// True when the PEM file holds an encrypted PKCS#8 key.
pub fn is_encrypted(path: &Path) -> Result<bool, PkiError> {
    let text = read_limited(path, P12_BYTES_MAX)?;
    Ok(String::from_utf8_lossy(&text).contains(&format!("-----BEGIN {ENCRYPTED_LABEL}-----")))
}

fn read_limited(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    use std::io::Read as _;
    let io = |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(PkiError::Pem {
            path: path.display().to_string(),
            reason: format!("larger than {max} bytes"),
        });
    }
    Ok(bytes)
}

/// Encrypts a PKCS#8 key with a passphrase and returns the PEM: PBES2 with scrypt
/// (N=2^14, r=8, p=1, a 16-byte salt; 16 MiB per try) and AES-256-CBC. These are OpenSSL's
/// own `pkcs8 -scrypt` parameters: larger N would be refused by `openssl pkey` (its scrypt
/// memory limit is 32 MiB), and a key file other tools cannot read would trap the office.
pub fn encrypt_pkcs8(der: &[u8], passphrase: &str) -> Result<Zeroizing<String>, KeyError> {
    use pkcs8::rand_core::RngCore as _;
    let failed = |e: &dyn std::fmt::Display| KeyError::Encrypt(e.to_string());
    let info = PrivateKeyInfo::try_from(der).map_err(|e| failed(&e))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    pkcs8::rand_core::OsRng.fill_bytes(&mut salt);
    pkcs8::rand_core::OsRng.fill_bytes(&mut iv);
    let scrypt =
        pkcs8::pkcs5::scrypt::Params::new(SCRYPT_LOG_N, 8, 1, 32).map_err(|e| failed(&e))?;
    let params = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
        .map_err(|e| failed(&e))?;
    let doc = info
        .encrypt_with_params(params, passphrase.as_bytes())
        .map_err(|e| failed(&e))?;
    let pem = doc
        .to_pem(ENCRYPTED_LABEL, LineEnding::LF)
        .map_err(|e| failed(&e))?;
    Ok(pem)
}

/// Encrypts a plain PEM key file in place (used by `pki demo --protect`).
pub fn protect_key_file(path: &Path, passphrase: &str) -> Result<(), PkiError> {
    let der = match read_private_key(path)? {
        PrivateKeyDer::Pkcs8(der) => Zeroizing::new(der.secret_pkcs8_der().to_vec()),
        _ => {
            return Err(PkiError::Pem {
                path: path.display().to_string(),
                reason: "only PKCS#8 keys can be protected".into(),
            });
        }
    };
    let pem = encrypt_pkcs8(&der, passphrase)?;
    super::pem::write_secret(path, pem.as_bytes())
}

/// What `key import-p12` produced.
#[derive(Debug)]
pub struct Imported {
    /// The subject of the certificate that belongs to the key.
    pub subject: String,
    /// Certificates written to the chain file (leaf first).
    pub chain_len: usize,
}

/// Imports the key and certificates of a PKCS#12 file: finds the one private key,
/// the certificate that belongs to it and the chain above it (self-signed roots are left
/// out: the trust anchor is the profile's `ca`), checks that the key can sign, and only
/// then writes the chain to `cert_out` (0644) and the key, encrypted with `passphrase`, to
/// `key_out` (0600). Nothing is written when anything is wrong.
pub fn import_p12(
    p12: &Path,
    password: &str,
    cert_out: &Path,
    key_out: &Path,
    passphrase: &str,
    force: bool,
) -> Result<Imported, PkiError> {
    let name = p12.display().to_string();
    if !force {
        for out in [cert_out, key_out] {
            if out.exists() {
                return Err(KeyError::Exists {
                    path: out.display().to_string(),
                }
                .into());
            }
        }
    }
    let bytes = read_limited(p12, P12_BYTES_MAX)?;
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&bytes, password).map_err(|e| {
        use p12_keystore::error::Error as E;
        match e {
            // A MAC that does not check, or bags whose padding is wrong after decryption,
            // both mean a wrong password.
            E::MacError(_) | E::UnpadError => KeyError::P12WrongPassword { path: name.clone() },
            other => KeyError::P12Malformed {
                path: name.clone(),
                reason: other.to_string(),
            },
        }
    })?;
    let key = match archive.keys.as_slice() {
        [] => return Err(KeyError::P12NoKey { path: name }.into()),
        [one] => one,
        more => {
            return Err(KeyError::P12SeveralKeys {
                path: name,
                count: more.len(),
            }
            .into());
        }
    };
    let key_der = Zeroizing::new(key.key.as_der().to_vec());
    let certs: Vec<Vec<u8>> = archive
        .certs
        .iter()
        .map(|c| c.cert.as_der().to_vec())
        .collect();
    // The leaf is the certificate the key signs for: load each candidate with the key, which
    // checks the pairing the same way every later use of the key does.
    let leaf = certs
        .iter()
        .find(|der| {
            SigningKey::from_der(
                vec![(*der).clone()],
                &KeyDer::Pkcs8(key_der.clone()),
                Path::new("-"),
                Path::new("-"),
            )
            .is_ok()
        })
        .ok_or_else(|| KeyError::P12KeyMismatch { path: name.clone() })?;
    let chain = order_chain(leaf, &certs);
    let subject = X509Certificate::from_der(leaf)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_default();
    let mut pem = String::new();
    for der in &chain {
        pem.push_str(&pem_encode("CERTIFICATE", der));
    }
    let key_pem = encrypt_pkcs8(&key_der, passphrase)?;
    super::pem::write_public(cert_out, pem.as_bytes())?;
    super::pem::write_secret(key_out, key_pem.as_bytes())?;
    Ok(Imported {
        subject,
        chain_len: chain.len(),
    })
}

/// The leaf followed by its issuers found among `certs`, without self-signed ones.
fn order_chain(leaf: &[u8], certs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let parse = |der: &[u8]| {
        X509Certificate::from_der(der)
            .ok()
            .map(|(_, c)| (c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
    };
    let mut chain = vec![leaf.to_vec()];
    let Some((_, mut issuer)) = parse(leaf) else {
        return chain;
    };
    while chain.len() < super::signing::CHAIN_CERTS_MAX {
        let next = certs.iter().find(|der| {
            parse(der).is_some_and(|(subject, own_issuer)| {
                subject == issuer && subject != own_issuer && !chain.contains(der)
            })
        });
        match next.and_then(|der| parse(der).map(|(_, i)| (der, i))) {
            Some((der, next_issuer)) => {
                chain.push(der.clone());
                issuer = next_issuer;
            }
            None => break,
        }
    }
    chain
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly by design")]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::pki::demo::{Ca, LeafKind, LeafSpec};

    #[test]
    fn an_encrypted_key_opens_with_its_passphrase_only_and_the_passphrase_is_asked_once() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new_root("root").unwrap();
        let issued = ca
            .issue(&LeafSpec::new(LeafKind::DocumentSigning, "signer").uri("urn:congvan:org:hn"))
            .unwrap();
        issued.write(dir.path(), "sign").unwrap();
        issued.write(dir.path(), "person").unwrap();
        for stem in ["sign", "person"] {
            protect_key_file(&dir.path().join(format!("{stem}.key")), "đúng").unwrap();
        }
        let secret = dir.path().join("passphrase");
        std::fs::write(&secret, "đúng\n").unwrap();
        // Readable by others: refused before it is read.
        std::fs::set_permissions(&secret, PermissionsExt::from_mode(0o644)).unwrap();
        let Err(err) = Unlocker::new(None, SecretSource::File(secret.clone())).signing_key(
            &dir.path().join("sign.crt"),
            &KeySource::File(dir.path().join("sign.key")),
        ) else {
            panic!("a passphrase file others can read was used");
        };
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&secret, PermissionsExt::from_mode(0o600)).unwrap();
        let unlocker = Unlocker::new(None, SecretSource::File(secret.clone()));
        let started = std::time::Instant::now();
        let key = unlocker
            .signing_key(
                &dir.path().join("sign.crt"),
                &KeySource::File(dir.path().join("sign.key")),
            )
            .unwrap();
        eprintln!("scrypt N=2^{SCRYPT_LOG_N} unlock: {:?}", started.elapsed());
        assert!(key.sign(b"manifest").is_ok());
        // The passphrase was read once: the second key opens with the file gone.
        std::fs::remove_file(&secret).unwrap();
        unlocker
            .signing_key(
                &dir.path().join("person.crt"),
                &KeySource::File(dir.path().join("person.key")),
            )
            .unwrap();
        // A wrong passphrase is refused by name, and a refusal is not remembered.
        std::fs::write(&secret, "sai\n").unwrap();
        std::fs::set_permissions(&secret, PermissionsExt::from_mode(0o600)).unwrap();
        let wrong = Unlocker::new(None, SecretSource::File(secret));
        let Err(err) = wrong.signing_key(
            &dir.path().join("sign.crt"),
            &KeySource::File(dir.path().join("sign.key")),
        ) else {
            panic!("a wrong passphrase opened the key");
        };
        assert!(
            err.to_string().contains("the passphrase does not unlock"),
            "{err}"
        );
        assert!(!format!("{wrong:?}").contains("sai"));
    }
}
