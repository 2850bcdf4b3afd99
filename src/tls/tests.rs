//! Handshake tests: a rustls client and a ringway `ServerConnection` in memory, bytes pumped
//! between them, no sockets. Also the helpers the submodules' tests share.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, Connection, DigitallySignedStruct,
    HandshakeKind, ProtocolVersion, RootCertStore, ServerConnection, SignatureScheme,
    SupportedProtocolVersion,
};

use super::*;

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "ringway-test-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test CA every [`leaf`] is signed by.
fn ca() -> &'static CertifiedIssuer<'static, KeyPair> {
    static CA: OnceLock<CertifiedIssuer<'static, KeyPair>> = OnceLock::new();
    CA.get_or_init(|| {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ringway test CA");
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
        CertifiedIssuer::self_signed(params, key).expect("CA cert")
    })
}

/// The test CA's certificate, the one trust anchor of [`verifying_client`].
fn roots() -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(ca().der().clone()).expect("CA as root");
    Arc::new(roots)
}

/// A leaf for `names` with a fresh key of type `alg`, signed by the test CA.
pub(crate) fn leaf(names: &[&str], alg: &'static SignatureAlgorithm) -> Arc<CertifiedKey> {
    let key = KeyPair::generate_for(alg).expect("leaf key");
    let params = CertificateParams::new(
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("leaf params");
    let cert = params.signed_by(&key, ca()).expect("leaf cert");
    certified_key_from_der(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("leaf key matches")
}

fn p256(names: &[&str]) -> Arc<CertifiedKey> {
    leaf(names, &rcgen::PKCS_ECDSA_P256_SHA256)
}

fn options(session_cache: usize, tickets: bool) -> TlsOptions {
    TlsOptions {
        session_cache,
        tickets,
    }
}

/// The client side uses rustls' full aws-lc-rs provider, so it offers everything rustls can.
fn client_provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// A client that verifies the server against the test CA.
fn verifying_client(
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(client_provider())
        .with_protocol_versions(versions)
        .expect("client versions")
        .with_root_certificates(roots())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A client that accepts any certificate (it still checks handshake signatures), to observe
/// which certificate the server picked when that certificate does not cover the name asked.
fn observing_client(versions: &[&'static SupportedProtocolVersion]) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(client_provider())
        .with_protocol_versions(versions)
        .expect("client versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(client_provider())))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    config
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Moves every pending TLS byte from `from` to `to`; returns how many moved.
fn transfer(from: &mut Connection, to: &mut Connection) -> Result<usize, rustls::Error> {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).expect("write_tls into a Vec");
    }
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("read_tls from a slice");
        to.process_new_packets()?;
    }
    Ok(bytes.len())
}

/// Pumps bytes both ways until neither side has anything to send. On error, the failing
/// side's alert is still delivered to its peer, as a socket would.
fn pump(client: &mut Connection, server: &mut Connection) -> Result<(), (Side, rustls::Error)> {
    for _ in 0..16 {
        let sent = match transfer(client, server) {
            Ok(sent) => sent,
            Err(error) => {
                let _ = transfer(server, client);
                return Err((Side::Server, error));
            }
        };
        let received = match transfer(server, client) {
            Ok(received) => received,
            Err(error) => {
                let _ = transfer(client, server);
                return Err((Side::Client, error));
            }
        };
        if sent == 0 && received == 0 {
            return Ok(());
        }
    }
    panic!("the handshake did not settle");
}

struct Pair {
    client: Connection,
    server: Connection,
}

impl Pair {
    fn new(client: &Arc<ClientConfig>, server: &Arc<rustls::ServerConfig>, name: &str) -> Self {
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        Self {
            client: ClientConnection::new(Arc::clone(client), name)
                .expect("client")
                .into(),
            server: ServerConnection::new(Arc::clone(server))
                .expect("server")
                .into(),
        }
    }

    fn handshake(&mut self) -> Result<(), (Side, rustls::Error)> {
        pump(&mut self.client, &mut self.server)?;
        assert!(!self.client.is_handshaking() && !self.server.is_handshaking());
        Ok(())
    }

    fn sni(&self) -> Option<&str> {
        match &self.server {
            Connection::Server(server) => server.server_name(),
            Connection::Client(_) => unreachable!("the server side is a ServerConnection"),
        }
    }

    fn leaf(&self) -> CertificateDer<'static> {
        self.client.peer_certificates().expect("server certificate")[0].clone()
    }

    /// A request one way and a response the other, through the record layer.
    fn exchange(&mut self) {
        use std::io::{Read, Write};
        let request = b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
        self.client
            .writer()
            .write_all(request)
            .expect("client write");
        pump(&mut self.client, &mut self.server).expect("request");
        let mut got = vec![0; request.len()];
        self.server
            .reader()
            .read_exact(&mut got)
            .expect("server read");
        assert_eq!(&got, request);

        let response = b"HTTP/1.1 204 No Content\r\n\r\n";
        self.server
            .writer()
            .write_all(response)
            .expect("server write");
        pump(&mut self.client, &mut self.server).expect("response");
        let mut got = vec![0; response.len()];
        self.client
            .reader()
            .read_exact(&mut got)
            .expect("client read");
        assert_eq!(&got, response);
    }
}

fn is_fs_aead(suite: rustls::SupportedCipherSuite) -> bool {
    use rustls::CipherSuite::*;
    matches!(
        suite.suite(),
        TLS13_AES_128_GCM_SHA256
            | TLS13_AES_256_GCM_SHA384
            | TLS13_CHACHA20_POLY1305_SHA256
            | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            | TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    )
}

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

// ---------------------------------------------------------------------------------------------
// Provider and ServerConfig shape

#[test]
fn provider_is_restricted_and_shared() {
    let provider = provider();
    assert!(Arc::ptr_eq(&provider, &super::provider()), "built once");
    assert_eq!(provider.cipher_suites.len(), 9);
    for suite in &provider.cipher_suites {
        assert!(is_fs_aead(*suite), "{:?}", suite.suite());
    }
    let groups: Vec<_> = provider.kx_groups.iter().map(|g| g.name()).collect();
    use rustls::NamedGroup::*;
    assert_eq!(groups, [X25519MLKEM768, X25519, secp256r1, secp384r1]);
}

#[test]
fn server_config_settings() {
    let keys = vec![p256(&["a.test"])];
    let config = server_config(
        keys.clone(),
        &TlsOptions::default(),
        Some(ticketer().expect("ticketer")),
    )
    .expect("config");
    assert!(
        Arc::ptr_eq(config.crypto_provider(), &provider()),
        "our provider, not the default"
    );
    assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    assert!(!config.ignore_client_order);
    assert_eq!(config.max_fragment_size, None);
    assert_eq!(config.max_early_data_size, 0, "no 0-RTT");
    assert_eq!(config.send_tls13_tickets, 2);
    assert!(config.ticketer.enabled());

    let no_tickets = server_config(keys.clone(), &options(4096, false), None).expect("config");
    assert!(!no_tickets.ticketer.enabled());
    assert_eq!(no_tickets.send_tls13_tickets, 1, "stateful TLS 1.3 tickets");

    // tickets = true but no ticketer given (as `ringway check` does): no tickets.
    let unshared = server_config(keys.clone(), &options(0, true), None).expect("config");
    assert!(!unshared.ticketer.enabled());
    assert_eq!(unshared.send_tls13_tickets, 0);

    assert!(matches!(
        server_config(Vec::new(), &TlsOptions::default(), None),
        Err(TlsError::NoCertificates)
    ));
}

// ---------------------------------------------------------------------------------------------
// Full handshakes

#[test]
fn full_handshake_every_key_type_and_version() {
    for (kind, alg) in [
        ("p256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("p384", &rcgen::PKCS_ECDSA_P384_SHA384),
        ("rsa", &rcgen::PKCS_RSA_SHA256),
        ("ed25519", &rcgen::PKCS_ED25519),
    ] {
        let server = server_config(vec![leaf(&["a.test"], alg)], &TlsOptions::default(), None)
            .expect("config");
        for (version, versions) in [
            (ProtocolVersion::TLSv1_3, TLS13),
            (ProtocolVersion::TLSv1_2, TLS12),
        ] {
            let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
            let mut pair = Pair::new(&client, &server, "a.test");
            pair.handshake()
                .unwrap_or_else(|e| panic!("{kind} {version:?}: {e:?}"));
            assert_eq!(pair.server.protocol_version(), Some(version), "{kind}");
            assert_eq!(pair.server.handshake_kind(), Some(HandshakeKind::Full));
            let suite = pair.server.negotiated_cipher_suite().expect("suite");
            assert!(is_fs_aead(suite), "{kind}: {:?}", suite.suite());
            assert_eq!(pair.server.alpn_protocol(), Some(ALPN_HTTP11));
            assert_eq!(pair.client.alpn_protocol(), Some(ALPN_HTTP11));
            pair.exchange();
        }
    }
}

#[test]
fn the_post_quantum_hybrid_is_negotiated_with_a_client_that_prefers_it() {
    let server =
        server_config(vec![p256(&["a.test"])], &TlsOptions::default(), None).expect("config");
    let mut client_provider = aws_lc_rs::default_provider();
    client_provider.kx_groups = vec![
        aws_lc_rs::kx_group::X25519MLKEM768,
        aws_lc_rs::kx_group::X25519,
    ];
    let mut client = ClientConfig::builder_with_provider(Arc::new(client_provider))
        .with_protocol_versions(TLS13)
        .expect("versions")
        .with_root_certificates(roots())
        .with_no_client_auth();
    client.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    let mut pair = Pair::new(&Arc::new(client), &server, "a.test");
    pair.handshake().expect("handshake");
    assert_eq!(
        pair.server
            .negotiated_key_exchange_group()
            .map(|g| g.name()),
        Some(rustls::NamedGroup::X25519MLKEM768)
    );
    assert_eq!(
        pair.server.handshake_kind(),
        Some(HandshakeKind::Full),
        "no HelloRetryRequest"
    );
}

// ---------------------------------------------------------------------------------------------
// SNI

#[test]
fn sni_selects_the_certificate_and_the_client_verifies_it() {
    let default = p256(&["default.test"]);
    let exact = p256(&["api.example.com"]);
    let wildcard = p256(&["*.example.com"]);
    let server = server_config(
        vec![default.clone(), exact.clone(), wildcard.clone()],
        &TlsOptions::default(),
        None,
    )
    .expect("config");
    for versions in [TLS13, TLS12] {
        let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
        for (name, want) in [
            ("default.test", &default),
            ("api.example.com", &exact),
            ("www.example.com", &wildcard),
        ] {
            let mut pair = Pair::new(&client, &server, name);
            pair.handshake().unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(pair.leaf(), want.cert[0], "{name}");
            assert_eq!(pair.sni(), Some(name));
        }
    }
}

#[test]
fn wildcard_matches_one_label_and_unknown_names_get_the_default() {
    let default = p256(&["default.test"]);
    let wildcard = p256(&["*.example.com"]);
    let server = server_config(
        vec![default.clone(), wildcard.clone()],
        &TlsOptions::default(),
        None,
    )
    .expect("config");
    let client = Arc::new(observing_client(TLS13));
    for name in ["a.b.example.com", "example.com", "unknown.test"] {
        let mut pair = Pair::new(&client, &server, name);
        pair.handshake().unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(pair.leaf(), default.cert[0], "{name} gets the default");
    }

    // A verifying client asking for a.b.example.com gets the default, which does not cover
    // the name: the client refuses it.
    let verifying = Arc::new(verifying_client(TLS13, &[ALPN_HTTP11]));
    let mut pair = Pair::new(&verifying, &server, "a.b.example.com");
    let (side, error) = pair.handshake().expect_err("name not covered");
    assert_eq!(side, Side::Client);
    assert!(
        matches!(error, rustls::Error::InvalidCertificate(_)),
        "{error:?}"
    );
}

#[test]
fn no_sni_gets_the_default_certificate() {
    let default = p256(&["default.test", "127.0.0.1"]);
    let other = p256(&["other.test"]);
    let server =
        server_config(vec![default.clone(), other], &TlsOptions::default(), None).expect("config");

    // rustls sends no SNI for an IP address, nor when SNI is disabled.
    let client = Arc::new(verifying_client(TLS13, &[ALPN_HTTP11]));
    let mut pair = Pair::new(&client, &server, "127.0.0.1");
    pair.handshake().expect("handshake by IP");
    assert_eq!(pair.sni(), None);
    assert_eq!(pair.leaf(), default.cert[0]);

    let mut no_sni = verifying_client(TLS12, &[ALPN_HTTP11]);
    no_sni.enable_sni = false;
    let mut pair = Pair::new(&Arc::new(no_sni), &server, "default.test");
    pair.handshake().expect("handshake without SNI");
    assert_eq!(pair.sni(), None);
    assert_eq!(pair.leaf(), default.cert[0]);
}

// ---------------------------------------------------------------------------------------------
// ALPN

#[test]
fn alpn_negotiates_http11_only() {
    let server =
        server_config(vec![p256(&["a.test"])], &TlsOptions::default(), None).expect("config");
    for versions in [TLS13, TLS12] {
        // Offered among others: http/1.1 is chosen.
        let client = Arc::new(verifying_client(versions, &[b"h2", ALPN_HTTP11]));
        let mut pair = Pair::new(&client, &server, "a.test");
        pair.handshake().expect("h2 + http/1.1");
        assert_eq!(pair.client.alpn_protocol(), Some(ALPN_HTTP11));

        // No ALPN at all (curl --no-alpn, most load generators): HTTP/1.1 without ALPN.
        let client = Arc::new(verifying_client(versions, &[]));
        let mut pair = Pair::new(&client, &server, "a.test");
        pair.handshake().expect("no ALPN");
        assert_eq!(pair.server.alpn_protocol(), None);
        assert_eq!(pair.client.alpn_protocol(), None);

        // Only h2: rustls refuses with no_application_protocol (RFC 7301 §3.2) rather than
        // carrying on without ALPN, so an h2-only client never speaks h2 to an HTTP/1.1 server.
        let client = Arc::new(verifying_client(versions, &[b"h2"]));
        let mut pair = Pair::new(&client, &server, "a.test");
        let (side, error) = pair.handshake().expect_err("h2 only");
        assert_eq!(side, Side::Server);
        assert_eq!(error, rustls::Error::NoApplicationProtocol);
        assert_eq!(
            pair.client.process_new_packets().err(),
            Some(rustls::Error::AlertReceived(
                AlertDescription::NoApplicationProtocol
            ))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Cipher suites a client cannot get
//
// rustls implements no non-AEAD (CBC) and no non-forward-secret (static RSA key exchange)
// suite, so a rustls client cannot offer one. These tests send a hand-written TLS 1.2
// ClientHello instead.

/// A TLS 1.2 ClientHello offering `suites`, with the extensions a real client sends (SNI,
/// supported groups, point formats, signature algorithms, EMS, renegotiation_info).
fn client_hello_tls12(suites: &[u16]) -> Vec<u8> {
    fn ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend(kind.to_be_bytes());
        out.extend((data.len() as u16).to_be_bytes());
        out.extend(data);
    }
    fn vec16(items: &[u16]) -> Vec<u8> {
        let mut out = ((items.len() * 2) as u16).to_be_bytes().to_vec();
        items.iter().for_each(|item| out.extend(item.to_be_bytes()));
        out
    }
    let name = b"a.test";
    let mut sni = Vec::new();
    sni.extend(((name.len() + 3) as u16).to_be_bytes());
    sni.push(0); // host_name
    sni.extend((name.len() as u16).to_be_bytes());
    sni.extend(name);

    let mut extensions = Vec::new();
    ext(&mut extensions, 0x0000, &sni);
    ext(&mut extensions, 0x000a, &vec16(&[0x001d, 0x0017, 0x0018]));
    ext(&mut extensions, 0x000b, &[1, 0]);
    ext(
        &mut extensions,
        0x000d,
        &vec16(&[0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501]),
    );
    ext(&mut extensions, 0x0017, &[]);
    ext(&mut extensions, 0xff01, &[0]);

    let mut body = vec![0x03, 0x03];
    body.extend([0x42; 32]); // random
    body.push(0); // no session id
    body.extend(vec16(suites));
    body.extend([1, 0]); // null compression only
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);

    let mut handshake = vec![0x01];
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);

    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// Feeds a ClientHello to a fresh server connection: the error, if any, and the server's reply.
fn send_hello(hello: &[u8]) -> (Result<(), rustls::Error>, Vec<u8>) {
    let server = server_config(
        vec![
            p256(&["a.test"]),
            leaf(&["a.test"], &rcgen::PKCS_RSA_SHA256),
        ],
        &TlsOptions::default(),
        None,
    )
    .expect("config");
    let mut conn = ServerConnection::new(server).expect("server");
    let mut rest = hello;
    conn.read_tls(&mut rest).expect("read_tls");
    let result = conn.process_new_packets().map(|_| ());
    let mut reply = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut reply).expect("write_tls");
    }
    (result, reply)
}

#[test]
fn tls12_client_with_only_weak_suites_is_refused() {
    // The hand-written hello is otherwise acceptable: with an ECDHE-AEAD suite the server
    // answers with a ServerHello.
    let (result, reply) = send_hello(&client_hello_tls12(&[0xc02b]));
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(reply[0], 0x16, "a handshake record");
    assert_eq!(reply[5], 0x02, "ServerHello");

    for (what, suites) in [
        // RSA key exchange: no forward secrecy.
        ("static RSA, AES-GCM", &[0x009c_u16, 0x009d][..]),
        // ECDHE, but CBC with HMAC: not AEAD.
        (
            "ECDHE, CBC",
            &[0xc009, 0xc00a, 0xc013, 0xc014, 0xc023, 0xc027][..],
        ),
        // Both, plus 3DES and RC4 for good measure.
        ("legacy", &[0x002f, 0x0035, 0x000a, 0x0005][..]),
    ] {
        let (result, reply) = send_hello(&client_hello_tls12(suites));
        assert_eq!(
            result,
            Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoCipherSuitesInCommon
            )),
            "{what}"
        );
        // A fatal handshake_failure alert: content type 21, level 2, description 40.
        assert_eq!(reply, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28], "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Resumption

/// Two connections from one client config: the first full, the second as the server sees it.
fn second_handshake_kind(
    client: &Arc<ClientConfig>,
    first: &Arc<rustls::ServerConfig>,
    second: &Arc<rustls::ServerConfig>,
) -> HandshakeKind {
    let mut pair = Pair::new(client, first, "a.test");
    pair.handshake().expect("first handshake");
    assert_eq!(pair.server.handshake_kind(), Some(HandshakeKind::Full));
    pair.exchange();

    let mut pair = Pair::new(client, second, "a.test");
    pair.handshake().expect("second handshake");
    pair.exchange();
    let kind = pair.server.handshake_kind().expect("kind");
    assert_eq!(pair.client.handshake_kind(), Some(kind));
    kind
}

#[test]
fn resumption_with_tickets_across_server_connections() {
    let server = server_config(
        vec![p256(&["a.test"])],
        &options(0, true),
        Some(ticketer().expect("ticketer")),
    )
    .expect("config");
    for versions in [TLS13, TLS12] {
        let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
        assert_eq!(
            second_handshake_kind(&client, &server, &server),
            HandshakeKind::Resumed,
            "{versions:?}"
        );
    }
}

#[test]
fn one_ticketer_resumes_across_configs_and_another_does_not() {
    // Two listeners' (or two reloads') configs, as main builds them.
    let key = p256(&["a.test"]);
    let shared = ticketer().expect("ticketer");
    let first =
        server_config(vec![key.clone()], &options(0, true), Some(shared.clone())).expect("config");
    let same = server_config(vec![key.clone()], &options(0, true), Some(shared)).expect("config");
    let other = server_config(
        vec![key],
        &options(0, true),
        Some(ticketer().expect("ticketer")),
    )
    .expect("config");
    for versions in [TLS13, TLS12] {
        let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
        assert_eq!(
            second_handshake_kind(&client, &first, &same),
            HandshakeKind::Resumed,
            "{versions:?} shared ticketer"
        );
        let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
        assert_eq!(
            second_handshake_kind(&client, &first, &other),
            HandshakeKind::Full,
            "{versions:?} foreign ticketer"
        );
    }
}

#[test]
fn resumption_with_the_stateful_cache_only() {
    let server = server_config(vec![p256(&["a.test"])], &options(16, false), None).expect("config");
    for versions in [TLS13, TLS12] {
        let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
        assert_eq!(
            second_handshake_kind(&client, &server, &server),
            HandshakeKind::Resumed,
            "{versions:?}"
        );
    }
}

#[test]
fn no_resumption_when_both_are_off() {
    let server = server_config(
        vec![p256(&["a.test"])],
        &options(0, false),
        Some(ticketer().expect("ticketer")),
    )
    .expect("config");
    for versions in [TLS13, TLS12] {
        let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
        assert_eq!(
            second_handshake_kind(&client, &server, &server),
            HandshakeKind::Full,
            "{versions:?}"
        );
    }
}

#[test]
fn ticket_keys_from_one_file_resume_across_instances() {
    // Two instances of a fleet (two processes, or one before and after a reload), each with
    // its own ticketer parsed from the same key file; a third with other keys.
    let key_line = |byte: u8| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([byte; ticket_keys::KEY_LINE_LEN])
    };
    let text = format!("{}\n{}\n", key_line(1), key_line(2));
    let path = Path::new("ticket.keys");
    let instance = |text: &str| {
        let keys = ticket_keys::parse(text, path).expect("key file");
        server_config(
            vec![p256(&["a.test"])],
            &options(0, true),
            Some(Arc::new(keys)),
        )
        .expect("config")
    };
    let first = instance(&text);
    let second = instance(&text);
    // The second key moved first: the tickets of the first instance still open.
    let rotated = instance(&format!("{}\n{}\n", key_line(2), key_line(1)));
    let stranger = instance(&format!("{}\n", key_line(3)));
    for versions in [TLS13, TLS12] {
        for (other, expected, what) in [
            (&second, HandshakeKind::Resumed, "same file"),
            (&rotated, HandshakeKind::Resumed, "rotated file"),
            (&stranger, HandshakeKind::Full, "other keys"),
        ] {
            let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
            assert_eq!(
                second_handshake_kind(&client, &first, other),
                expected,
                "{versions:?} {what}"
            );
        }
    }
}

#[test]
fn client_auth_tickets_resume_only_under_the_same_policy() {
    let dir = TempDir::new("client-auth-tickets");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca().pem()).expect("write CA");
    let other = rcgen::CertifiedIssuer::self_signed(
        {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
        },
        KeyPair::generate().expect("key"),
    )
    .expect("other CA");
    let other_path = dir.path().join("other.pem");
    std::fs::write(&other_path, other.pem()).expect("write other CA");

    let key = p256(&["a.test"]);
    let shared = ticketer().expect("ticketer");
    // Optional: a client without a certificate completes both handshakes, so each one shows
    // whether it resumed.
    let config = |auth: Option<&Path>| {
        let auth = auth.map(|path| {
            load_client_auth(path, None, ClientAuthMode::Optional).expect("client auth")
        });
        server_config_with(
            vec![key.clone()],
            &options(0, true),
            Some(shared.clone()),
            auth.as_ref(),
        )
        .expect("config")
    };
    let plain = config(None);
    let mtls = config(Some(&ca_path));
    let reloaded = config(Some(&ca_path));
    let other_ca = config(Some(&other_path));
    for versions in [TLS13, TLS12] {
        for (first, second, expected, what) in [
            (&mtls, &reloaded, HandshakeKind::Resumed, "same CA file"),
            (
                &plain,
                &mtls,
                HandshakeKind::Full,
                "from a listener without client_auth",
            ),
            (&mtls, &other_ca, HandshakeKind::Full, "another CA file"),
            (
                &mtls,
                &plain,
                HandshakeKind::Full,
                "to a listener without client_auth",
            ),
        ] {
            let client = Arc::new(verifying_client(versions, &[ALPN_HTTP11]));
            assert_eq!(
                second_handshake_kind(&client, first, second),
                expected,
                "{versions:?}: {what}"
            );
        }
    }
}
