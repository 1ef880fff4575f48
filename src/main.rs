//! The `congvan` command: parses arguments, calls the library, reports errors once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use congvan::config::{ClientProfile, DEFAULT_CONFIG_PATH, ServerConfig};
use congvan::directory::Directory;
use congvan::pki;

/// `print!` and `println!` for this binary: writing to a closed pipe (`congvan inbox | head
/// -1`) ends the process quietly with success instead of panicking as std's macros do;
/// any other write error is reported once, with exit code 1.
macro_rules! print {
    ($($arg:tt)*) => {
        write_stdout(format_args!($($arg)*))
    };
}

/// See [`print!`].
macro_rules! println {
    () => {
        print!("\n")
    };
    ($($arg:tt)*) => {
        print!("{}\n", format_args!($($arg)*))
    };
}

fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

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
        /// Start even though the log does not extend the latest checkpoint this server
        /// signed (after restoring an older backup). Auditors holding later checkpoints
        /// will report the log as rolled back.
        #[arg(long)]
        acknowledge_rollback: bool,
    },
    /// Back up the running server (store, payloads, keys, configuration) into a
    /// directory: the first time in full, then only what changed.
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        /// The running server's configuration.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The server's data directory, if `serve` was started with `--data`.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The backup directory.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<BackupCommand>,
    },
    /// Make a new data directory from a backup directory (verified first).
    Restore {
        /// The backup directory.
        dir: PathBuf,
        /// The new data directory (must not exist, or be empty).
        #[arg(long)]
        data: PathBuf,
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
    /// Client profiles on this machine.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
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
        /// Show the whole history: also documents recalled with this organisation's
        /// agreement (15).
        #[arg(long, conflicts_with = "all")]
        history: bool,
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
        /// edXML status: 01 arrived, 02 returned, 03 accepted, 04 assigned, 05 processing,
        /// 06 completed, 15 recall/update agreed, 16 refused (13, recall requested, is the
        /// sender's recall). The order rules are in docs/API.md, "Status rules".
        #[arg(long, value_parser = ["01", "02", "03", "04", "05", "06", "15", "16"])]
        status: String,
        /// A note (the reason, for 02).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Reorganise the tree: apply a reform plan (merges, divisions, new units, retirements).
    Reform {
        #[command(subcommand)]
        command: ReformCommand,
    },
    /// The organisation's incoming register (số đến): list, CSV, paper documents, closing.
    Register {
        #[command(subcommand)]
        command: RegisterCommand,
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
    /// Exchange with e-office systems in edXML (QCVN 102:2016): `edxml export`; sending
    /// an edXML file is `send --edxml FILE`.
    Edxml {
        #[command(subcommand)]
        command: EdxmlCommand,
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
enum EdxmlCommand {
    /// Write a document (verified as `fetch` verifies it) as an edXML envelope; the sender
    /// also gets one status packet per receipt in FILE.status/.
    Export {
        #[command(flatten)]
        client: ClientArgs,
        /// The document id.
        id: uuid::Uuid,
        /// The envelope to write.
        #[arg(long)]
        out: PathBuf,
    },
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
    /// Import a key and its certificates from a PKCS#12 file (.p12/.pfx) as CAs hand
    /// them out (legacy 3DES/RC2 or AES encryption): writes the certificate chain and the
    /// key, encrypted at rest with a passphrase (PKCS#8, scrypt, AES-256). Name the two
    /// files in the profile (sign_cert/sign_key or person_cert/person_key).
    ImportP12 {
        /// The PKCS#12 file.
        file: PathBuf,
        /// Where to write the certificate chain (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Where to write the encrypted key (PEM, 0600).
        #[arg(long)]
        key: PathBuf,
        /// Read the PKCS#12 password from this file instead of asking.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Read the PKCS#12 password from this environment variable instead of asking.
        #[arg(long)]
        password_env: Option<String>,
        /// Read the new key passphrase from this file instead of asking (twice).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Read the new key passphrase from this environment variable instead of asking.
        #[arg(long)]
        passphrase_env: Option<String>,
        /// Replace existing output files.
        #[arg(long)]
        force: bool,
    },
    /// Make a certificate signing request (PKCS#10) for a key on the profile's token, to
    /// send to the CA; name the certificate it returns as sign_cert or person_cert.
    Csr {
        /// Client profile with a [token] section.
        #[arg(long, env = "CONGVAN_PROFILE")]
        profile: PathBuf,
        /// Which key: the profile's token.sign_key, token.person_key or token.tls_key.
        #[arg(long, value_enum)]
        role: CsrRole,
        /// The subject's common name (for a person, the name printed on documents).
        #[arg(long)]
        common_name: String,
        /// Where to write the request (PEM); default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum CsrRole {
    Sign,
    Person,
    Tls,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Check a backup directory: every set complete, every payload's digest, the log
    /// against every checkpoint.
    Verify {
        /// The backup directory.
        dir: PathBuf,
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

#[derive(Subcommand)]
enum ReformCommand {
    /// Check a plan against the tree and put it in the server's reforms directory; the
    /// server applies it at its effective time and logs it. `--dry-run` only shows effects.
    Apply {
        /// The plan (TOML; see config/reform-2025-chuong-my.toml).
        plan: PathBuf,
        /// Server configuration; default: config/congvan.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Show every effect, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the plans in the server's reforms directory, in force or waiting.
    List {
        /// Server configuration; default: config/congvan.toml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RegisterCommand {
    /// List a year's incoming register, or write it as CSV in the legal columns.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// The year (default: this year, Vietnam time).
        #[arg(long)]
        year: Option<i32>,
        /// Write the register as CSV (Decree 30/2020 Appendix IV columns) to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write the register as a PDF to print, in the same columns, to this file.
        #[arg(long)]
        pdf: Option<PathBuf>,
        /// TrueType font for the PDF (it must cover Vietnamese).
        #[arg(long, default_value = congvan::registers::pdf::DEFAULT_FONT)]
        font: PathBuf,
    },
    /// Register a paper document (metadata only) in the same sequence as electronic ones.
    Paper {
        #[command(flatten)]
        client: ClientArgs,
        /// Tác giả: the issuing body.
        #[arg(long)]
        author: String,
        /// Số, ký hiệu văn bản, e.g. "45/UBND".
        #[arg(long)]
        code: String,
        /// Ngày tháng văn bản, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// Tên loại (CV, QĐ, TB…).
        #[arg(long = "type")]
        doc_type: String,
        /// Trích yếu.
        #[arg(long)]
        subject: String,
        /// Đơn vị hoặc người nhận.
        #[arg(long, default_value = "")]
        assigned_to: String,
        /// Ghi chú.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Close a past year's register: nothing more can be entered in it.
    Close {
        #[command(flatten)]
        client: ClientArgs,
        /// The year to close.
        #[arg(long)]
        year: i32,
    },
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
    /// A recipient organisation id (repeat, or separate with commas: --to a,b).
    #[arg(long = "to", value_name = "ORG", value_delimiter = ',')]
    to: Vec<congvan::directory::OrgId>,
    /// Send to every active child of this organisation (expanded before signing).
    #[arg(long = "to-children", value_name = "ORG", value_delimiter = ',')]
    to_children: Vec<congvan::directory::OrgId>,
    /// Document type: NQ, QĐ, CT, KL, HD, TB, BC, CV, …
    #[arg(long = "type", value_name = "TYPE", required_unless_present_any = ["edxml", "resume"])]
    doc_type: Option<String>,
    /// Number (số), e.g. 12.
    #[arg(long, required_unless_present_any = ["edxml", "resume"])]
    number: Option<String>,
    /// Notation (ký hiệu), e.g. CV/HU.
    #[arg(long, required_unless_present_any = ["edxml", "resume"])]
    notation: Option<String>,
    /// Subject (trích yếu).
    #[arg(long, required_unless_present_any = ["edxml", "resume"])]
    subject: Option<String>,
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
    /// Send the document in this edXML envelope (exported by an e-office system)
    /// instead: its fields, recipients and files come from the envelope.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["to", "to_children", "doc_type", "number", "notation", "subject", "files", "recall", "update", "replace", "classification"])]
    edxml: Option<PathBuf>,
    /// Finish the interrupted upload of this document with the signed manifest kept
    /// when it was first sent (no new signature); the files must be unchanged.
    #[arg(long, value_name = "ID", conflicts_with_all = ["to", "to_children", "doc_type", "number", "notation", "subject", "files", "recall", "update", "replace", "classification", "edxml", "id"])]
    resume: Option<uuid::Uuid>,
    /// The files to send.
    #[arg(required_unless_present_any = ["edxml", "resume"])]
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
    /// Refuses a file argument that does not exist but reads as an organisation id: the
    /// user wrote `--to a b` meaning two recipients.
    fn check_files(&self) -> Result<()> {
        for file in &self.files {
            if file.exists() {
                continue;
            }
            let text = file.to_string_lossy();
            if congvan::directory::OrgId::parse(&text).is_ok() {
                anyhow::bail!(
                    "{text:?} is not a file; it looks like an organisation id. Name each \
                     recipient with its own --to (--to {first} --to {text}) or separate them \
                     with commas (--to {first},{text})",
                    first = self
                        .to
                        .last()
                        .map_or_else(|| "ORG".to_owned(), ToString::to_string),
                );
            }
            anyhow::bail!("{}: no such file", file.display());
        }
        Ok(())
    }

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
            doc_type: self.doc_type.unwrap_or_default(),
            number: self.number.unwrap_or_default(),
            notation: self.notation.unwrap_or_default(),
            subject: self.subject.unwrap_or_default(),
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
        /// Encrypt every client key (TLS, seal, person) with a passphrase (PKCS#8, scrypt,
        /// AES-256); the server's and the CAs' keys stay plain 0600 files.
        #[arg(long)]
        protect: bool,
        /// With --protect: read the passphrase from this file instead of asking (twice).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// With --protect: read the passphrase from this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
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
    /// Write one password-protected file (age, scrypt) with an organisation's profile,
    /// certificates and key files, for `congvan profile install` on its machine.
    Bundle {
        /// The organisation id, e.g. hn/cm/chuc-son.
        org: String,
        /// The PKI directory holding orgs/<id, / as .>/client.toml.
        #[arg(long, default_value = "certs/demo")]
        pki: PathBuf,
        /// A client.toml to bundle instead of the one under --pki.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// The bundle to write; refused if it exists.
        #[arg(long)]
        out: PathBuf,
        /// Read the password from the first line of this file instead of the terminal.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Unpack a profile bundle made by `congvan pki bundle` into a new directory (keys
    /// 0600); never overwrites.
    Install {
        /// The bundle file.
        file: PathBuf,
        /// Where to put the profile; must not exist. Default: congvan-<org, / as .> in the
        /// current directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Read the password from the first line of this file instead of the terminal.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
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

/// `congvan reform …`.
fn reform(command: ReformCommand) -> Result<()> {
    let load = |config: Option<PathBuf>| -> Result<ServerConfig> {
        Ok(match config {
            Some(path) => ServerConfig::load(&path)?,
            None => ServerConfig::load(Path::new(DEFAULT_CONFIG_PATH))?,
        })
    };
    match command {
        ReformCommand::Apply {
            plan,
            config,
            dry_run,
        } => {
            let config = load(config)?;
            let text = std::fs::read_to_string(&plan)
                .with_context(|| format!("cannot read {}", plan.display()))?;
            let (base, _) = config.load_directory()?;
            let outcome = congvan::directory::reform::apply_to_dir(
                &base,
                &config.reforms_dir,
                &text,
                dry_run,
            )?;
            println!(
                "reform plan {} \"{}\" ({}), effective {}",
                outcome.plan.id,
                outcome.plan.title,
                outcome.plan.legal_basis,
                outcome.plan.effective_at_rfc3339()
            );
            for effect in &outcome.effects {
                println!("  - {effect}");
            }
            match &outcome.written {
                None => println!("dry run: nothing changed"),
                Some(path) => println!(
                    "written to {}: the server puts it in force at its effective time (within seconds if that has passed) and logs it as `reorganised`",
                    path.display()
                ),
            }
            Ok(())
        }
        ReformCommand::List { config } => {
            let config = load(config)?;
            let plans = congvan::directory::reform::load_dir(&config.reforms_dir)?;
            let now = time::OffsetDateTime::now_utc();
            for (plan, _) in &plans {
                println!(
                    "{}  {}  {}  {}",
                    plan.id,
                    plan.effective_at_rfc3339(),
                    if plan.effective_at <= now {
                        "in force"
                    } else {
                        "waiting"
                    },
                    plan.title
                );
            }
            if plans.is_empty() {
                println!("no reform plans in {}", config.reforms_dir.display());
            }
            Ok(())
        }
    }
}

/// `congvan register …`.
fn register(command: RegisterCommand) -> Result<()> {
    match command {
        RegisterCommand::List {
            client,
            year,
            csv,
            pdf,
            font,
        } => {
            let client = client.client()?;
            let path = match year {
                Some(y) => format!("/v1/registers/incoming?year={y}"),
                None => "/v1/registers/incoming".to_owned(),
            };
            let view: congvan::api::IncomingRegisterView =
                runtime()?.block_on(client.get_json(&path))?;
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
            let (_, answer): (u16, congvan::api::PaperRegistered) =
                runtime()?.block_on(client.post_json("/v1/registers/incoming", &paper))?;
            println!(
                "registered: số đến {} of {} (paper)",
                answer.number, answer.year
            );
            Ok(())
        }
        RegisterCommand::Close { client, year } => {
            let client = client.client()?;
            let (_, answer): (u16, congvan::api::RegisterClosedView) =
                runtime()?.block_on(client.post_json(
                    &format!("/v1/registers/incoming/close?year={year}"),
                    &serde_json::json!({}),
                ))?;
            println!(
                "the {} register of {} is closed ({} numbers), at {}",
                answer.year, answer.org, answer.count, answer.closed_at
            );
            Ok(())
        }
    }
}

fn nfc(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfc().collect()
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    init_tracing(opts.log_format);
    match run(opts.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The error and its causes on one line, each said once: many library errors already
/// include their cause in their own message, and anyhow's chain would repeat it.
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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
        if let Some(c) = cause.downcast_ref::<congvan::client::ClientError>() {
            return c.exit_code();
        }
        if let Some(b) = cause.downcast_ref::<congvan::backup::BackupError>() {
            return b.exit_code();
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
            acknowledge_rollback,
        } => serve(config, listen, data, acknowledge_rollback),
        Command::Backup {
            config,
            data,
            out,
            command,
        } => match command {
            Some(BackupCommand::Verify { dir }) => backup_verify(&dir),
            None => {
                let (Some(config), Some(out)) = (config, out) else {
                    bail!(
                        "say which server and where: congvan backup --config /etc/congvan/congvan.toml --out /var/backups/congvan (or: congvan backup verify DIR)"
                    );
                };
                backup(&config, data, &out)
            }
        },
        Command::Restore { dir, data } => restore(&dir, &data),
        Command::Bench { command } => bench(command),
        Command::Pki { command } => match command {
            PkiCommand::Demo {
                out,
                orgs,
                force,
                listen,
                protect,
                passphrase_file,
                passphrase_env,
            } => {
                // Ask before making anything, so that a refused passphrase leaves nothing.
                let passphrase = match protect {
                    true => Some(new_passphrase(passphrase_file, passphrase_env)?),
                    false => None,
                };
                pki_demo(
                    &out,
                    orgs.as_deref(),
                    force,
                    listen,
                    passphrase.as_ref().map(|p| p.as_str()),
                )
            }
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
            PkiCommand::Bundle {
                org,
                pki,
                profile,
                out,
                password_file,
            } => pki_bundle(&org, &pki, profile, &out, password_file.as_deref()),
        },
        Command::Profile { command } => match command {
            ProfileCommand::Install {
                file,
                dir,
                password_file,
            } => profile_install(&file, dir, password_file.as_deref()),
        },
        Command::Whoami { client } => {
            let client = client.client()?;
            let me = runtime()?.block_on(client.whoami())?;
            println!("{}", serde_json::to_string_pretty(&me)?);
            Ok(())
        }
        Command::Send { client, doc } => {
            doc.check_files()?;
            let client = client.client()?;
            use congvan::client::upload::Sent;
            let (resume, edxml) = (doc.resume, doc.edxml.clone());
            // Only the watched sends catch Ctrl-C (the edXML send stops as it always did).
            let watch = congvan::client::transfer::Watch::terminal;
            let sent = runtime()?.block_on(async {
                match (resume, edxml) {
                    (Some(id), _) => client.resume_send(&id, &watch()?).await,
                    (None, Some(path)) => client.send_edxml(&path).await.map(Sent::Done),
                    (None, None) => {
                        client
                            .send_document_watched(&(*doc).into_request(), &watch()?)
                            .await
                    }
                }
            })?;
            let outcome = match sent {
                Sent::Done(outcome) => outcome,
                Sent::Interrupted(report) => return Err(report.into()),
            };
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
        Command::Inbox {
            client,
            all,
            history,
            limit,
        } => {
            let client = client.client()?;
            let state = match (all, history) {
                (_, true) => "history",
                (true, _) => "all",
                _ => "new",
            };
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
            let watch = congvan::client::transfer::Watch::terminal_progress();
            let fetched = runtime()?.block_on(client.fetch_document_watched(&id, &out, &watch))?;
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
            if let Some(number) = answer.incoming_number {
                println!("số đến (incoming number): {number}");
            }
            Ok(())
        }
        Command::Register { command } => register(command),
        Command::Reform { command } => reform(command),
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
                let note = match &r.offered_to {
                    Some(successor) => format!(
                        "merged: offered to {successor}. {}",
                        r.note.clone().unwrap_or_default()
                    ),
                    None => r.note.clone().unwrap_or_default(),
                };
                // A pending recall or update shows as 13 until the recipient answers.
                let status = match (r.status, r.request.as_deref()) {
                    (Some(s), Some(_)) if s == "15" || s == "16" => s,
                    (_, Some(kind)) => format!("13 ({kind} requested)"),
                    (s, None) => s.unwrap_or_else(|| "-".into()),
                };
                println!(
                    "{:<24} {:<22} {:<6} {:<22} {}",
                    r.org,
                    r.fetched_at.unwrap_or_else(|| "-".into()),
                    status,
                    r.status_time.unwrap_or_else(|| "-".into()),
                    note.trim_end()
                );
            }
            if !view.links.is_empty() {
                println!("{}", links_text(&view.links));
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
        Command::Edxml {
            command: EdxmlCommand::Export { client, id, out },
        } => {
            let client = client.client()?;
            let exported = runtime()?.block_on(client.edxml_export(&id, &out))?;
            println!("wrote {}", exported.envelope.display());
            for packet in &exported.status_packets {
                println!("wrote {}", packet.display());
            }
            Ok(())
        }
        Command::Key {
            command:
                KeyCommand::Endorse {
                    profile,
                    cert,
                    days,
                    out,
                },
        } => endorse_key(&profile, cert.as_deref(), days, out.as_deref()),
        Command::Key {
            command:
                KeyCommand::ImportP12 {
                    file,
                    cert,
                    key,
                    password_file,
                    password_env,
                    passphrase_file,
                    passphrase_env,
                    force,
                },
        } => {
            use congvan::pki::keystore::SecretSource;
            let password = SecretSource::from_settings(password_file, password_env)
                .read(&format!("password of {}", file.display()))?;
            let passphrase = new_passphrase(passphrase_file, passphrase_env)?;
            let imported =
                pki::keystore::import_p12(&file, &password, &cert, &key, &passphrase, force)?;
            println!(
                "imported {} ({} certificate(s)) to {} and its key, encrypted, to {}",
                imported.subject,
                imported.chain_len,
                cert.display(),
                key.display()
            );
            Ok(())
        }
        Command::Key {
            command:
                KeyCommand::Csr {
                    profile,
                    role,
                    common_name,
                    out,
                },
        } => {
            let profile = ClientProfile::load(&profile)?;
            let key = match role {
                CsrRole::Sign => profile.sign_key_token.clone(),
                CsrRole::Person => profile.person_key_token.clone(),
                CsrRole::Tls => profile.tls_key_token.clone(),
            }
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the profile names no token key for that role ([token] sign_key or person_key)"
                )
            })?;
            let pem = profile.keys.token_csr(&key, &common_name)?;
            match out {
                Some(path) => pki::pem::write_public(&path, pem.as_bytes())?,
                None => print!("{pem}"),
            }
            Ok(())
        }
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
            let pending = runtime()?.block_on(client.pending_sent())?;
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
            Ok(())
        }
    }
}

/// The files a server configuration names (itself included), for a backup.
fn config_files(path: &Path, config: &ServerConfig) -> Vec<PathBuf> {
    let mut files = vec![path.to_owned(), config.orgs.clone()];
    files.push(config.tls.cert.clone());
    files.push(config.tls.key.clone());
    files.extend(config.tls.client_ca.iter().cloned());
    files.extend(config.tls.crls.iter().cloned());
    files.extend(config.signing_anchors.iter().cloned());
    files.extend(config.signing_crls.iter().cloned());
    if let Ok(entries) = std::fs::read_dir(&config.keys_dir) {
        let mut keys: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        keys.sort();
        files.extend(keys);
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| f.is_file() && seen.insert(f.clone()));
    files
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn backup(config_path: &Path, data: Option<PathBuf>, out: &Path) -> Result<()> {
    let config = ServerConfig::load(config_path)?;
    let data = data.unwrap_or_else(|| config.data_dir.clone());
    let socket = data.join(congvan::server::BACKUP_SOCKET_NAME);
    let files = config_files(config_path, &config);
    let started = std::time::Instant::now();
    let summary = congvan::backup::take(&socket, out, &files, &mut |p| {
        eprintln!(
            "backup: {} log entries, {} records, {} payload files ({})",
            p.leaves,
            p.records,
            p.blobs,
            mib(p.blob_bytes)
        );
    })?;
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
        started.elapsed().as_secs_f64(),
        summary.cut_us
    );
    Ok(())
}

fn print_verified(r: &congvan::backup::VerifyReport) {
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

fn backup_verify(dir: &Path) -> Result<()> {
    let report = congvan::backup::verify(dir)?;
    println!("backup verified: {}", dir.display());
    print_verified(&report);
    Ok(())
}

fn restore(dir: &Path, data: &Path) -> Result<()> {
    let report = runtime()?.block_on(congvan::backup::restore(dir, data))?;
    println!("restored {} into {}", dir.display(), report.data.display());
    print_verified(&report.verified);
    println!(
        "  the configuration and registered keys backed up are in {}",
        report.config.display()
    );
    println!(
        "  start: congvan serve --config <your congvan.toml> --data {}",
        report.data.display()
    );
    Ok(())
}

/// `congvan pki bundle`.
fn pki_bundle(
    org: &str,
    pki: &Path,
    profile: Option<PathBuf>,
    out: &Path,
    password_file: Option<&Path>,
) -> Result<()> {
    let id = congvan::directory::OrgId::parse(org)
        .map_err(|e| anyhow::anyhow!("{org:?} is not an organisation id: {e}"))?;
    let profile = profile.unwrap_or_else(|| pki::demo::Layout::new(pki).org_profile(&id));
    if out.exists() {
        bail!("{} already exists: choose another --out", out.display());
    }
    let password = read_password(password_file, "password for the bundle", true)?;
    let bytes = congvan::client::bundle::pack(&profile, id.as_str(), &password)?;
    pki::pem::write_secret(out, &bytes)?;
    println!(
        "wrote {} for {id} ({} bytes). Give the commune the file and, separately, the password; \
         on its machine: congvan profile install {}",
        out.display(),
        bytes.len(),
        out.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    Ok(())
}

/// `congvan profile install`.
fn profile_install(file: &Path, dir: Option<PathBuf>, password_file: Option<&Path>) -> Result<()> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > congvan::client::bundle::BUNDLE_BYTES_MAX {
        bail!("{} is too large to be a profile bundle", file.display());
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let password = read_password(password_file, "password of the bundle", false)?;
    // The default directory is named after the organisation, which is only known once
    // the bundle is open; open it into a name that cannot exist yet, then say where.
    let target = match dir {
        Some(dir) => dir,
        None => PathBuf::from(format!(
            "congvan-{}",
            bundle_org_hint(file).unwrap_or_else(|| "profile".into())
        )),
    };
    let installed = congvan::client::bundle::install(&bytes, &password, &target)?;
    println!(
        "installed the profile of {} in {} ({} files; keys readable by you only). Try: congvan whoami --profile {}",
        installed.org,
        target.display(),
        installed.files.len(),
        installed.profile.display()
    );
    Ok(())
}

/// The organisation part of a bundle's file name as `pki bundle` suggests it
/// (`<org, / as .>.congvan`), for the default install directory.
fn bundle_org_hint(file: &Path) -> Option<String> {
    let stem = file.file_stem()?.to_str()?;
    let ok = !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    ok.then(|| stem.to_owned())
}

/// Reads a password from the first line of `file`, or from the terminal without echo
/// (twice when `confirm`). Never from an argument: arguments are visible to every user
/// of the machine.
fn read_password(file: Option<&Path>, prompt: &str, confirm: bool) -> Result<String> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the password file {}", file.display()))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    let first = prompt_hidden(prompt)?;
    if confirm && prompt_hidden("again")? != first {
        bail!("the two passwords differ; nothing was written");
    }
    Ok(first)
}

fn prompt_hidden(prompt: &str) -> Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, isatty, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    if !isatty(&stdin) {
        bail!("no terminal to ask for the password: give --password-file FILE");
    }
    eprint!("{prompt}: ");
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("cannot turn echo off")?;
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
    eprintln!();
    read.context("cannot read the password")?;
    restored.context("cannot restore the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn serve(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    acknowledge_rollback: bool,
) -> Result<()> {
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
        config.use_data_dir(data)?;
    }
    config.acknowledge_rollback = acknowledge_rollback;
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
                    congvan::ledger::Event::Reorganised { plan_id, .. } => {
                        ("reform", String::new(), plan_id.clone())
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
                    _ if r.returned.is_some() => "returned (02)".to_owned(),
                    (None, _) => "not fetched".to_owned(),
                    (Some(_), None) => "not acknowledged".to_owned(),
                    (Some(_), Some(s)) if s == "01" => "not acknowledged".to_owned(),
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
                if let Some(reason) = &r.returned {
                    println!("      reason: {reason}");
                }
                if !r.links.is_empty() {
                    println!("      {}", links_text(&r.links));
                }
            }
        }
    }
    Ok(())
}

/// Links as people read them: "replaced by ID; updates ID".
fn links_text(links: &[congvan::api::DocLink]) -> String {
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

fn verify_store(config: Option<PathBuf>, data: Option<PathBuf>) -> Result<()> {
    let config = match config {
        Some(path) => ServerConfig::load(&path)?,
        None => ServerConfig::load(Path::new(DEFAULT_CONFIG_PATH))?,
    };
    let mut config = config;
    if let Some(data) = data {
        config
            .use_data_dir(data)
            .map_err(|e| audit_exit(congvan::client::audit::exit::UNREADABLE, e.to_string()))?;
    }
    let data = config.data_dir.clone();
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
            match &item.addressed_to {
                // Sent to a unit merged since into this one: offered to its successor.
                Some(unit) => format!("← {} (for {unit}, merged)", item.sender),
                None => format!("← {}", item.sender),
            }
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

/// A new passphrase for keys at rest: from a file or an environment variable, or asked
/// twice on the terminal (a typo would lock the clerk out of their own key).
fn new_passphrase(
    file: Option<PathBuf>,
    env: Option<String>,
) -> Result<zeroize::Zeroizing<String>> {
    use congvan::pki::keystore::SecretSource;
    let source = SecretSource::from_settings(file, env);
    let first = source.read("new passphrase for the keys")?;
    if source == SecretSource::Terminal {
        let again = source.read("the same passphrase again")?;
        if *again != *first {
            bail!("the two passphrases differ; nothing was written");
        }
    }
    Ok(first)
}

fn pki_demo(
    out: &Path,
    orgs: Option<&Path>,
    force: bool,
    listen: SocketAddr,
    passphrase: Option<&str>,
) -> Result<()> {
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
    if let Some(passphrase) = passphrase {
        let count = pki::demo::protect_client_keys(&layout, &directory, passphrase)?;
        println!(
            "{count} client keys encrypted with the passphrase (server and CA keys stay plain 0600 files)"
        );
    }
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
