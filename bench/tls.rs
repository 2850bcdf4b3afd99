//! What TLS costs ringway per connection and per byte, measured on the engine production runs:
//! [`ringway::tls::TlsEngine`] (rustls' unbuffered server API, records decrypted in place in the
//! receive buffer, sealed into one recycled send buffer), with ringway's own server
//! configuration (`ringway::tls::server_config` with the default session options and the shared
//! ticketer, a `ringway::tls::self_signed` ECDSA P-256 certificate). The peer is an ordinary
//! rustls client over the aws-lc-rs provider, in memory; it verifies the server's certificate
//! against the self-signed certificate as its only root, as a real client verifies a real chain.
//!
//! - `tls13_encrypt`: a response of N bytes (1 KiB, 64 KiB) on an established TLS 1.3 session,
//!   the way `TlsConn` sends it: `TlsEngine::write` of the plaintext, then `take_outgoing` of the
//!   sealed records and `recycle` of the send buffer (what a flush does around the socket
//!   write), per cipher suite;
//! - `tls13_decrypt`: N bytes from the client (a request body or upload; 1 KiB, 64 KiB), the way
//!   `TlsConn` receives them: `TlsEngine::receive` of the client's records in pieces of at most
//!   one ring receive buffer (`ringway::runtime::RING_BUFFER_LEN`, 32 KiB), decrypted in place,
//!   plaintext appended to a buffer, per cipher suite. The client seals the records in the
//!   untimed setup;
//! - `tls13_handshake`: a whole TLS 1.3 handshake between a fresh client and a fresh engine,
//!   every flight exchanged in memory, the server's session tickets included: full handshakes
//!   with X25519 and with X25519MLKEM768 (what current browsers offer), and a ticket resumption
//!   (PSK with X25519). Each is measured twice: `client+server` (everything) and `server_share`
//!   (only the time spent in the engine: creating it, `receive` of the client's flights,
//!   `take_outgoing`/`recycle` of its own, dropping it), which is what ringway pays per
//!   connection.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringway::runtime::RING_BUFFER_LEN;
use ringway::tls::{TlsEngine, TlsOptions, self_signed, server_config, ticketer};
use rustls::client::Resumption;
use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion, RootCertStore, ServerConfig,
    SupportedCipherSuite,
};

const NAME: &str = "bench.ringway.test";

const SUITES: [(&str, SupportedCipherSuite); 3] = [
    ("AES_128_GCM", cipher_suite::TLS13_AES_128_GCM_SHA256),
    ("AES_256_GCM", cipher_suite::TLS13_AES_256_GCM_SHA384),
    (
        "CHACHA20_POLY1305",
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("64KiB", 64 * 1024)];

/// ringway's server configuration and the certificate a client must trust to talk to it.
fn server() -> (Arc<ServerConfig>, CertificateDer<'static>) {
    let cert = self_signed(&[NAME]).expect("self-signed certificate");
    let key = cert.certified_key().expect("certified key");
    let ticketer = ticketer().expect("ticketer");
    let config =
        server_config(vec![key], &TlsOptions::default(), Some(ticketer)).expect("server config");
    (config, cert.chain[0].clone())
}

/// A TLS 1.3 client that offers only `suite` and `kx`, trusting `root`; it keeps the tickets
/// it receives and resumes with them when `resumption` is set.
fn client(
    root: &CertificateDer<'static>,
    suite: SupportedCipherSuite,
    kx: &'static dyn SupportedKxGroup,
    resumption: bool,
) -> Arc<ClientConfig> {
    let provider = CryptoProvider {
        cipher_suites: vec![suite],
        kx_groups: vec![kx],
        ..aws_lc_rs::default_provider()
    };
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).expect("root certificate");
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("client versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ringway::tls::ALPN_HTTP11.to_vec()];
    config.resumption = if resumption {
        Resumption::in_memory_sessions(16)
    } else {
        Resumption::disabled()
    };
    Arc::new(config)
}

fn new_client(config: &Arc<ClientConfig>) -> ClientConnection {
    let name = ServerName::try_from(NAME).expect("server name");
    ClientConnection::new(Arc::clone(config), name).expect("client connection")
}

fn new_engine(config: &Arc<ServerConfig>) -> TlsEngine {
    TlsEngine::new(Arc::clone(config)).expect("TLS engine")
}

/// Moves every pending TLS byte of the client into `wire` (cleared first); returns how many.
fn client_flush(client: &mut ClientConnection, wire: &mut Vec<u8>) -> usize {
    wire.clear();
    while client.wants_write() {
        client.write_tls(wire).expect("write_tls into a Vec");
    }
    wire.len()
}

/// Hands `wire` to the engine as `TlsConn` does: one receive buffer at a time, decrypted in
/// place; the plaintext is appended to `plain`.
fn engine_receive(engine: &mut TlsEngine, wire: &mut [u8], plain: &mut Vec<u8>) {
    for piece in wire.chunks_mut(RING_BUFFER_LEN) {
        engine
            .receive(piece, &mut |p: &[u8]| plain.extend_from_slice(p))
            .expect("engine receive");
    }
}

/// Moves every record the engine queued into `wire` (cleared first), recycling its send
/// buffer as a flush does; returns how many bytes.
fn engine_flush(engine: &mut TlsEngine, wire: &mut Vec<u8>) -> usize {
    wire.clear();
    while let Some((buf, len)) = engine.take_outgoing() {
        wire.extend_from_slice(&buf[..len]);
        engine.recycle(buf);
    }
    wire.len()
}

/// Hands every byte of `wire` to the client and processes it; its plaintext goes to `plain`.
fn client_receive(client: &mut ClientConnection, wire: &[u8], plain: &mut Vec<u8>) {
    let mut rest = wire;
    while !rest.is_empty() {
        client.read_tls(&mut rest).expect("read_tls from a slice");
        client.process_new_packets().expect("client TLS error");
        match client.reader().read_to_end(plain) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("client read: {e}"),
        }
    }
}

/// Exchanges flights until neither side has anything left to send.
fn handshake(client: &mut ClientConnection, engine: &mut TlsEngine, wire: &mut Vec<u8>) {
    let mut plain = Vec::new();
    loop {
        let sent = client_flush(client, wire);
        engine_receive(engine, wire, &mut plain);
        let received = engine_flush(engine, wire);
        client_receive(client, wire, &mut plain);
        if sent == 0 && received == 0 {
            break;
        }
    }
    assert!(!client.is_handshaking() && !engine.is_handshaking());
    assert!(plain.is_empty(), "no application data during the handshake");
}

/// An established session: handshake done, tickets delivered, nothing in flight.
fn established(
    server_config: &Arc<ServerConfig>,
    root: &CertificateDer<'static>,
    suite: SupportedCipherSuite,
) -> (ClientConnection, TlsEngine) {
    let client_config = client(root, suite, kx_group::X25519, false);
    let mut client = new_client(&client_config);
    let mut engine = new_engine(server_config);
    handshake(&mut client, &mut engine, &mut Vec::new());
    assert_eq!(
        client.negotiated_cipher_suite().map(|s| s.suite()),
        Some(suite.suite())
    );
    assert_eq!(engine.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    (client, engine)
}

fn encrypt(c: &mut Criterion) {
    let (server_config, root) = server();
    let mut group = c.benchmark_group("tls13_encrypt");
    for (suite_name, suite) in SUITES {
        for (size_name, size) in SIZES {
            // A fresh session per case: records sealed by one case are never opened by the
            // client, so the session's sequence numbers are out of step afterwards.
            let (mut client, mut engine) = established(&server_config, &root, suite);
            let payload = vec![0x5a_u8; size];
            // Sanity check, untimed: what the engine seals, the client opens.
            let mut wire = Vec::with_capacity(2 * size + 1024);
            engine.write(&payload).expect("engine write");
            engine_flush(&mut engine, &mut wire);
            let mut opened = Vec::with_capacity(size);
            client_receive(&mut client, &wire, &mut opened);
            assert_eq!(opened, payload);

            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(suite_name, size_name), |b| {
                b.iter(|| {
                    engine.write(black_box(&payload)).expect("engine write");
                    let (buf, len) = engine.take_outgoing().expect("sealed records");
                    black_box(&buf[..len]);
                    engine.recycle(buf);
                })
            });
        }
    }
    group.finish();
}

/// The client seals `payload` into records (untimed setup of the decrypt bench).
fn seal(client: &mut ClientConnection, payload: &[u8]) -> Vec<u8> {
    client.writer().write_all(payload).expect("client write");
    let mut records = Vec::with_capacity(payload.len() + 1024);
    while client.wants_write() {
        client
            .write_tls(&mut records)
            .expect("write_tls into a Vec");
    }
    records
}

/// The engine opens `records` into `plain` (cleared first). Returns the records so that
/// freeing them is not timed.
fn open(engine: &mut TlsEngine, mut records: Vec<u8>, plain: &mut Vec<u8>) -> Vec<u8> {
    plain.clear();
    engine_receive(engine, &mut records, plain);
    records
}

fn decrypt(c: &mut Criterion) {
    let (server_config, root) = server();
    let mut group = c.benchmark_group("tls13_decrypt");
    for (suite_name, suite) in SUITES {
        for (size_name, size) in SIZES {
            // A fresh session per case, as for encrypt.
            let (mut client, mut engine) = established(&server_config, &root, suite);
            let payload = vec![0xa5_u8; size];
            let mut plain = Vec::with_capacity(size);
            // Sanity check, untimed.
            let records = seal(&mut client, &payload);
            open(&mut engine, records, &mut plain);
            assert_eq!(plain, payload);

            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(suite_name, size_name), |b| {
                // Records are sealed in the setup, in order, and opened by the routine in the
                // same order, so sequence numbers line up.
                b.iter_batched(
                    || seal(&mut client, &payload),
                    |records| {
                        let records = open(&mut engine, records, &mut plain);
                        debug_assert_eq!(plain.len(), size);
                        records
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

/// One handshake between a fresh client and a fresh engine, every flight exchanged in memory;
/// returns the time spent in the engine's own calls (creating it, `receive` of the client's
/// flights, `take_outgoing`/`recycle` of its own, dropping it).
fn server_timed_handshake(
    client_config: &Arc<ClientConfig>,
    server_config: &Arc<ServerConfig>,
    wire: &mut Vec<u8>,
    plain: &mut Vec<u8>,
) -> Duration {
    let mut client = new_client(client_config);
    let started = Instant::now();
    let mut engine = new_engine(server_config);
    let mut server_time = started.elapsed();
    loop {
        let sent = client_flush(&mut client, wire);
        let started = Instant::now();
        engine_receive(&mut engine, wire, plain);
        let received = engine_flush(&mut engine, wire);
        server_time += started.elapsed();
        client_receive(&mut client, wire, plain);
        if sent == 0 && received == 0 {
            break;
        }
    }
    debug_assert!(!client.is_handshaking() && !engine.is_handshaking());
    let started = Instant::now();
    drop(engine);
    server_time + started.elapsed()
}

fn handshakes(c: &mut Criterion) {
    let (server_config, root) = server();
    let suite = cipher_suite::TLS13_AES_128_GCM_SHA256;
    let mut wire = Vec::with_capacity(16 * 1024);
    let mut plain = Vec::new();
    let mut group = c.benchmark_group("tls13_handshake");
    group.throughput(Throughput::Elements(1));

    // Resumption: the client keeps the tickets each handshake brings (two per handshake, one
    // used), so once primed every handshake resumes.
    let cases = [
        (
            "full_ecdsa_p256_X25519",
            client(&root, suite, kx_group::X25519, false),
            kx_group::X25519,
            HandshakeKind::Full,
        ),
        (
            "full_ecdsa_p256_X25519MLKEM768",
            client(&root, suite, kx_group::X25519MLKEM768, false),
            kx_group::X25519MLKEM768,
            HandshakeKind::Full,
        ),
        (
            "resumed_ticket_X25519",
            client(&root, suite, kx_group::X25519, true),
            kx_group::X25519,
            HandshakeKind::Resumed,
        ),
    ];
    for (name, client_config, kx, expected) in cases {
        // Untimed checks; for resumption this also primes the client with tickets.
        for _ in 0..3 {
            let mut client = new_client(&client_config);
            let mut engine = new_engine(&server_config);
            handshake(&mut client, &mut engine, &mut wire);
            assert_eq!(engine.protocol_version(), Some(ProtocolVersion::TLSv1_3));
        }
        let mut client = new_client(&client_config);
        let mut engine = new_engine(&server_config);
        handshake(&mut client, &mut engine, &mut wire);
        assert_eq!(client.handshake_kind(), Some(expected), "{name}");
        assert_eq!(
            client.negotiated_key_exchange_group().map(|g| g.name()),
            Some(kx.name()),
            "{name}"
        );

        group.bench_function(BenchmarkId::new(name, "client+server"), |b| {
            b.iter(|| {
                let mut client = new_client(&client_config);
                let mut engine = new_engine(&server_config);
                handshake(&mut client, &mut engine, &mut wire);
                black_box((client, engine))
            })
        });
        group.bench_function(BenchmarkId::new(name, "server_share"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        server_timed_handshake(
                            &client_config,
                            &server_config,
                            &mut wire,
                            &mut plain,
                        )
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encrypt, decrypt, handshakes);
criterion_main!(benches);
