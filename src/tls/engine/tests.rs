//! [`TlsEngine`] against a rustls client in memory: handshakes (TLS 1.2 and 1.3), data both
//! ways with the client's bytes cut at every size, tickets and resumption, key updates,
//! close_notify both ways, alerts on errors, limits, and what an idle session holds.

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion, RootCertStore, ServerConfig,
    SupportedProtocolVersion,
};

use super::{MAX_PENDING, TlsEngine, TlsIoError};
use crate::tls::TlsOptions;

pub(crate) const NAME: &str = "engine.ringway.test";

pub(crate) fn server() -> &'static (Arc<ServerConfig>, CertificateDer<'static>) {
    static SERVER: OnceLock<(Arc<ServerConfig>, CertificateDer<'static>)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let cert = crate::tls::self_signed(&[NAME, "127.0.0.1"]).expect("certificate");
        let key = cert.certified_key().expect("key");
        let ticketer = crate::tls::ticketer().expect("ticketer");
        let config = crate::tls::server_config(vec![key], &TlsOptions::default(), Some(ticketer))
            .expect("server config");
        (config, cert.chain[0].clone())
    })
}

pub(crate) fn client_config(version: &'static SupportedProtocolVersion) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(server().1.clone()).expect("root");
    let mut config = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_protocol_versions(&[version])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::in_memory_sessions(16);
    Arc::new(config)
}

/// A rustls client and a [`TlsEngine`], bytes moved between them by hand.
struct Pair {
    client: ClientConnection,
    server: TlsEngine,
    /// Plaintext the server received.
    plain: Vec<u8>,
    /// Plaintext the client received.
    got: Vec<u8>,
    /// Client-to-server bytes go to the server at most this many at a time.
    chunk: usize,
}

impl Pair {
    fn new(config: &Arc<ClientConfig>, sni: &str) -> Self {
        let name = ServerName::try_from(sni.to_owned()).expect("server name");
        Self {
            client: ClientConnection::new(config.clone(), name).expect("client"),
            server: TlsEngine::new(server().0.clone()).expect("server"),
            plain: Vec::new(),
            got: Vec::new(),
            chunk: usize::MAX,
        }
    }

    /// Everything the client has to send, as raw bytes.
    fn client_bytes(&mut self) -> Vec<u8> {
        let mut wire = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut wire).expect("client write_tls");
        }
        wire
    }

    /// Feeds `wire` to the server, `self.chunk` bytes at a time.
    fn feed(&mut self, wire: &[u8]) -> Result<(), TlsIoError> {
        for part in wire.chunks(self.chunk.max(1)) {
            let mut part = part.to_vec();
            let plain = &mut self.plain;
            self.server
                .receive(&mut part, &mut |p: &[u8]| plain.extend_from_slice(p))?;
        }
        Ok(())
    }

    fn client_to_server(&mut self) -> Result<(), TlsIoError> {
        let wire = self.client_bytes();
        self.feed(&wire)
    }

    /// What the server queued, as raw bytes (the send buffer is recycled, like a flush).
    fn server_bytes(&mut self) -> Vec<u8> {
        let mut wire = Vec::new();
        while let Some((buf, len)) = self.server.take_outgoing() {
            wire.extend_from_slice(&buf[..len]);
            self.server.recycle(buf);
        }
        wire
    }

    fn server_to_client(&mut self) -> Result<(), rustls::Error> {
        let wire = self.server_bytes();
        let mut rd = &wire[..];
        while !rd.is_empty() {
            self.client.read_tls(&mut rd).expect("client read_tls");
            self.client.process_new_packets()?;
            match self.client.reader().read_to_end(&mut self.got) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("client read: {e}"),
            }
        }
        Ok(())
    }

    fn handshake(&mut self) {
        for _ in 0..10 {
            self.client_to_server()
                .expect("server side of the handshake");
            self.server_to_client()
                .expect("client side of the handshake");
            if !self.client.is_handshaking() && !self.server.is_handshaking() {
                return;
            }
        }
        panic!("handshake did not complete");
    }

    /// Plaintext the client has received since the last call.
    fn client_plain(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.got)
    }

    /// True once the client read the server's close_notify.
    fn client_saw_close(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(self.client.reader().read_to_end(&mut rest), Ok(0))
    }
}

fn versions() -> [&'static SupportedProtocolVersion; 2] {
    [&rustls::version::TLS12, &rustls::version::TLS13]
}

#[test]
fn exchanges_data_both_ways_whatever_the_client_byte_cuts() {
    let request = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n";
    let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    for version in versions() {
        let config = client_config(version);
        for chunk in [1, 2, 5, 17, 100, 1000, 4096, 16 * 1024, usize::MAX] {
            let mut pair = Pair::new(&config, NAME);
            pair.chunk = chunk;
            pair.handshake();
            assert_eq!(
                pair.server.protocol_version(),
                Some(version.version),
                "chunk {chunk}"
            );
            pair.client.writer().write_all(request).unwrap();
            pair.client.writer().write_all(&body).unwrap();
            pair.client_to_server().unwrap();
            let mut want = request.to_vec();
            want.extend_from_slice(&body);
            assert_eq!(pair.plain, want, "{:?} chunk {chunk}", version.version);

            let response: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
            pair.server.write(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
            pair.server.write(&response).unwrap();
            pair.server_to_client().unwrap();
            let mut want = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
            want.extend_from_slice(&response);
            assert_eq!(
                pair.client_plain(),
                want,
                "{:?} chunk {chunk}",
                version.version
            );
        }
    }
}

#[test]
fn an_idle_session_holds_no_buffer() {
    for version in versions() {
        let mut pair = Pair::new(&client_config(version), NAME);
        pair.handshake();
        pair.client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let wire = pair.client_bytes();
        // Half a record: kept aside until the rest arrives.
        pair.feed(&wire[..wire.len() / 2]).unwrap();
        assert!(pair.plain.is_empty());
        assert!(pair.server.buffered_capacity() >= wire.len() / 2);
        pair.feed(&wire[wire.len() / 2..]).unwrap();
        assert_eq!(pair.plain, b"GET / HTTP/1.1\r\n\r\n");
        pair.server
            .write(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap();
        assert!(pair.server.has_outgoing());
        // Nothing is released while bytes wait to be sent.
        pair.server.release_buffers();
        assert!(pair.server.buffered_capacity() > 0);
        pair.server_to_client().unwrap();
        pair.server.release_buffers();
        assert_eq!(pair.server.buffered_capacity(), 0, "{:?}", version.version);
        assert_eq!(pair.client_plain(), b"HTTP/1.1 204 No Content\r\n\r\n");
    }
}

#[test]
fn reports_the_client_sni() {
    let config = client_config(&rustls::version::TLS13);
    let mut pair = Pair::new(&config, NAME);
    assert_eq!(pair.server.server_name(), None);
    pair.handshake();
    assert_eq!(pair.server.server_name(), Some(NAME));
    // An IP address is not sent as SNI.
    let mut pair = Pair::new(&config, "127.0.0.1");
    pair.handshake();
    assert_eq!(pair.server.server_name(), None);
}

#[test]
fn reads_sni_from_a_client_hello_cut_in_tiny_pieces() {
    let mut pair = Pair::new(&client_config(&rustls::version::TLS13), NAME);
    pair.chunk = 3;
    pair.handshake();
    assert_eq!(pair.server.server_name(), Some(NAME));
}

#[test]
fn keeps_application_data_sent_with_the_client_finished() {
    let mut pair = Pair::new(&client_config(&rustls::version::TLS13), NAME);
    // The client queues the request before the handshake completes; a TLS 1.3 client sends it
    // right after its Finished, in the same flight.
    pair.client
        .writer()
        .write_all(b"GET /early HTTP/1.1\r\n\r\n")
        .unwrap();
    pair.client_to_server().unwrap();
    pair.server_to_client().unwrap();
    let flight = pair.client_bytes();
    assert!(pair.server.is_handshaking());
    pair.feed(&flight).unwrap();
    assert!(!pair.server.is_handshaking());
    assert_eq!(pair.plain, b"GET /early HTTP/1.1\r\n\r\n");
}

#[test]
fn sends_tickets_that_resume() {
    for version in versions() {
        let config = client_config(version);
        let mut first = Pair::new(&config, NAME);
        first.handshake();
        assert_eq!(first.client.handshake_kind(), Some(HandshakeKind::Full));
        if version.version == ProtocolVersion::TLSv1_3 {
            assert_eq!(first.client.tls13_tickets_received(), 2);
        }
        let mut second = Pair::new(&config, NAME);
        second.handshake();
        assert_eq!(
            second.client.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{:?}",
            version.version
        );
        second.client.writer().write_all(b"ping").unwrap();
        second.client_to_server().unwrap();
        assert_eq!(second.plain, b"ping");
    }
}

#[test]
fn answers_a_key_update() {
    let mut pair = Pair::new(&client_config(&rustls::version::TLS13), NAME);
    pair.handshake();
    // The client updates its keys and asks the server to update its own.
    pair.client.refresh_traffic_keys().unwrap();
    pair.client.writer().write_all(b"after update").unwrap();
    pair.client_to_server().unwrap();
    assert_eq!(pair.plain, b"after update");
    pair.server.write(b"reply").unwrap();
    pair.server_to_client().unwrap();
    assert_eq!(pair.client_plain(), b"reply");
    pair.server.write(b" again").unwrap();
    pair.server_to_client().unwrap();
    assert_eq!(pair.client_plain(), b" again");
}

#[test]
fn delivers_data_then_the_client_close_notify() {
    for version in versions() {
        let mut pair = Pair::new(&client_config(version), NAME);
        pair.handshake();
        pair.client.writer().write_all(b"last words").unwrap();
        pair.client.send_close_notify();
        let mut wire = pair.client_bytes();
        // Bytes after close_notify are ignored.
        wire.extend_from_slice(b"\x17\x03\x03\x00\x05junk!");
        pair.feed(&wire).unwrap();
        assert_eq!(pair.plain, b"last words");
        assert!(pair.server.peer_closed());
        pair.server.release_buffers();
        assert_eq!(pair.server.buffered_capacity(), 0);
        // The server may still answer, then close.
        pair.server.write(b"bye").unwrap();
        pair.server.close_notify();
        pair.server_to_client().unwrap();
        assert_eq!(pair.client_plain(), b"bye");
        assert!(pair.client_saw_close());
    }
}

#[test]
fn server_close_notify_ends_the_stream_for_the_client() {
    let mut pair = Pair::new(&client_config(&rustls::version::TLS13), NAME);
    pair.handshake();
    assert!(!pair.client_saw_close());
    pair.server.close_notify();
    pair.server_to_client().unwrap();
    assert!(pair.client_saw_close());
    // Nothing is read nor sent after close_notify, and a second one is not queued.
    pair.client.writer().write_all(b"late").unwrap();
    assert!(matches!(pair.client_to_server(), Err(TlsIoError::Closed)));
    assert!(pair.plain.is_empty());
    assert!(matches!(pair.server.write(b"x"), Err(TlsIoError::Closed)));
    pair.server.close_notify();
    assert!(!pair.server.has_outgoing());
}

/// The content type of each record in `wire`.
fn records(wire: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = wire;
    while rest.len() >= 5 {
        types.push(rest[0]);
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        rest = &rest[(5 + len).min(rest.len())..];
    }
    types
}

#[test]
fn a_corrupted_record_fails_with_an_alert_then_stays_failed() {
    for version in versions() {
        let mut pair = Pair::new(&client_config(version), NAME);
        pair.handshake();
        pair.client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut wire = pair.client_bytes();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        let err = pair.feed(&wire).unwrap_err();
        assert!(
            matches!(err, TlsIoError::Tls(rustls::Error::DecryptError)),
            "{err}"
        );
        // One encrypted alert record (TLS 1.3 hides its type as application data).
        let want = if version.version == ProtocolVersion::TLSv1_3 {
            23
        } else {
            21
        };
        assert_eq!(records(&pair.server_bytes()), [want]);
        assert!(matches!(pair.feed(b"more"), Err(TlsIoError::Failed)));
        assert!(matches!(pair.server.write(b"x"), Err(TlsIoError::Failed)));
        pair.server.release_buffers();
        assert_eq!(pair.server.buffered_capacity(), 0);
    }
}

#[test]
fn plain_http_on_the_tls_port_gets_an_alert() {
    let mut server = TlsEngine::new(server().0.clone()).unwrap();
    let mut bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let err = server.receive(&mut bytes, &mut |_| {}).unwrap_err();
    assert!(matches!(err, TlsIoError::Tls(_)), "{err}");
    let (buf, len) = server.take_outgoing().expect("an alert");
    assert_eq!(records(&buf[..len]), [21]);
    assert_eq!(server.server_name(), None);
}

#[test]
fn writing_before_the_handshake_ends_is_refused() {
    let mut pair = Pair::new(&client_config(&rustls::version::TLS13), NAME);
    assert!(matches!(
        pair.server.write(b"too early"),
        Err(TlsIoError::NotWritable(_))
    ));
    // The session is not spoiled by the caller's mistake.
    pair.handshake();
    pair.server.write(b"now").unwrap();
    pair.server_to_client().unwrap();
    assert_eq!(pair.client_plain(), b"now");
}

#[test]
fn an_endless_handshake_message_is_cut_off() {
    let mut server = TlsEngine::new(server().0.clone()).unwrap();
    // A ClientHello claiming 64 KiB - 1, sent one byte per record (6 wire bytes per byte).
    let mut first = vec![22, 3, 1, 0, 4, 1, 0, 0xff, 0xff];
    server.receive(&mut first, &mut |_| {}).unwrap();
    let mut sent = first.len();
    let err = loop {
        let mut rec = vec![22, 3, 1, 0, 1, 0];
        sent += rec.len();
        match server.receive(&mut rec, &mut |_| {}) {
            Ok(()) => assert!(sent <= MAX_PENDING + 6, "still accepted at {sent}"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, TlsIoError::MessageTooLarge(MAX_PENDING)),
        "{err}"
    );
    assert!(sent > MAX_PENDING);
    assert_eq!(server.buffered_capacity(), 0);
}

#[test]
fn survives_a_hello_retry_request() {
    use rustls::crypto::CryptoProvider;
    use rustls::crypto::aws_lc_rs::kx_group::{MLKEM1024, X25519};
    // The client's first key share is for a group the server does not offer: the server asks
    // for another one, and the client sends a second ClientHello.
    let provider = CryptoProvider {
        kx_groups: vec![MLKEM1024, X25519],
        ..aws_lc_rs::default_provider()
    };
    let mut roots = RootCertStore::empty();
    roots.add(server().1.clone()).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut pair = Pair::new(&Arc::new(config), NAME);
    pair.chunk = 100;
    pair.handshake();
    assert_eq!(
        pair.client.handshake_kind(),
        Some(HandshakeKind::FullWithHelloRetryRequest)
    );
    assert_eq!(pair.server.server_name(), Some(NAME));
    pair.client.writer().write_all(b"hello").unwrap();
    pair.client_to_server().unwrap();
    assert_eq!(pair.plain, b"hello");
}
