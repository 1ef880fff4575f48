//! OCSP for document signers (issue 14, part 3), against `openssl ocsp` running as a
//! responder on loopback.
//!
//! Each test makes an issuing CA of its own under the DEMO root (covered by the root's
//! CRL, so its own certificate has a known status) that publishes **no** CRL: the seal
//! certificate it issues to hn/cm, with an OCSP URL in its authorityInfoAccess, can only
//! be judged over OCSP. The server must ask, accept it when the responder says good, store
//! the response with the document so that the recipient can judge the signature later
//! without the responder, and refuse (changing nothing) when the responder says revoked,
//! is down, is slow, signs with a key the CA never delegated, or answers about another
//! certificate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use congvan::document::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestDoc, TestServer, assert_code, require};

/// Runs openssl with `args` in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free loopback port (bound, then released for the responder to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test's own PKI pieces under the server's DEMO root.
struct OcspPki {
    dir: PathBuf,
    /// The responder URL the seal certificate names.
    url: String,
    port: u16,
    /// The seal certificate's serial, hex as openssl prints it.
    serial: String,
}

impl OcspPki {
    /// An issuing CA without a CRL, and hn/cm's seal certificate from it naming an OCSP
    /// responder on `port`, written as `sign-ocsp.crt` (with the CA) / `sign-ocsp.key`
    /// into hn/cm's folder. Also a second leaf (`other.crt`) from the same CA.
    fn make(server: &TestServer, port: u16) -> OcspPki {
        let dir = server.dir.path().join("ocsp");
        std::fs::create_dir_all(&dir).unwrap();
        let root_cert = server.pki.root_cert();
        let root_key = server.pki.root_key();
        std::fs::write(
            dir.join("ca.ext"),
            "basicConstraints = critical, CA:TRUE, pathlen:0\n\
             keyUsage = critical, keyCertSign, cRLSign\n",
        )
        .unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.csr",
                "-subj",
                "/CN=congvan TEST OCSP-only CA",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "ca.csr",
                "-CA",
                root_cert.to_str().unwrap(),
                "-CAkey",
                root_key.to_str().unwrap(),
                "-CAcreateserial",
                "-days",
                "30",
                "-sha256",
                "-extfile",
                "ca.ext",
                "-out",
                "ca.crt",
            ],
        );
        let url = format!("http://127.0.0.1:{port}");
        std::fs::write(
            dir.join("seal.ext"),
            format!(
                "basicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature, nonRepudiation\n\
                 extendedKeyUsage = 1.3.6.1.5.5.7.3.36\n\
                 subjectAltName = URI:urn:congvan:org:hn/cm\n\
                 authorityInfoAccess = OCSP;URI:{url}\n"
            ),
        )
        .unwrap();
        for stem in ["seal", "other"] {
            openssl(
                &dir,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    &format!("{stem}.key"),
                    "-out",
                    &format!("{stem}.csr"),
                    "-subj",
                    "/CN=Huyen uy Chuong My",
                ],
            );
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{stem}.csr"),
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "20",
                    "-sha256",
                    "-extfile",
                    "seal.ext",
                    "-out",
                    &format!("{stem}.crt"),
                ],
            );
        }
        let serial = openssl(&dir, &["x509", "-in", "seal.crt", "-noout", "-serial"])
            .trim()
            .trim_start_matches("serial=")
            .to_owned();
        let org = server.org_dir("hn/cm");
        let chain = std::fs::read_to_string(dir.join("seal.crt")).unwrap()
            + &std::fs::read_to_string(dir.join("ca.crt")).unwrap();
        std::fs::write(org.join("sign-ocsp.crt"), chain).unwrap();
        std::fs::copy(dir.join("seal.key"), org.join("sign-ocsp.key")).unwrap();
        OcspPki {
            dir,
            url,
            port,
            serial,
        }
    }

    /// Writes the responder's index: the seal certificate valid, or revoked with
    /// `reason` ("superseded", "keyCompromise"…) an hour ago.
    fn index(&self, revoked: Option<&str>) {
        let expiry = "491231235959Z";
        let line = match revoked {
            None => format!(
                "V\t{expiry}\t\t{}\tunknown\t/CN=Huyen uy Chuong My\n",
                self.serial
            ),
            Some(reason) => {
                let when = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
                let when = when
                    .format(time::macros::format_description!(
                        "[year repr:last_two][month][day][hour][minute][second]Z"
                    ))
                    .unwrap();
                format!(
                    "R\t{expiry}\t{when},{reason}\t{}\tunknown\t/CN=Huyen uy Chuong My\n",
                    self.serial
                )
            }
        };
        std::fs::write(self.dir.join("index.txt"), line).unwrap();
    }

    /// Starts `openssl ocsp` on the port the certificate names (OpenSSL 3.0 takes a port
    /// number only and listens on every address; the test connects over loopback), signing with
    /// `signer`/`key` (the CA itself, unless a test says otherwise).
    fn responder(&self, signer: &str, key: &str) -> Responder {
        let mut command = Command::new("openssl");
        command.current_dir(&self.dir).args([
            "ocsp",
            "-index",
            "index.txt",
            "-port",
            &self.port.to_string(),
            "-CA",
            "ca.crt",
            "-rsigner",
            signer,
            "-rkey",
            key,
            "-nmin",
            "10",
        ]);
        Responder::start(command)
    }
}

/// A running `openssl ocsp`, killed (by its own id) when dropped.
pub struct Responder(Child);

impl Responder {
    /// Starts `command` (an `openssl ocsp` responder, or a shell that execs one) and waits
    /// until it listens. Readiness is read from its output, not probed with a connection:
    /// the responder serves one connection at a time, and a probe that sends nothing
    /// would hold it.
    pub fn start(mut command: Command) -> Responder {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("waiting for OCSP client connections") {
                        let _ = ready_tx.send(());
                    }
                }
            });
        }
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("openssl ocsp did not start listening");
        Responder(child)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Signatures over `doc`: the organisation's by the OCSP-checked seal certificate, the
/// person's by the DEMO person certificate (covered by the DEMO CRLs).
fn signatures(server: &TestServer, doc: &TestDoc) -> Vec<congvan::document::DocSignature> {
    let dir = server.org_dir("hn/cm");
    vec![
        doc.raw_signature(Role::Organization, &dir, "sign-ocsp"),
        doc.raw_signature(Role::Person, &dir, "person"),
    ]
}

async fn submit(
    server: &TestServer,
    doc: &TestDoc,
) -> Result<(u16, serde_json::Value), congvan::client::ClientError> {
    server
        .client("hn/cm")
        .post_json("/v1/documents", &doc.body(&signatures(server, doc)))
        .await
}

/// The refusal left nothing behind: the document does not exist.
async fn assert_not_stored(server: &TestServer, doc: &TestDoc) {
    let got = server
        .client("hn/cm")
        .get_json::<serde_json::Value>(&format!("/v1/documents/{}", doc.id()))
        .await;
    assert_code(got, "document_not_found");
}

fn congvan_fetch(server: &TestServer, doc: &TestDoc, out: &Path) -> std::process::Output {
    let profile = server.pki.org_profile(&"hn/cm/chuc-son".parse().unwrap());
    tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["fetch", &doc.id(), "--profile"])
            .arg(&profile)
            .args(["--server", &server.url(), "--out"])
            .arg(out)
            .output()
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_good_signer_is_accepted_and_the_stored_response_lets_the_recipient_verify_later() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    let pki = OcspPki::make(&server, free_port());
    pki.index(None);
    let responder = pki.responder("ca.crt", "ca.key");

    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let started = Instant::now();
    let (status, answer) = submit(&server, &doc).await.unwrap();
    let fetched_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 201, "{answer}");
    let sender = server.client("hn/cm");
    let (status, answer) = doc.upload(&sender, doc.payload.clone()).await.unwrap();
    assert!(status == 200 || status == 201, "{answer}");
    let view: serde_json::Value = sender
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    let evidence = view["ocsp"]
        .as_array()
        .expect("the OCSP response is stored");
    assert_eq!(evidence.len(), 1, "one OCSP-checked signer: {view}");

    // The responder goes away. A second document within the response's nextUpdate is
    // judged by the cached response; the recipient judges both from the stored evidence.
    drop(responder);
    let second = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let started = Instant::now();
    let (status, answer) = submit(&server, &second).await.unwrap();
    let cached_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, 201, "cached response: {answer}");
    eprintln!(
        "submission with an OCSP fetch {fetched_ms:.1} ms, with the cached response {cached_ms:.1} ms"
    );

    let out = server.dir.path().join("fetched");
    let fetched = congvan_fetch(&server, &doc, &out);
    assert!(
        fetched.status.success(),
        "the recipient verifies with the stored OCSP response: {}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert!(
        std::fs::read_dir(&out).unwrap().count() > 0,
        "the files were written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_revoked_signer_is_refused_and_nothing_is_stored() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    let pki = OcspPki::make(&server, free_port());
    pki.index(Some("keyCompromise"));
    let _responder = pki.responder("ca.crt", "ca.key");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    assert_code(submit(&server, &doc).await, "signature_revoked");
    assert_not_stored(&server, &doc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_responder_down_fails_closed() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    // Nothing listens on the port the certificate names.
    let _pki = OcspPki::make(&server, free_port());
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let result = submit(&server, &doc).await;
    let message = format!("{:?}", result.as_ref().err());
    assert_code(result, "ocsp_unavailable");
    assert!(
        message.contains("127.0.0.1"),
        "the message names the responder: {message}"
    );
    assert_not_stored(&server, &doc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_slow_responder_times_out() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start_with(|c| c.ocsp.timeout_ms = 1_000).await;
    // A responder that accepts and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let _pki = OcspPki::make(&server, port);
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let started = Instant::now();
    let result = submit(&server, &doc).await;
    let elapsed = started.elapsed();
    assert_code(result, "ocsp_unavailable");
    assert!(
        elapsed < Duration::from_secs(4),
        "refused within the 1 s timeout (plus the submission), took {elapsed:?}"
    );
    eprintln!("slow responder refused after {} ms", elapsed.as_millis());
    assert_not_stored(&server, &doc).await;
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_response_signed_by_an_undelegated_key_is_refused() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    let pki = OcspPki::make(&server, free_port());
    pki.index(None);
    // A responder certificate the CA never issued: self-signed, with the OCSP EKU.
    openssl(
        &pki.dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "rogue.key",
            "-out",
            "rogue.crt",
            "-days",
            "5",
            "-subj",
            "/CN=congvan TEST OCSP-only CA",
            "-addext",
            "extendedKeyUsage = OCSPSigning",
        ],
    );
    let _responder = pki.responder("rogue.crt", "rogue.key");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let result = submit(&server, &doc).await;
    let message = format!("{:?}", result.as_ref().err());
    assert_code(result, "ocsp_response_invalid");
    assert!(message.contains("not signed by"), "{message}");
    assert_not_stored(&server, &doc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_response_about_another_certificate_is_refused() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    // The real responder signs a good response about `other.crt`; a replaying responder
    // on the port the seal certificate names then answers every request with it.
    let pki = OcspPki::make(&server, free_port());
    let other_serial = openssl(&pki.dir, &["x509", "-in", "other.crt", "-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_owned();
    let real_port = free_port();
    std::fs::write(
        pki.dir.join("index.txt"),
        format!("V\t491231235959Z\t\t{other_serial}\tunknown\t/CN=Huyen uy Chuong My\n"),
    )
    .unwrap();
    let real = OcspPki {
        dir: pki.dir.clone(),
        url: format!("http://127.0.0.1:{real_port}"),
        port: real_port,
        serial: other_serial,
    };
    let responder = real.responder("ca.crt", "ca.key");
    openssl(
        &pki.dir,
        &[
            "ocsp",
            "-issuer",
            "ca.crt",
            "-cert",
            "other.crt",
            "-url",
            &real.url,
            "-respout",
            "other.der",
            "-noverify",
        ],
    );
    drop(responder);
    let canned = std::fs::read(pki.dir.join("other.der")).unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", pki.port))
        .await
        .unwrap();
    let replay = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                canned.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&canned).await;
            let _ = stream.shutdown().await;
        }
    });
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let result = submit(&server, &doc).await;
    let message = format!("{:?}", result.as_ref().err());
    assert_code(result, "ocsp_response_invalid");
    assert!(message.contains("another certificate"), "{message}");
    assert_not_stored(&server, &doc).await;
    replay.abort();
}

/// The recipient's own check of the stored evidence, with no server in between: without
/// the response an OCSP-only signer is refused (the server can withhold evidence), with
/// one byte of it changed it is refused (the server cannot forge it), and with the
/// response as stored it verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_refuses_withheld_or_altered_ocsp_evidence() {
    use base64::Engine as _;
    use congvan::pki::signing::{JudgedAt, SigningTrust};
    use rustls_pki_types::UnixTime;

    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    let pki = OcspPki::make(&server, free_port());
    pki.index(None);
    let responder = pki.responder("ca.crt", "ca.key");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let (status, answer) = submit(&server, &doc).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    drop(responder);
    let view: serde_json::Value = server
        .client("hn/cm")
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    let evidence: Vec<Vec<u8>> = view["ocsp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(evidence.len(), 1);

    let trust = SigningTrust::load(
        &[server.pki.root_cert()],
        &[server.pki.root_crl(), server.pki.intermediate_crl()],
    )
    .unwrap();
    let canonical = doc.canonical();
    let text = String::from_utf8(canonical.clone()).unwrap();
    let manifest = congvan::document::manifest::parse(
        &text,
        &congvan::document::ManifestRules {
            doc_types: vec!["CT".into()],
            payload_bytes_max: u64::MAX,
        },
    )
    .unwrap()
    .manifest;
    let sigs = signatures(&server, &doc);
    let check = |ocsp: &[Vec<u8>]| {
        let now = UnixTime::now();
        congvan::client::fetch::verify_outer_signatures_with_ocsp(
            &trust,
            &canonical,
            &manifest,
            &sigs,
            &["person".into(), "organization".into()],
            JudgedAt::Signed {
                signed: now,
                crls_current_at: now,
            },
            ocsp,
        )
        .map(|v| v.signers.len())
        .map_err(|e| e.to_string())
    };
    assert_eq!(check(&evidence), Ok(2));
    let withheld = check(&[]).unwrap_err();
    assert!(withheld.contains("no current CRL"), "{withheld}");
    // Bytes inside the signed tbsResponseData (responder id, times, CertID); the
    // certificates appended after the signature are not signed and not relied on.
    for i in [60, 100, 140] {
        let mut altered = evidence[0].clone();
        altered[i] ^= 0x01;
        let refused = check(&[altered]).unwrap_err();
        assert!(refused.contains("organization signature"), "{refused}");
    }
}
