//! The admin listener of a real ringway: `/metrics` in the Prometheus text format (checked by
//! `promtool` when it is installed) whose counters move as requests, errors, ejections and
//! health changes happen; `/healthz`, `/readyz`, `/status` and the status page.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

/// GET `path` on the admin listener: the status and the body.
fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the admin listener");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The value of the sample `name{labels}` (labels as written, in order) in `metrics`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn admin_address(proxy: &Proxy) -> SocketAddr {
    let log = proxy.log();
    let start = log
        .find("admin listener on http://")
        .map(|i| i + "admin listener on http://".len())
        .expect("the admin listener's line");
    let rest = &log[start..];
    rest[..rest.find('/').unwrap_or(rest.len())]
        .parse()
        .expect("an address")
}

#[test]
fn metrics_move_with_requests_errors_ejections_and_health() {
    let ok = Backend::start("ok");
    let dead = refused_addr();
    let extra = format!(
        "[admin]\naddress = \"127.0.0.1:0\"\n\
         [[upstream]]\nname = \"app\"\nbackends = [\"{}\", \"{dead}\"]\n\
         [upstream.outlier]\nconsecutive_failures = 1\n\
         [[upstream]]\nname = \"bad\"\nbackends = [\"{}\"]\n\
         [[upstream]]\nname = \"checked\"\nbackends = [\"{}\"]\n\
         [upstream.health_check]\ninterval = \"100ms\"\ntimeout = \"50ms\"\njitter = \"0s\"\nfall = 1\n",
        ok.addr,
        bad_status_backend(),
        refused_addr()
    );
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra,
            listener: Some(
                "upstream = \"app\"\n\
                 [[listener.route]]\npath_prefix = \"/bad\"\nupstream = \"bad\"\n\
                 [[listener.route]]\npath_prefix = \"/checked\"\nupstream = \"checked\"\n"
                    .into(),
            ),
            ..ProxyOptions::default()
        },
    );
    let admin = admin_address(&proxy);
    assert_eq!(admin_get(admin, "/healthz"), (200, "ok\n".into()));
    // Ready once the first health round is done.
    assert!(wait_until(Duration::from_secs(5), || admin_get(
        admin, "/readyz"
    )
    .0 == 200));

    let mut client = proxy.client();
    for _ in 0..10 {
        assert_eq!(client.get("/").status, 200);
    }
    assert_eq!(proxy.client().get("/bad").status, 502);
    assert_eq!(proxy.client().get("/checked").status, 503);

    let (status, metrics) = admin_get(admin, "/metrics");
    assert_eq!(status, 200);
    let value =
        |series: &str| sample(&metrics, series).unwrap_or_else(|| panic!("{series}:\n{metrics}"));
    assert_eq!(
        value("ringway_upstream_requests_total{upstream=\"app\",class=\"2xx\"}"),
        10.0
    );
    assert_eq!(
        value("ringway_upstream_requests_total{upstream=\"bad\",class=\"5xx\"}"),
        1.0
    );
    assert_eq!(
        value("ringway_upstream_no_backend_total{upstream=\"checked\"}"),
        1.0
    );
    let ok_series = format!("{{upstream=\"app\",backend=\"{}\",class=\"2xx\"}}", ok.addr);
    assert_eq!(
        value(&format!("ringway_backend_requests_total{ok_series}")),
        10.0
    );
    // The refused backend failed one request (retried on `ok`) and was ejected at once.
    let dead_labels = format!("{{upstream=\"app\",backend=\"{dead}\"}}");
    assert_eq!(
        value(&format!(
            "ringway_backend_connect_failures_total{dead_labels}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!("ringway_backend_ejections_total{dead_labels}")),
        1.0
    );
    assert_eq!(
        value(&format!("ringway_backend_ejected_workers{dead_labels}")),
        1.0
    );
    assert_eq!(
        value("ringway_upstream_retries_total{upstream=\"app\"}"),
        1.0
    );
    // The checked backend is down.
    let checked = metrics
        .lines()
        .find(|l| l.starts_with("ringway_backend_up{upstream=\"checked\""))
        .expect("ringway_backend_up of the checked backend");
    assert!(checked.ends_with(" 0"), "{checked}");
    assert!(value("ringway_tls_handshakes_total{version=\"TLSv1.3\",resumed=\"false\"}") >= 3.0);
    assert!(value("ringway_client_bytes_sent_total") > 0.0);
    assert!(value("ringway_upstream_request_duration_seconds_count{upstream=\"app\"}") >= 10.0);
    assert!(value("process_resident_memory_bytes") > 0.0);

    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(metrics.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => eprintln!("skipped: promtool not installed (Debian: apt-get install prometheus)"),
    }

    let (status, json) = admin_get(admin, "/status");
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert!(json.contains("\"checked\""), "{status}");
    let (status, page) = admin_get(admin, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<html") && page.contains("app") && page.contains(&ok.addr.to_string()));
}
