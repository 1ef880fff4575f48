//! The client: an HTTPS client over mutual TLS, configured from a profile, and the
//! commands the CLI offers on top of it.

pub mod audit;
pub mod bundle;
pub mod edxml;
pub mod endpoints;
pub mod fetch;
pub mod keys;
pub mod send;
pub mod state;
pub mod table;
pub mod transfer;
pub mod upload;

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::api::ErrorBody;
use crate::config::{ClientProfile, ConfigError};
use crate::pki::PkiError;
use crate::pki::pem::read_certs;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The profile could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Key or certificate files could not be read.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// TLS could not be configured.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The connection failed (including a refused handshake).
    #[error("cannot reach {url}: {cause}")]
    Transport {
        /// The URL.
        url: String,
        /// The cause chain.
        cause: String,
    },
    /// The server refused the request.
    #[error("server refused ({status} {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// The server's sentence.
        message: String,
    },
    /// The server's answer was not what the API promises.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// Something the server signed does not verify, or changed unexpectedly.
    #[error("refusing to trust the server's answer: {0}")]
    Trust(String),
    /// The user's input (files, options) cannot be used.
    #[error("{0}")]
    Input(String),
    /// A file of the user's (or the client's state) could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A temporary file or directory could not be made or written.
    #[error("{0}")]
    TempFile(#[source] std::io::Error),
    /// Work handed to a blocking thread ended abnormally (it panicked or was cancelled).
    #[error("{0}")]
    Background(#[source] tokio::task::JoinError),
    /// Something the client built could not be encoded as JSON.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    /// A manifest the client built breaks a rule of its own.
    #[error("{0}")]
    Manifest(#[source] crate::document::ManifestError),
    /// The user stopped the command (Ctrl-C or SIGTERM); what was left is said.
    #[error("{0}")]
    Interrupted(String),
    /// A classified payload could not be sealed.
    #[error("sealing: {0}")]
    Sealing(#[source] crate::seal::SealError),
    /// An OpenPGP certificate given to be endorsed cannot be used.
    #[error("the certificate cannot be used: {0}")]
    UnusableCertificate(#[source] crate::seal::SealError),
    /// A recipient's registered encryption key cannot be used.
    #[error("the encryption key of {org} is unusable: {source}")]
    UnusableKey {
        /// The recipient.
        org: crate::directory::OrgId,
        /// The cause.
        #[source]
        source: crate::seal::SealError,
    },
    /// This organisation's own key endorsement cannot be made (it is not signed, unlike
    /// [`ClientError::Endorsement`], which refuses someone else's).
    #[error("{0}")]
    EndorsementNotMade(#[source] crate::directory::endorsement::EndorsementError),
    /// The server names a cipher module this build does not carry.
    #[error(
        "the cipher module {0:?} (named by the server for classified documents) is not in \
         this congvan client: install the congvan build that includes it"
    )]
    CipherMissing(String),
    /// A recipient of a classified document has no registered encryption key.
    #[error("{0} has no registered encryption key; it cannot receive classified documents")]
    NoEncryptionKey(crate::directory::OrgId),
    /// A recipient is not in the server's directory.
    #[error("{0} is not in the directory")]
    NotInDirectory(crate::directory::OrgId),
    /// An exported range is not inside the log.
    #[error(
        "the range [{start}, {end}) is not inside the log of {size} entries; give --start \
         below --end, and --end at most {size}"
    )]
    RangeOutsideLog {
        /// First index asked for.
        start: u64,
        /// One past the last index asked for.
        end: u64,
        /// Entries in the log.
        size: u64,
    },
    /// The server's declared cipher may not carry this classification level (checked
    /// before anything is sealed).
    #[error("{0}")]
    NotPermitted(#[from] crate::seal::policy::SealRefusal),
    /// An organisation's encryption key is not endorsed by the organisation itself (or
    /// the endorsement fails), so nothing may be sealed to it.
    #[error("refusing the encryption key of {org} [{}]: {error}", .error.code())]
    Endorsement {
        /// The organisation whose key was refused.
        org: crate::directory::OrgId,
        /// Why.
        error: crate::directory::endorsement::EndorsementError,
    },
    /// An edXML file was refused (or a document cannot be written as one). The cause is
    /// in the message, not in `source()`, so that it is printed once.
    #[error("refusing the edXML file [{code}]: {0}", code = .0.code())]
    Edxml(crate::edxml::EdxmlError),
    /// The server's log is not consistent with what this client saw before.
    #[error("LOG INCONSISTENCY: {0}")]
    LogInconsistent(String),
}

impl From<crate::edxml::EdxmlError> for ClientError {
    fn from(e: crate::edxml::EdxmlError) -> Self {
        ClientError::Edxml(e)
    }
}

impl ClientError {
    /// True for the errors the user's own input or files caused (what the desk shows as
    /// a problem with the form, not with the server).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            ClientError::Input(_)
                | ClientError::File { .. }
                | ClientError::TempFile(_)
                | ClientError::Background(_)
                | ClientError::Encode(_)
                | ClientError::Manifest(_)
                | ClientError::Sealing(_)
                | ClientError::UnusableCertificate(_)
                | ClientError::UnusableKey { .. }
                | ClientError::EndorsementNotMade(_)
                | ClientError::CipherMissing(_)
                | ClientError::NoEncryptionKey(_)
                | ClientError::NotInDirectory(_)
                | ClientError::RangeOutsideLog { .. }
        )
    }

    /// The stable code of an API refusal or of a refused key endorsement, if this is one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Endorsement { error, .. } => Some(error.code()),
            ClientError::Edxml(error) => Some(error.code()),
            _ => None,
        }
    }
}

/// An HTTPS client speaking as the profile's identity.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    profile: ClientProfile,
    /// Cipher modules beyond those built in (see [`Client::with_cipher`]).
    ciphers: Vec<Arc<dyn crate::seal::Cipher>>,
    /// The profile's signing keys, unlocked on first use and kept for the life of this
    /// client (and its clones): a token's PIN or a key's passphrase is asked once per
    /// command, and once per session in the desk, which holds one client.
    signer: Arc<std::sync::Mutex<Option<Arc<send::OrgSigner>>>>,
}

impl Client {
    /// Builds a client from a profile: TLS 1.3 only, the profile's trust anchor, the
    /// profile's client certificate.
    pub fn from_profile(profile: &ClientProfile) -> Result<Client, ClientError> {
        Self::new(profile, &profile.server)
    }

    /// Like [`Client::from_profile`], but talking to `base_url` instead.
    pub fn new(profile: &ClientProfile, base_url: &str) -> Result<Client, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(&profile.ca)? {
            roots
                .add(cert)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", profile.ca.display())))?;
        }
        let chain = read_certs(&profile.tls_cert)?;
        let builder = rustls::ClientConfig::builder_with_provider(crate::pki::tls_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(Arc::new(roots));
        let mut tls = match &profile.tls_key_token {
            // A key on the token signs the handshake there, through the same session (and
            // PIN entry) as the document-signing keys.
            Some(key) => {
                let key = profile.keys.signing_key(
                    &profile.tls_cert,
                    &crate::pki::keystore::KeySource::Token(key.clone()),
                )?;
                let certified =
                    rustls::sign::CertifiedKey::new(chain, Arc::new(TlsKey(Arc::new(key))));
                builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                    certified,
                )))
            }
            None => builder
                .with_client_auth_cert(chain, profile.keys.tls_key(&profile.tls_key)?)
                .map_err(|e| ClientError::Tls(e.to_string()))?,
        };
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .connect_timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| ClientError::Tls(error_chain(&e)))?;
        Ok(Client {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            profile: profile.clone(),
            ciphers: Vec::new(),
            signer: Arc::default(),
        })
    }

    /// Adds a cipher module that the server's declaration may name (a certified module
    /// linked in by another program, or a stand-in in tests); built-in modules need none.
    pub fn with_cipher(mut self, cipher: Arc<dyn crate::seal::Cipher>) -> Client {
        self.ciphers.push(cipher);
        self
    }

    /// The profile's signing keys (organisation seal and competent person), unlocked the
    /// first time they are needed and then kept.
    pub fn org_signer(&self) -> Result<Arc<send::OrgSigner>, ClientError> {
        let mut slot = self
            .signer
            .lock()
            .map_err(|_| ClientError::Input("the signing keys' lock is poisoned".into()))?;
        if let Some(signer) = slot.as_ref() {
            return Ok(signer.clone());
        }
        let signer = Arc::new(send::OrgSigner::load(self.profile())?);
        *slot = Some(signer.clone());
        Ok(signer)
    }

    /// The cipher module called `name`: one added with [`Client::with_cipher`], else a
    /// built-in one. A name this client does not carry is an error that says what to do.
    pub fn cipher(&self, name: &str) -> Result<Arc<dyn crate::seal::Cipher>, ClientError> {
        self.ciphers
            .iter()
            .find(|c| c.name() == name)
            .cloned()
            .or_else(|| crate::seal::builtin(name))
            .ok_or_else(|| ClientError::CipherMissing(name.to_owned()))
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client (mutual TLS, keep-alive), for requests outside the API.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The profile this client speaks for.
    pub fn profile(&self) -> &ClientProfile {
        &self.profile
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        request
            .send()
            .await
            .map_err(|e| transport_error(url, &error_chain(&e)))
    }

    /// `GET path`, decoding a JSON answer or the API error.
    ///
    /// The raw request helpers (this one, [`Client::get_text`], [`Client::post_json`],
    /// [`Client::put_stream`], [`Client::get_stream`]) are for the typed methods in
    /// [`endpoints`] and for tests that replay malformed or hostile requests; library code
    /// outside `client/` calls the typed methods. They stay public (hidden from the
    /// documentation) because the integration tests and, until the lead switches it, the
    /// binary call them.
    #[doc(hidden)]
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.http.get(&url), &url).await?;
        decode(response).await.map(|(_, v)| v)
    }

    /// `GET path` for a text answer (a raw helper: see [`Client::get_json`]).
    #[doc(hidden)]
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.http.get(&url), &url).await?;
        let status = response.status().as_u16();
        let bytes = read_body(response).await?;
        if (200..300).contains(&status) {
            String::from_utf8(bytes).map_err(|e| ClientError::Protocol(e.to_string()))
        } else {
            Err(api_error(status, &bytes))
        }
    }

    /// `POST path` with a JSON body; returns the status and the decoded answer (see
    /// [`Client::get_json`] on who calls the raw helpers).
    #[doc(hidden)]
    pub async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(u16, T), ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.http.post(&url).json(body), &url).await?;
        decode(response).await
    }

    /// `PUT path` with a streamed body of `length` bytes; returns the status and answer (a
    /// raw helper: see [`Client::get_json`]).
    #[doc(hidden)]
    pub async fn put_stream<T: DeserializeOwned>(
        &self,
        path: &str,
        body: reqwest::Body,
        length: u64,
    ) -> Result<(u16, T), ClientError> {
        let url = format!("{}{path}", self.base);
        let request = self
            .http
            .put(&url)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        let response = self.send(request, &url).await?;
        decode(response).await
    }

    /// `GET path` for a streamed body; returns the response once the status is a success
    /// (a raw helper: see [`Client::get_json`]).
    #[doc(hidden)]
    pub async fn get_stream(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.http.get(&url), &url).await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let bytes = read_body(response).await?;
        Err(api_error(status, &bytes))
    }
}

/// Largest JSON answer the client reads, in bytes.
const ANSWER_BYTES_MAX: usize = 16 << 20;

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ClientError::Protocol(error_chain(&e)))?
    {
        if bytes.len() + chunk.len() > ANSWER_BYTES_MAX {
            return Err(ClientError::Protocol(format!(
                "answer larger than {ANSWER_BYTES_MAX} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn api_error(status: u16, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => ClientError::Api {
            status,
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => ClientError::Protocol(format!(
            "status {status} with a body that is not an API error"
        )),
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<(u16, T), ClientError> {
    let status = response.status().as_u16();
    let bytes = read_body(response).await?;
    if (200..300).contains(&status) {
        serde_json::from_slice(&bytes)
            .map(|v| (status, v))
            .map_err(|e| ClientError::Protocol(e.to_string()))
    } else {
        Err(api_error(status, &bytes))
    }
}

impl ClientError {
    /// The command line's exit code for this error (the table in the README).
    pub fn exit_code(&self) -> u8 {
        use audit::exit;
        match self {
            ClientError::Transport { .. } => exit::UNREACHABLE,
            ClientError::Api { .. } | ClientError::NotPermitted(_) => exit::REFUSED,
            ClientError::Trust(_)
            | ClientError::LogInconsistent(_)
            | ClientError::Endorsement { .. } => exit::NOT_VERIFIED,
            _ => exit::FAILED,
        }
    }
}

/// A failed connection, with what the user can do about it: the TLS alert or certificate
/// problem in plain words, an `http://` URL, a server that is not listening.
pub fn transport_error(url: &str, chain: &str) -> ClientError {
    let hint = transport_hint(url, chain);
    ClientError::Transport {
        url: url.to_owned(),
        cause: if hint.is_empty() {
            chain.to_owned()
        } else {
            format!("{hint} ({chain})")
        },
    }
}

/// The plain-words explanation of a connection failure, or "" when there is none.
fn transport_hint(url: &str, chain: &str) -> String {
    let known: &[(&str, &str)] = &[
        (
            "CertificateRevoked",
            "the server refused this profile's TLS certificate: it has been revoked. Ask the \
             CA (the district's security officer) for a new certificate and profile",
        ),
        (
            "CertificateExpired",
            "the server refused this profile's TLS certificate: it has expired (or the \
             server's CRL has). Ask the CA for a renewed certificate and profile",
        ),
        (
            "UnknownCA",
            "the server does not trust this profile's TLS certificate: it was not issued \
             by a CA the server knows. Check that the profile belongs to this server",
        ),
        (
            "BadCertificate",
            "the server refused this profile's TLS certificate as unusable (wrong key \
             usage, or not a client certificate). Use the profile's tls.crt from the CA",
        ),
        (
            "CertificateRequired",
            "the server requires a client certificate and none was sent: check tls_cert \
             and tls_key in the profile",
        ),
        (
            "invalid peer certificate: UnknownIssuer",
            "the server's certificate is not issued by the CA in the profile's `ca`: this \
             is not the server the profile was made for, or the `ca` file is wrong",
        ),
        (
            "invalid peer certificate: Expired",
            "the server's certificate has expired: tell the server's operator",
        ),
        (
            "NotValidForName",
            "the server's certificate is not made out for this host name: use the name in \
             the profile's `server` exactly",
        ),
        (
            "Connection refused",
            "nothing is listening there: check that the congvan server is running and that \
             the profile's `server` (or --server) names its address and port",
        ),
        (
            "dns error",
            "the host name cannot be resolved: check the profile's `server` (or --server)",
        ),
    ];
    if url.starts_with("http://") || chain.contains("URL scheme is not allowed") {
        return "congvan speaks only HTTPS with mutual TLS: write the server as https://… in \
                the profile's `server` or in --server"
            .to_owned();
    }
    known
        .iter()
        .find(|(needle, _)| chain.contains(needle))
        .map(|(_, hint)| (*hint).to_owned())
        .unwrap_or_default()
}

/// An error and its causes, each once, joined with ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// A document-signing style key (here: one on a token) as rustls' client authentication
/// key. Only ECDSA P-256 with SHA-256 is offered, which is what tokens are used for.
#[derive(Debug)]
struct TlsKey(Arc<crate::pki::signing::SigningKey>);

impl rustls::sign::SigningKey for TlsKey {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        let scheme = rustls::SignatureScheme::ECDSA_NISTP256_SHA256;
        (self.0.algorithm() == crate::pki::signing::RawAlgorithm::EcdsaP256Sha256
            && offered.contains(&scheme))
        .then(|| Box::new(TlsKey(Arc::clone(&self.0))) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

impl rustls::sign::Signer for TlsKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0
            .sign(message)
            .map_err(|e| rustls::Error::General(e.to_string()))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        rustls::SignatureScheme::ECDSA_NISTP256_SHA256
    }
}
