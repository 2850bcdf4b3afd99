//! Test harness: the real `ringway` binary, real TLS clients, real backend sockets.
//!
//! - [`Proxy`] writes a config file with rcgen certificates, starts `ringway run --config`,
//!   waits for its startup line and kills it on drop.
//! - [`Backend`] is a backend on loopback that the test controls: it records every connection
//!   it accepts and every byte it receives, and answers with a [`Behavior`].
//! - [`Client`] is a blocking rustls client that can send raw bytes and parse responses.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("ringway-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A certificate and key written as PEM files.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

/// Writes a self-signed certificate for `names` into `dir`.
pub fn write_cert(dir: &std::path::Path, tag: &str, names: &[&str]) -> CertFiles {
    let ss = ringway::tls::self_signed(names).expect("self-signed certificate");
    let cert = dir.join(format!("{tag}.pem"));
    let key = dir.join(format!("{tag}.key"));
    std::fs::write(&cert, &ss.cert_pem).unwrap();
    std::fs::write(&key, &ss.key_pem).unwrap();
    CertFiles {
        cert,
        key,
        der: ss.chain[0].clone(),
    }
}

/// A running ringway process.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub certs: Vec<CertFiles>,
    log: Arc<Mutex<String>>,
}

/// Options for [`Proxy::start_with`].
pub struct ProxyOptions {
    pub workers: usize,
    /// Extra TOML placed before the `[[listener]]` table (timeouts, limits, pool).
    pub extra: String,
    /// Certificates as (tag, names); the first is the default.
    pub certs: Vec<(&'static str, Vec<&'static str>)>,
    /// Keys and tables of the `[[listener]]` (e.g. `upstream = "app"` and `[[listener.route]]`
    /// tables) instead of `backends = [...]`.
    pub listener: Option<String>,
    /// More arguments for `ringway run --config FILE`.
    pub args: Vec<String>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            extra: String::new(),
            certs: vec![("default", vec!["localhost", "127.0.0.1"])],
            listener: None,
            args: Vec::new(),
        }
    }
}

impl Proxy {
    /// Starts ringway with one worker in front of `backends`.
    pub fn start(backends: &[SocketAddr]) -> Proxy {
        Self::start_with(backends, ProxyOptions::default())
    }

    /// Starts ringway with `opts` in front of `backends`.
    pub fn start_with(backends: &[SocketAddr], opts: ProxyOptions) -> Proxy {
        let dir = temp_dir("proxy");
        let certs: Vec<CertFiles> = opts
            .certs
            .iter()
            .map(|(tag, names)| write_cert(&dir, tag, names))
            .collect();
        let mut toml = format!("workers = {}\n{}\n", opts.workers, opts.extra);
        toml.push_str("[[listener]]\naddress = \"127.0.0.1:0\"\n");
        match &opts.listener {
            Some(listener) => {
                toml.push_str(listener);
                toml.push('\n');
            }
            None => {
                let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
                toml.push_str(&format!("backends = [{}]\n", list.join(", ")));
            }
        }
        for c in &certs {
            toml.push_str(&format!(
                "[[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
                c.cert.display(),
                c.key.display()
            ));
        }
        let config = dir.join("ringway.toml");
        std::fs::write(&config, toml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringway"))
            .args(["run", "--config"])
            .arg(&config)
            .args(&opts.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringway");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log2.lock().unwrap().push_str(&line);
                log2.lock().unwrap().push('\n');
                if line.contains("ringway started")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line.clone());
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("ringway did not start: {}", log.lock().unwrap());
            }
        };
        let Some(addr) = parse_listen(&line) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no address in {line:?}");
        };
        Proxy {
            child,
            addr,
            dir,
            certs,
            log,
        }
    }

    /// Everything ringway logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The configuration file ringway runs with (a reload re-reads it).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("ringway.toml")
    }

    /// Sends SIGHUP and waits for the reload's outcome line ("configuration reloaded" or
    /// "reload failed"); returns it.
    pub fn reload(&self) -> String {
        let outcome = |log: &str| {
            log.lines()
                .filter(|l| l.contains("configuration reloaded") || l.contains("reload failed"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let before = outcome(&self.log()).len();
        signal(self.child.id(), "HUP");
        let mut line = None;
        let seen = wait_until(Duration::from_secs(20), || {
            line = outcome(&self.log()).get(before).cloned();
            line.is_some()
        });
        assert!(seen, "no reload outcome logged:\n{}", self.log());
        line.unwrap_or_default()
    }

    /// A TLS client connected to the proxy with SNI `localhost`.
    pub fn client(&self) -> Client {
        Client::connect(self.addr, Some("localhost"))
    }

    /// Resident memory of the proxy process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.child.id(), "VmRSS:")
    }

    /// Open file descriptors of the proxy process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        self.wait_exit()
    }

    /// Waits for the process to exit (after a signal sent elsewhere).
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ringway did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `signal` ("TERM", "INT", "HUP", "USR2", "KILL", "STOP" or "CONT") to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let sig = match signal {
        "TERM" => libc::SIGTERM,
        "HUP" => libc::SIGHUP,
        "USR2" => libc::SIGUSR2,
        "USR1" => libc::SIGUSR1,
        "INT" => libc::SIGINT,
        "KILL" => libc::SIGKILL,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        other => panic!("no signal named {other}"),
    };
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the pid is a child
    // this test started and has not reaped yet.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

fn proc_status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The first listen address in ringway's startup line.
pub fn parse_listen(line: &str) -> Option<SocketAddr> {
    let start = line.find("listeners=")? + "listeners=".len();
    let rest = &line[start..];
    let end = rest.find([' ', ',']).unwrap_or(rest.len());
    rest[..end].trim_matches('"').parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Backends

/// A request as a backend received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
    /// The raw bytes of head and body as they arrived.
    pub raw: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What a backend does with each request.
pub type Handler = Arc<dyn Fn(&Received, &mut TcpStream) -> io::Result<Keep> + Send + Sync>;

/// Writes a `200 OK` with `body` and its Content-Length (for backend handlers).
pub fn write_ok(s: &mut TcpStream, body: &str) -> io::Result<()> {
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Whether the backend keeps the connection after answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Open,
    Close,
}

/// A backend on loopback that records what it gets.
pub struct Backend {
    pub addr: SocketAddr,
    pub name: String,
    pub accepts: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<Received>>>,
    /// Every byte received on every connection, in arrival order per connection.
    pub raw: Arc<Mutex<Vec<u8>>>,
}

impl Backend {
    /// A backend that answers `200` with body `<name> <method> <path>\n` and echoes the
    /// request body length in `X-Body-Len`.
    pub fn start(name: &str) -> Backend {
        let n = name.to_string();
        Self::with_handler(
            name,
            Arc::new(move |req, s| {
                let body = format!("{n} {} {}\n", req.method, req.path);
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\nX-Backend: {n}\r\nX-Body-Len: {}\r\nContent-Length: {}\r\n\r\n{body}",
                    req.body.len(),
                    body.len()
                )?;
                Ok(Keep::Open)
            }),
        )
    }

    /// A backend whose answers come from `handler`.
    pub fn with_handler(name: &str, handler: Handler) -> Backend {
        Self::listening(name, TcpListener::bind("127.0.0.1:0").unwrap(), handler)
    }

    /// A backend like [`Backend::start`] on `addr` (e.g. 127.0.0.2 and the port of another
    /// backend: two backends one name can resolve to).
    pub fn start_on(name: &str, addr: SocketAddr) -> Backend {
        let n = name.to_string();
        Self::listening(
            name,
            TcpListener::bind(addr).unwrap(),
            Arc::new(move |req, s| {
                let body = format!("{n} {} {}\n", req.method, req.path);
                write!(
                    s,
                    "HTTP/1.1 200 OK\r\nX-Backend: {n}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )?;
                Ok(Keep::Open)
            }),
        )
    }

    fn listening(name: &str, listener: TcpListener, handler: Handler) -> Backend {
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (a, r, w) = (accepts.clone(), requests.clone(), raw.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let (r, w, h) = (r.clone(), w.clone(), handler.clone());
                std::thread::spawn(move || {
                    let _ = serve_backend(stream, r, w, h);
                });
            }
        });
        Backend {
            addr,
            name: name.to_string(),
            accepts,
            requests,
            raw,
        }
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Bytes received so far.
    pub fn raw_len(&self) -> usize {
        self.raw.lock().unwrap().len()
    }
}

/// A backend that reads a request and answers with a broken status line (`2000`): ringway
/// answers 502.
pub fn bad_status_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.read(&mut [0u8; 4096]);
            let _ = s.write_all(b"HTTP/1.1 2000 Nope\r\n\r\n");
        }
    });
    addr
}

/// Reads one request (head + body) from `reader`; `None` at a clean end of stream.
pub fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Received>> {
    let mut raw = Vec::new();
    let mut head_lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            if raw.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in head"));
        }
        raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if text.is_empty() {
            break;
        }
        head_lines.push(text);
    }
    let first = head_lines.first().cloned().unwrap_or_default();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let headers = header_lines(head_lines[1..].iter().map(String::as_str));
    let find = |name: &str| header_value(&headers, name);
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut line = Vec::new();
            reader.read_until(b'\n', &mut line)?;
            raw.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line);
            let size_text = text
                .trim_end()
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let size = usize::from_str_radix(&size_text, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    let mut t = Vec::new();
                    reader.read_until(b'\n', &mut t)?;
                    raw.extend_from_slice(&t);
                    if t == b"\r\n" || t.is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            raw.extend_from_slice(&chunk);
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; len];
        reader.read_exact(&mut body)?;
        raw.extend_from_slice(&body);
    }
    Ok(Some(Received {
        method,
        path,
        headers,
        body,
        raw,
    }))
}

fn serve_backend(
    stream: TcpStream,
    requests: Arc<Mutex<Vec<Received>>>,
    raw: Arc<Mutex<Vec<u8>>>,
    handler: Handler,
) -> io::Result<()> {
    // Handlers answer with several small writes: no Nagle delay between them.
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader)? {
        raw.lock().unwrap().extend_from_slice(&req.raw);
        requests.lock().unwrap().push(req.clone());
        if handler(&req, &mut writer)? == Keep::Close {
            return Ok(());
        }
    }
    Ok(())
}

/// An address on which nothing listens.
pub fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

// ---------------------------------------------------------------------------------------------
// Client

/// Accepts any server certificate, so tests can look at which one was served.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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

/// A client TLS configuration that trusts any certificate.
pub fn client_config(versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking TLS client.
pub struct Client {
    pub tls: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    /// Connects with TLS 1.2 or 1.3 and `sni` (None sends no SNI).
    pub fn connect(addr: SocketAddr, sni: Option<&str>) -> Client {
        Self::connect_with(addr, sni, client_config(rustls::ALL_VERSIONS))
    }

    /// Connects with TLS 1.2 or 1.3 and SNI `localhost`; an error instead of a panic when the
    /// connection is refused, reset or the handshake fails.
    pub fn try_connect(addr: SocketAddr) -> io::Result<Client> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let mut conn = ClientConnection::new(client_config(rustls::ALL_VERSIONS), name)
            .map_err(io::Error::other)?;
        let mut tcp = tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(Client {
            tls: StreamOwned::new(conn, tcp),
            buf: Vec::new(),
        })
    }

    /// A TLS client (SNI `localhost`) over `tcp`, a socket the caller may already have
    /// written to (a PROXY header), `conn` its session, whose first flight the caller may
    /// have sent too: finishes the handshake; an error when it fails.
    pub fn over(mut conn: ClientConnection, tcp: TcpStream) -> io::Result<Client> {
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        tcp.set_nodelay(true)?;
        let mut tcp = tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(Client {
            tls: StreamOwned::new(conn, tcp),
            buf: Vec::new(),
        })
    }

    /// A client session with SNI `localhost` (for [`Client::over`]).
    pub fn session() -> ClientConnection {
        let name = ServerName::try_from("localhost").expect("name");
        ClientConnection::new(client_config(rustls::ALL_VERSIONS), name).expect("session")
    }

    /// Connects with a given client configuration.
    pub fn connect_with(addr: SocketAddr, sni: Option<&str>, config: Arc<ClientConfig>) -> Client {
        let tcp = TcpStream::connect(addr).expect("connect to proxy");
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = match sni {
            Some(s) => ServerName::try_from(s.to_string()).unwrap(),
            None => ServerName::IpAddress(addr.ip().into()),
        };
        let mut conn = ClientConnection::new(config, name).unwrap();
        if sni.is_none() {
            // An IP address name sends no SNI.
        }
        let mut tcp = tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).expect("TLS handshake");
        }
        Client {
            tls: StreamOwned::new(conn, tcp),
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).expect("send");
        self.tls.flush().expect("flush");
    }

    /// Sends `GET path` with Host localhost and reads the response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
        self.read_response("GET").expect("response")
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        fill(&mut self.tls, &mut self.buf)
    }

    /// Reads one response to a request with `method`.
    pub fn read_response(&mut self, method: &str) -> io::Result<Response> {
        read_response(&mut self.tls, &mut self.buf, method)
    }

    /// True when the proxy closed the connection (EOF or reset) within a few seconds and
    /// sent nothing more.
    pub fn is_closed(&mut self) -> bool {
        self.tls
            .sock
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let before = self.buf.len();
        match self.fill() {
            Ok(0) => self.buf.len() == before,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }

    /// Bytes received but not yet parsed.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

/// Reads more bytes from `stream` into `buf`; 0 at end of stream.
fn fill(stream: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16384];
    match stream.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(e),
    }
}

/// Reads one response to a request with `method` from `stream`, `buf` holding what was
/// received and not parsed yet.
pub fn read_response(
    stream: &mut impl Read,
    buf: &mut Vec<u8>,
    method: &str,
) -> io::Result<Response> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if fill(stream, buf)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof before head",
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, head.clone()))?;
    let headers = header_lines(lines);
    let get = |name: &str| header_value(&headers, name);
    let mut body = Vec::new();
    if method == "HEAD" || status < 200 || status == 204 || status == 304 {
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                if fill(stream, buf)? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in chunk"));
                }
            };
            let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            buf.drain(..line_end + 2);
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
            if size == 0 {
                while find(buf, b"\r\n").is_none() {
                    if fill(stream, buf)? == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "trailer"));
                    }
                }
                // Trailers are not used in these tests: expect the final CRLF.
                let end = find(buf, b"\r\n").unwrap();
                buf.drain(..end + 2);
                break;
            }
            while buf.len() < size + 2 {
                if fill(stream, buf)? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunk data"));
                }
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < len {
            if fill(stream, buf)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body"));
            }
        }
        body = buf.drain(..len).collect();
    } else {
        while fill(stream, buf)? > 0 {}
        body = std::mem::take(buf);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A blocking plain-HTTP client (a listener without certificates).
pub struct PlainClient {
    pub tcp: TcpStream,
    buf: Vec<u8>,
}

impl PlainClient {
    pub fn connect(addr: SocketAddr) -> PlainClient {
        let tcp = TcpStream::connect(addr).expect("connect to proxy");
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        tcp.set_nodelay(true).unwrap();
        PlainClient {
            tcp,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).expect("send");
    }

    /// Reads one response to a request with `method`.
    pub fn read_response(&mut self, method: &str) -> io::Result<Response> {
        read_response(&mut self.tcp, &mut self.buf, method)
    }

    /// True when the proxy closed the connection within a few seconds and sent nothing more.
    pub fn is_closed(&mut self) -> bool {
        self.tcp
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let before = self.buf.len();
        match fill(&mut self.tcp, &mut self.buf) {
            Ok(0) => self.buf.len() == before,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        }
    }
}

/// The `name: value` pairs of head lines, trimmed.
fn header_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The value of the first header named `name`, in any case.
fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Waits until `cond` holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

// ---------------------------------------------------------------------------------------------
// Load

/// Clients that keep sending `GET /` until stopped: `keepalive` of them on long-lived
/// connections, `fresh` opening a new connection per request. They behave as HTTP clients do:
/// a response with `Connection: close` ends the connection, and a request on a reused
/// connection that the server closed before answering a byte is sent again once on a new
/// connection (RFC 9112 §9.3.1: the server may close an idle connection as the request
/// arrives). Everything else that is not a 200 is a failure: a refused or reset connection, a
/// failed handshake, an error status, a broken response.
pub struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    ok: Arc<AtomicUsize>,
    retried: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What a [`Load`] saw.
#[derive(Debug)]
pub struct LoadResult {
    /// Requests answered 200.
    pub ok: usize,
    /// Requests sent again after the server closed an idle connection.
    pub retried: usize,
    /// Everything that failed.
    pub failures: Vec<String>,
}

impl LoadResult {
    /// Nothing failed, no request had to be sent again, and at least `min_ok` were answered.
    pub fn assert_clean(&self, min_ok: usize) {
        let failures = &self.failures;
        assert!(
            failures.is_empty(),
            "{} failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert_eq!(
            self.retried, 0,
            "a connection was closed under a request: {self:?}"
        );
        assert!(self.ok >= min_ok, "the load ran: {self:?}");
    }
}

impl Load {
    pub fn start(addr: SocketAddr, keepalive: usize, fresh: usize) -> Load {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let retried = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..keepalive + fresh {
            let (stop, ok, retried, failures) =
                (stop.clone(), ok.clone(), retried.clone(), failures.clone());
            let reuse = i < keepalive;
            threads.push(std::thread::spawn(move || {
                let mut client: Option<Client> = None;
                while !stop.load(Ordering::Relaxed) {
                    let reused = client.is_some();
                    let mut outcome = one_request(&mut client, addr);
                    if reused && matches!(outcome, Err(Failure::BeforeAnswer(_))) {
                        retried.fetch_add(1, Ordering::Relaxed);
                        client = None;
                        outcome = one_request(&mut client, addr);
                    }
                    match outcome {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Failure::BeforeAnswer(e) | Failure::Other(e)) => {
                            failures.lock().unwrap().push(e);
                            client = None;
                        }
                    }
                    if !reuse {
                        client = None;
                    }
                }
            }));
        }
        Load {
            stop,
            ok,
            retried,
            failures,
            threads,
        }
    }

    pub fn stop(self) -> LoadResult {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load thread");
        }
        let failures = self.failures.lock().unwrap().clone();
        LoadResult {
            ok: self.ok.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failures,
        }
    }
}

enum Failure {
    /// The connection ended before a byte of the answer (retryable on a reused connection).
    BeforeAnswer(String),
    Other(String),
}

/// One `GET /` on `client` (connecting first when it is `None`); leaves `client` as `None`
/// when the connection must not be reused.
fn one_request(client: &mut Option<Client>, addr: SocketAddr) -> Result<(), Failure> {
    if client.is_none() {
        *client =
            Some(Client::try_connect(addr).map_err(|e| Failure::Other(format!("connect: {e}")))?);
    }
    let Some(c) = client.as_mut() else {
        return Err(Failure::Other("no client".into()));
    };
    let sent = c
        .tls
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .and_then(|()| c.tls.flush());
    if let Err(e) = sent {
        *client = None;
        return Err(Failure::BeforeAnswer(format!("send: {e}")));
    }
    match c.read_response("GET") {
        Ok(r) if r.status == 200 => {
            if r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            {
                *client = None;
            }
            Ok(())
        }
        Ok(r) => {
            *client = None;
            Err(Failure::Other(format!("status {}: {}", r.status, r.text())))
        }
        Err(e) => {
            let before = c.pending().is_empty();
            *client = None;
            if before {
                Err(Failure::BeforeAnswer(format!("read: {e}")))
            } else {
                Err(Failure::Other(format!("read mid-response: {e}")))
            }
        }
    }
}
