//! The server: TLS accept loop, per-connection identity, routes, errors, limits.
//!
//! This module is the only one that knows axum and hyper. The caller binds the listening
//! socket and passes it to [`Server::run`] with a shutdown future, so tests bind port 0.
//!
//! Shutdown: when the future completes the accept loop stops, every connection is told
//! to finish its in-flight requests and close, the loop waits for them (at most
//! `limits.shutdown_grace_ms`), then the store is flushed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::config::{Limits, ServerConfig};
use crate::directory::Directory;
use crate::document::ManifestRules;
use crate::ledger::memory::CheckpointMemory;
use crate::notary::ServerKeys;
use crate::pki::CertInfo;
use crate::seal::Cipher;
use crate::seal::policy::SealPolicy;
use crate::store::{Store, StoreError};
use connection::Connection;
use registry::Registry;

mod admin;
pub mod auth;
mod connection;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod ocsp;
pub mod registry;
pub mod routes;
mod start;
pub mod tls;

pub use admin::SOCKET_NAME as BACKUP_SOCKET_NAME;
pub use auth::{Caller, PeerCert, PeerChain};
pub use error::ApiError;
pub use start::{StartError, serve_until_signalled};
pub use tls::TrustReloader;

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The store could not be opened or flushed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Making the DEMO PKI failed.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// The server's signing keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] crate::notary::NotaryError),
    /// The stored log contradicts the server's own latest checkpoint.
    #[error(
        "the delivery log is damaged: {0}; refusing to start (see `congvan audit verify-store`)"
    )]
    LogDamaged(String),
    /// The log does not extend the latest checkpoint this server signed (remembered
    /// outside the data directory): the data directory is older than what was published.
    #[error(
        "this server signed a checkpoint that the log in {data} does not extend: {reason}. \
         The data directory was restored from an older backup or replaced, and auditors \
         holding that checkpoint will see the rollback. Refusing to start; to continue from \
         this log anyway, start with --acknowledge-rollback (the abandoned checkpoint {memory} \
         is then kept beside it)"
    )]
    Rollback {
        /// The data directory.
        data: String,
        /// The memory file.
        memory: String,
        /// How the log contradicts it.
        reason: String,
    },
    /// The memory of the latest signed checkpoint could not be read or written.
    #[error(transparent)]
    Memory(#[from] crate::ledger::memory::MemoryError),
}

/// The state shared by all handlers: cheap handles only.
#[derive(Clone)]
pub struct AppState {
    /// The organisation tree in force (reloaded when its files change).
    pub registry: Arc<Registry>,
    /// The cipher that checks classified payloads.
    pub cipher: Arc<dyn Cipher>,
    /// The declared cipher and the classification levels it may carry.
    pub seal: Arc<SealPolicy>,
    /// Durable state.
    pub store: Store,
    /// When the server started.
    pub started: Instant,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Trust material (TLS and document signing), reloaded when its files change.
    pub trust: Arc<TrustReloader>,
    /// The server's signing keys.
    pub keys: Arc<ServerKeys>,
    /// Rules for manifests.
    pub rules: Arc<ManifestRules>,
    /// How outgoing numbers restart (the outgoing register's period).
    pub numbering: Arc<crate::registers::Numbering>,
    /// The delivery log's origin line.
    pub log_origin: Arc<str>,
    /// Limits.
    pub limits: Arc<Limits>,
    /// Request rate per identity.
    pub rate: Arc<limits::RateLimiter>,
    /// Concurrent uploads per identity.
    pub uploads: Arc<limits::UploadSlots>,
    /// Refusals logged per identity (the rest are answered but not logged).
    pub refusals: Arc<limits::RateLimiter>,
    /// The latest checkpoint signed, remembered outside the data directory.
    pub checkpoint_memory: Arc<CheckpointMemory>,
    /// OCSP responses for document signers, fetched and cached.
    pub ocsp: Arc<ocsp::OcspClient>,
}

impl AppState {
    /// The organisation directory in force.
    pub fn directory(&self) -> Arc<Directory> {
        self.registry.current()
    }

    /// The exchange's view of this state for one request: the directory and trust
    /// material in force now, the store, keys and configuration.
    pub fn exchange(&self) -> crate::exchange::Exchange {
        crate::exchange::Exchange {
            directory: self.directory(),
            store: self.store.clone(),
            cipher: self.cipher.clone(),
            seal: self.seal.clone(),
            keys: self.keys.clone(),
            signing: self.trust.current().map(|t| t.signing),
            numbering: self.numbering.clone(),
            ocsp: self.ocsp.clone(),
            disk_reserve_bytes: self.limits.disk_reserve_bytes,
            body_idle_timeout: self.limits.body_idle_timeout(),
        }
    }
}

/// A configured server, ready to run on a listener.
pub struct Server {
    state: AppState,
    tls: Arc<TrustReloader>,
    limits: Limits,
    checkpoint_interval: std::time::Duration,
}

impl Server {
    /// Loads the organisation tree and TLS material and opens the store. When the
    /// configuration asks for a DEMO PKI and the server certificate is missing, makes one.
    pub fn build(config: &ServerConfig) -> Result<Server, ServerError> {
        let cipher = crate::seal::builtin(&config.seal.cipher).ok_or_else(|| {
            ServerError::Config(crate::config::ConfigError::Invalid {
                path: "[seal]".into(),
                message: format!(
                    "cipher {:?} is not built into this binary (built in: {:?})",
                    config.seal.cipher,
                    crate::seal::policy::OPENPGP_CIPHER
                ),
            })
        })?;
        Self::build_with_cipher(config, cipher)
    }

    /// [`Server::build`] with a cipher module supplied by the caller, which must carry the
    /// name `[seal] cipher` declares (a certified module linked in by another binary, or a
    /// stand-in in tests).
    pub fn build_with_cipher(
        config: &ServerConfig,
        cipher: Arc<dyn Cipher>,
    ) -> Result<Server, ServerError> {
        if cipher.name() != config.seal.cipher {
            return Err(ServerError::Config(crate::config::ConfigError::Invalid {
                path: "[seal]".into(),
                message: format!(
                    "cipher {:?} is declared but the module supplied is {:?}",
                    config.seal.cipher,
                    cipher.name()
                ),
            }));
        }
        config.seal.check().map_err(|e| {
            ServerError::Config(crate::config::ConfigError::Invalid {
                path: "[seal]".into(),
                message: e.to_string(),
            })
        })?;
        let numbering = crate::registers::Numbering::new(
            config.documents.numbering,
            &config.documents.term_starts,
        )
        .map_err(|e| {
            ServerError::Config(crate::config::ConfigError::Invalid {
                path: "[documents]".into(),
                message: e.to_string(),
            })
        })?;
        let (directory, orgs_text) = config.load_directory()?;
        if let Some(demo_dir) = &config.demo_pki {
            if !config.tls.cert.exists() {
                tracing::warn!(
                    dir = %demo_dir.display(),
                    "no server certificate found: generating a DEMO PKI. \
                     DEMO certificates and keys are NOT for real documents"
                );
                let opts = crate::pki::demo::DemoOptions {
                    force: false,
                    listen: config.listen,
                };
                crate::pki::demo::generate(demo_dir, &directory, &orgs_text, &opts)?;
                tracing::warn!(
                    dir = %demo_dir.display(),
                    "DEMO PKI ready: client profiles are in orgs/*/client.toml and auditors/*/client.toml"
                );
            }
        }
        let (registry, _) = Registry::load(config, cipher.clone())?;
        let tls = TrustReloader::new(&tls::TrustSources {
            tls: config.tls.clone(),
            signing_anchors: config.signing_anchors.clone(),
            signing_crls: config.signing_crls.clone(),
        })?;
        let store = Store::open(&config.data_dir)?;
        let keys = ServerKeys::load_or_create(&config.data_dir.join("keys"))?;
        check_log(&store, &keys, &config.log.origin)?;
        let checkpoint_memory = Arc::new(CheckpointMemory::new(&config.checkpoint_memory_path()));
        check_rollback(
            &store,
            &keys,
            &config.log.origin,
            &checkpoint_memory,
            config.acknowledge_rollback,
        )?;
        Ok(Server {
            state: AppState {
                registry,
                cipher,
                seal: Arc::new(config.seal.clone()),
                store,
                started: Instant::now(),
                metrics: Arc::default(),
                trust: tls.clone(),
                keys: Arc::new(keys),
                log_origin: Arc::from(config.log.origin.as_str()),
                limits: Arc::new(config.limits.clone()),
                rate: Arc::new(limits::RateLimiter::new(
                    config.limits.requests_per_minute,
                    config.limits.request_burst,
                )),
                uploads: limits::UploadSlots::new(config.limits.uploads_concurrent),
                numbering: Arc::new(numbering),
                refusals: Arc::new(limits::RateLimiter::new(
                    routes::log::REFUSALS_LOGGED_PER_MINUTE,
                    routes::log::REFUSALS_LOGGED_BURST,
                )),
                checkpoint_memory,
                ocsp: Arc::new(ocsp::OcspClient::new(&config.ocsp)),
                rules: Arc::new(ManifestRules {
                    doc_types: config.documents.types.clone(),
                    payload_bytes_max: config.documents.payload_bytes_max,
                }),
            },
            tls,
            limits: config.limits.clone(),
            checkpoint_interval: std::time::Duration::from_secs(
                config.log.checkpoint_interval_s.max(1),
            ),
        })
    }

    /// The trust material reloader.
    pub fn tls(&self) -> Arc<TrustReloader> {
        self.tls.clone()
    }

    /// Re-reads trust material and the directory now (what SIGHUP does).
    pub fn reloader(&self) -> impl Fn() + Send + Sync + Clone + 'static {
        let tls = self.tls.clone();
        let registry = self.state.registry.clone();
        move || {
            let _ = tls.reload();
            let _ = registry.reload();
        }
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves connections from `listener` until `shutdown` completes.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        let Server {
            state,
            tls,
            limits,
            checkpoint_interval,
        } = self;
        let app = app(state.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        // Each connection task holds a clone of `done_tx`; when all are dropped,
        // `done_rx.recv()` returns None and every connection has finished.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let admin = tokio::spawn(admin::serve(state.clone(), stop_rx.clone()));
        let watcher = tokio::spawn(housekeeping(
            state.clone(),
            tls.clone(),
            checkpoint_interval,
            stop_rx.clone(),
        ));
        let limits = Arc::new(limits);
        raise_open_files_limit(&limits);
        let table = limits::ConnectionTable::new(limits.clone());
        match listener.local_addr() {
            Ok(addr) => {
                tracing::info!(%addr, "congvan listening (TLS 1.3, client certificates required)")
            }
            Err(e) => tracing::warn!(error = %e, "congvan listening on an unknown address"),
        }

        tokio::pin!(shutdown);
        // Connections are accepted at once rather than left in the kernel's backlog: the
        // connection table then decides who makes room (see `limits::ConnectionTable`),
        // so a flood of sockets cannot make an honest client wait for a timeout.
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            state
                .metrics
                .connections_accepted
                .fetch_add(1, Ordering::Relaxed);
            let (pending, evicted) = table.admit_pending(peer.ip());
            state.metrics.count_evicted(evicted);
            let conn = Connection {
                metrics: state.metrics.clone(),
                tls: tls.clone(),
                app: app.clone(),
                limits: limits.clone(),
                table: table.clone(),
                stop: stop_rx.clone(),
                _done: done_tx.clone(),
            };
            tokio::spawn(conn.serve(stream, peer, pending));
        }

        tracing::info!("shutting down: finishing in-flight requests");
        drop(listener);
        let _ = stop_tx.send(true);
        drop(done_tx);
        if tokio::time::timeout(limits.shutdown_grace(), done_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over: closing remaining connections");
        }
        let _ = watcher.await;
        let _ = admin.await;
        state.store.commit().await?;
        tracing::info!("store flushed; stopped");
        Ok(())
    }
}

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`). The accept
/// loop takes them at once, but a burst of thousands of connects while the CPUs are busy
/// with handshakes can outrun it; a full queue drops connections, which then cost their
/// client a one-second SYN retransmission.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listening socket for [`Server::run`] with [`LISTEN_BACKLOG`] (the caller binds;
/// tests pass port 0).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// At start-up, in O(log n): the stored log must still contain the tree of the latest
/// checkpoint this server signed. A log that lost entries or had its hashes rewritten
/// stops the server instead of serving a history that contradicts its own signature.
fn check_log(store: &Store, keys: &ServerKeys, origin: &str) -> Result<(), ServerError> {
    let Some((_, note)) = store.latest_checkpoint()? else {
        return Ok(());
    };
    let vkey =
        crate::ledger::verifier_key(origin, &keys.public_key(crate::notary::KeyPurpose::Log)?);
    let checkpoint = crate::ledger::checkpoint::verify(&note, &vkey).map_err(|e| {
        ServerError::LogDamaged(format!("the latest checkpoint does not verify: {e}"))
    })?;
    let log = store.log();
    let size = log
        .size()
        .map_err(|e| ServerError::LogDamaged(e.to_string()))?;
    if checkpoint.size > size {
        return Err(ServerError::LogDamaged(format!(
            "the log has {size} entries but this server signed a checkpoint of {}",
            checkpoint.size
        )));
    }
    let root = log
        .root(checkpoint.size)
        .map_err(|e| ServerError::LogDamaged(e.to_string()))?;
    if root != checkpoint.root {
        return Err(ServerError::LogDamaged(format!(
            "the stored tree of {} entries does not have the root this server signed",
            checkpoint.size
        )));
    }
    tracing::info!(
        entries = size,
        checkpoint = checkpoint.size,
        "delivery log checked against the latest checkpoint"
    );
    Ok(())
}

/// At start-up: the log must extend the latest checkpoint this server remembers signing
/// (kept outside the data directory, see `ledger::memory`). A data directory restored
/// from an older backup stops the server unless the operator acknowledges the rollback;
/// then the abandoned checkpoint is kept beside the memory for the record and the
/// memory restarts from the restored log's latest checkpoint.
fn check_rollback(
    store: &Store,
    keys: &ServerKeys,
    origin: &str,
    memory: &CheckpointMemory,
    acknowledge: bool,
) -> Result<(), ServerError> {
    let Some(note) = memory.load()? else {
        return Ok(());
    };
    let vkey =
        crate::ledger::verifier_key(origin, &keys.public_key(crate::notary::KeyPurpose::Log)?);
    let contradiction = match crate::ledger::checkpoint::verify(&note, &vkey) {
        Err(e) => Some(format!(
            "the remembered checkpoint does not verify with this server's log key ({e})"
        )),
        Ok(remembered) => routes::log::contradiction(store, remembered.size, remembered.root)
            .map_err(|e| ServerError::LogDamaged(e.to_string()))?,
    };
    let Some(reason) = contradiction else {
        return Ok(());
    };
    if !acknowledge {
        return Err(ServerError::Rollback {
            data: store.dir().display().to_string(),
            memory: memory.path().display().to_string(),
            reason,
        });
    }
    let latest = store.latest_checkpoint()?.map(|(_, note)| note);
    let kept = memory.replace_after_rollback(latest.as_deref())?;
    tracing::error!(
        reason = %reason,
        abandoned = %kept.display(),
        "ROLLBACK ACKNOWLEDGED: serving a log that does not extend a checkpoint this server \
         signed; auditors holding that checkpoint will report the log as inconsistent"
    );
    Ok(())
}

/// Background work until shutdown: re-reads changed trust material and directory (and
/// logs a directory change), and issues checkpoints while the log grows.
async fn housekeeping(
    state: AppState,
    tls: Arc<TrustReloader>,
    checkpoint_interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let log_directory = |state: AppState| async move {
        // A reform plan's event first, then the new directory's digest, so that the log
        // reads "reorganised, then the tree changed".
        let plans = state.registry.plans();
        if let Err(e) = state
            .store
            .log_reforms(&plans, &crate::api::now_rfc3339())
            .await
        {
            tracing::error!(error = %e, "could not log a reform plan");
        }
        let digest = state.registry.digest();
        if let Err(e) = state
            .store
            .log_directory(&digest, &crate::api::now_rfc3339())
            .await
        {
            tracing::error!(error = %e, "could not log the directory change");
        }
    };
    log_directory(state.clone()).await;
    let mut files = tokio::time::interval(tls.check_interval());
    files.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpoints = tokio::time::interval(checkpoint_interval);
    checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = files.tick() => {
                let tls = tls.clone();
                let registry = state.registry.clone();
                // File reads and certificate parsing are blocking work.
                let _ = tokio::task::spawn_blocking(move || {
                    tls.reload_if_changed();
                    registry.reload_if_changed();
                })
                .await;
                log_directory(state.clone()).await;
            }
            _ = checkpoints.tick() => {
                if let Err(e) = routes::log::issue_checkpoint(&state).await {
                    tracing::error!(error = %e, "could not issue a checkpoint");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// The application router with its middleware, for one state.
pub fn app(state: AppState) -> Router {
    routes::router()
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .with_state(state)
}

async fn fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().chars().take(200).collect())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Refuses requests over the identity's rate with `429` and `Retry-After`.
async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let who = request
        .extensions()
        .get::<PeerCert>()
        .map(PeerCert::log_label)
        .unwrap_or_else(|| "-".to_owned());
    match state.rate.check(&who) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
            ApiError::RateLimited(wait.as_secs().max(1)).into_response()
        }
    }
}

/// One structured line per request: identity, method, route, status, latency.
async fn access_log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let identity = request
        .extensions()
        .get::<PeerCert>()
        .map(PeerCert::log_label)
        .unwrap_or_else(|| "-".to_owned());
    let response = next.run(request).await;
    state.metrics.count_request(response.status().as_u16());
    tracing::info!(
        target: "congvan::access",
        identity = %identity,
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// Raises the soft limit on open files to the hard limit when the connection caps need
/// more than the soft limit allows (each connection is a file descriptor; the store and
/// blobs need some more), and says so when even the hard limit is too low.
fn raise_open_files_limit(limits: &Limits) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    // Slack for the store, blob files, the listener and the runtime.
    const OTHER_FILES: u64 = 256;
    let needed = (limits.connections_max as u64)
        .saturating_add(limits.handshakes_max as u64)
        .saturating_add(OTHER_FILES);
    let mut current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return;
    }
    let hard = current.maximum.unwrap_or(u64::MAX);
    current.current = Some(hard);
    if let Err(e) = setrlimit(Resource::Nofile, current) {
        tracing::warn!(error = %e, soft, "could not raise the open-files limit");
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if now < needed {
        tracing::warn!(
            limit = now,
            needed,
            "the open-files limit is below what connections_max and handshakes_max need: \\
             raise it (ulimit -n, LimitNOFILE=) or lower the caps"
        );
    } else {
        tracing::info!(limit = now, "raised the open-files limit");
    }
}
