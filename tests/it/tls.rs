//! The TLS front door: who gets in, who is refused at the handshake, and what they see.

use std::process::Command;
use std::time::Duration;

use congvan::pki::demo::{Ca, LeafKind, LeafSpec};
use time::OffsetDateTime;

use crate::support::{TestServer, raw_get, require, tls_client_config};

#[tokio::test]
async fn whoami_answers_the_organisation_of_the_certificate() {
    let server = TestServer::start().await;
    let me: serde_json::Value = server
        .client("hn/cm/chuc-son")
        .get_json("/v1/whoami")
        .await
        .unwrap();
    assert_eq!(me["kind"], "org");
    assert_eq!(me["id"], "hn/cm/chuc-son");
    assert_eq!(me["uri"], "urn:congvan:org:hn/cm/chuc-son");
    assert_eq!(me["name"], "Đảng ủy thị trấn Chúc Sơn");
    assert_eq!(me["status"]["state"], "active");
    assert_eq!(
        me["certificate"]["fingerprint_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
}

#[tokio::test]
async fn whoami_answers_the_auditor_scope() {
    let server = TestServer::start().await;
    let profile = server.auditor_profile("hn/cm");
    let client = congvan::client::Client::new(&profile, &server.url()).unwrap();
    let me: serde_json::Value = client.get_json("/v1/whoami").await.unwrap();
    assert_eq!(me["kind"], "auditor");
    assert_eq!(me["id"], "hn/cm");
    assert_eq!(me["uri"], "urn:congvan:auditor:hn/cm");
    assert!(me.get("status").is_none());
}

#[tokio::test]
async fn merged_organisation_is_reported_with_its_successor() {
    let server = TestServer::start().await;
    let me: serde_json::Value = server
        .client("hn/cm/thuy-huong")
        .get_json("/v1/whoami")
        .await
        .unwrap();
    assert_eq!(me["status"]["state"], "merged");
    assert_eq!(me["status"]["into"], "hn/cm/chuc-son");
}

/// Asserts that a request with this client config is refused during the handshake with
/// the given TLS alert, and that nothing reached the router.
async fn assert_refused(
    server: &TestServer,
    config: std::sync::Arc<rustls::ClientConfig>,
    alert: &str,
) {
    let before_requests = server.metrics.requests_total();
    let before_refused = server
        .metrics
        .handshakes_refused
        .load(std::sync::atomic::Ordering::Relaxed);
    match raw_get(server.addr, config, "/v1/whoami").await {
        Ok(response) => panic!("expected a refused handshake, got a response: {response}"),
        Err(e) => assert!(e.contains(alert), "expected alert {alert}, got: {e}"),
    }
    // The server counts the refusal after it has sent the alert; give it a moment.
    for _ in 0..50 {
        let refused = server
            .metrics
            .handshakes_refused
            .load(std::sync::atomic::Ordering::Relaxed);
        if refused > before_refused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server
            .metrics
            .handshakes_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        before_refused + 1
    );
    assert_eq!(
        server.metrics.requests_total(),
        before_requests,
        "a request reached the router"
    );
}

#[tokio::test]
async fn connection_without_client_certificate_is_refused_at_the_handshake() {
    let server = TestServer::start().await;
    let config = tls_client_config(&server.pki.root_cert(), None);
    assert_refused(&server, config, "CertificateRequired").await;
}

/// A client config presenting a TLS certificate for `hn/cm` from a CA made on the spot.
fn foreign_ca_config(
    server: &TestServer,
    root_name: &str,
    issuing_name: &str,
) -> std::sync::Arc<rustls::ClientConfig> {
    let root = Ca::new_root(root_name).unwrap();
    let intermediate = root.new_intermediate(issuing_name).unwrap();
    let forged = intermediate
        .issue(&LeafSpec::new(LeafKind::TlsClient, "forged").uri("urn:congvan:org:hn/cm"))
        .unwrap();
    forged.write(server.dir.path(), "forged").unwrap();
    config_for(server, "forged")
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused_at_the_handshake() {
    let server = TestServer::start().await;
    let config = foreign_ca_config(&server, "Other Root CA", "Other Issuing CA");
    assert_refused(&server, config, "UnknownCA").await;
}

#[tokio::test]
async fn certificate_from_a_look_alike_ca_is_refused_at_the_handshake() {
    // Same names as the real CAs, different keys: the chain is found by name and then
    // fails on the signature.
    let server = TestServer::start().await;
    let config = foreign_ca_config(&server, "congvan DEMO Root CA", "congvan DEMO Issuing CA");
    assert_refused(&server, config, "DecryptError").await;
}

fn issue_from_demo_intermediate(server: &TestServer, spec: &LeafSpec, stem: &str) {
    let ca = Ca::load(
        &server.pki.intermediate_cert(),
        &server.pki.intermediate_key(),
        false,
    )
    .unwrap();
    ca.issue(spec)
        .unwrap()
        .write(server.dir.path(), stem)
        .unwrap();
}

fn config_for(server: &TestServer, stem: &str) -> std::sync::Arc<rustls::ClientConfig> {
    tls_client_config(
        &server.pki.root_cert(),
        Some((
            &server.dir.path().join(format!("{stem}.crt")),
            &server.dir.path().join(format!("{stem}.key")),
        )),
    )
}

#[tokio::test]
async fn expired_certificate_is_refused_at_the_handshake() {
    let server = TestServer::start().await;
    let mut spec = LeafSpec::new(LeafKind::TlsClient, "expired").uri("urn:congvan:org:hn/cm");
    spec.not_before = OffsetDateTime::now_utc() - time::Duration::days(30);
    spec.not_after = OffsetDateTime::now_utc() - time::Duration::days(1);
    issue_from_demo_intermediate(&server, &spec, "expired");
    assert_refused(
        &server,
        config_for(&server, "expired"),
        "CertificateExpired",
    )
    .await;
}

#[tokio::test]
async fn certificate_not_yet_valid_is_refused_at_the_handshake() {
    let server = TestServer::start().await;
    let mut spec = LeafSpec::new(LeafKind::TlsClient, "future").uri("urn:congvan:org:hn/cm");
    spec.not_before = OffsetDateTime::now_utc() + time::Duration::days(1);
    spec.not_after = OffsetDateTime::now_utc() + time::Duration::days(30);
    issue_from_demo_intermediate(&server, &spec, "future");
    assert_refused(&server, config_for(&server, "future"), "CertificateExpired").await;
}

#[tokio::test]
async fn document_signing_certificate_cannot_be_used_for_tls() {
    // Keys are separate per purpose: a signing certificate lacks EKU clientAuth.
    let server = TestServer::start().await;
    let dir = server.org_dir("hn/cm");
    let config = tls_client_config(
        &server.pki.root_cert(),
        Some((&dir.join("sign.crt"), &dir.join("sign.key"))),
    );
    assert_refused(&server, config, "UnsupportedCertificate").await;
}

#[tokio::test]
async fn revoked_certificate_is_refused_after_reload() {
    let server = TestServer::start().await;
    let client = server.client("hn/cm/xuan-mai");
    client.whoami().await.unwrap();

    let tls_cert = server.org_dir("hn/cm/xuan-mai").join("tls.crt");
    let revoked = congvan::pki::crl::revoke(&server.pki, &tls_cert, None).unwrap();
    assert!(revoked.newly_revoked);
    assert_eq!(revoked.crl_number, 2);
    server.tls.reload().unwrap();

    let dir = server.org_dir("hn/cm/xuan-mai");
    let config = tls_client_config(
        &server.pki.root_cert(),
        Some((&dir.join("tls.crt"), &dir.join("tls.key"))),
    );
    assert_refused(&server, config, "CertificateRevoked").await;
    // Other organisations are unaffected.
    server.client("hn/cm/chuc-son").whoami().await.unwrap();
}

#[tokio::test]
async fn changed_crl_file_is_picked_up_without_restart() {
    let server = TestServer::start().await;
    server.client("hn/cm/dong-son").whoami().await.unwrap();
    // Revoke through the real command, then wait for the server's file watcher.
    let tls_cert = server.org_dir("hn/cm/dong-son").join("tls.crt");
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["pki", "revoke", "--reason", "key-compromise", "--pki"])
        .arg(&server.pki.dir)
        .arg(&tls_cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked serial"));

    let dir = server.org_dir("hn/cm/dong-son");
    let config = tls_client_config(
        &server.pki.root_cert(),
        Some((&dir.join("tls.crt"), &dir.join("tls.key"))),
    );
    let mut last = String::new();
    for _ in 0..100 {
        match raw_get(server.addr, config.clone(), "/v1/whoami").await {
            Err(e) if e.contains("CertificateRevoked") => return,
            Err(e) => last = e,
            Ok(r) => last = r,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("revocation was not picked up within 5 s; last answer: {last}");
}

#[tokio::test]
async fn revoked_intermediate_refuses_every_certificate_it_issued() {
    let server = TestServer::start().await;
    congvan::pki::crl::revoke(&server.pki, &server.pki.intermediate_cert(), None).unwrap();
    server.tls.reload().unwrap();
    let dir = server.org_dir("hn/cm/chuc-son");
    let config = tls_client_config(
        &server.pki.root_cert(),
        Some((&dir.join("tls.crt"), &dir.join("tls.key"))),
    );
    assert_refused(&server, config, "CertificateRevoked").await;
}

#[tokio::test]
async fn unreadable_crl_fails_closed_until_fixed() {
    let server = TestServer::start().await;
    let crl = server.pki.intermediate_crl();
    let good = std::fs::read(&crl).unwrap();
    std::fs::write(
        &crl,
        b"-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n",
    )
    .unwrap();
    assert!(server.tls.reload().is_err());
    let client = server.client("hn/cm/chuc-son");
    let err = client.whoami().await.unwrap_err();
    assert!(
        matches!(err, congvan::client::ClientError::Transport { .. }),
        "{err}"
    );
    std::fs::write(&crl, good).unwrap();
    server.tls.reload().unwrap();
    client.whoami().await.unwrap();
}

#[tokio::test]
async fn certificate_for_an_unknown_organisation_gets_identity_unknown() {
    let server = TestServer::start().await;
    let spec = LeafSpec::new(LeafKind::TlsClient, "stranger").uri("urn:congvan:org:hn/xx");
    issue_from_demo_intermediate(&server, &spec, "stranger");
    let response = raw_get(server.addr, config_for(&server, "stranger"), "/v1/whoami")
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(
        response.contains(r#""code":"identity_unknown""#),
        "{response}"
    );
}

#[tokio::test]
async fn certificate_without_congvan_uri_gets_identity_invalid() {
    let server = TestServer::start().await;
    let spec = LeafSpec::new(LeafKind::TlsClient, "Huyện ủy Chương Mỹ");
    issue_from_demo_intermediate(&server, &spec, "nameless");
    let response = raw_get(server.addr, config_for(&server, "nameless"), "/v1/whoami")
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(
        response.contains(r#""code":"identity_invalid""#),
        "{response}"
    );
}

#[tokio::test]
async fn unknown_route_gets_a_json_404() {
    let server = TestServer::start().await;
    let err = server
        .client("hn")
        .get_json::<serde_json::Value>("/v1/nothing-here")
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("route_not_found"));
}

#[tokio::test]
async fn metrics_count_requests_and_refusals() {
    let server = TestServer::start().await;
    let config = tls_client_config(&server.pki.root_cert(), None);
    let _ = raw_get(server.addr, config, "/healthz").await;
    let dir = server.org_dir("hn");
    let config = tls_client_config(
        &server.pki.root_cert(),
        Some((&dir.join("tls.crt"), &dir.join("tls.key"))),
    );
    let response = raw_get(server.addr, config, "/metrics").await.unwrap();
    assert!(
        response.contains("congvan_tls_handshakes_refused_total 1"),
        "{response}"
    );
    assert!(
        response.contains("congvan_connections_accepted_total 2"),
        "{response}"
    );
}

#[tokio::test]
async fn graceful_stop_flushes_and_a_restart_reuses_the_data() {
    let server = TestServer::start().await;
    server.client("hn").whoami().await.unwrap();
    let (dir, pki) = server.stop().await;
    // sled holds an exclusive lock while open: a restart proves it was released.
    let server = TestServer::start_in(dir, pki).await;
    server.client("hn").whoami().await.unwrap();
}

// Outside tools: curl and openssl as clients.

fn curl(server: &TestServer, org: Option<&str>, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(server.pki.root_cert());
    if let Some(org) = org {
        let dir = server.org_dir(org);
        cmd.arg("--cert").arg(dir.join("tls.crt"));
        cmd.arg("--key").arg(dir.join("tls.key"));
    }
    cmd.args(extra);
    cmd.arg(format!("{}/v1/whoami", server.url()));
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_with_client_certificate_gets_the_org_id() {
    if !require("curl") {
        return;
    }
    let server = TestServer::start().await;
    let out = tokio::task::block_in_place(|| curl(&server, Some("hn/cm/chuc-son"), &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["id"], "hn/cm/chuc-son");
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_without_certificate_or_with_tls12_fails_at_the_handshake() {
    if !require("curl") {
        return;
    }
    let server = TestServer::start().await;
    let out = tokio::task::block_in_place(|| curl(&server, None, &[]));
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = tokio::task::block_in_place(|| {
        curl(&server, Some("hn/cm/chuc-son"), &["--tls-max", "1.2"])
    });
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("protocol version"), "{stderr}");
    assert_eq!(server.metrics.requests_total(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_s_client_negotiates_tls13_and_cannot_do_tls12() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    let dir = server.org_dir("hn/cm");
    let s_client = |extra: &[&str]| {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-connect",
            &server.addr.to_string(),
            "-servername",
            "localhost",
        ])
        .arg("-CAfile")
        .arg(server.pki.root_cert())
        .arg("-cert")
        .arg(dir.join("tls.crt"))
        .arg("-cert_chain")
        .arg(dir.join("tls.crt"))
        .arg("-key")
        .arg(dir.join("tls.key"))
        .args(["-verify_return_error", "-ign_eof"])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(
                b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            );
        }
        child.wait_with_output().unwrap()
    };
    let out = tokio::task::block_in_place(|| s_client(&[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Protocol  : TLSv1.3") || stdout.contains("TLSv1.3"),
        "{stdout}"
    );
    assert!(stdout.contains(r#""id":"hn/cm""#), "{stdout}");

    let out = tokio::task::block_in_place(|| s_client(&["-tls1_2"]));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(!all.contains(r#""id":"hn/cm""#), "{all}");
    assert!(
        all.contains("protocol version") || all.contains("alert"),
        "{all}"
    );
}
