//! Validity at the time of signing (issue 11, part 7): a recipient judges signatures as of
//! the server's signed acceptance time, so a routine certificate renewal does not make
//! undelivered documents unreadable while a key compromise does; and the server applies a
//! new CRL to submissions from the moment it serves it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::support::{TestDoc, TestServer, assert_code};

/// Submits and uploads a document from hn/cm to chuc-son; returns it once accepted, with
/// the acceptance time the server signed.
async fn accepted_document(server: &TestServer) -> (TestDoc, time::OffsetDateTime) {
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sender = server.client("hn/cm");
    let (status, _) = doc.submit(server, &sender).await.unwrap();
    assert_eq!(status, 201);
    let (status, answer) = doc.upload(&sender, doc.payload.clone()).await.unwrap();
    assert!(status == 200 || status == 201, "{answer}");
    let view: serde_json::Value = sender
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    let accepted = view["receipt"]["statement"]["accepted_at"]
        .as_str()
        .unwrap_or_else(|| panic!("no signed acceptance time: {view}"));
    let accepted =
        time::OffsetDateTime::parse(accepted, &time::format_description::well_known::Rfc3339)
            .unwrap();
    (doc, accepted)
}

/// Runs the real `congvan` binary.
fn congvan(args: &[&std::ffi::OsStr]) -> Output {
    tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(args)
            .output()
            .unwrap()
    })
}

/// `congvan pki revoke --reason <reason> [--invalid-since T] --pki <pki> <cert>`.
fn revoke(server: &TestServer, cert: &Path, reason: &str, invalid_since: Option<&str>) {
    let mut args: Vec<std::ffi::OsString> = vec!["pki".into(), "revoke".into()];
    args.extend(["--reason".into(), reason.into()]);
    if let Some(t) = invalid_since {
        args.extend(["--invalid-since".into(), t.into()]);
    }
    args.extend(["--pki".into(), server.pki.dir.clone().into_os_string()]);
    args.push(cert.as_os_str().to_owned());
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out = congvan(&refs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `congvan fetch` as chuc-son into a fresh directory.
fn fetch(server: &TestServer, doc: &TestDoc, out: &Path) -> Output {
    let profile = server.pki.org_profile(&"hn/cm/chuc-son".parse().unwrap());
    let url = server.url();
    congvan(&[
        "fetch".as_ref(),
        doc.id().as_ref(),
        "--profile".as_ref(),
        profile.as_os_str(),
        "--server".as_ref(),
        url.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}

/// A moment so the next revocation date (whole seconds) is after the acceptance time.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn superseded_after_acceptance_still_verifies_on_fetch() {
    let server = TestServer::start().await;
    let (doc, _) = accepted_document(&server).await;
    next_second().await;
    // A routine renewal: the organisation's seal is replaced.
    let seal = server.org_dir("hn/cm").join("sign.crt");
    revoke(&server, &seal, "superseded", None);
    server.tls.reload().unwrap();
    // New documents signed with the retired seal are refused…
    let late = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    assert_code(
        late.submit(&server, &server.client("hn/cm")).await,
        "signature_revoked",
    );
    // …but the commune that had not fetched the directive yet still can, and is told why.
    let work = tempfile::tempdir().unwrap();
    let out = fetch(&server, &doc, work.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(stdout.contains("reason superseded"), "{stdout}");
    assert!(
        stdout.contains("a routine revocation after acceptance does not affect this signature"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(work.path().join("phu-luc.bin")).unwrap(),
        [0u8, 1, 2, 3, 255]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_compromise_without_a_date_refuses_fetch_and_says_why() {
    let server = TestServer::start().await;
    let (doc, _) = accepted_document(&server).await;
    next_second().await;
    let seal = server.org_dir("hn/cm").join("sign.crt");
    revoke(&server, &seal, "key-compromise", None);
    server.tls.reload().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = fetch(&server, &doc, work.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "fetch succeeded: {stderr}");
    assert!(stderr.contains("reason keyCompromise"), "{stderr}");
    assert!(
        stderr.contains("no signature made with its key can be trusted"),
        "{stderr}"
    );
    // Nothing was written.
    assert!(!work.path().join("phu-luc.bin").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn key_compromise_is_judged_from_its_stated_compromise_time() {
    let server = TestServer::start().await;
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (before, accepted_before) = accepted_document(&server).await;
    next_second().await;
    // The key was stolen after the first document was accepted…
    let compromised = accepted_before + time::Duration::seconds(1);
    next_second().await;
    let (after, accepted_after) = accepted_document(&server).await;
    assert!(accepted_after > compromised);
    next_second().await;
    let person = server.org_dir("hn/cm").join("person.crt");
    revoke(
        &server,
        &person,
        "key-compromise",
        Some(&rfc3339(compromised)),
    );
    server.tls.reload().unwrap();
    // …so the first stays trusted, and the recipient is told of the revocation…
    let work = tempfile::tempdir().unwrap();
    let out = fetch(&server, &before, &work.path().join("before"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reason keyCompromise"), "{stdout}");
    assert!(
        stdout.contains("invalid since") && stdout.contains("so this signature stands"),
        "{stdout}"
    );
    // …and the one accepted after the stated compromise time is refused.
    let out = fetch(&server, &after, &work.path().join("after"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "fetch succeeded: {stderr}");
    assert!(
        stderr.contains("the CA states it was invalid since"),
        "{stderr}"
    );
}

/// The serials listed in `/v1/crls`, as the client sees them.
async fn served_serials(server: &TestServer) -> Vec<Vec<u8>> {
    let crls: congvan::api::CrlsResponse = server
        .client("hn/cm/chuc-son")
        .get_json("/v1/crls")
        .await
        .unwrap();
    let mut serials = Vec::new();
    for text in &crls.crls {
        for der in CertificateRevocationListDer::pem_slice_iter(text.as_bytes()) {
            let der = der.unwrap();
            let (_, crl) = CertificateRevocationList::from_der(&der).unwrap();
            serials.extend(
                crl.iter_revoked_certificates()
                    .map(|e| e.raw_serial().to_vec()),
            );
        }
    }
    serials
}

#[tokio::test(flavor = "multi_thread")]
async fn submission_is_refused_as_soon_as_crls_list_the_serial() {
    // The file watcher's interval is what used to leave the gap: `/v1/crls` read the new
    // file from disk at once while signatures were judged by the old one until the next
    // check. A long interval makes that gap impossible to miss.
    let server = TestServer::start_with(|config| {
        config.tls.crl_check_interval = Duration::from_secs(3);
    })
    .await;
    let seal = server.org_dir("hn/cm").join("sign.crt");
    let serial = {
        let der = congvan::pki::pem::read_certs(&seal).unwrap().remove(0);
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
        cert.raw_serial().to_vec()
    };
    assert!(!served_serials(&server).await.contains(&serial));
    revoke(&server, &seal, "key-compromise", None);
    // Poll as a client would; the moment the serial is listed, submit with it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if served_serials(&server).await.contains(&serial) {
            let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
            assert_code(
                doc.submit(&server, &server.client("hn/cm")).await,
                "signature_revoked",
            );
            break;
        }
        assert!(Instant::now() < deadline, "the serial was never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
