//! PROXY protocol: a listener's `proxy_protocol` (trusted networks, header timeout) and an
//! upstream's `send_proxy_protocol`: good values, defaults, bad values naming their key.

use std::time::Duration;

use super::*;

/// A listener with `line` (a `proxy_protocol = ...` key, or nothing) and an upstream with
/// `upstream_line`.
fn doc(line: &str, upstream_line: &str) -> String {
    format!(
        r#"
[[upstream]]
name = "app"
backends = ["127.0.0.1:8080"]
{upstream_line}

[[listener]]
address = "127.0.0.1:8443"
upstream = "app"
{line}
[[listener.certificate]]
cert = "a.pem"
key = "a.key"
"#
    )
}

fn network(text: &str) -> Network {
    text.parse().expect("network")
}

#[test]
fn inbound_settings_parse_with_their_defaults() {
    let config = Config::from_toml_str(&doc(
        r#"proxy_protocol = { trusted = ["10.0.0.0/8", "127.0.0.1/32", "::1/128", "192.0.2.1"], timeout = "750ms" }"#,
        "",
    ))
    .expect("valid");
    assert_eq!(
        config.listeners[0].proxy_protocol,
        Some(ProxyProtocolConfig {
            trusted: vec![
                network("10.0.0.0/8"),
                network("127.0.0.1/32"),
                network("::1/128"),
                network("192.0.2.1/32"),
            ],
            timeout: Duration::from_millis(750),
        })
    );
    // The table form, timeout by default.
    let config = Config::from_toml_str(&doc(
        "[listener.proxy_protocol]\ntrusted = [\"fd00::/8\"]\n",
        "",
    ))
    .expect("valid");
    let inbound = config.listeners[0].proxy_protocol.as_ref().expect("on");
    assert_eq!(inbound.timeout, Duration::from_secs(5));
    assert_eq!(inbound.trusted, [network("fd00::/8")]);
    // Off unless given.
    let plain = Config::from_toml_str(&doc("", "")).expect("valid");
    assert_eq!(plain.listeners[0].proxy_protocol, None);
    assert_eq!(plain.upstreams[0].send_proxy_protocol, None);
}

#[test]
fn outbound_versions_parse() {
    for (text, version) in [("v1", ProxyVersion::V1), ("v2", ProxyVersion::V2)] {
        let config = Config::from_toml_str(&doc("", &format!("send_proxy_protocol = {text:?}")))
            .expect("valid");
        assert_eq!(config.upstreams[0].send_proxy_protocol, Some(version));
    }
}

#[test]
fn bad_inbound_values_name_their_key() {
    let (key, reason) = key_and_reason(&doc(
        r#"proxy_protocol = { trusted = ["10.0.0.0/8", "10.0.0.1/8"] }"#,
        "",
    ));
    assert_eq!(key, "listener[0].proxy_protocol.trusted[1]");
    assert!(reason.contains("did you mean \"10.0.0.0/8\""), "{reason}");

    let (key, reason) = key_and_reason(&doc(
        r#"proxy_protocol = { trusted = ["lb.internal"] }"#,
        "",
    ));
    assert_eq!(key, "listener[0].proxy_protocol.trusted[0]");
    assert!(
        reason.contains("\"lb.internal\" is not an IP network"),
        "{reason}"
    );

    let (key, reason) = key_and_reason(&doc(
        r#"proxy_protocol = { trusted = ["127.0.0.1", "10.0.0.0/33"] }"#,
        "",
    ));
    assert_eq!(key, "listener[0].proxy_protocol.trusted[1]");
    assert!(reason.contains("more than 32 bits"), "{reason}");

    let (key, reason) = key_and_reason(&doc(r#"proxy_protocol = { trusted = [] }"#, ""));
    assert_eq!(key, "listener[0].proxy_protocol.trusted");
    assert!(
        reason.starts_with("must list at least one network"),
        "{reason}"
    );

    let (key, reason) = key_and_reason(&doc(r#"proxy_protocol = { timeout = "5s" }"#, ""));
    assert_eq!(key, "listener[0].proxy_protocol");
    assert!(reason.contains("trusted"), "{reason}");

    let (key, reason) = key_and_reason(&doc(
        r#"proxy_protocol = { trusted = ["::1"], timeout = "0s" }"#,
        "",
    ));
    assert_eq!(key, "listener[0].proxy_protocol.timeout");
    assert_eq!(reason, "must be greater than 0");

    let (key, reason) = key_and_reason(&doc(
        r#"proxy_protocol = { trusted = ["::1"], timeout = "soon" }"#,
        "",
    ));
    assert_eq!(key, "listener[0].proxy_protocol.timeout");
    assert!(reason.contains("is not a duration"), "{reason}");

    let (key, reason) = key_and_reason(&doc(
        r#"proxy_protocol = { trusted = ["::1"], version = "v2" }"#,
        "",
    ));
    assert!(key.starts_with("listener[0].proxy_protocol"), "{key}");
    assert!(reason.contains("unknown field"), "{reason}");

    let (key, _) = key_and_reason(&doc("proxy_protocol = true", ""));
    assert_eq!(key, "listener[0].proxy_protocol");
}

#[test]
fn bad_outbound_versions_name_their_key() {
    for bad in ["\"v3\"", "\"V1\"", "2", "true"] {
        let (key, reason) = key_and_reason(&doc("", &format!("send_proxy_protocol = {bad}")));
        assert_eq!(key, "upstream[0].send_proxy_protocol", "{bad}");
        if bad.starts_with('"') {
            assert!(reason.contains("expected \"v1\" or \"v2\""), "{reason}");
        }
    }
}

#[test]
fn settings_survive_the_way_back_to_toml() {
    let config = Config::from_toml_str(&doc(
        r#"proxy_protocol = { trusted = ["10.0.0.0/8", "::1"], timeout = "2s" }"#,
        "send_proxy_protocol = \"v1\"",
    ))
    .expect("valid");
    let text = config.to_toml_string().expect("toml");
    assert_eq!(Config::from_toml_str(&text).expect("again"), config);
}
