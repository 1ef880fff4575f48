//! Online backup and restore: `congvan backup` of a running server under load, a backup
//! killed with SIGKILL, `backup verify`, `restore` and a server started on the result, and
//! a restored older backup refused until the operator acknowledges the rollback, while
//! auditors' remembered checkpoints tell the two cases apart.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use congvan::client::Client;
use congvan::client::send::SendRequest;
use congvan::document::manifest::Classification;
use uuid::Uuid;

use crate::support::{TestServer, assert_code, assert_ok, congvan, congvan_command, run_ok, st};

const RECIPIENT: &str = "hn/cm/chuc-son";

fn auditor(server: &TestServer) -> Client {
    Client::new(&server.auditor_profile("hn/cm"), &server.url()).unwrap()
}

/// Sends one unclassified document of `size` bytes from the district to a commune (at
/// most 64 KiB travels inline and is kept in the database; larger is a payload file).
async fn send(server: &TestServer, work: &Path, size: usize) -> Uuid {
    let mut body: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    // Each payload its own, so that payload files are not shared by digest.
    let unique = Uuid::now_v7();
    let n = body.len().min(16);
    body[..n].copy_from_slice(&unique.as_bytes()[..n]);
    send_bytes(server, work, body).await
}

/// Sends one document whose payload is `body`.
async fn send_bytes(server: &TestServer, work: &Path, body: Vec<u8>) -> Uuid {
    send_as(&server.client("hn/cm"), work, body).await
}

/// Sends one document whose payload is `body` as `client` (the district).
async fn send_as(client: &Client, work: &Path, body: Vec<u8>) -> Uuid {
    let file = work.join(format!("van-ban-{}.bin", Uuid::now_v7()));
    std::fs::write(&file, body).unwrap();
    let request = SendRequest {
        to: vec![RECIPIENT.parse().unwrap()],
        classification: Classification::Thuong,
        ..SendRequest::new(
            "CT",
            &crate::support::next_number(),
            "CT/HU",
            "Về sao lưu dữ liệu",
            vec![file],
        )
    };
    client.send_document(&request).await.unwrap().id
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `congvan backup` of `server` into `out`, retried while an earlier (killed) backup's
/// snapshot is still being released.
fn backup(server: &TestServer, out: &Path) -> Output {
    let config = server.pki.server_config();
    let data = server.dir.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let result = congvan([
            "backup",
            "--config",
            s(&config),
            "--data",
            s(&data),
            "--out",
            s(out),
        ]);
        if result.status.success()
            || !text(&result).contains("already running")
            || Instant::now() > deadline
        {
            return result;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_under_continuous_submissions_restores_to_a_server_that_starts() {
    // Continuous submissions from one committee: no request rate limit in the way.
    let unlimited = |c: &mut congvan::config::ServerConfig| {
        c.limits.requests_per_minute = 1_000_000;
        c.limits.request_burst = 1_000_000;
    };
    let server = TestServer::start_with(unlimited).await;
    let work = tempfile::tempdir().unwrap();
    // A payload file (100 KiB), small payloads in the database, a fetch and a receipt.
    let large = send(&server, work.path(), 100 * 1024).await;
    let mut accepted = vec![large];
    for _ in 0..3 {
        accepted.push(send(&server, work.path(), 2 * 1024).await);
    }
    let commune = server.client(RECIPIENT);
    commune
        .fetch_document(&accepted[1], &work.path().join("fetched-1"))
        .await
        .unwrap();
    commune
        .acknowledge(&accepted[1], st("01"), "")
        .await
        .unwrap();
    let numbered = commune
        .acknowledge(&accepted[1], st("03"), "")
        .await
        .unwrap();
    assert_eq!(numbered.incoming_number, Some(1));
    // A paper document in the same register (it has no log entry to follow).
    let (status, _): (u16, serde_json::Value) = commune
        .post_json(
            "/v1/registers/incoming",
            &serde_json::json!({"author": "UBND huyện Chương Mỹ", "code": "45/UBND",
                "date": "2026-03-01", "doc_type": "CV", "subject": "Về lịch tiếp dân"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);

    // Submissions run without pause while two backups are taken.
    let stop = Arc::new(AtomicBool::new(false));
    let worst_ms = Arc::new(AtomicU64::new(0));
    let server = Arc::new(server);
    let load = {
        let (server, stop, worst_ms) = (server.clone(), stop.clone(), worst_ms.clone());
        let work = work.path().to_owned();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                ids.push(send(&server, &work, 2 * 1024).await);
                worst_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            ids
        })
    };
    let out = work.path().join("backup");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = backup(&server, &out);
    assert_ok(&first);
    assert!(text(&first).contains("(full)"), "{}", text(&first));
    let second = backup(&server, &out);
    assert_ok(&second);
    assert!(text(&second).contains("(incremental)"), "{}", text(&second));
    stop.store(true, Ordering::Relaxed);
    let during = load.await.unwrap();
    assert!(
        during.len() >= 4,
        "submissions stalled during the backups: only {} accepted",
        during.len()
    );
    accepted.extend(during);
    // Quiet now: a third, incremental backup holds everything acknowledged.
    let third = backup(&server, &out);
    assert_ok(&third);
    assert!(
        text(&third).contains("backup set 3 complete"),
        "{}",
        text(&third)
    );
    for out in [&first, &second, &third] {
        println!("{}", String::from_utf8_lossy(&out.stdout));
    }
    let remembered = auditor(&server).audit_checkpoint().await.unwrap().current;

    let verified = congvan(["backup", "verify", s(&out)]);
    assert_ok(&verified);
    assert!(text(&verified).contains("3 sets"), "{}", text(&verified));
    // Each set carries the certificate chains and the signer list its documents refer to
    // once each, not once per document: one signing district, so its two chains and one
    // signer list at most, for many more documents.
    let (mut docs_carried, mut certs_carried) = (0, 0);
    for set in std::fs::read_dir(out.join("sets")).unwrap() {
        let records = std::fs::read_to_string(set.unwrap().path().join("records.jsonl")).unwrap();
        let mut certs = std::collections::HashSet::new();
        for line in records.lines() {
            let item: serde_json::Value = serde_json::from_str(line).unwrap();
            match item["tree"].as_str() {
                Some("docs") => docs_carried += 1,
                Some("certs") => {
                    assert!(
                        certs.insert(item["key"].to_string()),
                        "carried twice: {line}"
                    );
                }
                _ => {}
            }
        }
        assert!(certs.len() <= 3, "{certs:?}");
        certs_carried += certs.len();
    }
    assert!(
        certs_carried >= 3 && docs_carried > 2 * certs_carried,
        "{docs_carried} documents, {certs_carried} chains and signer lists"
    );
    // What the district reads of a document, to compare after the restore.
    let view_before: serde_json::Value = server
        .client("hn/cm")
        .get_json(&format!("/v1/documents/{large}"))
        .await
        .unwrap();

    let restored = server.dir.path().join("data-restored");
    let result = congvan(["restore", s(&out), "--data", s(&restored)]);
    assert_ok(&result);
    // A restore never writes over a directory in use.
    let again = congvan(["restore", s(&out), "--data", s(&restored)]);
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    let server = Arc::into_inner(server).unwrap();
    let (dir, pki) = server.stop().await;
    // The operator's offline check of the restored store passes too.
    let store_check = congvan([
        "audit",
        "verify-store",
        "--config",
        s(&pki.server_config()),
        "--data",
        s(&restored),
    ]);
    assert_ok(&store_check);
    let server = TestServer::start_in_with(dir, pki, |c| {
        unlimited(c);
        c.data_dir = restored.clone();
    })
    .await;
    // Every acknowledged document is there, payload and signatures verified end to end.
    let commune = server.client(RECIPIENT);
    commune
        .fetch_document(&large, &work.path().join("fetched-large"))
        .await
        .unwrap();
    let last = *accepted.last().unwrap();
    commune
        .fetch_document(&last, &work.path().join("fetched-last"))
        .await
        .unwrap();
    let inbox: serde_json::Value = commune.get_json("/v1/inbox?limit=500").await.unwrap();
    let listed = inbox.to_string();
    for id in &accepted {
        assert!(
            listed.contains(&id.to_string()),
            "{id} missing after restore"
        );
    }
    // The registers came back: the incoming register's two lines, its next number, and
    // the outgoing numbers in use.
    let register: congvan::api::IncomingRegisterView =
        commune.get_json("/v1/registers/incoming").await.unwrap();
    assert_eq!(register.entries.len(), 2, "{register:?}");
    assert_eq!(register.entries[0].document_id, Some(accepted[1]));
    commune.acknowledge(&last, st("01"), "").await.unwrap();
    let next = commune.acknowledge(&last, st("03"), "").await.unwrap();
    assert_eq!(next.incoming_number, Some(3));
    let view: serde_json::Value = server
        .client("hn/cm")
        .get_json(&format!("/v1/documents/{large}"))
        .await
        .unwrap();
    // The restored document reads as it did: chains, signers and receipt included.
    assert_eq!(view, view_before);
    let code = &view["manifest"]["code"];
    let mut again = crate::support::TestDoc::new("hn/cm", &[RECIPIENT]);
    again.manifest["code"] = code.clone();
    let err = again
        .submit(&server, &server.client("hn/cm"))
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("number_in_use"), "{err}");
    // The auditor's remembered checkpoint is still consistent, and stays so as the
    // restored server's log grows; new documents list as the newest.
    let check = auditor(&server).audit_checkpoint().await.unwrap();
    assert_eq!(check.previous.unwrap().size, remembered.size);
    let newest = send(&server, work.path(), 1024).await;
    let inbox: serde_json::Value = commune.get_json("/v1/inbox?limit=1").await.unwrap();
    assert!(inbox.to_string().contains(&newest.to_string()), "{inbox}");
    let check = auditor(&server).audit_checkpoint().await.unwrap();
    assert!(check.current.size > remembered.size);
    println!(
        "backup: {} submissions accepted during two backups, slowest {} ms",
        accepted.len(),
        worst_ms.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_midway_is_refused_as_incomplete_and_the_next_one_completes() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    // Enough payload bytes that a backup takes a while to stream.
    for _ in 0..6 {
        send(&server, work.path(), 2 << 20).await;
    }
    let config = server.pki.server_config();
    let data = server.dir.path().join("data");
    let out = work.path().join("backup");
    let mut outcomes = (0, 0);
    for delay_ms in [5u64, 30, 80, 150, 400, 3000] {
        let mut child = congvan_command()
            .args(["backup", "--config", s(&config), "--data", s(&data)])
            .args(["--out", s(&out)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        // `Child::kill` is SIGKILL: no clean-up runs in the backup process.
        child.kill().unwrap();
        child.wait().unwrap();
        let verified = congvan(["backup", "verify", s(&out)]);
        if verified.status.success() {
            outcomes.0 += 1;
        } else {
            assert!(
                text(&verified).contains("incomplete"),
                "a killed backup must verify or be refused as incomplete: {}",
                text(&verified)
            );
            assert_eq!(verified.status.code(), Some(3), "does not verify: exit 3");
            outcomes.1 += 1;
            // Nothing that is not complete can be restored either.
            let restore = congvan([
                "restore",
                s(&out),
                "--data",
                s(&work.path().join(format!("r{delay_ms}"))),
            ]);
            assert!(!restore.status.success());
            assert!(text(&restore).contains("incomplete"), "{}", text(&restore));
        }
        // The server is unharmed and takes submissions.
        send(&server, work.path(), 1024).await;
    }
    println!(
        "killed backups: {} complete and verified, {} refused as incomplete",
        outcomes.0, outcomes.1
    );
    assert!(
        outcomes.1 > 0,
        "no kill landed during a backup: {outcomes:?}"
    );
    // The next backup discards the interrupted set and completes.
    let done = backup(&server, &out);
    assert_ok(&done);
    println!("{}", String::from_utf8_lossy(&done.stdout));
    let verified = congvan(["backup", "verify", s(&out)]);
    assert_ok(&verified);
    // Payload files travel once, by digest: a new document whose payload the backup
    // already holds does not send it again.
    let (_, blob_path) = first_blob(&out);
    send_bytes(&server, work.path(), std::fs::read(&blob_path).unwrap()).await;
    let again = backup(&server, &out);
    assert_ok(&again);
    assert!(
        text(&again).contains("1 payload files (0.0 MiB received, 1 already here)"),
        "{}",
        text(&again)
    );
    run_ok(["backup", "verify", s(&out)]);
    // A damaged payload file is caught by its digest.
    let (_, blob) = first_blob(&out);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let verified = congvan(["backup", "verify", s(&out)]);
    assert!(!verified.status.success());
    assert!(text(&verified).contains("digest"), "{}", text(&verified));
}

/// A payload file of a backup directory: its name and path.
fn first_blob(out: &Path) -> (String, PathBuf) {
    let path = std::fs::read_dir(out.join("blobs/sha256"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    (
        path.file_name().unwrap().to_string_lossy().into_owned(),
        path,
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn memory_file(server_dir: &Path) -> PathBuf {
    server_dir.join("latest-checkpoint.note")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_backup_restored_is_refused_until_acknowledged_and_auditors_see_the_rollback() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    send(&server, work.path(), 1024).await;
    let out = work.path().join("backup");
    assert_ok(&backup(&server, &out));
    let older = work.path().join("backup-older");
    copy_dir(&out, &older);
    // Later: more documents, an auditor sees them, and the latest backup.
    for _ in 0..3 {
        send(&server, work.path(), 1024).await;
    }
    let seen = auditor(&server).audit_checkpoint().await.unwrap().current;
    assert_ok(&backup(&server, &out));
    let (dir, pki) = server.stop().await;
    let data_older = dir.path().join("data-older");
    let data_latest = dir.path().join("data-latest");
    run_ok(["restore", s(&older), "--data", s(&data_older)]);
    run_ok(["restore", s(&out), "--data", s(&data_latest)]);

    // The older data: the real binary refuses to start, and says how to go on.
    let refused = congvan([
        "serve",
        "--config",
        s(&pki.server_config()),
        "--listen",
        "127.0.0.1:0",
        "--data",
        s(&data_older),
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("does not extend")
            && text(&refused).contains("--acknowledge-rollback"),
        "{}",
        text(&refused)
    );

    // The latest backup: starts, and the auditor's checkpoint is still consistent.
    let server = TestServer::start_in_with(dir, pki, |c| c.data_dir = data_latest.clone()).await;
    let check = auditor(&server).audit_checkpoint().await.unwrap();
    assert_eq!(check.previous.unwrap().size, seen.size);
    let (dir, pki) = server.stop().await;

    // The older one, acknowledged: the server starts, keeps the abandoned checkpoint, and
    // the auditor is told loudly that the log was rolled back.
    let memory = memory_file(dir.path());
    let server = TestServer::start_in_with(dir, pki, |c| {
        c.data_dir = data_older.clone();
        c.acknowledge_rollback = true;
    })
    .await;
    let err = auditor(&server).audit_checkpoint().await.unwrap_err();
    assert!(err.to_string().contains("rolled back"), "{err}");
    let abandoned = std::fs::read_dir(server.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".rolled-back-"))
        .expect("the abandoned checkpoint is kept");

    // Should the memory again hold a checkpoint this log contradicts, the running
    // server signs nothing.
    std::fs::copy(&abandoned, &memory).unwrap();
    send(&server, work.path(), 1024).await;
    assert_code(
        server.client("hn/cm").get_text("/v1/log/checkpoint").await,
        "log_rollback",
    );
}

/// Sends one request line to the server's backup socket and returns the first answer.
fn ask_socket(server: &TestServer, request: &[u8]) -> serde_json::Value {
    use std::io::{BufRead, Write};
    let socket = server.dir.path().join("data/admin.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream.write_all(request).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backup_socket_refuses_bad_requests_and_another_servers_backup_directory() {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    send(&server, work.path(), 1024).await;
    for (request, expect) in [
        (&b"garbage\n"[..], "bad request"),
        (
            b"{\"log_size\": 1, \"checkpoint_size\": 0, \"extra\": 1}\n",
            "bad request",
        ),
        (
            b"{\"log_size\": 999999, \"checkpoint_size\": 0}\n",
            "rolled back",
        ),
        (
            b"{\"log_size\": 1, \"checkpoint_size\": 5}\n",
            "cannot come from",
        ),
    ] {
        let answer = tokio::task::block_in_place(|| ask_socket(&server, request));
        assert_eq!(answer["kind"], "error", "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(expect),
            "{answer}"
        );
    }
    // A backup directory of another server (its own keys and history) is not continued.
    let other = TestServer::start().await;
    for _ in 0..3 {
        send(&other, work.path(), 1024).await;
    }
    let out = work.path().join("backup");
    assert_ok(&backup(&server, &out));
    let refused = backup(&other, &out);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("another history"),
        "{}",
        text(&refused)
    );
    // Nothing was left behind: the directory still verifies, and the server still backs up.
    run_ok(["backup", "verify", s(&out)]);
    assert_ok(&backup(&server, &out));
    // One backup into a directory at a time (here the test holds its lock).
    let lock = std::fs::File::open(out.join("lock")).unwrap();
    fs2::FileExt::lock_exclusive(&lock).unwrap();
    let busy = backup(&server, &out);
    assert!(!busy.status.success());
    assert!(text(&busy).contains("another backup"), "{}", text(&busy));
    drop(lock);
    assert_ok(&backup(&server, &out));
    run_ok(["backup", "verify", s(&out)]);
}

/// The real server, killed with SIGKILL while a backup streams from it: the backup fails
/// cleanly (nothing half-written is left to restore), the restarted server starts on its
/// data, and the next backup completes and verifies.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_during_a_backup_leaves_nothing_half_written() {
    let (dir, pki) = crate::support::fresh_pki();
    let data = dir.path().join("data");
    let config = pki.server_config();
    let args = [
        "--config",
        s(&config),
        "--listen",
        "127.0.0.1:0",
        "--data",
        s(&data),
    ];
    let (mut server, addr, _) = crate::cli::spawn_server(dir.path(), &args);
    let url = format!("https://localhost:{}", addr.rsplit(':').next().unwrap());
    let profile =
        congvan::config::ClientProfile::load(&pki.org_profile(&"hn/cm".parse().unwrap())).unwrap();
    let district = Client::new(&profile, &url).unwrap();
    let work = tempfile::tempdir().unwrap();
    for i in 0..6u8 {
        let mut body = vec![i; 2 << 20];
        body[0] = 0xff;
        send_as(&district, work.path(), body).await;
    }
    let out = work.path().join("backup");
    let backup = congvan_command()
        .args(["backup", "--config", s(&config), "--data", s(&data)])
        .args(["--out", s(&out)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill once data is arriving, so the kill lands mid-stream.
    let records = out.join("sets/000001.partial/records.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&records).map_or(0, |m| m.len()) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let failed = tokio::task::block_in_place(|| backup.wait_with_output().unwrap());
    let verified = congvan(["backup", "verify", s(&out)]);
    println!("the backup during the kill: {}", text(&failed).trim());
    if failed.status.success() {
        // The backup finished before the kill: then it is whole.
        assert_ok(&verified);
    } else {
        assert!(
            text(&failed).contains("before the backup was complete"),
            "{}",
            text(&failed)
        );
        assert!(
            text(&verified).contains("incomplete"),
            "{}",
            text(&verified)
        );
        assert_eq!(
            failed.status.code(),
            Some(7),
            "the server did not finish: exit 7"
        );
        assert!(!out.join("sets/000001.partial").exists());
        // With the server gone, a backup cannot reach it: exit 6.
        let unreachable = congvan([
            "backup",
            "--config",
            s(&config),
            "--data",
            s(&data),
            "--out",
            s(&out),
        ]);
        assert_eq!(unreachable.status.code(), Some(6), "{}", text(&unreachable));
    }

    // Restarted on the same data, the server backs up completely.
    let (mut server, _, _) = crate::cli::spawn_server(dir.path(), &args);
    let done = congvan([
        "backup",
        "--config",
        s(&config),
        "--data",
        s(&data),
        "--out",
        s(&out),
    ]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert_ok(&done);
    run_ok(["backup", "verify", s(&out)]);
}
