//! The status rules, recall, update and replace, replayed against a real server: every
//! illegal transition refused with its code and nothing recorded; a document the
//! recipient's client refuses is returned (02) with the reason and stays in the audit
//! report; a recall agreed (15) leaves the active inbox and one refused (16) is shown to
//! the sender; replacements and updates are linked both ways.

use std::path::{Path, PathBuf};
use std::process::Command;

use congvan::api::{ListPage, StatusView};
use congvan::client::Client;
use congvan::client::send::SendRequest;
use congvan::document::manifest::{BusinessKind, Classification};
use uuid::Uuid;

use crate::support::{TestServer, assert_code, st};

const A: &str = "hn/cm/chuc-son";
const B: &str = "hn/cm/xuan-mai";
const C: &str = "hn/cm/phung-chau";

fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{}-{name}", Uuid::now_v7()));
    std::fs::write(&path, text).unwrap();
    path
}

fn request(to: &[&str], number: &str, files: Vec<PathBuf>) -> SendRequest {
    SendRequest {
        to: to.iter().map(|t| t.parse().unwrap()).collect(),
        ..SendRequest::new("CV", number, "CV/HU", "Về lịch họp tháng", files)
    }
}

async fn send(server: &TestServer, request: &SendRequest) -> Uuid {
    server
        .client("hn/cm")
        .send_document(request)
        .await
        .unwrap()
        .id
}

async fn status(server: &TestServer, id: &Uuid) -> StatusView {
    server
        .client("hn/cm")
        .get_json(&format!("/v1/documents/{id}/status"))
        .await
        .unwrap()
}

fn auditor(server: &TestServer) -> Client {
    Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap()
}

/// The log's size, from a checkpoint the officer verifies.
async fn log_size(server: &TestServer) -> u64 {
    auditor(server).fetch_checkpoint().await.unwrap().size
}

/// The statuses recorded for `org`, oldest first.
fn statuses(view: &StatusView, org: &str) -> Vec<String> {
    view.recipients
        .iter()
        .find(|r| r.org == org)
        .unwrap()
        .receipts
        .iter()
        .map(|r| r["receipt"]["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_illegal_status_transition_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let id = send(
        &server,
        &request(&[A], "11", vec![file(work.path(), "a.txt", "x")]),
    )
    .await;
    let a = server.client(A);

    // Before any fetch: not 01 (it never arrived), nothing else either.
    let before = log_size(&server).await;
    assert_code(a.acknowledge(&id, st("01"), "").await, "status_not_fetched");
    for s in ["02", "03", "04", "05", "06"] {
        assert_code(
            a.acknowledge(&id, st(s), "lý do").await,
            "status_out_of_order",
        );
    }
    assert_code(
        a.acknowledge(&id, st("15"), "").await,
        "status_nothing_to_answer",
    );
    assert_code(
        a.acknowledge(&id, st("16"), "").await,
        "status_nothing_to_answer",
    );
    assert_code(
        a.acknowledge(&id, st("13"), "").await,
        "status_out_of_order",
    );
    assert!(statuses(&status(&server, &id).await, A).is_empty());
    assert_eq!(log_size(&server).await, before, "refusals are not logged");

    // The verified fetch confirms arrival (01) by itself; 01 again is a replay.
    a.fetch_document(&id, &work.path().join("a")).await.unwrap();
    assert_eq!(statuses(&status(&server, &id).await, A), ["01"]);
    let before = log_size(&server).await;
    let replay = a.acknowledge(&id, st("01"), "").await.unwrap();
    assert_eq!(replay.status, "01");
    assert_eq!(statuses(&status(&server, &id).await, A), ["01"]);
    assert_eq!(
        log_size(&server).await,
        before,
        "a replay is not a new entry"
    );

    let before = log_size(&server).await;
    for s in ["04", "05", "06"] {
        assert_code(a.acknowledge(&id, st(s), "").await, "status_out_of_order");
    }
    assert_eq!(log_size(&server).await, before);

    let accepted = a.acknowledge(&id, st("03"), "Đã vào sổ").await.unwrap();
    assert_eq!(accepted.status, "03");
    assert_code(
        a.acknowledge(&id, st("02"), "quá muộn").await,
        "status_out_of_order",
    );
    a.acknowledge(&id, st("05"), "").await.unwrap();

    let before = log_size(&server).await;
    assert_code(
        a.acknowledge(&id, st("04"), "").await,
        "status_out_of_order",
    );
    assert_code(
        a.acknowledge(&id, st("15"), "").await,
        "status_nothing_to_answer",
    );
    // The same status twice: the first entry answers, nothing new is recorded.
    let again = a.acknowledge(&id, st("03"), "một lần nữa").await.unwrap();
    assert_eq!(again.recorded_at, accepted.recorded_at);
    assert_eq!(again.log_index, accepted.log_index);
    assert_eq!(log_size(&server).await, before);
    a.acknowledge(&id, st("06"), "").await.unwrap();
    assert_code(
        a.acknowledge(&id, st("04"), "").await,
        "status_out_of_order",
    );
    assert_code(
        a.acknowledge(&id, st("02"), "muộn").await,
        "status_out_of_order",
    );
    assert_eq!(
        statuses(&status(&server, &id).await, A),
        ["01", "03", "05", "06"]
    );
}

#[tokio::test]
async fn a_returned_document_cannot_be_accepted_and_racing_receipts_record_one() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let id = send(
        &server,
        &request(&[A], "12", vec![file(work.path(), "a.txt", "x")]),
    )
    .await;
    let a = server.client(A);
    a.fetch_document(&id, &work.path().join("a")).await.unwrap();
    // 02 and 03 at once: the rules run inside the transaction, so exactly one wins.
    let (returned, accepted) = tokio::join!(
        a.acknowledge(&id, st("02"), "sai thẩm quyền"),
        a.acknowledge(&id, st("03"), "")
    );
    assert!(
        returned.is_ok() != accepted.is_ok(),
        "{returned:?} {accepted:?}"
    );
    let loser = if returned.is_ok() { accepted } else { returned };
    assert_code(loser, "status_out_of_order");
    assert_eq!(statuses(&status(&server, &id).await, A).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_the_client_refuses_is_returned_with_the_reason_and_stays_in_the_report() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let mut secret = request(&[A, B], "13", vec![file(work.path(), "m.txt", "mật")]);
    secret.classification = Classification::Mat;
    let id = send(&server, &secret).await;

    // Xuân Mai's client holds the wrong OpenPGP key (Phụng Châu's, not a recipient): it
    // cannot decrypt, so it refuses.
    let mut profile = server.org_profile(B);
    profile.openpgp_key = server.org_profile(C).openpgp_key.clone();
    assert!(profile.openpgp_key.is_some());
    let b = Client::new(&profile, &server.url()).unwrap();
    let err = b
        .fetch_document(&id, &work.path().join("b"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("returned to the sender with status 02"),
        "{message}"
    );
    assert!(
        std::fs::read_dir(work.path().join("b")).unwrap().all(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".congvan-fetch")),
        "nothing written"
    );
    let view = status(&server, &id).await;
    assert_eq!(statuses(&view, B), ["01", "02"]);
    let row = view.recipients.iter().find(|r| r.org == B).unwrap();
    assert_eq!(row.status.as_deref(), Some("02"));
    assert!(
        row.note
            .as_deref()
            .unwrap()
            .contains("refused by the recipient's client"),
        "{row:?}"
    );

    // Chúc Sơn accepts; Xuân Mai's return stays in the officer's report with its reason.
    let a = server.client(A);
    a.fetch_document(&id, &work.path().join("a")).await.unwrap();
    a.acknowledge(&id, st("03"), "").await.unwrap();
    let rows = report(&server, "json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&rows).unwrap();
    let returned: Vec<_> = rows
        .iter()
        .filter(|r| r["document_id"] == id.to_string())
        .collect();
    assert_eq!(returned.len(), 1, "{rows:?}");
    assert_eq!(returned[0]["recipient"], B);
    assert_eq!(returned[0]["status"], "02");
    assert!(
        returned[0]["returned"]
            .as_str()
            .unwrap()
            .contains("classified payload"),
        "{returned:?}"
    );
    let table = report(&server, "table");
    assert!(
        table.contains("returned (02)") && table.contains("reason: refused by the recipient"),
        "{table}"
    );
}

#[tokio::test]
async fn a_document_whose_signature_fails_at_the_recipient_is_fetched_and_returned() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let id = send(
        &server,
        &request(&[A], "20", vec![file(work.path(), "a.txt", "x")]),
    )
    .await;
    // The competent person's certificate is revoked after the server accepted the
    // document: the recipient's own check (with the CAs' current CRLs) refuses it on
    // the manifest, before any download.
    congvan::pki::crl::revoke(
        &server.pki,
        &server.org_dir("hn/cm").join("person.crt"),
        None,
    )
    .unwrap();
    server.tls.reload().unwrap();
    let err = server
        .client(A)
        .fetch_document(&id, &work.path().join("a"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("returned to the sender with status 02"),
        "{err}"
    );
    // The client fetched the payload first so that 01 (arrived) is true, then returned it.
    let view = status(&server, &id).await;
    assert_eq!(statuses(&view, A), ["01", "02"]);
    let row = &view.recipients[0];
    assert!(row.fetched_at.is_some());
    assert!(row.note.as_deref().unwrap().contains("revoked"), "{row:?}");
}

/// `congvan audit report` as the district's security officer.
fn report(server: &TestServer, format: &str) -> String {
    let profile = server.pki.auditor_profile(&"hn/cm".parse().unwrap());
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(["audit", "report", "--format", format, "--profile"])
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
    String::from_utf8(out.stdout).unwrap()
}

fn acting(kind: BusinessKind, target: Uuid, to: &[&str], number: &str, dir: &Path) -> SendRequest {
    SendRequest {
        business: kind,
        business_target: Some(target),
        ..request(to, number, vec![file(dir, "b.txt", "thu hồi / thay thế")])
    }
}

async fn inbox(server: &TestServer, org: &str, state: &str) -> ListPage {
    server
        .client(org)
        .get_json(&format!("/v1/inbox?state={state}"))
        .await
        .unwrap()
}

#[tokio::test]
async fn recall_agreed_leaves_the_inbox_and_recall_refused_is_shown_to_the_sender() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let original = send(
        &server,
        &request(&[A, B], "14", vec![file(work.path(), "a.txt", "x")]),
    )
    .await;
    for org in [A, B] {
        let c = server.client(org);
        c.fetch_document(&original, &work.path().join(org.replace('/', ".")))
            .await
            .unwrap();
        c.acknowledge(&original, st("03"), "").await.unwrap();
    }

    // A recall can only go to the target's recipients, of the target's sender.
    let before = statuses(&status(&server, &original).await, A);
    assert_code(
        server
            .client("hn/cm")
            .send_document(&acting(
                BusinessKind::Recall,
                original,
                &[C],
                "15",
                work.path(),
            ))
            .await,
        "business_target_invalid",
    );
    assert_code(
        server
            .client("hn/cm")
            .send_document(&acting(
                BusinessKind::Recall,
                Uuid::now_v7(),
                &[A],
                "15",
                work.path(),
            ))
            .await,
        "business_target_invalid",
    );
    assert_eq!(statuses(&status(&server, &original).await, A), before);

    let recall = send(
        &server,
        &acting(BusinessKind::Recall, original, &[A, B], "15", work.path()),
    )
    .await;
    let view = status(&server, &original).await;
    assert!(
        view.recipients
            .iter()
            .all(|r| r.request.as_deref() == Some("recall"))
    );
    assert!(
        view.links
            .iter()
            .any(|l| l.relation == "recalled_by" && l.id == recall)
    );

    // Chúc Sơn agrees; Xuân Mai refuses, with a reason.
    let a = server.client(A);
    a.acknowledge(&original, st("15"), "Đồng ý thu hồi")
        .await
        .unwrap();
    assert_code(
        a.acknowledge(&original, st("16"), "").await,
        "status_out_of_order",
    );
    assert_code(
        a.acknowledge(&original, st("04"), "").await,
        "status_out_of_order",
    );
    server
        .client(B)
        .acknowledge(&original, st("16"), "Đã triển khai, không thu hồi")
        .await
        .unwrap();

    // Agreed: gone from the active inbox, kept in the history, marked recalled.
    let active = inbox(&server, A, "all").await;
    assert!(!active.items.iter().any(|i| i.id == original));
    assert!(active.items.iter().any(|i| i.id == recall));
    let history = inbox(&server, A, "history").await;
    let kept = history.items.iter().find(|i| i.id == original).unwrap();
    assert!(kept.recalled);
    assert!(kept.links.iter().any(|l| l.relation == "recalled_by"));
    // Refused: still in force at Xuân Mai, and the sender sees the refusal.
    assert!(
        inbox(&server, B, "all")
            .await
            .items
            .iter()
            .any(|i| i.id == original)
    );
    let view = status(&server, &original).await;
    let b = view.recipients.iter().find(|r| r.org == B).unwrap();
    assert_eq!(b.status.as_deref(), Some("16"));
    assert_eq!(b.note.as_deref(), Some("Đã triển khai, không thu hồi"));
    assert_eq!(statuses(&view, A), ["01", "03", "15"]);
    // A recall of a recall is refused.
    assert_code(
        server
            .client("hn/cm")
            .send_document(&acting(
                BusinessKind::Recall,
                recall,
                &[A],
                "16",
                work.path(),
            ))
            .await,
        "business_target_invalid",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replacement_and_update_are_linked_both_ways_in_inbox_status_and_audit() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let original = send(
        &server,
        &request(&[A], "17", vec![file(work.path(), "a.txt", "x")]),
    )
    .await;
    let replacement = send(
        &server,
        &acting(BusinessKind::Replace, original, &[A], "18", work.path()),
    )
    .await;
    let update = send(
        &server,
        &acting(BusinessKind::Update, original, &[A], "19", work.path()),
    )
    .await;

    let page = inbox(&server, A, "all").await;
    let links = |id: Uuid| {
        let item = page.items.iter().find(|i| i.id == id).unwrap();
        item.links
            .iter()
            .map(|l| (l.relation.clone(), l.id))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        links(original),
        [
            ("replaced_by".to_owned(), replacement),
            ("updated_by".to_owned(), update)
        ]
    );
    assert_eq!(links(replacement), [("replaces".to_owned(), original)]);
    assert_eq!(links(update), [("updates".to_owned(), original)]);

    let view = status(&server, &original).await;
    assert!(
        view.links
            .iter()
            .any(|l| l.relation == "replaced_by" && l.id == replacement)
    );
    assert_eq!(view.recipients[0].request.as_deref(), Some("update"));
    let view = status(&server, &replacement).await;
    assert!(
        view.links
            .iter()
            .any(|l| l.relation == "replaces" && l.id == original)
    );
    // The update is answered on the document it updates.
    server
        .client(A)
        .acknowledge(&original, st("15"), "Đồng ý cập nhật")
        .await
        .unwrap();
    assert!(
        inbox(&server, A, "all")
            .await
            .items
            .iter()
            .any(|i| i.id == original)
    );

    // The officer's report (nothing was fetched) shows the links from the log alone.
    let rows: Vec<serde_json::Value> = serde_json::from_str(&report(&server, "json")).unwrap();
    let row = |id: Uuid| {
        rows.iter()
            .find(|r| r["document_id"] == id.to_string())
            .unwrap()["links"]
            .clone()
    };
    assert_eq!(
        row(replacement),
        serde_json::json!([{"relation": "replaces", "id": original}])
    );
    assert!(
        row(original)
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"relation": "replaced_by", "id": replacement}))
    );
    let table = report(&server, "table");
    assert!(
        table.contains(&format!("replaced by {replacement}")),
        "{table}"
    );

    // `congvan inbox` prints the links too.
    let profile = server.pki.org_profile(&A.parse().unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["inbox", "--all", "--profile"])
        .arg(&profile)
        .args(["--server", &server.url()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("replaces {original}")), "{text}");
    assert!(text.contains(&format!("updated by {update}")), "{text}");
}
