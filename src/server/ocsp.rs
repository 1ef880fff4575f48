//! Fetching OCSP responses for document signers, and keeping them until their
//! nextUpdate.
//!
//! Only the network lives here: which certificate to ask about, the request bytes and the
//! judgement of a response are `pki::ocsp` and `pki::signing`. Every exchange is bounded:
//! one deadline for connecting, sending and reading ([`OcspConfig::timeout_ms`]), at most
//! [`RESPONSE_BYTES_MAX`] bytes read, no redirects, no proxy (a responder is on the
//! office network or the CA's, and a proxy from the environment would be a surprise on a
//! server). A response is cached only after it verified and only until its nextUpdate;
//! the signature check that uses it judges it again, so a cached response is never
//! trusted more than a fresh one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::OcspConfig;
use crate::pki::ocsp::{self, RESPONSE_BYTES_MAX};
use crate::pki::signing::{OcspTarget, SignatureError};

/// Responses cached at most; the cache is cleared when it is full (one entry per signing
/// certificate in use, so a few hundred in a province).
const CACHE_ENTRIES_MAX: usize = 4096;

/// The server's OCSP client and its cache.
pub struct OcspClient {
    config: OcspConfig,
    http: Option<reqwest::Client>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

struct Cached {
    der: Vec<u8>,
    /// nextUpdate, seconds since the epoch.
    until: i64,
}

impl OcspClient {
    /// A client for `config`. If the HTTP client cannot be built, every fetch fails
    /// (closed) with the reason.
    pub fn new(config: &OcspConfig) -> OcspClient {
        let http = rustls::ClientConfig::builder_with_provider(super::tls::provider())
            .with_safe_default_protocol_versions()
            .ok()
            .map(|b| {
                // No roots: OCSP is fetched over plain HTTP (the response is signed), and
                // an https:// responder is refused before a connection is made.
                b.with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            })
            .and_then(|tls| {
                reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .timeout(Duration::from_millis(config.timeout_ms))
                    .connect_timeout(Duration::from_millis(config.timeout_ms))
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()
                    .ok()
            });
        OcspClient {
            config: config.clone(),
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the server asks responders at all (`[ocsp] enabled`).
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Whether responders are asked even about certificates a CRL covers
    /// (`[ocsp] prefer`).
    pub fn preferred(&self) -> bool {
        self.config.prefer
    }

    /// A response about `target`'s certificate that verified and is current at `now`
    /// (seconds since the epoch): from the cache, or fetched.
    pub async fn response(&self, target: &OcspTarget, now: i64) -> Result<Vec<u8>, SignatureError> {
        let key = cache_key(target);
        if let Ok(cache) = self.cache.lock() {
            if let Some(c) = cache.get(&key).filter(|c| now < c.until) {
                return Ok(c.der.clone());
            }
        }
        let der = self.fetch(target).await?;
        let checked = ocsp::check_response(&der, &target.leaf, &target.issuer)?;
        checked.current_at(now)?;
        if let Some(until) = checked.next_update {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= CACHE_ENTRIES_MAX {
                    cache.clear();
                }
                cache.insert(
                    key,
                    Cached {
                        der: der.clone(),
                        until,
                    },
                );
            }
        }
        Ok(der)
    }

    /// One POST to the responder (RFC 6960 appendix A.1), bounded in time and size.
    async fn fetch(&self, target: &OcspTarget) -> Result<Vec<u8>, SignatureError> {
        let unavailable =
            |why: String| SignatureError::OcspUnavailable(format!("{}: {why}", target.url));
        if !target.url.starts_with("http://") {
            return Err(unavailable("only http:// responders are supported".into()));
        }
        let http = self
            .http
            .as_ref()
            .ok_or_else(|| unavailable("the HTTP client could not be built".into()))?;
        let request = ocsp::request_der(&target.leaf, &target.issuer)?;
        let deadline = Duration::from_millis(self.config.timeout_ms);
        let exchange = async {
            let mut response = http
                .post(&target.url)
                .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
                .header(reqwest::header::ACCEPT, "application/ocsp-response")
                .body(request)
                .send()
                .await
                .map_err(|e| unavailable(crate::client::error_chain(&e)))?;
            if !response.status().is_success() {
                return Err(unavailable(format!("HTTP status {}", response.status())));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| unavailable(crate::client::error_chain(&e)))?
            {
                if body.len() + chunk.len() > RESPONSE_BYTES_MAX {
                    return Err(SignatureError::OcspInvalid(format!(
                        "{}: the response is larger than {RESPONSE_BYTES_MAX} bytes",
                        target.url
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        match tokio::time::timeout(deadline, exchange).await {
            Ok(result) => result,
            Err(_) => Err(unavailable(format!(
                "no answer within {} ms",
                self.config.timeout_ms
            ))),
        }
    }
}

/// SHA-256 over the certificate and its issuer, each length-prefixed.
fn cache_key(target: &OcspTarget) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for der in [&target.leaf, &target.issuer] {
        ctx.update(&(der.len() as u64).to_be_bytes());
        ctx.update(der);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

impl crate::exchange::OcspFetch for OcspClient {
    fn enabled(&self) -> bool {
        OcspClient::enabled(self)
    }

    fn preferred(&self) -> bool {
        OcspClient::preferred(self)
    }

    fn response<'a>(
        &'a self,
        target: &'a OcspTarget,
        now: i64,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<u8>, SignatureError>> + Send + 'a>,
    > {
        Box::pin(OcspClient::response(self, target, now))
    }
}
