//! `ticket_keys = "FILE"`: the path as written and resolved, and [`Config::check`] reading the
//! file (a missing file, a bad line named with its file and line, and no key bytes shown).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::certificates::{TempDir, certificate_dir};
use super::*;
use crate::tls::TlsError;

/// A key line: the base64 of 48 bytes, as `openssl rand -base64 48` prints it.
fn key_line(byte: u8) -> String {
    STANDARD.encode([byte; 48])
}

/// A directory with certificates and `ringway.toml` using them, with `ticket_keys` (as
/// written, if given).
fn config_file(dir: &TempDir, ticket_keys: Option<&str>) -> PathBuf {
    let mut toml = String::new();
    if let Some(file) = ticket_keys {
        toml.push_str(&format!("ticket_keys = {file:?}\n"));
    }
    toml.push_str(
        "[[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:8080\"]\n\
         [[listener.certificate]]\ncert = \"good.pem\"\nkey = \"good.key\"\n",
    );
    let path = dir.0.join("ringway.toml");
    fs::write(&path, toml).expect("write config");
    path
}

#[test]
fn ticket_keys_is_optional_and_kept_as_written() {
    assert_eq!(
        Config::from_toml_str(MINIMAL).expect("minimal").ticket_keys,
        None
    );
    let config = Config::from_toml_str(&with("ticket_keys = \"keys/ticket.keys\"")).expect("ok");
    assert_eq!(
        config.ticket_keys.as_deref(),
        Some(Path::new("keys/ticket.keys"))
    );
    let (key, reason, at) = invalid(&with("ticket_keys = \"\""));
    assert_eq!(key, "ticket_keys");
    assert!(reason.contains("must be a file path"), "{reason}");
    assert_eq!(at.line_column, Some((1, 15)));
    let (key, _, _) = invalid(&with("ticket_keys = 3"));
    assert_eq!(key, "ticket_keys");
}

#[test]
fn check_reads_a_valid_file_relative_to_the_config_file() {
    let dir = certificate_dir("ticket-keys-ok");
    fs::write(
        dir.0.join("ticket.keys"),
        format!("# newest first\n{}\n{}\n", key_line(1), key_line(2)),
    )
    .expect("write keys");
    let path = config_file(&dir, Some("ticket.keys"));
    let config = Config::load(&path).expect("load");
    assert_eq!(config.ticket_keys, Some(dir.0.join("ticket.keys")));
    config.check().expect("check");
    let ticketer = config
        .load_ticket_keys()
        .expect("load keys")
        .expect("configured");
    assert_eq!(ticketer.key_count(), 2);
    let ticketer: Arc<dyn rustls::server::ProducesTickets> = ticketer;
    let server = config.listeners[0]
        .server_config(0, Some(ticketer))
        .expect("server config");
    assert!(server.ticketer.enabled());

    // Absolute paths stay as written; no file, no ticketer.
    let absolute = dir.0.join("ticket.keys");
    let path = config_file(&dir, Some(&absolute.display().to_string()));
    assert_eq!(
        Config::load(&path).expect("load").ticket_keys,
        Some(absolute)
    );
    let path = config_file(&dir, None);
    let config = Config::load(&path).expect("load");
    config.check().expect("check without keys");
    assert!(
        config
            .load_ticket_keys()
            .expect("nothing to load")
            .is_none()
    );
}

#[test]
fn check_names_a_missing_file() {
    let dir = certificate_dir("ticket-keys-missing");
    let path = config_file(&dir, Some("missing.keys"));
    let error = Config::load(&path)
        .expect("syntax is fine")
        .check()
        .expect_err("missing file");
    assert!(
        matches!(
            error,
            ConfigError::Tls {
                source: TlsError::TicketKeys(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.key(), Some("ticket_keys"));
    assert_one_line(&error);
    assert_eq!(
        error.to_string(),
        format!(
            "ticket_keys: {}: No such file or directory",
            dir.0.join("missing.keys").display()
        )
    );
}

#[test]
fn check_names_the_file_and_line_of_a_bad_key_and_shows_no_key_bytes() {
    let dir = certificate_dir("ticket-keys-bad");
    let keys = dir.0.join("ticket.keys");
    let good = key_line(0x5a);
    let short = STANDARD.encode([0x3c; 40]);
    let mut garbled = key_line(0x7e);
    garbled.replace_range(20..21, "*");
    let path = config_file(&dir, Some("ticket.keys"));
    for (text, expected) in [
        (
            format!("# keys\n{good}\n\n{short}\n"),
            format!("{}:4: the key is 40 bytes, expected 48", keys.display()),
        ),
        (
            format!("{good}\n{garbled}\n"),
            format!("{}:2: not base64", keys.display()),
        ),
        (
            format!("{good}\n{good}\n"),
            format!("{}:2: duplicate key name", keys.display()),
        ),
        (
            "# no key yet\n".to_owned(),
            format!("{}: no ticket key", keys.display()),
        ),
    ] {
        fs::write(&keys, &text).expect("write keys");
        let error = Config::load(&path)
            .expect("syntax is fine")
            .check()
            .expect_err(&expected);
        assert_eq!(error.key(), Some("ticket_keys"));
        assert_one_line(&error);
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("ticket_keys: {expected}")),
            "{shown:?} should start with {expected:?}"
        );
        let debug = format!("{error:?}");
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            // Any 8 characters of a key line would be part of a key.
            let chars: Vec<char> = line.chars().collect();
            for run in chars.windows(8) {
                let run: String = run.iter().collect();
                assert!(!shown.contains(&run), "{run:?} of a key in {shown}");
                assert!(!debug.contains(&run), "{run:?} of a key in {debug}");
            }
        }
    }
}
