//! Policies and hash keys, health checks, outlier ejection, routes, and the remaining
//! listener, log and syntax checks.

use super::*;
use crate::route::HostPattern;

#[test]
fn policies_and_hash_keys() {
    for policy in Policy::ALL {
        assert_eq!(policy.to_string().parse::<Policy>(), Ok(policy));
        let body = format!("policy = \"{policy}\"\nbackends = [\"127.0.0.1:1\"]");
        let config = Config::from_toml_str(&app(&body)).expect("policy");
        assert_eq!(config.upstreams[0].policy, policy);
    }
    assert_eq!(
        "least_connections".parse::<Policy>(),
        Ok(Policy::LeastConnections)
    );
    assert!(!Policy::RoundRobin.uses_weights());
    assert!(Policy::ALL[1..].iter().all(|policy| policy.uses_weights()));

    let (key, reason, at) = invalid(&app("policy = \"leastconn\"\nbackends = [\"127.0.0.1:1\"]"));
    assert_eq!(key, "upstream[0].policy");
    assert_eq!(
        reason,
        "unknown balancing policy \"leastconn\": expected one of round_robin, \
         weighted_round_robin, random, least_connections, peak_ewma, consistent_hash"
    );
    assert_eq!(at.line_column, Some((3, 10)));

    for (text, key) in [
        ("client_ip", HashKey::ClientIp),
        ("header:X-User", HashKey::Header("x-user".into())),
        ("cookie:Session_ID", HashKey::Cookie("Session_ID".into())),
    ] {
        assert_eq!(text.parse::<HashKey>(), Ok(key.clone()), "{text}");
        assert_eq!(key.to_string().parse::<HashKey>(), Ok(key));
    }
    assert_eq!(
        HashKey::Header("x-user".into()).to_string(),
        "header:x-user"
    );

    let hashed = |hash: &str| {
        app(&format!(
            "policy = \"consistent_hash\"\nhash = {hash:?}\nbackends = [\"127.0.0.1:1\"]"
        ))
    };
    for (hash, reason) in [
        (
            "ip",
            "\"ip\" is not a hash key (expected \"client_ip\", \"header:<name>\" or \
             \"cookie:<name>\")",
        ),
        (
            "header:",
            "\"header:\": \"\" is not a valid header name (letters, digits and \
             !#$%&'*+-.^_`|~)",
        ),
        (
            "header:X User",
            "\"header:X User\": \"X User\" is not a valid header name (letters, digits and \
             !#$%&'*+-.^_`|~)",
        ),
        (
            "cookie:a=b",
            "\"cookie:a=b\": \"a=b\" is not a valid cookie name (letters, digits and \
             !#$%&'*+-.^_`|~)",
        ),
        (
            "Header:x",
            "\"Header:x\" is not a hash key (expected \"client_ip\", \"header:<name>\" or \
             \"cookie:<name>\")",
        ),
    ] {
        let (key, got, at) = invalid(&hashed(hash));
        assert_eq!(key, "upstream[0].hash", "{hash}");
        assert_eq!(got, reason, "{hash}");
        assert_eq!(at.line_column, Some((4, 8)), "{hash}");
    }

    let (key, reason) = key_and_reason(&app(
        "policy = \"random\"\nhash = \"client_ip\"\nbackends = [\"127.0.0.1:1\"]",
    ));
    assert_eq!(key, "upstream[0].hash");
    assert_eq!(
        reason,
        "is only used with policy = \"consistent_hash\", not \"random\""
    );
    let (key, _) = key_and_reason(&app("hash = \"client_ip\"\nbackends = [\"127.0.0.1:1\"]"));
    assert_eq!(key, "upstream[0].hash", "round_robin is the default policy");
}

#[test]
fn health_check_timings() {
    let cases = [
        (
            "interval = \"0s\"",
            "upstream[0].health_check.interval",
            "must be greater than 0",
        ),
        (
            "timeout = 0",
            "upstream[0].health_check.timeout",
            "must be greater than 0",
        ),
        (
            "interval = \"5s\"\ntimeout = \"5s\"",
            "upstream[0].health_check.timeout",
            "5s must be shorter than interval (5s)",
        ),
        (
            "interval = \"1s\"",
            "upstream[0].health_check.timeout",
            "2s must be shorter than interval (1s)",
        ),
        (
            "jitter = \"6s\"",
            "upstream[0].health_check.jitter",
            "6s must not exceed interval (5s)",
        ),
        (
            "rise = 0",
            "upstream[0].health_check.rise",
            "must be at least 1",
        ),
        (
            "fall = 0",
            "upstream[0].health_check.fall",
            "must be at least 1",
        ),
    ];
    for (body, key, reason) in cases {
        assert_eq!(
            key_and_reason(&check(body)),
            (key.to_owned(), reason.to_owned()),
            "{body}"
        );
    }
    let (_, _, at) = invalid(&check("rise = 0"));
    assert_eq!(at.line_column, Some((5, 8)), "points at the value");
    let (_, _, at) = invalid(&check("interval = \"1s\""));
    assert_eq!(
        at.line_column,
        Some((4, 1)),
        "a default not written points at the section"
    );
    Config::from_toml_str(&check(
        "interval = \"5s\"\njitter = \"5s\"\ntimeout = \"4999ms\"",
    ))
    .expect("edges are fine");
    Config::from_toml_str(&check("jitter = 0")).expect("no jitter");
}

#[test]
fn http_check_fields() {
    let cases = [
        (
            "method = \"GE T\"",
            "upstream[0].health_check.method",
            "\"GE T\" is not an HTTP method (a token such as \"GET\")",
        ),
        (
            "method = \"\"",
            "upstream[0].health_check.method",
            "\"\" is not an HTTP method (a token such as \"GET\")",
        ),
        (
            "path = \"health\"",
            "upstream[0].health_check.path",
            "\"health\" must start with '/'",
        ),
        (
            "path = \"/a b\"",
            "upstream[0].health_check.path",
            "\"/a b\" may only hold visible ASCII characters (no spaces)",
        ),
        (
            "host = \"a b\"",
            "upstream[0].health_check.host",
            "\"a b\" is not a host name or address, with an optional port",
        ),
        (
            "host = \"\"",
            "upstream[0].health_check.host",
            "\"\" is not a host name or address, with an optional port",
        ),
        (
            "expect_status = \"399-200\"",
            "upstream[0].health_check.expect_status",
            "\"399-200\" is not a status or range of statuses within 100-599 (low-high)",
        ),
        (
            "expect_status = \"200-600\"",
            "upstream[0].health_check.expect_status",
            "\"200-600\" is not a status or range of statuses within 100-599 (low-high)",
        ),
        (
            "expect_status = 99",
            "upstream[0].health_check.expect_status",
            "\"99\" is not a status or range of statuses within 100-599 (low-high)",
        ),
        (
            "expect_status = \"2xx\"",
            "upstream[0].health_check.expect_status",
            "\"2xx\" is not a status or range of statuses such as \"200\" or \"200-399\"",
        ),
        (
            "expect_status = \"200-\"",
            "upstream[0].health_check.expect_status",
            "\"200-\" is not a status or range of statuses such as \"200\" or \"200-399\"",
        ),
        (
            "expect_status = 70000",
            "upstream[0].health_check.expect_status",
            "70000 is not an HTTP status",
        ),
        (
            "type = \"udp\"",
            "upstream[0].health_check.type",
            "unknown variant `udp`, expected `http` or `tcp`",
        ),
        (
            "type = \"tcp\"\npath = \"/\"",
            "upstream[0].health_check.path",
            "is only used with type = \"http\"",
        ),
        (
            "type = \"tcp\"\nexpect_status = \"200\"",
            "upstream[0].health_check.expect_status",
            "is only used with type = \"http\"",
        ),
        (
            "paht = \"/\"",
            "upstream[0].health_check.paht",
            "unknown field `paht`, expected one of `type`, `interval`, `jitter`, `timeout`, \
             `rise`, `fall`, `method`, `path`, `host`, `expect_status`",
        ),
    ];
    for (body, key, reason) in cases {
        assert_eq!(
            key_and_reason(&check(body)),
            (key.to_owned(), reason.to_owned()),
            "{body}"
        );
    }
    let config = Config::from_toml_str(&check(
        "expect_status = \"100-599\"\nhost = \"[fd00::1]:8080\"\nmethod = \"OPTIONS\"",
    ))
    .expect("edges");
    assert!(matches!(
        &config.upstreams[0].health_check.as_ref().map(|c| &c.kind),
        Some(CheckKind::Http { expect_status, host: Some(host), .. })
            if *expect_status == (100..=599) && host == "[fd00::1]:8080"
    ));
}

#[test]
fn outlier_ejection_times() {
    let (key, reason) = key_and_reason(&outlier("max_ejection = \"5s\""));
    assert_eq!(key, "upstream[0].outlier.max_ejection");
    assert_eq!(reason, "5s is shorter than base_ejection (10s)");
    let (key, reason) = key_and_reason(&outlier("base_ejection = \"0s\""));
    assert_eq!(key, "upstream[0].outlier.base_ejection");
    assert_eq!(reason, "must be greater than 0");
    let (key, reason) = key_and_reason(&outlier("base_ejection = \"10m\""));
    assert_eq!(
        (key.as_str(), reason.as_str()),
        (
            "upstream[0].outlier.max_ejection",
            "5m is shorter than base_ejection (10m)"
        )
    );
    let (key, _) = key_and_reason(&outlier("consecutive_failures = -1"));
    assert_eq!(key, "upstream[0].outlier.consecutive_failures");
    let config = Config::from_toml_str(&outlier(
        "consecutive_failures = 0\nconsecutive_5xx = 0\nbase_ejection = \"1m\"\nmax_ejection = \"1m\"",
    ))
    .expect("off, equal times");
    assert_eq!(config.upstreams[0].outlier.consecutive_failures, 0);
}

#[test]
fn max_ejected_percent_is_a_share_up_to_100() {
    let config = Config::from_toml_str(&outlier("")).expect("default");
    assert_eq!(config.upstreams[0].outlier.max_ejected_percent, 50);
    for ok in [0, 100] {
        let config = Config::from_toml_str(&outlier(&format!("max_ejected_percent = {ok}")))
            .expect("in range");
        assert_eq!(config.upstreams[0].outlier.max_ejected_percent, ok);
    }
    let (key, reason) = key_and_reason(&outlier("max_ejected_percent = 101"));
    assert_eq!(
        (key.as_str(), reason.as_str()),
        (
            "upstream[0].outlier.max_ejected_percent",
            "must be at most 100"
        )
    );
    let (key, _) = key_and_reason(&outlier("max_ejected_percent = -1"));
    assert_eq!(key, "upstream[0].outlier.max_ejected_percent");
}

#[test]
fn route_keys() {
    let routed = |route: &str| {
        format!(
            "{}[[listener.route]]\n{route}\nupstream = \"app\"\n",
            app("backends = [\"127.0.0.1:1\"]")
        )
    };
    let cases = [
        (
            "path_prefix = \"api/\"",
            "listener[0].route[0].path_prefix",
            "\"api/\" must start with '/'",
        ),
        (
            "path_prefix = \"\"",
            "listener[0].route[0].path_prefix",
            "\"\" must start with '/'",
        ),
        (
            "path_prefix = \"/a b\"",
            "listener[0].route[0].path_prefix",
            "\"/a b\" may only hold visible ASCII characters (no spaces)",
        ),
        (
            "host = \"example.com:443\"",
            "listener[0].route[0].host",
            "\"example.com:443\" has a port: routes match the host name only",
        ),
        (
            "host = \"a.*.com\"",
            "listener[0].route[0].host",
            "\"a.*.com\": '*' is only allowed as a whole first label before a domain, as in \
             \"*.example.com\"",
        ),
        (
            "host = \"\"",
            "listener[0].route[0].host",
            "a host name must not be empty",
        ),
        (
            "hots = \"a.com\"",
            "listener[0].route[0].hots",
            "unknown field `hots`, expected one of `host`, `path_prefix`, `upstream`, \
             `respond`, `access_log`, `upgrade`, `request_headers`, `response_headers`",
        ),
    ];
    for (route, key, reason) in cases {
        assert_eq!(
            key_and_reason(&routed(route)),
            (key.to_owned(), reason.to_owned()),
            "{route}"
        );
    }
    let (_, _, at) = invalid(&routed("host = \"a..com\""));
    assert_eq!(at.line_column, Some((12, 8)), "points at the host value");
    let config = Config::from_toml_str(&routed("host = \"*.Example.com.\"")).expect("wildcard");
    assert_eq!(
        config.listeners[0].routes[0].host,
        Some(HostPattern::Wildcard(".example.com".into()))
    );
    Config::from_toml_str(&routed("")).expect("a route matching everything is allowed");
}

#[test]
fn unknown_keys_in_upstream_sections() {
    let (key, reason) = key_and_reason(&app("backends = [\"127.0.0.1:1\"]\nweight = 2"));
    assert_eq!(key, "upstream[0].weight");
    assert!(reason.starts_with("unknown field `weight`"), "{reason}");
    let (key, _) = key_and_reason(&app(
        "[[upstream.backend]]\naddress = \"127.0.0.1:1\"\nweigth = 2",
    ));
    assert_eq!(key, "upstream[0].backend[0].weigth");
    let (key, _) = key_and_reason(&outlier("consecutive_500 = 1"));
    assert_eq!(key, "upstream[0].outlier.consecutive_500");
    let (key, reason) = key_and_reason(&app("[[upstream.backend]]\nweight = 2"));
    assert_eq!(key, "upstream[0].backend[0]");
    assert!(reason.contains("missing field `address`"), "{reason}");
}

#[test]
fn duplicate_listener_addresses() {
    let (key, reason, _) = invalid(&format!("{MINIMAL}{MINIMAL}"));
    assert_eq!(key, "listener[1].address");
    assert!(reason.contains("listener[0]"), "{reason}");
}

#[test]
fn log_levels() {
    for level in [
        "info",
        "DEBUG",
        "warn,ringway::proxy=debug",
        "ringway",
        "off",
    ] {
        Config::from_toml_str(&with(&format!("[log]\nlevel = {level:?}")))
            .unwrap_or_else(|e| panic!("{level}: {e}"));
    }
    for level in ["", "info,", "ringway=loud"] {
        let (key, _, _) = invalid(&with(&format!("[log]\nlevel = {level:?}")));
        assert_eq!(key, "log.level", "{level:?}");
    }
}

#[test]
fn not_toml_is_a_syntax_error() {
    let error = Config::from_toml_str("workers = \n").expect_err("no value");
    assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
    assert_one_line(&error);
    assert!(error.to_string().contains("(line 1, column"), "{error}");
    let error = Config::from_toml_str("[[listener]\n").expect_err("bad header");
    assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
}
