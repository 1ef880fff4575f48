//! Configuration files: the server's `congvan.toml` and a client's `client.toml` profile.
//!
//! Relative paths in a file are resolved against the directory that holds the file, so a
//! PKI directory or a config directory can be moved as a whole. Unknown keys are errors:
//! a misspelt limit must not silently fall back to its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::directory::{Directory, DirectoryError};
use crate::seal::policy::SealPolicy;

pub mod demo;
mod profile;

pub use profile::{ClientProfile, Deadlines};

/// The default server configuration, compiled in: `serve` uses it when neither `--config`
/// nor `config/congvan.toml` exists.
pub const EMBEDDED_SERVER_CONFIG: &str = include_str!("../config/congvan.toml");
/// The sample organisation tree, compiled in for the embedded default configuration.
pub const EMBEDDED_ORGS: &str = include_str!("../config/orgs.toml");
/// The sample reform plan (Chương Mỹ, 2025), compiled in for `congvan demo`.
pub const EMBEDDED_REFORM_2025: &str = include_str!("../config/reform-2025-chuong-my.toml");
/// Where `serve` looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/congvan.toml";

/// Errors reading configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The organisation tree is invalid.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The configuration file names a data directory and `--data` names another.
    #[error(
        "the configuration sets data_dir = {configured} but --data says {given}: give the data directory in one place only (remove data_dir from the configuration, or drop --data)"
    )]
    DataDirConflict {
        /// The configured directory.
        configured: String,
        /// The one given on the command line.
        given: String,
    },
    /// The current directory (the base of the embedded default) could not be read.
    #[error("cannot read the current directory")]
    CurrentDir(#[source] std::io::Error),
}

/// The organisation tree in force, with the reform plans that made it.
#[derive(Debug)]
pub struct DirectoryInForce {
    /// The tree, keys attached.
    pub directory: Directory,
    /// The tree file's text followed by each plan in force, for the directory digest.
    pub text: String,
    /// The plans in force, in order, with their effects.
    pub plans: Vec<crate::directory::reform::PlanState>,
    /// When the next plan waiting in `reforms_dir` takes effect.
    pub next_due: Option<time::OffsetDateTime>,
}

/// Limits of the server; every one has a safe default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Established (handshake complete) connections at most. At the cap, the oldest
    /// connection idle for at least `connection_evictable_idle_ms` is closed to make
    /// room; when none is, the newcomer gets `503 server_busy` and is closed.
    pub connections_max: usize,
    /// Established connections at most per identity (client certificate); more get
    /// `429 too_many_connections` and are closed.
    pub connections_per_identity_max: usize,
    /// A keep-alive connection with no request in flight and no traffic for this long may
    /// be closed when the server needs its slot for someone else.
    pub connection_evictable_idle_ms: u64,
    /// A connection is closed (after its request in flight) when it is this old, so that
    /// nothing stays open on trust decided long ago.
    pub connection_age_max_ms: u64,
    /// Connections still in their TLS handshake at most; at the cap the oldest is cut.
    pub handshakes_max: usize,
    /// Connections still in their TLS handshake at most from one IP address; at the cap
    /// that address's oldest is cut.
    pub handshakes_per_address_max: usize,
    /// Time allowed for a TLS handshake.
    pub handshake_timeout_ms: u64,
    /// Time allowed for a TLS handshake while at least half of `handshakes_max` are in
    /// progress: older ones are cut when a new connection arrives.
    pub handshake_timeout_pressure_ms: u64,
    /// Time allowed for a client to send a request's headers.
    pub header_read_timeout_ms: u64,
    /// On shutdown, time allowed for in-flight requests to finish.
    pub shutdown_grace_ms: u64,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout_ms: u64,
    /// A request body that sends nothing for this long is abandoned (`408`).
    pub body_idle_timeout_ms: u64,
    /// Requests per minute per identity, on average.
    pub requests_per_minute: u32,
    /// Requests per identity allowed in a burst above the average.
    pub request_burst: u32,
    /// Uploads running at once per identity.
    pub uploads_concurrent: usize,
    /// Largest request head (request line and headers), in bytes.
    pub header_bytes_max: usize,
    /// Most request headers.
    pub headers_max: usize,
    /// Free space kept on the data disk: writes that would leave less are refused (`507`)
    /// before they start, so the store never runs into a full disk.
    pub disk_reserve_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_max: 1024,
            connections_per_identity_max: 64,
            connection_evictable_idle_ms: 1_000,
            connection_age_max_ms: 3_600_000,
            handshakes_max: 256,
            handshakes_per_address_max: 64,
            handshake_timeout_ms: 10_000,
            handshake_timeout_pressure_ms: 1_000,
            header_read_timeout_ms: 30_000,
            shutdown_grace_ms: 30_000,
            idle_timeout_ms: 120_000,
            body_idle_timeout_ms: 30_000,
            requests_per_minute: 600,
            request_burst: 120,
            uploads_concurrent: 4,
            header_bytes_max: 64 * 1024,
            headers_max: 100,
            disk_reserve_bytes: 256 << 20,
        }
    }
}

impl Limits {
    /// [`Limits::handshake_timeout_ms`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    /// [`Limits::handshake_timeout_pressure_ms`] as a duration.
    pub fn handshake_timeout_pressure(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_pressure_ms)
    }
    /// [`Limits::connection_age_max_ms`] as a duration.
    pub fn connection_age_max(&self) -> Duration {
        Duration::from_millis(self.connection_age_max_ms)
    }
    /// [`Limits::connection_evictable_idle_ms`] as a duration.
    pub fn connection_evictable_idle(&self) -> Duration {
        Duration::from_millis(self.connection_evictable_idle_ms)
    }
    /// [`Limits::header_read_timeout_ms`] as a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
    /// [`Limits::idle_timeout_ms`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    /// [`Limits::body_idle_timeout_ms`] as a duration.
    pub fn body_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.body_idle_timeout_ms)
    }
    /// [`Limits::shutdown_grace_ms`] as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    orgs: PathBuf,
    /// Reform plans in force, one file each; default: `reforms/` beside the tree.
    reforms_dir: Option<PathBuf>,
    tls: TlsFile,
    demo_pki: Option<DemoPkiFile>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    documents: DocumentsConfig,
    signatures: Option<SignaturesFile>,
    #[serde(default = "default_keys_dir")]
    keys_dir: PathBuf,
    #[serde(default)]
    log: LogConfig,
    /// Absent: the bundled cipher, uncertified, carrying no classified level.
    #[serde(default)]
    seal: SealPolicy,
    #[serde(default)]
    ocsp: OcspConfig,
}

/// OCSP checks of document signers (`[ocsp]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcspConfig {
    /// Ask a signer's OCSP responder (named in its certificate's authorityInfoAccess)
    /// when no loaded CRL covers the certificate. Off: such a signer is refused as
    /// `signature_revocation_unknown`.
    pub enabled: bool,
    /// Ask the responder even when a CRL covers the certificate; both must then say it is
    /// not revoked.
    pub prefer: bool,
    /// How long one exchange with a responder may take, connection included.
    pub timeout_ms: u64,
}

impl Default for OcspConfig {
    fn default() -> Self {
        OcspConfig {
            enabled: true,
            prefer: false,
            timeout_ms: 5_000,
        }
    }
}

/// The delivery log.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The log's name in checkpoints (the C2SP origin line, also the note key name): a
    /// URL-like name unique to this server, e.g. `vpthu.hanoi.example/congvan-log`.
    pub origin: String,
    /// How often a checkpoint is issued when the log has grown.
    pub checkpoint_interval_s: u64,
    /// Where the server remembers the latest checkpoint it signed, outside the data
    /// directory so that restoring an older data directory cannot make it forget (see
    /// `ledger::memory`). Default: `latest-checkpoint.note` beside the data directory.
    pub checkpoint_memory: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            origin: "congvan.invalid/log".into(),
            checkpoint_interval_s: 60,
            checkpoint_memory: None,
        }
    }
}

fn default_keys_dir() -> PathBuf {
    PathBuf::from("keys")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignaturesFile {
    anchors: Vec<PathBuf>,
    #[serde(default)]
    crls: Vec<PathBuf>,
}

/// Rules for documents.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    /// Accepted document types (ký hiệu loại văn bản).
    pub types: Vec<String>,
    /// Largest payload accepted, in bytes.
    pub payload_bytes_max: u64,
    /// How outgoing numbers restart: `party_term` (default: per document type within a
    /// committee's term) or `year` (the state rule).
    pub numbering: crate::registers::NumberingPeriod,
    /// First days of the committees' terms (`YYYY-MM-DD`), for `party_term`.
    pub term_starts: Vec<String>,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        DocumentsConfig {
            types: crate::document::manifest::default_doc_types(),
            payload_bytes_max: 1 << 30,
            numbering: crate::registers::NumberingPeriod::PartyTerm,
            term_starts: vec!["2020-10-01".into(), "2025-10-01".into()],
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

/// Whether two paths name one directory: the same after resolving symbolic links and
/// `..` where they exist, or the same absolute path written out where they do not.
fn same_dir(a: &Path, b: &Path) -> bool {
    let absolute = |p: &Path| match p.canonicalize() {
        Ok(p) => p,
        Err(_) => std::env::current_dir()
            .map(|cwd| cwd.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
            .components()
            .collect(),
    };
    absolute(a) == absolute(b)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Vec<PathBuf>,
    #[serde(default)]
    crls: Vec<PathBuf>,
    #[serde(default = "default_crl_check_ms")]
    crl_check_interval_ms: u64,
    #[serde(default = "default_true")]
    crl_enforce_next_update: bool,
}

fn default_crl_check_ms() -> u64 {
    2_000
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoPkiFile {
    dir: PathBuf,
}

/// TLS material of the server.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server key (PEM).
    pub key: PathBuf,
    /// Trust anchors for client certificates (PEM files).
    pub client_ca: Vec<PathBuf>,
    /// CRL files (PEM), re-read when they change.
    pub crls: Vec<PathBuf>,
    /// How often the CRL files are checked for changes.
    pub crl_check_interval: Duration,
    /// Refuse every client while a CRL is past its nextUpdate (fail closed).
    pub crl_enforce_next_update: bool,
}

/// The server configuration with every path resolved.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where data lives.
    pub data_dir: PathBuf,
    /// Whether the configuration file set `data_dir` (rather than the default `data`
    /// next to it): then `--data` may only repeat it ([`ServerConfig::use_data_dir`]).
    pub data_dir_configured: bool,
    /// The organisation tree file.
    pub orgs: PathBuf,
    /// Reform plans put in force (`congvan reform apply` writes them here), applied to the
    /// tree in name order at their effective times.
    pub reforms_dir: PathBuf,
    /// Where organisations' registered certificates live (`<id>.openpgp.asc`,
    /// `<id>.signing.pem`, with `/` in ids as `.`).
    pub keys_dir: PathBuf,
    /// Use the compiled-in sample tree when `orgs` does not exist (embedded default only).
    pub orgs_fallback_embedded: bool,
    /// TLS material.
    pub tls: TlsConfig,
    /// When set and the server certificate is missing, a DEMO PKI is made here first.
    pub demo_pki: Option<PathBuf>,
    /// Limits.
    pub limits: Limits,
    /// Rules for documents.
    pub documents: DocumentsConfig,
    /// Trust anchors for document-signing certificates.
    pub signing_anchors: Vec<PathBuf>,
    /// CRLs for document-signing certificates.
    pub signing_crls: Vec<PathBuf>,
    /// The delivery log.
    pub log: LogConfig,
    /// The cipher for classified documents and what it is certified for (`[seal]`).
    pub seal: SealPolicy,
    /// Start even though the log does not extend the latest checkpoint this server
    /// signed (after restoring an older backup); set by `serve --acknowledge-rollback`,
    /// never by the file.
    pub acknowledge_rollback: bool,
    /// OCSP checks of document signers (`[ocsp]`).
    pub ocsp: OcspConfig,
}

impl ServerConfig {
    /// Reads a server configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, &path.display().to_string())
    }

    /// The configuration a command was given with `--config`, else
    /// [`DEFAULT_CONFIG_PATH`] (the operator's commands: `reform`, `directory set-key`,
    /// `audit verify-store`).
    pub fn load_given(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH)))
    }

    /// The configuration `congvan serve` runs with: the file given, else
    /// [`DEFAULT_CONFIG_PATH`] if it exists, else the compiled-in default (so that a
    /// first `congvan serve` in a fresh checkout works).
    pub fn load_for_serve(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(path) => Self::load(path),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                Self::load(Path::new(DEFAULT_CONFIG_PATH))
            }
            None => {
                let cwd = std::env::current_dir().map_err(ConfigError::CurrentDir)?;
                tracing::info!(
                    "no config/congvan.toml here: using the embedded default configuration"
                );
                Self::embedded_default(&cwd)
            }
        }
    }

    /// The files a backup carries besides the store: the configuration file at `path`
    /// itself, the organisation tree, TLS and signing trust material and every file in
    /// the keys directory; each once, and only those that exist.
    pub fn backup_files(&self, path: &Path) -> Vec<PathBuf> {
        let mut files = vec![path.to_owned(), self.orgs.clone()];
        files.push(self.tls.cert.clone());
        files.push(self.tls.key.clone());
        files.extend(self.tls.client_ca.iter().cloned());
        files.extend(self.tls.crls.iter().cloned());
        files.extend(self.signing_anchors.iter().cloned());
        files.extend(self.signing_crls.iter().cloned());
        if let Ok(entries) = std::fs::read_dir(&self.keys_dir) {
            let mut keys: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            keys.sort();
            files.extend(keys);
        }
        let mut seen = std::collections::HashSet::new();
        files.retain(|f| f.is_file() && seen.insert(f.clone()));
        files
    }

    /// The compiled-in default, resolved as if it were `config/congvan.toml` under `cwd`.
    pub fn embedded_default(cwd: &Path) -> Result<Self, ConfigError> {
        let mut config = Self::parse(
            EMBEDDED_SERVER_CONFIG,
            &cwd.join("config"),
            "<embedded default config>",
        )?;
        config.orgs_fallback_embedded = true;
        Ok(config)
    }

    /// Parses configuration text whose relative paths are relative to `base`.
    pub fn parse(text: &str, base: &Path, name: &str) -> Result<Self, ConfigError> {
        let file: ServerFile = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: name.to_owned(),
            message: e.to_string(),
        })?;
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        if file.tls.client_ca.is_empty() {
            return Err(ConfigError::Invalid {
                path: name.to_owned(),
                message: "tls.client_ca must name at least one trust anchor".into(),
            });
        }
        let (signing_anchors, signing_crls) = match file.signatures {
            Some(sig) => (
                sig.anchors.into_iter().map(resolve).collect(),
                sig.crls.into_iter().map(resolve).collect(),
            ),
            None => (
                file.tls.client_ca.iter().cloned().map(resolve).collect(),
                file.tls.crls.iter().cloned().map(resolve).collect(),
            ),
        };
        if !signed_note::is_key_name_valid(&file.log.origin) {
            return Err(ConfigError::Invalid {
                path: name.to_owned(),
                message: format!(
                    "log.origin {:?} must be non-empty, without spaces or '+'",
                    file.log.origin
                ),
            });
        }
        file.seal.check().map_err(|e| ConfigError::Invalid {
            path: name.to_owned(),
            message: e.to_string(),
        })?;
        let mut log = file.log;
        log.checkpoint_memory = log.checkpoint_memory.map(resolve);
        Ok(ServerConfig {
            ocsp: file.ocsp,
            log,
            acknowledge_rollback: false,
            seal: file.seal,
            documents: file.documents,
            signing_anchors,
            signing_crls,
            listen: file.listen,
            data_dir_configured: file.data_dir.is_some(),
            data_dir: resolve(file.data_dir.unwrap_or_else(default_data_dir)),
            reforms_dir: match file.reforms_dir {
                Some(dir) => resolve(dir),
                None => resolve(file.orgs.clone())
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("reforms"),
            },
            orgs: resolve(file.orgs),
            keys_dir: resolve(file.keys_dir),
            orgs_fallback_embedded: false,
            tls: TlsConfig {
                cert: resolve(file.tls.cert),
                key: resolve(file.tls.key),
                client_ca: file.tls.client_ca.into_iter().map(resolve).collect(),
                crls: file.tls.crls.into_iter().map(resolve).collect(),
                crl_check_interval: Duration::from_millis(file.tls.crl_check_interval_ms.max(50)),
                crl_enforce_next_update: file.tls.crl_enforce_next_update,
            },
            demo_pki: file.demo_pki.map(|d| resolve(d.dir)),
            limits: file.limits,
        })
    }

    /// The tree in force at `now`: the tree file with every reform plan of `reforms_dir`
    /// whose time has come applied in order. Returns it with the text it came from (tree
    /// and plans), the plans in force with their effects, and when the next plan is due.
    pub fn load_directory_in_force(
        &self,
        now: time::OffsetDateTime,
    ) -> Result<DirectoryInForce, ConfigError> {
        let (base, mut text) = self.load_directory()?;
        let reform_error = |e: crate::directory::reform::ReformError| ConfigError::Invalid {
            path: self.reforms_dir.display().to_string(),
            message: e.to_string(),
        };
        let plans = crate::directory::reform::load_dir(&self.reforms_dir).map_err(reform_error)?;
        let (directory, applied, next_due) =
            crate::directory::reform::apply_all(&base, &plans, now).map_err(reform_error)?;
        for (plan, plan_text) in &plans {
            if applied.iter().any(|a| a.plan.id == plan.id) {
                text.push_str("\n# reform plan in force\n");
                text.push_str(plan_text);
            }
        }
        Ok(DirectoryInForce {
            directory,
            text,
            plans: applied,
            next_due,
        })
    }

    /// Where the latest signed checkpoint is remembered: `[log] checkpoint_memory`, or
    /// `latest-checkpoint.note` in the directory that holds the data directory.
    pub fn checkpoint_memory_path(&self) -> PathBuf {
        match &self.log.checkpoint_memory {
            Some(path) => path.clone(),
            None => self
                .data_dir
                .parent()
                .unwrap_or(Path::new("."))
                .join("latest-checkpoint.note"),
        }
    }

    /// Applies `--data DIR`. A data directory is named in one place: if the configuration
    /// file sets `data_dir` too, the two must name the same directory, because a server
    /// that silently used the other one would start on an empty store (a new log, new
    /// keys) while the real one sat unused.
    pub fn use_data_dir(&mut self, given: PathBuf) -> Result<(), ConfigError> {
        if self.data_dir_configured && !same_dir(&self.data_dir, &given) {
            return Err(ConfigError::DataDirConflict {
                configured: self.data_dir.display().to_string(),
                given: given.display().to_string(),
            });
        }
        self.data_dir = given;
        Ok(())
    }

    /// Reads the organisation tree; returns it with the text it was parsed from.
    pub fn load_directory(&self) -> Result<(Directory, String), ConfigError> {
        let text = match std::fs::read_to_string(&self.orgs) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.orgs_fallback_embedded => {
                EMBEDDED_ORGS.to_owned()
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    path: self.orgs.display().to_string(),
                    source,
                });
            }
        };
        let mut directory = Directory::from_toml(&text)?;
        directory.attach_keys(&self.keys_dir)?;
        Ok((directory, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_memory_is_beside_the_data_directory_unless_configured() {
        let mut config = ServerConfig::embedded_default(Path::new("/srv/congvan")).unwrap();
        config.data_dir = PathBuf::from("/var/lib/congvan/data");
        assert_eq!(
            config.checkpoint_memory_path(),
            Path::new("/var/lib/congvan/latest-checkpoint.note")
        );
        let text = EMBEDDED_SERVER_CONFIG.replace(
            "checkpoint_interval_s = 60\n",
            "checkpoint_interval_s = 60\ncheckpoint_memory = \"state/memory.note\"\n",
        );
        let config = ServerConfig::parse(&text, Path::new("/etc/congvan"), "test").unwrap();
        assert_eq!(
            config.checkpoint_memory_path(),
            Path::new("/etc/congvan/state/memory.note")
        );
        assert!(!config.acknowledge_rollback, "never from the file");
    }

    #[test]
    fn embedded_default_resolves_under_cwd() {
        let cwd = Path::new("/srv/congvan");
        let config = ServerConfig::embedded_default(cwd).unwrap();
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.data_dir, Path::new("/srv/congvan/config/../data"));
        assert!(config.demo_pki.is_some());
        let (dir, _) = config.load_directory().unwrap();
        assert!(dir.orgs().count() >= 8);
    }

    #[test]
    fn embedded_limits_are_the_defaults_and_name_every_limit() {
        // The shipped file documents every limit; a new field must be added there too.
        let config = ServerConfig::embedded_default(Path::new("/srv")).unwrap();
        assert_eq!(
            format!("{:?}", config.limits),
            format!("{:?}", Limits::default())
        );
        let section = EMBEDDED_SERVER_CONFIG
            .split("[limits]")
            .nth(1)
            .unwrap_or_default();
        let debug = format!("{:?}", Limits::default());
        for field in debug
            .trim_start_matches("Limits {")
            .split(',')
            .filter_map(|f| f.split(':').next())
            .map(str::trim)
            .filter(|f| !f.is_empty() && *f != "}")
        {
            assert!(
                section.contains(&format!("\n{field} = ")),
                "{field} is missing from config/congvan.toml"
            );
        }
    }

    #[test]
    fn embedded_documents_section_is_the_default() {
        let config = ServerConfig::embedded_default(Path::new("/srv")).unwrap();
        let default = DocumentsConfig::default();
        assert_eq!(config.documents.types, default.types);
        assert_eq!(
            config.documents.payload_bytes_max,
            default.payload_bytes_max
        );
        assert!(EMBEDDED_SERVER_CONFIG.contains("\n[documents]\n"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = EMBEDDED_SERVER_CONFIG.replace("[limits]", "[limits]\nconnection_max = 5");
        let err = ServerConfig::parse(&text, Path::new("/"), "x").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
