//! TLS on the real listener: SNI certificate choice, protocol versions, ALPN, resumption, and
//! garbage on the TLS port.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use rustls::HandshakeKind;

fn sni_proxy(b: &Backend) -> Proxy {
    Proxy::start_with(
        &[b.addr],
        ProxyOptions {
            certs: vec![
                ("default", vec!["localhost", "127.0.0.1"]),
                ("example", vec!["example.com", "www.example.com"]),
                ("wild", vec!["*.wild.test"]),
            ],
            ..ProxyOptions::default()
        },
    )
}

fn served_cert(c: &Client) -> Vec<u8> {
    c.tls.conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn sni_picks_the_matching_certificate() {
    let b = Backend::start("b");
    let proxy = sni_proxy(&b);
    let der = |i: usize| proxy.certs[i].der.to_vec();
    let cases = [
        (Some("example.com"), 1),
        (Some("www.example.com"), 1),
        (Some("a.wild.test"), 2),
        (Some("a.b.wild.test"), 0),
        (Some("unknown.test"), 0),
        (Some("localhost"), 0),
        (None, 0),
    ];
    for (sni, want) in cases {
        let mut c = Client::connect(proxy.addr, sni);
        assert_eq!(served_cert(&c), der(want), "SNI {sni:?}");
        assert_eq!(c.get("/").status, 200);
    }
}

#[test]
fn negotiates_http11_alpn_and_both_tls_versions() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut c = Client::connect_with(proxy.addr, Some("localhost"), client_config(&[version]));
        assert_eq!(c.tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(
            c.tls.conn.protocol_version(),
            Some(version.version),
            "{version:?}"
        );
        assert_eq!(c.get("/").status, 200);
    }
}

/// A TLS 1.1 ClientHello (no supported_versions extension), with TLS 1.1-era suites.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]);
    let mut hs = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

#[test]
fn tls11_is_refused() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&tls11_client_hello()).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    // An alert (or nothing), never a ServerHello.
    assert!(reply.is_empty() || reply[0] == 0x15, "reply: {reply:?}");
    if reply.len() >= 7 {
        assert_eq!(reply[5], 2, "fatal alert");
        assert!(
            reply[6] == 70 || reply[6] == 40,
            "protocol_version or handshake_failure"
        );
    }
    // The port keeps serving.
    assert_eq!(proxy.client().get("/").status, 200);
}

#[test]
fn garbage_and_truncated_hellos_are_closed_quickly() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let hello = tls11_client_hello();
    let inputs: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        vec![0xff; 300],
        hello[..20].to_vec(),
    ];
    for (i, input) in inputs.iter().enumerate() {
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(input).unwrap();
        if i == 2 {
            // A truncated hello then silence: closed at the handshake timeout at the latest.
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let start = std::time::Instant::now();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        assert!(start.elapsed() < Duration::from_secs(12), "input {i}");
        assert!(reply.is_empty() || reply[0] == 0x15, "input {i}: {reply:?}");
    }
    assert_eq!(proxy.client().get("/").status, 200);
    // Only the well-behaved request reached the backend.
    assert_eq!(b.received().len(), 1);
}

fn resumes(proxy: &Proxy, version: &'static rustls::SupportedProtocolVersion) {
    let config = client_config(&[version]);
    let mut first = Client::connect_with(proxy.addr, Some("localhost"), config.clone());
    assert_eq!(first.tls.conn.handshake_kind(), Some(HandshakeKind::Full));
    // Reading a response also processes the session tickets sent after the handshake.
    assert_eq!(first.get("/").status, 200);
    for _ in 0..6 {
        let mut again = Client::connect_with(proxy.addr, Some("localhost"), config.clone());
        assert_eq!(again.get("/").status, 200);
        assert_eq!(
            again.tls.conn.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{version:?}"
        );
    }
}

#[test]
fn sessions_resume_across_workers() {
    let b = Backend::start("b");
    let proxy = Proxy::start_with(
        &[b.addr],
        ProxyOptions {
            workers: 2,
            ..ProxyOptions::default()
        },
    );
    resumes(&proxy, &rustls::version::TLS13);
    resumes(&proxy, &rustls::version::TLS12);
}

#[test]
fn oversized_client_hellos_are_refused() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    // A record longer than TLS allows (2^14 + 2048 bytes of ciphertext at most).
    let mut too_long_record = vec![0x16, 0x03, 0x01, 0x48, 0x01];
    too_long_record.extend(std::iter::repeat_n(0u8, 0x4801));
    // A ClientHello that claims 1 MiB, sent as a stream of valid-sized records.
    let mut huge_hello = Vec::new();
    let mut first = vec![0x01, 0x10, 0x00, 0x00];
    first.extend(std::iter::repeat_n(0x41u8, 16380));
    huge_hello.extend_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00]);
    huge_hello.extend_from_slice(&first);
    for _ in 0..6 {
        huge_hello.extend_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00]);
        huge_hello.extend(std::iter::repeat_n(0x41u8, 0x4000));
    }
    for (name, input) in [
        ("record too long", too_long_record),
        ("1 MiB ClientHello", huge_hello),
    ] {
        let mut s = TcpStream::connect(proxy.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let start = std::time::Instant::now();
        let _ = s.write_all(&input);
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{name}: not closed quickly"
        );
        assert!(reply.is_empty() || reply[0] == 0x15, "{name}: {reply:?}");
    }
    assert_eq!(proxy.client().get("/").status, 200);
    assert_eq!(b.received().len(), 1);
}
