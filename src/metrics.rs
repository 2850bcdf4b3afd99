//! Counters the workers keep and the admin thread reads: one writer each, no shared cache
//! line on the request path.
//!
//! Owns the counter types ([`Counter`], [`Histogram`]) and what they count: each worker's own
//! ([`WorkerMetrics`]), each upstream's and each backend's, one slot per worker
//! ([`UpstreamMetrics`], [`BackendMetrics`]). A worker only ever writes its own slot, with a
//! relaxed load and store (not a read-modify-write: there is no other writer), and each slot
//! sits on cache lines of its own, so counting costs a worker a few plain stores and never a
//! cache-line transfer. The admin thread sums the slots at scrape time; a sum may be one
//! request behind, never torn (each counter is one atomic word).
//!
//! Invariants: counters only grow (a snapshot minus an earlier one is never negative, which
//! rates rely on); a slot index is a worker index, below the worker count the metrics were made
//! for (an index beyond it counts nowhere instead of panicking).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A count with one writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (the caller is the only writer).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Sets the value (for a gauge the writer recomputes).
    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency histograms' buckets, in seconds (a last, unbounded bucket
/// follows): log-linear from 0.5 ms to 60 s.
pub const LATENCY_BOUNDS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// [`LATENCY_BOUNDS`] in nanoseconds, for recording without floating point.
const BOUNDS_NS: [u64; 16] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// A latency histogram with one writer: fixed buckets ([`LATENCY_BOUNDS`]), no allocation.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [Counter; 17],
    sum_ns: Counter,
}

impl Histogram {
    /// Records one observation.
    #[inline]
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.partition_point(|&b| b < ns);
        self.buckets[i].inc();
        self.sum_ns.add(ns);
    }

    /// Adds this histogram's buckets (per bucket, the last unbounded), sum (seconds) and count
    /// into `into`.
    pub fn sum_into(&self, into: &mut HistogramSum) {
        for (total, b) in into.counts.iter_mut().zip(&self.buckets) {
            *total += b.get();
        }
        into.sum += self.sum_ns.get() as f64 / 1e9;
    }
}

/// Histograms summed over workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSum {
    /// Per bucket of [`LATENCY_BOUNDS`], then the unbounded one.
    pub counts: [u64; 17],
    /// Sum of the observations, seconds.
    pub sum: f64,
}

impl HistogramSum {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The class of a status code: 0 for 1xx ... 4 for 5xx (anything else counts as 5xx).
#[inline]
pub fn class(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// TLS handshake failure reasons, in [`WorkerMetrics::tls_failures`] order: the first four for
/// every handshake, then a client certificate refused (mutual TLS): missing where required,
/// from an unknown CA, expired or not valid yet, revoked, or otherwise invalid.
pub const TLS_FAILURE_REASONS: [&str; 9] = [
    "timeout",
    "closed",
    "refused",
    "other",
    "client_cert_required",
    "client_cert_unknown_ca",
    "client_cert_expired",
    "client_cert_revoked",
    "client_cert_invalid",
];

/// Why a connection to a listener that expects a PROXY header was closed before TLS, in
/// [`WorkerMetrics::proxy_header_failures`] order: not from a trusted source, a missing or
/// malformed header, no whole header within the listener's timeout, closed before one.
pub const PROXY_HEADER_FAILURE_REASONS: [&str; 4] = ["untrusted", "invalid", "timeout", "closed"];
/// Positions in [`PROXY_HEADER_FAILURE_REASONS`].
pub const PROXY_UNTRUSTED: usize = 0;
pub const PROXY_INVALID: usize = 1;
pub const PROXY_TIMEOUT: usize = 2;
pub const PROXY_CLOSED: usize = 3;

/// What one worker counts of its clients.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerMetrics {
    /// Client connections accepted (and served).
    pub connections_accepted: Counter,
    /// Client connections closed.
    pub connections_closed: Counter,
    /// Requests started.
    pub requests: Counter,
    /// Requests ended.
    pub requests_done: Counter,
    /// Handshakes by version (0: TLS 1.2, 1: TLS 1.3) and resumed (0: full, 1: resumed).
    pub tls_handshakes: [[Counter; 2]; 2],
    /// Handshake failures by reason ([`TLS_FAILURE_REASONS`]).
    pub tls_failures: [Counter; 9],
    /// Connections closed for their PROXY header, by reason ([`PROXY_HEADER_FAILURE_REASONS`]).
    pub proxy_header_failures: [Counter; 4],
    /// Bytes read from clients (TLS records included).
    pub bytes_received: Counter,
    /// Bytes written to clients (TLS records included).
    pub bytes_sent: Counter,
    /// Tunnels (upgraded connections, after a 101) opened.
    pub tunnels_opened: Counter,
    /// Tunnels ended.
    pub tunnels_closed: Counter,
}

/// One worker's counts of one upstream.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct UpstreamCounters {
    /// Responses by class (1xx ... 5xx), ringway's own answers included.
    pub requests: [Counter; 5],
    /// Requests no backend could take (503).
    pub no_backend: Counter,
    /// Attempts after the first (retries and hedges).
    pub retries: Counter,
    /// Whole requests, as the client sees them.
    pub request_seconds: Histogram,
    /// From the request sent to the backend to its response head.
    pub backend_seconds: Histogram,
}

/// One worker's counts of one backend.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct BackendCounters {
    /// Response heads by class.
    pub requests: [Counter; 5],
    /// Connections that could not be opened.
    pub connect_failures: Counter,
    /// Times this worker ejected it.
    pub ejections: Counter,
    /// Requests in flight (a gauge the worker keeps).
    pub in_flight: Counter,
    /// Idle pooled connections (a gauge the worker refreshes on its housekeeping tick).
    pub idle: Counter,
    /// Until when this worker has it ejected: nanoseconds on the registry's clock, 0 = not.
    pub ejected_until: Counter,
}

/// The clock of [`BackendCounters::ejected_until`]: nanoseconds since the first call.
pub fn nanos(at: std::time::Instant) -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(at.saturating_duration_since(epoch).as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Per-worker slots of one kind of counters.
#[derive(Debug)]
pub struct PerWorker<T> {
    slots: Box<[T]>,
    /// Counts for an out-of-range worker index: written, never read.
    spare: T,
}

impl<T: Default> PerWorker<T> {
    /// Slots for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            slots: (0..workers.max(1)).map(|_| T::default()).collect(),
            spare: T::default(),
        }
    }
}

impl<T> PerWorker<T> {
    /// Worker `w`'s slot.
    #[inline]
    pub fn worker(&self, w: usize) -> &T {
        self.slots.get(w).unwrap_or(&self.spare)
    }

    /// Every worker's slot.
    pub fn all(&self) -> &[T] {
        &self.slots
    }
}

/// An upstream's counters, one slot per worker.
pub type UpstreamMetrics = PerWorker<UpstreamCounters>;
/// A backend's counters, one slot per worker.
pub type BackendMetrics = PerWorker<BackendCounters>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_histograms_bucket_by_upper_bound() {
        let c = Counter::default();
        c.inc();
        c.add(4);
        assert_eq!(c.get(), 5);
        let h = Histogram::default();
        h.record(Duration::from_micros(500)); // on the first bound: first bucket
        h.record(Duration::from_micros(501));
        h.record(Duration::from_secs(100)); // beyond the last bound
        let mut sum = HistogramSum::default();
        h.sum_into(&mut sum);
        assert_eq!(sum.counts[0], 1);
        assert_eq!(sum.counts[1], 1);
        assert_eq!(sum.counts[16], 1);
        assert_eq!(sum.count(), 3);
        assert!((sum.sum - 100.001001).abs() < 1e-6, "{}", sum.sum);
        assert_eq!(BOUNDS_NS.len(), LATENCY_BOUNDS.len());
        for (ns, s) in BOUNDS_NS.iter().zip(LATENCY_BOUNDS) {
            assert_eq!(*ns as f64 / 1e9, s);
        }
    }

    #[test]
    fn classes_and_out_of_range_workers() {
        assert_eq!(
            [100, 204, 301, 404, 503, 600].map(class),
            [0, 1, 2, 3, 4, 4]
        );
        let m = BackendMetrics::new(2);
        m.worker(1).requests[1].inc();
        m.worker(7).requests[1].inc();
        let total: u64 = m.all().iter().map(|s| s.requests[1].get()).sum();
        assert_eq!(total, 1, "an out-of-range worker counts nowhere");
        assert_eq!(std::mem::align_of::<BackendCounters>(), 128);
    }
}
