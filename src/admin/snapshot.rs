//! What the admin server shows: plain data, filled by the caller at scrape time.
//!
//! This module owns the snapshot types ([`Snapshot`] and its parts) and the latency histogram
//! ([`Histogram`], [`LATENCY_BOUNDS`]). Nothing here reads a counter: whoever spawns the admin
//! server hands it a function that builds a fresh [`Snapshot`] from the data path's counters
//! for each request that needs one (`/metrics`, `/status`, `/readyz`, `/`).
//!
//! Invariants the renderers rely on (and tolerate when broken: they never panic):
//! - counters (`requests`, `*_total` families) only grow while the process runs;
//! - a histogram's `bounds` are finite and ascending, and `counts.len() == bounds.len() + 1`
//!   (the last bucket is `+Inf`); `count == counts.iter().sum()`. The renderers use the sum of
//!   the buckets, so a snapshot read while requests finish stays consistent;
//! - `requests: [u64; 5]` are by status class, `1xx` at index 0 to `5xx` at index 4.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// Upper bounds (seconds) of the latency histograms: the data path's fixed buckets
/// ([`crate::metrics`]); the `+Inf` bucket comes after the last.
#[cfg(test)]
pub use crate::metrics::LATENCY_BOUNDS;

/// The whole process at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The build: `"0.1.0 (2b5a641)"`.
    pub version: String,
    /// When the process started.
    #[serde(serialize_with = "unix_seconds")]
    pub started: SystemTime,
    /// Taking traffic: false while draining or before the first round of health checks.
    pub ready: bool,
    /// Stopping: in-flight requests finish, nothing new is accepted.
    pub draining: bool,
    pub workers: Vec<WorkerSnapshot>,
    /// Completed TLS handshakes by protocol version and whether the session was resumed.
    pub tls_handshakes: Vec<HandshakeCount>,
    /// Failed TLS handshakes by reason (`"timeout"`, `"alert"`, `"protocol"`, `"eof"`, ...).
    #[serde(serialize_with = "reason_counts")]
    pub tls_failures: Vec<(String, u64)>,
    /// Connections closed before TLS for their PROXY header, by reason (`"untrusted"`,
    /// `"invalid"`, `"timeout"`, `"closed"`).
    #[serde(serialize_with = "reason_counts")]
    pub proxy_header_failures: Vec<(String, u64)>,
    /// Bytes read from clients (TLS records included).
    pub bytes_received: u64,
    /// Bytes written to clients.
    pub bytes_sent: u64,
    pub listeners: Vec<ListenerSnapshot>,
    pub upstreams: Vec<UpstreamSnapshot>,
    pub reloads_succeeded: u64,
    pub reloads_failed: u64,
    /// Access log lines dropped because the log writer fell behind.
    pub log_lines_dropped: u64,
}

/// One worker thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerSnapshot {
    /// The worker's number (`ringway-w<index>`).
    pub index: usize,
    pub connections_open: u64,
    pub connections_accepted: u64,
    pub requests_in_flight: u64,
    pub requests: u64,
    /// Tunnels (WebSocket, after a 101) open now; they are requests in flight too.
    pub tunnels_open: u64,
}

/// Completed handshakes of one TLS version, resumed or not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HandshakeCount {
    /// `"TLSv1.3"`, `"TLSv1.2"`.
    pub version: String,
    pub resumed: bool,
    pub count: u64,
}

/// One listening address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerSnapshot {
    pub address: SocketAddr,
    pub tls: bool,
}

/// One upstream: its totals, latencies and backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpstreamSnapshot {
    pub name: String,
    /// The balancing policy's name (`"round_robin"`).
    pub policy: String,
    /// Responses by status class, `1xx` at index 0 to `5xx` at index 4 (answers ringway made
    /// itself for the upstream, such as 502 and 504, included).
    pub requests: [u64; 5],
    /// Requests answered 503 because no backend could take them.
    pub no_backend: u64,
    /// Requests sent to a second backend.
    pub retries: u64,
    /// The whole request as the client sees it, from its first byte to the end of the response.
    pub request_seconds: Histogram,
    /// From the request sent to a backend to its response head.
    pub backend_seconds: Histogram,
    pub backends: Vec<BackendSnapshot>,
}

/// One backend of an upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendSnapshot {
    pub address: SocketAddr,
    pub weight: u32,
    pub backup: bool,
    /// What the active health checks say.
    pub health: Health,
    /// Workers that have it passively ejected now.
    pub ejected_by: u32,
    /// Passive ejections since the start, all workers together.
    pub ejections: u64,
    pub in_flight: u64,
    /// Responses by status class, `1xx` at index 0 to `5xx` at index 4.
    pub requests: [u64; 5],
    pub connect_failures: u64,
    /// Idle kept-alive connections to it, all workers together.
    pub idle_connections: u64,
}

impl BackendSnapshot {
    /// A backend with these settings and health, every count at zero (the caller adds them).
    pub fn new(address: SocketAddr, weight: u32, backup: bool, health: Health) -> Self {
        Self {
            address,
            weight,
            backup,
            health,
            ejected_by: 0,
            ejections: 0,
            in_flight: 0,
            requests: [0; 5],
            connect_failures: 0,
            idle_connections: 0,
        }
    }
}

/// What the active health checks say of a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
    /// No active checks, or none has concluded yet: the backend takes requests.
    #[default]
    Unchecked,
}

impl Health {
    /// `"up"`, `"down"`, `"unchecked"`: the label value, the JSON value and the page's word.
    pub fn name(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
            Health::Unchecked => "unchecked",
        }
    }

    /// Every state, in the order the metrics list them.
    pub const ALL: [Health; 3] = [Health::Up, Health::Down, Health::Unchecked];
}

/// A latency histogram with fixed buckets (seconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending, without `+Inf`.
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative); `bounds.len() + 1` of them, the last `+Inf`.
    pub counts: Vec<u64>,
    /// Sum of the observations, in seconds.
    pub sum: f64,
    /// Number of observations: the sum of `counts`.
    pub count: u64,
}

/// One `+Inf` bucket and nothing in it.
impl Default for Histogram {
    fn default() -> Self {
        Self::new(&[])
    }
}

/// Nothing filled in, started at the Unix epoch.
impl Default for Snapshot {
    fn default() -> Self {
        Self {
            version: String::new(),
            started: UNIX_EPOCH,
            ready: false,
            draining: false,
            workers: Vec::new(),
            tls_handshakes: Vec::new(),
            tls_failures: Vec::new(),
            proxy_header_failures: Vec::new(),
            bytes_received: 0,
            bytes_sent: 0,
            listeners: Vec::new(),
            upstreams: Vec::new(),
            reloads_succeeded: 0,
            reloads_failed: 0,
            log_lines_dropped: 0,
        }
    }
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending, finite, without `+Inf`).
    pub fn new(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// An empty histogram over [`LATENCY_BOUNDS`].
    #[cfg(test)]
    pub fn latency() -> Self {
        Self::new(&LATENCY_BOUNDS)
    }

    /// Counts one observation of `seconds` in the first bucket whose bound is at least it.
    #[cfg(test)]
    pub fn observe(&mut self, seconds: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(self.bounds.len());
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    /// The observations in all buckets (what the renderers use as the count).
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |sum, &n| sum.saturating_add(n))
    }

    /// The `q`-quantile (`0.5` for the median) estimated the way Prometheus'
    /// `histogram_quantile` does: linear within the bucket that holds it, from its lower bound
    /// (0 for the first) to its upper bound; in the `+Inf` bucket, the highest finite bound.
    /// `None` without observations, for `q` outside `0..=1`, or when only the `+Inf` bucket
    /// (no bound at all) holds it.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0u64;
        for (bucket, &count) in self.counts.iter().enumerate() {
            let cumulative = below.saturating_add(count);
            if count > 0 && cumulative as f64 >= rank {
                let Some(&upper) = self.bounds.get(bucket) else {
                    return self.bounds.last().copied();
                };
                let lower = match bucket {
                    0 => 0.0f64.min(upper),
                    _ => self.bounds[bucket - 1],
                };
                let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
                return Some(lower + (upper - lower) * within);
            }
            below = cumulative;
        }
        self.bounds.last().copied()
    }
}

/// Seconds since the Unix epoch (negative before it), as a float.
pub(super) fn seconds_since_epoch(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

fn unix_seconds<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(seconds_since_epoch(*time))
}

/// `[("timeout", 3)]` as `[{"reason": "timeout", "count": 3}]`.
fn reason_counts<S: Serializer>(
    counts: &[(String, u64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct ReasonCount<'a> {
        reason: &'a str,
        count: u64,
    }
    serializer.collect_seq(counts.iter().map(|(reason, count)| ReasonCount {
        reason,
        count: *count,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(bounds: &[f64], counts: &[u64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            counts: counts.to_vec(),
            sum: 0.0,
            count: counts.iter().sum(),
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn latency_bounds_are_ascending_from_half_a_millisecond_to_a_minute() {
        assert_eq!(LATENCY_BOUNDS[0], 0.0005);
        assert_eq!(LATENCY_BOUNDS[LATENCY_BOUNDS.len() - 1], 60.0);
        assert!(LATENCY_BOUNDS.windows(2).all(|w| w[0] < w[1]));
        let h = Histogram::latency();
        assert_eq!(h.counts.len(), LATENCY_BOUNDS.len() + 1);
    }

    #[test]
    fn observe_counts_in_the_first_bucket_at_least_the_value() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for seconds in [0.05, 0.1, 0.5, 1.0, 7.0] {
            h.observe(seconds);
        }
        assert_eq!(h.counts, vec![2, 2, 1]);
        assert_eq!(h.count, 5);
        assert!((h.sum - 8.65).abs() < 1e-9);
        // A histogram whose counts are too short grows instead of panicking.
        let mut short = Histogram {
            counts: Vec::new(),
            ..Histogram::new(&[1.0])
        };
        short.observe(2.0);
        assert_eq!(short.counts, vec![0, 1]);
    }

    #[test]
    fn quantile_is_linear_within_the_bucket() {
        // 10 in (0, 0.1], 10 in (0.1, 1]: the median is the first bucket's top, p75 halfway
        // up the second.
        let h = histogram(&[0.1, 1.0], &[10, 10, 0]);
        assert!(close(h.quantile(0.5), 0.1));
        assert!(close(h.quantile(0.75), 0.55));
        assert!(close(h.quantile(1.0), 1.0));
        assert!(close(h.quantile(0.25), 0.05));
        // q = 0: the lower edge of the first bucket with anything in it.
        let h = histogram(&[0.1, 1.0], &[0, 4, 0]);
        assert!(close(h.quantile(0.0), 0.1));
        assert!(close(h.quantile(0.5), 0.55));
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_highest_bound() {
        let h = histogram(&[0.1, 1.0], &[1, 0, 9]);
        assert!(close(h.quantile(0.99), 1.0));
        assert!(close(h.quantile(0.05), 0.05));
        // No finite bound at all: nothing to say.
        assert_eq!(histogram(&[], &[5]).quantile(0.5), None);
    }

    #[test]
    fn quantile_refuses_what_it_cannot_answer() {
        assert_eq!(Histogram::latency().quantile(0.5), None);
        let h = histogram(&[0.1], &[1, 0]);
        assert_eq!(h.quantile(-0.1), None);
        assert_eq!(h.quantile(1.5), None);
        assert_eq!(h.quantile(f64::NAN), None);
        // Counts shorter or longer than the bounds: no panic.
        assert!(close(histogram(&[0.1, 1.0], &[2]).quantile(0.5), 0.05));
        assert!(close(histogram(&[0.1], &[0, 0, 3]).quantile(0.5), 0.1));
    }

    #[test]
    fn health_names() {
        let names: Vec<&str> = Health::ALL.iter().map(|h| h.name()).collect();
        assert_eq!(names, ["up", "down", "unchecked"]);
        assert_eq!(Health::default(), Health::Unchecked);
    }
}
