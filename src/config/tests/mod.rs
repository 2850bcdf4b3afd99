//! Tests of the configuration: parsing, defaults, validation errors (key, reason, position),
//! upstreams, certificate and ticket key checks, and `[admin]`. Shared documents and helpers live here.

use std::net::SocketAddr;

use super::*;

mod access_log;
mod admin;
mod certificates;
mod client_auth;
mod document;
mod edge;
mod errors;
mod names;
mod policies_checks_routes;
mod proxy_protocol;
mod ticket_keys;
mod upstreams;

const MINIMAL: &str = r#"
[[listener]]
address = "127.0.0.1:8443"
backends = ["127.0.0.1:8080"]
[[listener.certificate]]
cert = "a.pem"
key = "a.key"
"#;

/// MINIMAL with `extra` spliced in before the listener.
fn with(extra: &str) -> String {
    format!("{extra}\n{MINIMAL}")
}

fn invalid(toml: &str) -> (String, String, Location) {
    match Config::from_toml_str(toml) {
        Err(ConfigError::Invalid { key, reason, at }) => (key, reason, at),
        other => panic!("expected Invalid for\n{toml}\ngot {other:?}"),
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not an address: {e}"))
}

fn assert_one_line(error: &ConfigError) {
    let text = error.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
}

// -----------------------------------------------------------------------------------------
// Upstreams, backends, health checks, outlier ejection, routes

const LISTENER: &str = r#"
[[listener]]
address = "127.0.0.1:8443"
upstream = "app"
[[listener.certificate]]
cert = "a.pem"
key = "a.key"
"#;

/// An upstream named "app" with `body` (line 3 on), then a listener using it.
fn app(body: &str) -> String {
    format!("[[upstream]]\nname = \"app\"\n{body}\n{LISTENER}")
}

/// `app` with one backend and a `[upstream.health_check]` holding `body`.
fn check(body: &str) -> String {
    app(&format!(
        "backends = [\"127.0.0.1:9001\"]\n[upstream.health_check]\n{body}"
    ))
}

/// `app` with one backend and an `[upstream.outlier]` holding `body`.
fn outlier(body: &str) -> String {
    app(&format!(
        "backends = [\"127.0.0.1:9001\"]\n[upstream.outlier]\n{body}"
    ))
}

fn key_and_reason(toml: &str) -> (String, String) {
    let (key, reason, _) = invalid(toml);
    (key, reason)
}
