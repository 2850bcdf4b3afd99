//! What the admin listener shows: a [`Snapshot`] of the running ringway, built at scrape time.
//!
//! Owns the one place that reads the workers' counters ([`crate::metrics`]) and the plan in
//! force, and sums them into the admin module's plain snapshot types: per worker, per
//! upstream (by the plan's upstreams) and per backend (health from the board, ejections,
//! requests, idle connections from every worker's slot). It runs on the admin thread only.
//!
//! Invariants: it never blocks a worker (it reads atomics and takes the published plan's lock,
//! which workers take once per reload); counters are summed over every worker slot, so a
//! scrape is at most a request behind each worker.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::admin::{
    BackendSnapshot, HandshakeCount, Health, Histogram, ListenerSnapshot, Snapshot,
    UpstreamSnapshot, WorkerSnapshot,
};
use crate::metrics::{
    self, HistogramSum, LATENCY_BOUNDS, PROXY_HEADER_FAILURE_REASONS, TLS_FAILURE_REASONS,
    WorkerMetrics,
};
use crate::proxy::generation::Published;
use crate::runtime::Control;

use super::reload::ReloadCounts;

/// What the snapshot is built from.
pub struct Sources {
    /// The version line (`ringway --version` without the name).
    pub version: String,
    /// When the process started.
    pub started: SystemTime,
    /// The plan in force.
    pub published: Arc<Published>,
    /// Each worker's counters.
    pub workers: Arc<[Arc<WorkerMetrics>]>,
    /// Reloads by result.
    pub reloads: Arc<ReloadCounts>,
    /// Whether the workers were told to stop.
    pub control: Control,
    /// Access-log lines dropped because the writer fell behind.
    pub log_dropped: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl Sources {
    /// The snapshot now.
    pub fn snapshot(&self) -> Snapshot {
        let plan = self.published.current().1;
        let now = metrics::nanos(Instant::now());
        let draining = self.control.is_stopping();
        let mut first_round_done = true;
        let upstreams = plan
            .upstreams
            .iter()
            .map(|spec| {
                let table = &plan.table;
                let board = table.board();
                let mut requests = [0u64; 5];
                let (mut no_backend, mut retries) = (0, 0);
                let (mut request_seconds, mut backend_seconds) =
                    (HistogramSum::default(), HistogramSum::default());
                for slot in spec.metrics.all() {
                    add(
                        &mut requests,
                        std::array::from_fn(|k| slot.requests[k].get()),
                    );
                    no_backend += slot.no_backend.get();
                    retries += slot.retries.get();
                    slot.request_seconds.sum_into(&mut request_seconds);
                    slot.backend_seconds.sum_into(&mut backend_seconds);
                }
                let backends = spec
                    .backends
                    .clone()
                    .map(|i| {
                        let b = table.backend(i);
                        let health = if !spec.checked {
                            Health::Unchecked
                        } else if board.is_up(i) {
                            Health::Up
                        } else {
                            Health::Down
                        };
                        let mut snap = BackendSnapshot::new(b.address, b.weight, b.backup, health);
                        if spec.checked && board.checks(i) == 0 {
                            first_round_done = false;
                        }
                        for slot in table.metrics(i).all() {
                            add(
                                &mut snap.requests,
                                std::array::from_fn(|k| slot.requests[k].get()),
                            );
                            snap.connect_failures += slot.connect_failures.get();
                            snap.ejections += slot.ejections.get();
                            snap.in_flight += slot.in_flight.get();
                            snap.idle_connections += slot.idle.get();
                            snap.ejected_by += u32::from(slot.ejected_until.get() > now);
                        }
                        snap
                    })
                    .collect();
                UpstreamSnapshot {
                    name: spec.name.clone(),
                    policy: spec.policy.to_string(),
                    requests,
                    no_backend,
                    retries,
                    request_seconds: histogram(&request_seconds),
                    backend_seconds: histogram(&backend_seconds),
                    backends,
                }
            })
            .collect();
        let mut tls_handshakes = Vec::new();
        let mut tls_failures: Vec<(String, u64)> = TLS_FAILURE_REASONS
            .iter()
            .map(|r| (r.to_string(), 0))
            .collect();
        let mut proxy_header_failures: Vec<(String, u64)> = PROXY_HEADER_FAILURE_REASONS
            .iter()
            .map(|r| (r.to_string(), 0))
            .collect();
        let (mut bytes_received, mut bytes_sent) = (0, 0);
        let mut workers = Vec::with_capacity(self.workers.len());
        for (index, w) in self.workers.iter().enumerate() {
            for (v, version) in ["TLSv1.2", "TLSv1.3"].into_iter().enumerate() {
                for resumed in [false, true] {
                    let count = w.tls_handshakes[v][usize::from(resumed)].get();
                    match tls_handshakes.iter_mut().find(|h: &&mut HandshakeCount| {
                        h.version == version && h.resumed == resumed
                    }) {
                        Some(h) => h.count += count,
                        None => tls_handshakes.push(HandshakeCount {
                            version: version.to_string(),
                            resumed,
                            count,
                        }),
                    }
                }
            }
            for (total, c) in tls_failures.iter_mut().zip(&w.tls_failures) {
                total.1 += c.get();
            }
            for (total, c) in proxy_header_failures
                .iter_mut()
                .zip(&w.proxy_header_failures)
            {
                total.1 += c.get();
            }
            bytes_received += w.bytes_received.get();
            bytes_sent += w.bytes_sent.get();
            let accepted = w.connections_accepted.get();
            let requests = w.requests.get();
            workers.push(WorkerSnapshot {
                index,
                connections_open: accepted.saturating_sub(w.connections_closed.get()),
                connections_accepted: accepted,
                requests_in_flight: requests.saturating_sub(w.requests_done.get()),
                requests,
                tunnels_open: (w.tunnels_opened.get()).saturating_sub(w.tunnels_closed.get()),
            });
        }
        Snapshot {
            version: self.version.clone(),
            started: self.started,
            ready: !draining && first_round_done,
            draining,
            workers,
            tls_handshakes,
            tls_failures,
            proxy_header_failures,
            bytes_received,
            bytes_sent,
            listeners: plan
                .listeners
                .iter()
                .map(|l| ListenerSnapshot {
                    address: l.address,
                    tls: true,
                })
                .collect(),
            upstreams,
            reloads_succeeded: self
                .reloads
                .succeeded
                .load(std::sync::atomic::Ordering::Relaxed),
            reloads_failed: self
                .reloads
                .failed
                .load(std::sync::atomic::Ordering::Relaxed),
            log_lines_dropped: (self.log_dropped)(),
        }
    }
}

fn add(total: &mut [u64; 5], more: [u64; 5]) {
    for (t, m) in total.iter_mut().zip(more) {
        *t += m;
    }
}

fn histogram(sum: &HistogramSum) -> Histogram {
    Histogram {
        bounds: LATENCY_BOUNDS.to_vec(),
        counts: sum.counts.to_vec(),
        sum: sum.sum,
        count: sum.count(),
    }
}
