//! The `congvan` command: parses arguments, calls the library, prints, and reports errors
//! once with their causes and an exit code (README, "Exit codes").
//!
//! The binary holds no rule of the exchange: `args` is what clap parses, `render` how
//! results are printed, and one module per group of commands (`documents`, `audit`,
//! `operator`, `keys`, `bench`) turns arguments into library calls and hands the results
//! to `render`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

/// `print!` and `println!` for this binary: writing to a closed pipe (`congvan inbox | head
/// -1`) ends the process quietly with success instead of panicking as std's macros do;
/// any other write error is reported once, with exit code 1.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
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

mod args;
mod audit;
mod bench;
mod documents;
mod keys;
mod operator;
mod render;

use args::{Command, LogFormat, Opts};

/// mimalloc instead of the system allocator: under load the server allocates and frees
/// many short-lived buffers from several threads, where glibc's malloc spent a fifth of
/// the CPU (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve {
            config,
            listen,
            data,
            acknowledge_rollback,
        } => operator::serve(config, listen, data, acknowledge_rollback),
        Command::Backup {
            config,
            data,
            out,
            command,
        } => operator::backup(config, data, out, command),
        Command::Restore { dir, data } => operator::restore(&dir, &data),
        Command::Reform { command } => operator::reform(command),
        Command::Bench { command } => bench::bench(command),
        Command::Pki { command } => keys::pki(command),
        Command::Profile { command } => keys::profile(command),
        Command::Key { command } => keys::key(command),
        Command::Directory {
            profile,
            server,
            command,
        } => documents::directory(profile, server, command),
        Command::Audit { command } => audit::audit(command),
        Command::Register { command } => documents::register(command),
        Command::Demo => Ok(runtime()?.block_on(congvan::demo::run())?),
        Command::Desk {
            client,
            listen,
            open,
        } => documents::desk(client.client()?, listen, open),
        Command::Whoami { client } => documents::whoami(&client),
        Command::Send { client, doc } => documents::send(&client, *doc),
        Command::Sent { client, limit } => documents::sent(&client, limit),
        Command::Inbox {
            client,
            all,
            history,
            limit,
        } => documents::inbox(&client, all, history, limit),
        Command::Fetch { client, id, out } => documents::fetch(&client, &id, &out),
        Command::Ack {
            client,
            id,
            status,
            note,
        } => documents::ack(&client, &id, &status, &note),
        Command::Status { client, id } => documents::status(&client, &id),
        Command::Edxml { command } => documents::edxml(command),
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

/// An outcome the binary itself judges a failure with its own exit code (see
/// `congvan::client::audit::exit`): evidence that does not verify, nothing found.
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

/// The exit code of a failure: the first cause in the chain that names one, else 1.
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
        if let Some(s) = cause.downcast_ref::<congvan::ops::VerifyStoreError>() {
            return s.exit_code();
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
