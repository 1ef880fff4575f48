//! The TLS audit: the real `testssl` (testssl.sh, Debian package) against a running server.
//! Only TLS 1.3, only strong AEAD suites with forward secrecy, no session resumption, and a
//! client certificate demanded (testssl's own openssl cannot complete a connection).

use std::process::Command;

use crate::support::{TestServer, require};

#[tokio::test(flavor = "multi_thread")]
async fn testssl_finds_only_tls13_strong_ciphers_and_a_required_client_certificate() {
    if !require("testssl") {
        return;
    }
    let server = TestServer::start().await;
    let json = server.dir.path().join("testssl.json");
    let out = tokio::task::block_in_place(|| {
        Command::new("testssl")
            .args(["--quiet", "--color", "0", "--warnings", "off", "--add-ca"])
            .arg(server.pki.root_cert())
            .arg("--jsonfile")
            .arg(&json)
            .args(["-p", "-s", "-S", "-f", "-U"])
            .arg(server.addr.to_string())
            .output()
            .unwrap()
    });
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "testssl wrote no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let finding = |id: &str| -> String {
        findings
            .iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["finding"].as_str())
            .unwrap_or_else(|| panic!("testssl reported no {id}"))
            .to_owned()
    };
    for id in ["SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2"] {
        assert!(
            finding(id).starts_with("not offered"),
            "{id}: {}",
            finding(id)
        );
    }
    assert!(
        finding("TLS1_3").starts_with("offered"),
        "{}",
        finding("TLS1_3")
    );
    for id in [
        "cipherlist_NULL",
        "cipherlist_aNULL",
        "cipherlist_EXPORT",
        "cipherlist_LOW",
        "cipherlist_3DES_IDEA",
        "cipherlist_AVERAGE",
    ] {
        assert!(
            finding(id).starts_with("not offered"),
            "{id}: {}",
            finding(id)
        );
    }
    assert_eq!(finding("cipherlist_STRONG"), "offered");
    assert_eq!(finding("PFS"), "offered");
    assert_eq!(finding("sessionresumption_ticket"), "not supported");
    // The server sends a CertificateRequest (naming its trust anchors); testssl has no
    // certificate, so none of its connections reached a handler (checked below).
    assert!(finding("TLS_extensions").contains("certificate authorities"));
    assert!(
        server
            .metrics
            .handshakes_refused
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    // No vulnerability finding above LOW, other than the DEMO certificate's missing
    // revocation pointers.
    let serious: Vec<String> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("MEDIUM" | "HIGH" | "CRITICAL")))
        .filter(|f| f["id"] != "cert_revocation")
        .map(|f| format!("{}: {}", f["id"], f["finding"]))
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
    assert_eq!(
        server.metrics.requests_total(),
        0,
        "testssl must not reach a handler"
    );
}
