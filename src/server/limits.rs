//! Per-identity limits: a request rate (token bucket) and concurrent uploads, and the
//! connection idle timer.
//!
//! Limits are keyed by the identity in the client certificate, so one committee cannot
//! starve the others, and refusals are `429` with `Retry-After`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Identities not seen for this long are forgotten (bounds the tables).
const FORGET_AFTER: Duration = Duration::from_secs(600);

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets per identity.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_minute` requests per identity on average, bursts of up to `burst`.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `who`; when none is left, how long until one is.
    pub fn check(&self, who: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            // A panicked holder: refuse rather than let everything through.
            return Err(Duration::from_secs(1));
        };
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.last) < FORGET_AFTER);
        }
        let bucket = buckets.entry(who.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

/// Counts concurrent uploads per identity.
pub struct UploadSlots {
    max: usize,
    active: Mutex<HashMap<String, usize>>,
}

/// An upload slot; dropping it frees the slot.
pub struct UploadSlot {
    slots: Arc<UploadSlots>,
    who: String,
}

impl UploadSlots {
    /// At most `max` uploads at once per identity.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(UploadSlots {
            max: max.max(1),
            active: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `who`, or `None` when it already has `max` uploads running.
    pub fn acquire(self: &Arc<Self>, who: &str) -> Option<UploadSlot> {
        let mut active = self.active.lock().ok()?;
        let count = active.entry(who.to_owned()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(UploadSlot {
            slots: self.clone(),
            who: who.to_owned(),
        })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        if let Ok(mut active) = self.slots.active.lock() {
            if let Some(count) = active.get_mut(&self.who) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    active.remove(&self.who);
                }
            }
        }
    }
}

/// The time of a connection's last read or write, shared with its watchdog.
#[derive(Clone)]
pub struct Activity {
    origin: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    /// Starts now.
    pub fn new() -> Self {
        Activity {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records activity now.
    pub fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last activity.
    pub fn idle(&self) -> Duration {
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// An I/O stream that records its activity.
pub struct TrackedIo<T> {
    inner: T,
    activity: Activity,
}

impl<T> TrackedIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, activity: Activity) -> Self {
        TrackedIo { inner, activity }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_paces() {
        let limiter = RateLimiter::new(60, 3);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Others are unaffected.
        assert!(limiter.check("b").is_ok());
    }

    #[test]
    fn upload_slots_are_returned_on_drop() {
        let slots = UploadSlots::new(2);
        let a = slots.acquire("x").unwrap();
        let _b = slots.acquire("x").unwrap();
        assert!(slots.acquire("x").is_none());
        assert!(slots.acquire("y").is_some());
        drop(a);
        assert!(slots.acquire("x").is_some());
    }
}
