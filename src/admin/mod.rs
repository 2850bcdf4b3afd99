//! The admin server: metrics, health and readiness probes, and a status page, on a port of its
//! own, served by threads of its own with plain std networking, never by a data-path worker.
//!
//! This module owns the admin port: binding it ([`spawn`]), accepting on its own thread
//! (`ringway-admin`), reading one request per connection, authorizing it, answering it and
//! closing. It knows nothing of the proxy: the caller hands it a function that builds a
//! [`Snapshot`] from the data path's counters, called once for each request that needs one
//! (`/healthz` never does), on an admin thread.
//!
//! Routes (GET and HEAD; another method gets 405 with `Allow`, another path 404):
//! - `/metrics`: the Prometheus text format 0.0.4 ([`prometheus`]), with the process metrics;
//! - `/healthz`: `200 ok` while the process runs; never asks for the token;
//! - `/readyz`: `200 ready`, or `503 not ready` when [`Snapshot::ready`] is false;
//! - `/status`: the snapshot as JSON ([`status`]);
//! - `/`: the status page ([`page`]).
//!
//! Invariants:
//! - bounded: at most [`MAX_CONNECTIONS`] connections are served at once, one thread each;
//!   more wait in the listen queue. A request head is at most [`MAX_HEAD`] bytes and must
//!   arrive within [`READ_TIMEOUT`] of the connection's acceptance; a response is written
//!   within [`WRITE_TIMEOUT`]. One request per connection (`Connection: close`);
//! - with a token, every route but `/healthz` requires `Authorization: Bearer <token>`
//!   (compared in constant time; 401 with `WWW-Authenticate: Bearer` otherwise);
//! - nothing a client sends makes a thread panic; a panicking snapshot function is answered
//!   500 and the server goes on;
//! - dropping the [`Admin`] stops accepting, closes the connections being served and joins
//!   every admin thread.

#![forbid(unsafe_code)]

mod page;
mod prometheus;
#[cfg(test)]
pub(crate) mod sample;
mod snapshot;
mod status;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

pub use self::snapshot::{
    BackendSnapshot, HandshakeCount, Health, Histogram, ListenerSnapshot, Snapshot,
    UpstreamSnapshot, WorkerSnapshot,
};

/// Connections served at once; each has its own short-lived thread.
pub const MAX_CONNECTIONS: usize = 4;
/// The largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has, from its connection's acceptance, to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a response may take to write.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What builds a snapshot for a request; called on an admin thread.
pub type SnapshotFn = Arc<dyn Fn() -> Snapshot + Send + Sync>;

/// Where the admin server listens and whether it asks for a token.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Port 0 asks the kernel for a free port ([`Admin::address`] tells which).
    pub address: SocketAddr,
    /// With a token, every route but `/healthz` requires `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// The token is not shown.
impl fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminSettings")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why the admin server did not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address could not be bound (in use, not local, not permitted).
    #[error("admin server: cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: io::Error,
    },
    /// The token cannot be sent in an `Authorization` header.
    #[error("admin server: the token {0}")]
    Token(&'static str),
    /// The accepting thread could not be started.
    #[error("admin server: cannot start its thread: {0}")]
    Thread(io::Error),
}

/// The running admin server. Dropping it stops the server and joins its threads.
pub struct Admin {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// A handle on the listening socket, to wake the accepting thread when stopping.
    listener: TcpListener,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// The address it listens on (with the port the kernel chose for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        {
            let mut open = self.shared.lock();
            self.shared.stop.store(true, Ordering::Release);
            // Connections being served end now (their reads and writes fail at once).
            for (_, stream) in open.streams.iter() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            open.streams.clear();
        }
        self.shared.freed.notify_all();
        // Wakes the accepting thread: accept(2) on a listening socket shut down fails.
        let _ = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("admin server: its accepting thread panicked");
        }
    }
}

/// Binds `settings.address` at once (an error names it) and serves it on the
/// `ringway-admin` thread until the returned [`Admin`] is dropped. Warns when the address is
/// not a loopback address.
pub fn spawn(settings: AdminSettings, snapshot: SnapshotFn) -> Result<Admin, AdminError> {
    if let Some(token) = &settings.token {
        check_token(token).map_err(AdminError::Token)?;
    }
    let bind_error = |source| AdminError::Bind {
        address: settings.address,
        source,
    };
    let listener = TcpListener::bind(settings.address).map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?;
    let waker = listener.try_clone().map_err(bind_error)?;
    if !address.ip().is_loopback() {
        if settings.token.is_some() {
            tracing::warn!(
                %address,
                "admin server listens on an address that is not loopback: whoever reaches it \
                 can probe /healthz, and with the token read metrics and status"
            );
        } else {
            tracing::warn!(
                %address,
                "admin server listens on an address that is not loopback, without a token: \
                 whoever reaches it can read metrics and status (set admin.token)"
            );
        }
    }
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        open: Mutex::new(Open::default()),
        freed: Condvar::new(),
    });
    let context = Arc::new(Context {
        token: settings.token,
        snapshot,
    });
    let thread = thread::Builder::new()
        .name("ringway-admin".to_owned())
        .spawn({
            let shared = Arc::clone(&shared);
            move || accept_loop(&listener, &shared, &context)
        })
        .map_err(AdminError::Thread)?;
    tracing::debug!(%address, "admin server listening");
    Ok(Admin {
        address,
        shared,
        listener: waker,
        thread: Some(thread),
    })
}

/// Whether a token can be sent as `Authorization: Bearer <token>`: RFC 6750's `b64token`
/// (letters, digits, `-._~+/`, then `=` padding), not empty.
pub fn check_token(token: &str) -> Result<(), &'static str> {
    if token.is_empty() {
        return Err("is empty");
    }
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
    {
        return Err(
            "may hold only letters, digits and -._~+/ (then = padding): it is sent as \
             `Authorization: Bearer <token>`",
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Accepting

/// What the accepting thread and [`Admin`] share.
struct Shared {
    stop: AtomicBool,
    open: Mutex<Open>,
    /// Signalled when a connection ends (a slot is free) and when stopping.
    freed: Condvar,
}

/// The connections being served: a handle on each, to close them when stopping.
#[derive(Default)]
struct Open {
    next: u64,
    streams: Vec<(u64, TcpStream)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Open> {
        // A panic while holding this lock leaves nothing half-changed: go on.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Frees a connection's slot when its thread ends, however it ends.
struct Slot {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.lock().streams.retain(|(id, _)| *id != self.id);
        self.shared.freed.notify_all();
    }
}

/// What a connection needs to answer.
struct Context {
    token: Option<String>,
    snapshot: SnapshotFn,
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, context: &Arc<Context>) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    loop {
        // Wait for a free slot.
        {
            let mut open = shared.lock();
            while open.streams.len() >= MAX_CONNECTIONS && !shared.stopping() {
                open = shared
                    .freed
                    .wait(open)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        if shared.stopping() {
            break;
        }
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(_) if shared.stopping() => break,
            Err(error) => {
                match error.kind() {
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted => {}
                    _ => {
                        // Out of descriptors or memory: wait instead of spinning.
                        tracing::warn!(%error, "admin server: accept failed");
                        thread::sleep(Duration::from_millis(100));
                    }
                }
                continue;
            }
        };
        threads.retain(|thread| !thread.is_finished());
        let accepted = Instant::now();
        let id = {
            let mut open = shared.lock();
            if shared.stopping() {
                break;
            }
            let id = open.next;
            open.next += 1;
            match stream.try_clone() {
                Ok(handle) => open.streams.push((id, handle)),
                Err(error) => {
                    tracing::warn!(%error, %peer, "admin server: connection dropped");
                    continue;
                }
            }
            id
        };
        let slot = Slot {
            shared: Arc::clone(shared),
            id,
        };
        let connection_context = Arc::clone(context);
        let spawned = thread::Builder::new()
            .name("ringway-admin-conn".to_owned())
            .spawn(move || {
                let _slot = slot;
                serve(stream, peer, accepted, &connection_context);
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            // The connection (and its slot) went with the closure: it is closed.
            Err(error) => tracing::warn!(%error, %peer, "admin server: no thread for a connection"),
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
}

// ---------------------------------------------------------------------------------------------
// One connection

/// Reads one request, answers it and closes. Every failure ends here: a client's mistakes get
/// their status, I/O errors end the connection.
fn serve(mut stream: TcpStream, peer: SocketAddr, accepted: Instant, context: &Context) {
    let response = match read_request(&mut stream, accepted + READ_TIMEOUT) {
        Ok(request) => answer(&request, context),
        Err(ReadError::Closed) => return,
        Err(ReadError::Io(error)) => {
            tracing::debug!(%peer, %error, "admin server: reading a request failed");
            return;
        }
        Err(ReadError::Refused(response)) => response,
    };
    tracing::debug!(%peer, status = response.status, "admin server: answered");
    if let Err(error) = write_all(
        &mut stream,
        &response.bytes(),
        Instant::now() + WRITE_TIMEOUT,
    ) {
        tracing::debug!(%peer, %error, "admin server: writing a response failed");
        return;
    }
    linger(&mut stream);
}

/// Sends the FIN, then reads what the client may still send (a body nobody asked for) for a
/// moment before closing, so that the close does not reset the connection under a response
/// the client has not read yet.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut scratch = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

fn write_all(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// A request head as far as the admin server cares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    method: String,
    /// The target's path, without the query.
    path: String,
    /// The first `Authorization` field's value.
    authorization: Option<Vec<u8>>,
}

/// Why no request was read.
#[derive(Debug)]
enum ReadError {
    /// The client closed before sending anything.
    Closed,
    Io(io::Error),
    /// A request that gets this answer (400, 408, 431).
    Refused(Response),
}

/// Reads a request head of at most [`MAX_HEAD`] bytes before `deadline`.
fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Request, ReadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Refused(Response::text(408, "request timeout\n")));
        }
        stream.set_read_timeout(Some(left)).map_err(ReadError::Io)?;
        let room = (MAX_HEAD - head.len()).min(chunk.len());
        let n = match stream.read(&mut chunk[..room]) {
            Ok(0) if head.is_empty() => return Err(ReadError::Closed),
            Ok(0) => {
                return Err(ReadError::Refused(Response::text(
                    400,
                    "incomplete request\n",
                )));
            }
            Ok(n) => n,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Refused(Response::text(408, "request timeout\n")));
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(ReadError::Io(error)),
        };
        head.extend_from_slice(&chunk[..n]);
        match parse_head(&head) {
            Ok(Some(request)) => return Ok(request),
            Ok(None) if head.len() >= MAX_HEAD => {
                return Err(ReadError::Refused(Response::text(
                    431,
                    "request head too large\n",
                )));
            }
            Ok(None) => {}
            Err(response) => return Err(ReadError::Refused(response)),
        }
    }
}

/// Parses a request head: `Ok(None)` while it is incomplete, the answer when it is refused.
fn parse_head(bytes: &[u8]) -> Result<Option<Request>, Response> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(bytes) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
                return Err(Response::text(400, "bad request\n"));
            };
            let path = target.split_once('?').map_or(target, |(path, _)| path);
            let authorization = parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                .map(|h| h.value.to_vec());
            Ok(Some(Request {
                method: method.to_owned(),
                path: path.to_owned(),
                authorization,
            }))
        }
        Err(httparse::Error::TooManyHeaders) => {
            Err(Response::text(431, "too many header fields\n"))
        }
        Err(_) => Err(Response::text(400, "bad request\n")),
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

/// A response: status, headers of its own and a body (left out for HEAD, its length kept).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    head_only: bool,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            head_only: false,
        }
    }

    fn text(status: u16, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body)
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "",
        }
    }

    /// The whole response as sent.
    fn bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
             X-Content-Type-Options: nosniff\r\nConnection: close\r\n",
            self.status,
            self.reason(),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// The routes, in the order `answer` tries them.
const ROUTES: [&str; 5] = ["/metrics", "/healthz", "/readyz", "/status", "/"];

/// The answer to `request`: authorization (all but `/healthz`), then the route and method. A
/// HEAD request gets the head of what GET would get, whatever the status.
fn answer(request: &Request, context: &Context) -> Response {
    let mut response = answer_get(request, context);
    response.head_only = request.method == "HEAD";
    response
}

fn answer_get(request: &Request, context: &Context) -> Response {
    if request.path != "/healthz" && !authorized(request, context.token.as_deref()) {
        return Response::text(401, "unauthorized\n")
            .with("WWW-Authenticate", "Bearer realm=\"ringway admin\"");
    }
    if !ROUTES.contains(&request.path.as_str()) {
        return Response::text(404, "not found\n");
    }
    if request.method != "GET" && request.method != "HEAD" {
        return Response::text(405, "method not allowed\n").with("Allow", "GET, HEAD");
    }
    if request.path == "/healthz" {
        return Response::text(200, "ok\n");
    }
    match catch_unwind(AssertUnwindSafe(|| (context.snapshot)())) {
        Ok(snapshot) => route(&request.path, &snapshot, SystemTime::now()),
        Err(_) => {
            tracing::error!("admin server: the snapshot function panicked");
            Response::text(500, "snapshot failed\n")
        }
    }
}

/// The answer of a route that shows the snapshot.
fn route(path: &str, snapshot: &Snapshot, now: SystemTime) -> Response {
    match path {
        "/metrics" => Response::new(
            200,
            prometheus::CONTENT_TYPE,
            prometheus::render(snapshot, Some(&prometheus::ProcessStats::read())),
        ),
        "/readyz" if snapshot.ready => Response::text(200, "ready\n"),
        "/readyz" => Response::text(503, "not ready\n"),
        "/status" => Response::new(200, status::CONTENT_TYPE, status::render(snapshot, now)),
        "/" => Response::new(200, page::CONTENT_TYPE, page::render(snapshot, now))
            .with("Content-Security-Policy", page::CONTENT_SECURITY_POLICY)
            .with("Referrer-Policy", "no-referrer"),
        _ => Response::text(404, "not found\n"),
    }
}

/// Whether the request carries the token (always, without one): `Bearer` (any case), spaces,
/// the token.
fn authorized(request: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let Some(value) = &request.authorization else {
        return false;
    };
    let value = value.trim_ascii();
    let Some(split) = value.iter().position(|&b| b == b' ') else {
        return false;
    };
    let (scheme, credentials) = value.split_at(split);
    scheme.eq_ignore_ascii_case(b"bearer")
        && constant_time_eq(credentials.trim_ascii_start(), token.as_bytes())
}

/// Compares `given` with `secret` in a time that depends only on the secret's length.
fn constant_time_eq(given: &[u8], secret: &[u8]) -> bool {
    let mut difference = u8::from(given.len() != secret.len());
    for (i, &s) in secret.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!s);
        difference |= std::hint::black_box(g ^ s);
    }
    difference == 0
}
