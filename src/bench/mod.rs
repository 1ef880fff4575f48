//! `congvan bench`: a load generator for a running server, as `pgbench` is to PostgreSQL.
//!
//! Modes:
//!
//! - `submit`: sign and submit documents (manifest, then payload), checking each receipt;
//! - `fetch`: read accepted documents from the profile's inbox (manifest and payload,
//!   checking the payload's digest against the manifest);
//! - `ack`: sign and post delivery receipts for documents in the inbox;
//! - `inbox`: read the first page of the inbox;
//! - `mixed`: each worker submits a document to a recipient, which fetches and
//!   acknowledges it (`--recipient-profile`);
//! - `raw`: POST (or PUT) a fixed body to any URL with the same TLS client, for baselines;
//! - `ceiling`: how many documents per second the machine's cores could verify, doing
//!   nothing but the two signatures of each one (ring, one thread per core);
//! - `seal`: seal and open one file with the product's OpenPGP layer.
//!
//! Every network mode keeps connections alive (one HTTP/1.1 or HTTP/2 client per
//! worker), prints a progress line each second on standard error, and ends with
//! operations per second, MB/s, latency percentiles and errors by code; `--json` prints a
//! machine-readable report instead. A warm-up period runs first and is not counted.
//!
//! Documents are built the way `congvan send` builds them (the manifest builder of
//! [`crate::document::draft`], RFC 8785 bytes, organisation and person signatures) with
//! keys loaded once, and sent with the typed client. Each unclassified document gets its
//! own payload (its id in the first bytes, then a random block), so the server hashes and
//! stores every byte; a classified document reuses one payload sealed before the run for
//! the chosen recipients (sealing is the client's cost, measured by `seal`).
//!
//! The parts: [`workload`] (what one operation of each mode is), [`runner`] (workers,
//! pacing, samples, progress), [`ceiling`], [`seal`] and [`report`]. Nothing here knows
//! the command line: the binary turns its arguments into [`LoadOptions`].

pub mod ceiling;
pub mod report;
pub mod runner;
pub mod seal;
pub mod workload;

use std::time::Duration;

use crate::client::ClientError;
use crate::config::ClientProfile;
use crate::directory::OrgId;
use crate::document::manifest::Classification;

pub use ceiling::{CeilingReport, signature_ceiling};
pub use report::{KindReport, Report};
pub use runner::run;
pub use seal::{SealReport, seal_file};

/// Errors that stop a benchmark before it runs (or a measurement that cannot finish).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The client could not be set up or a preparatory request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The options cannot be used.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Sealing or opening failed.
    #[error("{step}: {source}")]
    Seal {
        /// `sealing` or `opening`.
        step: &'static str,
        /// The cause.
        #[source]
        source: crate::seal::SealError,
    },
    /// The operating system gave no randomness for the payloads.
    #[error("no randomness")]
    NoRandomness,
    /// A worker or verification thread ended abnormally.
    #[error("{0}")]
    Worker(String),
}

/// What a worker does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Submit signed documents.
    Submit,
    /// Fetch documents from the inbox.
    Fetch,
    /// Acknowledge documents in the inbox.
    Ack,
    /// Submit, fetch and acknowledge.
    Mixed,
    /// Read the first page of the inbox.
    Inbox,
    /// POST a fixed body to a URL.
    Raw,
}

impl Mode {
    /// Every mode, in the order the documentation lists them.
    pub const ALL: [Mode; 6] = [
        Mode::Submit,
        Mode::Fetch,
        Mode::Ack,
        Mode::Mixed,
        Mode::Inbox,
        Mode::Raw,
    ];

    /// The mode's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Submit => "submit",
            Mode::Fetch => "fetch",
            Mode::Ack => "ack",
            Mode::Mixed => "mixed",
            Mode::Inbox => "inbox",
            Mode::Raw => "raw",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A mode name that is not one of [`Mode::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown benchmark mode {0:?}: use submit, fetch, ack, mixed, inbox or raw")]
pub struct UnknownMode(pub String);

impl std::str::FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(text: &str) -> Result<Mode, UnknownMode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == text)
            .ok_or_else(|| UnknownMode(text.to_owned()))
    }
}

/// Options shared by the network modes.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The mode.
    pub mode: Mode,
    /// Concurrent workers (each one request at a time).
    pub concurrency: usize,
    /// Measured duration.
    pub duration: Duration,
    /// Unmeasured warm-up before it.
    pub warmup: Duration,
    /// Payload (or raw body) size in bytes.
    pub size: u64,
    /// How many recipients each submitted document names (chosen from the directory).
    pub recipients: usize,
    /// Explicit recipients (override `recipients`).
    pub to: Vec<OrgId>,
    /// Classification of submitted documents.
    pub classification: Classification,
    /// The recipient's profile, for `mixed`.
    pub recipient_profile: Option<ClientProfile>,
    /// The URL for `raw`.
    pub url: Option<String>,
    /// The method for `raw` (POST or PUT).
    pub method: reqwest::Method,
    /// Send payloads up to [`crate::api::INLINE_SEND_BYTES_MAX`] inline with the manifest
    /// (one request, as `congvan send` does); otherwise manifest first, then `PUT` payload.
    pub inline: bool,
    /// Stop after this many operations per worker (instead of at the end of `duration`).
    pub count: Option<u64>,
    /// Pace the workers to this many operations per second in total (open loop: latency
    /// is measured from each operation's scheduled start).
    pub rate: Option<f64>,
    /// Print a progress line each second.
    pub progress: bool,
}

/// Parses `10s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: use e.g. 30s, 500ms or 2m"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a duration"))
}

/// Parses `100KiB`, `1GiB`, `10kB`, `512` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: use e.g. 100KiB, 1GiB or 4096"))?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        _ => return Err(format!("{text:?}: the unit must be B, KiB, MiB or GiB")),
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in [
            "",
            "s",
            "10h",
            "-1s",
            "1e400s",
            "99999999999999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("100KiB").unwrap(), 102_400);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("10kB").unwrap(), 10_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "KiB", "1TiB", "99999999999999999999GiB", "-5"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_parse_from_their_names_and_refuse_others() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>().unwrap(), mode);
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::json!(mode.name())
            );
        }
        let e = "Submit".parse::<Mode>().unwrap_err();
        assert!(e.to_string().contains("use submit, fetch"), "{e}");
    }
}
