//! Test support: a real server with a fresh DEMO PKI on an ephemeral port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use congvan::client::Client;
use congvan::config::{ClientProfile, ServerConfig};
use congvan::directory::{Directory, OrgId};
use congvan::pki::demo::{self, DemoOptions, Layout};
use congvan::server::{Server, TrustReloader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The sample organisation tree shipped in `config/orgs.toml`.
pub const SAMPLE_ORGS: &str = include_str!("../../config/orgs.toml");

/// A running server and the PKI it trusts.
pub struct TestServer {
    pub addr: SocketAddr,
    pub pki: Layout,
    pub tls: Arc<TrustReloader>,
    pub metrics: Arc<congvan::server::metrics::Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), congvan::server::ServerError>>>,
    // Dropped last: the directory holds the PKI and the data.
    pub dir: tempfile::TempDir,
}

/// Makes a DEMO PKI for the sample tree in a fresh temporary directory.
pub fn fresh_pki() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let directory = Directory::from_toml(SAMPLE_ORGS).unwrap();
    let layout = demo::generate(
        &dir.path().join("pki"),
        &directory,
        SAMPLE_ORGS,
        &DemoOptions::default(),
    )
    .unwrap();
    (dir, layout)
}

impl TestServer {
    /// A server on a fresh PKI and empty data directory.
    pub async fn start() -> TestServer {
        let (dir, pki) = fresh_pki();
        Self::start_in(dir, pki).await
    }

    /// A server using the PKI and data under `dir` (for restarts).
    pub async fn start_in(dir: tempfile::TempDir, pki: Layout) -> TestServer {
        let mut config = ServerConfig::load(&pki.server_config()).unwrap();
        config.data_dir = dir.path().join("data");
        config.tls.crl_check_interval = Duration::from_millis(100);
        config.limits.shutdown_grace_ms = 5_000;
        let server = Server::build(&config).unwrap();
        let tls = server.tls();
        let metrics = server.state().metrics.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            pki,
            tls,
            metrics,
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    /// The base URL, by name so the server certificate's DNS SAN is checked.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The client profile of an organisation.
    pub fn org_profile(&self, org: &str) -> ClientProfile {
        let id = OrgId::parse(org).unwrap();
        ClientProfile::load(&self.pki.org_profile(&id)).unwrap()
    }

    /// The client profile of a security officer.
    pub fn auditor_profile(&self, scope: &str) -> ClientProfile {
        let id = OrgId::parse(scope).unwrap();
        ClientProfile::load(&self.pki.auditor_profile(&id)).unwrap()
    }

    /// A client speaking as an organisation.
    pub fn client(&self, org: &str) -> Client {
        Client::new(&self.org_profile(org), &self.url()).unwrap()
    }

    /// The directory of an organisation's keys.
    pub fn org_dir(&self, org: &str) -> PathBuf {
        self.pki.org_dir(&OrgId::parse(org).unwrap())
    }

    /// Stops the server gracefully and returns what a restart needs.
    pub async fn stop(mut self) -> (tempfile::TempDir, Layout) {
        self.shutdown().await;
        let pki = self.pki.clone();
        // Move the directory out without running Drop's shutdown again.
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, pki)
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server did not stop within 10 s")
                .expect("server task panicked")
                .expect("server returned an error");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A rustls client config trusting the PKI's root, TLS 1.3, with an optional client cert.
pub fn tls_client_config(root: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in congvan::pki::pem::read_certs(root).unwrap() {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(congvan::server::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                congvan::pki::pem::read_certs(cert).unwrap(),
                congvan::pki::pem::read_private_key(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Sends `GET path` over a fresh TLS connection and returns the raw HTTP response, or the
/// TLS/IO error that ended the connection (a refused client certificate shows up here,
/// since in TLS 1.3 the server's verdict arrives after the client's handshake is done).
pub async fn raw_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// True when an outside tool is on PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Fails the test when an outside tool is missing, unless the environment says to skip
/// such tests; CI installs every tool, so a missing one there is a failure.
pub fn require(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    if std::env::var_os("CONGVAN_SKIP_MISSING_TOOLS").is_some() {
        eprintln!("skipping: {tool} is not installed");
        return false;
    }
    panic!("{tool} is not installed (set CONGVAN_SKIP_MISSING_TOOLS=1 to skip such tests)");
}
