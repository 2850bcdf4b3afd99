//! `/status`: the whole [`Snapshot`] as JSON, what the status page's script reads.
//!
//! This module owns the JSON's shape: the snapshot's fields as they are named in Rust, plus
//! `now` (the server's clock when the snapshot was taken) and `uptime_seconds`; times are
//! seconds since the Unix epoch as numbers, addresses `ip:port` strings, health `"up"`,
//! `"down"` or `"unchecked"`, `requests` arrays of five counts (`1xx` to `5xx`),
//! `tls_failures` and `proxy_header_failures` lists of `{"reason", "count"}` and a histogram's
//! sum `null` when it is not a number. [`render`] is a pure function of its arguments.

use std::time::SystemTime;

use serde::Serialize;

use super::snapshot::{Snapshot, seconds_since_epoch};

/// The `Content-Type` of `/status`.
pub const CONTENT_TYPE: &str = "application/json";

/// What `/status` serializes: the snapshot's fields and two of its own.
#[derive(Serialize)]
struct Status<'a> {
    /// Seconds since the Unix epoch, on the server's clock.
    now: f64,
    uptime_seconds: f64,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

/// The JSON of `snapshot` taken at `now`.
pub fn render(snapshot: &Snapshot, now: SystemTime) -> String {
    let status = Status {
        now: seconds_since_epoch(now),
        uptime_seconds: now
            .duration_since(snapshot.started)
            .map_or(0.0, |uptime| uptime.as_secs_f64()),
        snapshot,
    };
    serde_json::to_string(&status).unwrap_or_else(|error| {
        // Not reached with these types (no map with keys that are not strings); still JSON.
        serde_json::json!({ "error": error.to_string() }).to_string()
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::{Value, json};

    use super::*;
    use crate::admin::sample::sample_at;
    use crate::admin::snapshot::Histogram;

    #[test]
    fn the_whole_snapshot_with_now_and_uptime() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let snapshot = sample_at(now);
        let value: Value = serde_json::from_str(&render(&snapshot, now)).expect("JSON");
        assert_eq!(value["now"], json!(1_700_000_000.0));
        assert_eq!(value["uptime_seconds"], json!(12_307.0));
        assert_eq!(value["started"], json!(1_700_000_000.0 - 12_307.0));
        assert_eq!(value["version"], json!("0.1.0 (2b5a641)"));
        assert_eq!(value["ready"], json!(true));
        assert_eq!(value["draining"], json!(false));
        assert_eq!(value["workers"][1]["requests"], json!(1_198_016));
        assert_eq!(
            value["tls_handshakes"][1],
            json!({"version": "TLSv1.3", "resumed": true, "count": 58_977})
        );
        assert_eq!(
            value["tls_failures"][0],
            json!({"reason": "timeout", "count": 31})
        );
        // Escaped as JSON and read back as written.
        assert_eq!(
            value["tls_failures"][3]["reason"],
            json!("odd \"reason\" \\ <b>\nline")
        );
        assert_eq!(
            value["proxy_header_failures"][1],
            json!({"reason": "invalid", "count": 5})
        );
        assert_eq!(
            value["listeners"][1],
            json!({"address": "[::]:443", "tls": true})
        );
        assert_eq!(value["bytes_sent"], json!(91_204_998_112u64));
        assert_eq!(value["reloads_failed"], json!(1));
        assert_eq!(value["log_lines_dropped"], json!(0));

        let app = &value["upstreams"][0];
        assert_eq!(app["name"], json!("app"));
        assert_eq!(app["policy"], json!("least_connections"));
        assert_eq!(app["requests"], json!([0, 2_301_118, 40_112, 12_003, 411]));
        assert_eq!(app["no_backend"], json!(3));
        assert_eq!(app["request_seconds"]["bounds"][0], json!(0.0005));
        assert_eq!(
            app["request_seconds"]["counts"].as_array().map(Vec::len),
            Some(17)
        );
        let down = &app["backends"][2];
        assert_eq!(down["address"], json!("10.0.0.13:8080"));
        assert_eq!(down["health"], json!("down"));
        assert_eq!(down["connect_failures"], json!(305));
        assert_eq!(app["backends"][3]["backup"], json!(true));
        assert_eq!(
            value["upstreams"][1]["backends"][0]["health"],
            json!("unchecked")
        );
        assert_eq!(
            value["upstreams"][1]["backends"][0]["address"],
            json!("[fd00::21]:8000")
        );
    }

    #[test]
    fn odd_values_stay_json() {
        let now = UNIX_EPOCH + Duration::from_secs(10);
        let mut snapshot = Snapshot {
            // Started after now (a clock step): uptime 0, not an error.
            started: now + Duration::from_secs(5),
            ..Snapshot::default()
        };
        snapshot.upstreams.push(crate::admin::UpstreamSnapshot {
            request_seconds: Histogram {
                sum: f64::NAN,
                ..Histogram::default()
            },
            ..Default::default()
        });
        let value: Value = serde_json::from_str(&render(&snapshot, now)).expect("JSON");
        assert_eq!(value["uptime_seconds"], json!(0.0));
        assert_eq!(value["upstreams"][0]["request_seconds"]["sum"], Value::Null);
        // Before the epoch: negative seconds.
        let early = Snapshot {
            started: UNIX_EPOCH - Duration::from_secs(2),
            ..Snapshot::default()
        };
        let value: Value = serde_json::from_str(&render(&early, now)).expect("JSON");
        assert_eq!(value["started"], json!(-2.0));
    }
}
