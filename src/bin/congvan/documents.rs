//! The committee's commands: who am I, send, the lists, fetch, acknowledge, status, the
//! directory, edXML export, the incoming register, and the desk. Each builds a client from
//! the profile, makes one library call, and hands the answer to `render`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use congvan::client::endpoints::ListQuery;
use congvan::client::transfer::Watch;
use congvan::client::upload::Sent;
use uuid::Uuid;

use crate::args::{ClientArgs, DirectoryCommand, EdxmlCommand, RegisterCommand, SendArgs};
use crate::{operator, render, runtime};

/// `congvan whoami`.
pub fn whoami(client: &ClientArgs) -> Result<()> {
    let client = client.client()?;
    let me = runtime()?.block_on(client.whoami())?;
    println!("{}", serde_json::to_string_pretty(&me)?);
    Ok(())
}

/// `congvan send`: the files are checked before the profile is opened, so that `--to a b`
/// is explained before a passphrase is asked for.
pub fn send(client: &ClientArgs, doc: SendArgs) -> Result<()> {
    doc.check_files()?;
    let client = client.client()?;
    let (resume, edxml) = (doc.resume, doc.edxml.clone());
    // Only the watched sends catch Ctrl-C (the edXML send stops as it always did).
    let watch = Watch::terminal;
    let sent = runtime()?.block_on(async {
        match (resume, edxml) {
            (Some(id), _) => client.resume_send(&id, &watch()?).await,
            (None, Some(path)) => client.send_edxml(&path).await.map(Sent::Done),
            (None, None) => {
                // Unlock the signing keys first: a passphrase prompt must answer Ctrl-C
                // at once, before the watch takes it over.
                client.org_signer()?;
                client
                    .send_document_watched(&doc.into_request(), &watch()?)
                    .await
            }
        }
    })?;
    let outcome = match sent {
        Sent::Done(outcome) => outcome,
        Sent::Interrupted(report) => return Err(report.into()),
    };
    render::sent_outcome(&outcome);
    Ok(())
}

/// `congvan sent`.
pub fn sent(client: &ClientArgs, limit: usize) -> Result<()> {
    let client = client.client()?;
    let page = runtime()?.block_on(client.sent(&ListQuery::limit(limit.clamp(1, 500))))?;
    render::list(&page.items, true);
    let pending = runtime()?.block_on(client.pending_sent())?;
    render::pending_uploads(&pending);
    Ok(())
}

/// `congvan inbox`: most urgent first, then newest.
pub fn inbox(client: &ClientArgs, all: bool, history: bool, limit: usize) -> Result<()> {
    let client = client.client()?;
    let state = match (all, history) {
        (_, true) => "history",
        (true, _) => "all",
        _ => "new",
    };
    let query = ListQuery {
        state: Some(state.to_owned()),
        ..ListQuery::limit(limit.clamp(1, 500))
    };
    let mut page = runtime()?.block_on(client.inbox(&query))?;
    page.items
        .sort_by(|a, b| b.urgency.cmp(&a.urgency).then(b.seq.cmp(&a.seq)));
    render::list(&page.items, false);
    Ok(())
}

/// `congvan fetch`.
pub fn fetch(client: &ClientArgs, id: &Uuid, out: &Path) -> Result<()> {
    let client = client.client()?;
    // Ctrl-C and SIGTERM are caught so that the staging directory (decrypted text not
    // yet verified) is removed before the process ends.
    let fetched = runtime()?.block_on(async {
        let watch = Watch::terminal()?;
        client.fetch_document_watched(id, out, &watch).await
    })?;
    render::fetched(&fetched);
    Ok(())
}

/// `congvan ack`.
pub fn ack(client: &ClientArgs, id: &Uuid, status: &str, note: &str) -> Result<()> {
    let client = client.client()?;
    // The argument parser has already limited `status` to the codes a recipient sends.
    let status = congvan::document::receipt::ReceiptStatus::from_code(status)
        .with_context(|| format!("{status:?} is not a receipt status"))?;
    let answer = runtime()?.block_on(client.acknowledge(id, status, note))?;
    println!(
        "receipt {} for {} recorded at {}",
        answer.status, answer.document_id, answer.recorded_at
    );
    if let Some(number) = answer.incoming_number {
        println!("số đến (incoming number): {number}");
    }
    Ok(())
}

/// `congvan status`.
pub fn status(client: &ClientArgs, id: &Uuid) -> Result<()> {
    let client = client.client()?;
    let view = runtime()?.block_on(client.status(id))?;
    render::status(view);
    Ok(())
}

/// `congvan directory` (show the tree) and `directory set-key` (the operator's).
pub fn directory(
    profile: Option<PathBuf>,
    server: Option<String>,
    command: Option<DirectoryCommand>,
) -> Result<()> {
    match command {
        Some(DirectoryCommand::SetKey {
            config,
            org,
            cert,
            endorsement,
        }) => operator::set_key(config, &org, &cert, endorsement.as_deref()),
        None => {
            let profile = profile.ok_or_else(|| {
                anyhow::anyhow!(
                    "give --profile FILE to show the directory, or use `directory set-key`"
                )
            })?;
            let client = ClientArgs { profile, server }.client()?;
            let directory = runtime()?.block_on(client.directory())?;
            render::tree(&directory);
            Ok(())
        }
    }
}

/// `congvan edxml export`.
pub fn edxml(command: EdxmlCommand) -> Result<()> {
    let EdxmlCommand::Export { client, id, out } = command;
    let client = client.client()?;
    let exported = runtime()?.block_on(client.edxml_export(&id, &out))?;
    println!("wrote {}", exported.envelope.display());
    for packet in &exported.status_packets {
        println!("wrote {}", packet.display());
    }
    Ok(())
}

/// `congvan register …`.
pub fn register(command: RegisterCommand) -> Result<()> {
    match command {
        RegisterCommand::List {
            client,
            year,
            csv,
            pdf,
            font,
        } => {
            let client = client.client()?;
            let view = runtime()?.block_on(client.incoming_register(year))?;
            if let Some(file) = pdf {
                let font = congvan::registers::pdf::read_font(&font)?;
                let cover = congvan::registers::pdf::Cover {
                    org_name: view.org_name.clone(),
                    org: view.org.clone(),
                    year: view.year,
                    closed_at: view.closed_at.clone(),
                };
                let bytes = congvan::registers::pdf::incoming_pdf(&cover, &view.entries, &font)?;
                std::fs::write(&file, bytes)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                println!(
                    "wrote the {} register of {} ({} lines) to {}",
                    view.year,
                    view.org,
                    view.entries.len(),
                    file.display()
                );
                return Ok(());
            }
            if let Some(file) = csv {
                std::fs::write(&file, congvan::registers::incoming_csv(&view.entries))
                    .with_context(|| format!("cannot write {}", file.display()))?;
                println!(
                    "wrote {} lines of the {} register of {} to {}",
                    view.entries.len(),
                    view.year,
                    view.org,
                    file.display()
                );
                return Ok(());
            }
            render::register(&view);
            Ok(())
        }
        RegisterCommand::Paper {
            client,
            author,
            code,
            date,
            doc_type,
            subject,
            assigned_to,
            note,
        } => {
            let client = client.client()?;
            let paper = congvan::registers::PaperRegistration {
                author: nfc(&author),
                code: nfc(&code),
                date,
                doc_type: nfc(&doc_type),
                subject: nfc(&subject),
                assigned_to: nfc(&assigned_to),
                note: nfc(&note),
                year: None,
            };
            let (_, answer) = runtime()?.block_on(client.register_paper(&paper))?;
            println!(
                "registered: số đến {} of {} (paper)",
                answer.number, answer.year
            );
            Ok(())
        }
        RegisterCommand::Close { client, year } => {
            let client = client.client()?;
            let (_, answer) = runtime()?.block_on(client.close_register(year))?;
            println!(
                "the {} register of {} is closed ({} numbers), at {}",
                answer.year, answer.org, answer.count, answer.closed_at
            );
            Ok(())
        }
    }
}

/// Text as typed, in NFC (the form the register stores and compares).
fn nfc(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfc().collect()
}

/// `congvan desk`.
pub fn desk(client: congvan::client::Client, listen: SocketAddr, open: bool) -> Result<()> {
    runtime()?.block_on(async move {
        let listener = congvan::desk::bind_loopback(listen).await?;
        let port = listener.local_addr()?.port();
        let state = congvan::desk::DeskState::new(client, port)?;
        let url = state.launch_url().context("the desk has no launch token")?;
        // The link is the session: print it for this user only, never log it elsewhere.
        println!("congvan desk: open {url}");
        println!("(the link works once; stop the desk with Ctrl-C)");
        if open {
            if let Err(e) = std::process::Command::new("xdg-open").arg(&url).spawn() {
                eprintln!("congvan desk: cannot open a browser ({e}); open the link above by hand");
            }
        }
        congvan::desk::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(())
    })
}
