//! Upstreams and backends: every key, defaults, short and long backend lists, names,
//! references from listeners and routes, legacy `backends` lists.

use std::time::Duration;

use super::*;
use crate::route::{HostPattern, Routed};

#[test]
fn every_upstream_key_parses() {
    let config = Config::from_toml_str(&format!(
        r#"
[[upstream]]
name = "app.v2_blue-1"
policy = "peak_ewma"
slow_start = "1m"
hedge_after = "40ms"
send_proxy_protocol = "v2"
backends = ["10.0.0.1:80"]
[[upstream.backend]]
address = "[fd00::1]:8080"
weight = 1000
max_connections = 64
backup = true
[upstream.health_check]
type = "http"
interval = "10s"
jitter = "10s"
timeout = "9s"
rise = 1
fall = 7
method = "HEAD"
path = "/health?full=1"
host = "app.internal:8080"
expect_status = 204
[upstream.outlier]
consecutive_failures = 0
consecutive_5xx = 3
base_ejection = "1s"
max_ejection = "1s"
max_ejected_percent = 30
[upstream.retries]
budget_percent = 5
min_per_second = 0

[[upstream]]
name = "app"
policy = "consistent_hash"
hash = "header:X-User"
backends = ["10.0.0.2:80"]

[[upstream]]
name = "unused"
policy = "consistent_hash"
backends = ["10.0.0.3:80"]
{LISTENER}
[[listener.route]]
host = "API.example.com"
path_prefix = "/v2/"
upstream = "app.v2_blue-1"
[[listener.route]]
path_prefix = "/"
upstream = "app"
"#
    ))
    .expect("every key");
    assert_eq!(
        config.upstreams[0],
        UpstreamConfig {
            name: "app.v2_blue-1".into(),
            policy: Policy::PeakEwma,
            hash: None,
            slow_start: Duration::from_secs(60),
            backends: vec![
                BackendConfig::new(addr("10.0.0.1:80")),
                BackendConfig {
                    address: addr("[fd00::1]:8080").into(),
                    weight: 1000,
                    max_connections: 64,
                    backup: true,
                },
            ],
            health_check: Some(HealthCheckConfig {
                kind: CheckKind::Http {
                    method: "HEAD".into(),
                    path: "/health?full=1".into(),
                    host: Some("app.internal:8080".into()),
                    expect_status: 204..=204,
                },
                interval: Duration::from_secs(10),
                jitter: Duration::from_secs(10),
                timeout: Duration::from_secs(9),
                rise: 1,
                fall: 7,
            }),
            outlier: OutlierConfig {
                consecutive_failures: 0,
                consecutive_5xx: 3,
                base_ejection: Duration::from_secs(1),
                max_ejection: Duration::from_secs(1),
                max_ejected_percent: 30,
            },
            retries: RetryBudgetConfig {
                percent: 5,
                min_per_second: 0,
            },
            hedge_after: Some(Duration::from_millis(40)),
            send_proxy_protocol: Some(ProxyVersion::V2),
        }
    );
    assert_eq!(config.upstreams[1].policy, Policy::ConsistentHash);
    assert_eq!(
        config.upstreams[1].hash,
        Some(HashKey::Header("x-user".into())),
        "header names are lowercased"
    );
    assert_eq!(
        config.upstreams[2].hash,
        Some(HashKey::ClientIp),
        "consistent_hash defaults to the client IP"
    );
    assert_eq!(config.upstreams.len(), 3, "unused upstreams are kept");
    let listener = &config.listeners[0];
    assert_eq!(listener.default_upstream, Some(1));
    assert_eq!(
        listener.routes,
        [
            RouteConfig {
                host: Some(HostPattern::Exact("api.example.com".into())),
                path_prefix: Some("/v2/".into()),
                upstream: Some(0),
                access_log: None,
                ..RouteConfig::default()
            },
            RouteConfig {
                host: None,
                path_prefix: Some("/".into()),
                upstream: Some(1),
                access_log: None,
                ..RouteConfig::default()
            },
        ]
    );
    let router = listener.router();
    assert_eq!(
        router.route(b"api.example.com:8443", b"/v2/x", None),
        Routed::Upstream {
            upstream: 0,
            route: Some(0)
        }
    );
    assert_eq!(
        router.route(b"api.example.com", b"/v1/x", None),
        Routed::Upstream {
            upstream: 1,
            route: Some(1)
        }
    );

    let text = config.to_toml_string().expect("serialize");
    let again = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again, config, "{text}");
}

#[test]
fn upstream_defaults() {
    let config = Config::from_toml_str(&app("backends = [\"127.0.0.1:9001\"]")).expect("app");
    assert_eq!(
        config.upstreams,
        [UpstreamConfig::new("app", [addr("127.0.0.1:9001")])]
    );
    let upstream = &config.upstreams[0];
    assert_eq!(upstream.policy, Policy::RoundRobin);
    assert_eq!(upstream.hash, None);
    assert_eq!(upstream.slow_start, Duration::ZERO);
    assert_eq!(upstream.health_check, None, "no section, no active checks");
    assert_eq!(
        upstream.outlier,
        OutlierConfig {
            consecutive_failures: 5,
            consecutive_5xx: 0,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    );
    assert_eq!(
        upstream.backends,
        [BackendConfig {
            address: addr("127.0.0.1:9001").into(),
            weight: 1,
            max_connections: 0,
            backup: false,
        }]
    );

    let config = Config::from_toml_str(&check("")).expect("empty health_check");
    assert_eq!(
        config.upstreams[0].health_check,
        Some(HealthCheckConfig {
            kind: CheckKind::Http {
                method: "GET".into(),
                path: "/".into(),
                host: None,
                expect_status: 200..=399,
            },
            interval: Duration::from_secs(5),
            jitter: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
        })
    );
    assert_eq!(
        config.upstreams[0].health_check,
        Some(HealthCheckConfig::default())
    );
    let config = Config::from_toml_str(&check("type = \"tcp\"")).expect("tcp");
    assert_eq!(
        config.upstreams[0].health_check.as_ref().map(|c| &c.kind),
        Some(&CheckKind::Tcp)
    );
}

#[test]
fn short_and_long_backends_keep_their_order_and_key_names() {
    let toml = app(r#"backends = ["127.0.0.1:1", "127.0.0.1:2"]
[[upstream.backend]]
address = "127.0.0.1:3"
[[upstream.backend]]
address = "127.0.0.1:4""#);
    let config = Config::from_toml_str(&toml).expect("mixed");
    let addresses: Vec<u16> = config.upstreams[0]
        .backends
        .iter()
        .map(|b| b.address.port())
        .collect();
    assert_eq!(addresses, [1, 2, 3, 4]);

    let toml = app(r#"policy = "random""#).replace(
        "policy",
        "backends = [\"127.0.0.1:1\"]\n[[upstream.backend]]\naddress = \"127.0.0.1:0\"\n#",
    );
    let (key, reason) = key_and_reason(&toml);
    assert_eq!(key, "upstream[0].backend[0].address");
    assert_eq!(reason, "127.0.0.1:0: port 0 cannot be connected to");

    let (key, _) = key_and_reason(&app(r#"backends = ["127.0.0.1:0"]"#));
    assert_eq!(key, "upstream[0].backends[0]");
}

#[test]
fn weight_out_of_range_names_the_backend_and_line() {
    let toml = format!(
        r#"[[upstream]]
name = "zero"
backends = ["127.0.0.1:1"]
[[upstream]]
name = "app"
backends = ["127.0.0.1:2"]
[[upstream.backend]]
address = "127.0.0.1:3"
weight = 0
{LISTENER}"#
    );
    let error = Config::from_toml_str(&toml).expect_err("weight 0");
    assert_one_line(&error);
    assert_eq!(
        error.to_string(),
        "upstream[1].backend[0].weight: 0 is out of range: must be 1 to 1000 \
         (line 9, column 10)"
    );
    let (key, reason) = key_and_reason(&toml.replace("weight = 0", "weight = 1001"));
    assert_eq!(key, "upstream[1].backend[0].weight");
    assert_eq!(reason, "1001 is out of range: must be 1 to 1000");
    let (key, reason) = key_and_reason(&toml.replace("weight = 0", "weight = -1"));
    assert_eq!(key, "upstream[1].backend[0].weight");
    assert!(
        reason.contains("expected a non-negative integer"),
        "{reason}"
    );
    Config::from_toml_str(&toml.replace("weight = 0", "weight = 1000")).expect("1000");
}

#[test]
fn upstream_names() {
    let toml = format!(
        "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:1\"]\n{}",
        app("backends = [\"127.0.0.1:2\"]")
    );
    let error = Config::from_toml_str(&toml).expect_err("duplicate");
    assert_eq!(
        error.to_string(),
        "upstream[1].name: \"app\" is already the name of upstream[0] (line 5, column 8)"
    );

    for name in ["", "a b", "app/1", "ä"] {
        let toml = app("backends = [\"127.0.0.1:1\"]")
            .replace("name = \"app\"", &format!("name = {name:?}"))
            .replace("upstream = \"app\"", &format!("upstream = {name:?}"));
        let (key, reason) = key_and_reason(&toml);
        assert_eq!(key, "upstream[0].name", "{name:?}");
        assert_eq!(
            reason,
            format!("{name:?} is not a valid upstream name: use letters, digits, '_', '.' and '-'")
        );
    }

    let (key, reason) = key_and_reason("[[upstream]]\nbackends = [\"127.0.0.1:1\"]\n");
    assert_eq!(key, "upstream[0]");
    assert!(reason.contains("missing field `name`"), "{reason}");
}

#[test]
fn names_that_refer_to_no_upstream() {
    let toml =
        app("backends = [\"127.0.0.1:1\"]").replace("upstream = \"app\"", "upstream = \"ap\"");
    let error = Config::from_toml_str(&toml).expect_err("unknown");
    assert_eq!(
        error.to_string(),
        "listener[0].upstream: no [[upstream]] is named \"ap\" (upstreams: \"app\") \
         (line 7, column 12)"
    );

    let toml = format!(
        "{}[[listener.route]]\nhost = \"a.example.com\"\nupstream = \"nope\"\n",
        app("backends = [\"127.0.0.1:1\"]")
    );
    let (key, reason) = key_and_reason(&toml);
    assert_eq!(key, "listener[0].route[0].upstream");
    assert_eq!(
        reason,
        "no [[upstream]] is named \"nope\" (upstreams: \"app\")"
    );

    let (key, reason) = key_and_reason(LISTENER);
    assert_eq!(key, "listener[0].upstream");
    assert_eq!(
        reason,
        "no [[upstream]] is named \"app\" (there is no [[upstream]])"
    );

    let toml =
        format!("{MINIMAL}[[listener]]\naddress = \"127.0.0.1:1\"\nupstream = \"listener0\"\n");
    let (key, _) = key_and_reason(&toml);
    assert_eq!(
        key, "listener[1].upstream",
        "implicit upstreams cannot be named"
    );

    let (key, reason) = key_and_reason(&format!(
        "{}[[listener.route]]\nhost = \"a.example.com\"\n",
        app("backends = [\"127.0.0.1:1\"]")
    ));
    assert_eq!(key, "listener[0].route[0].upstream");
    assert!(
        reason.starts_with("missing: a route names an upstream"),
        "{reason}"
    );
}

#[test]
fn listener_needs_an_upstream_or_routes() {
    let routes_only = format!(
        "{}[[listener.route]]\npath_prefix = \"/api/\"\nupstream = \"app\"\n",
        app("backends = [\"127.0.0.1:1\"]").replace("upstream = \"app\"\n", "")
    );
    let config = Config::from_toml_str(&routes_only).expect("routes only");
    assert_eq!(config.listeners[0].default_upstream, None);
    assert_eq!(
        config.listeners[0].router().route(b"a", b"/", Some("b")),
        Routed::Misdirected
    );

    let neither = app("backends = [\"127.0.0.1:1\"]").replace("upstream = \"app\"\n", "");
    let (key, reason, at) = invalid(&neither);
    assert_eq!(key, "listener[0].backends");
    assert_eq!(
        reason,
        "at least one backend is required: list them (backends = [\"127.0.0.1:8080\"]), \
         name an [[upstream]] (upstream = \"app\") or add [[listener.route]] entries"
    );
    assert_eq!(at.line_column, Some((5, 1)), "points at the [[listener]]");
}

#[test]
fn legacy_backends() {
    let config = Config::from_toml_str(MINIMAL).expect("legacy");
    assert_eq!(
        config.upstreams,
        [UpstreamConfig::new("listener0", [addr("127.0.0.1:8080")])]
    );
    assert_eq!(config.upstreams[0].policy, Policy::RoundRobin);
    assert_eq!(config.upstreams[0].health_check, None);
    assert_eq!(config.listeners[0].default_upstream, Some(0));
    assert!(config.listeners[0].routes.is_empty());

    // Implicit upstreams come after the [[upstream]] tables, in listener order.
    let toml = format!(
        "{}{}",
        app("backends = [\"127.0.0.1:1\"]"),
        MINIMAL.replace("8443", "8444")
    );
    let config = Config::from_toml_str(&toml).expect("both styles");
    assert_eq!(config.upstreams[1].name, "listener1");
    assert_eq!(config.listeners[1].default_upstream, Some(1));

    let both = MINIMAL.replace("backends", "upstream = \"app\"\nbackends");
    let (key, reason) = key_and_reason(&format!(
        "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:1\"]\n{both}"
    ));
    assert_eq!(key, "listener[0].backends");
    assert_eq!(
        reason,
        "cannot be given with upstream: name an [[upstream]] or list backends, not both"
    );

    let clash =
        format!("[[upstream]]\nname = \"listener0\"\nbackends = [\"127.0.0.1:1\"]\n{MINIMAL}");
    let (key, reason) = key_and_reason(&clash);
    assert_eq!(key, "listener[0].backends");
    assert_eq!(
        reason,
        "these backends make an implicit upstream named \"listener0\", which is already the \
         name of upstream[0]: rename upstream[0]"
    );

    let duplicate = MINIMAL.replace(
        "[\"127.0.0.1:8080\"]",
        "[\"127.0.0.1:8080\", \"127.0.0.1:8080\"]",
    );
    let (key, reason) = key_and_reason(&duplicate);
    assert_eq!(key, "listener[0].backends[1]");
    assert_eq!(reason, "127.0.0.1:8080 is already listener[0].backends[0]");
}

#[test]
fn upstream_without_primary_backends() {
    let (key, reason, at) = invalid(&app("policy = \"random\""));
    assert_eq!(key, "upstream[0].backends");
    assert_eq!(
        reason,
        "at least one backend is required (backends = [\"127.0.0.1:8080\"] or \
         [[upstream.backend]])"
    );
    assert_eq!(at.line_column, Some((1, 1)), "points at the [[upstream]]");

    let (key, _) = key_and_reason(&app("backends = []"));
    assert_eq!(key, "upstream[0].backends");

    let only_backups = app(
        "[[upstream.backend]]\naddress = \"127.0.0.1:1\"\nbackup = true\n\
         [[upstream.backend]]\naddress = \"127.0.0.1:2\"\nbackup = true",
    );
    let (key, reason) = key_and_reason(&only_backups);
    assert_eq!(key, "upstream[0].backend");
    assert_eq!(
        reason,
        "every backend is a backup (backup = true): at least one primary backend is required"
    );
    let one_primary = only_backups.replacen("backup = true", "backup = false", 1);
    Config::from_toml_str(&one_primary).expect("one primary");
}

#[test]
fn duplicate_backend_addresses() {
    let cases = [
        (
            r#"backends = ["127.0.0.1:1", "127.0.0.1:1"]"#,
            "upstream[0].backends[1]",
            "127.0.0.1:1 is already upstream[0].backends[0]",
        ),
        (
            "backends = [\"127.0.0.1:1\"]\n[[upstream.backend]]\naddress = \"127.0.0.1:1\"",
            "upstream[0].backend[0].address",
            "127.0.0.1:1 is already upstream[0].backends[0]",
        ),
        (
            "[[upstream.backend]]\naddress = \"[::1]:1\"\n\
             [[upstream.backend]]\naddress = \"[0::1]:1\"",
            "upstream[0].backend[1].address",
            "[::1]:1 is already upstream[0].backend[0].address",
        ),
    ];
    for (body, key, reason) in cases {
        assert_eq!(
            key_and_reason(&app(body)),
            (key.to_owned(), reason.to_owned()),
            "{body}"
        );
    }
    // The same address in two upstreams is fine.
    Config::from_toml_str(&format!(
        "[[upstream]]\nname = \"b\"\nbackends = [\"127.0.0.1:1\"]\n{}",
        app("backends = [\"127.0.0.1:1\"]")
    ))
    .expect("distinct upstreams");
}
