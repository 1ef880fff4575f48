//! Trust in the log that does not rest on the server (issue 11): audits that cannot be
//! fooled by omission or relabelling, a log that shows each party only what the document
//! API would, and refusals logged under the caller alone. Every attack is replayed
//! against the real server or the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use congvan::client::Client;
use congvan::client::audit::Export;
use congvan::client::send::SendRequest;
use congvan::document::manifest::{Classification, Urgency};
use congvan::ledger::{Event, NoteSigner};
use congvan::notary::{KeyPurpose, ServerKeys};
use tlog_tiles::tlog::{self, Hash, HashReader};
use uuid::Uuid;

use crate::support::{TestDoc, TestServer, assert_code, st};

const COMMUNES: [&str; 3] = ["hn/cm/chuc-son", "hn/cm/xuan-mai", "hn/cm/phung-chau"];
/// The reason a commune gives for rejecting the directive.
const REJECTION: &str = "Văn bản gửi sai thẩm quyền";

/// Runs the real binary (off the async threads) and returns what it did.
fn congvan(args: &[&str], extra: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_congvan"));
    cmd.args(args).args(extra);
    tokio::task::block_in_place(|| cmd.output().unwrap())
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn auditor_profile(server: &TestServer) -> PathBuf {
    server.pki.auditor_profile(&"hn/cm".parse().unwrap())
}

/// The district sends a directive to three communes; each fetches it; Chúc Sơn rejects
/// it (02, with a reason), the others accept it (03).
async fn rejected_directive(server: &TestServer, work: &Path) -> Uuid {
    let file = work.join(format!("chi-thi-{}.txt", Uuid::now_v7()));
    std::fs::write(&file, "Chỉ thị về chuyển đổi số").unwrap();
    let request = SendRequest {
        to: COMMUNES.iter().map(|c| c.parse().unwrap()).collect(),
        urgency: Urgency::Khan,
        classification: Classification::Thuong,
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
        let (status, note) = if commune == COMMUNES[0] {
            ("02", REJECTION)
        } else {
            ("03", "")
        };
        client
            .acknowledge(&sent.id, st(status), note)
            .await
            .unwrap();
    }
    sent.id
}

/// Exports the whole log with the CLI as the district's security officer.
fn export_with_cli(server: &TestServer, profile: &Path, out: &Path, range: &[&str]) -> Export {
    let url = server.url();
    let mut args = vec!["audit", "export", "--server", &url];
    args.extend_from_slice(range);
    let result = congvan(
        &args,
        &[Path::new("--profile"), profile, Path::new("--out"), out],
    );
    assert!(result.status.success(), "{}", text(&result));
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

fn verify_with_cli(profile: &Path, file: &Path) -> Output {
    congvan(
        &["audit", "verify"],
        &[Path::new("--profile"), profile, file],
    )
}

fn write_export(path: &Path, export: &Export) {
    std::fs::write(path, serde_json::to_vec(export).unwrap()).unwrap();
}

fn event_of(entry: &congvan::client::audit::ExportEntry) -> Event {
    Event::from_leaf(entry.leaf.get().as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_with_a_deleted_entry_is_refused() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    rejected_directive(&server, work.path()).await;
    let profile = auditor_profile(&server);
    let path = work.path().join("export.json");
    let export = export_with_cli(&server, &profile, &path, &[]);
    let out = verify_with_cli(&profile, &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("the whole log"), "{}", text(&out));

    // The attack: leave the "02 rejected" receipt out of an export of the whole log.
    let mut forged = export;
    let position = forged
        .entries
        .iter()
        .position(|e| matches!(event_of(e), Event::Receipt { status, .. } if status == "02"))
        .unwrap();
    let index = forged.entries.remove(position).index;
    let forged_path = work.path().join("without-the-rejection.json");
    write_export(&forged_path, &forged);
    let out = verify_with_cli(&profile, &forged_path);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains(&format!("entry {index}: is missing from the export")),
        "{said}"
    );
    assert!(!said.contains("everything verifies"), "{said}");

    // Shrinking the range to hide the omission is a range export, said as such; and
    // one without the rejection still has a hole where it was.
    let range_path = work.path().join("range.json");
    let range = export_with_cli(
        &server,
        &profile,
        &range_path,
        &["--start", "2", "--end", &(index + 1).to_string()],
    );
    assert!(!range.range_proof.is_empty());
    let out = verify_with_cli(&profile, &range_path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("the range"), "{}", text(&out));
    let mut cut = range;
    cut.entries.retain(|e| e.index != index);
    cut.end = index;
    write_export(&range_path, &cut);
    let out = verify_with_cli(&profile, &range_path);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("do not recompute"), "{}", text(&out));

    // A file that is not an export of this version cannot be read: exit 4, not 3.
    let mut v1: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v1["type"] = "congvan.audit-export/v1".into();
    let v1_path = work.path().join("v1.json");
    std::fs::write(&v1_path, serde_json::to_vec(&v1).unwrap()).unwrap();
    for file in [v1_path, work.path().join("no-such-file.json")] {
        let out = verify_with_cli(&profile, &file);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        assert!(
            text(&out).contains("cannot read the export"),
            "{}",
            text(&out)
        );
    }
}

/// Stored node hashes of a Merkle tree built in memory, as `tlog` lays them out.
struct MemoryTree(Vec<Hash>);

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(i as usize)
                    .copied()
                    .ok_or(tlog::Error::InvalidInput(format!("no hash {i}")))
            })
            .collect()
    }
}

/// What a server that holds the log key can do: rebuild the tree over `leaves`, sign a
/// checkpoint for it with the server's own key, and give every entry a valid proof.
fn rebuild_and_resign(server: &TestServer, export: &mut Export, leaves: Vec<Vec<u8>>) {
    let mut tree = MemoryTree(Vec::new());
    for (n, leaf) in leaves.iter().enumerate() {
        let hashes = tlog::stored_hashes(n as u64, leaf, &tree).unwrap();
        tree.0.extend(hashes);
    }
    let size = leaves.len() as u64;
    let root = tlog::tree_hash(size, &tree).unwrap();
    let config = congvan::config::ServerConfig::load(&server.pki.server_config()).unwrap();
    let keys = ServerKeys::load_or_create(&server.dir.path().join("data/keys")).unwrap();
    let public = keys.public_key(KeyPurpose::Log).unwrap();
    let signer = NoteSigner::new(&config.log.origin, &public, |m: &[u8]| {
        keys.sign_bytes(KeyPurpose::Log, m)
            .map_err(|e| e.to_string())
    });
    export.checkpoint =
        congvan::ledger::checkpoint::sign(&config.log.origin, size, root, &signer).unwrap();
    assert!(export.hidden.is_empty() && export.range_proof.is_empty());
    for (entry, leaf) in export.entries.iter_mut().zip(leaves) {
        let proof = tlog::prove_record(size, entry.index, &tree).unwrap();
        entry.proof = proof
            .iter()
            .map(|h| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h.0))
            .collect();
        entry.leaf =
            serde_json::value::RawValue::from_string(String::from_utf8(leaf).unwrap()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relabelled_receipt_entry_is_refused_under_a_re_signed_checkpoint() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    rejected_directive(&server, work.path()).await;
    let profile = auditor_profile(&server);
    let path = work.path().join("export.json");
    let export = export_with_cli(&server, &profile, &path, &[]);
    // The officer never kept a checkpoint, so only the entries themselves can tell.
    let state_dir = congvan::config::ClientProfile::load(&profile)
        .unwrap()
        .state_dir;
    std::fs::remove_file(state_dir.join("checkpoint.txt")).unwrap();
    let leaves: Vec<Vec<u8>> = export
        .entries
        .iter()
        .map(|e| e.leaf.get().as_bytes().to_vec())
        .collect();

    // The rebuilding itself yields an export that verifies: the forgery below is
    // refused for what it changes, not for how it was made.
    let mut rebuilt: Export = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    rebuild_and_resign(&server, &mut rebuilt, leaves.clone());
    let rebuilt_path = work.path().join("rebuilt.json");
    write_export(&rebuilt_path, &rebuilt);
    let out = verify_with_cli(&profile, &rebuilt_path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The attack: the signed "02 rejected" receipt re-logged as "03 accepted", the tree
    // rebuilt and the checkpoint re-signed with the server's log key.
    let mut forged = rebuilt;
    let position = export
        .entries
        .iter()
        .position(|e| matches!(event_of(e), Event::Receipt { status, .. } if status == "02"))
        .unwrap();
    let index = export.entries[position].index;
    let mut forged_leaves = leaves;
    let mut event = event_of(&export.entries[position]);
    if let Event::Receipt {
        status, receipt, ..
    } = &mut event
    {
        assert_eq!(receipt["receipt"]["status"], "02");
        *status = "03".into();
    }
    forged_leaves[position] = event.leaf().unwrap();
    rebuild_and_resign(&server, &mut forged, forged_leaves);
    let forged_path = work.path().join("relabelled.json");
    write_export(&forged_path, &forged);
    let out = verify_with_cli(&profile, &forged_path);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains(&format!(
            "entry {index}: the entry says status 03, its signed receipt says 02: relabelled"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("first bad entry is at index {index}")),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn co_recipients_do_not_read_each_others_deliveries_or_receipts() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let id = rejected_directive(&server, work.path()).await;
    let other = COMMUNES[1];
    let path = format!("/v1/log/entries?document={id}");
    let events = |page: congvan::api::LogEntries| -> Vec<Event> {
        page.entries
            .iter()
            .map(|e| Event::from_leaf(e.leaf.get().as_bytes()).unwrap())
            .collect()
    };

    // The document API refuses a co-recipient the status; the log says no more.
    let chuc_son = server.client(COMMUNES[0]);
    assert_code(
        chuc_son
            .get_json::<serde_json::Value>(&format!("/v1/documents/{id}/status"))
            .await,
        "role_forbidden",
    );
    let seen = events(chuc_son.get_json(&path).await.unwrap());
    let kinds: Vec<_> = seen
        .iter()
        .map(|e| match e {
            Event::Submitted { .. } => "submitted",
            Event::Delivered { actor, .. } if actor == COMMUNES[0] => "own delivery",
            Event::Receipt { actor, .. } if actor == COMMUNES[0] => "own receipt",
            _ => "someone else's",
        })
        .collect();
    // Its own delivery, its automatic 01 on fetch and its 02; nothing of the others'.
    assert_eq!(
        kinds,
        ["submitted", "own delivery", "own receipt", "own receipt"],
        "{seen:?}"
    );
    let xuan_mai = server.client(other);
    let seen = events(xuan_mai.get_json(&path).await.unwrap());
    assert!(
        !seen
            .iter()
            .any(|e| serde_json::to_string(e).unwrap().contains(REJECTION)),
        "a co-recipient reads the rejection's reason: {seen:?}"
    );
    assert!(seen.iter().all(|e| e.readable_by_org(other)), "{seen:?}");

    // The sender and the officer in scope see every recipient's: three deliveries, three
    // automatic 01s and three answers.
    let all = |events: &[Event]| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Delivered { .. } | Event::Receipt { .. }))
            .count()
    };
    assert_eq!(
        all(&events(
            server.client("hn/cm").get_json(&path).await.unwrap()
        )),
        9
    );
    let auditor = Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
    assert_eq!(all(&events(auditor.get_json(&path).await.unwrap())), 9);

    // A co-recipient is refused the proof of another's receipt, and proves its own.
    let size = auditor.fetch_checkpoint().await.unwrap().size;
    let (_, sender_view) = server.client("hn/cm").prove_document(&id).await.unwrap();
    let theirs = sender_view
        .iter()
        .find(|p| matches!(&p.event, Event::Receipt { actor, .. } if actor == other))
        .unwrap();
    assert_code(
        chuc_son
            .get_json::<serde_json::Value>(&format!(
                "/v1/log/proofs/inclusion?index={}&size={size}",
                theirs.index
            ))
            .await,
        "log_entry_hidden",
    );
    let (_, own) = chuc_son.prove_document(&id).await.unwrap();
    // The submission, its delivery, its automatic 01 and its 02.
    assert_eq!(own.len(), 4);

    // A commune's own export accounts for the entries it may not read by hash, and
    // verifies offline.
    let profile = server.pki.org_profile(&COMMUNES[0].parse().unwrap());
    let export_path = work.path().join("commune.json");
    let export = export_with_cli(&server, &profile, &export_path, &[]);
    assert!(export.hidden.len() >= 4, "{}", export.hidden.len());
    assert!(
        !String::from_utf8_lossy(&std::fs::read(&export_path).unwrap())
            .contains(&format!("\"actor\":\"{other}\"")),
        "the export holds another commune's entry"
    );
    let out = verify_with_cli(&profile, &export_path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A submission body that the server refuses at the signature check: signed, then given
/// another document id.
fn badly_signed(
    server: &TestServer,
    sender: &str,
    recipients: &[&str],
    id: &str,
) -> serde_json::Value {
    let doc = TestDoc::new(sender, recipients);
    let signatures = doc.signatures(server);
    let mut forged = doc;
    forged.manifest["id"] = id.into();
    forged.body(&signatures)
}

async fn log_size(server: &TestServer) -> u64 {
    Client::new(&server.auditor_profile("hn/cm"), &server.url())
        .unwrap()
        .fetch_checkpoint()
        .await
        .unwrap()
        .size
}

#[tokio::test(flavor = "multi_thread")]
async fn claimed_parties_get_no_refusal_in_their_history() {
    let server = TestServer::start().await;
    let district = server.client("hn/cm");
    let mut doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.submit(&server, &district).await.unwrap();
    let id = doc.id();

    // A commune claims to be the district on the district's document, and signs a
    // manifest naming the district and every commune on it.
    let commune = server.client("hn/cm/xuan-mai");
    doc.manifest["recipients"] = serde_json::json!(["hn/cm/chuc-son", "hn/cm/phung-chau"]);
    assert_code(
        commune
            .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(&doc.signatures(&server)))
            .await,
        "sender_mismatch",
    );
    let body = badly_signed(&server, "hn/cm/xuan-mai", &["hn/cm"], &id);
    let refused = commune
        .post_json::<_, serde_json::Value>("/v1/documents", &body)
        .await
        .unwrap_err();
    assert_eq!(refused.api_code(), Some("signature_invalid"), "{refused}");

    // The district, its recipient and the district's officer over the other communes see
    // no refusal under the document; the refusals are the commune's, and name nobody else.
    let path = format!("/v1/log/entries?document={id}");
    for reader in ["hn/cm", "hn/cm/chuc-son", "hn/cm/phung-chau"] {
        let page: congvan::api::LogEntries = server.client(reader).get_json(&path).await.unwrap();
        assert!(
            !page
                .entries
                .iter()
                .any(|e| e.leaf.get().contains("refused")),
            "{reader} sees a refusal it did not cause: {page:?}"
        );
    }
    let officer = Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap();
    let page: congvan::api::LogEntries = officer.get_json(&path).await.unwrap();
    let refusals: Vec<_> = page
        .entries
        .iter()
        .filter(|e| e.leaf.get().contains("refused"))
        .collect();
    assert_eq!(refusals.len(), 2, "{page:?}");
    for entry in refusals {
        let leaf = entry.leaf.get();
        assert!(leaf.contains("\"actor\":\"hn/cm/xuan-mai\""), "{leaf}");
        assert!(
            !leaf.contains("\"sender\"") && !leaf.contains("\"recipients\""),
            "{leaf}"
        );
        assert!(
            !leaf.contains("chuc-son") && !leaf.contains("phung-chau"),
            "{leaf}"
        );
        assert!(leaf.len() < 300, "{} bytes: {leaf}", leaf.len());
    }

    // A thousand claimed recipients cost the log nothing more than one small entry.
    let many: Vec<String> = (0..1000).map(|i| format!("hn/cm/x{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let before = log_size(&server).await;
    let body = badly_signed(
        &server,
        "hn/cm/xuan-mai",
        &many,
        &Uuid::now_v7().to_string(),
    );
    commune
        .post_json::<_, serde_json::Value>("/v1/documents", &body)
        .await
        .unwrap_err();
    assert_eq!(log_size(&server).await, before + 1);
    let page: congvan::api::LogEntries = officer
        .get_json(&format!(
            "/v1/log/entries?start={before}&end={}",
            before + 1
        ))
        .await
        .unwrap();
    assert!(page.entries[0].leaf.get().len() < 300);

    // Refusals are rate-limited per caller: a flood logs at most the burst, and the rest
    // are still answered and counted.
    let before = log_size(&server).await;
    for _ in 0..40 {
        let body = badly_signed(
            &server,
            "hn/cm/xuan-mai",
            &["hn/cm"],
            &Uuid::now_v7().to_string(),
        );
        commune
            .post_json::<_, serde_json::Value>("/v1/documents", &body)
            .await
            .unwrap_err();
    }
    let grown = log_size(&server).await - before;
    assert!(
        grown <= u64::from(congvan::server::routes::log::REFUSALS_LOGGED_BURST) + 1,
        "{grown} refusals logged"
    );
    let unlogged = server
        .metrics
        .refusals_unlogged
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(unlogged >= 40 - grown, "{unlogged}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_not_logged_into_the_disk_reserve() {
    let server = TestServer::start_with(|c| c.limits.disk_reserve_bytes = u64::MAX / 4).await;
    let before = log_size(&server).await;
    let commune = server.client("hn/cm/xuan-mai");
    let body = badly_signed(
        &server,
        "hn/cm/xuan-mai",
        &["hn/cm"],
        &Uuid::now_v7().to_string(),
    );
    let refused = commune
        .post_json::<_, serde_json::Value>("/v1/documents", &body)
        .await
        .unwrap_err();
    assert_eq!(refused.api_code(), Some("signature_invalid"), "{refused}");
    assert_eq!(log_size(&server).await, before);
    assert_eq!(
        server
            .metrics
            .refusals_unlogged
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_probe_gives_a_non_party_no_signal() {
    let server = TestServer::start().await;
    let district = server.client("hn/cm");
    let doc = TestDoc::new("hn/cm", &["hn/cm/chuc-son"]);
    doc.submit(&server, &district).await.unwrap();

    // Another district probes the id, and a fresh one, without a valid signature: the
    // answers are the same.
    let prober = server.client("hn/tt");
    let answer = |e: congvan::client::ClientError| match e {
        congvan::client::ClientError::Api { status, code, .. } => (status, code),
        other => panic!("{other}"),
    };
    let existing = answer(
        prober
            .post_json::<_, serde_json::Value>(
                "/v1/documents",
                &badly_signed(&server, "hn/tt", &["hn"], &doc.id()),
            )
            .await
            .unwrap_err(),
    );
    let fresh = answer(
        prober
            .post_json::<_, serde_json::Value>(
                "/v1/documents",
                &badly_signed(&server, "hn/tt", &["hn"], &Uuid::now_v7().to_string()),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(existing, fresh);
    assert_eq!(existing, (422, "signature_invalid".to_owned()));

    // The sender itself still learns of its replays and conflicts at once.
    let (status, _) = doc.submit(&server, &district).await.unwrap();
    assert_eq!(status, 200);
    let mut changed = doc.clone();
    changed.manifest["subject"] = "Một trích yếu khác".into();
    assert_code(changed.submit(&server, &district).await, "id_conflict");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_prove_of_an_unknown_id_exits_non_zero() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let id = rejected_directive(&server, work.path()).await;
    let profile = auditor_profile(&server);
    let url = server.url();
    let prove = |id: &str| {
        congvan(
            &["audit", "prove", "--server", &url, id],
            &[Path::new("--profile"), &profile],
        )
    };
    let out = prove(&id.to_string());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Submission, then for each of three communes its delivery, its automatic 01 on
    // fetch, and its 02 or 03.
    assert!(text(&out).contains("10 events proved"), "{}", text(&out));
    let out = prove(&Uuid::now_v7().to_string());
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("no event of document"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_store_on_an_empty_directory_is_refused_and_creates_nothing() {
    let (dir, pki) = crate::support::fresh_pki();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = congvan(
        &["audit", "verify-store"],
        &[
            Path::new("--config"),
            &pki.server_config(),
            Path::new("--data"),
            &empty,
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("holds no store"), "{}", text(&out));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    // A directory that does not exist is not made either.
    let missing = dir.path().join("missing");
    let out = congvan(
        &["audit", "verify-store"],
        &[
            Path::new("--config"),
            &pki.server_config(),
            Path::new("--data"),
            &missing,
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(!missing.exists());
}
