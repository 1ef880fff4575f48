//! `congvan bench`: the load generator's arguments mapped to the library's options, and
//! its report printed as a table or JSON. Each subcommand names a `bench::Mode`; the
//! library's enums take no clap derive, so this mapping is the only place they meet.

use anyhow::{Result, bail};

use congvan::bench::{self, LoadOptions, Mode};
use congvan::config::ClientProfile;

use crate::args::BenchCommand;
use crate::runtime;

/// `congvan bench …`.
pub fn bench(command: BenchCommand) -> Result<()> {
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
