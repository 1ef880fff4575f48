//! The security officer's commands (`audit …`): checkpoints, proofs, exports, offline
//! verification and the overdue report; and the operator's `audit verify-store`.

use anyhow::{Context, Result};

use congvan::client::audit::exit;
use congvan::config::{ClientProfile, ServerConfig};

use crate::args::AuditCommand;
use crate::{audit_exit, render, runtime};

/// `congvan audit …`.
pub fn audit(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Checkpoint { client } => {
            let client = client.client()?;
            let check = runtime()?.block_on(client.audit_checkpoint())?;
            let cp = &check.current;
            match &check.previous {
                Some(prev) => println!(
                    "checkpoint verified: {} entries (was {}); the log is consistent with the one seen before",
                    cp.size, prev.size
                ),
                None => println!(
                    "checkpoint verified: {} entries (first seen; remembered)",
                    cp.size
                ),
            }
            print!("{}", cp.note);
            Ok(())
        }
        AuditCommand::Prove { client, id } => {
            let client = client.client()?;
            let (check, events) = runtime()?.block_on(client.prove_document(&id))?;
            if events.is_empty() {
                return Err(audit_exit(
                    exit::NOTHING_FOUND,
                    format!(
                        "no event of document {id} is visible to this profile in the log of {} \
                         entries: the id is unknown, or concerns nobody this profile may audit",
                        check.current.size
                    ),
                ));
            }
            println!(
                "document {id}: {} events proved in the log of {} entries",
                events.len(),
                check.current.size
            );
            render::proved(&events);
            Ok(())
        }
        AuditCommand::Export {
            client,
            out,
            start,
            end,
        } => {
            let client = client.client()?;
            let rt = runtime()?;
            let range = match (start, end) {
                (None, None) => None,
                (start, end) => {
                    let end = match end {
                        Some(end) => end,
                        None => rt.block_on(client.fetch_checkpoint())?.size,
                    };
                    Some((start.unwrap_or(0), end))
                }
            };
            let export = rt.block_on(client.export_range(&out, range))?;
            println!(
                "exported entries [{}, {}): {} readable with proofs, {} as leaf hashes only, to {}",
                export.start,
                export.end,
                export.entries.len(),
                export.hidden.len(),
                out.display()
            );
            Ok(())
        }
        AuditCommand::Verify { profile, file } => {
            let profile = ClientProfile::load(&profile)?;
            let report = congvan::client::audit::verify_export(&file, &profile)?;
            render::export_verified(&report);
            if report.problems.is_empty() {
                println!("everything verifies");
                return Ok(());
            }
            for problem in &report.problems {
                eprintln!("  {problem}");
            }
            let message = match report.first_bad_index {
                Some(i) => format!("the export does not verify: first bad entry is at index {i}"),
                None => "the export does not verify".to_owned(),
            };
            Err(audit_exit(exit::NOT_VERIFIED, message))
        }
        AuditCommand::Report {
            client,
            since,
            format,
        } => {
            let client = client.client()?;
            let since = since
                .map(|s| {
                    time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                })
                .transpose()
                .context("--since must be an RFC 3339 time, e.g. 2026-11-01T00:00:00Z")?;
            let rt = runtime()?;
            let check = rt.block_on(client.audit_checkpoint())?;
            let entries = rt.block_on(client.visible_entries(check.current.size))?;
            let events: Vec<congvan::ledger::Event> = entries
                .iter()
                .filter_map(|e| congvan::ledger::Event::from_leaf(e.leaf.get().as_bytes()).ok())
                .collect();
            let rows = congvan::client::audit::report(
                &events,
                &client.profile().deadlines,
                since,
                time::OffsetDateTime::now_utc(),
            );
            render::report(&rows, format)
        }
        AuditCommand::VerifyStore { config, data } => {
            let config = ServerConfig::load_given(config.as_deref())?;
            let verification = congvan::ops::verify_store(config, data)?;
            render::store_verification(&verification);
            if !verification.verifies() {
                return Err(audit_exit(
                    exit::NOT_VERIFIED,
                    "the stored log does not verify",
                ));
            }
            println!("the stored log verifies");
            Ok(())
        }
    }
}
