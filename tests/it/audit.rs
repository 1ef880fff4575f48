//! The delivery log and the security officer's tools: proofs of submission, delivery and
//! acknowledgement; consistency over time; tampering with the store caught.

use std::path::Path;
use std::process::Command;

use congvan::client::Client;
use congvan::client::send::SendRequest;
use congvan::document::manifest::{Classification, Urgency};
use congvan::ledger::Event;
use uuid::Uuid;

use crate::support::{TestServer, assert_code, st};

const COMMUNES: [&str; 3] = ["hn/cm/chuc-son", "hn/cm/xuan-mai", "hn/cm/phung-chau"];

fn auditor(server: &TestServer) -> Client {
    Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap()
}

/// The district sends a directive to three communes; each fetches and acknowledges.
async fn directive(server: &TestServer, work: &Path, classification: Classification) -> Uuid {
    let file = work.join(format!("chi-thi-{}.txt", Uuid::now_v7()));
    std::fs::write(&file, "Chỉ thị về chuyển đổi số").unwrap();
    let request = SendRequest {
        to: COMMUNES.iter().map(|c| c.parse().unwrap()).collect(),
        urgency: Urgency::Khan,
        classification,
        steering: 2,
        ..SendRequest::new(
            "CT",
            &crate::support::next_number(),
            "CT/HU",
            "Về chuyển đổi số",
            vec![file],
        )
    };
    let sent = server
        .client("hn/cm")
        .send_document(&request)
        .await
        .unwrap();
    for commune in COMMUNES {
        let client = server.client(commune);
        client
            .fetch_document(
                &sent.id,
                &work.join(format!("{commune}-{}", sent.id).replace('/', ".")),
            )
            .await
            .unwrap();
        let answer = client.acknowledge(&sent.id, st("03"), "").await.unwrap();
        assert!(answer.log_index > sent.receipt.log_index);
    }
    sent.id
}

#[tokio::test]
async fn a_security_officer_proves_submission_delivery_and_acknowledgement() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let id = directive(&server, work.path(), Classification::Mat).await;

    let (check, events) = auditor(&server).prove_document(&id).await.unwrap();
    assert!(check.current.size >= 7);
    let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(&e.event)).count();
    assert_eq!(count(|e| matches!(e, Event::Submitted { .. })), 1);
    assert_eq!(count(|e| matches!(e, Event::Delivered { .. })), 3);
    assert_eq!(
        count(|e| matches!(e, Event::Receipt { status, .. } if status == "03")),
        3
    );
    for commune in COMMUNES {
        assert!(
            events
                .iter()
                .any(|e| matches!(&e.event, Event::Receipt { actor, .. } if actor == commune))
        );
    }
    // No event of a classified document carries its subject.
    for e in &events {
        let leaf = e.event.leaf().unwrap();
        assert!(!String::from_utf8_lossy(&leaf).contains("Về chuyển đổi số"));
    }

    // A commune sees its own events, and is refused a proof of another commune's.
    let commune = server.client("hn/cm/chuc-son");
    let size = check.current.size;
    let visible = commune.visible_entries(size).await.unwrap();
    let others: Vec<_> = visible
        .iter()
        .filter_map(|e| Event::from_leaf(e.leaf.get().as_bytes()).ok())
        .filter(|e| !matches!(e, Event::DirectoryChanged { .. }))
        .filter(|e| !e.parties().contains(&"hn/cm/chuc-son"))
        .collect();
    assert!(others.is_empty(), "{others:?}");
    let other_doc = {
        // A document between the district and another commune only.
        let file = work.path().join("tb.txt");
        std::fs::write(&file, "Thông báo").unwrap();
        let request = SendRequest {
            to: vec!["hn/cm/truong-yen".parse().unwrap()],
            competence: String::new(),
            ..SendRequest::new(
                "TB",
                &crate::support::next_number(),
                "TB/HU",
                "Thông báo",
                vec![file],
            )
        };
        server
            .client("hn/cm")
            .send_document(&request)
            .await
            .unwrap()
    };
    let new_size = auditor(&server).fetch_checkpoint().await.unwrap().size;
    assert_code(
        commune
            .get_json::<serde_json::Value>(&format!(
                "/v1/log/proofs/inclusion?index={}&size={new_size}",
                other_doc.receipt.log_index
            ))
            .await,
        "log_entry_hidden",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_export_verifies_offline_with_every_receipt_signature() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    directive(&server, work.path(), Classification::Thuong).await;
    directive(&server, work.path(), Classification::Mat).await;
    let profile = server.pki.auditor_profile(&"hn/cm".parse().unwrap());
    let export = work.path().join("export.json");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_congvan"));
        cmd.arg("audit").args(args).arg("--profile").arg(&profile);
        tokio::task::block_in_place(|| cmd.output().unwrap())
    };
    let out = run(&[
        "export",
        "--server",
        &server.url(),
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Offline: no --server, no network.
    let out = run(&["verify", export.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two documents, three communes, each confirming arrival (01) on fetch and then
    // accepting (03).
    assert!(stdout.contains("12 receipt signatures checked"), "{stdout}");
    assert!(
        stdout.contains("root recomputed from every leaf"),
        "{stdout}"
    );

    // A forged receipt inside an otherwise intact-looking export is caught by its signature.
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    let entries = value["entries"].as_array_mut().unwrap();
    let target = entries
        .iter_mut()
        .find(|e| e["leaf"]["type"] == "receipt")
        .unwrap();
    target["leaf"]["receipt"]["receipt"]["status"] = "06".into();
    let index = target["index"].as_u64().unwrap();
    let forged = work.path().join("forged.json");
    std::fs::write(&forged, serde_json::to_vec(&value).unwrap()).unwrap();
    let out = run(&["verify", forged.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("first bad entry is at index {index}")),
        "{stderr}"
    );
}

/// Flips one byte of the leaf at `index` in a stopped server's store.
fn tamper_leaf(data: &Path, index: u64) {
    let db = sled::Config::new()
        .path(data.join("db"))
        .segment_size(8 << 20)
        .open()
        .unwrap();
    let log = db.open_tree("log_leaves").unwrap();
    let key = index.to_be_bytes();
    let mut leaf = log.get(key).unwrap().unwrap().to_vec();
    // Change a digit inside the event's time, keeping it valid JSON.
    let pos = leaf.windows(7).position(|w| w == b"\"time\":").unwrap() + 9;
    leaf[pos] = if leaf[pos] == b'1' { b'2' } else { b'1' };
    log.insert(key, leaf).unwrap();
    db.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_changed_byte_in_a_stored_leaf_is_named() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    directive(&server, work.path(), Classification::Thuong).await;
    auditor(&server).audit_checkpoint().await.unwrap();
    let (dir, pki) = server.stop().await;
    let data = dir.path().join("data");
    tamper_leaf(&data, 3);

    // The operator's scan names the entry.
    let config = pki.server_config();
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["audit", "verify-store", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap()
    });
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("entry 3 does not match its stored hash"),
        "{stderr}"
    );

    // The security officer's export names it too, offline.
    let server = TestServer::start_in(dir, pki).await;
    let export = work.path().join("export.json");
    auditor(&server).export(&export).await.unwrap();
    let report =
        congvan::client::audit::verify_export(&export, &server.auditor_profile("hn/cm")).unwrap();
    assert_eq!(report.first_bad_index, Some(3), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_entries_stop_the_server_and_fail_the_scan() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    directive(&server, work.path(), Classification::Thuong).await;
    let size = auditor(&server)
        .audit_checkpoint()
        .await
        .unwrap()
        .current
        .size;
    let (dir, pki) = server.stop().await;
    {
        let db = sled::Config::new()
            .path(dir.path().join("data/db"))
            .segment_size(8 << 20)
            .open()
            .unwrap();
        let leaves = db.open_tree("log_leaves").unwrap();
        let meta = db.open_tree("log_meta").unwrap();
        // Delete the last two entries, as someone hiding two receipts would.
        for index in size - 2..size {
            leaves.remove(index.to_be_bytes()).unwrap();
        }
        meta.insert(b"S", &(size - 2).to_be_bytes()[..]).unwrap();
        db.flush().unwrap();
    }
    let mut config = congvan::config::ServerConfig::load(&pki.server_config()).unwrap();
    config.data_dir = dir.path().join("data");
    let err = congvan::server::Server::build(&config)
        .err()
        .expect("a damaged log must stop the server");
    assert!(err.to_string().contains("the log has"), "{err}");
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["audit", "verify-store", "--config"])
            .arg(pki.server_config())
            .arg("--data")
            .arg(dir.path().join("data"))
            .output()
            .unwrap()
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("entries were deleted"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_or_forked_store_is_caught_by_the_remembered_checkpoint() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    directive(&server, work.path(), Classification::Thuong).await;
    // Yesterday: the officer sees the log; the operator keeps a copy of the store.
    let yesterday = auditor(&server)
        .audit_checkpoint()
        .await
        .unwrap()
        .current
        .size;
    let (dir, pki) = server.stop().await;
    let snapshot = work.path().join("snapshot");
    copy_dir(&dir.path().join("data"), &snapshot);

    // Today: more documents; the officer's checkpoint is consistent with yesterday's.
    let server = TestServer::start_in(dir, pki).await;
    directive(&server, work.path(), Classification::Mat).await;
    let check = auditor(&server).audit_checkpoint().await.unwrap();
    assert_eq!(check.previous.unwrap().size, yesterday);
    let today = check.current.size;
    assert!(today > yesterday);
    // The CLI says so and exits 0.
    let profile = server.pki.auditor_profile(&"hn/cm".parse().unwrap());
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["audit", "checkpoint", "--profile"])
            .arg(&profile)
            .args(["--server", &server.url()])
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Roll the store back to yesterday's copy: the server itself refuses to sign over
    // it unless the operator acknowledges the rollback; then the officer notices at once.
    let (dir, pki) = server.stop().await;
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    copy_dir(&snapshot, &dir.path().join("data"));
    let mut config = congvan::config::ServerConfig::load(&pki.server_config()).unwrap();
    config.data_dir = dir.path().join("data");
    let refused = congvan::server::Server::build(&config).err().unwrap();
    assert!(
        refused.to_string().contains("--acknowledge-rollback"),
        "{refused}"
    );
    let server = TestServer::start_in_with(dir, pki, |c| c.acknowledge_rollback = true).await;
    let err = auditor(&server).audit_checkpoint().await.unwrap_err();
    assert!(err.to_string().contains("rolled back"), "{err}");
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["audit", "checkpoint", "--profile"])
            .arg(&profile)
            .args(["--server", &server.url()])
            .output()
            .unwrap()
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LOG INCONSISTENCY"));

    // Fork: a different history grown past today's size is not an extension of it.
    while auditor(&server).fetch_checkpoint().await.unwrap().size <= today {
        directive(&server, work.path(), Classification::Thuong).await;
    }
    let err = auditor(&server).audit_checkpoint().await.unwrap_err();
    assert!(err.to_string().contains("rewritten or forked"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn report_lists_recipients_that_have_not_fetched_or_acknowledged() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cv.txt");
    std::fs::write(&file, "Công văn").unwrap();
    let request = SendRequest {
        to: COMMUNES.iter().map(|c| c.parse().unwrap()).collect(),
        urgency: Urgency::HoaToc,
        competence: String::new(),
        ..SendRequest::new(
            "CV",
            &crate::support::next_number(),
            "CV/HU",
            "Công văn hỏa tốc",
            vec![file],
        )
    };
    let sent = server
        .client("hn/cm")
        .send_document(&request)
        .await
        .unwrap();
    // Chúc Sơn fetches and accepts; Xuân Mai only fetches; Phụng Châu does nothing.
    let cs = server.client("hn/cm/chuc-son");
    cs.fetch_document(&sent.id, &work.path().join("cs"))
        .await
        .unwrap();
    cs.acknowledge(&sent.id, st("03"), "").await.unwrap();
    server
        .client("hn/cm/xuan-mai")
        .fetch_document(&sent.id, &work.path().join("xm"))
        .await
        .unwrap();

    let profile = server.pki.auditor_profile(&"hn/cm".parse().unwrap());
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["audit", "report", "--format", "json", "--profile"])
            .arg(&profile)
            .args(["--server", &server.url()])
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let who: Vec<_> = rows
        .iter()
        .map(|r| r["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["hn/cm/phung-chau", "hn/cm/xuan-mai"]);
    assert!(rows[0]["fetched_at"].is_null());
    assert!(rows[1]["fetched_at"].is_string());
    assert_eq!(rows[0]["overdue"], false, "hỏa tốc is due in two hours");
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["audit", "report", "--format", "table", "--profile"])
            .arg(&profile)
            .args(["--server", &server.url()])
            .output()
            .unwrap()
    });
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("hn/cm/phung-chau\n") && table.contains("not fetched"),
        "{table}"
    );
    assert!(table.contains("not acknowledged"), "{table}");
}

#[tokio::test]
async fn refusals_are_logged_without_content() {
    let server = TestServer::start().await;
    let mut doc = crate::support::TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.manifest["subject"] = serde_json::json!("Trích yếu không được lọt vào nhật ký");
    let client = server.client("hn/cm");
    doc.submit(&server, &client).await.unwrap();
    let mut wrong = doc.payload.clone();
    wrong[0] ^= 1;
    assert_code(doc.upload(&client, wrong).await, "payload_digest_mismatch");
    let page: congvan::api::LogEntries = auditor(&server)
        .get_json(&format!("/v1/log/entries?document={}", doc.id()))
        .await
        .unwrap();
    let events: Vec<Event> = page
        .entries
        .iter()
        .map(|e| Event::from_leaf(e.leaf.get().as_bytes()).unwrap())
        .collect();
    assert!(
        matches!(&events[..], [Event::Refused { code, .. }] if code == "payload_digest_mismatch"),
        "{events:?}"
    );
    assert!(!page.entries[0].leaf.get().contains("Trích yếu"));
}
