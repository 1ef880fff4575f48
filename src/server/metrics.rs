//! Counters for `GET /metrics` (Prometheus text format).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters; cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// TCP connections accepted.
    pub connections_accepted: AtomicU64,
    /// TLS handshakes that failed or timed out (no, bad, expired, revoked certificate…).
    pub handshakes_refused: AtomicU64,
    /// HTTP requests that reached the router, by status class.
    pub requests_2xx: AtomicU64,
    /// As above, 4xx.
    pub requests_4xx: AtomicU64,
    /// As above, 5xx.
    pub requests_5xx: AtomicU64,
    /// Requests refused for their identity's rate.
    pub rate_limited: AtomicU64,
    /// Connections closed for idleness.
    pub idle_closed: AtomicU64,
    /// Connections cut during their handshake to make room for newer ones.
    pub handshakes_evicted: AtomicU64,
    /// Idle keep-alive connections closed to make room for a new connection.
    pub idle_evicted: AtomicU64,
    /// Connections refused after their handshake: identity or server at its cap.
    pub connections_refused: AtomicU64,
    /// Connections closed because their certificate no longer passed (revoked, expired…).
    pub certificate_closed: AtomicU64,
    /// Connections closed at their maximum age.
    pub age_closed: AtomicU64,
    /// Refusals answered but not logged (caller over its refusal rate, disk reserve
    /// reached, or an oversized entry).
    pub refusals_unlogged: AtomicU64,
}

impl Metrics {
    /// Counts what the connection table cut or closed to make room.
    pub fn count_evicted(&self, evicted: super::limits::Evicted) {
        if evicted.handshakes > 0 {
            self.handshakes_evicted
                .fetch_add(evicted.handshakes as u64, Ordering::Relaxed);
        }
        if evicted.idle > 0 {
            self.idle_evicted
                .fetch_add(evicted.idle as u64, Ordering::Relaxed);
        }
    }

    /// Counts one request that ended with `status`.
    pub fn count_request(&self, status: u16) {
        let counter = match status {
            500.. => &self.requests_5xx,
            400.. => &self.requests_4xx,
            _ => &self.requests_2xx,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of any status that reached the router.
    pub fn requests_total(&self) -> u64 {
        self.requests_2xx.load(Ordering::Relaxed)
            + self.requests_4xx.load(Ordering::Relaxed)
            + self.requests_5xx.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, labels: &str, value: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name}{labels} {}", value.load(Ordering::Relaxed));
        };
        counter(
            "congvan_connections_accepted_total",
            "TCP connections accepted.",
            "",
            &self.connections_accepted,
        );
        counter(
            "congvan_tls_handshakes_refused_total",
            "TLS handshakes refused or timed out.",
            "",
            &self.handshakes_refused,
        );
        counter(
            "congvan_rate_limited_total",
            "Requests refused for their identity's rate.",
            "",
            &self.rate_limited,
        );
        counter(
            "congvan_refusals_unlogged_total",
            "Refusals answered but not written to the log (rate, disk reserve or size).",
            "",
            &self.refusals_unlogged,
        );
        counter(
            "congvan_idle_connections_closed_total",
            "Connections closed after no traffic for idle_timeout_ms.",
            "",
            &self.idle_closed,
        );
        counter(
            "congvan_handshakes_evicted_total",
            "Connections cut during their TLS handshake to make room (handshakes_max, handshakes_per_address_max, pressure).",
            "",
            &self.handshakes_evicted,
        );
        counter(
            "congvan_idle_connections_evicted_total",
            "Idle keep-alive connections closed to make room for a new connection (connections_max).",
            "",
            &self.idle_evicted,
        );
        counter(
            "congvan_connections_refused_total",
            "Connections refused after their handshake (connections_per_identity_max, or connections_max with none idle).",
            "",
            &self.connections_refused,
        );
        counter(
            "congvan_connections_certificate_closed_total",
            "Open connections closed because their certificate no longer passed (revoked, expired, untrusted).",
            "",
            &self.certificate_closed,
        );
        counter(
            "congvan_connections_age_closed_total",
            "Connections closed at connection_age_max_ms.",
            "",
            &self.age_closed,
        );
        let _ = writeln!(
            out,
            "# HELP congvan_http_requests_total HTTP requests by status class."
        );
        let _ = writeln!(out, "# TYPE congvan_http_requests_total counter");
        for (class, value) in [
            ("2xx", &self.requests_2xx),
            ("4xx", &self.requests_4xx),
            ("5xx", &self.requests_5xx),
        ] {
            let _ = writeln!(
                out,
                "congvan_http_requests_total{{class=\"{class}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}
