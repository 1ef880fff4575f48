//! Running a benchmark: the workers (one connection each, closed or open loop), the
//! samples they keep, and the progress line printed each second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::workload::{OpResult, Work};
use super::{BenchError, LoadOptions, Report};
use crate::client::ClientError;
use crate::config::ClientProfile;

/// Counters shared by workers and the progress printer.
#[derive(Default)]
struct Live {
    ok: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
}

/// Per-worker measurements of one operation kind.
#[derive(Default)]
pub(super) struct Samples {
    /// Latency of each successful operation, in microseconds.
    pub(super) latencies_us: Vec<u32>,
    /// Bytes moved by the successful operations.
    pub(super) bytes: u64,
    /// Failed operations by error code.
    pub(super) errors: BTreeMap<String, u64>,
}

impl Samples {
    fn record(&mut self, started: Instant, outcome: &OpResult) {
        match outcome {
            Ok(bytes) => {
                let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                self.latencies_us.push(us);
                self.bytes += bytes;
            }
            Err(e) => *self.errors.entry(error_code(e)).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.bytes += other.bytes;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }
}

/// The code a failed operation is counted under: the API's code when the server refused.
fn error_code(e: &ClientError) -> String {
    match e {
        ClientError::Api { code, .. } => code.clone(),
        ClientError::Transport { .. } => "transport".into(),
        ClientError::Trust(_) => "trust".into(),
        ClientError::Protocol(_) => "protocol".into(),
        _ => "client".into(),
    }
}

/// Runs a network benchmark against `server` (the profile's own when `None`).
pub async fn run(
    profile: &ClientProfile,
    server: Option<&str>,
    options: &LoadOptions,
) -> Result<Report, BenchError> {
    if options.concurrency == 0 {
        return Err(BenchError::Input("--concurrency must be at least 1".into()));
    }
    // Open loop: each worker (one connection, one request at a time) starts an operation
    // every `interval`, staggered.
    let interval = match options.rate {
        None => None,
        Some(rate) => Some(
            Duration::try_from_secs_f64(options.concurrency as f64 / rate)
                .ok()
                .filter(|_| rate.is_finite() && rate >= 0.001)
                .ok_or_else(|| {
                    BenchError::Input(format!("--rate {rate}: use at least 0.001 operations/s"))
                })?,
        ),
    };
    let base = server.unwrap_or(&profile.server).to_owned();
    let works = Work::prepare(profile, &base, options).await?;

    let live = Arc::new(Live::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    // A run bounded by a count has no warm-up and no deadline.
    let (measure_from, end) = match options.count {
        Some(_) => (start, None),
        None => (
            start + options.warmup,
            Some(start + options.warmup + options.duration),
        ),
    };
    let progress = options.progress.then(|| {
        let live = live.clone();
        let stop = stop.clone();
        let warmup = if options.count.is_some() {
            Duration::ZERO
        } else {
            options.warmup
        };
        tokio::spawn(progress_printer(live, stop, start, warmup))
    });
    let workers = works.len();
    let mut handles = Vec::new();
    for (i, work) in works.into_iter().enumerate() {
        let plan = Plan {
            measure_from,
            end,
            count: options.count,
            schedule: interval
                .map(|every| (start + every.mul_f64(i as f64 / workers as f64), every)),
        };
        handles.push(tokio::spawn(worker(work, live.clone(), plan)));
    }
    let mut by_kind: BTreeMap<&'static str, Samples> = BTreeMap::new();
    for handle in handles {
        let samples = handle
            .await
            .map_err(|e| BenchError::Worker(format!("worker: {e}")))?;
        for (kind, s) in samples {
            by_kind.entry(kind).or_default().merge(s);
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        // The printer only writes to standard error; how it ended changes no figure.
        let _ = p.await;
    }
    let measured = match end {
        Some(end) => end.saturating_duration_since(measure_from),
        None => start.elapsed(),
    };
    Ok(Report::new(options, measured, by_kind))
}

/// When a worker works.
struct Plan {
    measure_from: Instant,
    /// No new operation starts after this.
    end: Option<Instant>,
    /// Operations per worker, if bounded by count.
    count: Option<u64>,
    /// First start and interval, when paced.
    schedule: Option<(Instant, Duration)>,
}

async fn worker(work: Work, live: Arc<Live>, plan: Plan) -> Vec<(&'static str, Samples)> {
    let mut samples: BTreeMap<&'static str, Samples> = BTreeMap::new();
    let mut done = 0u64;
    loop {
        if plan.count.is_some_and(|c| done >= c) {
            break;
        }
        // The operation's start: now, or its slot in the schedule (which it may be
        // behind; the delay then counts as latency, as a user would see it).
        let started = match plan.schedule {
            Some((first, every)) => {
                let slot = first + every.mul_f64(done as f64);
                tokio::time::sleep_until(slot.into()).await;
                slot
            }
            None => Instant::now(),
        };
        if plan.end.is_some_and(|end| started >= end) {
            break;
        }
        let cursor = done as usize;
        done += 1;
        let measured = started >= plan.measure_from;
        let mut note = |kind: &'static str, started: Instant, outcome: OpResult| {
            match &outcome {
                Ok(bytes) => {
                    live.ok.fetch_add(1, Ordering::Relaxed);
                    live.bytes.fetch_add(*bytes, Ordering::Relaxed);
                }
                Err(_) => {
                    live.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            if measured {
                samples.entry(kind).or_default().record(started, &outcome);
            }
        };
        if !work.step(cursor, started, &mut note).await {
            break;
        }
    }
    samples.into_iter().collect()
}

async fn progress_printer(
    live: Arc<Live>,
    stop: Arc<AtomicBool>,
    start: Instant,
    warmup: Duration,
) {
    use std::io::Write as _;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_ok = 0u64;
    let mut last_bytes = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let ok = live.ok.load(Ordering::Relaxed);
        let bytes = live.bytes.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let elapsed = start.elapsed();
        let phase = if elapsed < warmup { " (warm-up)" } else { "" };
        let line = format!(
            "[{:>5.1}s] {ok} ok, {errors} errors, {}/s, {:.1} MB/s{phase}",
            elapsed.as_secs_f64(),
            ok - last_ok,
            (bytes - last_bytes) as f64 / 1e6,
        );
        last_ok = ok;
        last_bytes = bytes;
        let mut err = std::io::stderr().lock();
        // A progress line that cannot be written (closed standard error) is not an error
        // of the benchmark.
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
    }
    if tty {
        let _ = writeln!(std::io::stderr());
    }
}
