//! The PROXY protocol end to end. Inbound: a listener with `proxy_protocol` reads a v1 or v2
//! header before the TLS handshake and its client address feeds X-Forwarded-For, Forwarded,
//! `client_ip` hashing and the access log (LOCAL keeps the socket's peer); the header and the
//! ClientHello in one write, or the header split over writes; a missing, malformed, slow or
//! untrusted header closes the connection with nothing forwarded. Outbound: an upstream with
//! `send_proxy_protocol` opens each backend connection with the client's header, never shares
//! it with another client, and its health checks send a LOCAL header. Real ringway process,
//! real TLS clients, real backend sockets.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ringway::proxy_protocol::{self, Parsed, ProxyHeader, Version};
use serde_json::Value;

const V1: &[u8] = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

/// `header` written in `version`.
fn header(version: Version, header: ProxyHeader) -> Vec<u8> {
    let mut out = Vec::new();
    proxy_protocol::write(version, &header, &mut out);
    out
}

fn proxied(source: &str, destination: &str) -> ProxyHeader {
    ProxyHeader::Proxied {
        source: addr(source),
        destination: addr(destination),
    }
}

/// A ringway whose listener expects a PROXY header from `trusted` (header timeout
/// `timeout`), in front of `backends`, with the access log in its directory.
fn start(trusted: &str, timeout: &str, backends: &[SocketAddr], extra: &str) -> Proxy {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    let log = temp_dir("pp-log").join("access.log");
    Proxy::start_with(
        backends,
        ProxyOptions {
            extra: format!(
                "[access_log]\nenabled = true\npath = \"{}\"\n{extra}",
                log.display()
            ),
            listener: Some(format!(
                "backends = [{}]\nproxy_protocol = {{ trusted = [{trusted}], timeout = \"{timeout}\" }}",
                list.join(", ")
            )),
            ..ProxyOptions::default()
        },
    )
    .with_log_file(log)
}

/// Where [`start`] put the access log.
trait LogFile {
    fn with_log_file(self, path: std::path::PathBuf) -> Self;
}

impl LogFile for Proxy {
    fn with_log_file(self, path: std::path::PathBuf) -> Self {
        std::fs::write(
            self.dir.join("access-log-path"),
            path.to_string_lossy().as_bytes(),
        )
        .unwrap();
        self
    }
}

/// The access log's JSON lines.
fn log_lines(proxy: &Proxy) -> Vec<Value> {
    let path = std::fs::read_to_string(proxy.dir.join("access-log-path")).unwrap();
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits for an access log line for which `matches` holds.
fn wait_log_line(proxy: &Proxy, matches: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    let seen = wait_until(Duration::from_secs(5), || {
        found = log_lines(proxy).into_iter().find(|l| matches(l));
        found.is_some()
    });
    assert!(seen, "no such access log line: {:?}", log_lines(proxy));
    found.unwrap()
}

/// Connects, writes `header`, then does the TLS handshake on the same socket.
fn connect_with_header(proxy: &Proxy, header: &[u8]) -> std::io::Result<Client> {
    let mut tcp = TcpStream::connect(proxy.addr)?;
    tcp.write_all(header)?;
    Client::over(Client::session(), tcp)
}

/// The backend's one request's `name` field.
fn only_request(backend: &Backend) -> Received {
    let received = backend.received();
    assert_eq!(received.len(), 1, "{received:?}");
    received[0].clone()
}

#[test]
fn v1_header_gives_the_client_address_to_forwarding_headers_and_the_log() {
    let backend = Backend::start("b");
    let proxy = start("\"127.0.0.1/32\"", "5s", &[backend.addr], "");
    let mut c = connect_with_header(&proxy, V1).expect("handshake after the header");
    assert_eq!(c.get("/v1").status, 200);
    let req = only_request(&backend);
    assert_eq!(req.header("X-Forwarded-For"), Some("203.0.113.7"));
    let forwarded = req.header("Forwarded").unwrap_or_default();
    assert!(forwarded.starts_with("for=203.0.113.7;"), "{forwarded}");
    let line = wait_log_line(&proxy, |l| l["target"] == "/v1");
    assert_eq!(line["client"], "203.0.113.7:51234");
    assert_eq!(line["client_ip"], "203.0.113.7");
}

#[test]
fn v2_headers_over_ipv4_and_ipv6_give_the_client_address() {
    let backend = Backend::start("b");
    let proxy = start("\"127.0.0.0/8\", \"::1\"", "5s", &[backend.addr], "");
    let v4 = header(Version::V2, proxied("198.51.100.9:4000", "10.0.0.1:443"));
    let mut c = connect_with_header(&proxy, &v4).expect("v2 TCP4");
    assert_eq!(c.get("/v4").status, 200);
    let v6 = header(
        Version::V2,
        proxied("[2001:db8::7]:4001", "[2001:db8::1]:443"),
    );
    let mut c = connect_with_header(&proxy, &v6).expect("v2 TCP6");
    assert_eq!(c.get("/v6").status, 200);
    let received = backend.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].header("X-Forwarded-For"), Some("198.51.100.9"));
    assert_eq!(received[1].header("X-Forwarded-For"), Some("2001:db8::7"));
    let forwarded = received[1].header("Forwarded").unwrap_or_default();
    assert!(forwarded.contains("for=\"[2001:db8::7]\""), "{forwarded}");
    let line = wait_log_line(&proxy, |l| l["target"] == "/v6");
    assert_eq!(line["client_ip"], "2001:db8::7");
}

#[test]
fn local_headers_keep_the_connections_own_address() {
    let backend = Backend::start("b");
    let proxy = start("\"127.0.0.1\"", "5s", &[backend.addr], "");
    for (version, path) in [(Version::V2, "/v2-local"), (Version::V1, "/v1-unknown")] {
        let local = header(version, ProxyHeader::Local);
        let mut c = connect_with_header(&proxy, &local).expect("LOCAL");
        assert_eq!(c.get(path).status, 200);
    }
    for req in backend.received() {
        assert_eq!(
            req.header("X-Forwarded-For"),
            Some("127.0.0.1"),
            "{}",
            req.path
        );
    }
}

#[test]
fn the_header_and_the_client_hello_in_one_write() {
    let backend = Backend::start("b");
    let proxy = start("\"127.0.0.1\"", "5s", &[backend.addr], "");
    for version in [Version::V1, Version::V2] {
        let mut session = Client::session();
        let mut bytes = header(version, proxied("192.0.2.44:1234", "10.0.0.1:443"));
        let before = bytes.len();
        session.write_tls(&mut bytes).expect("the ClientHello");
        assert!(bytes.len() > before + 100, "a whole ClientHello");
        let mut tcp = TcpStream::connect(proxy.addr).unwrap();
        tcp.write_all(&bytes).unwrap();
        let mut c = Client::over(session, tcp).expect("handshake");
        assert_eq!(c.get("/one-write").status, 200);
    }
    for req in backend.received() {
        assert_eq!(req.header("X-Forwarded-For"), Some("192.0.2.44"));
    }
}

#[test]
fn a_header_split_over_writes_is_gathered() {
    let backend = Backend::start("b");
    let proxy = start("\"127.0.0.1\"", "5s", &[backend.addr], "");
    for version in [Version::V1, Version::V2] {
        let bytes = header(version, proxied("192.0.2.45:1234", "10.0.0.1:443"));
        let mut tcp = TcpStream::connect(proxy.addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        for part in [&bytes[..3], &bytes[3..14], &bytes[14..20], &bytes[20..]] {
            tcp.write_all(part).unwrap();
            std::thread::sleep(Duration::from_millis(60));
        }
        let mut c = Client::over(Client::session(), tcp).expect("handshake");
        assert_eq!(c.get("/split").status, 200);
    }
    for req in backend.received() {
        assert_eq!(req.header("X-Forwarded-For"), Some("192.0.2.45"));
    }
}

#[test]
fn client_ip_hashing_uses_the_address_from_the_header() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let extra = format!(
        "[[upstream]]\nname = \"app\"\npolicy = \"consistent_hash\"\nhash = \"client_ip\"\n\
         backends = [\"{}\", \"{}\"]\n",
        a.addr, b.addr
    );
    let log = temp_dir("pp-log").join("access.log");
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra,
            listener: Some(
                "upstream = \"app\"\nproxy_protocol = { trusted = [\"127.0.0.1\"] }".to_owned(),
            ),
            ..ProxyOptions::default()
        },
    )
    .with_log_file(log);
    let backend_for = |source: &str| {
        let line = format!("PROXY TCP4 {source} 10.0.0.1 4000 443\r\n");
        let mut c = connect_with_header(&proxy, line.as_bytes()).expect("handshake");
        let response = c.get("/");
        assert_eq!(response.status, 200);
        response.header("X-Backend").unwrap_or_default().to_owned()
    };
    // The socket's peer is 127.0.0.1 every time: only the header's address can spread them.
    let chosen: Vec<String> = (1..=16)
        .map(|i| backend_for(&format!("203.0.113.{i}")))
        .collect();
    assert!(chosen.iter().any(|c| c == "a"), "{chosen:?}");
    assert!(chosen.iter().any(|c| c == "b"), "{chosen:?}");
    // And the same address sticks.
    for i in [3, 9] {
        for _ in 0..3 {
            assert_eq!(backend_for(&format!("203.0.113.{i}")), chosen[i - 1]);
        }
    }
}

/// The client sees the connection closed (a handshake that fails, or an end of stream).
fn assert_refused(proxy: &Proxy, header: &[u8]) {
    match connect_with_header(proxy, header) {
        Err(_) => {}
        Ok(mut c) => assert!(c.is_closed(), "the connection stays open after {header:?}"),
    }
}

#[test]
fn a_missing_or_malformed_header_closes_the_connection_with_nothing_forwarded() {
    let backend = Backend::start("b");
    let proxy = start("\"127.0.0.1\"", "5s", &[backend.addr], "");
    // A ClientHello straight away.
    assert!(
        Client::try_connect(proxy.addr).is_err(),
        "TLS without a header"
    );
    assert_refused(&proxy, b"PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n");
    assert_refused(&proxy, b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\n");
    assert_refused(&proxy, b"PROXY TCP6 203.0.113.7 10.0.0.1 51234 443\r\n");
    assert_refused(&proxy, b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c");
    // A plain HTTP request.
    let mut tcp = TcpStream::connect(proxy.addr).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    assert!(matches!(tcp.read(&mut buf), Ok(0) | Err(_)), "closed");
    std::thread::sleep(Duration::from_millis(100));
    assert!(backend.received().is_empty());
    assert_eq!(backend.accepted(), 0);
    let line = wait_log_line(&proxy, |l| {
        l["termination"] == "client/proxy_header_invalid"
    });
    assert_eq!(line["client_ip"], "127.0.0.1");
    // The listener still serves a good header.
    let mut c = connect_with_header(&proxy, V1).expect("handshake");
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn a_slow_header_is_closed_at_the_timeout() {
    let backend = Backend::start("b");
    let proxy = start("\"127.0.0.1\"", "400ms", &[backend.addr], "");
    for sent in [
        &b""[..],
        b"PROXY TCP4 203.0.",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11",
    ] {
        let mut tcp = TcpStream::connect(proxy.addr).unwrap();
        tcp.write_all(sent).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let read = tcp.read(&mut buf);
        let waited = started.elapsed();
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "closed after {waited:?} with {sent:?}"
        );
    }
    wait_log_line(&proxy, |l| {
        l["termination"] == "client/proxy_header_timeout"
    });
    assert_eq!(backend.accepted(), 0);
}

#[test]
fn an_untrusted_source_is_refused_at_once() {
    let backend = Backend::start("b");
    let proxy = start("\"10.0.0.0/8\", \"::1\"", "5s", &[backend.addr], "");
    let started = Instant::now();
    let mut tcp = TcpStream::connect(proxy.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = tcp.write_all(V1);
    let mut buf = [0u8; 64];
    assert!(matches!(tcp.read(&mut buf), Ok(0) | Err(_)), "closed");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(connect_with_header(&proxy, V1).is_err());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(backend.accepted(), 0);
}

#[test]
fn reload_turns_the_header_on() {
    let backend = Backend::start("b");
    let proxy = Proxy::start(&[backend.addr]);
    assert_eq!(proxy.client().get("/").status, 200);
    // A header where none is expected is a bad ClientHello.
    assert!(
        connect_with_header(&proxy, V1).is_err(),
        "a header before reload"
    );
    // The listener keeps its configured address (port 0): the reload changes its settings.
    let config = std::fs::read_to_string(proxy.config_path())
        .unwrap()
        .replace(
            "backends = [",
            "proxy_protocol = { trusted = [\"127.0.0.1\"] }\nbackends = [",
        );
    std::fs::write(proxy.config_path(), config).unwrap();
    let outcome = proxy.reload();
    assert!(outcome.contains("configuration reloaded"), "{outcome}");
    let mut c = connect_with_header(&proxy, V1).expect("a header now");
    assert_eq!(c.get("/after").status, 200);
    assert!(
        Client::try_connect(proxy.addr).is_err(),
        "no header now refused"
    );
    let last = backend.received().pop().unwrap();
    assert_eq!(last.header("X-Forwarded-For"), Some("203.0.113.7"));
}

// ---------------------------------------------------------------------------------------------
// Outbound

/// What a PROXY-protocol backend saw on one connection: the header, and the requests.
#[derive(Debug, Clone)]
struct Seen {
    header: ProxyHeader,
    requests: Vec<String>,
}

/// A backend that requires a PROXY header on each connection (a connection without one is
/// closed), then answers each request `200` with `X-Conn: <connection number>`; health checks
/// (`User-Agent: ringway-health`) are answered and recorded too.
fn header_backend() -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let record = record.clone();
            std::thread::spawn(move || serve_with_header(stream, record));
        }
    });
    (addr, seen)
}

fn serve_with_header(mut stream: TcpStream, record: Arc<Mutex<Vec<Seen>>>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let (header, header_len) = loop {
        match proxy_protocol::parse(&bytes) {
            Ok(Parsed::Complete { header_len, header }) => break (header, header_len),
            Ok(Parsed::Partial) => {}
            Err(_) => return,
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    };
    bytes.drain(..header_len);
    let index = {
        let mut seen = record.lock().unwrap();
        seen.push(Seen {
            header,
            requests: Vec::new(),
        });
        seen.len() - 1
    };
    loop {
        while let Some(end) = find(&bytes, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            bytes.drain(..end + 4);
            record.lock().unwrap()[index].requests.push(head);
            let answer =
                format!("HTTP/1.1 200 OK\r\nX-Conn: {index}\r\nContent-Length: 2\r\n\r\nok");
            if stream.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A ringway whose upstream sends `version` headers to `backend`; `listener_extra` adds keys
/// to the listener, `upstream_extra` to the upstream.
fn start_outbound(
    backend: SocketAddr,
    version: &str,
    listener_extra: &str,
    upstream_extra: &str,
) -> Proxy {
    Proxy::start_with(
        &[],
        ProxyOptions {
            extra: format!(
                "[[upstream]]\nname = \"app\"\nbackends = [\"{backend}\"]\n\
                 send_proxy_protocol = \"{version}\"\n{upstream_extra}\n"
            ),
            listener: Some(format!("upstream = \"app\"\n{listener_extra}")),
            ..ProxyOptions::default()
        },
    )
}

#[test]
fn backend_connections_start_with_the_clients_header_and_are_not_shared() {
    for version in ["v1", "v2"] {
        let (backend, seen) = header_backend();
        let proxy = start_outbound(backend, version, "", "");
        let mut first = proxy.client();
        let mut second = proxy.client();
        let ports = [
            first.tls.sock.local_addr().unwrap().port(),
            second.tls.sock.local_addr().unwrap().port(),
        ];
        for _ in 0..2 {
            assert_eq!(first.get("/").status, 200, "{version}");
            assert_eq!(second.get("/").status, 200, "{version}");
        }
        let seen = seen.lock().unwrap().clone();
        // Each connection served one client connection: never one client's header under
        // another's request. A client's second request reuses its own connection.
        assert_eq!(seen.len(), 2, "{version}: {seen:?}");
        let mut served = 0;
        for conn in &seen {
            let ProxyHeader::Proxied {
                source,
                destination,
            } = conn.header
            else {
                panic!("{version}: {conn:?}");
            };
            assert_eq!(source.ip(), addr("127.0.0.1:0").ip(), "{version}");
            assert!(ports.contains(&source.port()), "{version}: {source}");
            assert_eq!(destination, proxy.addr, "{version}");
            served += conn.requests.len();
        }
        assert_eq!(served, 4, "{version}: {seen:?}");
        for port in ports {
            let requests: usize = seen
                .iter()
                .filter(|c| matches!(c.header, ProxyHeader::Proxied { source, .. } if source.port() == port))
                .map(|c| c.requests.len())
                .sum();
            assert_eq!(requests, 2, "{version}: client port {port}: {seen:?}");
        }
    }
}

#[test]
fn an_inbound_header_is_passed_on_outbound() {
    let (backend, seen) = header_backend();
    let proxy = start_outbound(
        backend,
        "v2",
        "proxy_protocol = { trusted = [\"127.0.0.1\"] }",
        "",
    );
    let mut c = connect_with_header(&proxy, V1).expect("handshake");
    assert_eq!(c.get("/").status, 200);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header, proxied("203.0.113.7:51234", "10.0.0.1:443"));
}

#[test]
fn health_checks_of_a_send_proxy_upstream_send_a_local_header() {
    for version in ["v1", "v2"] {
        let (backend, seen) = header_backend();
        let proxy = start_outbound(
            backend,
            version,
            "",
            "[upstream.health_check]\ninterval = \"100ms\"\ntimeout = \"90ms\"\njitter = \"0s\"\n\
             rise = 1\nfall = 1\npath = \"/health\"",
        );
        let checked = || {
            seen.lock()
                .unwrap()
                .iter()
                .filter(|c| c.requests.iter().any(|r| r.contains("ringway-health")))
                .count()
        };
        assert!(
            wait_until(Duration::from_secs(5), || checked() >= 3),
            "{version}: {:?}",
            seen.lock().unwrap()
        );
        for conn in seen.lock().unwrap().iter() {
            if conn.requests.iter().any(|r| r.contains("ringway-health")) {
                assert_eq!(conn.header, ProxyHeader::Local, "{version}");
            }
        }
        // The checks pass: the backend is up and serves.
        assert_eq!(proxy.client().get("/").status, 200, "{version}");
        assert!(!proxy.log().contains("backend down"), "{}", proxy.log());
    }
}

#[test]
fn retries_open_their_own_connection_with_the_header() {
    // The first backend takes the header and the request, then closes without answering: an
    // idempotent request is retried on the other backend, on a new connection that carries
    // the header too.
    let closing = TcpListener::bind("127.0.0.1:0").unwrap();
    let closing_addr = closing.local_addr().unwrap();
    let closed: Arc<Mutex<Vec<ProxyHeader>>> = Arc::default();
    let record = closed.clone();
    std::thread::spawn(move || {
        for stream in closing.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut bytes = Vec::new();
            let mut chunk = [0u8; 4096];
            while find(&bytes, b"\r\n\r\n").is_none() {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                }
            }
            if let Ok(Parsed::Complete { header, .. }) = proxy_protocol::parse(&bytes) {
                record.lock().unwrap().push(header);
            }
        }
    });
    let (good, seen) = header_backend();
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: format!(
                "[[upstream]]\nname = \"app\"\nbackends = [\"{closing_addr}\", \"{good}\"]\n\
                 send_proxy_protocol = \"v1\"\n[upstream.outlier]\nconsecutive_failures = 0\n"
            ),
            listener: Some("upstream = \"app\"".to_owned()),
            ..ProxyOptions::default()
        },
    );
    let mut c = proxy.client();
    let port = c.tls.sock.local_addr().unwrap().port();
    for _ in 0..2 {
        assert_eq!(c.get("/").status, 200);
    }
    let closed = closed.lock().unwrap().clone();
    // Round robin sends at least one of the two there first.
    assert!(!closed.is_empty(), "no attempt on the closing backend");
    let seen = seen.lock().unwrap().clone();
    let served: usize = seen.iter().map(|s| s.requests.len()).sum();
    assert_eq!(served, 2, "{seen:?}");
    for header in closed.iter().chain(seen.iter().map(|s| &s.header)) {
        assert!(
            matches!(header, ProxyHeader::Proxied { source, .. } if source.port() == port),
            "{header:?}"
        );
    }
}

#[test]
fn ringway_check_names_a_bad_key() {
    let dir = temp_dir("pp-check");
    let cert = write_cert(&dir, "c", &["localhost"]);
    let write = |listener_line: &str, upstream_line: &str| {
        let path = dir.join("ringway.toml");
        std::fs::write(
            &path,
            format!(
                "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:9\"]\n{upstream_line}\n\
                 [[listener]]\naddress = \"127.0.0.1:8443\"\nupstream = \"app\"\n{listener_line}\n\
                 [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.cert.display(),
                cert.key.display()
            ),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_ringway"))
            .arg("check")
            .arg(&path)
            .output()
            .unwrap()
    };
    let good = write(
        "proxy_protocol = { trusted = [\"10.0.0.0/8\", \"::1\"], timeout = \"2s\" }",
        "send_proxy_protocol = \"v2\"",
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    for (listener_line, upstream_line, key) in [
        (
            "proxy_protocol = { trusted = [\"10.0.0.0/8\", \"10.0.0.0/40\"] }",
            "",
            "listener[0].proxy_protocol.trusted[1]",
        ),
        (
            "proxy_protocol = { trusted = [] }",
            "",
            "listener[0].proxy_protocol.trusted",
        ),
        (
            "",
            "send_proxy_protocol = \"v3\"",
            "upstream[0].send_proxy_protocol",
        ),
    ] {
        let out = write(listener_line, upstream_line);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{key}:")), "{key}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plain_http_listener_reads_the_header_too() {
    let backend = Backend::start("b");
    let proxy = Proxy::start_with(
        &[backend.addr],
        ProxyOptions {
            certs: Vec::new(),
            listener: Some(format!(
                "backends = [\"{}\"]\nproxy_protocol = {{ trusted = [\"127.0.0.1\"] }}",
                backend.addr
            )),
            ..ProxyOptions::default()
        },
    );
    // The header and the request in one write, then a header split from its request.
    for split in [false, true] {
        let mut tcp = TcpStream::connect(proxy.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let request = b"GET /plain HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        if split {
            tcp.write_all(V1).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            tcp.write_all(request).unwrap();
        } else {
            tcp.write_all(&[V1, &request[..]].concat()).unwrap();
        }
        let mut response = Vec::new();
        let _ = tcp.read_to_end(&mut response);
        assert!(
            response.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&response)
        );
    }
    for req in backend.received() {
        assert_eq!(req.header("X-Forwarded-For"), Some("203.0.113.7"));
        assert_eq!(req.header("X-Forwarded-Proto"), Some("http"));
    }
    assert_eq!(backend.received().len(), 2);
    // Without a header: closed, nothing forwarded.
    let mut tcp = TcpStream::connect(proxy.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response);
    assert!(
        response.is_empty(),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_eq!(backend.received().len(), 2);
}

#[test]
fn a_kept_connection_the_backend_closed_is_replaced_before_use() {
    // The backend answers one request per connection (keep-alive announced), then closes it
    // while idle: the client's next request, a POST that cannot be retried, must go out on
    // a new connection with its header, not on the dead one.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    let headers: Arc<Mutex<Vec<ProxyHeader>>> = Arc::default();
    let record = headers.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut bytes = Vec::new();
            let mut chunk = [0u8; 4096];
            while find(&bytes, b"\r\n\r\n").is_none() {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                }
            }
            if let Ok(Parsed::Complete { header, .. }) = proxy_protocol::parse(&bytes) {
                record.lock().unwrap().push(header);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let proxy = start_outbound(backend, "v2", "", "");
    let mut c = proxy.client();
    for _ in 0..3 {
        c.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(c.read_response("POST").expect("response").status, 200);
        std::thread::sleep(Duration::from_millis(200));
    }
    let headers = headers.lock().unwrap().clone();
    assert_eq!(headers.len(), 3, "{headers:?}");
    assert!(
        headers
            .iter()
            .all(|h| matches!(h, ProxyHeader::Proxied { .. })),
        "{headers:?}"
    );
}
