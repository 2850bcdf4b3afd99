//! Refused documents: bad values, unknown and missing keys, limits, and validating a config
//! built in code.

use super::*;
use crate::route::Routed;

#[test]
fn bad_duration_names_the_key_and_the_line() {
    let toml = with("[timeouts]\nconnect = \"3 s\"");
    let (key, reason, at) = invalid(&toml);
    assert_eq!(key, "timeouts.connect");
    assert!(reason.contains("\"3 s\" is not a duration"), "{reason}");
    assert_eq!(at.line_column, Some((2, 11)));

    let (key, reason, _) = invalid(&with("[timeouts]\nbody = \"10min\""));
    assert_eq!(key, "timeouts.body");
    assert!(reason.contains("unknown unit"), "{reason}");

    let (key, reason, _) = invalid(&with("[pool]\nidle_timeout = -5"));
    assert_eq!(key, "pool.idle_timeout");
    assert!(reason.contains("negative"), "{reason}");

    let (key, reason, _) = invalid(&with("[timeouts]\nhandshake = true"));
    assert_eq!(key, "timeouts.handshake");
    assert!(reason.contains("a duration such as"), "{reason}");

    let (key, reason, _) = invalid(&with("[timeouts]\nhandshake = \"0ms\""));
    assert_eq!(key, "timeouts.handshake");
    assert_eq!(reason, "must be greater than 0");

    let (key, reason, _) = invalid(&with("[pool]\nidle_timeout = 0"));
    assert_eq!(key, "pool.idle_timeout");
    assert_eq!(reason, "must be greater than 0");
}

#[test]
fn bad_address_names_the_key() {
    let toml = r#"
[[listener]]
address = "127.0.0.1:8443"
backends = ["127.0.0.1:8080", "x:y"]
[[listener.certificate]]
cert = "a.pem"
key = "a.key"
"#;
    let error = Config::from_toml_str(toml).expect_err("bad backend");
    assert_one_line(&error);
    assert_eq!(
        error.to_string(),
        "listener[0].backends[1]: \"x:y\" is not an ip:port or host:port address: port \"y\" \
         is not a number from 1 to 65535 (line 4, column 31)"
    );

    let (key, reason, _) = invalid(&MINIMAL.replace("127.0.0.1:8443", "localhost:8443"));
    assert_eq!(key, "listener[0].address");
    assert_eq!(reason, "\"localhost:8443\" is not an ip:port address");

    let (key, _, _) = invalid(&MINIMAL.replace("127.0.0.1:8443", "::1:8443"));
    assert_eq!(key, "listener[0].address", "IPv6 needs brackets");

    let (key, _, _) = invalid(&MINIMAL.replace("127.0.0.1:8443", "127.0.0.1"));
    assert_eq!(key, "listener[0].address", "port required");

    let (key, reason, _) = invalid(&MINIMAL.replace("127.0.0.1:8080", "127.0.0.1:0"));
    assert_eq!(key, "listener[0].backends[0]");
    assert!(reason.contains("port 0"), "{reason}");

    let (key, reason, _) = invalid(&MINIMAL.replace("\"127.0.0.1:8080\"", "8080"));
    assert_eq!(key, "listener[0].backends[0]");
    assert!(reason.contains("ip:port"), "{reason}");
}

#[test]
fn unknown_keys_are_rejected_with_key_and_line() {
    let (key, reason, at) = invalid(&with("wrokers = 2"));
    assert_eq!(key, "wrokers");
    assert!(reason.starts_with("unknown field `wrokers`"), "{reason}");
    assert_eq!(at.line_column, Some((1, 1)));

    let (key, _, _) = invalid(&with("[timeouts]\nidle = \"5s\""));
    assert_eq!(key, "timeouts.idle");

    let (key, _, _) = invalid(&with("[logging]\nlevel = \"info\""));
    assert_eq!(key, "logging");

    let toml = format!("{MINIMAL}[[listener.certificate]]\ncert = \"b.pem\"\nkye = \"b.key\"\n");
    let error = Config::from_toml_str(&toml).expect_err("typo in second certificate");
    assert_one_line(&error);
    assert!(
        error.to_string().starts_with(
            "listener[0].certificate[1].kye: unknown field `kye`, expected one of `cert`, \
             `key`, `ocsp` (line 10, column 1)"
        ),
        "{error}"
    );

    let (key, _, _) = invalid(&format!(
        "{MINIMAL}tls = {{ session_cache = 1, ticket = true }}"
    ));
    assert_eq!(
        key, "listener[0].certificate[0].tls",
        "a key after a table header belongs to it"
    );

    let toml = MINIMAL.replace(
        "backends = [\"127.0.0.1:8080\"]",
        "backends = [\"127.0.0.1:8080\"]\ntls = { session_cache = 1, ticket = true }",
    );
    let (key, _, _) = invalid(&toml);
    assert_eq!(key, "listener[0].tls.ticket", "inline table");
}

#[test]
fn no_listener() {
    let (key, reason, _) = invalid(&MINIMAL.replace("[[listener]]", "[listener]"));
    assert_eq!(key, "listener");
    assert!(
        reason.ends_with("write each listener as [[listener]]"),
        "{reason}"
    );

    for toml in ["", "workers = 1", "listener = []"] {
        let (key, reason, _) = invalid(toml);
        assert_eq!(key, "listener", "{toml:?}");
        assert_eq!(reason, "at least one [[listener]] is required");
    }
}

#[test]
fn no_backends() {
    let (key, reason, at) = invalid(&MINIMAL.replace("backends = [\"127.0.0.1:8080\"]", ""));
    assert_eq!(key, "listener[0].backends");
    assert!(
        reason.starts_with("at least one backend is required"),
        "{reason}"
    );
    assert_eq!(at.line_column, Some((2, 1)), "points at the [[listener]]");

    let (key, reason, at) = invalid(&MINIMAL.replace("[\"127.0.0.1:8080\"]", "[]"));
    assert_eq!(key, "listener[0].backends");
    assert!(
        reason.starts_with("at least one backend is required"),
        "{reason}"
    );
    assert_eq!(at.line_column, Some((4, 12)), "points at the empty array");
}

#[test]
fn missing_required_keys() {
    let toml = "[[listener]]\nbackends = [\"127.0.0.1:8080\"]\n";
    let (key, reason, _) = invalid(toml);
    assert_eq!(key, "listener[0]");
    assert!(reason.contains("missing field `address`"), "{reason}");

    // Without a certificate a listener serves plain HTTP.
    let toml = "[[listener]]\naddress = \"127.0.0.1:1\"\nbackends = [\"127.0.0.1:8080\"]\n";
    let config = Config::from_toml_str(toml).expect("a plain-HTTP listener");
    assert!(config.listeners[0].is_plain());

    let (key, reason, _) = invalid(&MINIMAL.replace("key = \"a.key\"", ""));
    assert_eq!(key, "listener[0].certificate[0]");
    assert!(reason.contains("missing field `key`"), "{reason}");

    let (key, _, _) = invalid(&MINIMAL.replace("\"a.key\"", "\"\""));
    assert_eq!(key, "listener[0].certificate[0].key");
}

#[test]
fn zero_and_inconsistent_limits() {
    for key in [
        "request_line",
        "head",
        "headers",
        "trailer",
        "connections_per_worker",
    ] {
        let (got, reason, _) = invalid(&with(&format!("[limits]\n{key} = 0")));
        assert_eq!(got, format!("limits.{key}"));
        assert_eq!(reason, "must be at least 1");
    }
    let config = Config::from_toml_str(&with("[limits]\nbody = 0")).expect("body 0");
    assert_eq!(config.limits.body, 0, "0 = unlimited");

    let (key, reason, _) = invalid(&with("workers = 0"));
    assert_eq!(key, "workers");
    assert!(reason.starts_with("must be at least 1"), "{reason}");

    let (key, _, _) = invalid(&MINIMAL.replace("backends", "backlog = 0\nbackends"));
    assert_eq!(key, "listener[0].backlog");

    let (key, reason, _) = invalid(&with("[limits]\nrequest_line = 9000\nhead = 8192"));
    assert_eq!(key, "limits.head");
    assert!(
        reason.contains("smaller than limits.request_line"),
        "{reason}"
    );

    let (key, reason, _) = invalid(&with("[limits]\nheaders = -1"));
    assert_eq!(key, "limits.headers");
    assert!(reason.contains("-1"), "{reason}");

    let (key, _, _) = invalid(&with("[limits]\nhead = \"32k\""));
    assert_eq!(key, "limits.head", "sizes are integers");
}

#[test]
fn validate_a_config_built_in_code() {
    // As `ringway run --listen ... --cert ... --key ... --backend ...` builds it.
    let mut config = Config {
        workers: Some(1),
        upstreams: vec![UpstreamConfig::new("listener0", [addr("127.0.0.1:8080")])],
        listeners: vec![ListenerConfig {
            address: addr("127.0.0.1:8443"),
            certificates: vec![CertificateConfig {
                cert: "a.pem".into(),
                key: "a.key".into(),
                ocsp: None,
            }],
            default_upstream: Some(0),
            ..ListenerConfig::default()
        }],
        ..Config::default()
    };
    config.validate().expect("valid");
    assert_eq!(
        config,
        Config::from_toml_str(&with("workers = 1")).expect("same as TOML")
    );

    config.upstreams[0].backends.clear();
    let error = config.validate().expect_err("no backend");
    assert_eq!(error.key(), Some("upstream[0].backends"));
    assert_eq!(
        error.to_string(),
        "upstream[0].backends: at least one backend is required \
         (backends = [\"127.0.0.1:8080\"] or [[upstream.backend]])",
        "no position for a config built in code"
    );
    let error = config.check().expect_err("check validates first");
    assert_eq!(error.key(), Some("upstream[0].backends"));

    config.upstreams[0] = UpstreamConfig::new("app", [addr("127.0.0.1:8080")]);
    config.upstreams[0].backends[0].weight = 0;
    assert_eq!(
        config.validate().expect_err("weight").key(),
        Some("upstream[0].backend[0].weight"),
        "a config built in code names backends by position"
    );
    config.upstreams[0].backends[0].weight = 1;
    config.listeners[0].default_upstream = Some(1);
    let error = config.validate().expect_err("index");
    assert_eq!(
        error.to_string(),
        "listener[0].upstream: upstream index 1 is out of range: there are 1 upstreams"
    );
    config.listeners[0].default_upstream = None;
    config.listeners[0].routes = vec![RouteConfig {
        host: None,
        path_prefix: None,
        upstream: Some(7),
        access_log: None,
        ..RouteConfig::default()
    }];
    assert_eq!(
        config.validate().expect_err("route index").key(),
        Some("listener[0].route[0].upstream")
    );
    config.listeners[0].routes[0].upstream = Some(0);
    config.validate().expect("a route alone is enough");
    assert_eq!(
        config.listeners[0].router().route(b"x", b"/", None),
        Routed::Upstream {
            upstream: 0,
            route: Some(0)
        }
    );
    config.upstreams[0].hash = Some(HashKey::Header("X-User".into()));
    config.upstreams[0].policy = Policy::ConsistentHash;
    assert_eq!(
        config.validate().expect_err("uppercase header").to_string(),
        "upstream[0].hash: header name \"X-User\" must be a lowercase token"
    );
    config.upstreams[0].hash = None;
    assert_eq!(
        config.validate().expect_err("no hash").key(),
        Some("upstream[0].hash")
    );

    config.listeners.clear();
    assert_eq!(config.validate().expect_err("none").key(), Some("listener"));

    let listener = ListenerConfig::default();
    assert_eq!(listener.address, "0.0.0.0:8443".parse().expect("addr"));
    assert_eq!(listener.backlog, 4096);
    assert_eq!(listener.tls, TlsOptions::default());
    assert_eq!(
        listener.validate(3).expect_err("empty").key(),
        Some("listener[3].backends")
    );
}

#[test]
fn the_per_try_timeout_is_read_as_try_and_bounded_by_the_response_timeout() {
    let config = Config::from_toml_str(&with("[timeouts]\ntry = \"1500ms\"")).expect("try");
    assert_eq!(config.timeouts.per_try, Duration::from_millis(1500));
    let (key, reason, location) = invalid(&with("[timeouts]\nresponse = \"2s\"\ntry = \"3s\""));
    assert_eq!(key, "timeouts.try");
    assert!(
        reason.contains("longer than timeouts.response (2s)"),
        "{reason}"
    );
    assert!(location.line_column.is_some(), "{location:?}");
    // Unset, it follows a shorter response timeout.
    let config = Config::from_toml_str(&with("[timeouts]\nresponse = \"700ms\"")).expect("700ms");
    assert_eq!(config.timeouts.per_try, Duration::from_millis(700));
    let (key, reason, _) = invalid(&with("[timeouts]\ntry = \"0s\""));
    assert_eq!(
        (key.as_str(), reason.as_str()),
        ("timeouts.try", "must be greater than 0")
    );
}

#[test]
fn the_tunnel_timeout_and_the_upgrade_switches() {
    let config = Config::from_toml_str(MINIMAL).expect("minimal");
    assert_eq!(config.timeouts.tunnel, Duration::from_secs(3600));
    assert!(config.listeners[0].upgrade, "upgrades are on by default");
    let config = Config::from_toml_str(&with("[timeouts]\ntunnel = \"90s\"")).expect("90s");
    assert_eq!(config.timeouts.tunnel, Duration::from_secs(90));
    let (key, reason, _) = invalid(&with("[timeouts]\ntunnel = \"0s\""));
    assert_eq!(
        (key.as_str(), reason.as_str()),
        ("timeouts.tunnel", "must be greater than 0")
    );
    let (key, _, at) = invalid(&with("[timeouts]\ntunnel = \"soon\""));
    assert_eq!(key, "timeouts.tunnel");
    assert_eq!(at.line_column, Some((2, 10)));

    let switched = |listener: &str, route: &str| {
        format!(
            "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:8080\"]\n\
             [[listener]]\naddress = \"127.0.0.1:8443\"\nupstream = \"app\"\n{listener}\n\
             [[listener.route]]\npath_prefix = \"/ws/\"\nupstream = \"app\"\n{route}\n\
             [[listener.route]]\npath_prefix = \"/api/\"\nupstream = \"app\"\n\
             [[listener.certificate]]\ncert = \"a.pem\"\nkey = \"a.key\"\n"
        )
    };
    let config =
        Config::from_toml_str(&switched("upgrade = false", "upgrade = true")).expect("switches");
    let listener = &config.listeners[0];
    assert!(!listener.upgrade);
    assert_eq!(listener.routes[0].upgrade, Some(true));
    assert_eq!(listener.routes[1].upgrade, None);
    // They survive a round trip through TOML.
    let again = Config::from_toml_str(&config.to_toml_string().expect("to toml")).expect("parses");
    assert!(!again.listeners[0].upgrade);
    assert_eq!(again.listeners[0].routes[0].upgrade, Some(true));
    assert_eq!(again.timeouts.tunnel, config.timeouts.tunnel);

    for (doc, expected) in [
        (switched("upgrade = \"no\"", ""), "listener[0].upgrade"),
        (switched("", "upgrade = 0"), "listener[0].route[0].upgrade"),
        (switched("websocket = false", ""), "listener[0].websocket"),
    ] {
        let (key, _, _) = invalid(&doc);
        assert_eq!(key, expected, "{doc}");
    }
}

#[test]
fn the_readme_websocket_example_parses() {
    let readme = include_str!("../../../README.md");
    let section = &readme[readme
        .find("### WebSocket and other upgrades")
        .expect("the WebSocket section")..];
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("its example");
    let config = Config::from_toml_str(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
    assert_eq!(config.timeouts.tunnel, Duration::from_secs(3600));
    assert!(!config.listeners[0].upgrade);
    assert_eq!(config.listeners[0].routes[0].upgrade, Some(true));
}
