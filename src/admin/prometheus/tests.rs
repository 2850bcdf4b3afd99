//! The exposition: exact text of a few families, escaping, histograms, and `promtool check
//! metrics` on a rich sample when promtool is installed.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::admin::sample::sample;
use crate::admin::snapshot::{BackendSnapshot, UpstreamSnapshot, WorkerSnapshot};

/// The lines of `text` that belong to family `name` (its HELP, TYPE and samples).
fn family(text: &str, name: &str) -> String {
    text.lines()
        .filter(|line| {
            let line = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line);
            line.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with([' ', '{'])
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| rest.starts_with(suffix))
            })
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn header_families_exactly() {
    let snapshot = Snapshot {
        version: "0.1.0 (2b5a641)".to_owned(),
        started: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
        ready: true,
        reloads_succeeded: 4,
        reloads_failed: 1,
        ..Snapshot::default()
    };
    let text = render(&snapshot, None);
    assert_eq!(
        family(&text, "ringway_build_info"),
        "# HELP ringway_build_info The running build: 1, its version in the label.\n\
         # TYPE ringway_build_info gauge\n\
         ringway_build_info{version=\"0.1.0 (2b5a641)\"} 1\n"
    );
    assert_eq!(
        family(&text, "ringway_start_time_seconds"),
        "# HELP ringway_start_time_seconds When ringway started, in seconds since the Unix epoch.\n\
         # TYPE ringway_start_time_seconds gauge\n\
         ringway_start_time_seconds 1700000000.25\n"
    );
    assert!(text.contains("\nringway_ready 1\n"), "{text}");
    assert!(text.contains("\nringway_draining 0\n"), "{text}");
    assert_eq!(
        family(&text, "ringway_reloads_total"),
        "# HELP ringway_reloads_total Configuration reloads, by result.\n\
         # TYPE ringway_reloads_total counter\n\
         ringway_reloads_total{result=\"success\"} 4\n\
         ringway_reloads_total{result=\"failure\"} 1\n"
    );
    // No worker, upstream or backend: their families are left out altogether.
    for name in [
        "ringway_worker_requests_total",
        "ringway_upstream_requests_total",
        "ringway_backend_up",
        "ringway_tls_handshakes_total",
        "process_open_fds",
    ] {
        assert_eq!(family(&text, name), "", "{name}");
    }
}

#[test]
fn worker_and_backend_families_exactly() {
    let snapshot = Snapshot {
        workers: vec![
            WorkerSnapshot {
                index: 0,
                connections_open: 3,
                connections_accepted: 10,
                requests_in_flight: 1,
                requests: 99,
                tunnels_open: 1,
            },
            WorkerSnapshot {
                index: 1,
                requests: 7,
                ..WorkerSnapshot::default()
            },
        ],
        upstreams: vec![UpstreamSnapshot {
            name: "app".to_owned(),
            requests: [0, 5, 0, 1, 2],
            backends: vec![BackendSnapshot {
                address: "10.0.0.1:8080".parse().expect("address"),
                weight: 1,
                backup: false,
                health: Health::Down,
                ejected_by: 2,
                ejections: 3,
                in_flight: 0,
                requests: [0, 4, 0, 1, 2],
                connect_failures: 6,
                idle_connections: 0,
            }],
            ..UpstreamSnapshot::default()
        }],
        ..Snapshot::default()
    };
    let text = render(&snapshot, None);
    assert_eq!(
        family(&text, "ringway_worker_tunnels_open"),
        "# HELP ringway_worker_tunnels_open Tunnels (WebSocket and other upgraded connections) open, per worker.\n\
         # TYPE ringway_worker_tunnels_open gauge\n\
         ringway_worker_tunnels_open{worker=\"0\"} 1\n\
         ringway_worker_tunnels_open{worker=\"1\"} 0\n"
    );
    assert_eq!(
        family(&text, "ringway_worker_requests_total"),
        "# HELP ringway_worker_requests_total Requests served, per worker.\n\
         # TYPE ringway_worker_requests_total counter\n\
         ringway_worker_requests_total{worker=\"0\"} 99\n\
         ringway_worker_requests_total{worker=\"1\"} 7\n"
    );
    assert_eq!(
        family(&text, "ringway_upstream_requests_total"),
        "# HELP ringway_upstream_requests_total Responses to requests routed to the upstream, by status class.\n\
         # TYPE ringway_upstream_requests_total counter\n\
         ringway_upstream_requests_total{upstream=\"app\",class=\"1xx\"} 0\n\
         ringway_upstream_requests_total{upstream=\"app\",class=\"2xx\"} 5\n\
         ringway_upstream_requests_total{upstream=\"app\",class=\"3xx\"} 0\n\
         ringway_upstream_requests_total{upstream=\"app\",class=\"4xx\"} 1\n\
         ringway_upstream_requests_total{upstream=\"app\",class=\"5xx\"} 2\n"
    );
    assert_eq!(
        family(&text, "ringway_backend_up"),
        "# HELP ringway_backend_up 1 when the backend takes requests as far as health checks go (up or unchecked), 0 when down.\n\
         # TYPE ringway_backend_up gauge\n\
         ringway_backend_up{upstream=\"app\",backend=\"10.0.0.1:8080\"} 0\n"
    );
    assert_eq!(
        family(&text, "ringway_backend_health"),
        "# HELP ringway_backend_health 1 for the backend's current health state (up, down, unchecked), 0 for the others.\n\
         # TYPE ringway_backend_health gauge\n\
         ringway_backend_health{upstream=\"app\",backend=\"10.0.0.1:8080\",state=\"up\"} 0\n\
         ringway_backend_health{upstream=\"app\",backend=\"10.0.0.1:8080\",state=\"down\"} 1\n\
         ringway_backend_health{upstream=\"app\",backend=\"10.0.0.1:8080\",state=\"unchecked\"} 0\n"
    );
    assert!(
        text.contains(
            "\nringway_backend_ejected_workers{upstream=\"app\",backend=\"10.0.0.1:8080\"} 2\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "\nringway_backend_connect_failures_total{upstream=\"app\",backend=\"10.0.0.1:8080\"} 6\n"
    ));
}

#[test]
fn histograms_are_cumulative_with_inf_sum_and_count() {
    let mut histogram = Histogram::new(&[0.005, 0.5, 2.5]);
    for seconds in [0.001, 0.002, 0.3, 1.0, 9.0] {
        histogram.observe(seconds);
    }
    histogram.sum = 10.25; // exactly, whatever the rounding of the sum above
    let snapshot = Snapshot {
        upstreams: vec![UpstreamSnapshot {
            name: "app".to_owned(),
            request_seconds: histogram,
            ..UpstreamSnapshot::default()
        }],
        ..Snapshot::default()
    };
    let text = render(&snapshot, None);
    assert_eq!(
        family(&text, "ringway_upstream_request_duration_seconds"),
        "# HELP ringway_upstream_request_duration_seconds Whole requests as the client sees them, from the first byte to the end of the response.\n\
         # TYPE ringway_upstream_request_duration_seconds histogram\n\
         ringway_upstream_request_duration_seconds_bucket{upstream=\"app\",le=\"0.005\"} 2\n\
         ringway_upstream_request_duration_seconds_bucket{upstream=\"app\",le=\"0.5\"} 3\n\
         ringway_upstream_request_duration_seconds_bucket{upstream=\"app\",le=\"2.5\"} 4\n\
         ringway_upstream_request_duration_seconds_bucket{upstream=\"app\",le=\"+Inf\"} 5\n\
         ringway_upstream_request_duration_seconds_sum{upstream=\"app\"} 10.25\n\
         ringway_upstream_request_duration_seconds_count{upstream=\"app\"} 5\n"
    );
    // The default histogram (one +Inf bucket) of the backend side.
    assert_eq!(
        family(&text, "ringway_upstream_backend_response_seconds")
            .lines()
            .skip(2)
            .collect::<Vec<_>>(),
        [
            "ringway_upstream_backend_response_seconds_bucket{upstream=\"app\",le=\"+Inf\"} 0",
            "ringway_upstream_backend_response_seconds_sum{upstream=\"app\"} 0",
            "ringway_upstream_backend_response_seconds_count{upstream=\"app\"} 0",
        ]
    );
}

#[test]
fn label_values_and_floats_are_escaped() {
    let snapshot = Snapshot {
        version: "a\"b\\c\nd".to_owned(),
        tls_failures: vec![("x\"y".to_owned(), 2)],
        ..Snapshot::default()
    };
    let text = render(&snapshot, None);
    assert!(
        text.contains("\nringway_build_info{version=\"a\\\"b\\\\c\\nd\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("\nringway_tls_handshake_failures_total{reason=\"x\\\"y\"} 2\n"));
    assert_eq!(float(f64::NAN), "NaN");
    assert_eq!(float(f64::INFINITY), "+Inf");
    assert_eq!(float(f64::NEG_INFINITY), "-Inf");
    assert_eq!(float(0.0005), "0.0005");
    assert_eq!(float(60.0), "60");
    assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
}

#[test]
fn process_metrics_exactly_and_from_proc() {
    let process = ProcessStats {
        cpu_seconds: Some(1.5),
        resident_memory_bytes: Some(4096),
        virtual_memory_bytes: Some(8192),
        open_fds: Some(12),
        max_fds: None,
        start_time_seconds: Some(1_700_000_000.5),
        threads: Some(5),
    };
    let text = render(&Snapshot::default(), Some(&process));
    assert_eq!(
        family(&text, "process_cpu_seconds_total"),
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
         # TYPE process_cpu_seconds_total counter\n\
         process_cpu_seconds_total 1.5\n"
    );
    assert!(text.contains("\nprocess_open_fds 12\n"));
    assert!(text.contains("\nprocess_threads 5\n"));
    assert_eq!(family(&text, "process_max_fds"), "", "unknown: left out");

    // This test process, read from /proc.
    let now = seconds_since_epoch(std::time::SystemTime::now());
    let read = ProcessStats::read();
    assert!(read.cpu_seconds.is_some_and(|cpu| cpu >= 0.0), "{read:?}");
    assert!(
        read.resident_memory_bytes.is_some_and(|rss| rss > 0),
        "{read:?}"
    );
    assert!(
        read.virtual_memory_bytes.is_some_and(|vm| vm > 0),
        "{read:?}"
    );
    assert!(read.open_fds.is_some_and(|fds| fds >= 3), "{read:?}");
    assert!(read.threads.is_some_and(|threads| threads >= 1), "{read:?}");
    assert!(
        read.start_time_seconds
            .is_some_and(|start| start <= now + 1.0 && start > now - 86_400.0 * 365.0),
        "{read:?}"
    );
}

#[test]
fn proc_files_parse() {
    // A command name with spaces and a parenthesis.
    let stat = "4242 (ring way) w) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 \
                12345 104857600 2560 18446744073709551615";
    let stats = parse_stat(stat, Some(100.0), Some(4096), Some(1_700_000_000)).expect("parses");
    assert_eq!(stats.cpu_seconds, Some(3.0));
    assert_eq!(stats.threads, Some(7));
    assert!(
        stats
            .start_time_seconds
            .is_some_and(|start| (start - 1_700_000_123.45).abs() < 1e-3),
        "{stats:?}"
    );
    assert_eq!(stats.virtual_memory_bytes, Some(104_857_600));
    assert_eq!(stats.resident_memory_bytes, Some(2560 * 4096));
    assert_eq!(parse_stat("no parenthesis", None, None, None), None);
    let short = parse_stat("1 (x) S 1", Some(100.0), Some(4096), Some(1)).expect("parses");
    assert_eq!(short, ProcessStats::default());

    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max cpu time              unlimited            unlimited            seconds   \n\
                  Max open files            1024                 524288               files     \n";
    assert_eq!(parse_max_fds(limits), Some(1024));
    assert_eq!(
        parse_max_fds("Max open files            unlimited            unlimited            files"),
        None
    );
    assert_eq!(
        parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
        Some(1_700_000_000)
    );
    assert_eq!(parse_boot_time("cpu 1\n"), None);
}

#[test]
fn every_family_has_help_and_type_and_counters_end_in_total() {
    let text = render(&sample(), Some(&ProcessStats::read()));
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("name and type");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
            typed.push(name.to_owned());
        }
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().expect("a sample has a name");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| typed.iter().any(|t| t == base))
            })
            .unwrap_or(name);
        assert!(typed.iter().any(|t| t == family), "no TYPE for {line}");
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {line}"
        );
    }
    let mut unique = typed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), typed.len(), "a family written twice");
    assert_eq!(typed.len(), 36, "{typed:?}");
}

/// `promtool check metrics` (from the `prometheus` package) on the sample with process
/// metrics: the format is valid and the lints (names, units, HELP) pass.
#[test]
fn promtool_checks_the_sample() {
    let text = render(&sample(), Some(&ProcessStats::read()));
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            println!("skipped: promtool not installed (apt-get install prometheus)");
            return;
        }
        Err(error) => panic!("promtool: {error}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\n{text}",
        output.status
    );
}
