//! `congvan demo`: the whole story on a temporary server, in one process.
//!
//! The Chương Mỹ district office (`hn/cm`) sends an unclassified directive to all its
//! communes and a "Mật" decision to two of them; each commune fetches, verifies,
//! decrypts and acknowledges; a final table shows every document × recipient with its
//! status and times. Everything is real: a DEMO PKI, TLS 1.3 with client certificates on
//! 127.0.0.1, signatures, OpenPGP, durable storage. Nothing outlives the run.

use std::path::Path;

use crate::api::StatusView;
use crate::client::send::SendRequest;
use crate::client::{Client, ClientError};
use crate::config::{ClientProfile, EMBEDDED_ORGS, ServerConfig};
use crate::directory::{Directory, OrgId};
use crate::document::manifest::{Classification, Urgency};
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://localhost:{}", listener.local_addr()?.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    println!("server listening on {url} (TLS 1.3, client certificates required)\n");

    let result = story(&pki, &url, work.path()).await;
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
        let inbox: crate::api::ListPage = client.get_json("/v1/inbox?state=new").await?;
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
                .acknowledge(&item.id, "03", "Đã tiếp nhận và vào sổ")
                .await?;
        }
    }

    println!();
    for (label, id) in [
        ("CT 05-CT/HU", sent_directive.id),
        ("QĐ 112-QĐ/HU (Mật)", sent_secret.id),
    ] {
        let status: StatusView = district
            .get_json(&format!("/v1/documents/{id}/status"))
            .await?;
        println!("{label}  {id}");
        println!(
            "  {:<22} {:<22} {:<7} acknowledged",
            "recipient", "fetched", "status"
        );
        for r in status.recipients {
            println!(
                "  {:<22} {:<22} {:<7} {}",
                r.org,
                r.fetched_at.unwrap_or_else(|| "-".into()),
                r.status.unwrap_or_else(|| "-".into()),
                r.status_time.unwrap_or_else(|| "-".into())
            );
        }
    }
    Ok(())
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
