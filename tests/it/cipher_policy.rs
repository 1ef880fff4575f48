//! The cipher's legal standing: "Tối mật" and "Tuyệt mật" only with a cipher declared
//! certified, "Mật" with the uncertified bundled cipher only where the operator allowed it,
//! and every document sealed with an uncertified cipher marked wherever it is shown.

use std::process::Command;

use congvan::client::ClientError;
use congvan::client::send::SendRequest;
use congvan::config::ServerConfig;
use congvan::document::manifest::Classification;
use serde_json::json;

use crate::classified::{classified_doc, seal_for};
use crate::support::{STAND_IN_CIPHER, TestServer, assert_code};

fn request(level: Classification, file: &std::path::Path) -> SendRequest {
    SendRequest {
        to: vec!["hn/cm/chuc-son".parse().unwrap()],
        classification: level,
        ..SendRequest::new(
            "QĐ",
            &crate::support::next_number(),
            "QĐ/HU",
            "Về công tác bảo vệ bí mật (thử nghiệm)",
            vec![file.to_owned()],
        )
    }
}

fn secret_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("quyết định.txt");
    std::fs::write(&path, "NỘI DUNG BÍ MẬT").unwrap();
    path
}

/// A hand-made classified submission at `level` that bypasses the client's check.
async fn hand_made(
    server: &TestServer,
    level: Classification,
) -> Result<(u16, serde_json::Value), ClientError> {
    let recipients = ["hn/cm/chuc-son"];
    let mut doc = classified_doc("hn/cm", &recipients, seal_for(server, "hn/cm", &recipients));
    doc.manifest["classification"] = json!(level.name());
    doc.submit(server, &server.client("hn/cm")).await
}

/// `congvan <args> --profile <hn/cm> --server <url>`.
fn cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    let profile = server.pki.org_profile(&"hn/cm".parse().unwrap());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_congvan"));
    cmd.args(args)
        .arg("--profile")
        .arg(profile)
        .args(["--server", &server.url()]);
    tokio::task::block_in_place(|| cmd.output().unwrap())
}

async fn sent_count(server: &TestServer) -> usize {
    let page: congvan::api::ListPage = server.client("hn/cm").get_json("/v1/sent").await.unwrap();
    page.items.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uncertified_cipher_never_carries_toi_mat_or_tuyet_mat() {
    // The DEMO configuration: the bundled cipher, uncertified, "Mật" allowed.
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let file = secret_file(work.path());
    let district = server.client("hn/cm");
    let declared = district.directory().await.unwrap().seal;
    assert_eq!(declared.cipher, "openpgp");
    assert!(!declared.certified);

    for level in [Classification::ToiMat, Classification::TuyetMat] {
        // The sending client refuses before it seals anything.
        let err = district
            .send_document(&request(level, &file))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::NotPermitted(_)), "{err}");
        // A submission made by hand, bypassing the client: the server refuses it.
        assert_code(hand_made(&server, level).await, "cipher_not_certified");

        // The command line says why, in Vietnamese and English, and what to do.
        let out = cli(
            &server,
            &[
                "send",
                "--to",
                "hn/cm/chuc-son",
                "--type",
                "QĐ",
                "--number",
                "8",
                "--notation",
                "QĐ/HU",
                "--subject",
                "Thử",
                "--classification",
                level.label(),
                file.to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "refused exits 7: {stderr}");
        for needle in [
            level.label(),
            "337-QĐ/TW",
            "kênh cơ yếu",
            "cơ yếu) channel",
            "certified cipher module",
        ] {
            assert!(stderr.contains(needle), "{needle} missing: {stderr}");
        }
    }
    assert_eq!(sent_count(&server).await, 0, "nothing may have been sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_production_example_refuses_mat_and_the_demo_accepts_it_marked() {
    // The production example's [seal] section, applied to a test server.
    let production = ServerConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/congvan.production.toml"
    )))
    .unwrap();
    assert!(!production.seal.allow_uncertified_mat);
    let seal = production.seal.clone();
    let server = TestServer::start_with(|c| c.seal = seal).await;
    let work = tempfile::tempdir().unwrap();
    let file = secret_file(work.path());
    let err = server
        .client("hn/cm")
        .send_document(&request(Classification::Mat, &file))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Mật"), "{err}");
    assert!(matches!(err, ClientError::NotPermitted(_)), "{err}");
    assert_code(
        hand_made(&server, Classification::Mat).await,
        "cipher_not_certified",
    );
    assert_eq!(sent_count(&server).await, 0);
    // Unclassified documents are unaffected.
    server
        .client("hn/cm")
        .send_document(&request(Classification::Thuong, &file))
        .await
        .unwrap();

    // The DEMO configuration accepts "Mật", and every view marks the uncertified cipher.
    let server = TestServer::start().await;
    let sent = server
        .client("hn/cm")
        .send_document(&request(Classification::Mat, &file))
        .await
        .unwrap();
    let commune = server.client("hn/cm/chuc-son");
    let page: congvan::api::ListPage = commune.get_json("/v1/inbox").await.unwrap();
    let mark = page.items[0].sealed_with.clone().unwrap();
    assert_eq!((mark.cipher.as_str(), mark.certified), ("openpgp", false));
    let fetched = commune
        .fetch_document(&sent.id, &work.path().join("out"))
        .await
        .unwrap();
    assert!(!fetched.sealed_with.unwrap().certified);

    let out = cli(&server, &["sent"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[Mật]") && stdout.contains("uncertified cipher"),
        "{stdout}"
    );
    let profile = server.pki.auditor_profile(&"hn/cm".parse().unwrap());
    let report = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["audit", "report", "--format", "csv", "--profile"])
            .arg(profile)
            .args(["--server", &server.url()])
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&report.stdout);
    assert!(
        stdout.starts_with("recipient,") && stdout.contains(",mat,true"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cipher_declared_certified_carries_every_level() {
    let server = TestServer::start_certified().await;
    let work = tempfile::tempdir().unwrap();
    let file = secret_file(work.path());
    let district = server.client("hn/cm");
    let declared = district.directory().await.unwrap().seal;
    assert_eq!(declared.cipher, STAND_IN_CIPHER);
    assert!(declared.certified);
    for level in [
        Classification::Mat,
        Classification::ToiMat,
        Classification::TuyetMat,
    ] {
        let sent = district
            .send_document(&request(level, &file))
            .await
            .unwrap();
        let fetched = server
            .client("hn/cm/chuc-son")
            .fetch_document(&sent.id, &work.path().join(level.name()))
            .await
            .unwrap();
        assert_eq!(fetched.manifest.classification, level);
        assert!(fetched.sealed_with.unwrap().certified);
    }
    // A client that does not carry the declared module says so instead of sealing.
    let plain = congvan::client::Client::new(&server.org_profile("hn/cm"), &server.url()).unwrap();
    let err = plain
        .send_document(&request(Classification::Mat, &file))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(STAND_IN_CIPHER), "{err}");
}

#[test]
fn a_configuration_never_declares_the_bundled_cipher_certified() {
    let text = congvan::config::EMBEDDED_SERVER_CONFIG.replace(
        "certified = false",
        "certified = true\ncertificate = \"GCN giả\"",
    );
    let err = ServerConfig::parse(&text, std::path::Path::new("/"), "x").unwrap_err();
    assert!(err.to_string().contains("never declares it"), "{err}");
}
