//! [`Config::check`] and [`Config::load`] with certificate files on disk.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::tls;

pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ringway-config-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A directory with a self-signed pair (`good.pem`/`good.key`), a second key
/// (`other.key`) and the config file, written with `listener` TOML.
pub(super) fn certificate_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    let good = tls::self_signed(&["a.test"]).expect("self-signed");
    let other = tls::self_signed(&["b.test"]).expect("self-signed");
    fs::write(dir.0.join("good.pem"), &good.cert_pem).expect("write");
    fs::write(dir.0.join("good.key"), &good.key_pem).expect("write");
    fs::write(dir.0.join("other.key"), &other.key_pem).expect("write");
    dir
}

fn config_with_certificates(dir: &TempDir, pairs: &[(&str, &str)]) -> PathBuf {
    let mut toml = String::from(
        "[[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:8080\"]\n",
    );
    for (cert, key) in pairs {
        toml.push_str(&format!(
            "[[listener.certificate]]\ncert = {cert:?}\nkey = {key:?}\n"
        ));
    }
    let path = dir.0.join("ringway.toml");
    fs::write(&path, toml).expect("write config");
    path
}

#[test]
fn check_loads_certificates_relative_to_the_config_file() {
    let dir = certificate_dir("check-ok");
    let path = config_with_certificates(&dir, &[("good.pem", "good.key")]);
    let config = Config::load(&path).expect("load");
    assert_eq!(
        config.listeners[0].certificates[0].cert,
        dir.0.join("good.pem")
    );
    config.check().expect("check");
    let server = config.listeners[0]
        .server_config(0, Some(tls::ticketer().expect("ticketer")))
        .expect("server config");
    assert!(server.ticketer.enabled());
}

#[test]
fn check_names_the_key_and_the_file() {
    let dir = certificate_dir("check-errors");
    let missing = dir.0.join("missing.pem");
    for (pair, key, contains) in [
        (
            ("missing.pem", "good.key"),
            "listener[0].certificate[1].cert",
            "No such file or directory",
        ),
        (
            ("good.pem", "missing.pem"),
            "listener[0].certificate[1].key",
            "No such file or directory",
        ),
        (
            ("good.pem", "good.pem"),
            "listener[0].certificate[1].key",
            "holds a certificate, not a private key",
        ),
        (
            ("good.pem", "other.key"),
            "listener[0].certificate[1].key",
            "does not match the certificate",
        ),
        (
            ("good.key", "good.key"),
            "listener[0].certificate[1].cert",
            "no certificate found",
        ),
    ] {
        let path = config_with_certificates(&dir, &[("good.pem", "good.key"), pair]);
        let config = Config::load(&path).expect("syntax is fine");
        let error = config.check().expect_err(key);
        assert!(
            matches!(error, ConfigError::Certificate { .. }),
            "{error:?}"
        );
        assert_eq!(error.key(), Some(key));
        assert_one_line(&error);
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("{key}: {}", dir.0.display())),
            "{text}"
        );
        assert!(text.contains(contains), "{text}");
    }
    let path = config_with_certificates(
        &dir,
        &[("good.pem", "good.key"), ("good.pem", "missing.pem")],
    );
    let error = Config::load(&path)
        .expect("load")
        .check()
        .expect_err("missing key");
    assert_eq!(
        error.to_string(),
        format!(
            "listener[0].certificate[1].key: {}: No such file or directory",
            missing.display()
        )
    );
}

#[test]
fn load_names_the_file() {
    let dir = TempDir::new("load");
    let missing = dir.0.join("nope.toml");
    let error = Config::load(&missing).expect_err("missing file");
    assert!(matches!(error, ConfigError::Read { .. }));
    assert_eq!(
        error.to_string(),
        format!("{}: No such file or directory", missing.display())
    );

    let path = dir.0.join("bad.toml");
    fs::write(&path, with("[timeouts]\nconnect = \"3x\"")).expect("write");
    let error = Config::load(&path).expect_err("bad duration");
    assert_one_line(&error);
    assert!(
        error
            .to_string()
            .ends_with(&format!("({}:2:11)", path.display())),
        "{error}"
    );
    assert_eq!(error.key(), Some("timeouts.connect"));
}
