//! rustls costs in memory, with ringway's own server configuration (`ringway::tls::server_config`
//! with the default session options and the shared ticketer, a `ringway::tls::self_signed`
//! ECDSA P-256 certificate) and a rustls client over the aws-lc-rs provider:
//!
//! - `tls13_encrypt`: the server side of a response, on an established TLS 1.3 connection:
//!   `writer().write_all(N bytes)` then `write_tls` into a reused `Vec` (N = 1 KiB and 16 KiB,
//!   i.e. one record each), per cipher suite;
//! - `tls13_decrypt`: the server side of a request or upload: `read_tls` of records the client
//!   sealed (sealing happens in the untimed setup), `process_new_packets`, then reading the
//!   plaintext out, per cipher suite;
//! - `tls13_handshake`: a whole TLS 1.3 handshake, client and server work together per
//!   iteration (both connections created, every flight exchanged in memory, the server's two
//!   session tickets included): full handshakes with X25519 and with X25519MLKEM768 (what
//!   current browsers offer), and a ticket resumption (PSK with X25519). Each is measured
//!   twice: `client+server` (everything) and `server_share` (only the time spent in the
//!   server's calls, which is what ringway pays per connection).
//!
//! The client verifies the server's certificate chain against the self-signed certificate as
//! its only root, as a real client verifies a real chain.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringway::tls::TlsOptions;
use ringway::tls::{self_signed, server_config, ticketer};
use rustls::client::Resumption;
use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, Connection, HandshakeKind, RootCertStore, ServerConfig,
    ServerConnection, SupportedCipherSuite,
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

const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("16KiB", 16 * 1024)];

/// ringway's server configuration and the certificate a client must trust to talk to it.
fn server() -> (Arc<ServerConfig>, CertificateDer<'static>) {
    let cert = self_signed(&[NAME]).expect("self-signed certificate");
    let key = cert.certified_key().expect("certified key");
    let ticketer = ticketer().expect("ticketer");
    let config =
        server_config(vec![key], &TlsOptions::default(), Some(ticketer)).expect("server config");
    (config, cert.chain[0].clone())
}

/// A TLS 1.3 client that offers only `suite` and `kx`, trusting `root`.
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
    if !resumption {
        config.resumption = Resumption::disabled();
    }
    Arc::new(config)
}

fn connect(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> (Connection, Connection) {
    let name = ServerName::try_from(NAME).expect("server name");
    let client = ClientConnection::new(Arc::clone(client), name).expect("client connection");
    let server = ServerConnection::new(Arc::clone(server)).expect("server connection");
    (client.into(), server.into())
}

/// Moves every pending TLS byte of `from` into `wire` (cleared first); returns how many.
fn flush(from: &mut Connection, wire: &mut Vec<u8>) -> usize {
    wire.clear();
    while from.wants_write() {
        from.write_tls(wire).expect("write_tls into a Vec");
    }
    wire.len()
}

/// Hands every byte of `wire` to `to` and processes it.
fn feed(to: &mut Connection, wire: &[u8]) {
    let mut rest = wire;
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("read_tls from a slice");
        to.process_new_packets().expect("TLS error");
    }
}

/// Moves every pending TLS byte from `from` to `to` through `wire`; returns how many moved.
fn transfer(from: &mut Connection, to: &mut Connection, wire: &mut Vec<u8>) -> usize {
    let n = flush(from, wire);
    feed(to, wire);
    n
}

/// Exchanges flights until neither side has anything left to send.
fn handshake(client: &mut Connection, server: &mut Connection, wire: &mut Vec<u8>) {
    loop {
        let sent = transfer(client, server, wire);
        let received = transfer(server, client, wire);
        if sent == 0 && received == 0 {
            break;
        }
    }
    debug_assert!(!client.is_handshaking() && !server.is_handshaking());
}

/// An established connection pair: handshake done, tickets delivered, nothing in flight.
fn established(
    server_config: &Arc<ServerConfig>,
    root: &CertificateDer<'static>,
    suite: SupportedCipherSuite,
) -> (Connection, Connection) {
    let client_config = client(root, suite, kx_group::X25519, false);
    let (mut client, mut server) = connect(&client_config, server_config);
    handshake(&mut client, &mut server, &mut Vec::new());
    assert_eq!(
        server.negotiated_cipher_suite().map(|s| s.suite()),
        Some(suite.suite())
    );
    (client, server)
}

fn encrypt(c: &mut Criterion) {
    let (server_config, root) = server();
    let mut group = c.benchmark_group("tls13_encrypt");
    for (suite_name, suite) in SUITES {
        for (size_name, size) in SIZES {
            // A fresh pair per case: records sealed by one case are never opened by the peer,
            // so the pair's sequence numbers are out of step afterwards.
            let (mut client, mut server) = established(&server_config, &root, suite);
            // Sanity check, untimed: what the server seals, the client opens.
            let payload = vec![0x5a_u8; size];
            let mut wire = Vec::with_capacity(2 * size + 1024);
            server.writer().write_all(&payload).expect("server write");
            transfer(&mut server, &mut client, &mut wire);
            let mut opened = vec![0; size];
            client
                .reader()
                .read_exact(&mut opened)
                .expect("client read");
            assert_eq!(opened, payload);

            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(suite_name, size_name), |b| {
                b.iter(|| {
                    wire.clear();
                    server
                        .writer()
                        .write_all(black_box(&payload))
                        .expect("server write");
                    while server.wants_write() {
                        server.write_tls(&mut wire).expect("write_tls into a Vec");
                    }
                    black_box(wire.len())
                })
            });
        }
    }
    group.finish();
}

/// The client seals `payload` into records (untimed setup of the decrypt bench).
fn seal(client: &mut Connection, payload: &[u8]) -> Vec<u8> {
    client.writer().write_all(payload).expect("client write");
    let mut records = Vec::with_capacity(payload.len() + 256);
    while client.wants_write() {
        client
            .write_tls(&mut records)
            .expect("write_tls into a Vec");
    }
    records
}

/// The server opens `records` into `plain` (which must be exactly the payload's size).
/// Returns the records so that freeing them is not timed.
fn open(server: &mut Connection, records: Vec<u8>, plain: &mut [u8]) -> Vec<u8> {
    let mut rest = &records[..];
    let mut got = 0;
    while !rest.is_empty() {
        server.read_tls(&mut rest).expect("read_tls from a slice");
        let state = server.process_new_packets().expect("TLS error");
        let n = state.plaintext_bytes_to_read();
        server
            .reader()
            .read_exact(&mut plain[got..got + n])
            .expect("server read");
        got += n;
    }
    assert_eq!(got, plain.len());
    records
}

fn decrypt(c: &mut Criterion) {
    let (server_config, root) = server();
    let mut group = c.benchmark_group("tls13_decrypt");
    for (suite_name, suite) in SUITES {
        for (size_name, size) in SIZES {
            // A fresh pair per case: records sealed by one case are never opened by the peer,
            // so the pair's sequence numbers are out of step afterwards.
            let (mut client, mut server) = established(&server_config, &root, suite);
            let payload = vec![0xa5_u8; size];
            let mut plain = vec![0; size];
            // Sanity check, untimed.
            let records = seal(&mut client, &payload);
            open(&mut server, records, &mut plain);
            assert_eq!(plain, payload);

            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(suite_name, size_name), |b| {
                // Records are sealed in the setup, in order, and opened by the routine in the
                // same order, so sequence numbers line up.
                b.iter_batched(
                    || seal(&mut client, &payload),
                    |records| open(&mut server, records, &mut plain),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

/// One handshake between fresh connections, every flight exchanged in memory; returns the
/// time spent in the server's own calls (creating its connection, `read_tls` and
/// `process_new_packets` of the client's flights, `write_tls` of its own).
fn server_timed_handshake(
    client_config: &Arc<ClientConfig>,
    server_config: &Arc<ServerConfig>,
    wire: &mut Vec<u8>,
) -> Duration {
    let name = ServerName::try_from(NAME).expect("server name");
    let mut client: Connection = ClientConnection::new(Arc::clone(client_config), name)
        .expect("client connection")
        .into();
    let started = Instant::now();
    let mut server: Connection = ServerConnection::new(Arc::clone(server_config))
        .expect("server connection")
        .into();
    let mut server_time = started.elapsed();
    loop {
        let sent = flush(&mut client, wire);
        let started = Instant::now();
        feed(&mut server, wire);
        let received = flush(&mut server, wire);
        server_time += started.elapsed();
        feed(&mut client, wire);
        if sent == 0 && received == 0 {
            break;
        }
    }
    debug_assert!(!client.is_handshaking() && !server.is_handshaking());
    let started = Instant::now();
    drop(server);
    server_time + started.elapsed()
}

fn handshakes(c: &mut Criterion) {
    let (server_config, root) = server();
    let suite = cipher_suite::TLS13_AES_128_GCM_SHA256;
    let mut wire = Vec::with_capacity(16 * 1024);
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
        for _ in 0..2 {
            let (mut client, mut server) = connect(&client_config, &server_config);
            handshake(&mut client, &mut server, &mut wire);
            assert_eq!(
                server.negotiated_key_exchange_group().map(|g| g.name()),
                Some(kx.name())
            );
        }
        let (mut client, mut server) = connect(&client_config, &server_config);
        handshake(&mut client, &mut server, &mut wire);
        assert_eq!(server.handshake_kind(), Some(expected));

        group.bench_function(BenchmarkId::new(name, "client+server"), |b| {
            b.iter(|| {
                let (mut client, mut server) = connect(&client_config, &server_config);
                handshake(&mut client, &mut server, &mut wire);
                black_box((client, server))
            })
        });
        group.bench_function(BenchmarkId::new(name, "server_share"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| server_timed_handshake(&client_config, &server_config, &mut wire))
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encrypt, decrypt, handshakes);
criterion_main!(benches);
