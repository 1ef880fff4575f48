//! Per-identity limits: a request rate (token bucket) and concurrent uploads, the
//! connection idle timer, and the [`ConnectionTable`] that shares connection slots fairly.
//!
//! Limits are keyed by the identity in the client certificate, so one committee cannot
//! starve the others, and refusals are `429` with `Retry-After`. Before a handshake there
//! is no identity yet, so connections in their handshake are counted per IP address and
//! in all, and the oldest are cut to make room instead of making newcomers wait.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::Limits;

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

/// Why a connection that finished its handshake is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its identity already has `connections_per_identity_max` open connections.
    IdentityFull(usize),
    /// Every slot is taken and no connection is idle enough to be closed for it.
    ServerFull,
}

/// What [`ConnectionTable::admit_pending`] and [`ConnectionTable::open`] did to others,
/// for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    /// Connections in their handshake that were cut.
    pub handshakes: usize,
    /// Idle keep-alive connections closed.
    pub idle: usize,
}

struct PendingEntry {
    addr: IpAddr,
    since: Instant,
    cut: CancellationToken,
}

struct OpenEntry {
    identity: String,
    close: CancellationToken,
    in_flight: Arc<AtomicUsize>,
    activity: Activity,
}

#[derive(Default)]
struct Tables {
    next_id: u64,
    /// Connections in their handshake, by id; ids grow, so the first is the oldest.
    pending: BTreeMap<u64, PendingEntry>,
    pending_per_addr: HashMap<IpAddr, usize>,
    /// Established connections, by id (oldest first).
    open: BTreeMap<u64, OpenEntry>,
    open_per_identity: HashMap<String, usize>,
}

impl Tables {
    fn remove_pending(&mut self, id: u64) -> Option<PendingEntry> {
        let entry = self.pending.remove(&id)?;
        if let Some(count) = self.pending_per_addr.get_mut(&entry.addr) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.pending_per_addr.remove(&entry.addr);
            }
        }
        Some(entry)
    }

    fn remove_open(&mut self, id: u64) -> Option<OpenEntry> {
        let entry = self.open.remove(&id)?;
        if let Some(count) = self.open_per_identity.get_mut(&entry.identity) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.open_per_identity.remove(&entry.identity);
            }
        }
        Some(entry)
    }

    /// Cuts the pending connection `id`: its task sees the token and drops the socket.
    fn cut_pending(&mut self, id: u64) -> bool {
        match self.remove_pending(id) {
            Some(entry) => {
                entry.cut.cancel();
                true
            }
            None => false,
        }
    }
}

/// The connection slots: who is in a handshake, who is connected, and who is idle.
///
/// Every connection registers here when accepted ([`ConnectionTable::admit_pending`]) and
/// moves to the open table after its handshake ([`ConnectionTable::open`]); its guard
/// removes it when the connection ends. All decisions take one short lock and scan at most
/// the table of the kind that is full, which the caps bound.
pub struct ConnectionTable {
    limits: Arc<Limits>,
    tables: Mutex<Tables>,
}

/// A connection in its handshake. Dropping it frees the slot.
pub struct PendingSlot {
    table: Arc<ConnectionTable>,
    id: u64,
    cut: CancellationToken,
}

impl PendingSlot {
    /// Completes when the server cut this connection to make room for others.
    pub async fn cut(&self) {
        self.cut.cancelled().await;
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.table.lock().remove_pending(self.id);
    }
}

/// An established connection. Dropping it frees the slot.
pub struct OpenSlot {
    table: Arc<ConnectionTable>,
    id: u64,
    close: CancellationToken,
    in_flight: Arc<AtomicUsize>,
    /// The connection's traffic, for the idle timer and for eviction.
    pub activity: Activity,
}

impl OpenSlot {
    /// Completes when the server wants this connection closed (to make room, or because
    /// its certificate no longer passes).
    pub async fn closing(&self) {
        self.close.cancelled().await;
    }

    /// Asks the connection to close (after the response being written).
    pub fn close(&self) {
        self.close.cancel();
    }

    /// Marks a request in flight until the returned guard is dropped; a connection with a
    /// request in flight is never closed for idleness.
    pub fn request(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.in_flight.clone())
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.table.lock().remove_open(self.id);
    }
}

/// A request in flight on a connection.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionTable {
    /// An empty table enforcing `limits`.
    pub fn new(limits: Arc<Limits>) -> Arc<Self> {
        Arc::new(ConnectionTable {
            limits,
            tables: Mutex::new(Tables::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panicked holder may have left a count wrong; keep serving with it, since
        // refusing every connection would be worse than a miscounted slot.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a connection just accepted from `addr`, making room first: under pressure
    /// (at least half of `handshakes_max` in progress) handshakes older than
    /// `handshake_timeout_pressure_ms` are cut, then the oldest of `addr`'s own when it is
    /// at `handshakes_per_address_max`, then the oldest of all at `handshakes_max`. The
    /// newcomer is never the one refused: an honest client finishes its handshake in
    /// milliseconds, a silent one never does, so cutting the oldest favours the honest.
    pub fn admit_pending(self: &Arc<Self>, addr: IpAddr) -> (PendingSlot, Evicted) {
        let mut evicted = Evicted::default();
        let cut = CancellationToken::new();
        let mut t = self.lock();
        let total_max = self.limits.handshakes_max.max(1);
        if t.pending.len() * 2 >= total_max {
            let limit = self.limits.handshake_timeout_pressure();
            let now = Instant::now();
            let stale: Vec<u64> = t
                .pending
                .iter()
                .filter(|(_, e)| now.duration_since(e.since) >= limit)
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                if t.cut_pending(id) {
                    evicted.handshakes += 1;
                }
            }
        }
        let per_addr_max = self.limits.handshakes_per_address_max.max(1);
        if t.pending_per_addr.get(&addr).copied().unwrap_or(0) >= per_addr_max {
            let oldest = t
                .pending
                .iter()
                .find(|(_, e)| e.addr == addr)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                if t.cut_pending(id) {
                    evicted.handshakes += 1;
                }
            }
        }
        if t.pending.len() >= total_max {
            let oldest = t.pending.keys().next().copied();
            if let Some(id) = oldest {
                if t.cut_pending(id) {
                    evicted.handshakes += 1;
                }
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        t.pending.insert(
            id,
            PendingEntry {
                addr,
                since: Instant::now(),
                cut: cut.clone(),
            },
        );
        *t.pending_per_addr.entry(addr).or_insert(0) += 1;
        drop(t);
        (
            PendingSlot {
                table: self.clone(),
                id,
                cut,
            },
            evicted,
        )
    }

    /// Moves a connection whose handshake finished to the open table under `identity`.
    /// Refused when the identity is at `connections_per_identity_max`; at
    /// `connections_max`, the oldest connection idle for `connection_evictable_idle_ms`
    /// with no request in flight is closed to make room, and without one the newcomer is
    /// refused. A refused connection keeps its pending slot (the caller answers it).
    pub fn open(
        self: &Arc<Self>,
        pending: &PendingSlot,
        identity: &str,
    ) -> (Result<OpenSlot, Refusal>, Evicted) {
        let mut evicted = Evicted::default();
        let mut t = self.lock();
        let per_identity_max = self.limits.connections_per_identity_max.max(1);
        if t.open_per_identity.get(identity).copied().unwrap_or(0) >= per_identity_max {
            return (Err(Refusal::IdentityFull(per_identity_max)), evicted);
        }
        if t.open.len() >= self.limits.connections_max.max(1) {
            let idle_for = self.limits.connection_evictable_idle();
            let victim = t
                .open
                .iter()
                .find(|(_, e)| {
                    e.in_flight.load(Ordering::Acquire) == 0 && e.activity.idle() >= idle_for
                })
                .map(|(id, _)| *id);
            match victim.and_then(|id| t.remove_open(id)) {
                Some(entry) => {
                    entry.close.cancel();
                    evicted.idle += 1;
                }
                None => return (Err(Refusal::ServerFull), evicted),
            }
        }
        t.remove_pending(pending.id);
        let id = t.next_id;
        t.next_id += 1;
        let close = CancellationToken::new();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let activity = Activity::new();
        t.open.insert(
            id,
            OpenEntry {
                identity: identity.to_owned(),
                close: close.clone(),
                in_flight: in_flight.clone(),
                activity: activity.clone(),
            },
        );
        *t.open_per_identity.entry(identity.to_owned()).or_insert(0) += 1;
        (
            Ok(OpenSlot {
                table: self.clone(),
                id,
                close,
                in_flight,
                activity,
            }),
            evicted,
        )
    }

    /// Connections in their handshake now.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Established connections now.
    pub fn open_connections(&self) -> usize {
        self.lock().open.len()
    }

    /// Established connections of `identity` now.
    pub fn open_for(&self, identity: &str) -> usize {
        self.lock()
            .open_per_identity
            .get(identity)
            .copied()
            .unwrap_or(0)
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

    fn table(tweak: impl FnOnce(&mut Limits)) -> Arc<ConnectionTable> {
        let mut limits = Limits::default();
        tweak(&mut limits);
        ConnectionTable::new(Arc::new(limits))
    }

    #[test]
    fn a_full_address_loses_its_oldest_handshake_not_the_newcomer() {
        let table = table(|l| l.handshakes_per_address_max = 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let (first, _) = table.admit_pending(a);
        let (_second, _) = table.admit_pending(a);
        let (_other, _) = table.admit_pending(b);
        let (_third, evicted) = table.admit_pending(a);
        assert_eq!(evicted.handshakes, 1);
        assert!(first.cut.is_cancelled());
        assert_eq!(table.pending(), 3);
        drop(first);
        assert_eq!(table.pending(), 3, "a cut slot is not counted twice");
    }

    #[test]
    fn under_pressure_old_handshakes_are_cut() {
        let table = table(|l| {
            l.handshakes_max = 4;
            l.handshake_timeout_pressure_ms = 20;
        });
        let (old, _) = table.admit_pending([10, 0, 0, 1].into());
        std::thread::sleep(Duration::from_millis(30));
        // One in progress is not pressure yet (fewer than half of 4).
        let (young, evicted) = table.admit_pending([10, 0, 0, 2].into());
        assert_eq!(evicted, Evicted::default());
        // Two in progress is: the one older than 20 ms goes, the young one stays.
        let (_new, evicted) = table.admit_pending([10, 0, 0, 3].into());
        assert_eq!(evicted.handshakes, 1);
        assert!(old.cut.is_cancelled());
        assert!(!young.cut.is_cancelled());
        assert_eq!(table.pending(), 2);
    }

    #[test]
    fn identity_cap_refuses_and_global_cap_closes_the_oldest_idle() {
        let table = table(|l| {
            l.connections_per_identity_max = 2;
            l.connections_max = 3;
            l.connection_evictable_idle_ms = 0;
        });
        let addr: IpAddr = [10, 0, 0, 1].into();
        let open = |who: &str| {
            let (pending, _) = table.admit_pending(addr);
            table.open(&pending, who).0
        };
        let a1 = open("a").unwrap();
        let _a2 = open("a").unwrap();
        assert_eq!(open("a").err(), Some(Refusal::IdentityFull(2)));
        let b1 = open("b").unwrap();
        let _busy = b1.request();
        // Full: the idle "a" connections may go, the busy "b" one may not.
        let _c1 = open("c").unwrap();
        assert!(a1.close.is_cancelled());
        assert_eq!(table.open_for("a"), 1);
        assert_eq!(table.open_connections(), 3);
    }

    #[test]
    fn a_full_server_with_nothing_idle_refuses() {
        let table = table(|l| {
            l.connections_max = 1;
            l.connection_evictable_idle_ms = 60_000;
        });
        let addr: IpAddr = [10, 0, 0, 1].into();
        let (p1, _) = table.admit_pending(addr);
        let _first = table.open(&p1, "a").0.unwrap();
        let (p2, _) = table.admit_pending(addr);
        assert_eq!(table.open(&p2, "b").0.err(), Some(Refusal::ServerFull));
        assert_eq!(table.pending(), 1, "the refused one keeps its pending slot");
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
