//! The operator's commands, run on the server host: `serve`, `backup` (and `backup
//! verify`), `restore`, `reform`, and `directory set-key`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use congvan::config::ServerConfig;

use crate::args::{BackupCommand, ReformCommand};
use crate::{render, runtime};

/// `congvan serve`: the configuration (given, default file, or embedded default) with the
/// command line's overrides, served until SIGINT or SIGTERM.
pub fn serve(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    acknowledge_rollback: bool,
) -> Result<()> {
    let mut config = ServerConfig::load_for_serve(config.as_deref())?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(data) = data {
        config.use_data_dir(data)?;
    }
    config.acknowledge_rollback = acknowledge_rollback;
    runtime()?.block_on(congvan::server::serve_until_signalled(&config))?;
    Ok(())
}

/// `congvan backup` and `backup verify`.
pub fn backup(
    config: Option<PathBuf>,
    data: Option<PathBuf>,
    out: Option<PathBuf>,
    command: Option<BackupCommand>,
) -> Result<()> {
    if let Some(BackupCommand::Verify { dir }) = command {
        let report = congvan::backup::verify(&dir)?;
        println!("backup verified: {}", dir.display());
        render::verified(&report);
        return Ok(());
    }
    let (Some(config_path), Some(out)) = (config, out) else {
        bail!(
            "say which server and where: congvan backup --config /etc/congvan/congvan.toml --out /var/backups/congvan (or: congvan backup verify DIR)"
        );
    };
    let config = ServerConfig::load(&config_path)?;
    let started = std::time::Instant::now();
    let summary = congvan::backup::take_configured(
        &config_path,
        &config,
        data.as_deref(),
        &out,
        &mut render::backup_progress,
    )?;
    render::backup(&summary, started.elapsed());
    Ok(())
}

/// `congvan restore`.
pub fn restore(dir: &Path, data: &Path) -> Result<()> {
    let report = runtime()?.block_on(congvan::backup::restore(dir, data))?;
    println!("restored {} into {}", dir.display(), report.data.display());
    render::verified(&report.verified);
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

/// `congvan reform …`.
pub fn reform(command: ReformCommand) -> Result<()> {
    match command {
        ReformCommand::Apply {
            plan,
            config,
            dry_run,
        } => {
            let config = ServerConfig::load_given(config.as_deref())?;
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
            let config = ServerConfig::load_given(config.as_deref())?;
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

/// `congvan directory set-key`.
pub fn set_key(
    config: Option<PathBuf>,
    org: &congvan::directory::OrgId,
    cert: &Path,
    endorsement: Option<&Path>,
) -> Result<()> {
    let config = ServerConfig::load_given(config.as_deref())?;
    let registered = congvan::client::keys::register_key(&config, org, cert, endorsement)?;
    let e = &registered.endorsement;
    println!(
        "registered {} as the encryption key of {org} ({}), endorsed by {} on {}, valid until {}",
        registered.fingerprint,
        registered.cert_path.display(),
        e.signer_subject,
        e.issued_at,
        e.not_after
    );
    Ok(())
}
