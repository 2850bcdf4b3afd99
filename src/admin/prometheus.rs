//! `/metrics`: a [`Snapshot`] in the Prometheus text format 0.0.4, and the standard process
//! metrics read from `/proc/self`.
//!
//! This module owns the metric names, their help texts and types, and the exposition's syntax:
//! every family has `# HELP` and `# TYPE` lines (a family without samples is left out), label
//! values and help texts are escaped, counters end in `_total`, histograms are cumulative
//! `_bucket{le=...}` lines ending with `le="+Inf"`, then `_sum` and `_count` (the `+Inf`
//! bucket). [`render`] is a pure function of its arguments; [`ProcessStats::read`] is the only
//! I/O here (it reads `/proc`, and leaves out what it cannot read).

use std::fmt::Write as _;
use std::fs;

use super::snapshot::{
    BackendSnapshot, Health, Histogram, Snapshot, WorkerSnapshot, seconds_since_epoch,
};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The status classes, as label values, in the order of the `requests` arrays.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The process metrics (`process_*`), each `None` when `/proc` could not tell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time.
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    /// The soft limit; `None` when unlimited.
    pub max_fds: Option<u64>,
    /// Seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    pub threads: Option<u64>,
}

impl ProcessStats {
    /// Reads `/proc/self/stat`, `/proc/self/limits`, `/proc/self/fd` and `/proc/stat` (boot
    /// time). What cannot be read or parsed is `None`.
    pub fn read() -> ProcessStats {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|&t| t > 0)
            .map(|t| t as f64);
        let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok());
        let boot_time = fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| parse_boot_time(&text));
        let mut stats = fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| parse_stat(&text, ticks, page_size, boot_time))
            .unwrap_or_default();
        stats.max_fds = fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| parse_max_fds(&text));
        stats.open_fds = fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        stats
    }
}

/// The fields of `/proc/self/stat` (after the command name, which may hold spaces and
/// parentheses): CPU time, threads, start time, virtual and resident memory.
fn parse_stat(
    text: &str,
    ticks_per_second: Option<f64>,
    page_size: Option<u64>,
    boot_time: Option<u64>,
) -> Option<ProcessStats> {
    let after_name = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name: field n is at index n - 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let cpu_seconds = match (field(14), field(15), ticks_per_second) {
        (Some(user), Some(system), Some(ticks)) => Some((user + system) as f64 / ticks),
        _ => None,
    };
    let start_time_seconds = match (field(22), ticks_per_second, boot_time) {
        (Some(start), Some(ticks), Some(boot)) => Some(boot as f64 + start as f64 / ticks),
        _ => None,
    };
    Some(ProcessStats {
        cpu_seconds,
        resident_memory_bytes: field(24)
            .zip(page_size)
            .map(|(pages, size)| pages.saturating_mul(size)),
        virtual_memory_bytes: field(23),
        start_time_seconds,
        threads: field(20),
        ..ProcessStats::default()
    })
}

/// `btime` of `/proc/stat`: the boot time in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The exposition being written.
struct Exposition {
    text: String,
}

impl Exposition {
    /// A family with its samples (lines from [`sample`]); nothing when there is none.
    fn family(&mut self, name: &str, kind: Kind, help: &str, samples: Vec<String>) {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.name());
        for line in samples {
            self.text.push_str(&line);
        }
    }

    /// One histogram family: a histogram per label set.
    fn histograms<'a>(
        &mut self,
        name: &str,
        help: &str,
        histograms: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, &'a Histogram)>,
    ) {
        let mut lines = Vec::new();
        for (labels, histogram) in histograms {
            let mut cumulative = 0u64;
            for (bucket, bound) in histogram.bounds.iter().enumerate() {
                cumulative =
                    cumulative.saturating_add(histogram.counts.get(bucket).copied().unwrap_or(0));
                let le = float(*bound);
                let mut with_le = labels.clone();
                with_le.push(("le", &le));
                lines.push(sample(&format!("{name}_bucket"), &with_le, cumulative));
            }
            let total = histogram.total();
            let mut with_le = labels.clone();
            with_le.push(("le", "+Inf"));
            lines.push(sample(&format!("{name}_bucket"), &with_le, total));
            lines.push(sample(
                &format!("{name}_sum"),
                &labels,
                float(histogram.sum),
            ));
            lines.push(sample(&format!("{name}_count"), &labels, total));
        }
        self.family(name, Kind::Histogram, help, lines);
    }
}

/// One sample line: `name{label="value",...} value\n`.
fn sample(name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) -> String {
    let mut line = String::with_capacity(64);
    line.push_str(name);
    if !labels.is_empty() {
        line.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let _ = write!(line, "{label}=\"{}\"", escape_label(value));
        }
        line.push('}');
    }
    let _ = writeln!(line, " {value}");
    line
}

/// A float as the format reads it: `+Inf`, `-Inf`, `NaN`, or decimal digits.
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

/// A label value: `\`, `"` and line feeds escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A help text: `\` and line feeds escaped.
fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

fn bool_value(value: bool) -> u8 {
    u8::from(value)
}

/// The exposition of `snapshot`, then of `process` when given.
pub fn render(snapshot: &Snapshot, process: Option<&ProcessStats>) -> String {
    let mut out = Exposition {
        text: String::with_capacity(16 * 1024),
    };
    let s = snapshot;

    out.family(
        "ringway_build_info",
        Kind::Gauge,
        "The running build: 1, its version in the label.",
        vec![sample("ringway_build_info", &[("version", &s.version)], 1)],
    );
    out.family(
        "ringway_start_time_seconds",
        Kind::Gauge,
        "When ringway started, in seconds since the Unix epoch.",
        vec![sample(
            "ringway_start_time_seconds",
            &[],
            float(seconds_since_epoch(s.started)),
        )],
    );
    out.family(
        "ringway_ready",
        Kind::Gauge,
        "1 while ringway takes traffic, 0 while draining or before the first health checks.",
        vec![sample("ringway_ready", &[], bool_value(s.ready))],
    );
    out.family(
        "ringway_draining",
        Kind::Gauge,
        "1 while ringway drains before it stops.",
        vec![sample("ringway_draining", &[], bool_value(s.draining))],
    );

    let workers: Vec<(String, &WorkerSnapshot)> =
        s.workers.iter().map(|w| (w.index.to_string(), w)).collect();
    type WorkerField = fn(&WorkerSnapshot) -> u64;
    let worker_families: [(&str, Kind, &str, WorkerField); 5] = [
        (
            "ringway_worker_connections_open",
            Kind::Gauge,
            "Client connections open, per worker.",
            |w| w.connections_open,
        ),
        (
            "ringway_worker_connections_accepted_total",
            Kind::Counter,
            "Client connections accepted, per worker.",
            |w| w.connections_accepted,
        ),
        (
            "ringway_worker_requests_in_flight",
            Kind::Gauge,
            "Requests being served, per worker.",
            |w| w.requests_in_flight,
        ),
        (
            "ringway_worker_requests_total",
            Kind::Counter,
            "Requests served, per worker.",
            |w| w.requests,
        ),
        (
            "ringway_worker_tunnels_open",
            Kind::Gauge,
            "Tunnels (WebSocket and other upgraded connections) open, per worker.",
            |w| w.tunnels_open,
        ),
    ];
    for (name, kind, help, value) in worker_families {
        let lines = workers
            .iter()
            .map(|(index, w)| sample(name, &[("worker", index)], value(w)))
            .collect();
        out.family(name, kind, help, lines);
    }

    out.family(
        "ringway_tls_handshakes_total",
        Kind::Counter,
        "Completed TLS handshakes, by protocol version and whether the session was resumed.",
        s.tls_handshakes
            .iter()
            .map(|h| {
                let resumed = if h.resumed { "true" } else { "false" };
                sample(
                    "ringway_tls_handshakes_total",
                    &[("version", &h.version), ("resumed", resumed)],
                    h.count,
                )
            })
            .collect(),
    );
    out.family(
        "ringway_tls_handshake_failures_total",
        Kind::Counter,
        "Failed TLS handshakes, by reason.",
        s.tls_failures
            .iter()
            .map(|(reason, count)| {
                sample(
                    "ringway_tls_handshake_failures_total",
                    &[("reason", reason)],
                    count,
                )
            })
            .collect(),
    );
    out.family(
        "ringway_proxy_header_failures_total",
        Kind::Counter,
        "Connections closed before TLS for their PROXY header, by reason.",
        s.proxy_header_failures
            .iter()
            .map(|(reason, count)| {
                sample(
                    "ringway_proxy_header_failures_total",
                    &[("reason", reason)],
                    count,
                )
            })
            .collect(),
    );
    out.family(
        "ringway_client_bytes_received_total",
        Kind::Counter,
        "Bytes received from clients.",
        vec![sample(
            "ringway_client_bytes_received_total",
            &[],
            s.bytes_received,
        )],
    );
    out.family(
        "ringway_client_bytes_sent_total",
        Kind::Counter,
        "Bytes sent to clients.",
        vec![sample("ringway_client_bytes_sent_total", &[], s.bytes_sent)],
    );

    let mut lines = Vec::new();
    for u in &s.upstreams {
        for (class, count) in CLASSES.iter().zip(u.requests) {
            lines.push(sample(
                "ringway_upstream_requests_total",
                &[("upstream", &u.name), ("class", class)],
                count,
            ));
        }
    }
    out.family(
        "ringway_upstream_requests_total",
        Kind::Counter,
        "Responses to requests routed to the upstream, by status class.",
        lines,
    );
    out.family(
        "ringway_upstream_no_backend_total",
        Kind::Counter,
        "Requests answered 503 because no backend of the upstream could take them.",
        s.upstreams
            .iter()
            .map(|u| {
                sample(
                    "ringway_upstream_no_backend_total",
                    &[("upstream", &u.name)],
                    u.no_backend,
                )
            })
            .collect(),
    );
    out.family(
        "ringway_upstream_retries_total",
        Kind::Counter,
        "Requests sent to a second backend of the upstream.",
        s.upstreams
            .iter()
            .map(|u| {
                sample(
                    "ringway_upstream_retries_total",
                    &[("upstream", &u.name)],
                    u.retries,
                )
            })
            .collect(),
    );
    out.histograms(
        "ringway_upstream_request_duration_seconds",
        "Whole requests as the client sees them, from the first byte to the end of the response.",
        s.upstreams
            .iter()
            .map(|u| (vec![("upstream", u.name.as_str())], &u.request_seconds)),
    );
    out.histograms(
        "ringway_upstream_backend_response_seconds",
        "From a request sent to a backend to its response head.",
        s.upstreams
            .iter()
            .map(|u| (vec![("upstream", u.name.as_str())], &u.backend_seconds)),
    );

    // Backends: the label sets first, then one family at a time.
    let backends: Vec<(&str, String, &BackendSnapshot)> = s
        .upstreams
        .iter()
        .flat_map(|u| {
            u.backends
                .iter()
                .map(|b| (u.name.as_str(), b.address.to_string(), b))
        })
        .collect();
    let per_backend = |name: &str, value: fn(&BackendSnapshot) -> u64| -> Vec<String> {
        backends
            .iter()
            .map(|(upstream, address, b)| {
                sample(
                    name,
                    &[("upstream", upstream), ("backend", address)],
                    value(b),
                )
            })
            .collect()
    };
    out.family(
        "ringway_backend_up",
        Kind::Gauge,
        "1 when the backend takes requests as far as health checks go (up or unchecked), 0 when down.",
        per_backend("ringway_backend_up", |b| {
            u64::from(b.health != Health::Down)
        }),
    );
    let mut lines = Vec::new();
    for (upstream, address, b) in &backends {
        for state in Health::ALL {
            lines.push(sample(
                "ringway_backend_health",
                &[
                    ("upstream", upstream),
                    ("backend", address),
                    ("state", state.name()),
                ],
                u64::from(b.health == state),
            ));
        }
    }
    out.family(
        "ringway_backend_health",
        Kind::Gauge,
        "1 for the backend's current health state (up, down, unchecked), 0 for the others.",
        lines,
    );
    out.family(
        "ringway_backend_ejected_workers",
        Kind::Gauge,
        "Workers that have the backend passively ejected now.",
        per_backend("ringway_backend_ejected_workers", |b| {
            u64::from(b.ejected_by)
        }),
    );
    out.family(
        "ringway_backend_ejections_total",
        Kind::Counter,
        "Passive ejections of the backend, all workers together.",
        per_backend("ringway_backend_ejections_total", |b| b.ejections),
    );
    out.family(
        "ringway_backend_in_flight",
        Kind::Gauge,
        "Requests in flight to the backend.",
        per_backend("ringway_backend_in_flight", |b| b.in_flight),
    );
    let mut lines = Vec::new();
    for (upstream, address, b) in &backends {
        for (class, count) in CLASSES.iter().zip(b.requests) {
            lines.push(sample(
                "ringway_backend_requests_total",
                &[
                    ("upstream", upstream),
                    ("backend", address),
                    ("class", class),
                ],
                count,
            ));
        }
    }
    out.family(
        "ringway_backend_requests_total",
        Kind::Counter,
        "Responses from the backend, by status class.",
        lines,
    );
    out.family(
        "ringway_backend_connect_failures_total",
        Kind::Counter,
        "Connections to the backend that could not be made.",
        per_backend("ringway_backend_connect_failures_total", |b| {
            b.connect_failures
        }),
    );
    out.family(
        "ringway_backend_idle_connections",
        Kind::Gauge,
        "Idle kept-alive connections to the backend, all workers together.",
        per_backend("ringway_backend_idle_connections", |b| b.idle_connections),
    );

    out.family(
        "ringway_reloads_total",
        Kind::Counter,
        "Configuration reloads, by result.",
        vec![
            sample(
                "ringway_reloads_total",
                &[("result", "success")],
                s.reloads_succeeded,
            ),
            sample(
                "ringway_reloads_total",
                &[("result", "failure")],
                s.reloads_failed,
            ),
        ],
    );
    out.family(
        "ringway_access_log_dropped_lines_total",
        Kind::Counter,
        "Access log lines dropped because the log writer fell behind.",
        vec![sample(
            "ringway_access_log_dropped_lines_total",
            &[],
            s.log_lines_dropped,
        )],
    );

    if let Some(p) = process {
        let one = |name: &str, value: Option<String>| -> Vec<String> {
            value.map(|v| sample(name, &[], v)).into_iter().collect()
        };
        let families: [(&str, Kind, &str, Option<String>); 7] = [
            (
                "process_cpu_seconds_total",
                Kind::Counter,
                "Total user and system CPU time spent in seconds.",
                p.cpu_seconds.map(float),
            ),
            (
                "process_resident_memory_bytes",
                Kind::Gauge,
                "Resident memory size in bytes.",
                p.resident_memory_bytes.map(|v| v.to_string()),
            ),
            (
                "process_virtual_memory_bytes",
                Kind::Gauge,
                "Virtual memory size in bytes.",
                p.virtual_memory_bytes.map(|v| v.to_string()),
            ),
            (
                "process_open_fds",
                Kind::Gauge,
                "Number of open file descriptors.",
                p.open_fds.map(|v| v.to_string()),
            ),
            (
                "process_max_fds",
                Kind::Gauge,
                "Maximum number of open file descriptors.",
                p.max_fds.map(|v| v.to_string()),
            ),
            (
                "process_start_time_seconds",
                Kind::Gauge,
                "Start time of the process since unix epoch in seconds.",
                p.start_time_seconds.map(float),
            ),
            (
                "process_threads",
                Kind::Gauge,
                "Number of OS threads in the process.",
                p.threads.map(|v| v.to_string()),
            ),
        ];
        for (name, kind, help, value) in families {
            out.family(name, kind, help, one(name, value));
        }
    }
    out.text
}

#[cfg(test)]
mod tests;
