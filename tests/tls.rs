//! TLS on the real listener: SNI certificate choice, protocol versions, ALPN, resumption,
//! garbage on the TLS port, and what must be refused (TLS 1.1 and older, weak cipher suites,
//! renegotiation).
//!
//! The refusals are tested with hellos built by hand ([`Hello`]), because a rustls client cannot
//! offer an old version or a weak suite, and with records the test encrypts itself after a
//! rustls handshake ([`RawSession`]), because no rustls client renegotiates.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundPlainMessage,
};
use rustls::{
    ConnectionTrafficSecrets, ContentType, HandshakeKind, ProtocolVersion, StreamOwned,
    SupportedCipherSuite,
};

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

// ---------------------------------------------------------------------------------------------
// Hand-built ClientHellos: old protocol versions and weak cipher suites

/// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: forward secret, AEAD, and usable with the test
/// certificates, which are ECDSA P-256 (`ringway::tls::self_signed`).
const STRONG_SUITE: u16 = 0xc02b;

/// TLS 1.2 suites ringway must never choose: each lacks forward secrecy, an AEAD, or both.
const WEAK_SUITES: [u16; 5] = [
    0x002f, // TLS_RSA_WITH_AES_128_CBC_SHA: static RSA key exchange, CBC
    0x000a, // TLS_RSA_WITH_3DES_EDE_CBC_SHA: static RSA, 3DES (Sweet32)
    0x0005, // TLS_RSA_WITH_RC4_128_SHA: static RSA, RC4 (RFC 7465 forbids it)
    0xc013, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: forward secret, but CBC + HMAC-SHA1
    0x009c, // TLS_RSA_WITH_AES_128_GCM_SHA256: AEAD, but static RSA (not forward secret)
];

/// A ClientHello written byte by byte, so a test can offer what no rustls client would.
///
/// It carries the extensions a real TLS 1.2 client sends: server_name (`localhost`),
/// supported_groups (x25519, secp256r1), ec_point_formats (uncompressed) and
/// signature_algorithms (ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256), plus supported_versions
/// when asked.
struct Hello<'a> {
    /// The record layer's version (real clients send 0x0301 in their first record).
    record_version: u16,
    /// `ClientHello.client_version` (`legacy_version` in TLS 1.3 terms).
    client_version: u16,
    suites: &'a [u16],
    /// The supported_versions extension (RFC 8446 §4.2.1), absent when `None`.
    supported_versions: Option<&'a [u16]>,
}

impl<'a> Hello<'a> {
    /// A TLS 1.2 hello offering `suites`, without supported_versions.
    fn tls12(suites: &'a [u16]) -> Self {
        Hello {
            record_version: 0x0301,
            client_version: 0x0303,
            suites,
            supported_versions: None,
        }
    }

    /// The handshake message: type 1, 24-bit length, body (RFC 5246 §7.4.1.2).
    fn handshake_message(&self) -> Vec<u8> {
        fn ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
            out.extend(kind.to_be_bytes());
            out.extend((data.len() as u16).to_be_bytes());
            out.extend(data);
        }
        fn list16(items: &[u16]) -> Vec<u8> {
            let mut out = ((items.len() * 2) as u16).to_be_bytes().to_vec();
            items.iter().for_each(|item| out.extend(item.to_be_bytes()));
            out
        }
        let name = b"localhost";
        let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        sni.push(0); // host_name
        sni.extend((name.len() as u16).to_be_bytes());
        sni.extend(name);

        let mut extensions = Vec::new();
        ext(&mut extensions, 0x0000, &sni);
        ext(&mut extensions, 0x000a, &list16(&[0x001d, 0x0017]));
        ext(&mut extensions, 0x000b, &[1, 0]);
        ext(&mut extensions, 0x000d, &list16(&[0x0403, 0x0804]));
        if let Some(versions) = self.supported_versions {
            let mut data = vec![(versions.len() * 2) as u8];
            versions.iter().for_each(|v| data.extend(v.to_be_bytes()));
            ext(&mut extensions, 0x002b, &data);
        }

        let mut body = self.client_version.to_be_bytes().to_vec();
        body.extend([0x42; 32]); // random
        body.push(0); // no session id
        body.extend(list16(self.suites));
        body.extend([1, 0]); // null compression only
        body.extend((extensions.len() as u16).to_be_bytes());
        body.extend(extensions);

        let mut message = vec![0x01];
        message.extend(&(body.len() as u32).to_be_bytes()[1..]);
        message.extend(body);
        message
    }

    /// The hello in one plaintext handshake record.
    fn record(&self) -> Vec<u8> {
        let message = self.handshake_message();
        let mut record = vec![0x16];
        record.extend(self.record_version.to_be_bytes());
        record.extend((message.len() as u16).to_be_bytes());
        record.extend(message);
        record
    }
}

/// Sends `hello` on a fresh connection and reads until the server closes it.
fn refused_reply(addr: SocketAddr, hello: &[u8]) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let start = Instant::now();
    s.write_all(hello).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    (reply, start.elapsed())
}

/// The reply to a refused hello is exactly one fatal alert with description `alert`, never a
/// handshake record (so never a ServerHello), and the server closes at once.
fn assert_refused(what: &str, (reply, elapsed): (Vec<u8>, Duration), alert: u8) {
    assert!(
        elapsed < Duration::from_secs(4),
        "{what}: not closed at once ({elapsed:?})"
    );
    // Content type 21 (alert), record version TLS 1.2, length 2, level 2 (fatal).
    assert_eq!(reply, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, alert], "{what}");
}

/// Sends `hello` on a fresh connection and returns the server's first record, which must hold
/// a ServerHello: its (server_version, cipher_suite).
fn server_hello_choice(addr: SocketAddr, hello: &[u8]) -> (u16, u16) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(hello).unwrap();
    let mut header = [0u8; 5];
    s.read_exact(&mut header).expect("a record");
    assert_eq!(header[0], 0x16, "a handshake record: {header:?}");
    let mut body = vec![0; usize::from(u16::from_be_bytes([header[3], header[4]]))];
    s.read_exact(&mut body).expect("the record's body");
    // Handshake header: type (2 = ServerHello) and a 24-bit length.
    assert_eq!(body[0], 2, "ServerHello");
    // server_version (2), random (32), session_id (length-prefixed), cipher_suite (2).
    let version = u16::from_be_bytes([body[4], body[5]]);
    let at = 4 + 2 + 32 + 1 + usize::from(body[38]);
    (version, u16::from_be_bytes([body[at], body[at + 1]]))
}

#[test]
fn tls10_and_ssl3_are_refused() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let suites = [STRONG_SUITE, 0xc013, 0x002f];
    // The control: the same hello, offered as TLS 1.2, is accepted. So each refusal below is
    // about the version alone.
    assert_eq!(
        server_hello_choice(proxy.addr, &Hello::tls12(&suites).record()),
        (0x0303, STRONG_SUITE)
    );
    let cases = [
        ("TLS 1.0", 0x0301, 0x0301, None),
        ("SSL 3.0", 0x0300, 0x0300, None),
        // A client that lists versions in supported_versions, but only old ones.
        (
            "TLS 1.1 and 1.0 in supported_versions",
            0x0301,
            0x0303,
            Some(&[0x0302, 0x0301][..]),
        ),
    ];
    for (what, record_version, client_version, supported_versions) in cases {
        let hello = Hello {
            record_version,
            client_version,
            suites: &suites,
            supported_versions,
        };
        // A fatal protocol_version (70), as RFC 5246 §E.1 asks.
        assert_refused(what, refused_reply(proxy.addr, &hello.record()), 70);
    }
    // The port keeps serving, and nothing reached the backend before this request.
    assert_eq!(proxy.client().get("/").status, 200);
    assert_eq!(b.received().len(), 1);
}

#[test]
fn tls12_with_only_weak_suites_is_refused() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut with_strong = WEAK_SUITES.to_vec();
    with_strong.push(STRONG_SUITE);
    for supported_versions in [None, Some(&[0x0303_u16][..])] {
        let hello = |suites: &[u16]| {
            Hello {
                supported_versions,
                ..Hello::tls12(suites)
            }
            .record()
        };
        // Only weak suites: a fatal handshake_failure (40), no ServerHello.
        let what = format!("weak suites only, supported_versions {supported_versions:?}");
        assert_refused(&what, refused_reply(proxy.addr, &hello(&WEAK_SUITES)), 40);
        for suite in WEAK_SUITES {
            let what = format!("{suite:#06x} alone, supported_versions {supported_versions:?}");
            assert_refused(&what, refused_reply(proxy.addr, &hello(&[suite])), 40);
        }
        // The same hello with one strong suite last: that suite is chosen. So the hello is
        // well formed and the refusal above is about the suites.
        assert_eq!(
            server_hello_choice(proxy.addr, &hello(&with_strong)),
            (0x0303, STRONG_SUITE),
            "supported_versions {supported_versions:?}"
        );
    }
    assert_eq!(proxy.client().get("/").status, 200);
    assert_eq!(b.received().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Renegotiation
//
// rustls implements no renegotiation (rustls 0.23, src/manual/tlsvulns.rs, "Renegotiation"):
// - a server never sends HelloRequest (the server code has no such message);
// - in TLS 1.2, a ClientHello after the handshake is answered with a *warning* alert
//   no_renegotiation (100) and the session goes on with its keys
//   (`CommonState::process_main_protocol`); a second one is fatal
//   (`PeerMisbehaved::TooManyRenegotiationRequests`, `TemperCounters` allows one), with no
//   alert sent;
// - in TLS 1.3 (which has no renegotiation), a ClientHello after the handshake is an unexpected
//   message: fatal, alert unexpected_message (10).
// The ServerHello only repeats an empty renegotiation_info (RFC 5746) when the client offers it.

/// A TLS session that rustls set up and whose records the test then protects itself, so it can
/// send what rustls never would (a ClientHello after the handshake).
struct RawSession {
    sock: TcpStream,
    encrypter: Box<dyn MessageEncrypter>,
    decrypter: Box<dyn MessageDecrypter>,
    tx_seq: u64,
    rx_seq: u64,
}

impl RawSession {
    /// Completes a handshake with `version` (rustls client) and takes over its keys.
    fn connect(addr: SocketAddr, version: &'static rustls::SupportedProtocolVersion) -> Self {
        let mut config = (*client_config(&[version])).clone();
        config.enable_secret_extraction = true;
        let client = Client::connect_with(addr, Some("localhost"), Arc::new(config));
        let suite = client.tls.conn.negotiated_cipher_suite().expect("suite");
        let StreamOwned { conn, sock } = client.tls;
        sock.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let secrets = conn.dangerous_extract_secrets().expect("secrets");
        let key_iv = |secrets| match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv),
            _ => panic!("an AEAD ringway does not offer"),
        };
        let ((tx_seq, tx), (rx_seq, rx)) = (secrets.tx, secrets.rx);
        let ((tx_key, tx_iv), (rx_key, rx_iv)) = (key_iv(tx), key_iv(rx));
        let (encrypter, decrypter) = match suite {
            SupportedCipherSuite::Tls12(suite) => {
                // The extracted IV is the fixed part then the explicit-nonce part (RFC 5288 §3).
                let fixed = suite.aead_alg.key_block_shape().fixed_iv_len;
                let (tx_fixed, tx_explicit) = tx_iv.as_ref().split_at(fixed);
                (
                    suite.aead_alg.encrypter(tx_key, tx_fixed, tx_explicit),
                    suite.aead_alg.decrypter(rx_key, &rx_iv.as_ref()[..fixed]),
                )
            }
            SupportedCipherSuite::Tls13(suite) => (
                suite.aead_alg.encrypter(tx_key, tx_iv),
                suite.aead_alg.decrypter(rx_key, rx_iv),
            ),
        };
        let mut encrypter = encrypter;
        // aws-lc's TLS record sealing keys insist on strictly increasing sequence numbers,
        // learning the nonce mask from the first record they seal, which they take for record
        // 0. The handshake already used records 0..tx_seq (Finished): seal and drop those.
        for seq in 0..tx_seq {
            let skipped = OutboundPlainMessage {
                typ: ContentType::ApplicationData,
                version: ProtocolVersion::TLSv1_2,
                payload: (&[][..]).into(),
            };
            encrypter.encrypt(skipped, seq).expect("encrypt");
        }
        RawSession {
            sock,
            encrypter,
            decrypter,
            tx_seq,
            rx_seq,
        }
    }

    /// Encrypts `payload` as one record of type `typ` and sends it.
    fn send(&mut self, typ: ContentType, payload: &[u8]) {
        let plain = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: payload.into(),
        };
        let record = self.encrypter.encrypt(plain, self.tx_seq).expect("encrypt");
        self.tx_seq += 1;
        self.sock.write_all(&record.encode()).expect("send");
    }

    /// The next record from the server, decrypted; `None` once the server closed.
    fn recv(&mut self) -> Option<(ContentType, Vec<u8>)> {
        let mut header = [0u8; 5];
        if self.sock.read_exact(&mut header).is_err() {
            return None;
        }
        let mut body = vec![0; usize::from(u16::from_be_bytes([header[3], header[4]]))];
        self.sock.read_exact(&mut body).expect("a whole record");
        let opaque = InboundOpaqueMessage::new(
            ContentType::from(header[0]),
            ProtocolVersion::from(u16::from_be_bytes([header[1], header[2]])),
            &mut body,
        );
        let plain = self
            .decrypter
            .decrypt(opaque, self.rx_seq)
            .expect("decrypt");
        self.rx_seq += 1;
        Some((plain.typ, plain.payload.to_vec()))
    }

    /// Every record until the server closes.
    fn recv_all(&mut self) -> Vec<(ContentType, Vec<u8>)> {
        std::iter::from_fn(|| self.recv()).collect()
    }
}

fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

#[test]
fn tls12_renegotiation_is_refused_and_the_session_keeps_its_keys() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut s = RawSession::connect(proxy.addr, &rustls::version::TLS12);
    let hello = Hello::tls12(&[STRONG_SUITE]).handshake_message();

    // A renegotiation: a ClientHello inside the session, then a request on the same keys.
    s.send(ContentType::Handshake, &hello);
    s.send(ContentType::ApplicationData, &get_request("/after-hello"));
    // The refusal: a warning no_renegotiation alert (level 1, description 100), under the
    // session's keys, before the response.
    assert_eq!(s.recv(), Some((ContentType::Alert, vec![1, 100])));
    // Then the response, still under the first handshake's keys: no ServerHello, no new keys
    // (a TLS 1.2 server sends its session ticket inside the handshake, so no handshake record
    // at all may come now).
    let mut response = Vec::new();
    while !response.ends_with(b"b GET /after-hello\n") {
        let (typ, data) = s.recv().expect("the response");
        assert_eq!(typ, ContentType::ApplicationData, "{data:?}");
        response.extend(data);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_eq!(b.received().len(), 1);

    // A second attempt is fatal: the connection is closed at once, without a handshake
    // record, and the request sent with it is never forwarded.
    let start = Instant::now();
    s.send(ContentType::Handshake, &hello);
    s.send(
        ContentType::ApplicationData,
        &get_request("/after-second-hello"),
    );
    let rest = s.recv_all();
    assert!(start.elapsed() < Duration::from_secs(4), "closed at once");
    // rustls queues no alert for this error, so today nothing comes back; alerts (a
    // close_notify, say) would be fine, a handshake record or a response would not.
    assert!(
        rest.iter().all(|(typ, _)| *typ == ContentType::Alert),
        "alerts at most: {rest:?}"
    );
    assert_eq!(
        b.received().len(),
        1,
        "the second request was not forwarded"
    );
    assert_eq!(proxy.client().get("/").status, 200);
}

/// Reads records until the response to `GET path` (from backend `b`) is complete; handshake
/// records on the way must be NewSessionTicket (type 4). Returns the response.
fn read_response(s: &mut RawSession, path: &str) -> Vec<u8> {
    let want_body = format!("b GET {path}\n").into_bytes();
    let mut response = Vec::new();
    while !response.ends_with(&want_body) {
        match s.recv().expect("the response") {
            (ContentType::ApplicationData, data) => response.extend(data),
            (ContentType::Handshake, data) => assert_eq!(data[0], 4, "NewSessionTicket"),
            other => panic!("{other:?}"),
        }
    }
    assert!(
        response.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    response
}

#[test]
fn tls13_client_hello_after_the_handshake_is_fatal() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut s = RawSession::connect(proxy.addr, &rustls::version::TLS13);
    // One exchange first, so the hello below surely arrives after the handshake is over (and
    // the session tickets are read).
    s.send(ContentType::ApplicationData, &get_request("/before"));
    read_response(&mut s, "/before");

    let hello = Hello {
        supported_versions: Some(&[0x0304]),
        ..Hello::tls12(&[0x1301])
    };
    let start = Instant::now();
    s.send(ContentType::Handshake, &hello.handshake_message());
    s.send(ContentType::ApplicationData, &get_request("/after-hello"));
    let records = s.recv_all();
    assert!(start.elapsed() < Duration::from_secs(4), "closed at once");
    // rustls answers with a fatal unexpected_message (10), which the head reader sends.
    assert_eq!(records, [(ContentType::Alert, vec![2, 10])]);
    assert_eq!(
        b.received().len(),
        1,
        "the request after the hello was not forwarded"
    );
    assert_eq!(proxy.client().get("/").status, 200);
}

/// Runs `openssl s_client` against `addr` with TLS 1.2 and types `R` (renegotiate) once the
/// handshake is done; returns its exit status and what it printed (stdout and stderr), or
/// `None` when there is no openssl binary. stdin stays open until s_client exits by itself.
fn openssl_renegotiate(addr: SocketAddr, limit: Duration) -> Option<(Option<i32>, String)> {
    let spawned = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(["-tls1_2", "-servername", "localhost", "-msg"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("openssl: {e}"),
    };
    // s_client reads the terminal only once its handshake is done.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"R\n").unwrap();
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = pipe.read_to_string(&mut out);
            out
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let output = stdout.join().unwrap() + &stderr.join().unwrap();
    let Some(code) = status else {
        panic!("s_client still running after {limit:?}:\n{output}");
    };
    Some((code, output))
}

#[test]
fn openssl_client_renegotiation_fails() {
    let b = Backend::start("b");
    // ringway does not send the no_renegotiation warning until it next writes to the client,
    // so a client that waits for its ServerHello waits until the keep-alive timeout closes
    // the connection: keep that short.
    let proxy = Proxy::start_with(
        &[b.addr],
        ProxyOptions {
            extra: "[timeouts]\nkeepalive = \"2s\"\n".into(),
            ..ProxyOptions::default()
        },
    );
    let Some((code, output)) = openssl_renegotiate(proxy.addr, Duration::from_secs(20)) else {
        eprintln!("skipped: openssl binary not found; renegotiation is covered by RawSession");
        return;
    };
    let (before, after) = output
        .split_once("RENEGOTIATING")
        .unwrap_or_else(|| panic!("s_client did not renegotiate:\n{output}"));
    // -msg prints each message from the server as "<<< TLS 1.2, Handshake [...], ServerHello".
    let server_hellos = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("<<<") && l.ends_with("ServerHello"))
            .count()
    };
    assert_eq!(server_hellos(before), 1, "the first handshake:\n{output}");
    assert_eq!(server_hellos(after), 0, "no second ServerHello:\n{output}");
    assert!(
        !after.contains("Verify return code"),
        "no second handshake:\n{output}"
    );
    // s_client gave up: it failed (the alert, or the close, ended its renegotiation).
    assert_ne!(code, Some(0), "s_client reported success:\n{output}");
    assert_eq!(b.received().len(), 0);
    assert_eq!(proxy.client().get("/").status, 200);
}
