//! The configuration loader's invariants ([`check_config`]): a document is accepted only with
//! the invariants the config module doc lists, refused with a one-line error that names the key
//! or the syntax error, and written back out it parses to the same value.

use std::collections::HashSet;

use crate::config::{
    Config, ConfigError, MAX_ACCESS_LOG_BUFFER, MAX_BATCH_WAIT, MAX_CONFIGURED_RING_BUFFERS, Policy,
};

/// The configuration loader ([`Config::from_toml_str`], then [`Config::validate`]; never
/// [`Config::check`], which reads certificate files). Input: a TOML document (bytes that are
/// not UTF-8 are replaced). Checks:
/// - no panic;
/// - an error is a document error ([`ConfigError::Syntax`] or [`ConfigError::Invalid`]) whose
///   `Display` is one non-empty line naming the key (or saying the TOML is invalid) and why,
///   at a line and column inside the document;
/// - an accepted document gives a `Config` that [`Config::validate`] accepts, twice, and that
///   has every invariant of the module doc (checked here independently of `validate`);
/// - written back out ([`Config::to_toml_string`]) it parses to the same `Config`.
pub fn check_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Config::from_toml_str(&text) {
        Err(error) => check_config_error(&text, &error),
        Ok(config) => {
            let first = config.validate().map_err(|e| e.to_string());
            let second = config.validate().map_err(|e| e.to_string());
            assert_eq!(first, second, "validating twice differs");
            if let Err(error) = first {
                panic!("from_toml_str accepted what validate refuses: {error}");
            }
            check_config_invariants(&config);
            let written = config
                .to_toml_string()
                .unwrap_or_else(|e| panic!("an accepted config cannot be written: {e}"));
            match Config::from_toml_str(&written) {
                Ok(again) => assert!(
                    again == config,
                    "written out, it reads back otherwise:\n{written}"
                ),
                Err(error) => panic!("written out, it does not parse: {error}\n{written}"),
            }
        }
    }
}

/// A refused document: a one-line error about the document, naming the key or the syntax
/// error, pointing inside the document.
fn check_config_error(text: &str, error: &ConfigError) {
    let shown = error.to_string();
    assert!(!shown.trim().is_empty(), "an empty error: {error:?}");
    assert!(
        !shown.contains(['\n', '\r']),
        "an error of more than one line: {shown:?}"
    );
    let at = match error {
        ConfigError::Syntax { message, at } => {
            assert!(
                !message.trim().is_empty(),
                "a syntax error without a message: {shown:?}"
            );
            at
        }
        ConfigError::Invalid { key, reason, at } => {
            assert!(!key.is_empty(), "an error naming no key: {shown:?}");
            assert!(
                !reason.trim().is_empty(),
                "an error without a reason: {shown:?}"
            );
            assert!(
                shown.starts_with(key.as_str()),
                "the error does not start with its key: {shown:?}"
            );
            assert_eq!(error.key(), Some(key.as_str()));
            at
        }
        other => panic!("from_toml_str touched a file: {other}"),
    };
    assert!(at.file.is_none(), "a file named for a string: {shown:?}");
    if let Some((line, column)) = at.line_column {
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(
            (1..=lines.len()).contains(&line),
            "line {line} of a {}-line document: {shown:?}",
            lines.len()
        );
        let width = lines[line - 1].chars().count();
        assert!(
            (1..=width + 1).contains(&column),
            "column {column} of a {width}-character line: {shown:?}"
        );
    }
}

/// The invariants the config module doc lists for an accepted `Config`.
fn check_config_invariants(config: &Config) {
    assert!(config.workers != Some(0), "workers = 0");
    assert!(config.batch_wait <= MAX_BATCH_WAIT, "batch_wait too long");
    if let Some(ring_buffers) = config.ring_buffers {
        assert!((1..=MAX_CONFIGURED_RING_BUFFERS).contains(&ring_buffers));
    }
    let t = &config.timeouts;
    for (key, value) in [
        ("handshake", t.handshake),
        ("request_head", t.request_head),
        ("keepalive", t.keepalive),
        ("body", t.body),
        ("connect", t.connect),
        ("response", t.response),
    ] {
        assert!(!value.is_zero(), "timeouts.{key} = 0");
    }
    let l = &config.limits;
    for (key, value) in [
        ("request_line", l.request_line),
        ("head", l.head),
        ("headers", l.headers),
        ("trailer", l.trailer),
        ("connections_per_worker", l.connections_per_worker),
    ] {
        assert!(value >= 1, "limits.{key} = 0");
    }
    assert!(
        l.head >= l.request_line,
        "limits.head < limits.request_line"
    );
    let access_log = &config.access_log;
    assert!(
        (1..=MAX_ACCESS_LOG_BUFFER).contains(&access_log.buffer),
        "access_log.buffer = {}",
        access_log.buffer
    );
    assert!(
        access_log
            .path
            .as_ref()
            .is_none_or(|path| !path.as_os_str().is_empty()),
        "an empty access_log.path"
    );

    let mut names = HashSet::new();
    for upstream in &config.upstreams {
        let name = &upstream.name;
        assert!(!name.is_empty(), "an upstream without a name");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)),
            "upstream name {name:?}"
        );
        assert!(names.insert(name.as_str()), "two upstreams named {name:?}");
        assert!(
            upstream.backends.iter().any(|b| !b.backup),
            "upstream {name:?} has only backups"
        );
        let mut addresses = HashSet::new();
        for backend in &upstream.backends {
            assert!(backend.address.port() != 0, "backend port 0 in {name:?}");
            assert!(
                addresses.insert(backend.address.clone()),
                "backend listed twice in {name:?}"
            );
            assert!(
                (1..=1000).contains(&backend.weight),
                "weight {}",
                backend.weight
            );
        }
        assert_eq!(
            upstream.hash.is_some(),
            upstream.policy == Policy::ConsistentHash,
            "hash key and policy of {name:?}"
        );
        if let Some(check) = &upstream.health_check {
            assert!(!check.timeout.is_zero() && check.timeout < check.interval);
            assert!(check.jitter <= check.interval);
            assert!(check.rise >= 1 && check.fall >= 1);
        }
        let o = &upstream.outlier;
        assert!(!o.base_ejection.is_zero() && o.base_ejection <= o.max_ejection);
        assert!(o.max_ejected_percent <= 100);
    }

    if let Some(admin) = &config.admin {
        if let Some(token) = &admin.token {
            assert!(token.chars().count() >= 16, "a short admin token");
            assert!(
                crate::admin::check_token(token).is_ok(),
                "admin token {token:?}"
            );
        }
        for listener in &config.listeners {
            let (a, l) = (admin.address, listener.address);
            assert!(
                a.port() == 0
                    || a.port() != l.port()
                    || (a.ip() != l.ip() && !a.ip().is_unspecified() && !l.ip().is_unspecified()),
                "admin address {a} on listener {l}"
            );
        }
    }

    assert!(!config.listeners.is_empty(), "no listener");
    let mut addresses = HashSet::new();
    for listener in &config.listeners {
        assert!(
            addresses.insert(listener.address),
            "two listeners on {}",
            listener.address
        );
        assert!(
            !listener.certificates.is_empty(),
            "a listener without a certificate"
        );
        assert!(listener.default_upstream.is_some() || !listener.routes.is_empty());
        if let Some(upstream) = listener.default_upstream {
            assert!(
                upstream < config.upstreams.len(),
                "upstream index out of range"
            );
        }
        assert!(
            access_log.enabled || listener.access_log != Some(true),
            "a listener logs while the access log is off"
        );
        for route in &listener.routes {
            assert!(
                route
                    .upstream
                    .map_or(route.respond.is_some(), |u| u < config.upstreams.len()),
                "route upstream out of range, or neither upstream nor response"
            );
            assert!(
                access_log.enabled || route.access_log != Some(true),
                "a route logs while the access log is off"
            );
            if let Some(prefix) = &route.path_prefix {
                assert!(prefix.starts_with('/'), "path prefix {prefix:?}");
            }
        }
        // The router is built from these as they are.
        let _ = listener.router();
    }
}
