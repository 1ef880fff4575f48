//! Signed submissions: the happy paths (raw signatures via `congvan send`, CMS signatures
//! made by the real `openssl`), every refusal with its documented code, durability.

use std::process::Command;

use congvan::api::{ListPage, SubmissionReceipt};
use congvan::document::Role;
use congvan::pki::demo::{Ca, LeafKind, LeafSpec};
use futures_util::StreamExt;
use serde_json::json;

use crate::support::{TestDoc, TestServer, assert_code, require};

/// Asserts that the document is not stored: its sender sees a 404.
async fn assert_not_stored(server: &TestServer, doc: &TestDoc) {
    let client = server.client(doc.manifest["sender"].as_str().unwrap());
    assert_code(
        client
            .get_json::<serde_json::Value>(&format!("/v1/documents/{}", doc.id()))
            .await,
        "document_not_found",
    );
}

/// Submits `doc` with `signatures` as its sender and expects `code`, leaving no trace.
async fn check_refused(
    server: &TestServer,
    doc: &TestDoc,
    signatures: &[congvan::document::DocSignature],
    code: &str,
) {
    let client = server.client(doc.manifest["sender"].as_str().unwrap());
    assert_code(
        client
            .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(signatures))
            .await,
        code,
    );
    assert_not_stored(server, doc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn congvan_send_delivers_a_two_signature_directive_to_the_communes() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Chỉ thị 12-CT-HU.txt");
    std::fs::write(
        &file,
        "Về đẩy mạnh chuyển đổi số trong hoạt động của Đảng.\n",
    )
    .unwrap();
    let profile = server.pki.org_profile(&"hn/cm".parse().unwrap());
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["send", "--profile"])
            .arg(&profile)
            .args(["--server", &server.url()])
            .args(["--to-children", "hn/cm", "--type", "CT", "--number", "12"])
            .args([
                "--notation",
                "CT/HU",
                "--urgency",
                "khan",
                "--steering",
                "2",
            ])
            .args([
                "--subject",
                "Về đẩy mạnh chuyển đổi số trong hoạt động của Đảng",
            ])
            .arg(&file)
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);

    // Every active commune of Chương Mỹ has it; merged and retired ones do not.
    for commune in [
        "hn/cm/chuc-son",
        "hn/cm/xuan-mai",
        "hn/cm/phung-chau",
        "hn/cm/truong-yen",
    ] {
        let inbox: ListPage = server.client(commune).get_json("/v1/inbox").await.unwrap();
        assert!(
            inbox.items.iter().any(|i| i.id.to_string() == id),
            "{commune}"
        );
        assert_eq!(inbox.items[0].urgency, 1);
    }
    let merged: ListPage = server
        .client("hn/cm/thuy-huong")
        .get_json("/v1/inbox")
        .await
        .unwrap();
    assert!(merged.items.is_empty());

    // Both signatures were verified and recorded; the receipt verifies with the server key.
    let view: congvan::api::DocumentView = server
        .client("hn/cm/chuc-son")
        .get_json(&format!("/v1/documents/{id}"))
        .await
        .unwrap();
    assert_eq!(view.state, "accepted");
    let roles: Vec<_> = view.signatures.iter().map(|s| s.role).collect();
    assert!(roles.contains(&Role::Person) && roles.contains(&Role::Organization));
    let keys: congvan::api::ServerKeysResponse = server
        .client("hn/cm/chuc-son")
        .get_json("/v1/server-keys")
        .await
        .unwrap();
    let receipt = view.receipt.unwrap();
    congvan::notary::verify(
        &receipt,
        &keys.keys,
        congvan::notary::KeyPurpose::Receipts,
        congvan::api::SUBMISSION_RECEIPT_TYPE,
    )
    .unwrap();
    let statement: SubmissionReceipt = serde_json::from_value(receipt.statement).unwrap();
    assert_eq!(statement.manifest_sha256, view.manifest_sha256);

    // The payload comes back byte for byte.
    let bytes = server
        .client("hn/cm/xuan-mai")
        .get_stream(&format!("/v1/documents/{id}/payload"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], std::fs::read(&file).unwrap().as_slice());

    // `congvan sent` lists it.
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["sent", "--profile"])
            .arg(&profile)
            .args(["--server", &server.url()])
            .output()
            .unwrap()
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
}

/// Signs the canonical bytes of `doc` with the real `openssl cms` and returns the DER.
fn openssl_cms(
    doc: &TestDoc,
    dir: &std::path::Path,
    stem: &str,
    intermediate: &std::path::Path,
) -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("manifest.json");
    let output = work.path().join("sig.der");
    std::fs::write(&input, doc.canonical()).unwrap();
    let out = Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-in",
        ])
        .arg(&input)
        .arg("-signer")
        .arg(dir.join(format!("{stem}.crt")))
        .arg("-inkey")
        .arg(dir.join(format!("{stem}.key")))
        .arg("-certfile")
        .arg(intermediate)
        .arg("-out")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(output).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cms_signatures_made_by_openssl_are_accepted() {
    if !require("openssl") {
        return;
    }
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let dir = server.org_dir("hn/cm");
    let intermediate = server.pki.intermediate_cert();
    let signatures = tokio::task::block_in_place(|| {
        vec![
            congvan::document::DocSignature::cms(
                Role::Organization,
                &openssl_cms(&doc, &dir, "sign", &intermediate),
            ),
            congvan::document::DocSignature::cms(
                Role::Person,
                &openssl_cms(&doc, &dir, "person", &intermediate),
            ),
        ]
    });
    let client = server.client("hn/cm");
    let (status, answer) = client
        .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(&signatures))
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(answer["state"], "awaiting_payload");
    let (status, _) = doc.upload(&client, doc.payload.clone()).await.unwrap();
    assert_eq!(status, 201);

    // A CMS signature over other bytes is refused.
    let mut other = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    other.manifest["subject"] = json!("Một văn bản khác");
    let mut sigs = signatures.clone();
    sigs[1] = congvan::document::DocSignature::cms(
        Role::Person,
        &tokio::task::block_in_place(|| openssl_cms(&doc, &dir, "person", &intermediate)),
    );
    let org_sig = tokio::task::block_in_place(|| openssl_cms(&other, &dir, "sign", &intermediate));
    sigs[0] = congvan::document::DocSignature::cms(Role::Organization, &org_sig);
    check_refused(&server, &other, &sigs, "signature_invalid").await;
}

#[tokio::test]
async fn identical_replay_returns_the_original_and_a_conflicting_one_is_refused() {
    let server = TestServer::start().await;
    let client = server.client("hn/cm");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let (status, first) = doc.submit(&server, &client).await.unwrap();
    assert_eq!(status, 201);
    // Same manifest, fresh (randomised ECDSA) signatures: the original answer.
    let (status, again) = doc.submit(&server, &client).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(first, again);

    let (status, uploaded) = doc.upload(&client, doc.payload.clone()).await.unwrap();
    assert_eq!(status, 201);
    let (status, re_uploaded) = doc.upload(&client, doc.payload.clone()).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(uploaded, re_uploaded);
    let (status, after) = doc.submit(&server, &client).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(after["state"], "accepted");
    assert_eq!(after["receipt"], uploaded["receipt"]);

    let mut conflicting = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    conflicting.manifest["id"] = doc.manifest["id"].clone();
    conflicting.manifest["subject"] = json!("Nội dung khác, cùng mã số");
    assert_code(conflicting.submit(&server, &client).await, "id_conflict");
}

#[tokio::test]
async fn tampered_signature_is_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let mut sigs = doc.signatures(&server);
    let mut raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &sigs[0].value).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    sigs[0].value = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw);
    check_refused(&server, &doc, &sigs, "signature_invalid").await;
    // Garbage instead of base64, and an algorithm congvan does not take.
    let mut sigs = doc.signatures(&server);
    sigs[0].value = "***".into();
    check_refused(&server, &doc, &sigs, "signature_malformed").await;
    let mut sigs = doc.signatures(&server);
    sigs[0].algorithm = Some("dsa-sha1".into());
    check_refused(&server, &doc, &sigs, "signature_unsupported").await;
}

#[tokio::test]
async fn tls_certificate_cannot_sign_documents() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let dir = server.org_dir("hn/cm");
    let sigs = vec![
        doc.raw_signature(Role::Organization, &dir, "tls"),
        doc.raw_signature(Role::Person, &dir, "person"),
    ];
    check_refused(&server, &doc, &sigs, "signature_wrong_usage").await;
}

fn issue_signing_cert(server: &TestServer, spec: &LeafSpec, stem: &str) -> std::path::PathBuf {
    let ca = Ca::load(
        &server.pki.intermediate_cert(),
        &server.pki.intermediate_key(),
        false,
    )
    .unwrap();
    let dir = server.dir.path().to_owned();
    ca.issue(spec).unwrap().write(&dir, stem).unwrap();
    dir
}

#[tokio::test]
async fn expired_signing_certificate_is_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let mut spec =
        LeafSpec::new(LeafKind::DocumentSigning, "Huyện ủy Chương Mỹ").uri("urn:congvan:org:hn/cm");
    spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let dir = issue_signing_cert(&server, &spec, "old-sign");
    let sigs = vec![
        doc.raw_signature(Role::Organization, &dir, "old-sign"),
        doc.raw_signature(Role::Person, &server.org_dir("hn/cm"), "person"),
    ];
    check_refused(&server, &doc, &sigs, "signature_expired").await;
}

#[tokio::test]
async fn revoked_signing_certificate_is_refused() {
    let server = TestServer::start().await;
    // The server remembers validated chains: accept one document first, so that the
    // person certificate's chain is remembered when it is revoked.
    let earlier = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let (status, _) = earlier
        .submit(&server, &server.client("hn/cm"))
        .await
        .unwrap();
    assert_eq!(status, 201);
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sigs = doc.signatures(&server);
    congvan::pki::crl::revoke(
        &server.pki,
        &server.org_dir("hn/cm").join("person.crt"),
        None,
    )
    .unwrap();
    server.tls.reload().unwrap();
    check_refused(&server, &doc, &sigs, "signature_revoked").await;
}

#[tokio::test]
async fn signer_without_a_crl_for_every_issuer_is_refused() {
    // Signing trust configured with the intermediate's CRL but not the root's: the
    // intermediate's own status is unknown, and unknown is refused.
    let server = TestServer::start_with(|config| {
        config
            .signing_crls
            .retain(|p| p.ends_with("intermediate.crl"));
    })
    .await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sigs = doc.signatures(&server);
    check_refused(&server, &doc, &sigs, "signature_revocation_unknown").await;
}

#[tokio::test]
async fn signing_certificate_from_a_foreign_ca_is_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let root = Ca::new_root("Other Root").unwrap();
    let ca = root.new_intermediate("Other Issuing").unwrap();
    let spec =
        LeafSpec::new(LeafKind::DocumentSigning, "Huyện ủy Chương Mỹ").uri("urn:congvan:org:hn/cm");
    ca.issue(&spec)
        .unwrap()
        .write(server.dir.path(), "foreign")
        .unwrap();
    let sigs = vec![
        doc.raw_signature(Role::Organization, server.dir.path(), "foreign"),
        doc.raw_signature(Role::Person, &server.org_dir("hn/cm"), "person"),
    ];
    check_refused(&server, &doc, &sigs, "signature_untrusted").await;
}

#[tokio::test]
async fn signing_certificate_without_congvan_identity_is_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let dir = issue_signing_cert(
        &server,
        &LeafSpec::new(LeafKind::DocumentSigning, "Huyện ủy Chương Mỹ"),
        "anon",
    );
    let sigs = vec![
        doc.raw_signature(Role::Organization, &dir, "anon"),
        doc.raw_signature(Role::Person, &server.org_dir("hn/cm"), "person"),
    ];
    check_refused(&server, &doc, &sigs, "signature_no_identity").await;
}

#[tokio::test]
async fn missing_or_doubled_roles_are_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sigs = doc.signatures(&server);
    check_refused(&server, &doc, &sigs[..1], "signature_role_missing").await;
    let dir = server.org_dir("hn/cm");
    let twice = vec![
        doc.raw_signature(Role::Organization, &dir, "sign"),
        doc.raw_signature(Role::Organization, &dir, "person"),
    ];
    check_refused(&server, &doc, &twice, "signature_role_duplicate").await;
    let same_cert = vec![
        doc.raw_signature(Role::Organization, &dir, "sign"),
        doc.raw_signature(Role::Person, &dir, "sign"),
    ];
    check_refused(&server, &doc, &same_cert, "signature_role_duplicate").await;
}

#[tokio::test]
async fn signer_of_another_organisation_is_refused() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sigs = vec![
        doc.raw_signature(
            Role::Organization,
            &server.org_dir("hn/cm/chuc-son"),
            "sign",
        ),
        doc.raw_signature(Role::Person, &server.org_dir("hn/cm"), "person"),
    ];
    check_refused(&server, &doc, &sigs, "signer_mismatch").await;
}

#[tokio::test]
async fn tls_identity_must_be_the_sender() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    // Correctly signed by hn/cm, but submitted over chuc-son's connection.
    let client = server.client("hn/cm/chuc-son");
    assert_code(doc.submit(&server, &client).await, "sender_mismatch");
    assert_not_stored(&server, &doc).await;
    // Security officers do not send.
    let auditor =
        congvan::client::Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
    assert_code(doc.submit(&server, &auditor).await, "role_forbidden");
}

#[tokio::test]
async fn malformed_manifests_are_refused_with_specific_codes() {
    let server = TestServer::start().await;
    type Mutation = Box<dyn Fn(&mut TestDoc)>;
    let cases: Vec<(&str, Mutation)> = vec![
        // "Chúc Sơn" with combining accents (NFD).
        (
            "manifest_not_nfc",
            Box::new(|d| d.manifest["subject"] = json!("Chu\u{0301}c So\u{031b}n")),
        ),
        (
            "manifest_unknown_field",
            Box::new(|d| d.manifest["colour"] = json!("đỏ")),
        ),
        (
            "manifest_invalid",
            Box::new(|d| d.manifest["urgency"] = json!(9)),
        ),
        (
            "manifest_invalid",
            Box::new(|d| d.manifest["id"] = json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8")),
        ),
        (
            "manifest_invalid",
            Box::new(|d| d.manifest["subject"] = json!("x".repeat(501))),
        ),
        (
            "manifest_invalid",
            Box::new(|d| d.manifest["payload"]["size"] = json!(1)),
        ),
        (
            "manifest_invalid",
            Box::new(|d| d.manifest["attachments"][0]["name"] = json!("../../etc/passwd")),
        ),
        (
            "manifest_invalid",
            Box::new(|d| d.manifest["urgency"] = json!(4)),
        ),
        (
            "manifest_invalid",
            Box::new(|d| d.manifest["recipients"] = json!(["hn/cm/chuc-son", "hn/cm/chuc-son"])),
        ),
        (
            "doc_type_unknown",
            Box::new(|d| d.manifest["doc_type"] = json!("XYZ")),
        ),
        (
            // A classified outer manifest must not reveal its subject.
            "manifest_invalid",
            Box::new(|d| {
                d.manifest["classification"] = json!("mat");
                d.manifest["attachments"] = json!([]);
                d.manifest["payload"]["encrypted"] = json!(true);
            }),
        ),
    ];
    for (code, mutate) in cases {
        let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
        mutate(&mut doc);
        let sigs = doc.signatures(&server);
        check_refused(&server, &doc, &sigs, code).await;
    }
}

#[tokio::test]
async fn oversize_and_non_json_bodies_are_refused() {
    let server = TestServer::start().await;
    let client = server.client("hn/cm");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sigs = doc.signatures(&server);
    // A manifest over 64 KiB (padded with whitespace, which JSON allows).
    let text = serde_json::to_string(&doc.manifest).unwrap();
    let padded = format!("{}{}{}", &text[..1], " ".repeat(70 * 1024), &text[1..]);
    let body = format!(
        r#"{{"manifest":{padded},"signatures":{}}}"#,
        serde_json::to_string(&sigs).unwrap()
    );
    let raw: Box<serde_json::value::RawValue> =
        serde_json::value::RawValue::from_string(body).unwrap();
    assert_code(
        client
            .post_json::<_, serde_json::Value>("/v1/documents", &raw)
            .await,
        "manifest_too_large",
    );
    // A body over the limit (512 KiB plus an inline payload of 1 MiB in base64).
    let huge = json!({"manifest": doc.manifest, "signatures": sigs, "x": "a".repeat(2 << 20)});
    assert_code(
        client
            .post_json::<_, serde_json::Value>("/v1/documents", &huge)
            .await,
        "body_too_large",
    );
    // Not the request's shape.
    assert_code(
        client
            .post_json::<_, serde_json::Value>("/v1/documents", &json!([1, 2]))
            .await,
        "request_invalid",
    );
    assert_not_stored(&server, &doc).await;
}

#[tokio::test]
async fn routing_policy_and_recipient_status_are_enforced() {
    let server = TestServer::start().await;
    let cases = [
        ("hn/cm/dong-son", vec!["hn/cm/truong-yen"], "routing_denied"),
        (
            "hn/cm",
            vec!["hn/cm/chuc-son", "hn/xx"],
            "recipient_unknown",
        ),
        ("hn/cm", vec!["hn/cm/ngoc-son"], "recipient_inactive"),
        ("hn/cm", vec!["hn/cm/thuy-huong"], "recipient_inactive"),
    ];
    for (sender, recipients, code) in cases {
        let doc = TestDoc::new(sender, &recipients);
        let sigs = doc.signatures(&server);
        check_refused(&server, &doc, &sigs, code).await;
    }
    // A commune may report up to the city, past its district.
    let doc = TestDoc::new("hn/cm/dong-son", &["hn"]);
    let (status, _) = doc
        .submit(&server, &server.client("hn/cm/dong-son"))
        .await
        .unwrap();
    assert_eq!(status, 201);
    // A merged committee can no longer send.
    let doc = TestDoc::new("hn/cm/thuy-huong", &["hn/cm"]);
    let sigs = doc.signatures(&server);
    check_refused(&server, &doc, &sigs, "sender_inactive").await;
}

#[tokio::test]
async fn payload_must_match_the_manifest() {
    let server = TestServer::start().await;
    let client = server.client("hn/cm");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.submit(&server, &client).await.unwrap();

    let mut wrong = doc.payload.clone();
    wrong[0] ^= 0xff;
    assert_code(doc.upload(&client, wrong).await, "payload_digest_mismatch");
    let mut longer = doc.payload.clone();
    longer.push(0);
    assert_code(doc.upload(&client, longer).await, "payload_size_mismatch");
    // A body longer than promised, without a Content-Length to warn us.
    let longer: Vec<u8> = doc
        .payload
        .iter()
        .copied()
        .chain(std::iter::repeat_n(7u8, 100_000))
        .collect();
    let stream = futures_util::stream::iter(
        longer
            .chunks(1000)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let err = client
        .put_stream::<serde_json::Value>(
            &format!("/v1/documents/{}/payload", doc.id()),
            reqwest::Body::wrap_stream(stream),
            doc.payload.len() as u64,
        )
        .await;
    // The server stops reading once the body outgrows the manifest; depending on timing
    // the client sees the refusal or a reset connection, never a success.
    assert!(err.is_err());
    // Someone else's document looks like no document.
    assert_code(
        doc.upload(&server.client("hn/cm/chuc-son"), doc.payload.clone())
            .await,
        "document_not_found",
    );

    // Nothing half-written is visible: still awaiting its payload, no temporary files.
    let view: serde_json::Value = client
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    assert_eq!(view["state"], "awaiting_payload");
    assert_code(
        client
            .get_stream(&format!("/v1/documents/{}/payload", doc.id()))
            .await,
        "payload_not_available",
    );
    assert_eq!(
        std::fs::read_dir(server.dir.path().join("data/tmp"))
            .unwrap()
            .count(),
        0
    );
    let (status, _) = doc.upload(&client, doc.payload.clone()).await.unwrap();
    assert_eq!(status, 201);
}

#[tokio::test]
async fn truncated_upload_is_refused_and_leaves_nothing_behind() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let client = server.client("hn/cm");
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.set_payload(vec![42u8; 100_000]);
    doc.submit(&server, &client).await.unwrap();

    let dir = server.org_dir("hn/cm");
    let config = crate::support::tls_client_config(
        &server.pki.root_cert(),
        Some((&dir.join("tls.crt"), &dir.join("tls.key"))),
    );
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = connector
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let head = format!(
        "PUT /v1/documents/{}/payload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n",
        doc.id()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&[42u8; 40_000]).await.unwrap();
    // Half-close: the request ends 60 000 bytes short.
    tls.shutdown().await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("upload_incomplete"), "{response}");

    let view: serde_json::Value = client
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    assert_eq!(view["state"], "awaiting_payload");
    assert_eq!(
        std::fs::read_dir(server.dir.path().join("data/tmp"))
            .unwrap()
            .count(),
        0
    );
    // The retry with the whole payload succeeds.
    let (status, _) = doc.upload(&client, doc.payload.clone()).await.unwrap();
    assert_eq!(status, 201);
}

#[tokio::test]
async fn documents_are_visible_to_sender_recipients_and_auditors_in_scope_only() {
    let server = TestServer::start().await;
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    let sender = server.client("hn/cm");
    doc.submit(&server, &sender).await.unwrap();
    doc.upload(&sender, doc.payload.clone()).await.unwrap();
    let path = format!("/v1/documents/{}", doc.id());
    for org in ["hn/cm", "hn/cm/chuc-son"] {
        server
            .client(org)
            .get_json::<serde_json::Value>(&path)
            .await
            .unwrap();
    }
    let auditor =
        congvan::client::Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
    auditor.get_json::<serde_json::Value>(&path).await.unwrap();
    assert_code(
        auditor.get_stream(&format!("{path}/payload")).await,
        "role_forbidden",
    );
    for org in ["hn/cm/xuan-mai", "hn"] {
        assert_code(
            server
                .client(org)
                .get_json::<serde_json::Value>(&path)
                .await,
            "document_not_found",
        );
        assert_code(
            server
                .client(org)
                .get_stream(&format!("{path}/payload"))
                .await,
            "document_not_found",
        );
    }
    assert_code(
        sender
            .get_json::<serde_json::Value>("/v1/documents/not-a-uuid")
            .await,
        "id_invalid",
    );
}

#[tokio::test]
async fn accepted_documents_survive_a_restart() {
    let server = TestServer::start().await;
    let client = server.client("hn/cm");
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son", "hn/cm/xuan-mai"]);
    doc.set_payload((0..300_000u32).map(|i| (i * 7) as u8).collect());
    doc.submit(&server, &client).await.unwrap();
    let (_, uploaded) = doc.upload(&client, doc.payload.clone()).await.unwrap();
    let (dir, pki) = server.stop().await;

    let server = TestServer::start_in(dir, pki).await;
    let view: serde_json::Value = server
        .client("hn/cm/chuc-son")
        .get_json(&format!("/v1/documents/{}", doc.id()))
        .await
        .unwrap();
    assert_eq!(view["state"], "accepted");
    assert_eq!(view["receipt"], uploaded["receipt"]);
    let bytes = server
        .client("hn/cm/xuan-mai")
        .get_stream(&format!("/v1/documents/{}/payload", doc.id()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], &doc.payload[..]);
    // The server keys are the same, so the old receipt still verifies.
    let keys: congvan::api::ServerKeysResponse = server
        .client("hn")
        .get_json("/v1/server-keys")
        .await
        .unwrap();
    let receipt: congvan::notary::Signed = serde_json::from_value(view["receipt"].clone()).unwrap();
    congvan::notary::verify(
        &receipt,
        &keys.keys,
        congvan::notary::KeyPurpose::Receipts,
        congvan::api::SUBMISSION_RECEIPT_TYPE,
    )
    .unwrap();
}

#[tokio::test]
async fn unusable_trust_material_fails_closed_even_on_open_connections() {
    let server = TestServer::start().await;
    let client = server.client("hn/cm");
    // Open a keep-alive connection, then break the CRL under it.
    client.whoami().await.unwrap();
    let crl = server.pki.intermediate_crl();
    let good = std::fs::read(&crl).unwrap();
    std::fs::write(&crl, b"garbage").unwrap();
    assert!(server.tls.reload().is_err());
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    assert_code(doc.submit(&server, &client).await, "unavailable");
    std::fs::write(&crl, good).unwrap();
    server.tls.reload().unwrap();
    let (status, _) = doc.submit(&server, &client).await.unwrap();
    assert_eq!(status, 201);
}

#[tokio::test]
async fn wrong_method_gets_a_json_405() {
    let server = TestServer::start().await;
    let client = server.client("hn/cm");
    assert_code(
        client.get_json::<serde_json::Value>("/v1/documents").await,
        "method_not_allowed",
    );
}

#[test]
fn every_documented_error_code_is_produced_by_a_test() {
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md")).unwrap();
    let mut tests = String::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it")).unwrap() {
        tests.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let mut codes = Vec::new();
    for line in api.lines() {
        // Table rows: | status | `code` | meaning | what to do |, where the status is a
        // number, or `client` for refusals the client makes itself (key endorsements).
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 && (cells[1].parse::<u16>().is_ok() || cells[1] == "client") {
            codes.push(cells[2].trim_matches('`').to_owned());
        }
    }
    assert!(codes.len() > 20, "{codes:?}");
    let untested: Vec<_> = codes
        .iter()
        // `internal` is the one code no correct server produces on purpose.
        .filter(|c| *c != "internal" && !tests.contains(&format!("\"{c}\"")))
        .collect();
    assert!(
        untested.is_empty(),
        "documented codes no test produces: {untested:?}"
    );
}

/// Peak resident set size of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Deterministic bytes for chunk `i` of a large test payload.
fn big_chunk(i: u64, chunk: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..chunk)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn uploading_512_mib_keeps_server_memory_flat() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: u64 = 512;
    let (dir, pki) = crate::support::fresh_pki();
    let data = dir.path().join("data");
    let (mut child, addr, _) = tokio::task::block_in_place(|| {
        crate::cli::spawn_server(
            dir.path(),
            &[
                "--config",
                pki.server_config().to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--data",
                data.to_str().unwrap(),
            ],
        )
    });
    let port = addr.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");
    let profile =
        congvan::config::ClientProfile::load(&pki.org_profile(&"hn/cm".parse().unwrap())).unwrap();
    let client = congvan::client::Client::new(&profile, &url).unwrap();
    client.whoami().await.unwrap();
    let baseline = peak_rss_kib(child.id());

    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    for i in 0..CHUNKS {
        hasher.update(&big_chunk(i, CHUNK));
    }
    let sha = congvan::pki::identity::hex(hasher.finish().as_ref());
    let size = CHUNK as u64 * CHUNKS;
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.manifest["attachments"] = json!([{"name": "lưu trữ.bin", "media_type": "application/octet-stream", "size": size, "sha256": sha}]);
    doc.manifest["payload"] = json!({"sha256": sha, "size": size, "encrypted": false});
    let dir_hn = pki.org_dir(&"hn/cm".parse().unwrap());
    let sigs = vec![
        doc.raw_signature(Role::Organization, &dir_hn, "sign"),
        doc.raw_signature(Role::Person, &dir_hn, "person"),
    ];
    let (status, _) = client
        .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(&sigs))
        .await
        .unwrap();
    assert_eq!(status, 201);
    let stream = futures_util::stream::iter(0..CHUNKS)
        .map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(big_chunk(i, CHUNK))));
    let (status, _) = client
        .put_stream::<serde_json::Value>(
            &format!("/v1/documents/{}/payload", doc.id()),
            reqwest::Body::wrap_stream(stream),
            size,
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let peak = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let grown_mib = (peak.saturating_sub(baseline)) / 1024;
    eprintln!(
        "server peak RSS: {baseline} KiB before, {peak} KiB after a 512 MiB upload (+{grown_mib} MiB)"
    );
    assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
}
