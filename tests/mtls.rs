//! Client certificates (mutual TLS) and OCSP stapling, end to end: a real ringway process,
//! rcgen CAs and client certificates, rustls clients (and curl and openssl once each), a
//! backend that records what it receives, the access log.
//!
//! - `require`: a valid certificate is served and the backend sees its subject, SANs and
//!   fingerprint; no certificate, another CA's, an expired one, a revoked one: refused, nothing
//!   forwarded, the access log, the log and the admin counters say why; a resumed session
//!   keeps its certificate.
//! - `optional`: no certificate is served (`X-Client-Verify: NONE`); a valid one gets the
//!   headers.
//! - Client-sent copies of the headers never reach a backend, with or without client_auth.
//! - TLS 1.2 clients are refused during the handshake itself.
//! - A reload applies a new CA file; a connection verified under the old one is closed after
//!   its next request (one that changes nothing of client_auth keeps it).
//! - OCSP: the stapled response reaches the client; a changed file and a reload staple the new
//!   one.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber, date_time_ymd,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Certificates

/// A CA that signs client certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("ca");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate for `cn` with a DNS, an email and a URI SAN.
    fn client(&self, cn: &str, serial: u64, expired: bool) -> Identity {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        // Most significant first, as a CA writes them: C, O, CN.
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "DE");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Example, Inc.");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = vec![
            SanType::DnsName(format!("{cn}.example.com").try_into().expect("dns")),
            SanType::Rfc822Name(format!("{cn}@example.com").try_into().expect("email")),
            SanType::URI(
                format!("spiffe://example.com/{cn}")
                    .try_into()
                    .expect("uri"),
            ),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(SerialNumber::from(serial));
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("client");
        Identity {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// A CRL that revokes the certificate with `serial`.
    fn crl_revoking(&self, serial: u64) -> String {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2020, 1, 1),
            next_update: date_time_ymd(4000, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: date_time_ymd(2020, 1, 1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .expect("crl")
            .pem()
            .expect("pem")
    }
}

/// A client certificate and its key.
struct Identity {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
    key_der: Vec<u8>,
}

impl Identity {
    /// SHA-256 of the certificate's DER, lowercase hex.
    fn fingerprint(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Writes the certificate and key as PEM files in `dir`.
    fn write(&self, dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{tag}.pem"));
        let key = dir.join(format!("{tag}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write");
        std::fs::write(&key, &self.key_pem).expect("write");
        (cert, key)
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// Accepts any server certificate and records the OCSP response stapled to it.
#[derive(Debug)]
struct Recorder {
    provider: Arc<rustls::crypto::CryptoProvider>,
    ocsp: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        ocsp_response: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.ocsp.lock().unwrap() = Some(ocsp_response.to_vec());
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration presenting `identity` (none: no certificate), and its recorder.
fn client(identity: Option<&Identity>) -> (Arc<ClientConfig>, Arc<Recorder>) {
    client_with(identity, rustls::ALL_VERSIONS)
}

/// [`client`] with only `versions`.
fn client_with(
    identity: Option<&Identity>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Arc<ClientConfig>, Arc<Recorder>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let recorder = Arc::new(Recorder {
        provider: provider.clone(),
        ocsp: Mutex::new(None),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone());
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![id.der.clone()],
                PrivateKeyDer::Pkcs8(id.key_der.clone().into()),
            )
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every connection a full handshake: resumption is tested on its own.
    config.resumption = rustls::client::Resumption::disabled();
    (Arc::new(config), recorder)
}

/// One `GET path` with `Connection: close` and `extra` header lines; the response's status
/// and body, or the error that ended the connection (a refused handshake).
fn get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: &str,
    extra: &str,
) -> Result<u16, String> {
    let mut tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    let mut tls = StreamOwned::new(conn, tcp);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
                break;
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("no response: {text:?}"))
}

// ---------------------------------------------------------------------------------------------
// The proxy

/// A proxy whose listener has `client_auth` (TOML inline table, or nothing), an access log,
/// and the backend it forwards to.
struct Setup {
    proxy: Proxy,
    backend: Backend,
    log: PathBuf,
}

fn start(dir: &Path, client_auth: Option<&str>) -> Setup {
    let backend = Backend::start("app");
    let log = dir.join("access.log");
    let mut listener = format!("backends = [\"{}\"]\n", backend.addr);
    if let Some(auth) = client_auth {
        listener.push_str(&format!("client_auth = {auth}\n"));
    }
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: format!(
                "[admin]\naddress = \"127.0.0.1:0\"\n\
                 [access_log]\nenabled = true\npath = \"{}\"\n",
                log.display()
            ),
            listener: Some(listener),
            ..ProxyOptions::default()
        },
    );
    Setup {
        proxy,
        backend,
        log,
    }
}

impl Setup {
    /// The access log's lines whose termination is `client/<reason>`, waiting for `n`.
    fn refusals(&self, reason: &str, n: usize) -> Vec<Value> {
        let wanted = format!("client/{reason}");
        let mut found = Vec::new();
        let seen = wait_until(Duration::from_secs(5), || {
            found = std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|l| l["termination"] == wanted.as_str())
                .collect();
            found.len() >= n
        });
        assert!(
            seen,
            "no {n} access log lines for {reason}: {:?}\n{}",
            std::fs::read_to_string(&self.log),
            self.proxy.log()
        );
        found
    }
}

/// The admin listener's `/metrics` sample for handshakes refused for `reason`.
fn refused_count(proxy: &Proxy, reason: &str) -> f64 {
    let log = proxy.log();
    let marker = "admin listener on http://";
    let rest = &log[log.find(marker).expect("the admin listener's line") + marker.len()..];
    let admin: SocketAddr = rest[..rest.find('/').unwrap_or(rest.len())]
        .parse()
        .expect("the admin address");
    let mut s = TcpStream::connect(admin).expect("connect to the admin listener");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let series = format!("ringway_tls_handshake_failures_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series}:\n{text}"))
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// The headers a backend received about the client's certificate.
fn cert_headers(received: &Received) -> [Option<String>; 4] {
    [
        "X-Client-Verify",
        "X-Client-Cert-Subject",
        "X-Client-Cert-SAN",
        "X-Client-Cert-Fingerprint",
    ]
    .map(|name| {
        assert!(
            received.headers_named(name).len() <= 1,
            "{name} twice: {received:?}"
        );
        received.header(name).map(str::to_owned)
    })
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn require_serves_a_valid_certificate_and_refuses_the_rest_with_a_reason() {
    let dir = temp_dir("mtls-require");
    let ca = Ca::new("Clients CA");
    let other = Ca::new("Other CA");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let s = start(
        &dir,
        Some(&format!(
            "{{ ca = \"{}\", mode = \"require\" }}",
            ca_path.display()
        )),
    );
    let valid = ca.client("alice", 1, false);

    let (config, _) = client(Some(&valid));
    assert_eq!(get(s.proxy.addr, config, "/valid", ""), Ok(200));
    let received = s.backend.received();
    assert_eq!(received.len(), 1);
    let [verify, subject, san, fingerprint] = cert_headers(&received[0]);
    assert_eq!(verify.as_deref(), Some("SUCCESS"));
    assert_eq!(subject.as_deref(), Some(r"CN=alice,O=Example\, Inc.,C=DE"));
    assert_eq!(
        san.as_deref(),
        Some("DNS:alice.example.com, email:alice@example.com, URI:spiffe://example.com/alice")
    );
    assert_eq!(fingerprint, Some(valid.fingerprint()));

    // Refused: no certificate, another CA's, an expired one. Nothing reaches the backend.
    for (identity, reason) in [
        (None, "client_cert_required"),
        (
            Some(other.client("mallory", 2, false)),
            "client_cert_unknown_ca",
        ),
        (Some(ca.client("old", 3, true)), "client_cert_expired"),
    ] {
        let (config, _) = client(identity.as_ref());
        let result = get(s.proxy.addr, config, "/refused", "");
        assert!(result.is_err(), "{reason}: {result:?}");
        let lines = s.refusals(reason, 1);
        assert_eq!(lines[0]["status"], 0, "{reason}");
        assert_eq!(lines[0]["method"], Value::Null, "{reason}");
    }
    assert_eq!(
        s.backend.received().len(),
        1,
        "nothing refused was forwarded"
    );
    for reason in [
        "client_cert_required",
        "client_cert_unknown_ca",
        "client_cert_expired",
    ] {
        assert_eq!(refused_count(&s.proxy, reason), 1.0, "{reason}");
    }
    assert_eq!(refused_count(&s.proxy, "client_cert_revoked"), 0.0);
    // The first refusal is logged at INFO (then at most one a second per worker).
    let log = s.proxy.log();
    let line = log
        .lines()
        .find(|l| l.contains("client certificate refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(
        line.contains("INFO") && line.contains("client_cert_required"),
        "{line}"
    );
}

#[test]
fn tls12_clients_are_refused_during_the_handshake() {
    let dir = temp_dir("mtls-tls12");
    let ca = Ca::new("Clients CA");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let s = start(&dir, Some(&format!("{{ ca = \"{}\" }}", ca_path.display())));
    let tls12 = &[&rustls::version::TLS12];
    let (config, _) = client_with(Some(&ca.client("erin", 12, false)), tls12);
    assert_eq!(get(s.proxy.addr, config, "/tls12", ""), Ok(200));
    for (identity, reason) in [
        (None, "client_cert_required"),
        (
            Some(Ca::new("Other").client("mallory", 13, false)),
            "client_cert_unknown_ca",
        ),
    ] {
        let (config, _) = client_with(identity.as_ref(), tls12);
        let result = get(s.proxy.addr, config, "/refused", "");
        // TLS 1.2: the server's alert comes before the client's handshake is over.
        assert!(
            result.as_ref().is_err_and(|e| e.starts_with("handshake:")),
            "{reason}: {result:?}"
        );
        s.refusals(reason, 1);
    }
    let received = s.backend.received();
    assert_eq!(received.len(), 1);
    assert_eq!(cert_headers(&received[0])[0].as_deref(), Some("SUCCESS"));
}

#[test]
fn optional_serves_clients_without_a_certificate() {
    let dir = temp_dir("mtls-optional");
    let ca = Ca::new("Clients CA");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let s = start(
        &dir,
        Some(&format!(
            "{{ ca = \"{}\", mode = \"optional\" }}",
            ca_path.display()
        )),
    );
    let (config, _) = client(None);
    // A client without a certificate claiming one in headers: told NONE all the same.
    let forged = "X-Client-Verify: SUCCESS\r\nX-Client-Cert-Subject: CN=admin\r\n";
    assert_eq!(get(s.proxy.addr, config, "/none", forged), Ok(200));
    let valid = ca.client("bob", 7, false);
    let (config, _) = client(Some(&valid));
    assert_eq!(get(s.proxy.addr, config, "/cert", ""), Ok(200));
    let received = s.backend.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        cert_headers(&received[0]),
        [Some("NONE".to_owned()), None, None, None]
    );
    let [verify, subject, _, fingerprint] = cert_headers(&received[1]);
    assert_eq!(verify.as_deref(), Some("SUCCESS"));
    assert_eq!(subject.as_deref(), Some(r"CN=bob,O=Example\, Inc.,C=DE"));
    assert_eq!(fingerprint, Some(valid.fingerprint()));

    // A certificate that does not verify is refused even where none is required.
    let (config, _) = client(Some(&Ca::new("Other").client("eve", 8, false)));
    assert!(get(s.proxy.addr, config, "/bad", "").is_err());
    s.refusals("client_cert_unknown_ca", 1);
    assert_eq!(s.backend.received().len(), 2);
}

#[test]
fn client_sent_certificate_headers_never_reach_a_backend() {
    let dir = temp_dir("mtls-forged");
    let s = start(&dir, None);
    let mut c = s.proxy.client();
    c.send(
        b"GET /forged HTTP/1.1\r\nHost: localhost\r\nX-Client-Verify: SUCCESS\r\n\
          X-Client-Cert-Subject: CN=admin\r\nx-client-cert-san: DNS:admin\r\n\
          X-CLIENT-CERT-FINGERPRINT: 00\r\nX-Client-Cert-Extra: kept\r\n\r\n",
    );
    assert_eq!(c.read_response("GET").expect("response").status, 200);
    let received = s.backend.received();
    assert_eq!(cert_headers(&received[0]), [None, None, None, None]);
    assert_eq!(received[0].header("X-Client-Cert-Extra"), Some("kept"));
}

#[test]
fn a_resumed_session_keeps_its_certificate() {
    let dir = temp_dir("mtls-resume");
    let ca = Ca::new("Clients CA");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let s = start(&dir, Some(&format!("{{ ca = \"{}\" }}", ca_path.display())));
    let dave = ca.client("dave", 11, false);
    let (config, _) = client(Some(&dave));
    // The same configuration twice: the second connection resumes the first's session.
    let mut config = Arc::unwrap_or_clone(config);
    config.resumption = rustls::client::Resumption::default();
    let config = Arc::new(config);
    for path in ["/first", "/resumed"] {
        let mut c = Client::connect_with(s.proxy.addr, Some("localhost"), config.clone());
        assert_eq!(c.get(path).status, 200);
        if path == "/resumed" {
            assert_eq!(
                c.tls.conn.handshake_kind(),
                Some(rustls::HandshakeKind::Resumed)
            );
        }
    }
    let received = s.backend.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        let [verify, _, _, fingerprint] = cert_headers(r);
        assert_eq!(verify.as_deref(), Some("SUCCESS"), "{}", r.path);
        assert_eq!(fingerprint, Some(dave.fingerprint()), "{}", r.path);
    }
}

#[test]
fn a_revoked_certificate_is_refused_with_a_crl() {
    let dir = temp_dir("mtls-crl");
    let ca = Ca::new("Clients CA");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let crl_path = write(&dir, "clients.crl", ca.crl_revoking(66));
    let s = start(
        &dir,
        Some(&format!(
            "{{ ca = \"{}\", crl = \"{}\" }}",
            ca_path.display(),
            crl_path.display()
        )),
    );
    let (config, _) = client(Some(&ca.client("kept", 65, false)));
    assert_eq!(get(s.proxy.addr, config, "/", ""), Ok(200));
    let (config, _) = client(Some(&ca.client("revoked", 66, false)));
    assert!(get(s.proxy.addr, config, "/", "").is_err());
    s.refusals("client_cert_revoked", 1);
    assert_eq!(s.backend.received().len(), 1);
}

#[test]
fn a_reload_applies_a_new_ca_and_closes_connections_verified_under_the_old_one() {
    let dir = temp_dir("mtls-reload");
    let (first, second) = (Ca::new("First CA"), Ca::new("Second CA"));
    let ca_path = write(&dir, "ca.pem", &first.pem);
    let s = start(&dir, Some(&format!("{{ ca = \"{}\" }}", ca_path.display())));
    let (old_config, _) = client(Some(&first.client("old", 1, false)));
    let (new_config, _) = client(Some(&second.client("new", 2, false)));
    assert_eq!(get(s.proxy.addr, old_config.clone(), "/", ""), Ok(200));
    assert!(get(s.proxy.addr, new_config.clone(), "/", "").is_err());

    // A keep-alive connection verified under the first CA.
    let mut open = Client::connect_with(s.proxy.addr, Some("localhost"), old_config.clone());
    assert_eq!(open.get("/before").status, 200);
    // A reload that changes nothing of client_auth keeps it.
    let line = s.proxy.reload();
    assert!(line.contains("configuration reloaded"), "{line}");
    let same = open.get("/same");
    assert_eq!((same.status, same.header("Connection")), (200, None));

    std::fs::write(&ca_path, &second.pem).expect("write");
    let line = s.proxy.reload();
    assert!(line.contains("configuration reloaded"), "{line}");
    assert!(
        line.contains("certificate files changed") && line.contains("ca.pem"),
        "{line}"
    );
    assert!(get(s.proxy.addr, old_config, "/", "").is_err());
    s.refusals("client_cert_unknown_ca", 2);
    assert_eq!(get(s.proxy.addr, new_config, "/", ""), Ok(200));

    // Its next request is served (on the plan it was verified under), then it is closed.
    let after = open.get("/after");
    assert_eq!(after.status, 200);
    assert_eq!(after.header("Connection"), Some("close"));
    assert!(open.is_closed());
}

/// An OCSP response without a body (RFC 6960 §4.2.1: only a status that is not `successful`,
/// here `malformedRequest` (1), `internalError` (2) or `tryLater` (3)): DER that openssl can
/// read, which is all stapling needs (rustls staples what it is given; clients judge it).
fn ocsp_blob(status: u8) -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, status]
}

fn start_with_ocsp(dir: &Path, ocsp: &Path) -> (Proxy, Backend) {
    let backend = Backend::start("app");
    let cert = write_cert(dir, "stapled", &["localhost"]);
    let listener = format!(
        "backends = [\"{}\"]\n[[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\nocsp = \"{}\"\n",
        backend.addr,
        cert.cert.display(),
        cert.key.display(),
        ocsp.display()
    );
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            certs: Vec::new(),
            listener: Some(listener),
            ..ProxyOptions::default()
        },
    );
    (proxy, backend)
}

#[test]
fn the_ocsp_response_is_stapled_and_a_reload_staples_a_new_one() {
    let dir = temp_dir("mtls-ocsp");
    let ocsp = write(&dir, "stapled.ocsp", ocsp_blob(1));
    let (proxy, _backend) = start_with_ocsp(&dir, &ocsp);
    let stapled = || {
        let (config, recorder) = client(None);
        assert_eq!(get(proxy.addr, config, "/", ""), Ok(200));
        recorder.ocsp.lock().unwrap().clone().expect("verified")
    };
    assert_eq!(stapled(), ocsp_blob(1));

    std::fs::write(&ocsp, ocsp_blob(2)).expect("write");
    let line = proxy.reload();
    assert!(line.contains("configuration reloaded"), "{line}");
    assert!(line.contains("stapled.ocsp"), "{line}");
    assert_eq!(stapled(), ocsp_blob(2));

    // A file that is no longer DER: the reload fails and the response in force stays.
    std::fs::write(&ocsp, b"").expect("write");
    let line = proxy.reload();
    assert!(
        line.contains("reload failed") && line.contains("ocsp") && line.contains("empty"),
        "{line}"
    );
    assert_eq!(stapled(), ocsp_blob(2));
}

// ---------------------------------------------------------------------------------------------
// External clients: curl and openssl (skipped when they are not installed)

fn installed(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

#[test]
fn curl_with_a_client_certificate() {
    if !installed("curl") {
        eprintln!("curl is not installed: skipped");
        return;
    }
    let dir = temp_dir("mtls-curl");
    let ca = Ca::new("Clients CA");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let s = start(&dir, Some(&format!("{{ ca = \"{}\" }}", ca_path.display())));
    let carol = ca.client("carol", 9, false);
    let (cert, key) = carol.write(&dir, "carol");
    let url = format!("https://localhost:{}/curl", s.proxy.addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", s.proxy.addr.port());
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-sS", "-k", "--max-time", "10", "--resolve", &resolve])
            .args(args)
            .arg(&url)
            .output()
            .expect("curl")
    };
    let out = curl(&[
        "--cert",
        &cert.display().to_string(),
        "--key",
        &key.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "app GET /curl\n");
    let received = s.backend.received();
    let [verify, subject, _, fingerprint] = cert_headers(&received[0]);
    assert_eq!(verify.as_deref(), Some("SUCCESS"));
    assert_eq!(subject.as_deref(), Some(r"CN=carol,O=Example\, Inc.,C=DE"));
    assert_eq!(fingerprint, Some(carol.fingerprint()));

    // Without a certificate curl fails, and the backend sees nothing.
    let out = curl(&[]);
    assert!(!out.status.success());
    s.refusals("client_cert_required", 1);
    assert_eq!(s.backend.received().len(), 1);
}

#[test]
fn openssl_sees_the_stapled_response() {
    if !installed("openssl") {
        eprintln!("openssl is not installed: skipped");
        return;
    }
    let dir = temp_dir("mtls-openssl");
    let ocsp = write(&dir, "stapled.ocsp", ocsp_blob(3));
    let (proxy, _backend) = start_with_ocsp(&dir, &ocsp);
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-status",
            "-servername",
            "localhost",
            "-connect",
        ])
        .arg(proxy.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    // openssl shows the response it got.
    assert!(
        text.to_ascii_lowercase()
            .contains("ocsp response status: trylater (0x3)"),
        "{text}"
    );
}
