//! `[access_log]` and the listeners' and routes' `access_log` switches: defaults, what is
//! logged where, refused values naming the key, paths relative to the file, [`Config::check`]
//! checking the file without creating it, and the round trip through TOML.

use std::fs;
use std::path::{Path, PathBuf};

use super::certificates::{TempDir, certificate_dir};
use super::*;

/// A listener with two routes, each with `route_switches[i]` (a TOML line or nothing), the
/// listener with `listener_switch`, after `top` (before the first table).
fn switches(top: &str, listener_switch: &str, route_switches: [&str; 2]) -> String {
    format!(
        r#"{top}
[[upstream]]
name = "app"
backends = ["127.0.0.1:9001"]

[[listener]]
address = "127.0.0.1:8443"
upstream = "app"
{listener_switch}
[[listener.route]]
path_prefix = "/health"
upstream = "app"
{}
[[listener.route]]
path_prefix = "/api/"
upstream = "app"
{}
[[listener.certificate]]
cert = "a.pem"
key = "a.key"
"#,
        route_switches[0], route_switches[1]
    )
}

#[test]
fn the_access_log_is_off_by_default() {
    let config = Config::from_toml_str(MINIMAL).expect("minimal");
    assert_eq!(config.access_log, AccessLogConfig::default());
    assert_eq!(
        config.access_log,
        AccessLogConfig {
            enabled: false,
            format: AccessLogFormat::Json,
            path: None,
            buffer: DEFAULT_ACCESS_LOG_BUFFER,
        }
    );
    assert_eq!(DEFAULT_ACCESS_LOG_BUFFER, 256);
    assert_eq!(config.listeners[0].access_log, None);
    assert!(!config.access_log.logs(&config.listeners[0], None));
    assert_eq!(Config::default().access_log, AccessLogConfig::default());
    // An empty table is the defaults too.
    let config = Config::from_toml_str(&with("[access_log]")).expect("empty table");
    assert_eq!(config.access_log, AccessLogConfig::default());
}

#[test]
fn every_key_of_the_table() {
    let config = Config::from_toml_str(&with(
        "[access_log]\nenabled = true\nformat = \"combined\"\npath = \"logs/access.log\"\n\
         buffer = 64",
    ))
    .expect("access_log");
    assert_eq!(
        config.access_log,
        AccessLogConfig {
            enabled: true,
            format: AccessLogFormat::Combined,
            path: Some(PathBuf::from("logs/access.log")),
            buffer: 64,
        }
    );
    assert!(config.access_log.logs(&config.listeners[0], None));
    let config = Config::from_toml_str(&with("[access_log]\nenabled = true\nformat = \"json\""))
        .expect("json");
    assert_eq!(config.access_log.format, AccessLogFormat::Json);
    assert_eq!(config.access_log.path, None, "standard output");
}

#[test]
fn the_most_specific_switch_wins() {
    let config = Config::from_toml_str(&switches(
        "[access_log]\nenabled = true",
        "access_log = false",
        ["", "access_log = true"],
    ))
    .expect("switches");
    let listener = &config.listeners[0];
    assert_eq!(listener.access_log, Some(false));
    assert_eq!(listener.routes[0].access_log, None);
    assert_eq!(listener.routes[1].access_log, Some(true));
    let log = &config.access_log;
    assert!(!log.logs(listener, None), "the listener's own");
    assert!(
        !log.logs(listener, Some(&listener.routes[0])),
        "follows the listener"
    );
    assert!(
        log.logs(listener, Some(&listener.routes[1])),
        "the route's own"
    );

    let config = Config::from_toml_str(&switches(
        "[access_log]\nenabled = true",
        "",
        ["access_log = false", ""],
    ))
    .expect("switches");
    let listener = &config.listeners[0];
    let log = &config.access_log;
    assert!(log.logs(listener, None), "follows the table");
    assert!(!log.logs(listener, Some(&listener.routes[0])));
    assert!(log.logs(listener, Some(&listener.routes[1])));

    // Disabled, nothing is logged, and switching off is allowed (and changes nothing).
    let config = Config::from_toml_str(&switches(
        "",
        "access_log = false",
        ["access_log = false", ""],
    ))
    .expect("off");
    let listener = &config.listeners[0];
    for route in [None, Some(&listener.routes[0]), Some(&listener.routes[1])] {
        assert!(!config.access_log.logs(listener, route));
    }
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    let (key, reason, at) = invalid(&with("[access_log]\nformat = \"xml\""));
    assert_eq!(key, "access_log.format");
    assert_eq!(
        reason,
        "\"xml\" is not an access log format (expected \"json\" or \"combined\")"
    );
    assert_eq!(at.line_column, Some((2, 10)));

    for buffer in ["0", "16385"] {
        let (key, reason, at) = invalid(&with(&format!("[access_log]\nbuffer = {buffer}")));
        assert_eq!(key, "access_log.buffer");
        assert!(
            reason.starts_with("must be between 1 and 16384"),
            "{reason}"
        );
        assert_eq!(at.line_column, Some((2, 10)));
    }
    let config = Config::from_toml_str(&with("[access_log]\nbuffer = 16384")).expect("max");
    assert_eq!(config.access_log.buffer, MAX_ACCESS_LOG_BUFFER);

    let (key, reason, _) = invalid(&with("[access_log]\npath = \"\""));
    assert_eq!(key, "access_log.path");
    assert!(
        reason.contains("leave it out to log to standard output"),
        "{reason}"
    );

    for (toml, expected) in [
        ("[access_log]\nenabled = \"yes\"", "access_log.enabled"),
        ("[access_log]\nbuffer = -1", "access_log.buffer"),
        ("[access_log]\nfile = \"x.log\"", "access_log.file"),
        ("access_log = true", "access_log"),
    ] {
        let (key, _, _) = invalid(&with(toml));
        assert_eq!(key, expected, "{toml}");
    }
    let (key, _, _) = invalid(&switches("", "access_log = \"no\"", ["", ""]));
    assert_eq!(key, "listener[0].access_log");
}

#[test]
fn switching_on_where_the_log_is_off_is_refused() {
    let (key, reason, at) = invalid(&switches("", "access_log = true", ["", ""]));
    assert_eq!(key, "listener[0].access_log");
    assert!(
        reason.starts_with("true logs nothing while [access_log] is not enabled"),
        "{reason}"
    );
    assert_eq!(at.line_column, Some((9, 14)));
    let (key, _, _) = invalid(&switches(
        "[access_log]\nenabled = false",
        "",
        ["", "access_log = true"],
    ));
    assert_eq!(key, "listener[0].route[1].access_log");
    // Enabled, it is allowed (and is the default).
    Config::from_toml_str(&switches(
        "[access_log]\nenabled = true",
        "access_log = true",
        ["access_log = true", ""],
    ))
    .expect("enabled");

    // The same for a configuration built in code.
    let mut config = Config::from_toml_str(MINIMAL).expect("minimal");
    config.listeners[0].access_log = Some(true);
    let error = config.validate().expect_err("log off");
    assert_eq!(error.key(), Some("listener[0].access_log"));
    assert_one_line(&error);
    config.access_log.enabled = true;
    config.validate().expect("log on");
}

/// A directory with certificates and `ringway.toml` using them, with `access_log` (TOML
/// lines of the table).
fn config_file(dir: &TempDir, access_log: &str) -> PathBuf {
    let toml = format!(
        "[access_log]\n{access_log}\n\
         [[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:8080\"]\n\
         [[listener.certificate]]\ncert = \"good.pem\"\nkey = \"good.key\"\n"
    );
    let path = dir.0.join("ringway.toml");
    fs::write(&path, toml).expect("write config");
    path
}

#[test]
fn the_path_is_relative_to_the_config_file() {
    let dir = certificate_dir("access-log-relative");
    let path = config_file(&dir, "enabled = true\npath = \"logs/access.log\"");
    let config = Config::load(&path).expect("load");
    assert_eq!(config.access_log.path, Some(dir.0.join("logs/access.log")));
    let path = config_file(
        &dir,
        "enabled = true\npath = \"/var/log/ringway/access.log\"",
    );
    let config = Config::load(&path).expect("load");
    assert_eq!(
        config.access_log.path.as_deref(),
        Some(Path::new("/var/log/ringway/access.log"))
    );
}

#[test]
fn check_tries_the_file_without_creating_it() {
    let dir = certificate_dir("access-log-check");
    // A missing file in a writable directory.
    let path = config_file(&dir, "enabled = true\npath = \"access.log\"");
    let config = Config::load(&path).expect("load");
    config.check().expect("check");
    assert!(
        !dir.0.join("access.log").exists(),
        "check created the log file"
    );
    // An existing file is opened for appending and left as it was.
    fs::write(dir.0.join("access.log"), "kept\n").expect("write");
    config.check().expect("check an existing file");
    assert_eq!(
        fs::read_to_string(dir.0.join("access.log")).expect("read"),
        "kept\n"
    );
    // Standard output: nothing to check.
    let path = config_file(&dir, "enabled = true");
    Config::load(&path).expect("load").check().expect("stdout");

    // A directory that does not exist.
    let path = config_file(&dir, "enabled = true\npath = \"missing/access.log\"");
    let error = Config::load(&path)
        .expect("load")
        .check()
        .expect_err("no such directory");
    assert!(
        matches!(&error, ConfigError::AccessLog { key, .. } if key == "access_log.path"),
        "{error:?}"
    );
    assert_eq!(error.key(), Some("access_log.path"));
    assert_eq!(
        error.to_string(),
        format!(
            "access_log.path: {} does not exist and cannot be created: {}: No such file or \
             directory",
            dir.0.join("missing/access.log").display(),
            dir.0.join("missing").display()
        )
    );
    assert_one_line(&error);
    // A directory where the file should be.
    fs::create_dir(dir.0.join("adir")).expect("mkdir");
    let path = config_file(&dir, "enabled = true\npath = \"adir\"");
    let error = Config::load(&path)
        .expect("load")
        .check()
        .expect_err("a dir");
    assert_eq!(
        error.to_string(),
        format!(
            "access_log.path: {}: Is a directory",
            dir.0.join("adir").display()
        )
    );
    // Not enabled: the path is not looked at.
    let path = config_file(&dir, "enabled = false\npath = \"missing/access.log\"");
    Config::load(&path)
        .expect("load")
        .check()
        .expect("disabled");
}

#[test]
fn the_access_log_round_trips_through_toml() {
    let config = Config::from_toml_str(&switches(
        "[access_log]\nenabled = true\nformat = \"combined\"\npath = \"/var/log/ringway/a.log\"\n\
         buffer = 8",
        "access_log = false",
        ["access_log = true", ""],
    ))
    .expect("config");
    let text = config.to_toml_string().expect("serialize");
    let again = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("re-parse: {e}\n{text}"));
    assert_eq!(again, config, "{text}");
    assert!(text.contains("[access_log]"), "{text}");

    let config = Config::from_toml_str(MINIMAL).expect("minimal");
    let text = config.to_toml_string().expect("serialize");
    assert_eq!(Config::from_toml_str(&text).expect("re-parse"), config);
}

/// The README's `[access_log]` example parses, given the upstream it names.
#[test]
fn the_readme_example_parses() {
    let readme = include_str!("../../../README.md");
    let section = &readme[readme
        .find("### Access log: `[access_log]`")
        .expect("the Access log section")..];
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("a toml block");
    let doc = format!("[[upstream]]\nname = \"app\"\nbackends = [\"10.0.0.11:8080\"]\n{block}");
    let config = Config::from_toml_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
    assert!(config.access_log.enabled);
    let listener = &config.listeners[0];
    assert!(config.access_log.logs(listener, None));
    assert!(!config.access_log.logs(listener, Some(&listener.routes[0])));
}
