//! A rich sample [`Snapshot`] for the tests (and the status page screenshot): two workers, two
//! listeners, two upstreams with backends in every health state, histograms with observations,
//! and strings that need escaping.

use std::time::{Duration, SystemTime};

use super::snapshot::{
    BackendSnapshot, HandshakeCount, Health, Histogram, ListenerSnapshot, Snapshot,
    UpstreamSnapshot, WorkerSnapshot,
};

/// A histogram over the latency bounds with `counts` in its first buckets.
fn latency(counts: &[u64], sum: f64) -> Histogram {
    let mut histogram = Histogram::latency();
    for (bucket, &count) in counts.iter().enumerate() {
        histogram.counts[bucket] = count;
    }
    histogram.count = counts.iter().sum();
    histogram.sum = sum;
    histogram
}

fn backend(address: &str, health: Health) -> BackendSnapshot {
    BackendSnapshot::new(address.parse().expect("sample address"), 1, false, health)
}

/// The sample: started 3 h 25 min 7 s before `now`.
pub(crate) fn sample_at(now: SystemTime) -> Snapshot {
    Snapshot {
        version: "0.1.0 (2b5a641)".to_owned(),
        started: now - Duration::from_secs(3 * 3600 + 25 * 60 + 7),
        ready: true,
        draining: false,
        workers: vec![
            WorkerSnapshot {
                index: 0,
                connections_open: 412,
                connections_accepted: 90_211,
                requests_in_flight: 17,
                requests: 1_204_332,
                tunnels_open: 5,
            },
            WorkerSnapshot {
                index: 1,
                connections_open: 398,
                connections_accepted: 89_870,
                requests_in_flight: 12,
                requests: 1_198_016,
                tunnels_open: 3,
            },
        ],
        tls_handshakes: vec![
            HandshakeCount {
                version: "TLSv1.3".to_owned(),
                resumed: false,
                count: 120_402,
            },
            HandshakeCount {
                version: "TLSv1.3".to_owned(),
                resumed: true,
                count: 58_977,
            },
            HandshakeCount {
                version: "TLSv1.2".to_owned(),
                resumed: false,
                count: 702,
            },
        ],
        tls_failures: vec![
            ("timeout".to_owned(), 31),
            ("alert".to_owned(), 12),
            ("eof".to_owned(), 240),
            // Escaped in labels, JSON and HTML.
            ("odd \"reason\" \\ <b>\nline".to_owned(), 1),
        ],
        proxy_header_failures: vec![
            ("untrusted".to_owned(), 2),
            ("invalid".to_owned(), 5),
            ("timeout".to_owned(), 1),
            ("closed".to_owned(), 0),
        ],
        bytes_received: 2_871_332_901,
        bytes_sent: 91_204_998_112,
        listeners: vec![
            ListenerSnapshot {
                address: "0.0.0.0:443".parse().expect("sample address"),
                tls: true,
            },
            ListenerSnapshot {
                address: "[::]:443".parse().expect("sample address"),
                tls: true,
            },
        ],
        upstreams: vec![
            UpstreamSnapshot {
                name: "app".to_owned(),
                policy: "least_connections".to_owned(),
                requests: [0, 2_301_118, 40_112, 12_003, 411],
                no_backend: 3,
                retries: 57,
                request_seconds: latency(
                    &[
                        120_000, 600_000, 900_000, 500_000, 200_000, 30_000, 3_000, 640, 3, 0, 1,
                    ],
                    9_800.5,
                ),
                backend_seconds: latency(
                    &[300_000, 900_000, 800_000, 300_000, 50_000, 3_000, 500, 144],
                    5_300.25,
                ),
                backends: vec![
                    BackendSnapshot {
                        weight: 3,
                        in_flight: 11,
                        requests: [0, 1_150_210, 20_001, 6_002, 201],
                        idle_connections: 48,
                        ..backend("10.0.0.11:8080", Health::Up)
                    },
                    BackendSnapshot {
                        weight: 3,
                        in_flight: 9,
                        ejected_by: 1,
                        ejections: 4,
                        requests: [0, 1_150_908, 20_111, 6_001, 199],
                        connect_failures: 2,
                        idle_connections: 41,
                        ..backend("10.0.0.12:8080", Health::Up)
                    },
                    BackendSnapshot {
                        weight: 1,
                        ejections: 2,
                        requests: [0, 0, 0, 0, 11],
                        connect_failures: 305,
                        ..backend("10.0.0.13:8080", Health::Down)
                    },
                    BackendSnapshot {
                        backup: true,
                        ..backend("10.0.1.10:8080", Health::Up)
                    },
                ],
            },
            UpstreamSnapshot {
                name: "static".to_owned(),
                policy: "round_robin".to_owned(),
                requests: [0, 50_920, 801, 77, 0],
                no_backend: 0,
                retries: 0,
                request_seconds: latency(&[40_000, 10_000, 1_500, 298], 21.5),
                backend_seconds: latency(&[45_000, 7_000, 619], 12.0),
                backends: vec![
                    BackendSnapshot {
                        in_flight: 1,
                        requests: [0, 25_460, 400, 40, 0],
                        idle_connections: 6,
                        ..backend("[fd00::21]:8000", Health::Unchecked)
                    },
                    BackendSnapshot {
                        requests: [0, 25_460, 401, 37, 0],
                        idle_connections: 5,
                        ..backend("[fd00::22]:8000", Health::Unchecked)
                    },
                ],
            },
        ],
        reloads_succeeded: 4,
        reloads_failed: 1,
        log_lines_dropped: 0,
    }
}

/// [`sample_at`] now.
pub(crate) fn sample() -> Snapshot {
    sample_at(SystemTime::now())
}

/// The sample, `elapsed` into a steady load: counters and histograms grow at fixed rates, so
/// that the status page shows rates (about 900 requests per second on `app`, 1% 5xx on the
/// backend that is down, 20 per second on `static`).
pub(crate) fn sample_after(now: SystemTime, elapsed: Duration) -> Snapshot {
    let t = elapsed.as_secs_f64();
    let grow = |per_second: f64| (per_second * t) as u64;
    let mut s = sample_at(now);
    s.started -= elapsed;
    for (i, w) in s.workers.iter_mut().enumerate() {
        w.requests += grow(460.0 + 10.0 * i as f64);
        w.connections_accepted += grow(30.0);
    }
    s.tls_handshakes[0].count += grow(25.0);
    s.tls_handshakes[1].count += grow(35.0);
    s.tls_failures[2].1 += grow(0.5);
    s.bytes_received += grow(1.2e6);
    s.bytes_sent += grow(38.0e6);
    let app = &mut s.upstreams[0];
    app.requests[1] += grow(880.0);
    app.requests[3] += grow(12.0);
    app.requests[4] += grow(0.6);
    for (bucket, per_second) in [(1, 300.0), (2, 450.0), (3, 120.0), (4, 20.0), (6, 2.0)] {
        app.request_seconds.counts[bucket] += grow(per_second);
        app.backend_seconds.counts[bucket.saturating_sub(1)] += grow(per_second);
    }
    app.request_seconds.count = app.request_seconds.total();
    app.backend_seconds.count = app.backend_seconds.total();
    for (i, b) in app.backends.iter_mut().take(2).enumerate() {
        b.requests[1] += grow(440.0 + 5.0 * i as f64);
        b.requests[3] += grow(6.0);
    }
    app.backends[2].requests[4] += grow(0.6);
    app.backends[2].connect_failures += grow(1.0);
    let web = &mut s.upstreams[1];
    web.requests[1] += grow(20.0);
    web.request_seconds.counts[0] += grow(20.0);
    web.backend_seconds.counts[0] += grow(20.0);
    web.request_seconds.count = web.request_seconds.total();
    web.backend_seconds.count = web.backend_seconds.total();
    for b in &mut web.backends {
        b.requests[1] += grow(10.0);
    }
    s
}
