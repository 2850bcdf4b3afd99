//! `/`: the status page, one self-contained HTML document in the spirit of HAProxy's stats
//! page.
//!
//! This module owns the page: its layout, its inline CSS and its inline script. The page is
//! rendered with the totals of one snapshot, so it reads without JavaScript (a `<noscript>`
//! refresh reloads it every 5 s). The script fetches `status` (the JSON of
//! [`super::status`]) every 2 s and fills in what needs two snapshots: request rates, 5xx
//! rates, byte rates and the latency quantiles of the last interval. Invariants:
//! - every string from the snapshot goes through [`escape`] (text and attribute values); the
//!   script is a constant and writes data with `textContent` only;
//! - nothing is loaded from elsewhere: no external asset, no font, no image (the icon is an
//!   empty `data:` URL), so the page works on an isolated admin network and its
//!   `Content-Security-Policy` ([`CONTENT_SECURITY_POLICY`]) allows nothing but itself and
//!   `status`;
//! - every element the script updates carries `data-k` (its key), and the `<body>`'s
//!   `data-shape` names what the page lists (workers, listeners, upstreams and backends, TLS
//!   rows): when `/status` lists something else (a reload changed the backends), the script
//!   reloads the page, at most once every 10 s.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::snapshot::{Histogram, Snapshot, WorkerSnapshot};

/// The `Content-Type` of the page.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// What the page may load and run: its own inline style and script, `status` from the same
/// origin, the empty icon; never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Text for HTML: `&`, `<`, `>`, `"`, `'` as entities, and CR as a character reference (the
/// parser would drop it from a CR LF pair, and attribute values are compared by the script).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567` as `1,234,567` (the script's `toLocaleString('en-US')`).
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units: `512 B`, `2.7 GiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A latency: `0.85 ms`, `12.5 ms`, `1.20 s`; `—` when unknown.
fn seconds(value: Option<f64>) -> String {
    match value {
        Some(s) if s.is_finite() && s < 0.01 => format!("{:.2} ms", s * 1000.0),
        Some(s) if s.is_finite() && s < 1.0 => format!("{:.1} ms", s * 1000.0),
        Some(s) if s.is_finite() => format!("{s:.2} s"),
        _ => DASH.to_owned(),
    }
}

/// An uptime: `3d 4h 5m 6s`, leading zero units left out.
fn uptime(total: u64) -> String {
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

/// What the page shows until the script has two snapshots.
const DASH: &str = "\u{2014}";

/// What the page lists, in the script's words (`shape()` there): a changed shape reloads the
/// page.
fn shape(s: &Snapshot) -> String {
    let listeners: Vec<String> = s.listeners.iter().map(|l| l.address.to_string()).collect();
    let upstreams: Vec<String> = s
        .upstreams
        .iter()
        .map(|u| {
            let backends: Vec<String> = u.backends.iter().map(|b| b.address.to_string()).collect();
            format!("{}={}", u.name, backends.join(","))
        })
        .collect();
    let handshakes: Vec<String> = s
        .tls_handshakes
        .iter()
        .map(|h| format!("{}/{}", h.version, h.resumed))
        .collect();
    let failures: Vec<&str> = s.tls_failures.iter().map(|(r, _)| r.as_str()).collect();
    format!(
        "{}|{}|{}|{}|{}",
        s.workers.len(),
        listeners.join(","),
        upstreams.join(";"),
        handshakes.join(","),
        failures.join(",")
    )
}

/// A `<span>` the script updates.
fn live(key: &str, text: &str) -> String {
    format!("<span data-k=\"{key}\">{}</span>", escape(text))
}

/// A table cell the script updates; `warn` marks it when its value is not `0`.
fn cell(key: &str, text: &str, warn: bool) -> String {
    let warn_attr = if warn { " data-warn" } else { "" };
    let class = if warn && text != "0" {
        " class=\"warn\""
    } else {
        ""
    };
    format!(
        "<td data-k=\"{key}\"{warn_attr}{class}>{}</td>",
        escape(text)
    )
}

fn class_total(requests: &[u64; 5]) -> u64 {
    requests.iter().fold(0u64, |sum, &n| sum.saturating_add(n))
}

/// The status page of `snapshot`, taken at `now`.
pub fn render(snapshot: &Snapshot, now: SystemTime) -> String {
    let s = snapshot;
    let mut html = String::with_capacity(32 * 1024);
    let up = now
        .duration_since(s.started)
        .map_or(0, |uptime| uptime.as_secs());
    let (state, state_class) = match (s.draining, s.ready) {
        (true, _) => ("draining", "state-draining"),
        (false, true) => ("ready", "state-ready"),
        (false, false) => ("not ready", "state-not-ready"),
    };
    let sum = |f: fn(&WorkerSnapshot) -> u64| {
        s.workers
            .iter()
            .fold(0u64, |total, w| total.saturating_add(f(w)))
    };

    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>ringway {version}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body data-shape=\"{shape}\">\n",
        version = escape(&s.version),
        shape = escape(&shape(s)),
    );

    // Header.
    let _ = write!(
        html,
        "<header>\n<h1>ringway <small>{version}</small></h1>\n\
         <span id=\"state\" class=\"state {state_class}\">{state}</span>\n\
         <span id=\"updated\" class=\"updated\">totals at {at}; rates need JavaScript</span>\n\
         </header>\n<dl class=\"summary\">\n\
         <div><dt>uptime</dt><dd>{uptime}</dd></div>\n\
         <div><dt>reloads</dt><dd>{reloads} succeeded, {failed} failed</dd></div>\n\
         <div><dt>connections open</dt><dd>{conns}</dd></div>\n\
         <div><dt>requests in flight</dt><dd>{inflight}</dd></div>\n\
         <div><dt>requests</dt><dd>{requests} <small>({rate}/s)</small></dd></div>\n\
         <div><dt>received from clients</dt><dd>{rx} <small>({rxr}/s)</small></dd></div>\n\
         <div><dt>sent to clients</dt><dd>{tx} <small>({txr}/s)</small></dd></div>\n\
         <div><dt>access log lines dropped</dt><dd>{dropped}</dd></div>\n</dl>\n",
        version = escape(&s.version),
        at = seconds_of_day(now),
        uptime = live("uptime", &uptime(up)),
        reloads = live("reloads.ok", &group(s.reloads_succeeded)),
        failed = live("reloads.failed", &group(s.reloads_failed)),
        conns = live("conns", &group(sum(|w| w.connections_open))),
        inflight = live("inflight", &group(sum(|w| w.requests_in_flight))),
        requests = live("requests", &group(sum(|w| w.requests))),
        rate = live("rate", DASH),
        rx = live("rx", &bytes(s.bytes_received)),
        rxr = live("rxr", DASH),
        tx = live("tx", &bytes(s.bytes_sent)),
        txr = live("txr", DASH),
        dropped = live("dropped", &group(s.log_lines_dropped)),
    );

    // Listeners, workers, TLS.
    html.push_str("<div class=\"row\">\n<section>\n<h2>Listeners</h2>\n<table>\n<thead><tr><th>address</th><th>TLS</th></tr></thead>\n<tbody>\n");
    for l in &s.listeners {
        let _ = writeln!(
            html,
            "<tr><td class=\"addr\">{}</td><td>{}</td></tr>",
            escape(&l.address.to_string()),
            if l.tls { "yes" } else { "no" }
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");

    html.push_str(
        "<section>\n<h2>Workers</h2>\n<table>\n<thead><tr><th>worker</th><th>connections open</th>\
         <th>accepted</th><th>in flight</th><th>requests</th><th>req/s</th></tr></thead>\n<tbody>\n",
    );
    for (i, w) in s.workers.iter().enumerate() {
        let _ = writeln!(
            html,
            "<tr><td>ringway-w{}</td>{}{}{}{}{}</tr>",
            w.index,
            cell(&format!("w{i}.open"), &group(w.connections_open), false),
            cell(&format!("w{i}.acc"), &group(w.connections_accepted), false),
            cell(&format!("w{i}.fl"), &group(w.requests_in_flight), false),
            cell(&format!("w{i}.req"), &group(w.requests), false),
            cell(&format!("w{i}.rate"), DASH, false),
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");

    html.push_str(
        "<section>\n<h2>TLS handshakes</h2>\n<table>\n<thead><tr><th>version</th><th>resumed</th>\
         <th>count</th><th>/s</th></tr></thead>\n<tbody>\n",
    );
    for (i, h) in s.tls_handshakes.iter().enumerate() {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td>{}{}</tr>",
            escape(&h.version),
            if h.resumed { "yes" } else { "no" },
            cell(&format!("t.h{i}"), &group(h.count), false),
            cell(&format!("t.hr{i}"), DASH, false),
        );
    }
    html.push_str(
        "</tbody>\n</table>\n<table>\n<thead><tr><th>failure</th><th>count</th><th>/s</th></tr>\
         </thead>\n<tbody>\n",
    );
    for (i, (reason, count)) in s.tls_failures.iter().enumerate() {
        let _ = writeln!(
            html,
            "<tr><td>{}</td>{}{}</tr>",
            escape(reason),
            cell(&format!("t.f{i}"), &group(*count), false),
            cell(&format!("t.fr{i}"), DASH, false),
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n</div>\n");

    // Upstreams.
    for (ui, u) in s.upstreams.iter().enumerate() {
        let k = |rest: &str| format!("u{ui}.{rest}");
        let _ = write!(
            html,
            "<section class=\"upstream\">\n<h2>upstream <b>{name}</b> <small>{policy}</small></h2>\n\
             <dl class=\"summary\">\n\
             <div><dt>requests</dt><dd>{total} <small>({rate}/s)</small></dd></div>\n\
             <div><dt>1xx / 2xx / 3xx / 4xx / 5xx</dt><dd>{c1} / {c2} / {c3} / {c4} / {c5}</dd></div>\n\
             <div><dt>5xx/s</dt><dd>{err}</dd></div>\n\
             <div><dt>no backend (503)</dt><dd>{nb}</dd></div>\n\
             <div><dt>retries</dt><dd>{retries}</dd></div>\n</dl>\n",
            name = escape(&u.name),
            policy = escape(&u.policy),
            total = live(&k("req"), &group(class_total(&u.requests))),
            rate = live(&k("rate"), DASH),
            c1 = live(&k("c1"), &group(u.requests[0])),
            c2 = live(&k("c2"), &group(u.requests[1])),
            c3 = live(&k("c3"), &group(u.requests[2])),
            c4 = live(&k("c4"), &group(u.requests[3])),
            c5 = live(&k("c5"), &group(u.requests[4])),
            err = live(&k("err"), DASH),
            nb = live(&k("nb"), &group(u.no_backend)),
            retries = live(&k("retries"), &group(u.retries)),
        );
        let quantiles = |h: &Histogram| (seconds(h.quantile(0.5)), seconds(h.quantile(0.99)));
        let (rq50, rq99) = quantiles(&u.request_seconds);
        let (bq50, bq99) = quantiles(&u.backend_seconds);
        let _ = write!(
            html,
            "<table class=\"latency\">\n<thead><tr><th rowspan=\"2\">latency</th>\
             <th colspan=\"2\">since start</th><th colspan=\"2\">last interval</th></tr>\
             <tr><th>p50</th><th>p99</th><th>p50</th><th>p99</th></tr></thead>\n<tbody>\n\
             <tr><td>whole request (client view)</td>{}{}{}{}</tr>\n\
             <tr><td>backend: request sent to response head</td>{}{}{}{}</tr>\n</tbody>\n</table>\n",
            cell(&k("rq50"), &rq50, false),
            cell(&k("rq99"), &rq99, false),
            cell(&k("rq50w"), DASH, false),
            cell(&k("rq99w"), DASH, false),
            cell(&k("bq50"), &bq50, false),
            cell(&k("bq99"), &bq99, false),
            cell(&k("bq50w"), DASH, false),
            cell(&k("bq99w"), DASH, false),
        );
        html.push_str(
            "<table class=\"backends\">\n<thead><tr><th>backend</th><th>weight</th><th>backup</th>\
             <th>health</th><th>ejected by</th><th>ejections</th><th>in flight</th>\
             <th>idle conns</th><th>connect failures</th><th>requests</th><th>1xx</th><th>2xx</th>\
             <th>3xx</th><th>4xx</th><th>5xx</th><th>req/s</th><th>5xx/s</th></tr></thead>\n<tbody>\n",
        );
        for (bi, b) in u.backends.iter().enumerate() {
            let k = |rest: &str| format!("u{ui}.b{bi}.{rest}");
            let health = b.health.name();
            let ejected = if b.ejected_by == 0 {
                "0".to_owned()
            } else {
                format!("{} of {} workers", b.ejected_by, s.workers.len())
            };
            let _ = writeln!(
                html,
                "<tr><td class=\"addr\">{addr}</td>{w}{bk}<td data-k=\"{hk}\" data-h \
                 class=\"h-{health}\">{health}</td>{ej}{ejs}{fl}{idle}{cf}{req}{c1}{c2}{c3}{c4}{c5}\
                 {rate}{err}</tr>",
                addr = escape(&b.address.to_string()),
                w = cell(&k("w"), &b.weight.to_string(), false),
                bk = cell(&k("bk"), if b.backup { "backup" } else { "" }, false),
                hk = k("health"),
                ej = cell(&k("ej"), &ejected, true),
                ejs = cell(&k("ejs"), &group(b.ejections), false),
                fl = cell(&k("fl"), &group(b.in_flight), false),
                idle = cell(&k("idle"), &group(b.idle_connections), false),
                cf = cell(&k("cf"), &group(b.connect_failures), true),
                req = cell(&k("req"), &group(class_total(&b.requests)), false),
                c1 = cell(&k("c1"), &group(b.requests[0]), false),
                c2 = cell(&k("c2"), &group(b.requests[1]), false),
                c3 = cell(&k("c3"), &group(b.requests[2]), false),
                c4 = cell(&k("c4"), &group(b.requests[3]), false),
                c5 = cell(&k("c5"), &group(b.requests[4]), true),
                rate = cell(&k("rate"), DASH, false),
                err = cell(&k("err"), DASH, true),
            );
        }
        html.push_str("</tbody>\n</table>\n</section>\n");
    }

    html.push_str(
        "<footer><a href=\"metrics\">/metrics</a> \u{b7} <a href=\"status\">/status</a> \u{b7} \
         <a href=\"healthz\">/healthz</a> \u{b7} <a href=\"readyz\">/readyz</a></footer>\n",
    );
    let _ = write!(html, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    html
}

/// `HH:MM:SS` UTC of `time`.
fn seconds_of_day(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

const STYLE: &str = r#"
:root { --fg: #1d2330; --muted: #667085; --line: #d9dee7; --head: #eef1f6; --band: #f7f8fb;
  --up: #1a7f37; --up-bg: #dafbe1; --down: #b42318; --down-bg: #fee4e2; --unk: #475467;
  --unk-bg: #eaecf0; --warn: #b54708; --warn-bg: #fef0c7; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px; font: 13px/1.4 system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; color: var(--fg); background: #fff; }
body.stale { background: #fffaf5; }
header { display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
h1 { font-size: 20px; margin: 0; }
h1 small, h2 small { color: var(--muted); font-weight: normal; }
h2 { font-size: 15px; margin: 18px 0 6px; }
.state { padding: 2px 10px; border-radius: 10px; font-weight: 600; }
.state-ready { color: var(--up); background: var(--up-bg); }
.state-draining { color: var(--warn); background: var(--warn-bg); }
.state-not-ready { color: var(--down); background: var(--down-bg); }
.updated { color: var(--muted); margin-left: auto; }
body.stale .updated { color: var(--down); }
dl.summary { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 10px 0; }
dl.summary div { display: flex; flex-direction: column; }
dt { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .03em; }
dd { margin: 0; font-size: 15px; font-variant-numeric: tabular-nums; }
dd small { color: var(--muted); font-size: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 8px 32px; align-items: flex-start; }
.row table + table { margin-top: 8px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: var(--head); font-weight: 600; font-size: 12px; }
td:first-child, th:first-child { text-align: left; }
tbody tr:nth-child(even) { background: var(--band); }
td.addr { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
section.upstream { border-top: 2px solid var(--line); margin-top: 18px; }
table.latency { margin-bottom: 8px; }
td[data-h] { text-align: center; font-weight: 600; }
.h-up { color: var(--up); background: var(--up-bg); }
.h-down { color: var(--down); background: var(--down-bg); }
.h-unchecked { color: var(--unk); background: var(--unk-bg); }
td.warn { color: var(--warn); background: var(--warn-bg); font-weight: 600; }
footer { margin-top: 24px; color: var(--muted); }
footer a { color: inherit; }
"#;

/// The page's script: fetches `status` every 2 s, fills every `data-k` element, computes rates
/// and the last interval's quantiles from two successive snapshots. Keys and formats mirror
/// [`render`].
const SCRIPT: &str = r#"
(function () {
  'use strict';
  var DASH = '\u2014';
  var body = document.body;
  var prev = null;
  function group(n) { return Math.round(n).toLocaleString('en-US'); }
  function perSecond(r) {
    if (r === null) return DASH;
    return r < 10 ? r.toFixed(1) : group(r);
  }
  function seconds(s) {
    if (s === null || !isFinite(s)) return DASH;
    if (s < 0.01) return (s * 1000).toFixed(2) + ' ms';
    if (s < 1) return (s * 1000).toFixed(1) + ' ms';
    return s.toFixed(2) + ' s';
  }
  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], u = 0;
    if (n < 1024) return Math.round(n) + ' B';
    while (n >= 1024 && u + 1 < units.length) { n /= 1024; u++; }
    return n.toFixed(1) + ' ' + units[u];
  }
  function uptime(total) {
    total = Math.max(0, Math.floor(total));
    var d = Math.floor(total / 86400), h = Math.floor(total / 3600) % 24,
      m = Math.floor(total / 60) % 60, s = total % 60;
    if (d) return d + 'd ' + h + 'h ' + m + 'm ' + s + 's';
    if (h) return h + 'h ' + m + 'm ' + s + 's';
    if (m) return m + 'm ' + s + 's';
    return s + 's';
  }
  function sum(list) { return list.reduce(function (a, b) { return a + b; }, 0); }
  // Histogram::quantile: linear within the bucket, the highest bound in +Inf.
  function quantile(h, q) {
    if (!h) return null;
    var total = sum(h.counts);
    if (!total) return null;
    var rank = q * total, below = 0, last = h.bounds.length ? h.bounds[h.bounds.length - 1] : null;
    for (var i = 0; i < h.counts.length; i++) {
      var count = h.counts[i], cumulative = below + count;
      if (count > 0 && cumulative >= rank) {
        if (i >= h.bounds.length) return last;
        var upper = h.bounds[i], lower = i === 0 ? Math.min(0, upper) : h.bounds[i - 1];
        var within = Math.min(1, Math.max(0, (rank - below) / count));
        return lower + (upper - lower) * within;
      }
      below = cumulative;
    }
    return last;
  }
  // The observations between two snapshots of one histogram.
  function since(h, before) {
    if (!before || before.counts.length !== h.counts.length) return null;
    return { bounds: h.bounds, counts: h.counts.map(function (c, i) {
      return Math.max(0, c - before.counts[i]);
    }) };
  }
  function shape(s) {
    return [
      s.workers.length,
      s.listeners.map(function (l) { return l.address; }).join(','),
      s.upstreams.map(function (u) {
        return u.name + '=' + u.backends.map(function (b) { return b.address; }).join(',');
      }).join(';'),
      s.tls_handshakes.map(function (h) { return h.version + '/' + h.resumed; }).join(','),
      s.tls_failures.map(function (f) { return f.reason; }).join(',')
    ].join('|');
  }
  function values(s, p) {
    var v = {}, dt = p ? s.now - p.now : 0;
    if (!(dt > 0)) p = null;
    function rate(now, before) { return p ? perSecond(Math.max(0, (now - before) / dt)) : DASH; }
    function total(w, f) { return sum(w.map(f)); }
    v.uptime = uptime(s.uptime_seconds);
    v['reloads.ok'] = group(s.reloads_succeeded);
    v['reloads.failed'] = group(s.reloads_failed);
    v.conns = group(total(s.workers, function (w) { return w.connections_open; }));
    v.inflight = group(total(s.workers, function (w) { return w.requests_in_flight; }));
    var requests = total(s.workers, function (w) { return w.requests; });
    v.requests = group(requests);
    v.rate = p ? rate(requests, total(p.workers, function (w) { return w.requests; })) : DASH;
    v.rx = bytes(s.bytes_received);
    v.tx = bytes(s.bytes_sent);
    v.rxr = p ? bytes(Math.max(0, (s.bytes_received - p.bytes_received) / dt)) : DASH;
    v.txr = p ? bytes(Math.max(0, (s.bytes_sent - p.bytes_sent) / dt)) : DASH;
    v.dropped = group(s.log_lines_dropped);
    s.workers.forEach(function (w, i) {
      var b = p && p.workers[i];
      v['w' + i + '.open'] = group(w.connections_open);
      v['w' + i + '.acc'] = group(w.connections_accepted);
      v['w' + i + '.fl'] = group(w.requests_in_flight);
      v['w' + i + '.req'] = group(w.requests);
      v['w' + i + '.rate'] = b ? rate(w.requests, b.requests) : DASH;
    });
    s.tls_handshakes.forEach(function (h, i) {
      var b = p && p.tls_handshakes[i];
      v['t.h' + i] = group(h.count);
      v['t.hr' + i] = b ? rate(h.count, b.count) : DASH;
    });
    s.tls_failures.forEach(function (f, i) {
      var b = p && p.tls_failures[i];
      v['t.f' + i] = group(f.count);
      v['t.fr' + i] = b ? rate(f.count, b.count) : DASH;
    });
    s.upstreams.forEach(function (u, ui) {
      var pu = p && p.upstreams[ui], k = 'u' + ui + '.';
      v[k + 'req'] = group(sum(u.requests));
      for (var c = 0; c < 5; c++) v[k + 'c' + (c + 1)] = group(u.requests[c]);
      v[k + 'rate'] = pu ? rate(sum(u.requests), sum(pu.requests)) : DASH;
      v[k + 'err'] = pu ? rate(u.requests[4], pu.requests[4]) : DASH;
      v[k + 'nb'] = group(u.no_backend);
      v[k + 'retries'] = group(u.retries);
      v[k + 'rq50'] = seconds(quantile(u.request_seconds, 0.5));
      v[k + 'rq99'] = seconds(quantile(u.request_seconds, 0.99));
      v[k + 'bq50'] = seconds(quantile(u.backend_seconds, 0.5));
      v[k + 'bq99'] = seconds(quantile(u.backend_seconds, 0.99));
      var rw = pu ? since(u.request_seconds, pu.request_seconds) : null;
      var bw = pu ? since(u.backend_seconds, pu.backend_seconds) : null;
      v[k + 'rq50w'] = seconds(quantile(rw, 0.5));
      v[k + 'rq99w'] = seconds(quantile(rw, 0.99));
      v[k + 'bq50w'] = seconds(quantile(bw, 0.5));
      v[k + 'bq99w'] = seconds(quantile(bw, 0.99));
      u.backends.forEach(function (b, bi) {
        var pb = pu && pu.backends[bi], kb = k + 'b' + bi + '.';
        v[kb + 'w'] = String(b.weight);
        v[kb + 'bk'] = b.backup ? 'backup' : '';
        v[kb + 'health'] = b.health;
        v[kb + 'ej'] = b.ejected_by ? b.ejected_by + ' of ' + s.workers.length + ' workers' : '0';
        v[kb + 'ejs'] = group(b.ejections);
        v[kb + 'fl'] = group(b.in_flight);
        v[kb + 'idle'] = group(b.idle_connections);
        v[kb + 'cf'] = group(b.connect_failures);
        v[kb + 'req'] = group(sum(b.requests));
        for (var c = 0; c < 5; c++) v[kb + 'c' + (c + 1)] = group(b.requests[c]);
        v[kb + 'rate'] = pb ? rate(sum(b.requests), sum(pb.requests)) : DASH;
        v[kb + 'err'] = pb ? rate(b.requests[4], pb.requests[4]) : DASH;
      });
    });
    return v;
  }
  function show(s, p) {
    var v = values(s, p);
    var cells = document.querySelectorAll('[data-k]');
    for (var i = 0; i < cells.length; i++) {
      var el = cells[i], key = el.getAttribute('data-k');
      if (!Object.prototype.hasOwnProperty.call(v, key)) continue;
      el.textContent = v[key];
      if (el.hasAttribute('data-h')) el.className = 'h-' + v[key];
      if (el.hasAttribute('data-warn')) {
        el.classList.toggle('warn', v[key] !== '0' && v[key] !== '0.0' && v[key] !== DASH);
      }
    }
    var state = document.getElementById('state');
    var word = s.draining ? 'draining' : s.ready ? 'ready' : 'not ready';
    state.textContent = word;
    state.className = 'state state-' + word.replace(' ', '-');
  }
  function reloadOnce() {
    var last = 0;
    try { last = Number(sessionStorage.getItem('ringway-reloaded')) || 0; } catch (e) {}
    if (Date.now() - last < 10000) return false;
    try { sessionStorage.setItem('ringway-reloaded', String(Date.now())); } catch (e) {}
    location.reload();
    return true;
  }
  function tick() {
    fetch('status', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (s) {
        if (shape(s) !== body.getAttribute('data-shape') && reloadOnce()) return;
        show(s, prev);
        prev = s;
        body.classList.remove('stale');
        document.getElementById('updated').textContent =
          'updated ' + new Date(s.now * 1000).toLocaleTimeString() + ', every 2 s';
      })
      .catch(function (error) {
        body.classList.add('stale');
        document.getElementById('updated').textContent =
          'not updated: ' + (error && error.message ? error.message : String(error));
      })
      .then(function () { setTimeout(tick, 2000); });
  }
  tick();
})();
"#;

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::admin::sample::sample_at;
    use crate::admin::snapshot::ListenerSnapshot;

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>\r\n"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;&#13;\n"
        );
    }

    #[test]
    fn every_string_of_the_snapshot_is_escaped() {
        let mut snapshot = sample_at(at());
        snapshot.version = "<img src=x onerror=alert(1)>".to_owned();
        snapshot.upstreams[0].name = "a\"><script>alert(2)</script>".to_owned();
        snapshot.upstreams[0].policy = "<b>policy</b>".to_owned();
        snapshot.tls_handshakes[0].version = "<i>TLS</i>".to_owned();
        let html = render(&snapshot, at());
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>policy"), "{html}");
        assert!(!html.contains("<i>TLS"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("odd &quot;reason&quot; \\ &lt;b&gt;\nline"));
        // One script, one style: the page's own.
        assert_eq!(html.matches("<script").count(), 1);
        assert_eq!(html.matches("<style").count(), 1);
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = render(&sample_at(at()), at());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"));
        for external in ["http://", "https://", "//cdn", "src=\"", "@import", "url("] {
            assert!(!html.contains(external), "{external} in the page");
        }
        assert!(html.contains("fetch('status'"));
        assert!(html.contains("setTimeout(tick, 2000)"));
    }

    #[test]
    fn header_backends_and_latency() {
        let html = render(&sample_at(at()), at());
        assert!(html.contains("<title>ringway 0.1.0 (2b5a641)</title>"));
        assert!(html.contains("class=\"state state-ready\">ready<"));
        assert!(html.contains("<span data-k=\"uptime\">3h 25m 7s</span>"));
        assert!(html.contains("<span data-k=\"reloads.ok\">4</span> succeeded"));
        assert!(html.contains("<span data-k=\"reloads.failed\">1</span> failed"));
        assert!(html.contains("<span data-k=\"requests\">2,402,348</span>"));
        assert!(html.contains("<span data-k=\"tx\">84.9 GiB</span>"));
        assert!(html.contains("<td class=\"addr\">[::]:443</td><td>yes</td>"));
        // A backend row: health colored, ejection marked, totals by class.
        assert!(html.contains(
            "<td class=\"addr\">10.0.0.13:8080</td><td data-k=\"u0.b2.w\">1</td>\
             <td data-k=\"u0.b2.bk\"></td><td data-k=\"u0.b2.health\" data-h class=\"h-down\">down</td>"
        ));
        assert!(
            html.contains("<td data-k=\"u0.b1.ej\" data-warn class=\"warn\">1 of 2 workers</td>")
        );
        assert!(html.contains("<td data-k=\"u0.b0.ej\" data-warn>0</td>"));
        assert!(html.contains("<td data-k=\"u0.b3.bk\">backup</td>"));
        assert!(html.contains("data-h class=\"h-unchecked\">unchecked</td>"));
        assert!(html.contains("<td data-k=\"u0.b0.req\">1,176,414</td>"));
        assert!(html.contains("<td data-k=\"u0.b0.rate\">\u{2014}</td>"));
        // Latency from the histograms: the median request is in (1 ms, 2.5 ms].
        let p50 = sample_at(at()).upstreams[0]
            .request_seconds
            .quantile(0.5)
            .expect("observations");
        assert!((0.001..=0.0025).contains(&p50));
        assert!(html.contains(&format!(
            "<td data-k=\"u0.rq50\">{}</td>",
            seconds(Some(p50))
        )));
        assert!(html.contains("<td data-k=\"u1.bq99\">"));
    }

    #[test]
    fn draining_and_not_ready_states() {
        let mut snapshot = sample_at(at());
        snapshot.draining = true;
        snapshot.ready = false;
        assert!(render(&snapshot, at()).contains("class=\"state state-draining\">draining<"));
        snapshot.draining = false;
        assert!(render(&snapshot, at()).contains("class=\"state state-not-ready\">not ready<"));
    }

    #[test]
    fn shape_names_what_the_page_lists() {
        let snapshot = Snapshot {
            listeners: vec![ListenerSnapshot {
                address: "127.0.0.1:8443".parse().expect("address"),
                tls: true,
            }],
            tls_failures: vec![("eof".to_owned(), 1), ("a|b".to_owned(), 2)],
            ..Snapshot::default()
        };
        assert_eq!(shape(&snapshot), "0|127.0.0.1:8443|||eof,a|b");
        let sample = sample_at(at());
        let shape = shape(&sample);
        assert!(shape.starts_with("2|0.0.0.0:443,[::]:443|app=10.0.0.11:8080,10.0.0.12:8080,"));
        assert!(shape.contains(";static=[fd00::21]:8000,[fd00::22]:8000|TLSv1.3/false,"));
        let html = render(&sample, at());
        assert!(html.contains(&format!("<body data-shape=\"{}\">", escape(&shape))));
    }

    #[test]
    fn formats() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
        assert_eq!(seconds(Some(0.00085)), "0.85 ms");
        assert_eq!(seconds(Some(0.0125)), "12.5 ms");
        assert_eq!(seconds(Some(1.2)), "1.20 s");
        assert_eq!(seconds(None), "\u{2014}");
        assert_eq!(seconds(Some(f64::NAN)), "\u{2014}");
        assert_eq!(uptime(7), "7s");
        assert_eq!(uptime(61), "1m 1s");
        assert_eq!(uptime(3600), "1h 0m 0s");
        assert_eq!(uptime(90_061), "1d 1h 1m 1s");
        assert_eq!(seconds_of_day(at()), "22:13:20 UTC");
    }
}
