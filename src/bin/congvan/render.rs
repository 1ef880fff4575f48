//! How results are printed: tables, text, CSV and JSON. Every line here is part of the
//! command line's interface (tests compare it byte for byte), so it changes only on
//! purpose. Nothing here decides anything about the exchange.

use anyhow::Result;

use congvan::api::{DirectoryStatement, DocLink, ListItem, StatusView};
use congvan::client::audit::ReportRow;
use congvan::document::manifest::{Classification, Urgency};

use crate::args::ReportFormat;

/// What `send` reports: notices and the summary on standard error, the id alone on
/// standard output (so that `ID=$(congvan send …)` works).
pub fn sent_outcome(outcome: &congvan::client::send::SendOutcome) {
    for notice in &outcome.notices {
        eprintln!("{notice}");
    }
    if outcome.replayed {
        eprintln!("the server already had this document; its receipt verifies");
    }
    eprintln!(
        "sent to {} recipient(s): {}; accepted at {}, payload sha256 {}",
        outcome.recipients.len(),
        outcome
            .recipients
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        outcome.receipt.accepted_at,
        outcome.receipt.payload_sha256
    );
    println!("{}", outcome.id);
}

/// What `fetch` verified and wrote.
pub fn fetched(fetched: &congvan::client::fetch::Fetched) {
    for notice in &fetched.notices {
        eprintln!("{notice}");
    }
    let m = &fetched.manifest;
    println!(
        "verified {} {}-{} from {}",
        m.doc_type, m.code.number, m.code.notation, m.sender
    );
    println!("  subject:        {}", m.subject);
    println!(
        "  classification: {}{}",
        m.classification.label(),
        if m.classification.is_classified() {
            " (decrypted; the server held only ciphertext)"
        } else {
            ""
        }
    );
    if let Some(note) = fetched.sealed_with.as_ref().map(|m| m.note()) {
        if !note.is_empty() {
            println!("  cipher:         {note}");
        }
    }
    for (role, subject) in &fetched.signers {
        println!("  signed ({}):  {subject}", role.name());
    }
    println!(
        "  signatures judged as of the server's signed acceptance time {}",
        fetched.accepted_at
    );
    for notice in &fetched.notices {
        println!("  note: {notice}");
    }
    for file in &fetched.files {
        println!("  wrote {}", file.display());
    }
}

/// `status`: one line per recipient. A pending recall or update shows as 13 until the
/// recipient answers it (15 or 16).
pub fn status(view: StatusView) {
    for line in congvan::client::table::status_lines(&view) {
        println!("{line}");
    }
    if !view.links.is_empty() {
        println!("{}", links_text(&view.links));
    }
}

/// `sent`'s second part: the uploads this client kept that the server still awaits.
pub fn pending_uploads(pending: &[congvan::client::upload::PendingSent]) {
    if !pending.is_empty() {
        println!("not yet complete (the payload never arrived; these can be resumed):");
    }
    for p in pending {
        println!(
            "{}  {}  {:<16} → {}  {} payload bytes to send",
            p.id,
            p.code,
            p.state,
            p.recipients.join(", "),
            p.size
        );
        println!("    to finish: {}", p.resume_command);
    }
}

/// `inbox` and `sent`.
pub fn list(items: &[ListItem], sent: bool) {
    if items.is_empty() {
        println!("(none)");
        return;
    }
    for item in items {
        let urgency = Urgency::try_from(item.urgency)
            .map(|u| u.label())
            .unwrap_or("?");
        let who = if sent {
            format!("→ {}", item.recipients.join(", "))
        } else {
            match &item.addressed_to {
                // Sent to a unit merged since into this one: offered to its successor.
                Some(unit) => format!("← {} (for {unit}, merged)", item.sender),
                None => format!("← {}", item.sender),
            }
        };
        let subject = if item.classification == "thuong" {
            item.subject.clone()
        } else {
            let label = Classification::from_name(&item.classification)
                .map_or(item.classification.as_str(), |c| c.label());
            match item.sealed_with.as_ref().map(|m| m.note()) {
                Some(note) if !note.is_empty() => format!("[{label}] ({note})"),
                _ => format!("[{label}]"),
            }
        };
        let state = if item.recalled {
            "recalled".to_owned()
        } else {
            item.receipt_status
                .as_ref()
                .map_or_else(|| item.state.clone(), |s| format!("status {s}"))
        };
        println!(
            "{}  {} {}-{}  {:<11} {:<16} {}  {}",
            item.id, item.doc_type, item.number, item.notation, urgency, state, who, subject
        );
        if !item.links.is_empty() {
            println!("    {}", links_text(&item.links));
        }
    }
}

/// `directory`: the tree, indented, then the security officers.
pub fn tree(directory: &DirectoryStatement) {
    fn walk(directory: &DirectoryStatement, parent: Option<&str>, depth: usize) {
        for org in directory
            .orgs
            .iter()
            .filter(|o| o.parent.as_deref() == parent)
        {
            let status = match (org.status.as_str(), &org.merged_into) {
                ("active", _) => String::new(),
                ("merged", Some(into)) => format!("  [merged into {into}]"),
                (other, _) => format!("  [{other}]"),
            };
            // Only the presence is shown here; `send` checks the endorsement itself.
            let key = if org.encryption_cert.is_some() && org.encryption_endorsement.is_none() {
                "  (encryption key not endorsed)"
            } else if org.encryption_cert.is_some() {
                ""
            } else if org.status == "active" {
                "  (no encryption key)"
            } else {
                ""
            };
            println!(
                "{}{}  {}{status}{key}",
                "  ".repeat(depth),
                org.id,
                org.name
            );
            walk(directory, Some(&org.id), depth + 1);
        }
    }
    walk(directory, None, 0);
    for auditor in &directory.auditors {
        println!("security officer for {}: {}", auditor.scope, auditor.name);
    }
}

/// `register list`: the year's incoming register as a table.
pub fn register(view: &congvan::api::IncomingRegisterView) {
    println!(
        "Sổ đăng ký văn bản đến — {} ({}) — năm {}{}",
        view.org_name,
        view.org,
        view.year,
        match &view.closed_at {
            Some(at) => format!(" — closed {at}"),
            None => String::new(),
        }
    );
    for entry in &view.entries {
        let row = congvan::registers::incoming_row(entry);
        println!(
            "{:>5}  {}  {:<24} {:<14} {}  {}",
            row[1], row[0], row[2], row[3], row[4], row[5]
        );
    }
}

/// `audit report` in the chosen format.
pub fn report(rows: &[ReportRow], format: ReportFormat) -> Result<()> {
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        ReportFormat::Csv => report_csv(rows),
        ReportFormat::Table => report_table(rows),
    }
    Ok(())
}

fn report_csv(rows: &[ReportRow]) {
    println!(
        "recipient,document_id,sender,urgency,submitted_at,fetched_at,status,due_at,overdue,classification,uncertified_cipher,returned_reason,links"
    );
    for r in rows {
        println!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.recipient,
            r.document_id,
            r.sender,
            r.urgency,
            r.submitted_at,
            r.fetched_at.clone().unwrap_or_default(),
            r.status.clone().unwrap_or_default(),
            r.due_at,
            r.overdue,
            r.classification,
            r.sealed_with.as_ref().is_some_and(|m| !m.certified),
            csv_field(r.returned.as_deref().unwrap_or_default()),
            csv_field(&links_text(&r.links))
        );
    }
}

fn report_table(rows: &[ReportRow]) {
    if rows.is_empty() {
        println!("every recipient has fetched and acknowledged every document");
    }
    let mut current = "";
    for r in rows {
        if r.recipient != current {
            println!("{}", r.recipient);
            current = &r.recipient;
        }
        let state = match (&r.fetched_at, &r.status) {
            _ if r.returned.is_some() => "returned (02)".to_owned(),
            (None, _) => "not fetched".to_owned(),
            (Some(_), None) => "not acknowledged".to_owned(),
            (Some(_), Some(s)) if s == "01" => "not acknowledged".to_owned(),
            (Some(_), Some(s)) => format!("only status {s}"),
        };
        let urgency = Urgency::try_from(r.urgency)
            .map(|u| u.label())
            .unwrap_or("?");
        println!(
            "  {}  {:<16} {:<17} submitted {}  due {}{}",
            r.document_id,
            urgency,
            state,
            r.submitted_at,
            r.due_at,
            if r.overdue { "  OVERDUE" } else { "" }
        );
        if let Some(note) = r.sealed_with.as_ref().map(|m| m.note()) {
            if !note.is_empty() {
                println!("      {note}");
            }
        }
        if let Some(reason) = &r.returned {
            println!("      reason: {reason}");
        }
        if !r.links.is_empty() {
            println!("      {}", links_text(&r.links));
        }
    }
}

/// `audit prove`: one line per proved event.
pub fn proved(events: &[congvan::client::audit::ProvedEvent]) {
    use congvan::ledger::Event;
    for proved in events {
        let (kind, who, detail) = match &proved.event {
            Event::Submitted { actor, .. } => ("submitted", actor.clone(), String::new()),
            Event::Delivered { actor, .. } => ("delivered", actor.clone(), String::new()),
            Event::Receipt { actor, status, .. } => {
                ("receipt", actor.clone(), format!("status {status}"))
            }
            Event::Refused { actor, code, .. } => ("refused", actor.clone(), code.clone()),
            Event::DirectoryChanged { .. } => ("directory", String::new(), String::new()),
            Event::Reorganised { plan_id, .. } => ("reform", String::new(), plan_id.clone()),
        };
        println!(
            "  #{:<8} {:<10} {:<22} {:<12} {}",
            proved.index,
            kind,
            who,
            detail,
            proved.event.time()
        );
    }
}

/// `audit verify`'s summary line.
pub fn export_verified(report: &congvan::client::audit::VerifyReport) {
    println!(
        "checkpoint of {} entries verified; {} of entries [{}, {}){}: {} read, {} as leaf \
         hashes only; {} receipt signatures checked{}{}",
        report.size,
        if report.whole_log() {
            "the whole log"
        } else {
            "the range"
        },
        report.start,
        report.end,
        if report.whole_log() { "" } else { " only" },
        report.entries,
        report.hidden,
        report.receipts,
        if report.recomputed_root {
            "; root recomputed from every leaf hash"
        } else {
            ""
        },
        match report.remembered_size {
            Some(n) => format!("; reproduces the remembered checkpoint of {n} entries"),
            None => String::new(),
        }
    );
}

/// `backup`'s summary.
pub fn backup(summary: &congvan::backup::BackupSummary, took: std::time::Duration) {
    let m = &summary.manifest;
    for name in &summary.discarded {
        println!("discarded the interrupted set {name}");
    }
    println!(
        "backup set {} complete ({}): {}",
        m.sequence,
        if summary.full { "full" } else { "incremental" },
        summary.set.display()
    );
    println!(
        "  log entries {}..{} ({} new), {} records, {} payload files ({} received, {} already here), {} configuration files",
        m.log_from,
        m.log_to,
        m.leaves,
        m.records,
        m.blobs.len(),
        mib(summary.blob_bytes),
        summary.blobs_present,
        m.config_files.len()
    );
    match &m.checkpoint {
        Some(c) => println!("  latest checkpoint: {} entries", c.size),
        None => println!("  no checkpoint yet"),
    }
    println!(
        "  took {:.1} s; submissions were held back {} µs while the cut was marked",
        took.as_secs_f64(),
        summary.cut_us
    );
}

/// `backup`'s progress line, on standard error.
pub fn backup_progress(p: &congvan::backup::Progress) {
    eprintln!(
        "backup: {} log entries, {} records, {} payload files ({})",
        p.leaves,
        p.records,
        p.blobs,
        mib(p.blob_bytes)
    );
}

/// What `backup verify` and `restore` checked.
pub fn verified(r: &congvan::backup::VerifyReport) {
    println!(
        "  {} sets, {} log entries, {} checkpoints (latest: {}), {} documents, {} payload files ({}) and {} small payloads checked by digest",
        r.sets.len(),
        r.log_size,
        r.checkpoints,
        r.latest_checkpoint
            .map_or("none".to_owned(), |s| format!("{s} entries")),
        r.documents,
        r.blobs,
        mib(r.blob_bytes),
        r.small_payloads
    );
}

/// `audit verify-store`'s findings: the count and a reproduced checkpoint on standard
/// output, each problem on standard error.
pub fn store_verification(v: &congvan::ops::StoreVerification) {
    println!("scanned {} log entries", v.size);
    for problem in &v.problems {
        eprintln!("{problem}");
    }
    if let Some(size) = v.reproduced_checkpoint {
        println!("the leaves reproduce the signed checkpoint at size {size}");
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Links as people read them: "replaced by ID; updates ID".
pub fn links_text(links: &[DocLink]) -> String {
    links
        .iter()
        .map(|l| format!("{} {}", l.relation.replace('_', " "), l.id))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
