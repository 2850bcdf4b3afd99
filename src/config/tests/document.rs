//! The whole document: defaults, the README and example file, the round trip through TOML,
//! durations, `batch_wait` and `ring_buffers`.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::values::{format_duration, parse_duration};
use crate::route::HostPattern;

#[test]
fn defaults() {
    let config = Config::from_toml_str(MINIMAL).expect("minimal config");
    assert_eq!(config.workers, None);
    assert_eq!(config.ticket_keys, None);
    assert_eq!(
        config.timeouts,
        Timeouts {
            handshake: Duration::from_secs(10),
            request_head: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
            body: Duration::from_secs(60),
            connect: Duration::from_secs(3),
            response: Duration::from_secs(30),
            per_try: Duration::from_secs(10),
            drain: Duration::from_secs(30),
            tunnel: Duration::from_secs(3600),
        }
    );
    assert_eq!(
        config.limits,
        LimitsConfig {
            request_line: 8192,
            head: 32768,
            headers: 100,
            body: 0,
            trailer: 8192,
            connections_per_worker: 10000,
        }
    );
    assert_eq!(
        config.pool,
        PoolConfig {
            max_idle_per_backend: DEFAULT_MAX_IDLE_PER_BACKEND,
            idle_timeout: Duration::from_secs(30),
        }
    );
    assert_eq!(config.log.level, "info");
    let listener = &config.listeners[0];
    assert_eq!(listener.backlog, 4096);
    assert_eq!(
        listener.tls,
        TlsOptions {
            session_cache: 4096,
            tickets: true,
        }
    );
    assert_eq!(
        listener.certificates,
        [CertificateConfig {
            cert: "a.pem".into(),
            key: "a.key".into(),
            ocsp: None,
        }]
    );

    let default = Config::default();
    assert_eq!(default.timeouts, config.timeouts);
    assert_eq!(default.limits, config.limits);
    assert_eq!(default.pool, config.pool);
    assert_eq!(default.log, config.log);
    assert!(default.listeners.is_empty());
}

/// The README's config examples are valid: the full one alone, and the upstream examples
/// together with a listener that uses them.
#[test]
fn the_readme_examples_parse() {
    let readme = include_str!("../../../README.md");
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| &b[..b.find("```").expect("closed block")])
        .collect();
    assert!(blocks.len() >= 7, "{} toml blocks", blocks.len());
    let full = blocks
        .iter()
        .find(|b| b.contains("[timeouts]"))
        .expect("the full example");
    Config::from_toml_str(full).unwrap_or_else(|e| panic!("README full example: {e}"));
    let examples = &readme[readme.find("### Examples").expect("Examples section")..];
    let examples = &examples[..examples.find("### Validation").expect("Validation section")];
    let upstreams: Vec<&str> = examples
        .split("```toml\n")
        .skip(1)
        .map(|b| &b[..b.find("```").expect("closed block")])
        .filter(|b| !b.contains("[[listener]]"))
        .collect();
    let mut doc = upstreams.concat();
    for name in ["api-v1", "static"] {
        doc.push_str(&format!(
            "[[upstream]]\nname = \"{name}\"\nbackends = [\"10.0.9.9:80\"]\n"
        ));
    }
    let routes = examples
        .split("```toml\n")
        .skip(1)
        .map(|b| &b[..b.find("```").expect("closed block")])
        .find(|b| b.contains("[[listener.route]]"))
        .expect("the routes example");
    doc.push_str(routes);
    let config = Config::from_toml_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
    assert_eq!(config.listeners[0].routes.len(), 4);
}

fn example() -> Config {
    Config::from_toml_str(include_str!("../../../ringway.example.toml"))
        .unwrap_or_else(|e| panic!("ringway.example.toml: {e}"))
}

#[test]
fn the_example_file_parses_to_what_it_says() {
    let config = example();
    let defaults = Config::default();
    assert_eq!(config.workers, Some(2));
    assert_eq!(config.timeouts, defaults.timeouts);
    assert_eq!(config.limits, defaults.limits);
    assert_eq!(config.pool, defaults.pool);
    assert_eq!(config.log, defaults.log);
    assert_eq!(config.access_log, defaults.access_log);
    assert_eq!(
        config.upstreams,
        [
            UpstreamConfig {
                name: "app".into(),
                policy: Policy::WeightedRoundRobin,
                hash: None,
                slow_start: Duration::from_secs(30),
                backends: vec![
                    BackendConfig::new(addr("127.0.0.1:8080")),
                    BackendConfig::new(addr("127.0.0.1:8081")),
                    BackendConfig {
                        address: addr("127.0.0.1:8082").into(),
                        weight: 3,
                        max_connections: 100,
                        backup: false,
                    },
                    BackendConfig {
                        backup: true,
                        ..BackendConfig::new(addr("127.0.0.1:8090"))
                    },
                ],
                health_check: Some(HealthCheckConfig {
                    kind: CheckKind::Http {
                        method: "GET".into(),
                        path: "/healthz".into(),
                        host: Some("app.internal".into()),
                        expect_status: 200..=399,
                    },
                    ..HealthCheckConfig::default()
                }),
                outlier: OutlierConfig::default(),
                retries: RetryBudgetConfig::default(),
                hedge_after: None,
                send_proxy_protocol: None,
            },
            UpstreamConfig {
                name: "api".into(),
                policy: Policy::ConsistentHash,
                hash: Some(HashKey::Cookie("session".into())),
                slow_start: Duration::ZERO,
                backends: ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
                    .map(|a| BackendConfig::new(addr(a)))
                    .to_vec(),
                health_check: Some(HealthCheckConfig {
                    kind: CheckKind::Tcp,
                    interval: Duration::from_secs(2),
                    jitter: Duration::from_millis(500),
                    timeout: Duration::from_secs(1),
                    rise: 2,
                    fall: 3,
                }),
                outlier: OutlierConfig::default(),
                retries: RetryBudgetConfig::default(),
                hedge_after: None,
                send_proxy_protocol: None,
            },
            UpstreamConfig::new("listener1", [addr("[::1]:8080")]),
        ]
    );
    assert_eq!(
        config.listeners,
        [
            ListenerConfig {
                address: addr("0.0.0.0:8443"),
                backlog: 4096,
                certificates: vec![
                    CertificateConfig {
                        cert: "examples/example.com.pem".into(),
                        key: "examples/example.com.key".into(),
                        ocsp: None,
                    },
                    CertificateConfig {
                        cert: "examples/wildcard.example.net.pem".into(),
                        key: "examples/wildcard.example.net.key".into(),
                        ocsp: None,
                    },
                ],
                default_upstream: Some(0),
                routes: vec![
                    RouteConfig {
                        host: Some(HostPattern::Exact("api.example.com".into())),
                        path_prefix: None,
                        upstream: Some(1),
                        access_log: None,
                        ..RouteConfig::default()
                    },
                    RouteConfig {
                        host: Some(HostPattern::Wildcard(".example.net".into())),
                        path_prefix: Some("/v1/".into()),
                        upstream: Some(1),
                        access_log: None,
                        ..RouteConfig::default()
                    },
                ],
                tls: TlsOptions::default(),
                client_auth: None,
                access_log: None,
                upgrade: true,
                request_headers: Default::default(),
                response_headers: Default::default(),
                proxy_protocol: None,
                redirect_https: false,
                redirect_https_port: None,
            },
            ListenerConfig {
                address: addr("[::1]:9443"),
                backlog: 4096,
                certificates: vec![CertificateConfig {
                    cert: "examples/localhost.pem".into(),
                    key: "examples/localhost.pem".into(),
                    ocsp: None,
                }],
                default_upstream: Some(2),
                routes: Vec::new(),
                tls: TlsOptions::default(),
                client_auth: None,
                access_log: None,
                upgrade: true,
                request_headers: Default::default(),
                response_headers: Default::default(),
                proxy_protocol: None,
                redirect_https: false,
                redirect_https_port: None,
            },
        ]
    );
}

#[test]
fn every_value_round_trips_through_toml() {
    let config = Config::from_toml_str(
        r#"
workers = 7
batch_wait = "250us"
ticket_keys = "/etc/ringway/ticket.keys"
[timeouts]
handshake = "1500ms"
request_head = 250
keepalive = "1h30m"
body = "2m"
connect = "100ms"
response = "45s"
drain = "0s"
[limits]
request_line = 1024
head = 4096
headers = 16
body = 1048576
trailer = 512
connections_per_worker = 3
[pool]
max_idle_per_backend = 0
idle_timeout = "5s"
[log]
level = "warn,ringway::proxy=debug"
[[listener]]
address = "[::]:443"
backlog = 16
backends = ["10.0.0.1:80", "[fd00::2]:8080"]
[[listener.certificate]]
cert = "/etc/ringway/a.pem"
key = "/etc/ringway/a.key"
[[listener.certificate]]
cert = "b.pem"
key = "b.pem"
[listener.tls]
session_cache = 0
tickets = false
[[listener]]
address = "127.0.0.1:8443"
backends = ["127.0.0.1:1"]
[[listener.certificate]]
cert = "c.pem"
key = "c.key"
"#,
    )
    .expect("full config");
    assert_eq!(config.workers, Some(7));
    assert_eq!(config.batch_wait, Duration::from_micros(250));
    assert_eq!(
        config.ticket_keys.as_deref(),
        Some(Path::new("/etc/ringway/ticket.keys"))
    );
    assert_eq!(config.timeouts.handshake, Duration::from_millis(1500));
    assert_eq!(config.timeouts.request_head, Duration::from_millis(250));
    assert_eq!(config.timeouts.keepalive, Duration::from_secs(5400));
    assert_eq!(config.timeouts.drain, Duration::ZERO);
    assert_eq!(config.limits.body, 1 << 20);
    assert_eq!(config.pool.max_idle_per_backend, 0);
    assert_eq!(config.log.level, "warn,ringway::proxy=debug");
    assert_eq!(
        config.listeners[0].tls,
        TlsOptions {
            session_cache: 0,
            tickets: false
        }
    );
    assert_eq!(
        config.upstreams[0].backends[1],
        BackendConfig::new(addr("[fd00::2]:8080"))
    );
    assert_eq!(config.upstreams[0].name, "listener0");
    assert_eq!(config.upstreams[1].name, "listener1");
    assert_eq!(config.listeners[1].default_upstream, Some(1));

    for config in [config, example()] {
        let text = config.to_toml_string().expect("serialize");
        let again =
            Config::from_toml_str(&text).unwrap_or_else(|e| panic!("re-parse: {e}\n{text}"));
        assert_eq!(again, config, "{text}");
    }
}

#[test]
fn durations() {
    for (text, millis) in [
        ("500ms", 500),
        ("10s", 10_000),
        ("2m", 120_000),
        ("1h", 3_600_000),
        ("1h30m", 5_400_000),
        ("1m0s250ms", 60_250),
        ("0s", 0),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(millis)),
            "{text}"
        );
        assert_eq!(
            parse_duration(&format_duration(Duration::from_millis(millis))),
            Ok(Duration::from_millis(millis))
        );
    }
    for text in [
        "",
        "10",
        "s",
        "10x",
        "1.5s",
        " 10s",
        "10s ",
        "-1s",
        "99999999999999999999s",
    ] {
        assert!(parse_duration(text).is_err(), "{text:?}");
    }
    assert_eq!(format_duration(Duration::from_millis(90_000)), "90s");
    assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
    assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
    assert_eq!(parse_duration("1ms500us"), Ok(Duration::from_micros(1500)));
    assert_eq!(format_duration(Duration::from_micros(250)), "250us");
    assert_eq!(format_duration(Duration::from_micros(1500)), "1500us");
    assert_eq!(format_duration(Duration::from_micros(2000)), "2ms");
}

#[test]
fn batch_wait_has_a_default_can_be_off_and_is_bounded() {
    let config = Config::from_toml_str(&with("")).expect("minimal");
    assert_eq!(config.batch_wait, DEFAULT_BATCH_WAIT);
    let config = Config::from_toml_str(&with("batch_wait = \"0s\"")).expect("off");
    assert_eq!(config.batch_wait, Duration::ZERO);
    let config = Config::from_toml_str(&with("batch_wait = \"1ms\"")).expect("max");
    assert_eq!(config.batch_wait, MAX_BATCH_WAIT);
    let (key, reason, _) = invalid(&with("batch_wait = \"1001us\""));
    assert_eq!(key, "batch_wait");
    assert!(reason.contains("at most 1ms"), "{reason}");
}

#[test]
fn ring_buffers_default_to_the_load_and_are_bounded() {
    let config = Config::from_toml_str(&with("")).expect("minimal");
    assert_eq!(config.ring_buffers, None);
    let config = Config::from_toml_str(&with("ring_buffers = 4")).expect("tiny");
    assert_eq!(config.ring_buffers, Some(4));
    for bad in ["ring_buffers = 0", "ring_buffers = 32769"] {
        let (key, reason, _) = invalid(&with(bad));
        assert_eq!(key, "ring_buffers");
        assert!(reason.contains("between 1 and 32768"), "{reason}");
    }
}

#[test]
fn request_id_mode_parses_and_defaults_to_keep() {
    use crate::proxy::RequestIds;
    let base = "[[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:9000\"]\n\
                [[listener.certificate]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
    let parsed = |extra: &str| Config::from_toml_str(&format!("{extra}{base}"));
    assert_eq!(parsed("").unwrap().request_id, RequestIds::Keep);
    assert_eq!(
        parsed("request_id = \"replace\"\n").unwrap().request_id,
        RequestIds::Replace
    );
    assert_eq!(
        parsed("request_id = \"off\"\n").unwrap().request_id,
        RequestIds::Off
    );
    let err = parsed("request_id = \"maybe\"\n").unwrap_err().to_string();
    assert!(err.contains("request_id"), "{err}");
}
