//! End-to-end encryption of classified payloads, behind one small interface.
//!
//! [`Cipher`] is everything the rest of congvan needs from a cipher: `seal` (sign and
//! encrypt for a set of recipients), `open` (decrypt and verify the sender), and
//! `recipients_of` (list who a ciphertext is for, without decrypting). Keys cross the
//! interface as opaque bytes, so a deployment can plug in the Government Cipher
//! Committee's certified module instead of [`OpenPgp`] without touching routing, storage
//! or the log. This module is the only one that knows sequoia.

mod pipe;
pub mod policy;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, Packet, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::{Dearmor, PacketParserBuilder, PacketParserResult, Parse};
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};
use openpgp::types::{AEADAlgorithm, SymmetricAlgorithm};

use pipe::{PIPE_BUFFER_BYTES, PIPE_BUFFERS, Pipe};

/// Errors of the sealing layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A key or certificate cannot be used.
    #[error("key: {0}")]
    Key(String),
    /// The ciphertext is not a sealed message of the accepted shape (never decrypted).
    #[error("{0}")]
    NotSealed(String),
    /// Decryption failed (not for us, or damaged).
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    /// The sender's signature inside is missing or wrong.
    #[error("the sender's signature inside the encryption does not verify: {0}")]
    Signature(String),
    /// The plaintext is larger than allowed (a compression bomb, or a lie).
    #[error("the plaintext exceeds {0} bytes")]
    TooLarge(u64),
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(String),
    /// The OpenPGP library refused an operation.
    #[error("OpenPGP: {0}")]
    OpenPgp(String),
}

impl From<anyhow::Error> for SealError {
    fn from(e: anyhow::Error) -> Self {
        SealError::OpenPgp(format!("{e:#}"))
    }
}

/// What `recipients_of` learns from a ciphertext's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Recipient key ids (upper-case hex key ids or fingerprints), one per PKESK.
    pub recipients: Vec<String>,
    /// 1 or 2: the integrity-protected container's version.
    pub container_version: u8,
}

/// The cipher modules built into this binary, by the name `[seal] cipher` uses. A
/// certified module (for example the Government Cipher Committee's, behind a feature) is
/// added here; nothing else in congvan names a cipher implementation.
pub fn builtin(name: &str) -> Option<Arc<dyn Cipher>> {
    match name {
        policy::OPENPGP_CIPHER => Some(Arc::new(OpenPgp::default())),
        _ => None,
    }
}

/// The interface a cipher module provides.
pub trait Cipher: Send + Sync {
    /// The module's name, as `[seal] cipher` and the directory's declaration give it.
    fn name(&self) -> &str;

    /// Signs `plaintext` with `signer_secret` and encrypts it for exactly `recipients`
    /// (encoded public certificates), writing the ciphertext to `out`.
    fn seal(
        &self,
        plaintext: &mut dyn Read,
        out: &mut (dyn Write + Send + Sync),
        recipients: &[Vec<u8>],
        signer_secret: &[u8],
    ) -> Result<(), SealError>;

    /// Decrypts with `recipient_secret`, requires a valid signature by `sender_cert`,
    /// writes the plaintext to `out` and returns its length. On error, whatever was
    /// written to `out` must be discarded.
    fn open(
        &self,
        ciphertext: &mut (dyn Read + Send + Sync),
        out: &mut dyn Write,
        recipient_secret: &[u8],
        sender_cert: &[u8],
        plaintext_bytes_max: u64,
    ) -> Result<u64, SealError>;

    /// Reads only the headers of `ciphertext`: who it is encrypted for. Refuses anything
    /// that is not a message of the accepted shape. Never decrypts, never decompresses.
    fn recipients_of(
        &self,
        ciphertext: &mut (dyn Read + Send + Sync),
    ) -> Result<Envelope, SealError>;

    /// The ids under which a ciphertext names the holder of `cert` as a recipient.
    fn recipient_ids(&self, cert: &[u8]) -> Result<Vec<String>, SealError>;

    /// Checks that `cert` is a usable encryption certificate and returns its fingerprint.
    fn check_cert(&self, cert: &[u8]) -> Result<String, SealError>;
}

/// The OpenPGP implementation (sequoia): RFC 9580 messages, SEIPDv2 where every
/// recipient's certificate advertises it, else SEIPDv1 (for example, certificates made
/// by GnuPG 2.2).
pub struct OpenPgp {
    policy: StandardPolicy<'static>,
    /// [`Cipher::recipient_ids`] answers by certificate digest, with the time computed:
    /// parsing a certificate costs far more than the check that uses its ids, and a
    /// document to a thousand recipients would parse a thousand.
    recipient_ids_memo: std::sync::Mutex<RecipientIdsMemo>,
}

/// Certificate digest → (used until, recipient key ids).
type RecipientIdsMemo = HashMap<[u8; 32], (std::time::SystemTime, Vec<String>)>;

/// Longest a remembered answer of `recipient_ids` is used. It is never used past the
/// expiry of the certificate or of any key in the answer (revocations change the
/// certificate's bytes, hence its digest); the bound only matters for a subkey whose
/// creation time was still in the future.
const RECIPIENT_IDS_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Certificates remembered at most; the memory is cleared when it is full.
const RECIPIENT_IDS_MEMO_MAX: usize = 16_384;

impl Default for OpenPgp {
    fn default() -> Self {
        OpenPgp {
            policy: StandardPolicy::new(),
            recipient_ids_memo: std::sync::Mutex::new(HashMap::new()),
        }
    }
}

fn parse_cert(bytes: &[u8]) -> Result<Cert, SealError> {
    Cert::from_bytes(bytes).map_err(|e| SealError::Key(format!("{e:#}")))
}

/// Largest single non-container packet accepted while inspecting (PKESKs are small).
const HEADER_PACKET_BYTES_MAX: u32 = 64 * 1024;
/// Most recipients (PKESK packets) a sealed message may name.
const PKESKS_MAX: usize = 2000;
/// Plaintext held back by the decryptor before it is written out (see [`Cipher::open`]).
const OPEN_BUFFER_BYTES: usize = 256 * 1024;
/// The AEAD ciphersuite used for SEIPDv2 when every recipient's certificate names it
/// among its preferred AEAD ciphersuites: GCM runs pipelined on AES-NI and CLMUL, several
/// times faster than OCB in the pure-Rust backend, which handles one block at a time.
const FAST_SUITE: (SymmetricAlgorithm, AEADAlgorithm) =
    (SymmetricAlgorithm::AES256, AEADAlgorithm::GCM);

/// The AEAD ciphersuites congvan-made certificates advertise, most preferred first. OCB
/// stays listed: RFC 9580 makes it the one every SEIPDv2 implementation must have.
const ADVERTISED_SUITES: [(SymmetricAlgorithm, AEADAlgorithm); 4] = [
    (SymmetricAlgorithm::AES256, AEADAlgorithm::GCM),
    (SymmetricAlgorithm::AES256, AEADAlgorithm::OCB),
    (SymmetricAlgorithm::AES128, AEADAlgorithm::GCM),
    (SymmetricAlgorithm::AES128, AEADAlgorithm::OCB),
];

impl OpenPgp {
    fn encryption_keys<'a>(
        &'a self,
        cert: &'a Cert,
    ) -> Result<Vec<ValidErasedKeyAmalgamation<'a, openpgp::packet::key::PublicParts>>, SealError>
    {
        let keys: Vec<_> = cert
            .keys()
            .with_policy(&self.policy, None)
            .supported()
            .alive()
            .revoked(false)
            .for_transport_encryption()
            .collect();
        if keys.is_empty() {
            return Err(SealError::Key(format!(
                "certificate {} has no valid encryption subkey",
                cert.fingerprint()
            )));
        }
        Ok(keys)
    }

    /// The SEIPDv2 ciphersuite for a message to `certs`, or `None` for SEIPDv1. GCM only
    /// when every certificate advertises SEIPDv2 and names AES-256 with GCM among its
    /// AEAD ciphersuites; otherwise sequoia decides as before: SEIPDv2 with OCB (the
    /// algorithm every SEIPDv2 implementation has) when all advertise SEIPDv2, SEIPDv1
    /// when any does not (GnuPG 2.2's certificates).
    fn container_for(&self, certs: &[Cert]) -> Option<(SymmetricAlgorithm, AEADAlgorithm)> {
        use openpgp::cert::Preferences;
        let all_gcm = !certs.is_empty()
            && certs.iter().all(|cert| {
                cert.with_policy(&self.policy, None).is_ok_and(|valid| {
                    valid.features().is_some_and(|f| f.supports_seipdv2())
                        && valid
                            .preferred_aead_ciphersuites()
                            .is_some_and(|suites| suites.contains(&FAST_SUITE))
                })
            });
        all_gcm.then_some(FAST_SUITE)
    }
}

impl Cipher for OpenPgp {
    fn name(&self) -> &str {
        policy::OPENPGP_CIPHER
    }

    fn seal(
        &self,
        plaintext: &mut dyn Read,
        out: &mut (dyn Write + Send + Sync),
        recipients: &[Vec<u8>],
        signer_secret: &[u8],
    ) -> Result<(), SealError> {
        let certs = recipients
            .iter()
            .map(|c| parse_cert(c))
            .collect::<Result<Vec<_>, _>>()?;
        // Every recipient must have a usable encryption key before anything is written.
        for cert in &certs {
            self.encryption_keys(cert)?;
        }
        let suite = self.container_for(&certs);
        let signer = parse_cert(signer_secret)?;
        let signing_key = signer
            .keys()
            .unencrypted_secret()
            .with_policy(&self.policy, None)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .ok_or_else(|| SealError::Key("the sender's key has no usable signing subkey".into()))?
            .key()
            .clone()
            .into_keypair()?;

        // Two threads: this one reads the plaintext, frames it as literal data and hashes
        // it for the signature; the other encrypts and writes. The bytes that cross are
        // exactly what a single writer stack (encryptor below signer) would pass down, so
        // the message is the same; only the work is split over two cores.
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Option<Vec<u8>>>(PIPE_BUFFERS);
        let end_tx = full_tx.clone();
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(PIPE_BUFFERS + 1);
        std::thread::scope(|scope| {
            let certs = &certs;
            // The encrypting thread answers whether it finished the message (`true`), or
            // stopped because the signing side did (`false`, which then says why).
            let encrypting = scope.spawn(move || -> Result<bool, SealError> {
                let mut recipient_keys = Vec::new();
                for cert in certs {
                    recipient_keys.extend(self.encryption_keys(cert)?);
                }
                let message = Message::new(out);
                let mut encryptor = Encryptor::for_recipients(message, recipient_keys);
                if let Some((symmetric, aead)) = suite {
                    encryptor = encryptor.symmetric_algo(symmetric).aead_algo(aead);
                }
                let mut message = encryptor.build()?;
                // Only the explicit end (`None`) finalizes the message: if the signing
                // side stops early, its sender is dropped without it, and no complete
                // container is ever written around a partial plaintext.
                loop {
                    match full_rx.recv() {
                        Ok(Some(buf)) => {
                            message
                                .write_all(&buf)
                                .map_err(|e| SealError::Io(e.to_string()))?;
                            // A full return channel means the signing side has stopped.
                            let _ = empty_tx.try_send(buf);
                        }
                        Ok(None) => break,
                        Err(_) => return Ok(false),
                    }
                }
                message.finalize()?;
                Ok(true)
            });
            let signed = (|| -> Result<(), SealError> {
                let pipe = Pipe {
                    buf: Vec::with_capacity(PIPE_BUFFER_BYTES),
                    full: full_tx,
                    empty: std::sync::Mutex::new(empty_rx),
                };
                let message = Message::new(pipe);
                // SHA-256 for the signature's hash: SHA-NI makes it several times faster
                // than SHA-512 here, and every OpenPGP implementation must verify it
                // (RFC 9580 §9.5).
                let message = Signer::new(message, signing_key)?
                    .hash_algo(openpgp::types::HashAlgorithm::SHA256)?
                    .build()?;
                let mut message = LiteralWriter::new(message).build()?;
                let mut buf = vec![0u8; PIPE_BUFFER_BYTES];
                loop {
                    let n = match plaintext.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(SealError::Io(e.to_string())),
                    };
                    message
                        .write_all(&buf[..n])
                        .map_err(|e| SealError::Io(e.to_string()))?;
                }
                // Finalizing writes the signature and drops the pipe, which hands over
                // its last buffer; only then is the end announced.
                message.finalize()?;
                end_tx
                    .send(None)
                    .map_err(|_| SealError::Io("the encrypting thread stopped".into()))?;
                Ok(())
            })();
            drop(end_tx);
            // An error of the encrypting thread (say, the output failed) explains a
            // broken pipe here, so it is reported first.
            match encrypting.join() {
                Ok(Ok(true)) => signed,
                Ok(Ok(false)) => signed.and(Err(SealError::Io(
                    "the plaintext ended before the signature".into(),
                ))),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(SealError::Io("the encrypting thread failed".into())),
            }
        })
    }

    fn open(
        &self,
        ciphertext: &mut (dyn Read + Send + Sync),
        out: &mut dyn Write,
        recipient_secret: &[u8],
        sender_cert: &[u8],
        plaintext_bytes_max: u64,
    ) -> Result<u64, SealError> {
        let secret = parse_cert(recipient_secret)?;
        let sender = parse_cert(sender_cert)?;
        // Two threads: another one decrypts and checks the signature, this one writes the
        // plaintext out (to a file, through a digest: as much work again for a large
        // document). Buffers of plaintext cross in order and are handed back for reuse.
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(PIPE_BUFFERS);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(PIPE_BUFFERS + 1);
        std::thread::scope(|scope| {
            let (secret, sender) = (&secret, &sender);
            let decrypting = scope.spawn(move || -> Result<(), SealError> {
                let helper = OpenHelper {
                    policy: &self.policy,
                    secret,
                    sender,
                    signed_by_sender: false,
                    decrypted: false,
                };
                // Sequoia holds back up to `buffer_size` bytes of plaintext until the
                // signature at the end is checked (25 MiB by default, and its reader
                // layers each grew to that size: a 48 MiB document peaked near 200 MiB).
                // The contract of `open` is that the caller discards what was written
                // when it fails, so the plaintext can flow through in small pieces and
                // memory stays flat whatever the size.
                let mut decryptor = DecryptorBuilder::from_reader(ciphertext)
                    .map_err(|e| SealError::Decrypt(format!("{e:#}")))?
                    .buffer_size(OPEN_BUFFER_BYTES)
                    .with_policy(&self.policy, None, helper)
                    .map_err(classify_open_error)?;
                let mut total: u64 = 0;
                loop {
                    let mut buf = empty_rx
                        .try_recv()
                        .unwrap_or_else(|_| vec![0u8; PIPE_BUFFER_BYTES]);
                    let n = decryptor
                        .read(&mut buf)
                        .map_err(|e| classify_open_error(anyhow::Error::from(e)))?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                    if total > plaintext_bytes_max {
                        return Err(SealError::TooLarge(plaintext_bytes_max));
                    }
                    if full_tx.send((buf, n)).is_err() {
                        // The writing side stopped, and says why.
                        return Ok(());
                    }
                }
                let helper = decryptor.into_helper();
                if !helper.signed_by_sender {
                    return Err(SealError::Signature("no signature by the sender".into()));
                }
                Ok(())
            });
            let mut total: u64 = 0;
            let mut written = Ok(());
            for (buf, n) in full_rx.iter() {
                if let Err(e) = out.write_all(&buf[..n]) {
                    written = Err(SealError::Io(e.to_string()));
                    break;
                }
                total += n as u64;
                // A full return channel only means a buffer is allocated anew.
                let _ = empty_tx.try_send(buf);
            }
            // Letting go of the channel unblocks the decrypting thread if writing failed.
            drop(full_rx);
            let decrypted = decrypting
                .join()
                .unwrap_or_else(|_| Err(SealError::Io("the decrypting thread failed".into())));
            decrypted.and(written).map(|()| total)
        })
    }

    fn recipients_of(
        &self,
        ciphertext: &mut (dyn Read + Send + Sync),
    ) -> Result<Envelope, SealError> {
        let not_sealed = |why: String| SealError::NotSealed(why);
        let mut ppr = PacketParserBuilder::from_reader(ciphertext)
            .map_err(|e| not_sealed(format!("not an OpenPGP message: {e:#}")))?
            .dearmor(Dearmor::Disabled)
            .max_packet_size(HEADER_PACKET_BYTES_MAX)
            .max_recursion_depth(0)
            .build()
            .map_err(|e| not_sealed(format!("not an OpenPGP message: {e:#}")))?;
        let mut recipients = Vec::new();
        let mut container_version = None;
        while let PacketParserResult::Some(pp) = ppr {
            if container_version.is_some() {
                return Err(not_sealed(
                    "data follows the encrypted container; only recipient packets and one \
                     container are allowed"
                        .into(),
                ));
            }
            match &pp.packet {
                Packet::PKESK(pkesk) => {
                    let id = match pkesk.recipient() {
                        Some(handle) => handle.to_hex(),
                        None => {
                            return Err(not_sealed(
                                "an anonymous (wildcard) recipient cannot be checked".into(),
                            ));
                        }
                    };
                    recipients.push(id);
                    if recipients.len() > PKESKS_MAX {
                        return Err(not_sealed(format!("more than {PKESKS_MAX} recipients")));
                    }
                }
                Packet::SEIP(seip) => {
                    if recipients.is_empty() {
                        return Err(not_sealed(
                            "the encrypted container is not encrypted to any recipient key".into(),
                        ));
                    }
                    container_version = Some(seip.version());
                }
                Packet::Literal(_) => {
                    return Err(not_sealed("cleartext literal data is exposed".into()));
                }
                Packet::CompressedData(_) => {
                    return Err(not_sealed(
                        "compressed data outside the encryption (never decompressed here)".into(),
                    ));
                }
                Packet::SKESK(_) => {
                    return Err(not_sealed(
                        "a password-encrypted session key would let others decrypt".into(),
                    ));
                }
                other => {
                    return Err(not_sealed(format!(
                        "unexpected {} packet; a sealed message is recipient packets followed by \
                         one integrity-protected container",
                        other.tag()
                    )));
                }
            }
            // `next` skips the packet's body without processing it: the container's
            // ciphertext is read past, never decrypted.
            ppr = match pp.next() {
                Ok((_, next)) => next,
                Err(e) => return Err(not_sealed(format!("malformed OpenPGP framing: {e:#}"))),
            };
        }
        let container_version = container_version
            .ok_or_else(|| not_sealed("no integrity-protected encrypted container".into()))?;
        Ok(Envelope {
            recipients,
            container_version,
        })
    }

    fn recipient_ids(&self, cert: &[u8]) -> Result<Vec<String>, SealError> {
        let mut key = [0u8; 32];
        key.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, cert).as_ref());
        let now = std::time::SystemTime::now();
        if let Ok(memo) = self.recipient_ids_memo.lock() {
            if let Some((until, ids)) = memo.get(&key) {
                if now < *until {
                    return Ok(ids.clone());
                }
            }
        }
        let cert = parse_cert(cert)?;
        let mut ids = Vec::new();
        let mut until = now + RECIPIENT_IDS_TTL;
        if let Some(t) = cert
            .with_policy(&self.policy, None)
            .ok()
            .and_then(|c| c.primary_key().key_expiration_time())
        {
            until = until.min(t);
        }
        for ka in self.encryption_keys(&cert)? {
            ids.push(ka.key().keyid().to_hex());
            ids.push(ka.key().fingerprint().to_hex());
            if let Some(t) = ka.key_expiration_time() {
                until = until.min(t);
            }
        }
        if let Ok(mut memo) = self.recipient_ids_memo.lock() {
            if memo.len() >= RECIPIENT_IDS_MEMO_MAX {
                memo.clear();
            }
            memo.insert(key, (until, ids.clone()));
        }
        Ok(ids)
    }

    fn check_cert(&self, cert: &[u8]) -> Result<String, SealError> {
        let parsed = parse_cert(cert)?;
        if parsed.is_tsk() {
            return Err(SealError::Key(
                "this is a secret key; register the public certificate only".into(),
            ));
        }
        self.encryption_keys(&parsed)?;
        Ok(parsed.fingerprint().to_hex())
    }
}

fn classify_open_error(e: anyhow::Error) -> SealError {
    let text = format!("{e:#}");
    if text.contains("signature") || text.contains("Signature") {
        SealError::Signature(text)
    } else {
        SealError::Decrypt(text)
    }
}

struct OpenHelper<'a> {
    policy: &'a StandardPolicy<'static>,
    secret: &'a Cert,
    sender: &'a Cert,
    signed_by_sender: bool,
    decrypted: bool,
}

impl VerificationHelper for OpenHelper<'_> {
    fn get_certs(&mut self, _ids: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(vec![self.sender.clone()])
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::Encryption { .. } | MessageLayer::Compression { .. } => {}
                MessageLayer::SignatureGroup { results } => {
                    for result in results {
                        match result {
                            Ok(good)
                                if good.ka.cert().fingerprint() == self.sender.fingerprint() =>
                            {
                                self.signed_by_sender = true;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                return Err(anyhow::anyhow!("bad signature: {e}"));
                            }
                        }
                    }
                }
            }
        }
        if !self.decrypted {
            return Err(anyhow::anyhow!("the message was not encrypted"));
        }
        if !self.signed_by_sender {
            return Err(anyhow::anyhow!("no valid signature by the sender"));
        }
        Ok(())
    }
}

impl DecryptionHelper for OpenHelper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        let keys: Vec<_> = self
            .secret
            .keys()
            .unencrypted_secret()
            .with_policy(self.policy, None)
            .supported()
            .for_transport_encryption()
            .collect();
        for pkesk in pkesks {
            for ka in &keys {
                let matches = match pkesk.recipient() {
                    Some(handle) => {
                        handle.aliases(openpgp::KeyHandle::from(ka.key().fingerprint()))
                    }
                    None => false,
                };
                if !matches {
                    continue;
                }
                let mut pair = ka.key().clone().into_keypair()?;
                if let Some((algo, session_key)) = pkesk.decrypt(&mut pair, sym_algo) {
                    if decrypt(algo, &session_key) {
                        self.decrypted = true;
                        return Ok(None);
                    }
                }
            }
        }
        Err(anyhow::anyhow!(
            "the message is not encrypted to this organisation's key"
        ))
    }
}

/// A freshly generated OpenPGP key, ASCII-armoured.
pub struct GeneratedKey {
    /// The transferable secret key (keep 0600).
    pub secret_armored: Vec<u8>,
    /// The public certificate.
    pub cert_armored: Vec<u8>,
    /// The primary key's fingerprint, upper-case hex.
    pub fingerprint: String,
}

/// Makes an organisation's OpenPGP key: a certification-only primary key with a signing
/// subkey and an encryption subkey (Curve25519), valid for three years.
pub fn generate_key(user_id: &str) -> Result<GeneratedKey, SealError> {
    // The user id's binding signature carries the usual preferences (the builder adds
    // them) and the AEAD ciphersuites, which the builder leaves out: with them, messages
    // to this key use AES-GCM (see `FAST_SUITE`).
    let binding = openpgp::packet::signature::SignatureBuilder::new(
        openpgp::types::SignatureType::PositiveCertification,
    )
    .set_preferred_aead_ciphersuites(ADVERTISED_SUITES.to_vec())?;
    let (cert, _revocation) = CertBuilder::general_purpose(None::<&str>)
        .add_userid_with(user_id, binding)?
        .generate()?;
    Ok(GeneratedKey {
        secret_armored: cert.as_tsk().armored().to_vec()?,
        cert_armored: cert.armored().to_vec()?,
        fingerprint: cert.fingerprint().to_hex(),
    })
}

#[cfg(test)]
mod tests;
