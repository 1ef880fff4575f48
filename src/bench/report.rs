//! The report of a benchmark run: per operation kind, throughput and latency percentiles.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::runner::Samples;
use super::{LoadOptions, Mode};

/// One operation kind's figures.
#[derive(Clone, Debug, Serialize)]
pub struct KindReport {
    /// `submit`, `fetch`, `ack` or `raw`.
    pub kind: String,
    /// Operations that succeeded in the measured period.
    pub ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Failures by stable error code (`transport` for connection failures).
    pub error_codes: BTreeMap<String, u64>,
    /// Successful operations per second.
    pub ops_per_s: f64,
    /// Payload megabytes (10⁶ bytes) per second.
    pub mb_per_s: f64,
    /// Latency percentiles of successful operations, in milliseconds.
    pub latency_ms: Latency,
}

/// Latency figures in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// A run's report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The mode.
    pub mode: Mode,
    /// Workers.
    pub concurrency: usize,
    /// Payload (or body) bytes per operation.
    pub size: u64,
    /// Recipients per submitted document.
    pub recipients: usize,
    /// Classification of submitted documents.
    pub classification: String,
    /// Measured seconds (after the warm-up).
    pub seconds: f64,
    /// Figures per operation kind.
    pub kinds: Vec<KindReport>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    f64::from(sorted[index]) / 1000.0
}

impl Report {
    pub(super) fn new(
        options: &LoadOptions,
        measured: Duration,
        by_kind: BTreeMap<&'static str, Samples>,
    ) -> Report {
        let seconds = measured.as_secs_f64().max(1e-9);
        let kinds = by_kind
            .into_iter()
            .map(|(kind, mut samples)| {
                samples.latencies_us.sort_unstable();
                let sorted = &samples.latencies_us;
                let ok = sorted.len() as u64;
                let mean = if sorted.is_empty() {
                    0.0
                } else {
                    sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / sorted.len() as f64 / 1000.0
                };
                KindReport {
                    kind: kind.to_owned(),
                    ok,
                    errors: samples.errors.values().sum(),
                    error_codes: samples.errors,
                    ops_per_s: ok as f64 / seconds,
                    mb_per_s: samples.bytes as f64 / 1e6 / seconds,
                    latency_ms: Latency {
                        mean,
                        p50: percentile(sorted, 50.0),
                        p95: percentile(sorted, 95.0),
                        p99: percentile(sorted, 99.0),
                        max: sorted.last().map(|&v| f64::from(v) / 1000.0).unwrap_or(0.0),
                    },
                }
            })
            .collect();
        Report {
            mode: options.mode,
            concurrency: options.concurrency,
            size: options.size,
            recipients: if options.to.is_empty() {
                options.recipients
            } else {
                options.to.len()
            },
            classification: options.classification.name().to_owned(),
            seconds,
            kinds,
        }
    }

    /// Total errors over all kinds.
    pub fn errors(&self) -> u64 {
        self.kinds.iter().map(|k| k.errors).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "mode {:?}, concurrency {}, {} bytes, {} recipient(s), {}, {:.1} s measured",
            self.mode,
            self.concurrency,
            self.size,
            self.recipients,
            self.classification,
            self.seconds
        )?;
        writeln!(
            f,
            "{:<8} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "kind", "ok", "errors", "ops/s", "MB/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        )?;
        for k in &self.kinds {
            writeln!(
                f,
                "{:<8} {:>9} {:>7} {:>10.1} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                k.kind,
                k.ok,
                k.errors,
                k.ops_per_s,
                k.mb_per_s,
                k.latency_ms.p50,
                k.latency_ms.p95,
                k.latency_ms.p99,
                k.latency_ms.max
            )?;
            for (code, n) in &k.error_codes {
                writeln!(f, "         error {code}: {n}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
        assert_eq!(percentile(&[7000], 1.0), 7.0);
    }
}
