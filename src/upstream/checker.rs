//! Active health checks: one thread ("ringway-health") with its own compio runtime, one task per
//! checked backend, results published on the [`HealthBoard`].
//!
//! Each backend of a pool with checks configured is checked once for the whole process, not
//! once per worker, so a backend sees one probe per interval however many cores ringway runs
//! on. The request path never waits on this thread: workers only read the board's atomics.
//!
//! Invariants:
//! - The first check of every backend runs at once; later ones start every interval plus a
//!   uniform random jitter, measured start to start (a check that times out does not delay the
//!   next), so checks of many backends (and many ringway instances) do not synchronize.
//! - A check never takes longer than its timeout, connect included, and reads at most
//!   [`MAX_STATUS_READ`] bytes of the answer.
//! - Every published state change is logged exactly once; a failure that does not change the
//!   state is logged at debug level only.
//! - [`Checker::stop`] (or dropping the [`Checker`]) ends the thread within [`STOP_POLL`] plus
//!   the time to cancel the in-flight checks, even in the middle of a long interval.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;

use crate::http1;
use crate::proxy_protocol::{self, ProxyHeader, Version};

use super::board::HealthBoard;
use super::health::RiseFall;

/// Most bytes of an answer read while looking for the end of its status line.
pub const MAX_STATUS_READ: usize = 8 * 1024;

/// How often the health thread looks at its stop flag.
pub const STOP_POLL: Duration = Duration::from_millis(20);

/// Shortest interval between two checks of one backend: a zero interval in a spec must not
/// become a busy loop.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What a check does. The configuration's type too (`[upstream.health_check]`), validated
/// there: the strings are written into the request as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Passes when a TCP connection opens.
    Tcp,
    /// Sends `{method} {path} HTTP/1.1` with `Host` and `Connection: close`, and passes when
    /// the status of the answer is in `expect_status`.
    Http {
        /// An RFC 9110 token. Default `GET`.
        method: String,
        /// The request target, starting with `/`, visible ASCII. Default `/`.
        path: String,
        /// The Host header; `None`: the backend's address (`10.0.0.1:8080`). Default `None`.
        host: Option<String>,
        /// Statuses that pass, within `100..=599`. TOML: `"200-399"` or `"200"` (or the
        /// integer `200`). Default `200..=399`.
        expect_status: RangeInclusive<u16>,
    },
}

/// An HTTP check: `GET /`, the backend address as Host, expecting 200-399.
impl Default for CheckKind {
    fn default() -> Self {
        CheckKind::Http {
            method: "GET".to_owned(),
            path: "/".to_owned(),
            host: None,
            expect_status: 200..=399,
        }
    }
}

/// How one pool's backends are checked. The configuration's type too
/// (`HealthCheckConfig`, TOML `[upstream.health_check]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// What a check does. TOML: `type = "http"` (default) or `"tcp"` and the HTTP keys.
    pub kind: CheckKind,
    /// Time between the starts of two checks, before jitter (at least [`MIN_INTERVAL`] here;
    /// the configuration requires more than zero). A check's own time does not add to it.
    /// Default 5 s.
    pub interval: Duration,
    /// Most random time added to each interval (uniform in `[0, jitter]`). At most
    /// `interval`. Default 1 s.
    pub jitter: Duration,
    /// Longest a check may take, connect included; a check that runs over fails. Shorter
    /// than `interval`. Default 2 s.
    pub timeout: Duration,
    /// Consecutive passes that bring a down backend up. At least 1. Default 2.
    pub rise: u32,
    /// Consecutive failures that take an up backend down. At least 1. Default 3.
    pub fall: u32,
}

/// `GET /` expecting 200-399, every 5 s with 1 s jitter, 2 s timeout, rise 2, fall 3.
impl Default for CheckSpec {
    fn default() -> Self {
        Self {
            kind: CheckKind::default(),
            interval: Duration::from_secs(5),
            jitter: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
        }
    }
}

/// One backend to check.
#[derive(Clone, Debug)]
pub struct CheckTarget {
    /// The backend's slot on the board.
    pub board_index: usize,
    /// Where the backend listens.
    pub addr: SocketAddr,
    /// The pool's name, for logs.
    pub pool: String,
    /// How to check it (shared by the pool's backends).
    pub spec: Arc<CheckSpec>,
    /// The upstream sends its backends a PROXY header in this version: each check connection
    /// starts with the LOCAL form (v1 `PROXY UNKNOWN`, v2 LOCAL), as HAProxy's
    /// `check-send-proxy` does, so a backend that requires the header passes its checks.
    pub send_proxy: Option<crate::proxy_protocol::Version>,
}

/// Why one check failed. The messages are written to follow "backend down: " in a log line.
#[derive(Debug, thiserror::Error)]
pub enum CheckFailure {
    /// The check did not finish within its timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The TCP connection could not be opened.
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    /// Sending the request or reading the answer failed after connecting (e.g. a reset).
    #[error("I/O after connect: {0}")]
    Io(#[source] io::Error),
    /// The answer's status is not one the check expects.
    #[error("unexpected status {0}")]
    Status(u16),
    /// The answer does not start with a valid HTTP/1.x status line.
    #[error("malformed status line")]
    Malformed,
    /// The backend closed the connection before a complete status line.
    #[error("connection closed before a complete status line")]
    Closed,
}

/// The running health thread. Stops (and joins it) on [`Checker::stop`] or when dropped.
#[derive(Debug)]
pub struct Checker {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Checker {
    /// Starts the health thread checking `targets` and publishing on `board`. `Ok(None)` when
    /// there is nothing to check (no thread is started). Fails when the thread or its runtime
    /// cannot be created.
    pub fn spawn(board: Arc<HealthBoard>, targets: Vec<CheckTarget>) -> io::Result<Option<Self>> {
        if targets.is_empty() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let flag = stop.clone();
        let handle = thread::Builder::new()
            .name("ringway-health".into())
            .spawn(move || run(board, targets, flag, ready_tx))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Some(Self {
                stop,
                thread: Some(handle),
            })),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(io::Error::new(
                    e.kind(),
                    format!("health thread: cannot build its runtime: {e}"),
                ))
            }
            Err(_) => {
                let _ = handle.join();
                Err(io::Error::other("health thread exited during startup"))
            }
        }
    }

    /// Stops the checks and waits for the thread to exit (within about [`STOP_POLL`]).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.thread.take()
            && handle.join().is_err()
        {
            tracing::error!("health thread panicked");
        }
    }
}

/// The health thread's body.
fn run(
    board: Arc<HealthBoard>,
    targets: Vec<CheckTarget>,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::SyncSender<io::Result<()>>,
) {
    let runtime = match compio::runtime::RuntimeBuilder::new().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    runtime.block_on(async move {
        let tasks: Vec<_> = targets
            .into_iter()
            .map(|target| compio::runtime::spawn(check_loop(board.clone(), target)))
            .collect();
        while !stop.load(Ordering::Acquire) {
            compio::time::sleep(STOP_POLL).await;
        }
        // Dropping the handles cancels the tasks and their in-flight checks.
        drop(tasks);
    });
}

/// Checks one backend forever: check, publish, log transitions, sleep.
async fn check_loop(board: Arc<HealthBoard>, target: CheckTarget) {
    let CheckTarget {
        board_index: index,
        addr,
        pool,
        spec,
        send_proxy,
    } = target;
    let pool = pool.as_str();
    // A health thread restarted by a reload goes on from what the board says.
    let mut state = RiseFall::starting(spec.rise, spec.fall, board.is_up(index));
    let mut rng = fastrand::Rng::new();
    loop {
        let started = Instant::now();
        let result = check_once(addr, &spec, send_proxy).await;
        let now = Instant::now();
        if result.is_ok() {
            board.record_pass(index);
        }
        board.record_check(index);
        let change = state.observe(result.is_ok());
        if let Some(up) = change {
            board.set_up(index, up, now);
        }
        match (change, result) {
            (Some(false), Err(failure)) => tracing::warn!(
                pool,
                backend = %addr,
                "backend down: {failure} ({} consecutive failures)",
                spec.fall.max(1)
            ),
            (Some(_), _) => tracing::info!(
                pool,
                backend = %addr,
                "backend up: {} consecutive passes",
                spec.rise.max(1)
            ),
            (None, Err(failure)) => {
                tracing::debug!(pool, backend = %addr, "health check failed: {failure}")
            }
            (None, Ok(())) => {}
        }
        let delay = next_delay(spec.interval, spec.jitter, &mut rng);
        compio::time::sleep(wait_before_next(started, delay, Instant::now())).await;
    }
}

/// How long to wait at `now` for the next check, which starts `delay` after the start of the
/// last one (`started`): checks keep their schedule however long each takes (a check that
/// times out does not stretch the cycle by its timeout), and one that ran late starts the
/// next at once.
fn wait_before_next(started: Instant, delay: Duration, now: Instant) -> Duration {
    (started + delay).saturating_duration_since(now)
}

/// The wait before the next check: `interval` (at least [`MIN_INTERVAL`]) plus a uniform
/// random share of `jitter`.
fn next_delay(interval: Duration, jitter: Duration, rng: &mut fastrand::Rng) -> Duration {
    let jitter_ns = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
    interval
        .max(MIN_INTERVAL)
        .saturating_add(Duration::from_nanos(rng.u64(0..=jitter_ns)))
}

/// Runs one check of the backend at `addr`, within `spec.timeout`; with `send_proxy`, the
/// connection starts with a LOCAL PROXY header of that version.
pub async fn check_once(
    addr: SocketAddr,
    spec: &CheckSpec,
    send_proxy: Option<Version>,
) -> Result<(), CheckFailure> {
    match compio::time::timeout(spec.timeout, probe(addr, &spec.kind, send_proxy)).await {
        Ok(result) => result,
        Err(_) => Err(CheckFailure::Timeout(spec.timeout)),
    }
}

async fn probe(
    addr: SocketAddr,
    kind: &CheckKind,
    send_proxy: Option<Version>,
) -> Result<(), CheckFailure> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(CheckFailure::Connect)?;
    // The LOCAL form: the backend keeps the connection's own addresses (HAProxy's
    // `check-send-proxy`). Alone for a TCP check, in one write with the request for HTTP.
    let mut header = Vec::new();
    if let Some(version) = send_proxy {
        proxy_protocol::write(version, &ProxyHeader::Local, &mut header);
    }
    let CheckKind::Http {
        method,
        path,
        host,
        expect_status,
    } = kind
    else {
        if !header.is_empty() {
            let BufResult(written, _) = stream.write_all(header).await;
            written.map_err(CheckFailure::Io)?;
        }
        return Ok(());
    };
    let request = match host {
        Some(host) => format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ringway-health\r\nConnection: close\r\n\r\n"
        ),
        None => format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: ringway-health\r\nConnection: close\r\n\r\n"
        ),
    };
    header.extend_from_slice(request.as_bytes());
    let BufResult(written, _) = stream.write_all(header).await;
    written.map_err(CheckFailure::Io)?;
    let status = read_status(&mut stream).await?;
    if expect_status.contains(&status) {
        Ok(())
    } else {
        Err(CheckFailure::Status(status))
    }
}

/// Reads from `stream` until the status line is complete, and returns its status code.
async fn read_status(stream: &mut TcpStream) -> Result<u16, CheckFailure> {
    let mut head = Vec::with_capacity(256);
    let mut chunk = Vec::with_capacity(1024);
    loop {
        chunk.clear();
        let BufResult(read, buf) = stream.read(chunk).await;
        chunk = buf;
        if read.map_err(CheckFailure::Io)? == 0 {
            return Err(CheckFailure::Closed);
        }
        let room = MAX_STATUS_READ.saturating_sub(head.len());
        head.extend(chunk.iter().take(room));
        if let Some(status) = parse_status_line(&head)? {
            return Ok(status);
        }
        if head.len() >= MAX_STATUS_READ {
            return Err(CheckFailure::Malformed);
        }
    }
}

/// Parses the status line at the front of `buf` with the proxy's own rules
/// ([`http1::parse_status`], RFC 9112 §4): `Ok(None)` until its line end has arrived.
fn parse_status_line(buf: &[u8]) -> Result<Option<u16>, CheckFailure> {
    http1::parse_status(buf, MAX_STATUS_READ).map_err(|_| CheckFailure::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream as StdStream};
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn status_line_parsing() {
        assert_eq!(parse_status_line(b"").ok(), Some(None));
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r").ok(), Some(None));
        assert_eq!(
            parse_status_line(b"HTTP/1.1 200 OK\r\n").ok(),
            Some(Some(200))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.0 503\r\nX: y").ok(),
            Some(Some(503))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.1 404 Not \tFound \x80\r\n").ok(),
            Some(Some(404))
        );
        for bad in [
            &b"HTTP/1.1 200 OK\n"[..],
            b"HTTP/2 200 OK\r\n",
            b"HTTP/1.1 20 OK\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"HTTP/1.1  200 OK\r\n",
            b"HTTP/1.1 20x OK\r\n",
            b"HTTP/1.x 200 OK\r\n",
            b"HTTP/1.1 099 Low\r\n",
            b"HTTP/1.1 600 High\r\n",
            b"HTTP/1.1 200 O\x00K\r\n",
            b"http/1.1 200 OK\r\n",
            b"garbage\r\n",
        ] {
            assert!(
                matches!(parse_status_line(bad), Err(CheckFailure::Malformed)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn checks_keep_their_schedule_whatever_a_check_takes() {
        let t = Instant::now();
        let second = Duration::from_secs(1);
        // A check that took 500 ms (a timeout) waits the rest of the interval only.
        assert_eq!(wait_before_next(t, second, t + second / 2), second / 2);
        assert_eq!(wait_before_next(t, second, t), second);
        // Late: at once.
        assert_eq!(wait_before_next(t, second, t + 2 * second), Duration::ZERO);
    }

    #[test]
    fn delay_is_interval_plus_bounded_jitter() {
        let mut rng = fastrand::Rng::with_seed(7);
        let interval = Duration::from_millis(100);
        let jitter = Duration::from_millis(30);
        let mut seen_above = false;
        for _ in 0..1000 {
            let d = next_delay(interval, jitter, &mut rng);
            assert!(d >= interval && d <= interval + jitter, "{d:?}");
            seen_above |= d > interval + jitter / 2;
        }
        assert!(seen_above, "jitter spreads over its range");
        assert_eq!(next_delay(interval, Duration::ZERO, &mut rng), interval);
        assert_eq!(
            next_delay(Duration::ZERO, Duration::ZERO, &mut rng),
            MIN_INTERVAL
        );
    }

    /// A loopback backend on std threads: answers each connection with `respond(request)`,
    /// or holds it open without answering when that returns `None`.
    struct TestBackend {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl TestBackend {
        fn start(respond: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            let addr = listener.local_addr().expect("addr");
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let thread = thread::spawn(move || {
                let mut held = Vec::new();
                while !flag.load(Ordering::Acquire) {
                    let mut conn = match listener.accept() {
                        Ok((conn, _)) => conn,
                        Err(_) => {
                            thread::sleep(Duration::from_millis(2));
                            continue;
                        }
                    };
                    conn.set_nonblocking(false).expect("blocking");
                    let request = read_request(&mut conn);
                    match respond(&request) {
                        Some(answer) => {
                            let _ = conn.write_all(&answer);
                        }
                        None => held.push(conn),
                    }
                }
            });
            Self {
                addr,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for TestBackend {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Release);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Reads a request head (up to the empty line), or whatever arrives within 2 s.
    fn read_request(conn: &mut StdStream) -> Vec<u8> {
        conn.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("read timeout");
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        request
    }

    fn http_spec(timeout: Duration) -> CheckSpec {
        CheckSpec {
            kind: CheckKind::Http {
                method: "GET".into(),
                path: "/health".into(),
                host: Some("backend.example".into()),
                expect_status: 200..=399,
            },
            interval: Duration::from_millis(50),
            jitter: Duration::ZERO,
            timeout,
            rise: 2,
            fall: 3,
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        compio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(f)
    }

    fn check(addr: SocketAddr, spec: &CheckSpec) -> Result<(), CheckFailure> {
        block_on(check_once(addr, spec, None))
    }

    fn answering(answer: &'static [u8]) -> TestBackend {
        TestBackend::start(move |_| Some(answer.to_vec()))
    }

    #[test]
    fn http_200_passes_and_sends_the_request() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let backend = TestBackend::start(move |req| {
            log.lock().expect("lock").push(req.to_vec());
            Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec())
        });
        let result = check(backend.addr, &http_spec(Duration::from_secs(2)));
        assert!(result.is_ok(), "{result:?}");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1);
        assert_eq!(
            String::from_utf8_lossy(&seen[0]),
            "GET /health HTTP/1.1\r\nHost: backend.example\r\nUser-Agent: ringway-health\r\n\
             Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn without_a_host_the_backend_address_is_sent() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let backend = TestBackend::start(move |req| {
            log.lock().expect("lock").push(req.to_vec());
            Some(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec())
        });
        let mut spec = http_spec(Duration::from_secs(2));
        if let CheckKind::Http { host, .. } = &mut spec.kind {
            *host = None;
        }
        assert!(check(backend.addr, &spec).is_ok());
        let seen = seen.lock().expect("lock");
        let want = format!("\r\nHost: {}\r\n", backend.addr);
        assert!(
            String::from_utf8_lossy(&seen[0]).contains(&want),
            "{:?}",
            String::from_utf8_lossy(&seen[0])
        );
    }

    #[test]
    fn http_503_fails_with_status() {
        let backend = answering(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let result = check(backend.addr, &http_spec(Duration::from_secs(2)));
        assert!(
            matches!(result, Err(CheckFailure::Status(503))),
            "{result:?}"
        );
        assert_eq!(
            result.err().map(|e| e.to_string()).as_deref(),
            Some("unexpected status 503")
        );
    }

    #[test]
    fn http_status_bounds_of_expect() {
        let spec = http_spec(Duration::from_secs(2));
        let ok = answering(b"HTTP/1.1 399 Edge\r\n\r\n");
        assert!(check(ok.addr, &spec).is_ok());
        let over = answering(b"HTTP/1.0 400 Bad\r\n\r\n");
        assert!(matches!(
            check(over.addr, &spec),
            Err(CheckFailure::Status(400))
        ));
    }

    #[test]
    fn http_garbage_is_malformed() {
        let backend = answering(b"SSH-2.0-OpenSSH_9.6\r\n");
        let result = check(backend.addr, &http_spec(Duration::from_secs(2)));
        assert!(matches!(result, Err(CheckFailure::Malformed)), "{result:?}");
    }

    #[test]
    fn http_endless_status_line_is_malformed() {
        let backend = TestBackend::start(|_| Some(vec![b'a'; MAX_STATUS_READ + 100]));
        let result = check(backend.addr, &http_spec(Duration::from_secs(2)));
        assert!(matches!(result, Err(CheckFailure::Malformed)), "{result:?}");
    }

    #[test]
    fn http_close_without_status_line() {
        let backend = answering(b"HTTP/1.1 200 O");
        let result = check(backend.addr, &http_spec(Duration::from_secs(2)));
        assert!(matches!(result, Err(CheckFailure::Closed)), "{result:?}");
    }

    #[test]
    fn silent_backend_times_out() {
        let backend = TestBackend::start(|_| None);
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let result = check(backend.addr, &http_spec(timeout));
        let took = start.elapsed();
        assert!(
            matches!(result, Err(CheckFailure::Timeout(t)) if t == timeout),
            "{result:?}"
        );
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(500),
            "{took:?}"
        );
    }

    fn refused_addr() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    }

    #[test]
    fn refused_port_is_connect_failure() {
        let addr = refused_addr();
        let result = check(addr, &http_spec(Duration::from_secs(2)));
        match result {
            Err(CheckFailure::Connect(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused)
            }
            other => panic!("expected a connect failure, got {other:?}"),
        }
    }

    #[test]
    fn tcp_check_connects_only() {
        let spec = CheckSpec {
            kind: CheckKind::Tcp,
            ..http_spec(Duration::from_secs(2))
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        assert!(check(listener.local_addr().expect("addr"), &spec).is_ok());
        assert!(matches!(
            check(refused_addr(), &spec),
            Err(CheckFailure::Connect(_))
        ));
    }

    #[test]
    fn checks_of_a_send_proxy_upstream_start_with_a_local_header() {
        let spec = http_spec(Duration::from_secs(2));
        for (version, header) in [
            (Version::V1, &b"PROXY UNKNOWN\r\n"[..]),
            (Version::V2, &b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"[..]),
        ] {
            let backend = TestBackend::start(move |req| {
                let passes = req.starts_with(header)
                    && req[header.len()..].starts_with(b"GET /health HTTP/1.1\r\n");
                Some(if passes {
                    b"HTTP/1.1 200 OK\r\n\r\n".to_vec()
                } else {
                    b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()
                })
            });
            let checked = block_on(check_once(backend.addr, &spec, Some(version)));
            assert!(checked.is_ok(), "{version}: {checked:?}");
            assert!(matches!(
                check(backend.addr, &spec),
                Err(CheckFailure::Status(400))
            ));
        }
    }

    #[test]
    fn no_targets_no_thread() {
        let started = Checker::spawn(HealthBoard::new(1), Vec::new()).expect("spawn");
        assert!(started.is_none());
    }

    fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn first_check_at_once_and_stop_mid_sleep() {
        let backend = answering(b"HTTP/1.1 200 OK\r\n\r\n");
        let board = HealthBoard::new(1);
        let spec = CheckSpec {
            interval: Duration::from_secs(60),
            jitter: Duration::from_secs(60),
            ..http_spec(Duration::from_secs(2))
        };
        let target = CheckTarget {
            board_index: 0,
            addr: backend.addr,
            pool: "web".into(),
            spec: Arc::new(spec),
            send_proxy: None,
        };
        let checker = Checker::spawn(board.clone(), vec![target])
            .expect("spawn")
            .expect("a thread for one target");
        wait_until("the first check", Duration::from_secs(2), || {
            board.passes(0) == 1
        });
        let start = Instant::now();
        checker.stop();
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(board.passes(0), 1);
        assert!(board.is_up(0));
    }

    #[test]
    fn checker_marks_down_after_fall_and_up_after_rise() {
        let healthy = Arc::new(AtomicBool::new(true));
        let passes_served = Arc::new(AtomicU32::new(0));
        let failures_served = Arc::new(AtomicU32::new(0));
        let backend = {
            let (healthy, ok, failed) = (
                healthy.clone(),
                passes_served.clone(),
                failures_served.clone(),
            );
            TestBackend::start(move |req| {
                assert!(req.starts_with(b"GET /health HTTP/1.1\r\n"));
                Some(if healthy.load(Ordering::SeqCst) {
                    ok.fetch_add(1, Ordering::SeqCst);
                    b"HTTP/1.1 200 OK\r\n\r\n".to_vec()
                } else {
                    failed.fetch_add(1, Ordering::SeqCst);
                    b"HTTP/1.1 500 Internal Server Error\r\n\r\n".to_vec()
                })
            })
        };
        // Backend 1 of 2: the checker must write only its own slot.
        let board = HealthBoard::new(2);
        let spec = http_spec(Duration::from_secs(1));
        let (rise, fall) = (spec.rise, spec.fall);
        let target = CheckTarget {
            board_index: 1,
            addr: backend.addr,
            pool: "api".into(),
            spec: Arc::new(spec),
            send_proxy: None,
        };
        let checker = Checker::spawn(board.clone(), vec![target])
            .expect("spawn")
            .expect("a thread");
        wait_until("a passing check", Duration::from_secs(2), || {
            board.passes(1) >= 1
        });
        assert!(board.is_up(1));

        healthy.store(false, Ordering::SeqCst);
        wait_until("down", Duration::from_secs(3), || !board.is_up(1));
        assert_eq!(failures_served.load(Ordering::SeqCst), fall);
        assert_eq!(board.up_since(1), None);

        let passes_before = passes_served.load(Ordering::SeqCst);
        let passes_on_board = board.passes(1);
        assert_eq!(u64::from(passes_before), passes_on_board);
        healthy.store(true, Ordering::SeqCst);
        wait_until("up", Duration::from_secs(3), || board.is_up(1));
        let turned_up = Instant::now();
        assert_eq!(passes_served.load(Ordering::SeqCst) - passes_before, rise);
        assert_eq!(board.passes(1), passes_on_board + u64::from(rise));
        let since = board.up_since(1).expect("up since the transition");
        assert!(since <= turned_up && turned_up - since < Duration::from_millis(100));

        assert!(board.is_up(0));
        assert_eq!(board.passes(0), 0);

        let start = Instant::now();
        checker.stop();
        assert!(
            start.elapsed() < Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
    }
}
