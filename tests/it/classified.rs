//! Classified documents and the recipient's side: round trips for every classification,
//! the server's checks on ciphertext it cannot read, receipts, status, tampering.

use std::io::Write;
use std::process::Command;

use congvan::client::send::SendRequest;
use congvan::document::manifest::{Classification, Urgency};
use congvan::seal::{Cipher, OpenPgp};
use serde_json::json;
use uuid::Uuid;

use crate::support::{TestDoc, TestServer, assert_code, st};

fn send_request(
    to: &[&str],
    classification: Classification,
    files: Vec<std::path::PathBuf>,
) -> SendRequest {
    SendRequest {
        to: to.iter().map(|t| t.parse().unwrap()).collect(),
        urgency: Urgency::ThuongKhan,
        classification,
        place: "Chương Mỹ".into(),
        ..SendRequest::new(
            "QĐ",
            &crate::support::next_number(),
            "QĐ/HU",
            "Về phương án nhân sự (thử nghiệm)",
            files,
        )
    }
}

fn write_files(dir: &std::path::Path, secret: &str) -> Vec<std::path::PathBuf> {
    let a = dir.join("Quyết định 112.txt");
    std::fs::write(&a, secret).unwrap();
    let b = dir.join("phụ lục.bin");
    std::fs::write(
        &b,
        (0..70_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    vec![a, b]
}

/// Files under `dir` whose bytes contain `needle`.
fn grep(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn every_classification_round_trips_and_the_server_never_sees_plaintext() {
    // "Tối mật" and "Tuyệt mật" need a cipher declared certified: the stand-in module.
    let server = TestServer::start_certified().await;
    let work = tempfile::tempdir().unwrap();
    let district = server.client("hn/cm");
    for classification in [
        Classification::Thuong,
        Classification::Mat,
        Classification::ToiMat,
        Classification::TuyetMat,
    ] {
        let secret = format!(
            "NỘI DUNG {}: chỉ người nhận được đọc.",
            classification.name()
        );
        let files = write_files(work.path(), &secret);
        let mut request = send_request(
            &["hn/cm/chuc-son", "hn/cm/xuan-mai"],
            classification,
            files.clone(),
        );
        request.subject = format!("Trích yếu bí mật {}", classification.name());
        let sent = district.send_document(&request).await.unwrap();

        for recipient in ["hn/cm/chuc-son", "hn/cm/xuan-mai"] {
            let client = server.client(recipient);
            let out = work
                .path()
                .join(format!("{recipient}-{}", classification.name()).replace('/', "."));
            let fetched = client.fetch_document(&sent.id, &out).await.unwrap();
            assert_eq!(fetched.manifest.subject, request.subject);
            assert_eq!(fetched.signers.len(), 2);
            for (path, original) in fetched.files.iter().zip(&files) {
                assert_eq!(
                    std::fs::read(path).unwrap(),
                    std::fs::read(original).unwrap()
                );
                assert_eq!(path.file_name(), original.file_name());
            }
            let answer = client
                .acknowledge(&sent.id, st("03"), "Đã vào sổ")
                .await
                .unwrap();
            assert_eq!(answer.status, "03");
        }
        let status: congvan::api::StatusView = district
            .get_json(&format!("/v1/documents/{}/status", sent.id))
            .await
            .unwrap();
        assert!(
            status
                .recipients
                .iter()
                .all(|r| r.status.as_deref() == Some("03") && r.fetched_at.is_some())
        );

        let data = server.dir.path().join("data");
        if classification.is_classified() {
            assert!(
                grep(&data, &secret).is_empty(),
                "plaintext of a {} document in the data dir",
                classification.name()
            );
            assert!(
                grep(&data, &request.subject).is_empty(),
                "subject of a {} document in the data dir",
                classification.name()
            );
            // Nobody but the recipients can open it: not even the sender.
            let err = district
                .fetch_document(&sent.id, &work.path().join("sender"))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("not a recipient"), "{err}");
        } else {
            assert!(!grep(&data, &secret).is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn congvan_demo_plays_the_whole_story() {
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .arg("demo")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(decrypted)"), "{stdout}");
    assert!(
        stdout.contains("contains neither the subject nor the content"),
        "{stdout}"
    );
    // Seven communes acknowledged the directive, two the Mật decision.
    assert_eq!(stdout.matches(" 03 ").count(), 9, "{stdout}");
    // Then the 2025 reform on the live server: effects, the successors' archives, the
    // notice waiting at Tân Tiến offered to Xuân Mai and accepted there, and an audit
    // export that still verifies.
    for expected in [
        "- merge hn/cm/chuc-son (Đảng ủy thị trấn Chúc Sơn) into hn/chuong-my",
        "plan 2025-07-chuong-my in force and logged",
        "hn/chuong-my reads its predecessors' archive: 2 received",
        "hn/xuan-mai reads its predecessors' archive: 3 received",
        "status of 20-TB/HU at hn/cm/tan-tien: not fetched (offered to hn/xuan-mai)",
        "accepted it for hn/cm/tan-tien: số đến 1",
        "verifies after the reform",
        "root recomputed",
    ] {
        assert!(stdout.contains(expected), "{expected}\n{stdout}");
    }
}

/// A classified outer manifest from `sender` to `recipients` whose payload is `ciphertext`.
pub fn classified_doc(sender: &str, recipients: &[&str], ciphertext: Vec<u8>) -> TestDoc {
    let mut doc = TestDoc::new(sender, recipients);
    doc.manifest["classification"] = json!("mat");
    doc.manifest["subject"] = json!("");
    doc.manifest["attachments"] = json!([]);
    doc.manifest["payload"] = json!({
        "sha256": congvan::document::sha256_hex(&ciphertext),
        "size": ciphertext.len(),
        "encrypted": true,
    });
    doc.payload = ciphertext;
    doc
}

fn org_file(server: &TestServer, org: &str, name: &str) -> Vec<u8> {
    std::fs::read(server.org_dir(org).join(name)).unwrap()
}

pub fn seal_for(server: &TestServer, sender: &str, recipients: &[&str]) -> Vec<u8> {
    let certs: Vec<Vec<u8>> = recipients
        .iter()
        .map(|r| org_file(server, r, "openpgp.cert"))
        .collect();
    let mut out = Vec::new();
    OpenPgp::default()
        .seal(
            &mut &b"congvan-inner-v1\n"[..],
            &mut out,
            &certs,
            &org_file(server, sender, "openpgp.key"),
        )
        .unwrap();
    out
}

/// Submits `doc` and uploads its payload; returns the upload's result.
async fn submit_and_upload(
    server: &TestServer,
    doc: &TestDoc,
) -> Result<(u16, serde_json::Value), congvan::client::ClientError> {
    let client = server.client(doc.manifest["sender"].as_str().unwrap());
    let (status, _) = doc.submit(server, &client).await.unwrap();
    assert_eq!(status, 201);
    doc.upload(&client, doc.payload.clone()).await
}

#[tokio::test]
async fn server_checks_classified_payloads_without_decrypting() {
    use openpgp::serialize::stream::{Compressor, Encryptor, LiteralWriter, Message};
    use sequoia_openpgp as openpgp;

    let server = TestServer::start().await;
    let both = ["hn/cm/chuc-son", "hn/cm/xuan-mai"];

    // Exactly the recipients: accepted.
    let ok = classified_doc("hn/cm", &both, seal_for(&server, "hn/cm", &both));
    assert_eq!(submit_and_upload(&server, &ok).await.unwrap().0, 201);

    // A recipient missing, or an extra one.
    let missing = classified_doc(
        "hn/cm",
        &both,
        seal_for(&server, "hn/cm", &["hn/cm/chuc-son"]),
    );
    assert_code(
        submit_and_upload(&server, &missing).await,
        "recipient_set_mismatch",
    );
    let extra = classified_doc(
        "hn/cm",
        &both,
        seal_for(
            &server,
            "hn/cm",
            &["hn/cm/chuc-son", "hn/cm/xuan-mai", "hn/cm/dong-son"],
        ),
    );
    assert_code(
        submit_and_upload(&server, &extra).await,
        "recipient_set_mismatch",
    );

    // Plaintext, garbage, ASCII armour.
    for bytes in [
        b"NOI DUNG MAT".to_vec(),
        vec![0xffu8; 300],
        b"-----BEGIN PGP MESSAGE-----\n\nhQ==\n-----END PGP MESSAGE-----\n".to_vec(),
    ] {
        let doc = classified_doc("hn/cm", &both, bytes);
        assert_code(
            submit_and_upload(&server, &doc).await,
            "classified_not_encrypted",
        );
    }

    // A literal data packet (cleartext) and a compression bomb, never decompressed.
    let mut literal = Vec::new();
    {
        let m = Message::new(&mut literal);
        let mut m = LiteralWriter::new(m).build().unwrap();
        m.write_all(b"NOI DUNG MAT").unwrap();
        m.finalize().unwrap();
    }
    assert_code(
        submit_and_upload(&server, &classified_doc("hn/cm", &both, literal)).await,
        "classified_not_encrypted",
    );
    let mut bomb = Vec::new();
    {
        let m = Message::new(&mut bomb);
        let m = Compressor::new(m).build().unwrap();
        let mut m = LiteralWriter::new(m).build().unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            m.write_all(&zeros).unwrap();
        }
        m.finalize().unwrap();
    }
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    assert_code(
        submit_and_upload(&server, &classified_doc("hn/cm", &both, bomb)).await,
        "classified_not_encrypted",
    );

    // Password-encrypted: anyone with the password could read it.
    let mut with_password = Vec::new();
    {
        let m = Message::new(&mut with_password);
        let m = Encryptor::with_passwords(m, Some("mật khẩu"))
            .build()
            .unwrap();
        let mut m = LiteralWriter::new(m).build().unwrap();
        m.write_all(b"NOI DUNG MAT").unwrap();
        m.finalize().unwrap();
    }
    assert_code(
        submit_and_upload(&server, &classified_doc("hn/cm", &both, with_password)).await,
        "classified_not_encrypted",
    );

    // A valid message with bytes appended after the container.
    let mut trailing = seal_for(&server, "hn/cm", &both);
    trailing.extend_from_slice(&seal_for(&server, "hn/cm", &both));
    assert_code(
        submit_and_upload(&server, &classified_doc("hn/cm", &both, trailing)).await,
        "classified_not_encrypted",
    );

    // Every refused upload left the document waiting, and nothing in the blob store.
    let blobs = server.dir.path().join("data/blobs/sha256");
    let count = walk_count(&blobs);
    assert_eq!(count, 1, "only the accepted payload is stored");
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn recipient_without_a_registered_key_cannot_receive_classified_documents() {
    let server = TestServer::start().await;
    let keys = server.pki.server_dir().join("keys");
    std::fs::remove_file(keys.join("hn.cm.dong-son.openpgp.asc")).unwrap();
    // The registry notices the change within its check interval.
    let doc = classified_doc(
        "hn/cm",
        &["hn/cm/dong-son"],
        seal_for(&server, "hn/cm", &["hn/cm/chuc-son"]),
    );
    let client = server.client("hn/cm");
    let mut last = None;
    for _ in 0..100 {
        match doc.submit(&server, &client).await {
            Err(e) if e.api_code() == Some("recipient_no_encryption_key") => return,
            other => last = Some(format!("{other:?}")),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no refusal: {last:?}");
}

#[tokio::test]
async fn outsiders_get_404_and_receipts_are_checked() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let files = write_files(work.path(), "nội dung");
    let sent = server
        .client("hn/cm")
        .send_document(&send_request(
            &["hn/cm/chuc-son"],
            Classification::Mat,
            files,
        ))
        .await
        .unwrap();
    let id = sent.id;
    // An unrelated commune learns nothing, not even that the document exists.
    let outsider = server.client("hn/cm/xuan-mai");
    assert_code(
        outsider
            .get_json::<serde_json::Value>(&format!("/v1/documents/{id}"))
            .await,
        "document_not_found",
    );
    assert_code(
        outsider
            .get_stream(&format!("/v1/documents/{id}/payload"))
            .await,
        "document_not_found",
    );
    assert_code(
        outsider.acknowledge(&id, st("03"), "").await,
        "document_not_found",
    );
    let unknown = Uuid::now_v7();
    assert_code(
        outsider
            .get_json::<serde_json::Value>(&format!("/v1/documents/{unknown}"))
            .await,
        "document_not_found",
    );

    // The sender cannot acknowledge its own document; a recipient cannot see the status.
    let sender = server.client("hn/cm");
    assert_code(
        sender.acknowledge(&id, st("03"), "").await,
        "document_not_found",
    );
    let recipient = server.client("hn/cm/chuc-son");
    assert_code(
        recipient
            .get_json::<serde_json::Value>(&format!("/v1/documents/{id}/status"))
            .await,
        "role_forbidden",
    );

    // Hand-made receipts: wrong digest, a rejection without reason, signed by another org.
    let view: congvan::api::DocumentView = recipient
        .get_json(&format!("/v1/documents/{id}"))
        .await
        .unwrap();
    let receipt = |status: &str, note: &str, digest: &str| congvan::api::DeliveryReceipt {
        kind: congvan::api::DELIVERY_RECEIPT_TYPE.into(),
        document_id: id,
        recipient: "hn/cm/chuc-son".into(),
        manifest_sha256: digest.into(),
        payload_sha256: sent.receipt.payload_sha256.clone(),
        status: status.into(),
        time: congvan::api::now_rfc3339(),
        note: note.into(),
    };
    let sign_as = |org: &str, r: &congvan::api::DeliveryReceipt| {
        let dir = server.org_dir(org);
        let key =
            congvan::pki::signing::SigningKey::load(&dir.join("sign.crt"), &dir.join("sign.key"))
                .unwrap();
        let bytes = congvan::document::manifest::canonical_bytes(&serde_json::to_value(r).unwrap())
            .unwrap();
        congvan::document::DocSignature::raw(
            congvan::document::Role::Organization,
            key.algorithm(),
            &key.sign(&bytes).unwrap(),
            &key.chain,
        )
    };
    let post = |r: congvan::api::DeliveryReceipt, signer: &str| {
        let signature = sign_as(signer, &r);
        let recipient = recipient.clone();
        async move {
            recipient
                .post_json::<_, serde_json::Value>(
                    &format!("/v1/documents/{id}/receipts"),
                    &congvan::api::ReceiptRequest {
                        receipt: r,
                        signature,
                    },
                )
                .await
        }
    };
    assert_code(
        post(receipt("03", "", &"0".repeat(64)), "hn/cm/chuc-son").await,
        "receipt_invalid",
    );
    assert_code(
        post(receipt("02", "", &view.manifest_sha256), "hn/cm/chuc-son").await,
        "receipt_invalid",
    );
    assert_code(
        post(receipt("99", "", &view.manifest_sha256), "hn/cm/chuc-son").await,
        "receipt_invalid",
    );
    assert_code(
        post(receipt("03", "", &view.manifest_sha256), "hn/cm/xuan-mai").await,
        "signer_mismatch",
    );
    // The status rules want the payload fetched and its arrival (01) confirmed first.
    let mut payload = recipient
        .get_stream(&format!("/v1/documents/{id}/payload"))
        .await
        .unwrap();
    while payload.chunk().await.unwrap().is_some() {}
    let (status, _) = post(receipt("01", "", &view.manifest_sha256), "hn/cm/chuc-son")
        .await
        .unwrap();
    assert_eq!(status, 201);
    let (status, _) = post(
        receipt("02", "Sai thẩm quyền ban hành", &view.manifest_sha256),
        "hn/cm/chuc-son",
    )
    .await
    .unwrap();
    assert_eq!(status, 201);
    let status: congvan::api::StatusView = sender
        .get_json(&format!("/v1/documents/{id}/status"))
        .await
        .unwrap();
    assert_eq!(status.recipients[0].status.as_deref(), Some("02"));
    assert_eq!(
        status.recipients[0].note.as_deref(),
        Some("Sai thẩm quyền ban hành")
    );
    // Security officers in scope see the status too.
    let auditor =
        congvan::client::Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
    auditor
        .get_json::<serde_json::Value>(&format!("/v1/documents/{id}/status"))
        .await
        .unwrap();
}

#[tokio::test]
async fn inbox_lists_new_documents_until_they_are_acknowledged() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let district = server.client("hn/cm");
    let mut ids = Vec::new();
    for urgency in [Urgency::Thuong, Urgency::HoaToc, Urgency::Khan] {
        let mut request = send_request(
            &["hn/cm/truong-yen"],
            Classification::Thuong,
            write_files(work.path(), "x"),
        );
        request.urgency = urgency;
        ids.push(district.send_document(&request).await.unwrap().id);
    }
    let commune = server.client("hn/cm/truong-yen");
    let page: congvan::api::ListPage = commune.get_json("/v1/inbox?state=new").await.unwrap();
    assert_eq!(page.items.len(), 3);
    // A verified fetch confirms arrival (01), which takes the document off the new list.
    commune
        .fetch_document(&ids[1], &work.path().join("fetched"))
        .await
        .unwrap();
    let page: congvan::api::ListPage = commune.get_json("/v1/inbox?state=new").await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(!page.items.iter().any(|i| i.id == ids[1]));
    let page: congvan::api::ListPage = commune
        .get_json("/v1/inbox?state=all&limit=2")
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.next_before.is_some());
    assert_code(
        commune
            .get_json::<serde_json::Value>("/v1/inbox?state=old")
            .await,
        "request_invalid",
    );

    // `congvan inbox` sorts the most urgent first.
    let profile = server.pki.org_profile(&"hn/cm/truong-yen".parse().unwrap());
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["inbox", "--all", "--profile"])
            .arg(profile)
            .args(["--server", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("Hỏa tốc") && lines[1].contains("Khẩn") && lines[2].contains("Thường"),
        "{stdout}"
    );
}

#[tokio::test]
async fn tampering_with_stored_ciphertext_or_manifest_is_detected_by_fetch() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let district = server.client("hn/cm");
    let secret = district
        .send_document(&send_request(
            &["hn/cm/chuc-son"],
            Classification::Mat,
            write_files(work.path(), "mật"),
        ))
        .await
        .unwrap();
    let plain = district
        .send_document(&send_request(
            &["hn/cm/chuc-son"],
            Classification::Thuong,
            write_files(work.path(), "thường"),
        ))
        .await
        .unwrap();
    let recipient = server.client("hn/cm/chuc-son");

    // Flip one byte of each stored payload.
    for sent in [&secret, &plain] {
        let blob = server
            .dir
            .path()
            .join("data/blobs/sha256")
            .join(&sent.receipt.payload_sha256[..2])
            .join(&sent.receipt.payload_sha256);
        let mut bytes = std::fs::read(&blob).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&blob, bytes).unwrap();
        let out = work.path().join(format!("tampered-{}", sent.id));
        let err = recipient.fetch_document(&sent.id, &out).await.unwrap_err();
        assert!(err.to_string().contains("altered"), "{err}");
        // Nothing but the (empty) output directory is left behind.
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }

    // Rewrite the stored manifest (urgency raised) and its digest, with the server down.
    let fresh = district
        .send_document(&send_request(
            &["hn/cm/chuc-son"],
            Classification::Mat,
            write_files(work.path(), "mật 2"),
        ))
        .await
        .unwrap();
    let (dir, pki) = server.stop().await;
    {
        let db = sled::Config::new()
            .path(dir.path().join("data/db"))
            .segment_size(8 << 20)
            .open()
            .unwrap();
        let docs = db.open_tree("docs").unwrap();
        let mut record: serde_json::Value =
            serde_json::from_slice(&docs.get(fresh.id.as_bytes()).unwrap().unwrap()).unwrap();
        let manifest = record["manifest"]
            .as_str()
            .unwrap()
            .replace("\"urgency\":2", "\"urgency\":3");
        record["manifest_sha256"] = json!(congvan::document::sha256_hex(manifest.as_bytes()));
        record["manifest"] = json!(manifest);
        docs.insert(fresh.id.as_bytes(), serde_json::to_vec(&record).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let server = TestServer::start_in(dir, pki).await;
    let recipient = server.client("hn/cm/chuc-son");
    let err = recipient
        .fetch_document(&fresh.id, &work.path().join("tampered-manifest"))
        .await
        .unwrap_err();
    // The server's signed submission receipt names the original manifest's digest, and
    // fetch checks it (for the time to judge signatures at) before the signatures. The
    // store keeps that receipt as its signature alone and rebuilds the statement from the
    // record, so a rewritten digest shows as a receipt the server's key did not sign.
    assert!(
        err.to_string()
            .contains("submission receipt: server signature invalid"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_is_signed_and_printed() {
    let server = TestServer::start().await;
    let client = server.client("hn/cm/phung-chau");
    let directory = client.directory().await.unwrap();
    let cm = directory.orgs.iter().find(|o| o.id == "hn/cm").unwrap();
    assert_eq!(cm.name, "Huyện ủy Chương Mỹ");
    assert!(
        cm.encryption_cert
            .as_deref()
            .unwrap()
            .contains("BEGIN PGP PUBLIC KEY BLOCK")
    );
    assert!(
        cm.signing_certs
            .as_deref()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let merged = directory
        .orgs
        .iter()
        .find(|o| o.id == "hn/cm/thuy-huong")
        .unwrap();
    assert_eq!(merged.merged_into.as_deref(), Some("hn/cm/chuc-son"));
    assert!(merged.encryption_cert.is_none());

    let profile = server.pki.org_profile(&"hn/cm/phung-chau".parse().unwrap());
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["directory", "--profile"])
            .arg(&profile)
            .args(["--server", &server.url()])
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("    hn/cm/chuc-son  Đảng ủy thị trấn Chúc Sơn"),
        "{stdout}"
    );
    assert!(stdout.contains("[merged into hn/cm/chuc-son]"), "{stdout}");

    // A pinned server key that changes is refused loudly.
    let pinned = profile.parent().unwrap().join("state/server-keys.json");
    let text = std::fs::read_to_string(&pinned).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["keys"][1]["public_key"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    std::fs::write(&pinned, serde_json::to_vec(&value).unwrap()).unwrap();
    let err = congvan::client::Client::new(
        &congvan::config::ClientProfile::load(&profile).unwrap(),
        &server.url(),
    )
    .unwrap()
    .directory()
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("changed since it was pinned"),
        "{err}"
    );
}

#[tokio::test]
async fn fetch_never_overwrites_an_existing_file() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let files = write_files(work.path(), "bản gốc");
    let sent = server
        .client("hn/cm")
        .send_document(&send_request(
            &["hn/cm/chuc-son"],
            Classification::Thuong,
            files,
        ))
        .await
        .unwrap();
    let client = server.client("hn/cm/chuc-son");
    let out = work.path().join("out");
    let fetched = client.fetch_document(&sent.id, &out).await.unwrap();
    std::fs::write(&fetched.files[0], "the user's edits").unwrap();
    let err = client.fetch_document(&sent.id, &out).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&fetched.files[0]).unwrap(),
        "the user's edits"
    );
}
