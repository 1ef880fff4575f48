//! Reorganisation: the 2025 plan for Chương Mỹ applied with `congvan reform apply` to a
//! live server with documents in flight. Nothing is lost, successors read their
//! predecessors' archives, undelivered documents are offered to the successor, refusals
//! name it, officers' scopes follow, history still verifies, and the dry run shows exactly
//! what the log records.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use congvan::api::{ListPage, StatusView};
use congvan::client::Client;
use congvan::ledger::Event;

use crate::support::{
    Run as _, TestDoc, TestServer, assert_code, assert_ok, congvan_command, st, stderr, stdout,
};

const PLAN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/reform-2025-chuong-my.toml"
);

fn reform(server: &TestServer, args: &[&str]) -> Output {
    let config = server.pki.server_config();
    congvan_command()
        .arg("reform")
        .args(args)
        .arg("--config")
        .arg(&config)
        .run()
}

/// The effect lines a `reform apply` printed.
fn effects(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter_map(|l| l.strip_prefix("  - ").map(str::to_owned))
        .collect()
}

fn reforms_dir(server: &TestServer) -> PathBuf {
    server.pki.server_config().parent().unwrap().join("reforms")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn status_of(client: &Client, org: &str) -> String {
    let directory = client.directory().await.unwrap();
    directory
        .orgs
        .iter()
        .find(|o| o.id == org)
        .map(|o| o.status.clone())
        .unwrap()
}

/// Sends `doc` (manifest, then payload) as its sender.
async fn send(server: &TestServer, doc: &TestDoc) -> String {
    let client = server.client(doc.manifest["sender"].as_str().unwrap());
    assert_eq!(doc.submit(server, &client).await.unwrap().0, 201);
    doc.upload(&client, doc.payload.clone()).await.unwrap();
    doc.id()
}

async fn inbox(server: &TestServer, org: &str) -> ListPage {
    server.client(org).get_json("/v1/inbox").await.unwrap()
}

async fn events(client: &Client) -> Vec<Event> {
    let size = client.fetch_checkpoint().await.unwrap().size;
    client
        .visible_entries(size)
        .await
        .unwrap()
        .iter()
        .map(|e| Event::from_leaf(e.leaf.get().as_bytes()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_2025_plan_applied_to_a_live_server_loses_nothing() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();

    // The 2023 tree at work. A directive to Chúc Sơn (accepts it) and Xuân Mai (does not
    // get round to it); a notice to Tân Tiến, never fetched; a report from Chúc Sơn up.
    let directive = send(
        &server,
        &TestDoc::new("hn/cm", &["hn/cm/chuc-son", "hn/cm/xuan-mai"]),
    )
    .await;
    let notice = send(&server, &TestDoc::new("hn/cm", &["hn/cm/tan-tien"])).await;
    let report = send(&server, &TestDoc::new("hn/cm/chuc-son", &["hn/cm"])).await;
    let chuc_son = server.client("hn/cm/chuc-son");
    let directive_id = directive.parse().unwrap();
    chuc_son
        .fetch_document(&directive_id, &work.path().join("chuc-son"))
        .await
        .unwrap();
    chuc_son
        .acknowledge(&directive_id, st("01"), "")
        .await
        .unwrap();
    chuc_son
        .acknowledge(&directive_id, st("03"), "")
        .await
        .unwrap();
    // The planned ward does not exist yet for sending.
    let early = TestDoc::new("hn", &["hn/chuong-my"]);
    let err = early
        .submit(&server, &server.client("hn"))
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("recipient_inactive"), "{err}");
    assert!(err.to_string().contains("planned"), "{err}");
    let officer = Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
    let log_before = officer.fetch_checkpoint().await.unwrap().size;

    // A dry run shows every effect and changes nothing.
    let dry = reform(&server, &["apply", PLAN, "--dry-run"]);
    assert_ok(&dry);
    let dry_effects = effects(&dry);
    for expected in [
        "activate hn/chuong-my (Đảng ủy phường Chương Mỹ) under hn",
        "merge hn/cm/chuc-son (Đảng ủy thị trấn Chúc Sơn) into hn/chuong-my",
        "divide hn/cm/tan-tien (Đảng ủy xã Tân Tiến) among hn/xuan-mai, hn/tran-phu",
        "retire hn/cm (Huyện ủy Chương Mỹ)",
        "hn/cm/thuy-huong (merged into hn/cm/chuc-son earlier) now reaches hn/chuong-my",
    ] {
        assert!(
            dry_effects.iter().any(|e| e.starts_with(expected)),
            "{expected}\n{dry_effects:#?}"
        );
    }
    assert!(files_in(&reforms_dir(&server)).is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_of(&chuc_son, "hn/cm/chuc-son").await, "active");

    // Applied for real: the server puts it in force within a reload interval.
    let applied = reform(&server, &["apply", PLAN]);
    assert_ok(&applied);
    assert_eq!(effects(&applied), dry_effects);
    let ward = server.client("hn/chuong-my");
    let mut waited = 0;
    while status_of(&ward, "hn/cm/chuc-son").await != "merged" {
        waited += 1;
        assert!(waited < 100, "the plan was not put in force within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The log records the plan with exactly the effects the dry run showed.
    let mut reorganised = Vec::new();
    let mut waited = 0;
    while reorganised.is_empty() {
        reorganised = events(&ward)
            .await
            .into_iter()
            .filter_map(|e| match e {
                Event::Reorganised {
                    plan_id,
                    effects,
                    successors,
                    ..
                } => Some((plan_id, effects, successors)),
                _ => None,
            })
            .collect();
        waited += 1;
        assert!(waited < 100, "no reorganised event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reorganised.len(), 1);
    let (plan_id, logged_effects, successors) = &reorganised[0];
    assert_eq!(plan_id, "2025-07-chuong-my");
    assert_eq!(logged_effects, &dry_effects);
    assert_eq!(successors["hn/cm/tan-tien"], "hn/xuan-mai");
    assert_eq!(successors["hn/cm/thuy-huong"], "hn/chuong-my");

    // Merged units neither send nor receive, and the refusals name the successor.
    let err = TestDoc::new("hn/cm/chuc-son", &["hn"])
        .submit(&server, &chuc_son)
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("sender_inactive"), "{err}");
    assert!(err.to_string().contains("send as hn/chuong-my"), "{err}");
    let err = TestDoc::new("hn", &["hn/cm/thuy-huong"])
        .submit(&server, &server.client("hn"))
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("recipient_inactive"), "{err}");
    assert!(
        err.to_string()
            .contains("merged into hn/cm/chuc-son, which was merged into hn/chuong-my"),
        "{err}"
    );
    // Nor does a merged unit still receive what was sent to it before: its successor does.
    let err = chuc_son
        .acknowledge(&directive_id, st("05"), "")
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("recipient_inactive"), "{err}");
    assert!(err.to_string().contains("hn/chuong-my"), "{err}");
    let tan_tien = server.client("hn/cm/tan-tien");
    let err = tan_tien
        .fetch_document(&notice.parse().unwrap(), &work.path().join("tan-tien"))
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("recipient_inactive"), "{err}");
    assert!(err.to_string().contains("hn/xuan-mai"), "{err}");
    // Its history stays readable to it.
    assert!(
        inbox(&server, "hn/cm/tan-tien")
            .await
            .items
            .iter()
            .any(|i| i.id.to_string() == notice)
    );
    // The new units send and receive.
    send(
        &server,
        &TestDoc::new("hn", &["hn/chuong-my", "hn/tran-phu"]),
    )
    .await;

    // The ward reads Chúc Sơn's archive as its own: inbox (with the receipt it gave),
    // sent list, statuses.
    let ward_inbox = inbox(&server, "hn/chuong-my").await;
    let item = ward_inbox
        .items
        .iter()
        .find(|i| i.id.to_string() == directive)
        .expect("the directive Chúc Sơn received is in the ward's inbox");
    assert_eq!(item.addressed_to.as_deref(), Some("hn/cm/chuc-son"));
    assert_eq!(item.receipt_status.as_deref(), Some("03"));
    let ward_sent: ListPage = ward.get_json("/v1/sent").await.unwrap();
    assert!(ward_sent.items.iter().any(|i| i.id.to_string() == report));
    let status: StatusView = ward
        .get_json(&format!("/v1/documents/{report}/status"))
        .await
        .unwrap();
    assert_eq!(status.sender, "hn/cm/chuc-son");
    // The ward reads the log entries of Chúc Sơn too.
    let ward_events = events(&ward).await;
    assert!(ward_events.iter().any(|e| matches!(e,
        Event::Receipt { actor, document_id, .. }
            if actor == "hn/cm/chuc-son" && document_id.to_string() == directive)));

    // What Xuân Mai never accepted is offered to the new Xuân Mai; the sender sees it.
    let old_district = server.client("hn/cm");
    let status: StatusView = old_district
        .get_json(&format!("/v1/documents/{directive}/status"))
        .await
        .unwrap();
    let xm = status
        .recipients
        .iter()
        .find(|r| r.org == "hn/cm/xuan-mai")
        .unwrap();
    assert_eq!(xm.offered_to.as_deref(), Some("hn/xuan-mai"));
    assert_eq!(xm.status, None);
    let new_xuan_mai = server.client("hn/xuan-mai");
    let offered = inbox(&server, "hn/xuan-mai").await;
    for (id, addressed) in [(&directive, "hn/cm/xuan-mai"), (&notice, "hn/cm/tan-tien")] {
        let item = offered
            .items
            .iter()
            .find(|i| &i.id.to_string() == id)
            .unwrap_or_else(|| panic!("{id} is not offered to hn/xuan-mai"));
        assert_eq!(item.addressed_to.as_deref(), Some(addressed));
    }
    // The command line says so too, to the sender and to the successor.
    let cli = |org: &str, args: &[&str]| {
        let profile = server.pki.org_profile(&org.parse().unwrap());
        let out = congvan_command()
            .args(args)
            .arg("--profile")
            .arg(&profile)
            .args(["--server", &server.url()])
            .run_ok();
        stdout(&out)
    };
    let shown = cli("hn/cm", &["status", &directive]);
    assert!(shown.contains("merged: offered to hn/xuan-mai"), "{shown}");
    let shown = cli("hn/xuan-mai", &["inbox"]);
    assert!(shown.contains("(for hn/cm/tan-tien, merged)"), "{shown}");
    // The successor fetches, verifies with the old district's certificates, accepts.
    let fetched = new_xuan_mai
        .fetch_document(&directive_id, &work.path().join("xuan-mai"))
        .await
        .unwrap();
    assert_eq!(fetched.manifest.sender.as_str(), "hn/cm");
    new_xuan_mai
        .acknowledge(&directive_id, st("01"), "")
        .await
        .unwrap();
    let accepted = new_xuan_mai
        .acknowledge(
            &directive_id,
            st("03"),
            "Tiếp nhận thay Đảng ủy thị trấn Xuân Mai",
        )
        .await
        .unwrap();
    assert_eq!(accepted.recipient, "hn/xuan-mai");
    assert_eq!(accepted.incoming_number, Some(1));
    let status: StatusView = old_district
        .get_json(&format!("/v1/documents/{directive}/status"))
        .await
        .unwrap();
    let xm = status
        .recipients
        .iter()
        .find(|r| r.org == "hn/cm/xuan-mai")
        .unwrap();
    assert_eq!(xm.status.as_deref(), Some("03"));
    assert!(xm.fetched_at.is_some());

    // "Part of": Tân Tiến's archive went to Xuân Mai only, never to Trần Phú.
    assert!(
        inbox(&server, "hn/tran-phu")
            .await
            .items
            .iter()
            .all(|i| i.id.to_string() != notice)
    );
    assert_code(
        server
            .client("hn/tran-phu")
            .get_json::<serde_json::Value>(&format!("/v1/documents/{notice}"))
            .await,
        "document_not_found",
    );

    // Nothing was lost: every document sent before the reform is in an active unit's
    // inbox (its recipients' successors) or sent list.
    for (id, holder) in [
        (&directive, "hn/chuong-my"),
        (&directive, "hn/xuan-mai"),
        (&notice, "hn/xuan-mai"),
    ] {
        assert!(
            inbox(&server, holder)
                .await
                .items
                .iter()
                .any(|i| &i.id.to_string() == id),
            "{id} at {holder}"
        );
    }

    // Security officers: the ward's officer audits Chúc Sơn's history (its predecessor),
    // not Tân Tiến's; the district's officer still audits all of the old district.
    let ward_officer = Client::new(&server.auditor_profile("hn/chuong-my"), &server.url()).unwrap();
    ward_officer
        .get_json::<serde_json::Value>(&format!("/v1/documents/{directive}/status"))
        .await
        .unwrap();
    assert_code(
        ward_officer
            .get_json::<serde_json::Value>(&format!("/v1/documents/{notice}/status"))
            .await,
        "document_not_found",
    );
    for id in [&directive, &notice, &report] {
        officer
            .get_json::<serde_json::Value>(&format!("/v1/documents/{id}/status"))
            .await
            .unwrap();
    }

    // History before the reform still verifies: the old officer's export, offline, with
    // every receipt signature (old and new units') and the log consistent with before.
    assert!(officer.fetch_checkpoint().await.unwrap().size > log_before);
    officer.audit_checkpoint().await.unwrap();
    let export = work.path().join("export.json");
    officer.export(&export).await.unwrap();
    let verified =
        congvan::client::audit::verify_export(&export, &server.auditor_profile("hn/cm")).unwrap();
    assert!(verified.problems.is_empty(), "{:?}", verified.problems);
    assert!(verified.receipts >= 4, "{}", verified.receipts);
    // The audit report counts the successor's acceptance for the unit it was sent to.
    let rows = congvan::client::audit::report(
        &events(&officer).await,
        &congvan::config::Deadlines::default(),
        None,
        time::OffsetDateTime::now_utc(),
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.document_id.to_string() == directive && r.recipient == "hn/cm/xuan-mai"),
        "{rows:#?}"
    );

    // The same plan again is refused and changes nothing.
    let before = files_in(&reforms_dir(&server));
    let again = reform(&server, &["apply", PLAN]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already in"), "{}", stderr(&again));
    assert_eq!(files_in(&reforms_dir(&server)), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_that_does_not_fit_the_tree_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("bad.toml");
    // Merging into a unit that is only planned, without activating it.
    std::fs::write(
        &plan,
        "id = \"bad\"\ntitle = \"Sai\"\neffective_at = \"2025-07-01T00:00:00+07:00\"\n\
         [[merge]]\ninto = \"hn/chuong-my\"\nfrom = [\"hn/cm/chuc-son\"]\n",
    )
    .unwrap();
    for args in [
        vec!["apply", plan.to_str().unwrap(), "--dry-run"],
        vec!["apply", plan.to_str().unwrap()],
    ] {
        let out = reform(&server, &args);
        assert!(!out.status.success());
        let stderr = stderr(&out);
        assert!(
            stderr.contains("successor hn/chuong-my is not active"),
            "{stderr}"
        );
    }
    assert!(files_in(&reforms_dir(&server)).is_empty());
    let client = server.client("hn/cm/chuc-son");
    assert_eq!(status_of(&client, "hn/cm/chuc-son").await, "active");
    assert!(
        events(&client)
            .await
            .iter()
            .all(|e| !matches!(e, Event::Reorganised { .. }))
    );
}
