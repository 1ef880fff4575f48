//! Signing keys held on a PKCS#11 token (a USB key from the CA, a smart card, an HSM).
//!
//! This is the only module that knows `cryptoki`. It opens the module a profile names,
//! finds the token by its label, logs in once with the user PIN and finds private keys by
//! label or id; the keys never leave the token, which only ever sees SHA-256 digests to
//! sign. Failures a clerk can meet (a wrong PIN, a locked PIN, a token not plugged in, a
//! key deleted or never made) each get their own error with a sentence saying what to do.
//!
//! Only ECDSA P-256 keys are used from tokens: `CKM_ECDSA` over a digest computed here,
//! which every token that does P-256 supports, and whose raw `r‖s` answer is encoded in
//! DER as X.509 and congvan's `ecdsa-p256-sha256` expect.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

/// Which key on the token: by `CKA_LABEL` or by `CKA_ID` (hex in profiles).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// The key's label.
    Label(String),
    /// The key's id.
    Id(Vec<u8>),
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::Label(label) => write!(f, "label {label:?}"),
            KeyRef::Id(id) => {
                write!(f, "id ")?;
                for b in id {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a token could not be used. The messages say what the clerk can do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The PKCS#11 module (a shared library) could not be loaded or initialised.
    #[error("cannot load the PKCS#11 module {module}: {reason}")]
    Module {
        /// The module's path.
        module: String,
        /// Why.
        reason: String,
    },
    /// No token with the label is present.
    #[error(
        "no token labelled {label:?} is present (tokens found: {found}); plug in the token \
         or check `token.label` in the profile"
    )]
    NotPresent {
        /// The label asked for.
        label: String,
        /// The labels found, for the message.
        found: String,
    },
    /// The token refused the PIN.
    #[error(
        "the token {label:?} refused the PIN; check it and try again (tokens lock after a few \
         wrong PINs)"
    )]
    PinIncorrect {
        /// The token's label.
        label: String,
    },
    /// The user PIN is locked (too many wrong PINs).
    #[error(
        "the PIN of token {label:?} is locked after too many wrong PINs; the token's security \
         officer must unlock it (nothing was tried)"
    )]
    PinLocked {
        /// The token's label.
        label: String,
    },
    /// The token has no private key with that label or id.
    #[error(
        "the token {label:?} holds no private key with {key}; it may have been deleted, or \
         the profile names the wrong key"
    )]
    KeyNotFound {
        /// The token's label.
        label: String,
        /// The key asked for.
        key: String,
    },
    /// More than one private key matches.
    #[error("the token {label:?} holds several private keys with {key}; name the key by id")]
    KeyAmbiguous {
        /// The token's label.
        label: String,
        /// The key asked for.
        key: String,
    },
    /// The key on the token does not belong to the certificate named with it.
    #[error("the key with {key} on token {label:?} does not belong to the certificate {cert}")]
    KeyMismatch {
        /// The token's label.
        label: String,
        /// The key.
        key: String,
        /// The certificate file.
        cert: String,
    },
    /// Any other PKCS#11 failure.
    #[error("the token {label:?} failed: {reason}")]
    Failed {
        /// The token's label.
        label: String,
        /// What failed.
        reason: String,
    },
}

/// A logged-in session with one token, shared by every key used from it in one command,
/// so that the PIN is entered once.
pub struct TokenSession {
    label: String,
    // The session is used from one thread at a time (cryptoki's `Session` is `Send` but not
    // `Sync`); signing is short, so a mutex costs nothing that matters.
    session: Mutex<Session>,
    // Kept so that the module stays initialised for as long as the session lives.
    _context: Pkcs11,
}

impl std::fmt::Debug for TokenSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSession")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl TokenSession {
    /// Loads `module`, finds the token labelled `label` and opens a session without logging
    /// in yet: [`TokenSession::login`] does that once the PIN is known, so that a missing
    /// token or a locked PIN is reported before anyone is asked for a PIN.
    pub fn open(module: &Path, label: &str) -> Result<TokenSession, TokenError> {
        let module_error = |reason: String| TokenError::Module {
            module: module.display().to_string(),
            reason,
        };
        if !module.exists() {
            return Err(module_error(
                "no such file (install the token's driver, or fix `token.module`)".into(),
            ));
        }
        let context = Pkcs11::new(module).map_err(|e| module_error(e.to_string()))?;
        // A module is initialised once per process; a second profile (or a second
        // command in the desk) using the same module finds it initialised, which is fine:
        // cryptoki never finalises a module when a context is dropped.
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(module_error(e.to_string())),
        }
        let failed = |e: CkError| TokenError::Failed {
            label: label.to_owned(),
            reason: e.to_string(),
        };
        let mut found = Vec::new();
        let mut chosen = None;
        for slot in context.get_slots_with_token().map_err(failed)? {
            let Ok(info) = context.get_token_info(slot) else {
                continue;
            };
            // Token labels are blank-padded to 32 bytes by PKCS#11.
            let name = info.label().trim_end().to_owned();
            if name == label && chosen.is_none() {
                chosen = Some((slot, info));
            }
            found.push(format!("{name:?}"));
        }
        let Some((slot, info)) = chosen else {
            return Err(TokenError::NotPresent {
                label: label.to_owned(),
                found: if found.is_empty() {
                    "none".into()
                } else {
                    found.join(", ")
                },
            });
        };
        if info.user_pin_locked() {
            return Err(TokenError::PinLocked {
                label: label.to_owned(),
            });
        }
        let session = context.open_ro_session(slot).map_err(failed)?;
        Ok(TokenSession {
            label: label.to_owned(),
            session: Mutex::new(session),
            _context: context,
        })
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Logs in as the user. A wrong PIN is reported and never retried here: each try
    /// counts towards the token's lock-out.
    pub fn login(&self, pin: &str) -> Result<(), TokenError> {
        let session = self.lock()?;
        let pin = AuthPin::from(pin.to_owned());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) => Ok(()),
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                Err(TokenError::PinIncorrect {
                    label: self.label.clone(),
                })
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(TokenError::PinLocked {
                label: self.label.clone(),
            }),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Finds the private key `key` and, when the token has it, its public point (the
    /// uncompressed SEC1 point of the public key object with the same id).
    pub fn find_key(self: &Arc<Self>, key: &KeyRef) -> Result<TokenKey, TokenError> {
        let session = self.lock()?;
        let by = match key {
            KeyRef::Label(label) => Attribute::Label(label.as_bytes().to_vec()),
            KeyRef::Id(id) => Attribute::Id(id.clone()),
        };
        let private = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), by.clone()])
            .map_err(|e| self.failed(e))?;
        let handle = match private.as_slice() {
            [] => {
                return Err(TokenError::KeyNotFound {
                    label: self.label.clone(),
                    key: key.to_string(),
                });
            }
            [one] => *one,
            _ => {
                return Err(TokenError::KeyAmbiguous {
                    label: self.label.clone(),
                    key: key.to_string(),
                });
            }
        };
        // The public key object carries the point; find it by the private key's id.
        let id = session
            .get_attributes(handle, &[AttributeType::Id])
            .map_err(|e| self.failed(e))?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Id(id) => Some(id),
                _ => None,
            });
        let mut public_point = None;
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            let public = session
                .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id)])
                .map_err(|e| self.failed(e))?;
            if let [one] = public.as_slice() {
                public_point = session
                    .get_attributes(*one, &[AttributeType::EcPoint])
                    .map_err(|e| self.failed(e))?
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::EcPoint(p) => Some(unwrap_octet_string(p)),
                        _ => None,
                    });
            }
        }
        drop(session);
        Ok(TokenKey {
            session: Arc::clone(self),
            handle,
            key: key.clone(),
            public_point,
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Session>, TokenError> {
        self.session.lock().map_err(|_| TokenError::Failed {
            label: self.label.clone(),
            reason: "the token session was poisoned by an earlier failure".into(),
        })
    }

    fn failed(&self, e: CkError) -> TokenError {
        TokenError::Failed {
            label: self.label.clone(),
            reason: e.to_string(),
        }
    }
}

/// `CKA_EC_POINT` is a DER OCTET STRING holding the point (some modules return the bare
/// point): returns the bare point either way.
fn unwrap_octet_string(value: Vec<u8>) -> Vec<u8> {
    match value.as_slice() {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest.to_vec(),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
        _ => value,
    }
}

/// A private key on a token, usable while its session is open.
pub struct TokenKey {
    session: Arc<TokenSession>,
    handle: ObjectHandle,
    key: KeyRef,
    public_point: Option<Vec<u8>>,
}

impl TokenKey {
    /// The public point the token reports for this key, if it keeps a public key object.
    pub fn public_point(&self) -> Option<&[u8]> {
        self.public_point.as_deref()
    }

    /// Which key this is, for messages.
    pub fn describe(&self) -> String {
        format!("{} on token {:?}", self.key, self.session.label)
    }

    /// The error for a key that does not belong to `cert`.
    pub fn mismatch(&self, cert: &Path) -> TokenError {
        TokenError::KeyMismatch {
            label: self.session.label.clone(),
            key: self.key.to_string(),
            cert: cert.display().to_string(),
        }
    }

    /// Signs `message` with ECDSA P-256 and SHA-256: the digest is computed here, the token
    /// signs it (`CKM_ECDSA`), and its `r‖s` answer is returned DER-encoded.
    pub fn sign_p256_sha256(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        let session = self.session.lock()?;
        let raw = session
            .sign(&Mechanism::Ecdsa, self.handle, digest.as_ref())
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _) => {
                    TokenError::KeyNotFound {
                        label: self.session.label.clone(),
                        key: self.key.to_string(),
                    }
                }
                CkError::Pkcs11(RvError::UserNotLoggedIn, _) => TokenError::Failed {
                    label: self.session.label.clone(),
                    reason: "the token logged out (was it unplugged?)".into(),
                },
                other => self.session.failed(other),
            })?;
        ecdsa_raw_to_der(&raw).ok_or_else(|| TokenError::Failed {
            label: self.session.label.clone(),
            reason: format!(
                "the token answered a {}-byte signature, not P-256's 64",
                raw.len()
            ),
        })
    }
}

/// DER `ECDSA-Sig-Value` (SEQUENCE of two INTEGERs) from P-256's raw `r‖s` (64 bytes).
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    let (r, s) = raw.split_at(32);
    let integer = |bytes: &[u8]| {
        // Minimal encoding: strip leading zeros, then add one back if the top bit is set.
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let trimmed = &bytes[first..];
        let mut out = vec![0x02];
        if trimmed[0] & 0x80 != 0 {
            out.push(u8::try_from(trimmed.len() + 1).unwrap_or(0));
            out.push(0);
        } else {
            out.push(u8::try_from(trimmed.len()).unwrap_or(0));
        }
        out.extend_from_slice(trimmed);
        out
    };
    let (r, s) = (integer(r), integer(s));
    let mut der = vec![0x30, u8::try_from(r.len() + s.len()).ok()?];
    der.extend(r);
    der.extend(s);
    Some(der)
}

/// The token settings of a profile: the module, the token and where its PIN comes from.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub label: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly by design")]
mod tests {
    use super::*;

    #[test]
    fn raw_signatures_become_minimal_der() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[33] = 0x01; // s has one leading zero byte to strip
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 33 + 2 + 31 + 2, 0x02, 33, 0x00]);
        assert_eq!(der[5], 0x80);
        assert_eq!(&der[37..40], &[0x02, 31, 0x01]);
        assert!(ecdsa_raw_to_der(&raw[..63]).is_none());
        let zero = ecdsa_raw_to_der(&[0u8; 64]).unwrap();
        assert_eq!(zero, vec![0x30, 6, 0x02, 1, 0, 0x02, 1, 0]);
    }
}
