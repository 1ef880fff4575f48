//! `congvan bench`'s arguments. The value parsers are the library's plain functions, so
//! that `bench/` needs no clap.

use std::path::PathBuf;

use clap::Subcommand;
use congvan::bench::{parse_duration, parse_size};

use super::ClientArgs;
use super::send::parse_classification;

#[derive(Subcommand)]
pub enum BenchCommand {
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
        #[arg(long, short = 'd', default_value = "3s", value_parser = parse_duration)]
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
pub struct BenchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Concurrent workers, each with its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 16)]
    pub concurrency: usize,
    /// Measured duration (after the warm-up): 30s, 500ms, 2m.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Unmeasured warm-up.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: std::time::Duration,
    /// Payload (raw: body) size: 100KiB, 1GiB, 4096.
    #[arg(long, default_value = "100KiB", value_parser = parse_size)]
    pub size: u64,
    /// Recipients per document, chosen among the sender's active descendants.
    #[arg(long, default_value_t = 1)]
    pub recipients: usize,
    /// Name the recipients instead (repeat).
    #[arg(long = "to", value_name = "ORG")]
    pub to: Vec<congvan::directory::OrgId>,
    /// Classification of submitted documents (thuong, mat, toi_mat, tuyet_mat).
    #[arg(long, default_value = "thuong", value_parser = parse_classification)]
    pub classification: congvan::document::manifest::Classification,
    /// The recipient's profile (mixed).
    #[arg(long)]
    pub recipient_profile: Option<PathBuf>,
    /// The URL to send the body to (raw).
    #[arg(long)]
    pub url: Option<String>,
    /// The method for raw: POST or PUT.
    #[arg(long, default_value = "POST")]
    pub method: reqwest::Method,
    /// Stop after this many operations per worker instead of after --duration.
    #[arg(long)]
    pub count: Option<u64>,
    /// Pace all workers together to this many operations per second (open loop).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Upload every payload with a second request (PUT), even small ones.
    #[arg(long)]
    pub no_inline: bool,
    /// Also measure the signature ceiling on this machine and print the ratio.
    #[arg(long)]
    pub ceiling: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}
