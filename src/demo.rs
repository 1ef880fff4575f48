//! `congvan demo`: the whole story on a temporary server, in one process.
//!
//! The Chương Mỹ district office (`hn/cm`) sends an unclassified directive to all its
//! communes and a "Mật" decision to two of them; each commune fetches, verifies,
//! decrypts and acknowledges; a final table shows every document × recipient with its
//! status and times. Then the 2025 reform: the plan for Chương Mỹ is applied to the running
//! server; the new ward and communes read their predecessors' archives, a document still
//! waiting at a merged commune is offered to its successor, which accepts it, and the
//! security officer's audit export still verifies. Everything is real: a DEMO PKI, TLS 1.3
//! with client certificates on 127.0.0.1, signatures, OpenPGP, durable storage. Nothing
//! outlives the run.

use std::path::Path;

use crate::api::StatusView;
use crate::client::endpoints::ListQuery;
use crate::client::send::SendRequest;
use crate::client::{Client, ClientError};
use crate::config::{ClientProfile, EMBEDDED_ORGS, EMBEDDED_REFORM_2025, ServerConfig};
use crate::directory::{Directory, OrgId};
use crate::document::manifest::{Classification, Urgency};
use crate::document::receipt::ReceiptStatus;
use crate::pki::demo::{self, DemoOptions};

/// Why the demonstration stopped.
#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

macro_rules! from_error {
    ($($t:ty),*) => {$(
        impl From<$t> for DemoError {
            fn from(e: $t) -> Self {
                DemoError(e.to_string())
            }
        }
    )*};
}
from_error!(
    ClientError,
    crate::server::ServerError,
    crate::pki::PkiError,
    crate::config::ConfigError,
    crate::directory::DirectoryError,
    crate::directory::reform::ReformError,
    crate::client::audit::VerifyError,
    std::io::Error
);

const DISTRICT: &str = "hn/cm";
const SECRET_SUBJECT: &str = "Về phương án nhân sự Đại hội (tài liệu Mật)";
const SECRET_CONTENT: &str = "NỘI DUNG MẬT: danh sách nhân sự dự kiến, không được phổ biến.";

fn org(id: &str) -> Result<OrgId, DemoError> {
    OrgId::parse(id).map_err(|e| DemoError(e.to_string()))
}

/// Runs the demonstration and prints what happens.
pub async fn run() -> Result<(), DemoError> {
    let work = tempfile::tempdir()?;
    println!(
        "congvan demo: DEMO PKI, server and data in {}",
        work.path().display()
    );
    let directory = Directory::from_toml(EMBEDDED_ORGS)?;
    let pki = demo::generate(
        &work.path().join("pki"),
        &directory,
        EMBEDDED_ORGS,
        &DemoOptions::default(),
    )?;
    let mut config = ServerConfig::load(&pki.server_config())?;
    config.data_dir = work.path().join("data");
    let server = crate::server::Server::build(&config)?;
    let registry = server.state().registry.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://localhost:{}", listener.local_addr()?.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    println!("server listening on {url} (TLS 1.3, client certificates required)\n");

    let mut result = story(&pki, &url, work.path()).await;
    if result.is_ok() {
        result = reform_story(&pki, &url, work.path(), &config, &registry).await;
    }
    let _ = stop.send(());
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(DemoError(e.to_string())),
    }
    result?;

    // The server must hold neither the subject nor the content of the "Mật" document.
    let leaks = grep_dir(&work.path().join("data"), &[SECRET_SUBJECT, SECRET_CONTENT])?;
    if leaks.is_empty() {
        println!(
            "\nthe server's data directory contains neither the subject nor the content of the Mật decision"
        );
        Ok(())
    } else {
        Err(DemoError(format!(
            "classified text found in the server's data: {leaks:?}"
        )))
    }
}

fn client_for(pki: &demo::Layout, id: &str, url: &str) -> Result<Client, DemoError> {
    let profile = ClientProfile::load(&pki.org_profile(&org(id)?))?;
    Ok(Client::new(&profile, url)?)
}

async fn story(pki: &demo::Layout, url: &str, work: &Path) -> Result<(), DemoError> {
    let district = client_for(pki, DISTRICT, url)?;
    let files = work.join("outbox");
    std::fs::create_dir_all(&files)?;
    let directive = files.join("Chỉ thị 05-CT-HU chuyển đổi số.txt");
    std::fs::write(
        &directive,
        "HUYỆN ỦY CHƯƠNG MỸ\nCHỈ THỊ về đẩy mạnh chuyển đổi số trong hoạt động của Đảng.\n",
    )?;
    let secret = files.join("Quyết định nhân sự.txt");
    std::fs::write(&secret, SECRET_CONTENT)?;

    let base = SendRequest {
        to_children: vec![org(DISTRICT)?],
        urgency: Urgency::Khan,
        steering: 2,
        place: "Chương Mỹ".into(),
        ..SendRequest::new(
            "CT",
            "05",
            "CT/HU",
            "Về đẩy mạnh chuyển đổi số trong hoạt động của Đảng",
            vec![directive],
        )
    };
    let sent_directive = district.send_document(&base).await?;
    println!(
        "{DISTRICT} sent directive 05-CT/HU to {} communes: {}",
        sent_directive.recipients.len(),
        sent_directive.id
    );
    let secret_request = SendRequest {
        to: vec![org("hn/cm/chuc-son")?, org("hn/cm/xuan-mai")?],
        to_children: Vec::new(),
        doc_type: "QĐ".into(),
        number: "112".into(),
        notation: "QĐ/HU".into(),
        subject: SECRET_SUBJECT.into(),
        urgency: Urgency::ThuongKhan,
        classification: Classification::Mat,
        steering: 1,
        files: vec![secret],
        ..base
    };
    let sent_secret = district.send_document(&secret_request).await?;
    println!(
        "{DISTRICT} sent Mật decision 112-QĐ/HU, encrypted end to end to 2 communes: {}\n",
        sent_secret.id
    );

    let mut communes: Vec<String> = sent_directive
        .recipients
        .iter()
        .map(ToString::to_string)
        .collect();
    communes.sort();
    for commune in &communes {
        let client = client_for(pki, commune, url)?;
        let new = ListQuery {
            state: Some("new".into()),
            ..ListQuery::default()
        };
        let inbox: crate::api::ListPage = client.inbox(&new).await?;
        for item in inbox.items {
            let out = work
                .join("received")
                .join(commune.replace('/', "."))
                .join(item.id.to_string());
            let fetched = client.fetch_document(&item.id, &out).await?;
            println!(
                "{commune}: verified {} signatures, {} {}-{} \"{}\"{}",
                fetched.signers.len(),
                fetched.manifest.doc_type,
                fetched.manifest.code.number,
                fetched.manifest.code.notation,
                fetched.manifest.subject,
                if fetched.manifest.classification.is_classified() {
                    " (decrypted)"
                } else {
                    ""
                }
            );
            client
                .acknowledge(&item.id, ReceiptStatus::Accepted, "Đã tiếp nhận và vào sổ")
                .await?;
        }
    }

    println!();
    for (label, id) in [
        ("CT 05-CT/HU", sent_directive.id),
        ("QĐ 112-QĐ/HU (Mật)", sent_secret.id),
    ] {
        let status: StatusView = district.status(&id).await?;
        println!("{label}");
        for line in crate::client::table::status_lines(&status) {
            println!("  {line}");
        }
    }
    Ok(())
}

/// The 2025 reform on the live server: a directive waits, unfetched, at Tân Tiến; the plan
/// is applied; the successors' archives are listed; the directive is offered to Tân
/// Tiến's archive holder, which accepts it; the officer's export verifies.
async fn reform_story(
    pki: &demo::Layout,
    url: &str,
    work: &Path,
    config: &ServerConfig,
    registry: &crate::server::registry::Registry,
) -> Result<(), DemoError> {
    let district = client_for(pki, DISTRICT, url)?;
    let file = work.join("outbox").join("Thông báo 20-TB-HU.txt");
    std::fs::write(&file, "Thông báo lịch sinh hoạt chi bộ tháng 7.\n")?;
    let waiting = district
        .send_document(&SendRequest {
            to: vec![org("hn/cm/tan-tien")?],
            ..SendRequest::new(
                "TB",
                "20",
                "TB/HU",
                "Về lịch sinh hoạt chi bộ tháng 7",
                vec![file],
            )
        })
        .await?;
    println!(
        "\n{DISTRICT} sent notice 20-TB/HU to hn/cm/tan-tien, which has not fetched it: {}",
        waiting.id
    );

    println!("\n== 1 July 2025: the reform (config/reform-2025-chuong-my.toml) ==");
    let (base, _) = config.load_directory()?;
    let outcome = crate::directory::reform::apply_to_dir(
        &base,
        &config.reforms_dir,
        EMBEDDED_REFORM_2025,
        false,
    )?;
    for effect in &outcome.effects {
        println!("  - {effect}");
    }
    // The server notices the plan within its reload interval; do it now for the demo.
    registry
        .reload()
        .map_err(|e| DemoError(format!("reform plan not put in force: {e}")))?;
    let officer_profile = ClientProfile::load(&pki.auditor_profile(&org(DISTRICT)?))?;
    let officer = Client::new(&officer_profile, url)?;
    wait_for_reform_event(&officer).await?;
    println!(
        "plan {} in force and logged (`reorganised`)\n",
        outcome.plan.id
    );

    for successor in ["hn/chuong-my", "hn/xuan-mai", "hn/phu-nghia"] {
        let client = client_for(pki, successor, url)?;
        let inbox: crate::api::ListPage = client.inbox(&ListQuery::default()).await?;
        let sent: crate::api::ListPage = client.sent(&ListQuery::default()).await?;
        let mut from: Vec<String> = inbox
            .items
            .iter()
            .filter_map(|i| i.addressed_to.clone())
            .collect();
        from.sort();
        from.dedup();
        println!(
            "{successor} reads its predecessors' archive: {} received, {} sent (inherited from {})",
            inbox.items.len(),
            sent.items.len(),
            from.join(", ")
        );
    }

    let status: StatusView = district.status(&waiting.id).await?;
    for r in &status.recipients {
        println!(
            "status of 20-TB/HU at {}: {} (offered to {})",
            r.org,
            r.status.clone().unwrap_or_else(|| "not fetched".into()),
            r.offered_to.clone().unwrap_or_else(|| "-".into())
        );
    }
    let holder = client_for(pki, "hn/xuan-mai", url)?;
    let fetched = holder
        .fetch_document(&waiting.id, &work.join("received").join("hn.xuan-mai"))
        .await?;
    holder
        .acknowledge(&waiting.id, ReceiptStatus::Arrived, "")
        .await?;
    let accepted = holder
        .acknowledge(
            &waiting.id,
            ReceiptStatus::Accepted,
            "Tiếp nhận thay Đảng ủy xã Tân Tiến (đã sáp nhập)",
        )
        .await?;
    println!(
        "hn/xuan-mai verified {} signatures of the old district and accepted it for hn/cm/tan-tien: số đến {}",
        fetched.signers.len(),
        accepted
            .incoming_number
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into())
    );

    let export = work.join("audit-export.json");
    officer.export(&export).await?;
    let verified = crate::client::audit::verify_export(&export, &officer_profile)?;
    if !verified.problems.is_empty() {
        return Err(DemoError(format!(
            "the audit export does not verify: {:?}",
            verified.problems
        )));
    }
    println!(
        "audit export of {DISTRICT}'s security officer verifies after the reform: {} entries, {} receipt signatures checked{}",
        verified.entries,
        verified.receipts,
        if verified.recomputed_root {
            ", root recomputed"
        } else {
            ""
        }
    );
    Ok(())
}

/// Waits (at most 10 s) until the log holds a `reorganised` event.
async fn wait_for_reform_event(officer: &Client) -> Result<(), DemoError> {
    for _ in 0..100 {
        let size = officer.fetch_checkpoint().await?.size;
        let entries = officer.visible_entries(size).await?;
        if entries.iter().any(|e| {
            matches!(
                crate::ledger::Event::from_leaf(e.leaf.get().as_bytes()),
                Ok(crate::ledger::Event::Reorganised { .. })
            )
        }) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(DemoError("the reform was not logged within 10 s".into()))
}

/// Files under `dir` containing any of `needles` (as UTF-8 bytes).
fn grep_dir(dir: &Path, needles: &[&str]) -> Result<Vec<String>, DemoError> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else if path.is_file() {
            // Regular files only: the data directory also holds the server's backup socket.
            let bytes = std::fs::read(&path)?;
            for needle in needles {
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(format!("{}: {needle}", path.display()));
                }
            }
        }
    }
    Ok(hits)
}
