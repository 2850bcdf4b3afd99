//! Session tickets that outlive a process: a session resumes across a reload (the in-memory
//! ticketer survives it), across a restart and across two instances that read the same
//! `ticket_keys` file, and not with another file's keys; the keys are never logged. Real
//! ringway processes, a real rustls client with its own session cache.

mod common;

use std::sync::Arc;

use common::*;
use rustls::ClientConfig;
use rustls::HandshakeKind;

/// Two keys in the file's format (base64 of 48 bytes: a 16-byte name, a 32-byte AES key).
const KEYS: &str = "# test keys\n\
    AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\n\
    MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f\n";
/// A key no instance above holds.
const OTHER_KEYS: &str = "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6P\n";

/// How the next connection with `config` to `proxy` handshakes (after one request, which
/// also takes in the tickets sent after a TLS 1.3 handshake).
fn handshake(proxy: &Proxy, config: &Arc<ClientConfig>) -> Option<HandshakeKind> {
    let mut client = Client::connect_with(proxy.addr, Some("localhost"), config.clone());
    assert_eq!(client.get("/").status, 200);
    client.tls.conn.handshake_kind()
}

fn with_keys(backend: &Backend, file: &std::path::Path) -> Proxy {
    Proxy::start_with(
        &[backend.addr],
        ProxyOptions {
            extra: format!("ticket_keys = \"{}\"", file.display()),
            ..ProxyOptions::default()
        },
    )
}

#[test]
fn a_session_resumes_across_a_reload() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client_config(&[version]);
        assert_eq!(handshake(&proxy, &config), Some(HandshakeKind::Full));
        assert!(proxy.reload().contains("configuration reloaded"));
        assert_eq!(
            handshake(&proxy, &config),
            Some(HandshakeKind::Resumed),
            "{version:?}"
        );
    }
}

#[test]
fn a_shared_key_file_resumes_across_instances_and_restarts_and_keys_are_never_logged() {
    let b = Backend::start("b");
    let dir = temp_dir("tickets");
    let file = dir.join("ticket.keys");
    std::fs::write(&file, KEYS).unwrap();
    let first = with_keys(&b, &file);
    let second = with_keys(&b, &file);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client_config(&[version]);
        assert_eq!(handshake(&first, &config), Some(HandshakeKind::Full));
        assert_eq!(
            handshake(&second, &config),
            Some(HandshakeKind::Resumed),
            "another instance with the file: {version:?}"
        );
    }
    // A restart with the file.
    let config = client_config(&[&rustls::version::TLS13]);
    assert_eq!(handshake(&first, &config), Some(HandshakeKind::Full));
    let log = first.log();
    drop(first);
    let restarted = with_keys(&b, &file);
    assert_eq!(handshake(&restarted, &config), Some(HandshakeKind::Resumed));

    // Other keys, re-read by a reload: the old tickets no longer open.
    std::fs::write(&file, OTHER_KEYS).unwrap();
    let line = restarted.reload();
    assert!(line.contains("ticket keys re-read"), "{line}");
    assert_eq!(handshake(&restarted, &config), Some(HandshakeKind::Full));

    for text in [log, second.log(), restarted.log()] {
        for key in KEYS.lines().chain(OTHER_KEYS.lines()).skip(1) {
            assert!(
                !text.contains(&key[..16]),
                "key material in the log: {text}"
            );
        }
    }
}
