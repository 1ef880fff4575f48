//! The command line: every subcommand, option and value clap parses (the help text is
//! the doc comments below). The command modules take these values apart and call the
//! library; no clap type reaches the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use congvan::pki;

mod bench;
mod send;

pub use bench::BenchCommand;
pub use send::SendArgs;

/// Secure exchange of official documents between Party committees.
#[derive(Parser)]
#[command(name = "congvan", version, about)]
pub struct Opts {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CONGVAN_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum AuditCommand {
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
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Subcommand)]
pub enum EdxmlCommand {
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
pub enum KeyCommand {
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
pub enum CsrRole {
    Sign,
    Person,
    Tls,
}

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Check a backup directory: every set complete, every payload's digest, the log
    /// against every checkpoint.
    Verify {
        /// The backup directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum DirectoryCommand {
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
pub enum ReformCommand {
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
pub enum RegisterCommand {
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
pub struct ClientArgs {
    /// Client profile (client.toml, as `pki demo` writes it).
    #[arg(long, env = "CONGVAN_PROFILE")]
    pub profile: PathBuf,
    /// Talk to this server URL instead of the profile's.
    #[arg(long)]
    pub server: Option<String>,
}

impl ClientArgs {
    /// The client these arguments name: the profile's identity, talking to its server or
    /// to `--server`.
    pub fn client(&self) -> anyhow::Result<congvan::client::Client> {
        let profile = congvan::config::ClientProfile::load(&self.profile)?;
        Ok(match &self.server {
            Some(url) => congvan::client::Client::new(&profile, url)?,
            None => congvan::client::Client::from_profile(&profile)?,
        })
    }
}

#[derive(Subcommand)]
pub enum PkiCommand {
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
pub enum ProfileCommand {
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

// `pki revoke --reason`, mapped to the library's reasons (only `pki` knows rcgen). A
// plain comment: clap would show a doc comment in the help.
#[derive(Clone, Copy, ValueEnum)]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl From<Reason> for pki::crl::Reason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Unspecified => pki::crl::Reason::Unspecified,
            Reason::KeyCompromise => pki::crl::Reason::KeyCompromise,
            Reason::AffiliationChanged => pki::crl::Reason::AffiliationChanged,
            Reason::Superseded => pki::crl::Reason::Superseded,
            Reason::CessationOfOperation => pki::crl::Reason::CessationOfOperation,
        }
    }
}
