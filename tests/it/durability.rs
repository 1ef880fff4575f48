//! Durability: the real server killed with SIGKILL at random moments under load, and a
//! full disk. Nothing acknowledged may be lost; the log must stay consistent with every
//! checkpoint issued before a kill; retries must be idempotent; nothing half-written may
//! show.
//!
//! CI runs a few kills; `CONGVAN_SLOW_TESTS=1` runs `CONGVAN_CRASH_KILLS` (default 1000).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use congvan::client::Client;
use congvan::config::ClientProfile;
use congvan::pki::demo::Layout;

use crate::support::{TestDoc, fresh_pki, st};

const SENDERS: [&str; 2] = ["hn/cm", "hn"];
const RECIPIENT: &str = "hn/cm/xuan-mai";

struct Running {
    child: Child,
    url: String,
}

fn start(dir: &Path, pki: &Layout) -> Running {
    let data = dir.join("data");
    let (child, addr, _) = crate::cli::spawn_server(
        dir,
        &[
            "--config",
            pki.server_config().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ],
    );
    let port = addr.rsplit(':').next().unwrap();
    Running {
        child,
        url: format!("https://localhost:{port}"),
    }
}

fn client(pki: &Layout, org: &str, url: &str) -> Client {
    let profile = ClientProfile::load(&pki.org_profile(&org.parse().unwrap())).unwrap();
    Client::new(&profile, url).unwrap()
}

fn auditor(pki: &Layout, url: &str) -> Client {
    let profile = ClientProfile::load(&pki.auditor_profile(&"hn/cm".parse().unwrap())).unwrap();
    Client::new(&profile, url).unwrap()
}

/// What the clients were told, so the restarted server can be held to it.
#[derive(Default)]
struct Acknowledged {
    /// Documents whose upload got a 201/200, with their payload digest.
    documents: BTreeMap<String, String>,
    /// Every document attempted (id → the document, to retry it).
    attempted: BTreeMap<String, TestDoc>,
    /// Receipts acknowledged with 201/200: (document, status).
    receipts: BTreeSet<String>,
    /// Checkpoints seen: (size, root).
    checkpoints: Vec<(u64, tlog_tiles::tlog::Hash)>,
    /// How many of the above were recorded before this round began.
    checkpoints_before_round: usize,
    /// Documents acknowledged in this round (at risk from this round's kill).
    documents_this_round: BTreeSet<String>,
    /// Receipts acknowledged in this round.
    receipts_this_round: BTreeSet<String>,
}

async fn workload(pki: Layout, url: String, acked: Arc<Mutex<Acknowledged>>, seed: u64) {
    let server_like = crate::support::SignerSet::new(&pki);
    let mut tasks = Vec::new();
    for (n, sender) in SENDERS.iter().enumerate() {
        let pki = pki.clone();
        let url = url.clone();
        let acked = acked.clone();
        let signers = server_like.clone();
        tasks.push(tokio::spawn(async move {
            let c = client(&pki, sender, &url);
            for i in 0..1_000u64 {
                let mut doc = TestDoc::new(sender, &[RECIPIENT]);
                doc.set_payload(
                    format!("{seed}-{n}-{i}")
                        .repeat(200 + (i as usize % 50))
                        .into_bytes(),
                );
                let id = doc.id();
                let body = doc.body(&signers.sign(&doc));
                acked
                    .lock()
                    .unwrap()
                    .attempted
                    .insert(id.clone(), doc.clone());
                if c.post_json::<_, serde_json::Value>("/v1/documents", &body)
                    .await
                    .is_err()
                {
                    return;
                }
                match doc.upload(&c, doc.payload.clone()).await {
                    Ok((201 | 200, _)) => {
                        let sha = doc.manifest["payload"]["sha256"]
                            .as_str()
                            .unwrap()
                            .to_owned();
                        let mut acked = acked.lock().unwrap();
                        acked.documents_this_round.insert(id.clone());
                        acked.documents.insert(id, sha);
                    }
                    _ => return,
                }
            }
        }));
    }
    // The recipient fetches and acknowledges what arrives.
    {
        let pki = pki.clone();
        let url = url.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let c = client(&pki, RECIPIENT, &url);
            let out = tempfile::tempdir().unwrap();
            loop {
                let Ok(page) = c
                    .get_json::<congvan::api::ListPage>("/v1/inbox?state=new&limit=20")
                    .await
                else {
                    return;
                };
                for item in page.items {
                    if c.fetch_document(&item.id, &out.path().join(item.id.to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    match c.acknowledge(&item.id, st("03"), "").await {
                        Ok(_) => {
                            let mut acked = acked.lock().unwrap();
                            acked.receipts.insert(item.id.to_string());
                            acked.receipts_this_round.insert(item.id.to_string());
                        }
                        Err(_) => return,
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    // A security officer collects checkpoints.
    {
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let c = auditor(&pki, &url);
            loop {
                match c.fetch_checkpoint().await {
                    Ok(cp) => acked.lock().unwrap().checkpoints.push((cp.size, cp.root)),
                    Err(_) => return,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn blob_digests(data: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(prefixes) = std::fs::read_dir(data.join("blobs/sha256")) {
        for prefix in prefixes.flatten() {
            for blob in std::fs::read_dir(prefix.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.push(blob.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Checks what the clients were told against the restarted server: everything when
/// `full`, else what this round acknowledged (older state was checked in its own round,
/// and is checked again in full every 50 rounds and at the end). Returns the current
/// checkpoint.
async fn check(
    pki: &Layout,
    url: &str,
    data: &Path,
    acked: &Acknowledged,
    full: bool,
) -> (u64, tlog_tiles::tlog::Hash) {
    let recipient = client(pki, RECIPIENT, url);
    for (id, sha) in acked
        .documents
        .iter()
        .filter(|(id, _)| full || acked.documents_this_round.contains(*id))
    {
        let mut response = recipient
            .get_stream(&format!("/v1/documents/{id}/payload"))
            .await
            .unwrap_or_else(|e| panic!("acknowledged document {id} lost: {e}"));
        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        while let Some(chunk) = response.chunk().await.unwrap() {
            hasher.update(&chunk);
        }
        assert_eq!(
            &congvan::pki::identity::hex(hasher.finish().as_ref()),
            sha,
            "payload of {id}"
        );
    }
    for id in acked
        .receipts
        .iter()
        .filter(|id| full || acked.receipts_this_round.contains(*id))
    {
        let sender = acked.attempted[id].manifest["sender"]
            .as_str()
            .unwrap()
            .to_owned();
        let status: congvan::api::StatusView = client(pki, &sender, url)
            .get_json(&format!("/v1/documents/{id}/status"))
            .await
            .unwrap();
        assert_eq!(
            status.recipients[0].status.as_deref(),
            Some("03"),
            "acknowledged receipt of {id} lost"
        );
    }
    // The log: consistent with every checkpoint seen before the kill.
    let audit = auditor(pki, url);
    let current = audit.fetch_checkpoint().await.unwrap();
    let from = if full {
        0
    } else {
        acked.checkpoints_before_round.saturating_sub(1)
    };
    for (size, root) in &acked.checkpoints[from..] {
        assert!(
            *size <= current.size,
            "the log shrank below a checkpoint of {size}"
        );
        if *size == 0 {
            continue;
        }
        let ok = if *size == current.size {
            *root == current.root
        } else {
            let proof: congvan::api::LogProof = audit
                .get_json(&format!(
                    "/v1/log/proofs/consistency?from={size}&to={}",
                    current.size
                ))
                .await
                .unwrap();
            let hashes: Vec<tlog_tiles::tlog::Hash> = proof
                .proof
                .iter()
                .map(|h| {
                    let b = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, h)
                        .unwrap();
                    tlog_tiles::tlog::Hash(<[u8; 32]>::try_from(b.as_slice()).unwrap())
                })
                .collect();
            congvan::ledger::check_consistency(&hashes, *size, *root, current.size, current.root)
        };
        assert!(
            ok,
            "the log is not consistent with a checkpoint of {size} issued before the kill"
        );
    }
    // No temporary upload files, and no blob that no document names.
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);
    let known: BTreeSet<String> = acked
        .attempted
        .values()
        .map(|d| d.manifest["payload"]["sha256"].as_str().unwrap().to_owned())
        .collect();
    for blob in blob_digests(data) {
        assert!(known.contains(&blob), "orphan blob {blob}");
    }
    (current.size, current.root)
}

/// Retries, with their original ids, every attempted document that was never
/// acknowledged and a few that were; each must succeed (201 the first time, 200 after).
async fn retry_all(pki: &Layout, url: &str, acked: &mut Acknowledged) -> BTreeSet<String> {
    let signers = crate::support::SignerSet::new(pki);
    let pending: Vec<String> = acked
        .attempted
        .keys()
        .filter(|id| !acked.documents.contains_key(*id))
        .chain(acked.documents.keys().take(20))
        .cloned()
        .collect();
    for id in &pending {
        let doc = &acked.attempted[id];
        let sender = doc.manifest["sender"].as_str().unwrap();
        let c = client(pki, sender, url);
        let (status, _) = c
            .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(&signers.sign(doc)))
            .await
            .unwrap_or_else(|e| panic!("retry of {id}: {e}"));
        assert!(status == 200 || status == 201);
        let (status, _) = doc
            .upload(&c, doc.payload.clone())
            .await
            .unwrap_or_else(|e| panic!("retry upload of {id}: {e}"));
        assert!(status == 200 || status == 201);
        let sha = doc.manifest["payload"]["sha256"]
            .as_str()
            .unwrap()
            .to_owned();
        acked.documents.insert(id.clone(), sha);
    }
    pending.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let slow = std::env::var_os("CONGVAN_SLOW_TESTS").is_some();
    let kills: u64 = if slow {
        std::env::var("CONGVAN_CRASH_KILLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    } else {
        3
    };
    let (dir, pki) = fresh_pki();
    let data = dir.path().join("data");
    // The load is one process hammering the server: lift the per-identity rate limit.
    let config = pki.server_config();
    let text = std::fs::read_to_string(&config).unwrap()
        + "\n[limits]\nrequests_per_minute = 10000000\nrequest_burst = 1000000\n";
    std::fs::write(&config, text).unwrap();
    let mut acked = Acknowledged::default();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut survived = 0;
    for round in 0..kills {
        let mut server = tokio::task::block_in_place(|| start(dir.path(), &pki));
        let shared = Arc::new(Mutex::new(std::mem::take(&mut acked)));
        let load = tokio::spawn(workload(
            pki.clone(),
            server.url.clone(),
            shared.clone(),
            round,
        ));
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(150 + rng % 1200)).await;
        kill(&mut server.child);
        let _ = load.await;
        acked = Arc::try_unwrap(shared).ok().unwrap().into_inner().unwrap();

        let mut server = tokio::task::block_in_place(|| start(dir.path(), &pki));
        let current = check(&pki, &server.url, &data, &acked, false).await;
        if round + 1 == kills || round % 50 == 49 {
            // Retries are idempotent, and afterwards every attempt is acknowledged.
            acked.documents_this_round = retry_all(&pki, &server.url, &mut acked).await;
            check(&pki, &server.url, &data, &acked, round + 1 == kills).await;
        }
        // The next round's checks start from the state verified now.
        acked.checkpoints.push(current);
        acked.checkpoints_before_round = acked.checkpoints.len();
        acked.documents_this_round.clear();
        acked.receipts_this_round.clear();
        kill(&mut server.child);
        survived += 1;
    }
    eprintln!(
        "{survived} SIGKILLs survived: {} documents and {} receipts acknowledged, none lost; {} checkpoints stayed consistent",
        acked.documents.len(),
        acked.receipts.len(),
        acked.checkpoints.len()
    );
    assert!(!acked.documents.is_empty());
}

/// Mounts a tmpfs of `mib` MiB at `path`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(path.to_owned()))
    }

    fn resize(&self, mib: u64) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_gets_507_and_the_server_recovers_when_space_returns() {
    let (dir, pki) = fresh_pki();
    let data = dir.path().join("data");
    let Some(disk) = Tmpfs::mount(&data, 40) else {
        if std::env::var_os("CONGVAN_SKIP_MISSING_TOOLS").is_some() {
            eprintln!("skipping: cannot mount a tmpfs (needs root)");
            return;
        }
        panic!(
            "cannot mount a tmpfs for the full-disk test (needs root; set CONGVAN_SKIP_MISSING_TOOLS=1 to skip)"
        );
    };
    let config = pki.server_config();
    let text =
        std::fs::read_to_string(&config).unwrap() + "\n[limits]\ndisk_reserve_bytes = 4194304\n";
    std::fs::write(&config, text).unwrap();
    let server = tokio::task::block_in_place(|| start(dir.path(), &pki));
    let mut running = server;
    let sender = client(&pki, "hn/cm", &running.url);
    let signers = crate::support::SignerSet::new(&pki);
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 0..20u8 {
        let mut doc = TestDoc::new("hn/cm", &[RECIPIENT]);
        doc.set_payload(vec![i; 5 << 20]);
        let submitted = sender
            .post_json::<_, serde_json::Value>("/v1/documents", &doc.body(&signers.sign(&doc)))
            .await;
        let result = match submitted {
            Ok(_) => doc.upload(&sender, doc.payload.clone()).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => accepted.push(doc),
            Err(e) => {
                assert_eq!(e.api_code(), Some("insufficient_storage"), "{e}");
                refused = Some(doc);
                break;
            }
        }
    }
    let refused = refused.expect("the disk never filled up");
    assert!(accepted.len() >= 2, "only {} documents fit", accepted.len());
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);
    // The figures docs/SECURITY.md records ("Full disk").
    let free = fs2::available_space(&data).unwrap_or(0);
    eprintln!(
        "full disk: {} documents of 5 MiB accepted on a 40 MiB disk, the next refused with 507 while {} KiB were still free (reserve 4096 KiB)",
        accepted.len(),
        free / 1024
    );

    // Space returns: the refused document goes through, and nothing accepted was lost.
    disk.resize(200);
    let (status, _) = sender
        .post_json::<_, serde_json::Value>("/v1/documents", &refused.body(&signers.sign(&refused)))
        .await
        .unwrap();
    assert!(status == 201 || status == 200);
    assert_eq!(
        refused
            .upload(&sender, refused.payload.clone())
            .await
            .unwrap()
            .0,
        201
    );
    kill(&mut running.child);
    let mut restarted = tokio::task::block_in_place(|| start(dir.path(), &pki));
    let recipient = client(&pki, RECIPIENT, &restarted.url);
    for doc in accepted.iter().chain(std::iter::once(&refused)) {
        let bytes = recipient
            .get_stream(&format!("/v1/documents/{}/payload", doc.id()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..], &doc.payload[..]);
    }
    kill(&mut restarted.child);
}
