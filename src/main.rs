//! The `congvan` command: parses arguments, calls the library, reports errors once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use congvan::config::{ClientProfile, DEFAULT_CONFIG_PATH, ServerConfig};
use congvan::directory::Directory;
use congvan::pki;

/// mimalloc instead of the system allocator: under load the server allocates and frees
/// many short-lived buffers from several threads, where glibc's malloc spent a fifth of
/// the CPU (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Secure exchange of official documents between Party committees.
#[derive(Parser)]
#[command(name = "congvan", version, about)]
struct Opts {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CONGVAN_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (TLS 1.3, client certificates required).
    Serve {
        /// Server configuration; default: config/congvan.toml, else the embedded default.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen on this address instead of the configured one.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Keep data in this directory instead of the configured one.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Load generator: measure a running server (as pgbench does for PostgreSQL).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Manage certificates.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// The desk: a web console for the clerk on this machine (loopback only), holding the
    /// profile's keys and talking to the server as the CLI does.
    Desk {
        #[command(flatten)]
        client: ClientArgs,
        /// Listen on this loopback address (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Open the printed link in the system's browser.
        #[arg(long)]
        open: bool,
    },
    /// Ask the server who this profile's certificate says we are.
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Sign and send a document (its files are the attachments).
    Send {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        doc: Box<SendArgs>,
    },
    /// List what this organisation has sent, newest first.
    Sent {
        #[command(flatten)]
        client: ClientArgs,
        /// At most this many documents.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// List received documents not yet acknowledged, most urgent first.
    Inbox {
        #[command(flatten)]
        client: ClientArgs,
        /// Show acknowledged documents too.
        #[arg(long)]
        all: bool,
        /// At most this many documents.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Download a document, verify it (signatures, digests, decryption), write its files.
    Fetch {
        #[command(flatten)]
        client: ClientArgs,
        /// The document id.
        id: uuid::Uuid,
        /// Directory to write the files into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Acknowledge a received document with a signed receipt.
    Ack {
        #[command(flatten)]
        client: ClientArgs,
        /// The document id.
        id: uuid::Uuid,
        /// edXML status: 01 arrived, 02 rejected, 03 accepted, 04 assigned, 05 processing,
        /// 06 completed, 13 recall requested, 15 recall/update agreed, 16 refused.
        #[arg(long, value_parser = ["01", "02", "03", "04", "05", "06", "13", "15", "16"])]
        status: String,
        /// A note (the reason, for 02).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Show each recipient's delivery status of a document (sender or security officer).
    Status {
        #[command(flatten)]
        client: ClientArgs,
        /// The document id.
        id: uuid::Uuid,
    },
    /// Show the organisation directory, or register an encryption key (operator).
    Directory {
        /// Client profile (to show the directory).
        #[arg(long, env = "CONGVAN_PROFILE")]
        profile: Option<PathBuf>,
        /// Talk to this server URL instead of the profile's.
        #[arg(long)]
        server: Option<String>,
        #[command(subcommand)]
        command: Option<DirectoryCommand>,
    },
    /// Manage this organisation's own encryption key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Security officers: check, prove, export and verify the delivery log; report
    /// overdue deliveries.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run a complete demonstration on a temporary server: a district office sends a
    /// directive and a "Mật" decision; communes fetch, verify, decrypt and acknowledge.
    Demo,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Fetch and verify the latest checkpoint; fail loudly if it is not consistent with
    /// the one remembered last time (a rolled-back or forked log).
    Checkpoint {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Prove that every event of a document is in the log.
    Prove {
        #[command(flatten)]
        client: ClientArgs,
        /// The document id.
        id: uuid::Uuid,
    },
    /// Write the log (or a range of it) to a file: the entries this officer may read with
    /// proofs, the others as leaf hashes, so that every index is accounted for.
    Export {
        #[command(flatten)]
        client: ClientArgs,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// First index of a range (default 0).
        #[arg(long)]
        start: Option<u64>,
        /// One past the last index of a range (default: the current checkpoint's size).
        #[arg(long)]
        end: Option<u64>,
    },
    /// Verify an export offline: checkpoint signature, every index of its range present,
    /// every inclusion proof, the range's root, every receipt against its signed
    /// statement. Names the first bad entry. Exit 3: does not verify; 4: cannot read.
    Verify {
        /// Client profile (for the pinned server keys and the CA anchor; no network).
        #[arg(long, env = "CONGVAN_PROFILE")]
        profile: PathBuf,
        /// The export file.
        file: PathBuf,
    },
    /// Documents whose recipients have not fetched or acknowledged them, by recipient.
    Report {
        #[command(flatten)]
        client: ClientArgs,
        /// Only documents submitted at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Operator, on the server host with the server stopped: scan the stored log, check
    /// every leaf against its stored hash and the latest checkpoint.
    VerifyStore {
        /// Server configuration (default: config/congvan.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (default: the configured one).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Endorse an OpenPGP certificate (made by congvan or exported from gpg) as this
    /// organisation's encryption key, signed with the organisation's seal certificate
    /// (the profile's sign_cert/sign_key). Give the result to the operator for
    /// `directory set-key --endorsement`.
    Endorse {
        /// Client profile of the organisation.
        #[arg(long, env = "CONGVAN_PROFILE")]
        profile: PathBuf,
        /// The public certificate to endorse; default: the profile's openpgp_cert.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Days the endorsement is valid (never past the seal certificate's end).
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Write the endorsement here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Register an organisation's OpenPGP certificate (for example exported from gpg) as
    /// its encryption key. Runs on the server host; the server picks it up within seconds.
    SetKey {
        /// Server configuration (default: config/congvan.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The organisation id.
        org: congvan::directory::OrgId,
        /// The public certificate file (binary or ASCII-armoured).
        cert: PathBuf,
        /// The organisation's endorsement of the certificate (`congvan key endorse`);
        /// a certificate without a valid one is refused.
        #[arg(long)]
        endorsement: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Sign and submit documents (manifest, payload, receipt check).
    Submit(BenchArgs),
    /// Fetch accepted documents from the profile's inbox (manifest and payload).
    Fetch(BenchArgs),
    /// Sign and post delivery receipts for documents in the profile's inbox.
    Ack(BenchArgs),
    /// Submit to --recipient-profile's organisation, which fetches and acknowledges.
    Mixed(BenchArgs),
    /// Read the first page (50 items) of the profile's inbox.
    Inbox(BenchArgs),
    /// POST a fixed body of --size bytes to --url with the same TLS client (baselines).
    Raw(BenchArgs),
    /// Documents per second all cores could verify doing nothing but two signatures each.
    Ceiling {
        /// Client profile whose signing keys to use.
        #[arg(long, env = "CONGVAN_PROFILE")]
        profile: PathBuf,
        /// How long to measure.
        #[arg(long, short = 'd', default_value = "3s", value_parser = congvan::bench::parse_duration)]
        duration: std::time::Duration,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Seal a file with the profile's OpenPGP key (sender and recipient), open it again.
    Seal {
        /// Client profile whose OpenPGP key to use.
        #[arg(long, env = "CONGVAN_PROFILE")]
        profile: PathBuf,
        /// The plaintext file.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the sealed message.
        #[arg(long)]
        output: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Concurrent workers, each with its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Measured duration (after the warm-up): 30s, 500ms, 2m.
    #[arg(long, short = 'd', default_value = "10s", value_parser = congvan::bench::parse_duration)]
    duration: std::time::Duration,
    /// Unmeasured warm-up.
    #[arg(long, default_value = "2s", value_parser = congvan::bench::parse_duration)]
    warmup: std::time::Duration,
    /// Payload (raw: body) size: 100KiB, 1GiB, 4096.
    #[arg(long, default_value = "100KiB", value_parser = congvan::bench::parse_size)]
    size: u64,
    /// Recipients per document, chosen among the sender's active descendants.
    #[arg(long, default_value_t = 1)]
    recipients: usize,
    /// Name the recipients instead (repeat).
    #[arg(long = "to", value_name = "ORG")]
    to: Vec<congvan::directory::OrgId>,
    /// Classification of submitted documents (thuong, mat, toi_mat, tuyet_mat).
    #[arg(long, default_value = "thuong", value_parser = parse_classification)]
    classification: congvan::document::manifest::Classification,
    /// The recipient's profile (mixed).
    #[arg(long)]
    recipient_profile: Option<PathBuf>,
    /// The URL to send the body to (raw).
    #[arg(long)]
    url: Option<String>,
    /// The method for raw: POST or PUT.
    #[arg(long, default_value = "POST")]
    method: reqwest::Method,
    /// Stop after this many operations per worker instead of after --duration.
    #[arg(long)]
    count: Option<u64>,
    /// Pace all workers together to this many operations per second (open loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Upload every payload with a second request (PUT), even small ones.
    #[arg(long)]
    no_inline: bool,
    /// Also measure the signature ceiling on this machine and print the ratio.
    #[arg(long)]
    ceiling: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ClientArgs {
    /// Client profile (client.toml, as `pki demo` writes it).
    #[arg(long, env = "CONGVAN_PROFILE")]
    profile: PathBuf,
    /// Talk to this server URL instead of the profile's.
    #[arg(long)]
    server: Option<String>,
}

impl ClientArgs {
    fn client(&self) -> Result<congvan::client::Client> {
        let profile = ClientProfile::load(&self.profile)?;
        Ok(match &self.server {
            Some(url) => congvan::client::Client::new(&profile, url)?,
            None => congvan::client::Client::from_profile(&profile)?,
        })
    }
}

#[derive(clap::Args)]
struct SendArgs {
    /// A recipient organisation id (repeat for more).
    #[arg(long = "to", value_name = "ORG")]
    to: Vec<congvan::directory::OrgId>,
    /// Send to every active child of this organisation (expanded before signing).
    #[arg(long = "to-children", value_name = "ORG")]
    to_children: Vec<congvan::directory::OrgId>,
    /// Document type: NQ, QĐ, CT, KL, HD, TB, BC, CV, …
    #[arg(long = "type", value_name = "TYPE")]
    doc_type: String,
    /// Number (số), e.g. 12.
    #[arg(long)]
    number: String,
    /// Notation (ký hiệu), e.g. CV/HU.
    #[arg(long)]
    notation: String,
    /// Subject (trích yếu).
    #[arg(long)]
    subject: String,
    /// thuong|khan|thuong_khan|hoa_toc|hoa_toc_hen_gio, or the edXML number 0-4.
    #[arg(long, default_value = "thuong", value_parser = parse_urgency)]
    urgency: congvan::document::manifest::Urgency,
    /// Deadline for hoa_toc_hen_gio (RFC 3339, e.g. 2026-12-01T08:00:00+07:00).
    #[arg(long)]
    deadline: Option<String>,
    /// thuong (unclassified) | mat | toi_mat | tuyet_mat.
    #[arg(long, default_value = "thuong", value_parser = parse_classification)]
    classification: congvan::document::manifest::Classification,
    /// Steering type: 1 not a directive, 2 directive, 3 report on a directive.
    #[arg(long, default_value_t = 1)]
    steering: u8,
    /// Date a response is due (YYYY-MM-DD).
    #[arg(long)]
    due: Option<String>,
    /// The document this one answers.
    #[arg(long)]
    response_for: Option<uuid::Uuid>,
    /// Recall, update or replace this earlier document instead of sending a new one.
    #[arg(long, value_name = "ID", conflicts_with_all = ["update", "replace"])]
    recall: Option<uuid::Uuid>,
    /// Update this earlier document.
    #[arg(long, value_name = "ID", conflicts_with = "replace")]
    update: Option<uuid::Uuid>,
    /// Replace this earlier document.
    #[arg(long, value_name = "ID")]
    replace: Option<uuid::Uuid>,
    /// Place of promulgation.
    #[arg(long, default_value = "")]
    place: String,
    /// Date of promulgation (YYYY-MM-DD), default today.
    #[arg(long)]
    date: Option<String>,
    /// Signer's competence: TM., KT., TL., TUQ., Q. or empty.
    #[arg(long, default_value = "TM.")]
    competence: String,
    /// Signer's position (default: from person.crt).
    #[arg(long)]
    position: Option<String>,
    /// Signer's full name (default: from person.crt).
    #[arg(long)]
    signer_name: Option<String>,
    /// Reuse this document id, to retry an interrupted send.
    #[arg(long)]
    id: Option<uuid::Uuid>,
    /// The files to send.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn parse_urgency(s: &str) -> Result<congvan::document::manifest::Urgency, String> {
    congvan::document::manifest::Urgency::parse(s).ok_or_else(|| {
        format!("{s:?}: use thuong, khan, thuong_khan, hoa_toc, hoa_toc_hen_gio or 0-4")
    })
}

fn parse_classification(s: &str) -> Result<congvan::document::manifest::Classification, String> {
    use congvan::document::manifest::Classification as C;
    use unicode_normalization::UnicodeNormalization;
    // The Vietnamese labels shown in output ("Mật", "Tối mật") are accepted as well as the
    // wire names.
    let wanted: String = s.nfc().collect::<String>().to_lowercase();
    [C::Thuong, C::Mat, C::ToiMat, C::TuyetMat]
        .into_iter()
        .find(|c| c.name() == wanted || c.label().to_lowercase() == wanted)
        .ok_or_else(|| {
            format!(
                "{s:?}: use thuong, mat, toi_mat or tuyet_mat (or Thường, Mật, Tối mật, Tuyệt mật)"
            )
        })
}

impl SendArgs {
    fn into_request(self) -> congvan::client::send::SendRequest {
        use congvan::document::manifest::BusinessKind;
        let (business, business_target) = match (self.recall, self.update, self.replace) {
            (Some(id), _, _) => (BusinessKind::Recall, Some(id)),
            (_, Some(id), _) => (BusinessKind::Update, Some(id)),
            (_, _, Some(id)) => (BusinessKind::Replace, Some(id)),
            _ => (BusinessKind::New, None),
        };
        congvan::client::send::SendRequest {
            to: self.to,
            to_children: self.to_children,
            doc_type: self.doc_type,
            number: self.number,
            notation: self.notation,
            subject: self.subject,
            urgency: self.urgency,
            deadline: self.deadline,
            classification: self.classification,
            steering: self.steering,
            due: self.due,
            response_for: self.response_for,
            business,
            business_target,
            place: self.place,
            date: self.date,
            competence: self.competence,
            position: self.position,
            full_name: self.signer_name,
            id: self.id,
            files: self.files,
        }
    }
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Make a DEMO PKI (CAs, server, every organisation and security officer).
    Demo {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Organisation tree; default: config/orgs.toml, else the embedded sample.
        #[arg(long)]
        orgs: Option<PathBuf>,
        /// Replace an existing PKI in the output directory.
        #[arg(long)]
        force: bool,
        /// Address the server will listen on (written into the configs).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
    },
    /// Add a certificate to its issuer's CRL; a running server picks it up.
    Revoke {
        /// The PKI directory made by `pki demo`.
        #[arg(long)]
        pki: PathBuf,
        /// The certificate to revoke (PEM).
        cert: PathBuf,
        /// Revocation reason. Say `superseded` for a routine replacement: recipients keep
        /// trusting documents accepted before it. `key-compromise` without
        /// `--invalid-since` makes every document the key ever signed untrusted.
        #[arg(long, value_enum)]
        reason: Option<Reason>,
        /// Since when the key is known or suspected to be compromised (RFC 3339), written
        /// as the entry's invalidityDate; documents accepted before it stay trusted.
        #[arg(long, value_name = "TIME")]
        invalid_since: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Reason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl From<Reason> for rcgen::RevocationReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Unspecified => rcgen::RevocationReason::Unspecified,
            Reason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            Reason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            Reason::Superseded => rcgen::RevocationReason::Superseded,
            Reason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
        }
    }
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    init_tracing(opts.log_format);
    match run(opts.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// An `audit` outcome with its own exit code (see `congvan::client::audit::exit`).
#[derive(Debug)]
struct AuditExit {
    code: u8,
    message: String,
}

impl std::fmt::Display for AuditExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AuditExit {}

fn audit_exit(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(AuditExit {
        code,
        message: message.into(),
    })
}

/// The exit code of a failure: the audit codes for evidence that does not verify and
/// input that cannot be read, 1 for everything else.
fn exit_code(e: &anyhow::Error) -> u8 {
    use congvan::client::audit::{VerifyError, exit};
    for cause in e.chain() {
        if let Some(a) = cause.downcast_ref::<AuditExit>() {
            return a.code;
        }
        if let Some(v) = cause.downcast_ref::<VerifyError>() {
            return v.exit_code();
        }
        if let Some(congvan::client::ClientError::LogInconsistent(_)) = cause.downcast_ref() {
            return exit::NOT_VERIFIED;
        }
    }
    exit::FAILED
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn desk(client: congvan::client::Client, listen: SocketAddr, open: bool) -> Result<()> {
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve {
            config,
            listen,
            data,
        } => serve(config, listen, data),
        Command::Bench { command } => bench(command),
        Command::Pki { command } => match command {
            PkiCommand::Demo {
                out,
                orgs,
                force,
                listen,
            } => pki_demo(&out, orgs.as_deref(), force, listen),
            PkiCommand::Revoke {
                pki,
                cert,
                reason,
                invalid_since,
            } => {
                let layout = pki::demo::Layout::new(pki);
                let invalid_since = invalid_since
                    .map(|t| {
                        time::OffsetDateTime::parse(
                            &t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .map_err(|e| anyhow::anyhow!("--invalid-since {t:?} is not RFC 3339: {e}"))
                    })
                    .transpose()?;
                let revoked =
                    pki::crl::revoke_with(&layout, &cert, reason.map(Into::into), invalid_since)?;
                if revoked.newly_revoked {
                    println!(
                        "revoked serial {} in {} (CRL number {})",
                        revoked.serial,
                        revoked.crl_path.display(),
                        revoked.crl_number
                    );
                } else {
                    println!(
                        "serial {} was already revoked; re-issued {} (CRL number {})",
                        revoked.serial,
                        revoked.crl_path.display(),
                        revoked.crl_number
                    );
                }
                Ok(())
            }
        },
        Command::Whoami { client } => {
            let client = client.client()?;
            let me = runtime()?.block_on(client.whoami())?;
            println!("{}", serde_json::to_string_pretty(&me)?);
            Ok(())
        }
        Command::Send { client, doc } => {
            let client = client.client()?;
            let request = (*doc).into_request();
            let outcome = runtime()?.block_on(client.send_document(&request))?;
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
            Ok(())
        }
        Command::Inbox { client, all, limit } => {
            let client = client.client()?;
            let state = if all { "all" } else { "new" };
            let mut page: congvan::api::ListPage = runtime()?.block_on(client.get_json(
                &format!("/v1/inbox?state={state}&limit={}", limit.clamp(1, 500)),
            ))?;
            // Most urgent first, then newest.
            page.items
                .sort_by(|a, b| b.urgency.cmp(&a.urgency).then(b.seq.cmp(&a.seq)));
            print_list(&page.items, false);
            Ok(())
        }
        Command::Fetch { client, id, out } => {
            let client = client.client()?;
            let fetched = runtime()?.block_on(client.fetch_document(&id, &out))?;
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
            Ok(())
        }
        Command::Ack {
            client,
            id,
            status,
            note,
        } => {
            let client = client.client()?;
            let answer = runtime()?.block_on(client.acknowledge(&id, &status, &note))?;
            println!(
                "receipt {} for {} recorded at {}",
                answer.status, answer.document_id, answer.recorded_at
            );
            Ok(())
        }
        Command::Status { client, id } => {
            let client = client.client()?;
            let view: congvan::api::StatusView =
                runtime()?.block_on(client.get_json(&format!("/v1/documents/{id}/status")))?;
            println!(
                "{} from {} (accepted {})",
                view.id,
                view.sender,
                view.accepted_at.unwrap_or_default()
            );
            println!(
                "{:<24} {:<22} {:<6} {:<22} note",
                "recipient", "fetched", "status", "status time"
            );
            for r in view.recipients {
                println!(
                    "{:<24} {:<22} {:<6} {:<22} {}",
                    r.org,
                    r.fetched_at.unwrap_or_else(|| "-".into()),
                    r.status.unwrap_or_else(|| "-".into()),
                    r.status_time.unwrap_or_else(|| "-".into()),
                    r.note.unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Directory {
            profile,
            server,
            command,
        } => match command {
            Some(DirectoryCommand::SetKey {
                config,
                org,
                cert,
                endorsement,
            }) => set_key(config, &org, &cert, endorsement.as_deref()),
            None => {
                let profile = profile.ok_or_else(|| {
                    anyhow::anyhow!(
                        "give --profile FILE to show the directory, or use `directory set-key`"
                    )
                })?;
                let client = ClientArgs { profile, server }.client()?;
                let directory = runtime()?.block_on(client.directory())?;
                print_tree(&directory);
                Ok(())
            }
        },
        Command::Audit { command } => audit(command),
        Command::Key {
            command:
                KeyCommand::Endorse {
                    profile,
                    cert,
                    days,
                    out,
                },
        } => endorse_key(&profile, cert.as_deref(), days, out.as_deref()),
        Command::Demo => Ok(runtime()?.block_on(congvan::demo::run())?),
        Command::Desk {
            client,
            listen,
            open,
        } => desk(client.client()?, listen, open),
        Command::Sent { client, limit } => {
            let client = client.client()?;
            let page: congvan::api::ListPage = runtime()?
                .block_on(client.get_json(&format!("/v1/sent?limit={}", limit.clamp(1, 500))))?;
            print_list(&page.items, true);
            Ok(())
        }
    }
}

fn serve(config: Option<PathBuf>, listen: Option<SocketAddr>, data: Option<PathBuf>) -> Result<()> {
    let mut config = match config {
        Some(path) => ServerConfig::load(&path)?,
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
            ServerConfig::load(Path::new(DEFAULT_CONFIG_PATH))?
        }
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            tracing::info!("no config/congvan.toml here: using the embedded default configuration");
            ServerConfig::embedded_default(&cwd)?
        }
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(data) = data {
        config.data_dir = data;
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let shutdown = shutdown_signal()?;
        let server = congvan::server::Server::build(&config)?;
        let listener = congvan::server::bind(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let reload = server.reloader();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading TLS material, CRLs and the directory");
                let _ = tokio::task::spawn_blocking(reload.clone()).await;
            }
        });
        server.run(listener, shutdown).await?;
        Ok(())
    })
}

fn audit(command: AuditCommand) -> Result<()> {
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
                    congvan::client::audit::exit::NOTHING_FOUND,
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
            for proved in events {
                let (kind, who, detail) = match &proved.event {
                    congvan::ledger::Event::Submitted { actor, .. } => {
                        ("submitted", actor.clone(), String::new())
                    }
                    congvan::ledger::Event::Delivered { actor, .. } => {
                        ("delivered", actor.clone(), String::new())
                    }
                    congvan::ledger::Event::Receipt { actor, status, .. } => {
                        ("receipt", actor.clone(), format!("status {status}"))
                    }
                    congvan::ledger::Event::Refused { actor, code, .. } => {
                        ("refused", actor.clone(), code.clone())
                    }
                    congvan::ledger::Event::DirectoryChanged { .. } => {
                        ("directory", String::new(), String::new())
                    }
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
            if report.problems.is_empty() {
                println!("everything verifies");
                Ok(())
            } else {
                for problem in &report.problems {
                    eprintln!("  {problem}");
                }
                let message = match report.first_bad_index {
                    Some(i) => {
                        format!("the export does not verify: first bad entry is at index {i}")
                    }
                    None => "the export does not verify".to_owned(),
                };
                Err(audit_exit(
                    congvan::client::audit::exit::NOT_VERIFIED,
                    message,
                ))
            }
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
            print_report(&rows, format)?;
            Ok(())
        }
        AuditCommand::VerifyStore { config, data } => verify_store(config, data),
    }
}

fn print_report(rows: &[congvan::client::audit::ReportRow], format: ReportFormat) -> Result<()> {
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        ReportFormat::Csv => {
            println!(
                "recipient,document_id,sender,urgency,submitted_at,fetched_at,status,due_at,overdue,classification,uncertified_cipher"
            );
            for r in rows {
                println!(
                    "{},{},{},{},{},{},{},{},{},{},{}",
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
                    r.sealed_with.as_ref().is_some_and(|m| !m.certified)
                );
            }
        }
        ReportFormat::Table => {
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
                    (None, _) => "not fetched".to_owned(),
                    (Some(_), None) => "not acknowledged".to_owned(),
                    (Some(_), Some(s)) => format!("only status {s}"),
                };
                let urgency = congvan::document::manifest::Urgency::try_from(r.urgency)
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
            }
        }
    }
    Ok(())
}

fn verify_store(config: Option<PathBuf>, data: Option<PathBuf>) -> Result<()> {
    let config = match config {
        Some(path) => ServerConfig::load(&path)?,
        None => ServerConfig::load(Path::new(DEFAULT_CONFIG_PATH))?,
    };
    let data = data.unwrap_or(config.data_dir.clone());
    // Opening a store creates one, and the keys are made when missing: on a directory
    // without them the scan would "verify" an empty log it just made. Refuse instead.
    for (what, path) in [
        ("store", data.join("db")),
        ("server keys", data.join("keys")),
    ] {
        if !path.is_dir() {
            return Err(audit_exit(
                congvan::client::audit::exit::UNREADABLE,
                format!(
                    "{} holds no {what} ({} is missing): give the server's data directory \
                     with --data, or check data_dir in the configuration",
                    data.display(),
                    path.display()
                ),
            ));
        }
    }
    let store = congvan::store::Store::open(&data).with_context(|| {
        format!(
            "cannot open the store in {} (is the server still running?)",
            data.display()
        )
    })?;
    let checkpoint = store.latest_checkpoint()?;
    let keys = congvan::notary::ServerKeys::load_or_create(&data.join("keys"))?;
    let vkey = congvan::ledger::verifier_key(
        &config.log.origin,
        &keys.public_key(congvan::notary::KeyPurpose::Log)?,
    );
    let verified = checkpoint
        .as_ref()
        .map(|(_, note)| congvan::ledger::checkpoint::verify(note, &vkey))
        .transpose()
        .context("the latest stored checkpoint does not verify with the server's log key")?;
    let audit = store.log().audit(verified.as_ref().map(|c| c.size))?;
    println!("scanned {} log entries", audit.size);
    let mut bad = false;
    if let Some(i) = audit.first_bad_index {
        eprintln!("entry {i} does not match its stored hash: the log was altered at index {i}");
        bad = true;
    }
    if audit.recomputed_root != audit.stored_root {
        eprintln!("the root recomputed from the leaves differs from the stored tree's root");
        bad = true;
    }
    if let Some(cp) = &verified {
        if cp.size > audit.size {
            eprintln!(
                "the latest checkpoint covers {} entries but only {} are stored: entries were deleted",
                cp.size, audit.size
            );
            bad = true;
        } else if audit.root_at_checkpoint != Some(cp.root) {
            eprintln!(
                "the leaves do not reproduce the root of the checkpoint at size {}",
                cp.size
            );
            bad = true;
        } else {
            println!(
                "the leaves reproduce the signed checkpoint at size {}",
                cp.size
            );
        }
    }
    if bad {
        return Err(audit_exit(
            congvan::client::audit::exit::NOT_VERIFIED,
            "the stored log does not verify",
        ));
    }
    println!("the stored log verifies");
    Ok(())
}

fn print_tree(directory: &congvan::api::DirectoryStatement) {
    fn walk(directory: &congvan::api::DirectoryStatement, parent: Option<&str>, depth: usize) {
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

fn set_key(
    config: Option<PathBuf>,
    org: &congvan::directory::OrgId,
    cert: &Path,
    endorsement: Option<&Path>,
) -> Result<()> {
    use congvan::directory::endorsement::{EndorsementError, SignedEndorsement};
    use congvan::seal::Cipher as _;
    let config = match config {
        Some(path) => ServerConfig::load(&path)?,
        None => ServerConfig::load(Path::new(DEFAULT_CONFIG_PATH))?,
    };
    let (directory, _) = config.load_directory()?;
    if directory.org(org).is_none() {
        bail!(
            "{org} is not in the organisation tree {}",
            config.orgs.display()
        );
    }
    let bytes = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let fingerprint = congvan::seal::OpenPgp::default()
        .check_cert(&bytes)
        .with_context(|| format!("{} cannot be used as an encryption key", cert.display()))?;
    // Refusals name the code the clients would give, so that the operator can look it up.
    let refuse = |e: EndorsementError| {
        anyhow::anyhow!(
            "refusing the encryption key {fingerprint} for {org} [{}]: {e}",
            e.code()
        )
    };
    let endorsement_path = endorsement.ok_or_else(|| {
        anyhow::anyhow!(
            "{}; ask {org} for one (`congvan key endorse`) and pass it with --endorsement",
            refuse(EndorsementError::Missing)
        )
    })?;
    let endorsement_bytes = std::fs::read(endorsement_path)
        .with_context(|| format!("cannot read {}", endorsement_path.display()))?;
    let parsed = SignedEndorsement::from_slice(&endorsement_bytes).map_err(refuse)?;
    let trust = pki::signing::SigningTrust::load(&config.signing_anchors, &config.signing_crls)?;
    let verified = parsed
        .verify(&trust, org, &fingerprint, rustls_pki_types::UnixTime::now())
        .map_err(refuse)?;
    // The endorsement first: a server that reloads between the two writes then serves
    // the old certificate with a new endorsement, which clients refuse (fail closed)
    // until the certificate follows, never an unendorsed new key.
    let endorsement_target = config
        .keys_dir
        .join(congvan::directory::endorsement_file(org));
    let endorsement_json = parsed.to_json().map_err(refuse)?;
    congvan::pki::pem::write_public(&endorsement_target, &endorsement_json)?;
    let target = config
        .keys_dir
        .join(congvan::directory::encryption_cert_file(org));
    congvan::pki::pem::write_public(&target, &bytes)?;
    println!(
        "registered {fingerprint} as the encryption key of {org} ({}), endorsed by {} on {}, valid until {}",
        target.display(),
        verified.signer_subject,
        verified.issued_at,
        verified.not_after
    );
    Ok(())
}

fn endorse_key(profile: &Path, cert: Option<&Path>, days: i64, out: Option<&Path>) -> Result<()> {
    let profile = ClientProfile::load(profile)?;
    let cert_path = match cert {
        Some(p) => p.to_owned(),
        None => profile.openpgp_cert.clone().ok_or_else(|| {
            anyhow::anyhow!("the profile has no openpgp_cert; name the certificate with --cert")
        })?,
    };
    let bytes = std::fs::read(&cert_path)
        .with_context(|| format!("cannot read {}", cert_path.display()))?;
    let endorsement = congvan::client::keys::endorse_key(&profile, &bytes, days)?;
    let json = endorsement.to_json()?;
    match out {
        Some(path) => {
            congvan::pki::pem::write_public(path, &json)?;
            eprintln!(
                "endorsed {} as the encryption key of {} until {}; written to {}",
                endorsement.statement.openpgp_fingerprint,
                endorsement.statement.org,
                endorsement.statement.not_after,
                path.display()
            );
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&json)?;
        }
    }
    Ok(())
}

fn print_list(items: &[congvan::api::ListItem], sent: bool) {
    if items.is_empty() {
        println!("(none)");
        return;
    }
    for item in items {
        let urgency = congvan::document::manifest::Urgency::try_from(item.urgency)
            .map(|u| u.label())
            .unwrap_or("?");
        let who = if sent {
            format!("→ {}", item.recipients.join(", "))
        } else {
            format!("← {}", item.sender)
        };
        let subject = if item.classification == "thuong" {
            item.subject.clone()
        } else {
            let label =
                congvan::document::manifest::Classification::from_name(&item.classification)
                    .map_or(item.classification.as_str(), |c| c.label());
            match item.sealed_with.as_ref().map(|m| m.note()) {
                Some(note) if !note.is_empty() => format!("[{label}] ({note})"),
                _ => format!("[{label}]"),
            }
        };
        println!(
            "{}  {} {}-{}  {:<11} {:<16} {}  {}",
            item.id, item.doc_type, item.number, item.notation, urgency, item.state, who, subject
        );
    }
}

/// Installs the SIGINT and SIGTERM handlers now (so a signal that arrives while the
/// server starts is not lost to the default action) and returns a future that completes
/// on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

fn pki_demo(out: &Path, orgs: Option<&Path>, force: bool, listen: SocketAddr) -> Result<()> {
    let default_orgs = Path::new("config/orgs.toml");
    let text = match orgs {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None if default_orgs.exists() => std::fs::read_to_string(default_orgs)
            .with_context(|| format!("cannot read {}", default_orgs.display()))?,
        None => congvan::config::EMBEDDED_ORGS.to_owned(),
    };
    let directory = Directory::from_toml(&text)?;
    if out.as_os_str().is_empty() {
        bail!("--out must name a directory");
    }
    let opts = pki::demo::DemoOptions { force, listen };
    let layout = pki::demo::generate(out, &directory, &text, &opts)?;
    println!(
        "DEMO PKI written to {} (NOT for real documents)",
        layout.dir.display()
    );
    println!("  trust anchor:   {}", layout.root_cert().display());
    println!("  server config:  {}", layout.server_config().display());
    println!(
        "  client profiles: {}/orgs/*/client.toml, {}/auditors/*/client.toml",
        layout.dir.display(),
        layout.dir.display()
    );
    Ok(())
}

fn bench(command: BenchCommand) -> Result<()> {
    use congvan::bench::{self, LoadOptions, Mode};
    let (mode, args) = match command {
        BenchCommand::Submit(a) => (Mode::Submit, a),
        BenchCommand::Fetch(a) => (Mode::Fetch, a),
        BenchCommand::Ack(a) => (Mode::Ack, a),
        BenchCommand::Mixed(a) => (Mode::Mixed, a),
        BenchCommand::Inbox(a) => (Mode::Inbox, a),
        BenchCommand::Raw(a) => (Mode::Raw, a),
        BenchCommand::Ceiling {
            profile,
            duration,
            json,
        } => {
            let profile = ClientProfile::load(&profile)?;
            let ceiling = bench::signature_ceiling(&profile, duration)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&ceiling)?);
            } else {
                println!(
                    "signature ceiling: {:.0} documents/s ({} threads, two {} signatures each)",
                    ceiling.docs_per_s, ceiling.threads, ceiling.algorithm
                );
            }
            return Ok(());
        }
        BenchCommand::Seal {
            profile,
            input,
            output,
            json,
        } => {
            let profile = ClientProfile::load(&profile)?;
            let report = bench::seal_file(&profile, &input, &output)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "sealed {} bytes into {} in {:.2} s ({:.0} MB/s); opened in {:.2} s ({:.0} MB/s)",
                    report.bytes,
                    report.sealed_bytes,
                    report.seal_s,
                    report.seal_mb_s,
                    report.open_s,
                    report.open_mb_s
                );
            }
            return Ok(());
        }
    };
    let profile = ClientProfile::load(&args.client.profile)?;
    let recipient_profile = args
        .recipient_profile
        .as_deref()
        .map(ClientProfile::load)
        .transpose()?;
    let options = LoadOptions {
        mode,
        concurrency: args.concurrency,
        duration: args.duration,
        warmup: args.warmup,
        size: args.size,
        recipients: args.recipients,
        to: args.to,
        classification: args.classification,
        recipient_profile,
        url: args.url,
        method: args.method,
        inline: !args.no_inline,
        count: args.count,
        rate: args.rate,
        progress: !args.json || std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let rt = runtime()?;
    let report = rt.block_on(bench::run(
        &profile,
        args.client.server.as_deref(),
        &options,
    ))?;
    let ceiling = if args.ceiling {
        Some(bench::signature_ceiling(
            &profile,
            std::time::Duration::from_secs(3),
        )?)
    } else {
        None
    };
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(c) = &ceiling {
            value["ceiling"] = serde_json::to_value(c)?;
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{report}");
        if let (Some(c), Some(k)) = (&ceiling, report.kinds.first()) {
            println!(
                "signature ceiling: {:.0} documents/s ({} threads, two {} signatures each); {} reached {:.2}x of it",
                c.docs_per_s,
                c.threads,
                c.algorithm,
                k.kind,
                k.ops_per_s / c.docs_per_s
            );
        }
    }
    if report.kinds.iter().all(|k| k.ok == 0) {
        bail!("no operation succeeded");
    }
    Ok(())
}
