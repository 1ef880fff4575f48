//! Test support: a real server with a fresh DEMO PKI on an ephemeral port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use congvan::client::Client;
use congvan::config::{ClientProfile, ServerConfig};
use congvan::directory::{Directory, OrgId};
use congvan::pki::demo::{self, DemoOptions, Layout};
use congvan::seal::policy::SealPolicy;
use congvan::seal::{Cipher, Envelope, OpenPgp, SealError};
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

/// The name under which [`StandInCertified`] is declared.
pub const STAND_IN_CIPHER: &str = "test-stand-in-certified";

/// A stand-in for a certified cipher module behind the same `Cipher` interface: the
/// bundled OpenPGP cipher under another name, so tests can exercise a server that
/// declares a certified cipher. It certifies nothing; it exists only in tests.
#[derive(Default)]
pub struct StandInCertified(OpenPgp);

impl StandInCertified {
    /// A `[seal]` declaration naming the stand-in as certified.
    pub fn declaration() -> SealPolicy {
        SealPolicy {
            cipher: STAND_IN_CIPHER.into(),
            certified: true,
            certificate: "TEST ONLY: no certificate".into(),
            allow_uncertified_mat: false,
        }
    }
}

impl Cipher for StandInCertified {
    fn name(&self) -> &str {
        STAND_IN_CIPHER
    }
    fn seal(
        &self,
        plaintext: &mut dyn std::io::Read,
        out: &mut (dyn std::io::Write + Send + Sync),
        recipients: &[Vec<u8>],
        signer_secret: &[u8],
    ) -> Result<(), SealError> {
        self.0.seal(plaintext, out, recipients, signer_secret)
    }
    fn open(
        &self,
        ciphertext: &mut (dyn std::io::Read + Send + Sync),
        out: &mut dyn std::io::Write,
        recipient_secret: &[u8],
        sender_cert: &[u8],
        plaintext_bytes_max: u64,
    ) -> Result<u64, SealError> {
        self.0.open(
            ciphertext,
            out,
            recipient_secret,
            sender_cert,
            plaintext_bytes_max,
        )
    }
    fn recipients_of(
        &self,
        ciphertext: &mut (dyn std::io::Read + Send + Sync),
    ) -> Result<Envelope, SealError> {
        self.0.recipients_of(ciphertext)
    }
    fn recipient_ids(&self, cert: &[u8]) -> Result<Vec<String>, SealError> {
        self.0.recipient_ids(cert)
    }
    fn check_cert(&self, cert: &[u8]) -> Result<String, SealError> {
        self.0.check_cert(cert)
    }
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

    /// A server on a fresh PKI whose configuration `tweak` adjusts.
    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let (dir, pki) = fresh_pki();
        Self::start_configured(dir, pki, tweak).await
    }

    /// A server using the PKI and data under `dir` (for restarts).
    pub async fn start_in(dir: tempfile::TempDir, pki: Layout) -> TestServer {
        Self::start_configured(dir, pki, |_| {}).await
    }

    /// A server using the PKI and directory `dir` whose configuration `tweak` adjusts
    /// (another data directory, `acknowledge_rollback`…).
    pub async fn start_in_with(
        dir: tempfile::TempDir,
        pki: Layout,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        Self::start_configured(dir, pki, tweak).await
    }

    /// A server whose `[seal]` declares the certified stand-in module
    /// ([`StandInCertified`]), so every classification level may be sent; its clients
    /// come from [`TestServer::client`], which carries the stand-in too.
    pub async fn start_certified() -> TestServer {
        let (dir, pki) = fresh_pki();
        Self::start_configured(dir, pki, |c| c.seal = StandInCertified::declaration()).await
    }

    async fn start_configured(
        dir: tempfile::TempDir,
        pki: Layout,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let mut config = ServerConfig::load(&pki.server_config()).unwrap();
        config.data_dir = dir.path().join("data");
        config.tls.crl_check_interval = Duration::from_millis(100);
        config.limits.shutdown_grace_ms = 5_000;
        tweak(&mut config);
        let server = if config.seal.cipher == STAND_IN_CIPHER {
            Server::build_with_cipher(&config, Arc::new(StandInCertified::default())).unwrap()
        } else {
            Server::build(&config).unwrap()
        };
        let tls = server.tls();
        let metrics = server.state().metrics.clone();
        let listener = congvan::server::bind(([127, 0, 0, 1], 0).into()).unwrap();
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
        Client::new(&self.org_profile(org), &self.url())
            .unwrap()
            .with_cipher(Arc::new(StandInCertified::default()))
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

/// The outside tools the tests may run, from `tests/tools.txt`: (command, Debian package).
pub fn listed_tools() -> Vec<(String, String)> {
    let list = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools.txt");
    std::fs::read_to_string(list)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let cmd = words.next().unwrap().to_owned();
            let pkg = words
                .next()
                .expect("each tool line names its package")
                .to_owned();
            (cmd, pkg)
        })
        .collect()
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
/// such tests; `tests/run.sh` (the README's test command) installs every listed tool, so a
/// missing one there is a failure. A tool not in `tests/tools.txt` fails at once.
pub fn require(tool: &str) -> bool {
    let Some((_, package)) = listed_tools().into_iter().find(|(cmd, _)| cmd == tool) else {
        panic!("{tool} is not listed in tests/tools.txt: add it with its Debian package");
    };
    if have(tool) {
        return true;
    }
    if std::env::var_os("CONGVAN_SKIP_MISSING_TOOLS").is_some() {
        eprintln!("skipping: {tool} is not installed");
        return false;
    }
    panic!(
        "{tool} is not installed: run tests/run.sh, which installs it (Debian package \
         {package}), or set CONGVAN_SKIP_MISSING_TOOLS=1 to skip such tests"
    );
}

/// A fresh document number for each test document: the outgoing register refuses a
/// number and notation used twice by one sender in a numbering period.
pub fn next_number() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .to_string()
}

/// The full name and position on the DEMO person certificate of `org` in the sample tree.
pub fn sample_signer(org: &str) -> (String, String) {
    let directory = Directory::from_toml(SAMPLE_ORGS).unwrap();
    let org = directory.org(&OrgId::parse(org).unwrap()).unwrap();
    (demo::person_name(org), demo::person_position(org))
}

/// A document under construction for tests: a manifest as JSON, its payload, and how to
/// sign and submit it. Tests mutate `manifest` to make hostile variants.
#[derive(Clone)]
pub struct TestDoc {
    pub manifest: serde_json::Value,
    pub payload: Vec<u8>,
}

impl TestDoc {
    /// A valid unclassified document from `sender` to `recipients` with two attachments.
    pub fn new(sender: &str, recipients: &[&str]) -> TestDoc {
        let files: [(&str, &[u8]); 2] = [
            (
                "Chỉ thị 12-CT-HU.txt",
                "Về đẩy mạnh chuyển đổi số.\n".as_bytes(),
            ),
            ("phu-luc.bin", &[0u8, 1, 2, 3, 255]),
        ];
        let mut payload = Vec::new();
        let attachments: Vec<_> = files
            .iter()
            .map(|(name, bytes)| {
                payload.extend_from_slice(bytes);
                serde_json::json!({
                    "name": name,
                    "media_type": "text/plain",
                    "size": bytes.len(),
                    "sha256": congvan::document::sha256_hex(bytes),
                })
            })
            .collect();
        // The person signature must come from a certificate issued to the name the
        // manifest prints: the DEMO PKI's person for the sender.
        let (full_name, position) = sample_signer(sender);
        let manifest = serde_json::json!({
            "version": 1,
            "id": uuid::Uuid::now_v7(),
            "sender": sender,
            "recipients": recipients,
            "code": {"number": next_number(), "notation": "CT/HU"},
            "doc_type": "CT",
            "subject": "Về đẩy mạnh chuyển đổi số trong hoạt động của các cấp ủy",
            "promulgated": {"date": "2026-11-26", "place": "Chương Mỹ"},
            "signer": {"competence": "TM.", "position": position, "full_name": full_name},
            "urgency": 1,
            "classification": "thuong",
            "steering": 2,
            "business": {"kind": "new"},
            "attachments": attachments,
            "payload": {
                "sha256": congvan::document::sha256_hex(&payload),
                "size": payload.len(),
                "encrypted": false,
            },
            "created_at": "2026-11-26T08:00:00Z",
        });
        TestDoc { manifest, payload }
    }

    pub fn id(&self) -> String {
        self.manifest["id"].as_str().unwrap().to_owned()
    }

    /// The RFC 8785 bytes of the manifest.
    pub fn canonical(&self) -> Vec<u8> {
        congvan::document::manifest::canonical_bytes(&self.manifest).unwrap()
    }

    /// Replaces the payload and fixes the manifest's single-attachment description.
    pub fn set_payload(&mut self, payload: Vec<u8>) {
        let sha = congvan::document::sha256_hex(&payload);
        self.manifest["attachments"] = serde_json::json!([{
            "name": "payload.bin", "media_type": "application/octet-stream",
            "size": payload.len(), "sha256": sha,
        }]);
        self.manifest["payload"] =
            serde_json::json!({"sha256": sha, "size": payload.len(), "encrypted": false});
        self.payload = payload;
    }

    /// A raw signature by the key pair `<stem>.crt`/`<stem>.key` in `dir`.
    pub fn raw_signature(
        &self,
        role: congvan::document::Role,
        dir: &Path,
        stem: &str,
    ) -> congvan::document::DocSignature {
        let key = congvan::pki::signing::SigningKey::load(
            &dir.join(format!("{stem}.crt")),
            &dir.join(format!("{stem}.key")),
        )
        .unwrap();
        let sig = key.sign(&self.canonical()).unwrap();
        congvan::document::DocSignature::raw(role, key.algorithm(), &sig, &key.chain)
    }

    /// Both signatures of the sender's organisation and person, from the demo PKI.
    pub fn signatures(&self, server: &TestServer) -> Vec<congvan::document::DocSignature> {
        let dir = server.org_dir(self.manifest["sender"].as_str().unwrap());
        vec![
            self.raw_signature(congvan::document::Role::Organization, &dir, "sign"),
            self.raw_signature(congvan::document::Role::Person, &dir, "person"),
        ]
    }

    /// The submit request body with the given signatures.
    pub fn body(&self, signatures: &[congvan::document::DocSignature]) -> serde_json::Value {
        serde_json::json!({"manifest": self.manifest, "signatures": signatures})
    }

    /// Submits with the sender's two signatures as `client`.
    pub async fn submit(
        &self,
        server: &TestServer,
        client: &Client,
    ) -> Result<(u16, serde_json::Value), congvan::client::ClientError> {
        client
            .post_json("/v1/documents", &self.body(&self.signatures(server)))
            .await
    }

    /// Uploads `payload` as `client`.
    pub async fn upload(
        &self,
        client: &Client,
        payload: Vec<u8>,
    ) -> Result<(u16, serde_json::Value), congvan::client::ClientError> {
        let len = payload.len() as u64;
        client
            .put_stream(
                &format!("/v1/documents/{}/payload", self.id()),
                reqwest::Body::from(payload),
                len,
            )
            .await
    }
}

/// Asserts that a client call failed with this API error code.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(
    result: Result<T, congvan::client::ClientError>,
    code: &str,
) {
    match result {
        Ok(v) => panic!("expected refusal {code}, got success: {v:?}"),
        Err(e) => assert_eq!(e.api_code(), Some(code), "expected {code}, got: {e}"),
    }
}

/// A TLS connection to `server` as `org`, for sending raw bytes.
pub async fn tls_connect(
    server: &TestServer,
    org: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let dir = server.org_dir(org);
    let config = tls_client_config(
        &server.pki.root_cert(),
        Some((&dir.join("tls.crt"), &dir.join("tls.key"))),
    );
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

/// Reads until the peer closes (or `limit` passes); returns what arrived.
pub async fn read_all_within(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: Duration,
) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut out)).await {
        Ok(Ok(_)) => Ok(out),
        Ok(Err(e)) if !out.is_empty() => {
            let _ = e;
            Ok(out)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("still open after {limit:?}")),
    }
}

/// Signs test documents with the DEMO PKI's keys, without a `TestServer` (for servers run
/// as separate processes).
#[derive(Clone)]
pub struct SignerSet {
    pki: Layout,
}

impl SignerSet {
    pub fn new(pki: &Layout) -> SignerSet {
        SignerSet { pki: pki.clone() }
    }

    /// The sender's organisation and person signatures over `doc`.
    pub fn sign(&self, doc: &TestDoc) -> Vec<congvan::document::DocSignature> {
        let sender: OrgId = doc.manifest["sender"].as_str().unwrap().parse().unwrap();
        let dir = self.pki.org_dir(&sender);
        vec![
            doc.raw_signature(congvan::document::Role::Organization, &dir, "sign"),
            doc.raw_signature(congvan::document::Role::Person, &dir, "person"),
        ]
    }
}

/// The real `congvan` binary, ready for arguments, environment and a working directory.
pub fn congvan_command() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
}

/// Runs the real binary with `args` (strings or paths) and returns what it did.
pub fn congvan<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    congvan_command().args(args).run()
}

/// Runs the real binary with `args` and asserts that it succeeded (showing both outputs
/// when it did not).
pub fn run_ok<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    congvan_command().args(args).run_ok()
}

/// Runs the real binary with `args` and asserts that it exited with `code`.
pub fn run_fails_with<I, S>(code: i32, args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    congvan_command().args(args).run_fails_with(code)
}

/// Standard output as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Running a prepared command of the binary (or any program) in a test: from async tests
/// too (the wait happens in `block_in_place`, so a server on the same runtime keeps
/// serving), with the outputs shown when an expectation fails.
pub trait Run {
    /// Runs the command to its end and returns what it did.
    fn run(&mut self) -> std::process::Output;
    /// Runs the command and asserts that it succeeded.
    fn run_ok(&mut self) -> std::process::Output;
    /// Runs the command and asserts that it failed (any non-zero exit).
    fn run_fails(&mut self) -> std::process::Output;
    /// Runs the command and asserts that it exited with `code`.
    fn run_fails_with(&mut self, code: i32) -> std::process::Output;
}

impl Run for std::process::Command {
    fn run(&mut self) -> std::process::Output {
        tokio::task::block_in_place(|| self.output())
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.get_program()))
    }

    fn run_ok(&mut self) -> std::process::Output {
        let out = self.run();
        assert!(out.status.success(), "{}", shown(self, &out));
        out
    }

    fn run_fails(&mut self) -> std::process::Output {
        let out = self.run();
        assert!(!out.status.success(), "{}", shown(self, &out));
        out
    }

    fn run_fails_with(&mut self, code: i32) -> std::process::Output {
        let out = self.run();
        assert_eq!(out.status.code(), Some(code), "{}", shown(self, &out));
        out
    }
}

/// A command, its exit status and both outputs, for a failed expectation.
fn shown(command: &std::process::Command, out: &std::process::Output) -> String {
    let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
    format!(
        "{} {}: {}\n--- stdout\n{}--- stderr\n{}",
        command.get_program().to_string_lossy(),
        args.join(" "),
        out.status,
        stdout(out),
        stderr(out)
    )
}

/// Asserts that a finished command succeeded, showing its status and both outputs if not.
pub fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// A receipt status from its two-digit edXML code, for the tests' `acknowledge` calls.
pub fn st(code: &str) -> congvan::document::receipt::ReceiptStatus {
    congvan::document::receipt::ReceiptStatus::from_code(code)
        .unwrap_or_else(|| panic!("{code:?} is not a receipt status"))
}
