//! `client_auth` (mutual TLS) and `ocsp` (stapling): parsing, defaults, paths relative to the
//! configuration file, and [`Config::check`] errors naming the key and the file.

use std::fs;
use std::path::PathBuf;

use super::certificates::{TempDir, certificate_dir};
use super::*;

/// A directory with `good.pem`/`good.key`, a CA (`ca.pem`), a DER OCSP blob (`good.ocsp`),
/// and `ringway.toml` made of the listener keys `listener` and the certificate table's extra
/// keys `certificate`.
fn config(dir: &TempDir, listener: &str, certificate: &str) -> PathBuf {
    let ca = crate::tls::self_signed(&["ca.test"]).expect("ca");
    fs::write(dir.0.join("ca.pem"), &ca.cert_pem).expect("write");
    fs::write(dir.0.join("good.ocsp"), [0x30, 0x03, 0x0a, 0x01, 0x00]).expect("write");
    let toml = format!(
        "[[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:8080\"]\n\
         {listener}\n[[listener.certificate]]\ncert = \"good.pem\"\nkey = \"good.key\"\n\
         {certificate}\n"
    );
    let path = dir.0.join("ringway.toml");
    fs::write(&path, toml).expect("write config");
    path
}

#[test]
fn client_auth_and_ocsp_load_relative_to_the_file_and_check() {
    let dir = certificate_dir("mtls-ok");
    for listener in [
        "client_auth = { ca = \"ca.pem\" }",
        "[listener.client_auth]\nca = \"ca.pem\"\nmode = \"require\"",
    ] {
        let path = config(&dir, listener, "ocsp = \"good.ocsp\"");
        let config = Config::load(&path).expect("load");
        let listener = &config.listeners[0];
        assert_eq!(
            listener.client_auth,
            Some(ClientAuthConfig {
                ca: dir.0.join("ca.pem"),
                mode: ClientAuthMode::Require,
                crl: None,
            }),
            "require is the default"
        );
        assert_eq!(listener.certificates[0].ocsp, Some(dir.0.join("good.ocsp")));
        config.check().expect("check");
        let keys = listener.load_certificates(0).expect("certificates");
        assert_eq!(
            keys[0].ocsp.as_deref(),
            Some(&[0x30, 0x03, 0x0a, 0x01, 0x00][..])
        );
        let (_, policy) = listener.tls_config(0, None).expect("tls");
        assert_eq!(policy.map(|p| p.mode()), Some(ClientAuthMode::Require));
        // Written back out and read again: the same configuration.
        let again = Config::from_toml_str(&config.to_toml_string().expect("toml")).expect("parse");
        assert_eq!(again, config);
    }

    let path = config(
        &dir,
        "client_auth = { ca = \"ca.pem\", mode = \"optional\" }",
        "",
    );
    let config = Config::load(&path).expect("load");
    let auth = config.listeners[0]
        .client_auth
        .as_ref()
        .expect("client_auth");
    assert_eq!(auth.mode, ClientAuthMode::Optional);
    assert_eq!(config.listeners[0].certificates[0].ocsp, None);
    config.check().expect("check");
    let (_, policy) = config.listeners[0].tls_config(0, None).expect("tls");
    assert_eq!(policy.map(|p| p.mode()), Some(ClientAuthMode::Optional));
    // No client_auth: no policy.
    let path = config_plain(&dir);
    let (_, policy) = Config::load(&path).expect("load").listeners[0]
        .tls_config(0, None)
        .expect("tls");
    assert_eq!(policy, None);
}

fn config_plain(dir: &TempDir) -> PathBuf {
    config(dir, "", "")
}

#[test]
fn bad_values_name_the_key() {
    for (listener, certificate, key, contains) in [
        (
            "client_auth = { ca = \"ca.pem\", mode = \"maybe\" }",
            "",
            "listener[0].client_auth.mode",
            "\"maybe\" is not a client_auth mode: use \"require\" or \"optional\"",
        ),
        (
            "client_auth = { mode = \"require\" }",
            "",
            "listener[0].client_auth",
            "missing field `ca`",
        ),
        (
            "client_auth = { ca = \"ca.pem\", cas = \"x\" }",
            "",
            "listener[0].client_auth.cas",
            "unknown field `cas`",
        ),
        (
            "client_auth = { ca = \"\" }",
            "",
            "listener[0].client_auth.ca",
            "must be a file path, not empty",
        ),
        (
            "client_auth = { ca = \"ca.pem\", crl = \"\" }",
            "",
            "listener[0].client_auth.crl",
            "must be a file path, not empty",
        ),
        (
            "",
            "ocsp = \"\"",
            "listener[0].certificate[0].ocsp",
            "must be a file path, not empty",
        ),
        (
            "",
            "ocsp = 7",
            "listener[0].certificate[0].ocsp",
            "invalid type",
        ),
    ] {
        let toml = format!(
            "[[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:8080\"]\n\
             {listener}\n[[listener.certificate]]\ncert = \"a.pem\"\nkey = \"a.key\"\n\
             {certificate}\n"
        );
        let error = Config::from_toml_str(&toml).expect_err(key);
        assert_one_line(&error);
        assert_eq!(error.key(), Some(key), "{error}");
        assert!(error.to_string().contains(contains), "{error}");
    }
}

#[test]
fn check_names_the_key_and_the_file() {
    let dir = certificate_dir("mtls-errors");
    fs::write(dir.0.join("empty.ocsp"), b"").expect("write");
    fs::write(
        dir.0.join("pem.ocsp"),
        b"-----BEGIN OCSP RESPONSE-----\nMAA=\n-----END OCSP RESPONSE-----\n",
    )
    .expect("write");
    fs::write(dir.0.join("garbage.crl"), b"not a crl").expect("write");
    fs::write(dir.0.join("bad.crl"), [0x30, 0x03, 0x02, 0x01, 0x01]).expect("write");
    let p = |name: &str| dir.0.join(name).display().to_string();
    for (listener, certificate, key, said) in [
        (
            "client_auth = { ca = \"good.key\" }",
            "",
            "listener[0].client_auth.ca",
            format!("{}: no certificate found", p("good.key")),
        ),
        (
            "client_auth = { ca = \"missing.pem\" }",
            "",
            "listener[0].client_auth.ca",
            format!("{}: No such file or directory", p("missing.pem")),
        ),
        (
            "client_auth = { ca = \"ca.pem\", crl = \"garbage.crl\" }",
            "",
            "listener[0].client_auth.crl",
            format!("{}: no CRL found", p("garbage.crl")),
        ),
        (
            "client_auth = { ca = \"ca.pem\", crl = \"bad.crl\" }",
            "",
            "listener[0].client_auth.crl",
            format!("{}: ", p("bad.crl")),
        ),
        (
            "",
            "ocsp = \"missing.ocsp\"",
            "listener[0].certificate[0].ocsp",
            format!("{}: No such file or directory", p("missing.ocsp")),
        ),
        (
            "",
            "ocsp = \"empty.ocsp\"",
            "listener[0].certificate[0].ocsp",
            format!("{}: the file is empty", p("empty.ocsp")),
        ),
        (
            "",
            "ocsp = \"pem.ocsp\"",
            "listener[0].certificate[0].ocsp",
            format!("{}: not a DER OCSP response", p("pem.ocsp")),
        ),
    ] {
        let path = config(&dir, listener, certificate);
        let config = Config::load(&path).expect("syntax is fine");
        let error = config.check().expect_err(key);
        assert!(
            matches!(error, ConfigError::Certificate { .. }),
            "{error:?}"
        );
        assert_one_line(&error);
        assert_eq!(error.key(), Some(key), "{error}");
        let text = error.to_string();
        assert!(text.starts_with(&format!("{key}: {said}")), "{text}");
    }
}

#[test]
fn client_auth_needs_certificates() {
    let toml = "[[listener]]\naddress = \"127.0.0.1:8080\"\nbackends = [\"127.0.0.1:9000\"]\n\
                client_auth = { ca = \"ca.pem\" }\n";
    let error = Config::from_toml_str(toml).expect_err("plain listener with client_auth");
    assert_one_line(&error);
    assert_eq!(error.key(), Some("listener[0].client_auth"), "{error}");
    assert!(
        error.to_string().contains("without certificates"),
        "{error}"
    );
}
