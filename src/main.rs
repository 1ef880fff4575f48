//! The `congvan` command: parses arguments, calls the library, reports errors once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use congvan::config::{ClientProfile, DEFAULT_CONFIG_PATH, ServerConfig};
use congvan::directory::Directory;
use congvan::pki;

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
    /// Manage certificates.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Ask the server who this profile's certificate says we are.
    Whoami {
        /// Client profile (client.toml).
        #[arg(long, env = "CONGVAN_PROFILE")]
        profile: PathBuf,
        /// Talk to this server URL instead of the profile's.
        #[arg(long)]
        server: Option<String>,
    },
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
        /// Revocation reason.
        #[arg(long, value_enum)]
        reason: Option<Reason>,
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
            ExitCode::FAILURE
        }
    }
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

fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve {
            config,
            listen,
            data,
        } => serve(config, listen, data),
        Command::Pki { command } => match command {
            PkiCommand::Demo {
                out,
                orgs,
                force,
                listen,
            } => pki_demo(&out, orgs.as_deref(), force, listen),
            PkiCommand::Revoke { pki, cert, reason } => {
                let layout = pki::demo::Layout::new(pki);
                let revoked = pki::crl::revoke(&layout, &cert, reason.map(Into::into))?;
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
        Command::Whoami { profile, server } => {
            let profile = ClientProfile::load(&profile)?;
            let client = match server {
                Some(url) => congvan::client::Client::new(&profile, &url)?,
                None => congvan::client::Client::from_profile(&profile)?,
            };
            let me = runtime()?.block_on(client.whoami())?;
            println!("{}", serde_json::to_string_pretty(&me)?);
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
        let server = congvan::server::Server::build(&config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let tls = server.tls();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading TLS material and CRLs");
                let tls = tls.clone();
                let _ = tokio::task::spawn_blocking(move || tls.reload()).await;
            }
        });
        server.run(listener, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
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
