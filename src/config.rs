//! Configuration: the TOML schema, its defaults, and validation that names the bad key and why.
//!
//! This module owns turning a TOML document into a [`Config`] whose values are all usable:
//! [`Config::from_toml_str`] (and [`Config::load`], which also reads the file) checks syntax,
//! types, unknown keys, addresses, durations, limits, upstreams, routes and the names that tie
//! them together; [`Config::check`] additionally loads every certificate and key and builds
//! each listener's rustls configuration, so a missing file, an unreadable key or a key that
//! does not match its certificate is reported before anything listens. Nothing here opens a
//! socket or starts a thread.
//!
//! Invariants of a `Config` returned by `from_toml_str` or `load` (all checked by
//! [`Config::validate`]):
//! - at least one listener; listener addresses are distinct;
//! - every listener has a default upstream or at least one route, every upstream index (a
//!   listener's default, a route's) is below `upstreams.len()`, and every route path prefix
//!   starts with `/`; every listener has at least one certificate;
//! - upstream names are distinct and made of `[A-Za-z0-9_.-]`; every upstream has at least one
//!   backend that is not a backup, distinct backend addresses (`ip:port`, port not 0), weights
//!   in `1..=1000`, a hash key exactly when its policy is `consistent_hash`, health check
//!   timings with `0 < timeout < interval`, `jitter <= interval`, `rise` and `fall` at least 1,
//!   and ejection times with `0 < base_ejection <= max_ejection`;
//! - every timeout except `timeouts.drain` is greater than zero;
//! - every limit except `limits.body` (0 = unlimited) is at least 1, and `limits.head` is at
//!   least `limits.request_line`;
//! - `workers`, when given, is at least 1;
//! - `batch_wait` is at most [`MAX_BATCH_WAIT`];
//! - `ring_buffers`, when given, is between 1 and [`MAX_CONFIGURED_RING_BUFFERS`].
//!
//! Every error's `Display` is one line: the key path (`upstream[1].backend[0].weight`), why it
//! is wrong and, for errors found in the document, where (`ringway.toml:12:14`, or
//! `line 12, column 14` without a file). Errors name the keys as the document writes them: a
//! backend from an upstream's short `backends` list is `upstream[1].backends[0]`, one from the
//! long form `upstream[1].backend[0].address`, and one from a listener's legacy `backends`
//! list `listener[0].backends[0]`. Certificate errors from [`Config::check`] name the key and
//! the file instead (`listener[0].certificate[1].key: /etc/x.pem: No such file or
//! directory`).
//!
//! # The TOML file
//!
//! Every section and key is optional except the `[[listener]]` entries, each with `address`,
//! an upstream to send requests to (`upstream = "name"`, the legacy `backends = [...]`, or
//! `[[listener.route]]` entries) and at least one `[[listener.certificate]]`; and in each
//! `[[upstream]]`, `name` and at least one backend. Unknown keys are errors.
//!
//! - Durations are strings of one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`
//!   (`"500ms"`, `"10s"`, `"2m"`, `"1h30m"`), or plain integers meaning milliseconds.
//! - Sizes and counts are integers.
//! - Addresses are `ip:port` (`"127.0.0.1:8080"`, `"[::1]:8443"`); host names are not
//!   resolved. A listener port of 0 asks the kernel for a free port (tests only: each worker's
//!   SO_REUSEPORT socket would get a different one).
//! - Certificate and key paths that are relative are taken relative to the directory of the
//!   configuration file when it is read with [`Config::load`], and to the current directory
//!   with [`Config::from_toml_str`]. `cert` and `key` may name the same file.
//! - `log.level` is a tracing `EnvFilter` directive list: `"info"`, or
//!   `"info,ringway::proxy=debug"`.
//! - A listener's legacy `backends = [...]` list (no `upstream`) becomes an upstream named
//!   `listener<i>` (`i` the listener's position), round robin, weight 1, no active health
//!   checks, default passive ejection. It is appended to [`Config::upstreams`] after the
//!   `[[upstream]]` tables; other listeners cannot name it.
//!
//! ```toml
//! workers = 2            # optional; default: every core the process may run on
//! batch_wait = "50us"    # longest a busy worker lets I/O completions gather; "0s" = off
//! ring_buffers = 512     # optional; 32 KiB receive buffers per worker; default: from the load
//!
//! [timeouts]
//! handshake = "10s"      # TLS handshake, from accept
//! request_head = "10s"   # first byte to the end of a request head
//! keepalive = "60s"      # idle client connection between requests
//! body = "60s"           # inactivity while a request or response body streams
//! connect = "3s"         # connecting to a backend
//! response = "30s"       # request sent to the backend's response head
//! drain = "30s"          # graceful stop: time for in-flight requests (0 = stop at once)
//!
//! [limits]
//! request_line = 8192    # bytes
//! head = 32768           # bytes, request line and headers together
//! headers = 100          # header fields
//! body = 0               # request body bytes, 0 = unlimited
//! trailer = 8192         # bytes of chunked trailer fields
//! connections_per_worker = 10000
//!
//! [pool]
//! max_idle_per_backend = 1024 # idle kept-alive backend connections per worker; 0 = none
//! idle_timeout = "30s"
//!
//! [log]
//! level = "info"
//!
//! [[upstream]]
//! name = "app"                  # required, unique, [A-Za-z0-9_.-]+
//! policy = "round_robin"        # round_robin | weighted_round_robin | random |
//!                               # least_connections | peak_ewma | consistent_hash
//! # hash = "client_ip"          # consistent_hash only: client_ip | "header:X-User" | "cookie:sid"
//! slow_start = "0s"             # weight ramp after a backend comes back; 0 = off
//! backends = ["127.0.0.1:8080"] # short form: weight 1, unlimited, not a backup
//!
//! [[upstream.backend]]          # long form (after the short ones)
//! address = "127.0.0.1:8081"
//! weight = 1                    # 1..=1000, used by every policy but round_robin
//! max_connections = 0           # requests in flight to it, all workers together; 0 = unlimited
//! backup = false                # used only when no primary backend is usable
//!
//! [upstream.health_check]       # absent: no active checks
//! type = "http"                 # http | tcp
//! interval = "5s"
//! jitter = "1s"                 # <= interval
//! timeout = "2s"                # < interval
//! rise = 2                      # passes in a row to mark a backend up
//! fall = 3                      # failures in a row to mark it down
//! method = "GET"                # http only
//! path = "/"                    # http only
//! # host = "app.internal"       # http only; default: the backend address
//! expect_status = "200-399"     # http only; "200" or "200-399"
//!
//! [upstream.outlier]            # passive ejection, per worker
//! consecutive_failures = 5      # connect failures, resets, timeouts; 0 = off
//! consecutive_5xx = 0           # 0 = off
//! base_ejection = "10s"         # first ejection; longer while it keeps failing
//! max_ejection = "300s"
//! max_ejected_percent = 50      # share one worker ejects at once; never the whole tier
//!
//! [[listener]]
//! address = "0.0.0.0:8443"
//! backlog = 4096
//! upstream = "app"              # default route (or legacy backends = ["127.0.0.1:8080"])
//!
//! [[listener.route]]            # first match wins, before the default
//! host = "*.example.com"        # exact or "*.domain"; optional
//! path_prefix = "/api/"         # plain byte prefix; optional
//! upstream = "app"
//!
//! [[listener.certificate]]   # the first certificate is the default (no SNI, unknown name)
//! cert = "certs/example.com.pem"
//! key = "certs/example.com.key"
//!
//! [listener.tls]
//! session_cache = 4096   # stateful resumption cache entries; 0 disables it
//! tickets = true         # stateless session tickets (TLS 1.2 and 1.3)
//! ```
//!
//! `ringway.example.toml` at the top of the repository is the same file with more comments; a
//! test parses it.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::route::{HostPattern, Route, Router};
pub use crate::tls::TlsOptions;
use crate::tls::{self, CertifiedKey, FileKind, TlsError};

// ---------------------------------------------------------------------------------------------
// The validated configuration

/// Default of [`Config::batch_wait`].
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_micros(50);
/// The largest [`Config::batch_wait`] accepted.
pub const MAX_BATCH_WAIT: Duration = Duration::from_millis(1);
/// Default of [`PoolConfig::max_idle_per_backend`].
pub const DEFAULT_MAX_IDLE_PER_BACKEND: usize = 1024;
/// The largest [`Config::ring_buffers`] accepted.
pub use crate::runtime::MAX_CONFIGURED_RING_BUFFERS;

/// The whole configuration, validated. See the module doc for the TOML shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Worker threads, one per core. `None`: every core the process may run on.
    pub workers: Option<usize>,
    /// The longest a busy worker lets I/O completions gather before handling them (see
    /// [`crate::runtime::event_loop`]); zero turns gathering off. Default 50 µs.
    pub batch_wait: Duration,
    /// Provided receive buffers (32 KiB each) registered with each worker's ring; a power of
    /// two once applied. `None`: sized from `limits.connections_per_worker` (see
    /// [`crate::runtime::RingConfig::for_load`]).
    pub ring_buffers: Option<u32>,
    pub timeouts: Timeouts,
    pub limits: LimitsConfig,
    pub pool: PoolConfig,
    pub log: LogConfig,
    /// Backend pools, referred to by index from [`ListenerConfig::default_upstream`] and
    /// [`RouteConfig::upstream`]. TOML: `[[upstream]]`, in file order, then one implicit
    /// upstream per listener written with the legacy `backends = [...]`. Unused upstreams are
    /// allowed.
    pub upstreams: Vec<UpstreamConfig>,
    /// At least one. TOML: `[[listener]]`.
    pub listeners: Vec<ListenerConfig>,
}

/// Timeouts. All are greater than zero except `drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TLS handshake, from accept. Default 10 s.
    pub handshake: Duration,
    /// From the first byte of a request to the end of its head. Default 10 s.
    pub request_head: Duration,
    /// Idle client connection between requests. Default 60 s.
    pub keepalive: Duration,
    /// Inactivity while a body streams, either way. Default 60 s.
    pub body: Duration,
    /// Connecting to a backend. Default 3 s.
    pub connect: Duration,
    /// From the request sent to the backend's response head. Default 30 s.
    pub response: Duration,
    /// Graceful stop: how long in-flight requests may finish. 0 stops at once. Default 30 s.
    pub drain: Duration,
}

/// Request size limits. The caller converts these into `http1::Limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Bytes of the request line. Default 8192.
    pub request_line: usize,
    /// Bytes of the request head (request line and header fields). Default 32768.
    pub head: usize,
    /// Header fields. Default 100.
    pub headers: usize,
    /// Request body bytes; 0 = unlimited. Default 0.
    pub body: u64,
    /// Bytes of chunked trailer fields. Default 8192.
    pub trailer: usize,
    /// Open client connections per worker; beyond it new connections are closed at accept.
    /// Default 10000.
    pub connections_per_worker: usize,
}

/// The per-worker backend connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Idle kept-alive connections kept per backend, per worker; 0 keeps none. Default 1024:
    /// enough for the concurrency of thousands of clients, so a busy worker reuses its
    /// backend connections instead of closing and opening them (idle ones close after
    /// `idle_timeout`).
    pub max_idle_per_backend: usize,
    /// An idle backend connection older than this is closed. Default 30 s.
    pub idle_timeout: Duration,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive list, e.g. `"info"` or `"info,ringway::proxy=debug"`.
    /// Default `"info"`.
    pub level: String,
}

/// One listening address with its certificates and where its requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    /// `listen(2)` backlog. Default 4096.
    pub backlog: u32,
    /// At least one. TOML: `[[listener.certificate]]`. The first is the default certificate.
    pub certificates: Vec<CertificateConfig>,
    /// The upstream for requests no route matches: an index into [`Config::upstreams`].
    /// TOML: `upstream = "name"`, or the legacy `backends = [...]` (an implicit upstream).
    /// `None`: unmatched requests get 404 (or 421 when the SNI names another host).
    pub default_upstream: Option<usize>,
    /// Tried in order before the default; the first match wins. TOML: `[[listener.route]]`.
    /// A listener has a default upstream, routes, or both.
    pub routes: Vec<RouteConfig>,
    pub tls: TlsOptions,
}

/// A routing rule of a listener: requests matching `host` (if given) and `path_prefix` (if
/// given) go to `upstream`, an index into [`Config::upstreams`]. TOML: `[[listener.route]]`
/// with `host`, `path_prefix` and `upstream = "name"`. The router's own [`Route`]: a
/// listener's routes feed [`Router::new`] as they are (see [`ListenerConfig::router`]).
pub type RouteConfig = Route;

/// A pool of backends and how requests are spread over them. TOML: `[[upstream]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Unique, `[A-Za-z0-9_.-]+`; listeners and routes name the upstream with it.
    pub name: String,
    /// How a backend is chosen for a request. Default round robin.
    pub policy: Policy,
    /// What consistent hashing hashes: `Some` exactly when `policy` is
    /// [`Policy::ConsistentHash`] (TOML default there: client IP).
    pub hash: Option<HashKey>,
    /// How long a backend's weight ramps up from near 0 after it comes back (healthy again or
    /// no longer ejected); zero turns slow start off. Default 0.
    pub slow_start: Duration,
    /// At least one, at least one of them not a backup, addresses distinct. TOML: the short
    /// `backends = [...]` list first, then the `[[upstream.backend]]` tables.
    pub backends: Vec<BackendConfig>,
    /// Active checks, run once per upstream for all workers. `None`: no active checks (every
    /// backend counts as up unless passively ejected). TOML: `[upstream.health_check]`.
    pub health_check: Option<HealthCheckConfig>,
    /// Passive ejection, per worker. TOML: `[upstream.outlier]`; present with its defaults
    /// when the section is absent.
    pub outlier: OutlierConfig,
}

/// The balancing policies (the same type as the balancer's): TOML and
/// [`FromStr`]/[`fmt::Display`] use the snake_case names (`"least_connections"`).
pub use crate::balance::{PolicyKind as Policy, UnknownPolicy};

/// What a [`Policy::ConsistentHash`] upstream hashes to pick a backend. TOML:
/// `"client_ip"`, `"header:<name>"`, `"cookie:<name>"`; [`fmt::Display`] writes the same form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum HashKey {
    /// The client's IP address (not the port).
    #[default]
    ClientIp,
    /// The value of this request header; the name is stored lowercase.
    Header(String),
    /// The value of this cookie; the name is case-sensitive, kept as written.
    Cookie(String),
}

/// Why a string is not a [`HashKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashKeyError {
    /// Not `client_ip`, `header:...` or `cookie:...`.
    #[error(
        "{0:?} is not a hash key (expected \"client_ip\", \"header:<name>\" or \
         \"cookie:<name>\")"
    )]
    Unknown(String),
    /// The header or cookie name is empty or not an RFC 9110 token.
    #[error("{text:?}: {name:?} is not a valid {kind} name (letters, digits and !#$%&'*+-.^_`|~)")]
    Name {
        /// The whole value as written.
        text: String,
        /// `header` or `cookie`.
        kind: &'static str,
        /// The name refused.
        name: String,
    },
}

/// One backend of an upstream. TOML: an entry of `backends = [...]` (every other field at its
/// default) or an `[[upstream.backend]]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendConfig {
    /// `ip:port`, port not 0.
    pub address: SocketAddr,
    /// `1..=1000`, default 1. Used by every policy but round robin.
    pub weight: u32,
    /// Requests in flight to this backend, all workers together; at the limit it is skipped.
    /// 0 = unlimited (default).
    pub max_connections: u32,
    /// Used only when no primary (non-backup) backend of the upstream is usable. Default
    /// false.
    pub backup: bool,
}

/// Active health checks of an upstream's backends (TOML: `[upstream.health_check]`), and what
/// a check does: the health checker's own types, validated here.
pub use crate::upstream::checker::{CheckKind, CheckSpec as HealthCheckConfig};

/// Passive ejection: a worker stops sending to a backend that keeps failing, for a while.
/// Kept per worker. TOML: `[upstream.outlier]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierConfig {
    /// Connect failures, resets and timeouts in a row that eject a backend; 0 = off.
    /// Default 5.
    pub consecutive_failures: u32,
    /// 5xx responses in a row that eject a backend; 0 = off. Default 0.
    pub consecutive_5xx: u32,
    /// The first ejection's length; later ones in a row grow up to `max_ejection`. Greater
    /// than zero. Default 10 s.
    pub base_ejection: Duration,
    /// The longest ejection. At least `base_ejection`. Default 300 s.
    pub max_ejection: Duration,
    /// The largest share (percent, 0 to 100) of an upstream's primary (or backup) backends one
    /// worker ejects at once; at least one may be when there are two or more, and never the
    /// last one the health checks consider up. Default 50.
    pub max_ejected_percent: u32,
}

/// A PEM certificate chain (leaf first) and its PEM private key. May be the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            request_head: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
            body: Duration::from_secs(60),
            connect: Duration::from_secs(3),
            response: Duration::from_secs(30),
            drain: Duration::from_secs(30),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            request_line: 8192,
            head: 32768,
            headers: 100,
            body: 0,
            trailer: 8192,
            connections_per_worker: 10000,
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_idle_per_backend: DEFAULT_MAX_IDLE_PER_BACKEND,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
        }
    }
}

/// Every section at its default and no listener. Not valid as it is: a configuration needs at
/// least one listener.
impl Default for Config {
    fn default() -> Self {
        Self {
            workers: None,
            batch_wait: DEFAULT_BATCH_WAIT,
            ring_buffers: None,
            timeouts: Timeouts::default(),
            limits: LimitsConfig::default(),
            pool: PoolConfig::default(),
            log: LogConfig::default(),
            upstreams: Vec::new(),
            listeners: Vec::new(),
        }
    }
}

impl ListenerConfig {
    /// Default `listen(2)` backlog.
    pub const DEFAULT_BACKLOG: u32 = 4096;
}

/// `0.0.0.0:8443`, the default backlog and TLS options, and no certificate, upstream nor
/// route: not valid until a certificate and an upstream or route are filled in.
impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([0, 0, 0, 0], 8443)),
            backlog: Self::DEFAULT_BACKLOG,
            certificates: Vec::new(),
            default_upstream: None,
            routes: Vec::new(),
            tls: TlsOptions::default(),
        }
    }
}

impl UpstreamConfig {
    /// A round-robin upstream over `addresses`, each with the [`BackendConfig::new`]
    /// defaults, and every other field at its default: what a legacy `backends = [...]` list
    /// or the quick-start `--backend` flags make.
    pub fn new(name: impl Into<String>, addresses: impl IntoIterator<Item = SocketAddr>) -> Self {
        Self {
            name: name.into(),
            backends: addresses.into_iter().map(BackendConfig::new).collect(),
            ..Self::default()
        }
    }

    /// Whether an upstream name is usable: non-empty, `[A-Za-z0-9_.-]` only.
    pub fn is_valid_name(name: &str) -> bool {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }
}

/// No name and no backend (not valid until both are filled in); round robin, no hash, no
/// slow start, no active checks, default passive ejection.
impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            policy: Policy::default(),
            hash: None,
            slow_start: Duration::ZERO,
            backends: Vec::new(),
            health_check: None,
            outlier: OutlierConfig::default(),
        }
    }
}

impl FromStr for HashKey {
    type Err = HashKeyError;

    /// `client_ip`, `header:<token>` (lowercased) or `cookie:<token>` (kept as written).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "client_ip" {
            return Ok(HashKey::ClientIp);
        }
        let (kind, name) = match text.split_once(':') {
            Some(("header", name)) => ("header", name),
            Some(("cookie", name)) => ("cookie", name),
            _ => return Err(HashKeyError::Unknown(text.to_owned())),
        };
        if !is_token(name) {
            return Err(HashKeyError::Name {
                text: text.to_owned(),
                kind,
                name: name.to_owned(),
            });
        }
        Ok(if kind == "header" {
            HashKey::Header(name.to_ascii_lowercase())
        } else {
            HashKey::Cookie(name.to_owned())
        })
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashKey::ClientIp => f.write_str("client_ip"),
            HashKey::Header(name) => write!(f, "header:{name}"),
            HashKey::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

impl BackendConfig {
    /// The largest weight.
    pub const MAX_WEIGHT: u32 = 1000;

    /// A backend at `address` with weight 1, no connection limit, not a backup.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            weight: 1,
            max_connections: 0,
            backup: false,
        }
    }
}

impl From<SocketAddr> for BackendConfig {
    fn from(address: SocketAddr) -> Self {
        Self::new(address)
    }
}

/// Eject after 5 connect failures in a row (5xx not counted), for 10 s growing to 300 s, at
/// most half of an upstream's backends at once.
impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            consecutive_5xx: 0,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}

/// RFC 9110 §5.6.2: `token = 1*tchar`.
fn is_token(text: &str) -> bool {
    crate::http1::is_token(text.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Where in the configuration file an error was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file, when the document was read with [`Config::load`].
    pub file: Option<PathBuf>,
    /// 1-based line and column (in characters).
    pub line_column: Option<(usize, usize)>,
}

/// Shows as ` (ringway.toml:12:14)`, ` (line 12, column 14)`, ` (ringway.toml)` or nothing.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line_column) {
            (Some(file), Some((line, column))) => {
                write!(f, " ({}:{line}:{column})", file.display())
            }
            (Some(file), None) => write!(f, " ({})", file.display()),
            (None, Some((line, column))) => write!(f, " (line {line}, column {column})"),
            (None, None) => Ok(()),
        }
    }
}

/// Why a configuration was refused. `Display` is one line naming the key and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("{}: {}", .path.display(), tls::IoReason(.source))]
    Read { path: PathBuf, source: io::Error },
    /// The document is not TOML (no key can be named).
    #[error("invalid TOML: {message}{at}")]
    Syntax { message: String, at: Location },
    /// A key is unknown, of the wrong type, missing, or has a value ringway refuses.
    #[error("{key}: {reason}{at}")]
    Invalid {
        /// The key path, e.g. `listener[0].backends[1]`.
        key: String,
        reason: String,
        at: Location,
    },
    /// A certificate or key file of `listener[i].certificate[j]` is unusable; `key` ends in
    /// `.cert` or `.key` for the file at fault.
    #[error("{key}: {source}")]
    Certificate { key: String, source: TlsError },
    /// A listener's TLS configuration could not be built.
    #[error("{key}: {source}")]
    Tls { key: String, source: TlsError },
}

impl ConfigError {
    /// The key path the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. }
            | ConfigError::Certificate { key, .. }
            | ConfigError::Tls { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    fn in_file(mut self, path: &Path) -> Self {
        if let ConfigError::Syntax { at, .. } | ConfigError::Invalid { at, .. } = &mut self {
            at.file = Some(path.to_path_buf());
        }
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and checking

impl Config {
    /// Parses and validates a TOML document: syntax, types, unknown keys, addresses and
    /// durations, upstream names, then [`Config::validate`] (its errors naming the keys as
    /// the document writes them). Files are not touched: certificate paths are kept as
    /// written.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(s).map_err(|error| toml_error(s, &error))?;
        let (config, names) = from_raw(raw).map_err(|error| locate(s, error))?;
        config
            .validate_named(&names)
            .map_err(|error| locate(s, error))?;
        Ok(config)
    }

    /// Reads `path` and parses it with [`Config::from_toml_str`]; errors name the file.
    /// Relative certificate and key paths are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_toml_str(&text).map_err(|error| error.in_file(path))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for listener in &mut config.listeners {
            for certificate in &mut listener.certificates {
                certificate.cert = base.join(&certificate.cert);
                certificate.key = base.join(&certificate.key);
            }
        }
        Ok(config)
    }

    /// The invariants listed in the module doc, for a `Config` built in code (quick start,
    /// demo); [`Config::from_toml_str`] and [`Config::load`] already apply them. Touches no
    /// file. Errors name the key; they carry no position. Keys of upstreams are named by
    /// position: `upstream[1].backend[0].weight`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_named(&KeyNames::default())
    }

    /// [`Config::validate`], naming upstream keys with `names`.
    fn validate_named(&self, names: &KeyNames) -> Result<(), ConfigError> {
        if self.workers == Some(0) {
            return Err(invalid(
                "workers",
                "must be at least 1 (leave it out to use every core the process may run on)",
            ));
        }
        if self.batch_wait > MAX_BATCH_WAIT {
            return Err(invalid(
                "batch_wait",
                format!(
                    "must be at most {} (it delays every I/O completion of a busy worker)",
                    format_duration(MAX_BATCH_WAIT)
                ),
            ));
        }
        if let Some(n) = self.ring_buffers
            && !(1..=MAX_CONFIGURED_RING_BUFFERS).contains(&n)
        {
            return Err(invalid(
                "ring_buffers",
                format!(
                    "must be between 1 and {MAX_CONFIGURED_RING_BUFFERS} (leave it out to size the pool \
                     from limits.connections_per_worker)"
                ),
            ));
        }

        let t = &self.timeouts;
        for (key, value) in [
            ("timeouts.handshake", t.handshake),
            ("timeouts.request_head", t.request_head),
            ("timeouts.keepalive", t.keepalive),
            ("timeouts.body", t.body),
            ("timeouts.connect", t.connect),
            ("timeouts.response", t.response),
            ("pool.idle_timeout", self.pool.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be greater than 0"));
            }
        }

        let l = &self.limits;
        for (key, value) in [
            ("limits.request_line", l.request_line),
            ("limits.head", l.head),
            ("limits.headers", l.headers),
            ("limits.trailer", l.trailer),
            ("limits.connections_per_worker", l.connections_per_worker),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if l.head < l.request_line {
            return Err(invalid(
                "limits.head",
                format!(
                    "{} is smaller than limits.request_line ({}): the request line is part of \
                     the head",
                    l.head, l.request_line
                ),
            ));
        }

        check_log_level(&self.log.level).map_err(|why| invalid("log.level", why))?;

        if self.listeners.is_empty() {
            return Err(invalid("listener", "at least one [[listener]] is required"));
        }
        let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
        for (index, listener) in self.listeners.iter().enumerate() {
            listener.validate(index)?;
            self.check_upstream_indexes(index, listener)?;
            if let Some(first) = seen.insert(listener.address, index) {
                return Err(invalid(
                    format!("listener[{index}].address"),
                    format!(
                        "{} is already the address of listener[{first}]",
                        listener.address
                    ),
                ));
            }
        }

        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, upstream) in self.upstreams.iter().enumerate() {
            upstream.validate_named(index, names)?;
            if let Some(first) = seen.insert(&upstream.name, index) {
                let reason = match names.origin(index) {
                    Origin::Legacy { .. } => format!(
                        "these backends make an implicit upstream named {:?}, which is already \
                         the name of upstream[{first}]: rename upstream[{first}]",
                        upstream.name
                    ),
                    Origin::Table { .. } => format!(
                        "{:?} is already the name of upstream[{first}]",
                        upstream.name
                    ),
                };
                return Err(invalid(names.upstream(index, "name"), reason));
            }
        }
        Ok(())
    }

    /// The upstream indexes of `listener` (its default and its routes') are below
    /// `upstreams.len()`.
    fn check_upstream_indexes(
        &self,
        index: usize,
        listener: &ListenerConfig,
    ) -> Result<(), ConfigError> {
        let count = self.upstreams.len();
        let out_of_range = |key: String, upstream: usize| {
            invalid(
                key,
                format!("upstream index {upstream} is out of range: there are {count} upstreams"),
            )
        };
        if let Some(upstream) = listener.default_upstream
            && upstream >= count
        {
            return Err(out_of_range(
                format!("listener[{index}].upstream"),
                upstream,
            ));
        }
        for (position, route) in listener.routes.iter().enumerate() {
            if route.upstream >= count {
                return Err(out_of_range(
                    format!("listener[{index}].route[{position}].upstream"),
                    route.upstream,
                ));
            }
        }
        Ok(())
    }

    /// Everything `run` would refuse at startup: [`Config::validate`], then every certificate
    /// and key is loaded (a missing file, a file without a key, an unsupported key or a
    /// key/certificate mismatch is reported naming the key path and the file) and each
    /// listener's rustls configuration is built. Stops at the first error.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.validate()?;
        for (index, listener) in self.listeners.iter().enumerate() {
            listener.server_config(index, None)?;
        }
        Ok(())
    }

    /// The configuration as TOML, every key written out; parsing it gives back `self`.
    /// Implicit upstreams (from legacy `backends` lists) are written as `[[upstream]]` tables
    /// and backends in the long form. Fails on an upstream index out of range.
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(&raw_config(self)?)
    }
}

impl ListenerConfig {
    /// The listener part of [`Config::validate`]; `index` is the listener's position in
    /// [`Config::listeners`], for the key path in errors.
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let key = |rest: &str| format!("listener[{index}].{rest}");
        if self.backlog == 0 {
            return Err(invalid(key("backlog"), "must be at least 1"));
        }
        if self.default_upstream.is_none() && self.routes.is_empty() {
            return Err(invalid(
                key("backends"),
                "at least one backend is required: list them (backends = [\"127.0.0.1:8080\"]), \
                 name an [[upstream]] (upstream = \"app\") or add [[listener.route]] entries",
            ));
        }
        for (position, route) in self.routes.iter().enumerate() {
            if let Some(prefix) = &route.path_prefix {
                check_path(prefix)
                    .map_err(|why| invalid(key(&format!("route[{position}].path_prefix")), why))?;
            }
        }
        if self.certificates.is_empty() {
            return Err(invalid(
                key("certificate"),
                "at least one [[listener.certificate]] with cert and key is required",
            ));
        }
        for (position, certificate) in self.certificates.iter().enumerate() {
            for (name, path) in [("cert", &certificate.cert), ("key", &certificate.key)] {
                if path.as_os_str().is_empty() {
                    return Err(invalid(
                        key(&format!("certificate[{position}].{name}")),
                        "must be a file path, not empty",
                    ));
                }
            }
        }
        Ok(())
    }

    /// This listener's router: its routes in order, then its default upstream.
    pub fn router(&self) -> Router {
        Router::new(self.routes.clone(), self.default_upstream)
    }

    /// Loads this listener's certificates, in order. `index` is the listener's position in
    /// [`Config::listeners`], for the key path in errors.
    pub fn load_certificates(&self, index: usize) -> Result<Vec<Arc<CertifiedKey>>, ConfigError> {
        self.certificates
            .iter()
            .enumerate()
            .map(|(position, certificate)| {
                tls::load_certified_key(&certificate.cert, &certificate.key).map_err(|source| {
                    let file = match source.file_kind() {
                        Some(FileKind::Certificate) => ".cert",
                        Some(FileKind::PrivateKey) => ".key",
                        None => "",
                    };
                    ConfigError::Certificate {
                        key: format!("listener[{index}].certificate[{position}]{file}"),
                        source,
                    }
                })
            })
            .collect()
    }

    /// Loads the certificates and builds this listener's rustls configuration with
    /// [`tls::server_config`]. Pass the process's one [`tls::ticketer`] to enable tickets.
    pub fn server_config(
        &self,
        index: usize,
        ticketer: Option<Arc<dyn rustls::server::ProducesTickets>>,
    ) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
        let keys = self.load_certificates(index)?;
        tls::server_config(keys, &self.tls, ticketer).map_err(|source| ConfigError::Tls {
            key: format!("listener[{index}]"),
            source,
        })
    }
}

impl UpstreamConfig {
    /// The upstream part of [`Config::validate`] (all but name uniqueness); `index` is the
    /// upstream's position in [`Config::upstreams`], for the key path in errors.
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        self.validate_named(index, &KeyNames::default())
    }

    fn validate_named(&self, index: usize, names: &KeyNames) -> Result<(), ConfigError> {
        let key = |rest: &str| names.upstream(index, rest);
        if !Self::is_valid_name(&self.name) {
            return Err(invalid(
                key("name"),
                format!(
                    "{:?} is not a valid upstream name: use letters, digits, '_', '.' and '-'",
                    self.name
                ),
            ));
        }
        match (&self.hash, self.policy) {
            (None, Policy::ConsistentHash) => {
                return Err(invalid(
                    key("hash"),
                    "is required with policy = \"consistent_hash\" (\"client_ip\", \
                     \"header:<name>\" or \"cookie:<name>\")",
                ));
            }
            (Some(_), policy) if policy != Policy::ConsistentHash => {
                return Err(invalid(
                    key("hash"),
                    format!(
                        "is only used with policy = \"consistent_hash\", not {:?}",
                        policy.name()
                    ),
                ));
            }
            (Some(HashKey::Header(name)), _)
                if !is_token(name) || name.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                return Err(invalid(
                    key("hash"),
                    format!("header name {name:?} must be a lowercase token"),
                ));
            }
            (Some(HashKey::Cookie(name)), _) if !is_token(name) => {
                return Err(invalid(
                    key("hash"),
                    format!("cookie name {name:?} must be a token"),
                ));
            }
            _ => {}
        }

        if self.backends.is_empty() {
            let example = match names.origin(index) {
                Origin::Legacy { .. } => "(backends = [\"127.0.0.1:8080\"])",
                Origin::Table { .. } => "(backends = [\"127.0.0.1:8080\"] or [[upstream.backend]])",
            };
            return Err(invalid(
                names.backend_list(index),
                format!("at least one backend is required {example}"),
            ));
        }
        let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
        for (position, backend) in self.backends.iter().enumerate() {
            let address = backend.address;
            if address.port() == 0 {
                return Err(invalid(
                    names.backend(index, position, "address"),
                    format!("{address}: port 0 cannot be connected to"),
                ));
            }
            if !(1..=BackendConfig::MAX_WEIGHT).contains(&backend.weight) {
                return Err(invalid(
                    names.backend(index, position, "weight"),
                    format!(
                        "{} is out of range: must be 1 to {}",
                        backend.weight,
                        BackendConfig::MAX_WEIGHT
                    ),
                ));
            }
            if let Some(first) = seen.insert(address, position) {
                return Err(invalid(
                    names.backend(index, position, "address"),
                    format!(
                        "{address} is already {}",
                        names.backend(index, first, "address")
                    ),
                ));
            }
        }
        if self.backends.iter().all(|backend| backend.backup) {
            return Err(invalid(
                key("backend"),
                "every backend is a backup (backup = true): at least one primary backend is \
                 required",
            ));
        }

        if let Some(check) = &self.health_check {
            check.validate(&key("health_check"))?;
        }

        let outlier = &self.outlier;
        if outlier.base_ejection.is_zero() {
            return Err(invalid(
                key("outlier.base_ejection"),
                "must be greater than 0",
            ));
        }
        if outlier.max_ejection < outlier.base_ejection {
            return Err(invalid(
                key("outlier.max_ejection"),
                format!(
                    "{} is shorter than base_ejection ({})",
                    format_duration(outlier.max_ejection),
                    format_duration(outlier.base_ejection)
                ),
            ));
        }
        if outlier.max_ejected_percent > 100 {
            return Err(invalid(
                key("outlier.max_ejected_percent"),
                "must be at most 100",
            ));
        }
        Ok(())
    }
}

impl HealthCheckConfig {
    /// Checks timings and HTTP fields; `prefix` is the section's key path
    /// (`upstream[0].health_check`).
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let key = |rest: &str| format!("{prefix}.{rest}");
        for (name, value) in [("interval", self.interval), ("timeout", self.timeout)] {
            if value.is_zero() {
                return Err(invalid(key(name), "must be greater than 0"));
            }
        }
        if self.timeout >= self.interval {
            return Err(invalid(
                key("timeout"),
                format!(
                    "{} must be shorter than interval ({})",
                    format_duration(self.timeout),
                    format_duration(self.interval)
                ),
            ));
        }
        if self.jitter > self.interval {
            return Err(invalid(
                key("jitter"),
                format!(
                    "{} must not exceed interval ({})",
                    format_duration(self.jitter),
                    format_duration(self.interval)
                ),
            ));
        }
        for (name, value) in [("rise", self.rise), ("fall", self.fall)] {
            if value == 0 {
                return Err(invalid(key(name), "must be at least 1"));
            }
        }
        if let CheckKind::Http {
            method,
            path,
            host,
            expect_status,
        } = &self.kind
        {
            if !is_token(method) {
                return Err(invalid(
                    key("method"),
                    format!("{method:?} is not an HTTP method (a token such as \"GET\")"),
                ));
            }
            check_path(path).map_err(|why| invalid(key("path"), why))?;
            if let Some(host) = host
                && !is_host_value(host)
            {
                return Err(invalid(
                    key("host"),
                    format!("{host:?} is not a host name or address, with an optional port"),
                ));
            }
            if expect_status.start() < &100
                || expect_status.end() > &599
                || expect_status.start() > expect_status.end()
            {
                return Err(invalid(
                    key("expect_status"),
                    format!(
                        "{:?} is not a status or range of statuses within 100-599 (low-high)",
                        format_status_range(expect_status)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A request target prefix or path: starts with `/`, visible ASCII only.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must start with '/'"));
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{path:?} may only hold visible ASCII characters (no spaces)"
        ));
    }
    Ok(())
}

/// A Host header value: a name or address, optional `:port` (`app.internal`, `10.0.0.1:80`,
/// `[fd00::1]:8080`).
fn is_host_value(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'[' | b']')
        })
}

/// `"200"` or `"200-399"`.
fn format_status_range(range: &RangeInclusive<u16>) -> String {
    if range.start() == range.end() {
        range.start().to_string()
    } else {
        format!("{}-{}", range.start(), range.end())
    }
}

/// How validation errors name the keys of upstreams and their backends: as the TOML document
/// wrote them, or by position in [`Config::upstreams`] (the default, for a config built in
/// code).
#[derive(Debug, Default)]
struct KeyNames {
    /// Where each upstream came from, by index; missing entries are [`Origin::Table`] with no
    /// short list.
    origins: Vec<Origin>,
}

/// Where an upstream of a parsed document came from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// An `[[upstream]]` table whose short `backends` list held `short` backends (they come
    /// first in [`UpstreamConfig::backends`]).
    Table { short: usize },
    /// The legacy `backends` list of `listener[listener]`.
    Legacy { listener: usize },
}

impl KeyNames {
    fn origin(&self, upstream: usize) -> Origin {
        self.origins
            .get(upstream)
            .copied()
            .unwrap_or(Origin::Table { short: 0 })
    }

    /// `upstream[i].rest`; for an implicit upstream, the legacy list that made it (its other
    /// keys are not in the document).
    fn upstream(&self, upstream: usize, rest: &str) -> String {
        match self.origin(upstream) {
            Origin::Table { .. } => format!("upstream[{upstream}].{rest}"),
            Origin::Legacy { listener } => format!("listener[{listener}].backends"),
        }
    }

    /// Where the upstream's backends are listed.
    fn backend_list(&self, upstream: usize) -> String {
        match self.origin(upstream) {
            Origin::Table { .. } => format!("upstream[{upstream}].backends"),
            Origin::Legacy { listener } => format!("listener[{listener}].backends"),
        }
    }

    /// The key of `field` of backend `backend` (its index in [`UpstreamConfig::backends`]):
    /// `upstream[i].backends[j]` in the short list (which only has addresses),
    /// `upstream[i].backend[j].field` in the long form, `listener[i].backends[j]` in a legacy
    /// list.
    fn backend(&self, upstream: usize, backend: usize, field: &str) -> String {
        match self.origin(upstream) {
            Origin::Table { short } if backend < short => {
                format!("upstream[{upstream}].backends[{backend}]")
            }
            Origin::Table { short } => {
                format!("upstream[{upstream}].backend[{}].{field}", backend - short)
            }
            Origin::Legacy { listener } => format!("listener[{listener}].backends[{backend}]"),
        }
    }
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
        at: Location::default(),
    }
}

/// Checks the shape of an `EnvFilter` directive list: non-empty directives, and where a
/// directive names a level (`target=level`), a known one. A bare word that is not a level is a
/// target name, which `EnvFilter` accepts.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if level.trim().is_empty() {
        return Err("must not be empty (e.g. \"info\")".to_owned());
    }
    for directive in level.split(',') {
        let directive = directive.trim();
        if directive.is_empty() {
            return Err(format!("{level:?} has an empty directive"));
        }
        if let Some((_, name)) = directive.rsplit_once('=')
            && !LEVELS.iter().any(|known| known.eq_ignore_ascii_case(name))
        {
            return Err(format!(
                "{name:?} in {directive:?} is not a level (off, error, warn, info, debug, trace)"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The document as serde sees it: every key optional, typed values parsed on the way in

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    batch_wait: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ring_buffers: Option<u32>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    pool: RawPool,
    #[serde(default)]
    log: RawLog,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    upstream: Vec<RawUpstream>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    listener: Vec<RawListener>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handshake: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_head: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keepalive: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connect: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drain: Option<DurationValue>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trailer: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connections_per_worker: Option<usize>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_idle_per_backend: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idle_timeout: Option<DurationValue>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<FromStrValue<Policy>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<FromStrValue<HashKey>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slow_start: Option<DurationValue>,
    // Missing and empty (with no long form either) are both "no backend", which validation
    // words better than serde.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    backends: Vec<AddressValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    backend: Vec<RawBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    health_check: Option<RawHealthCheck>,
    #[serde(default)]
    outlier: RawOutlier,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    address: AddressValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_connections: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawHealthCheck {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<RawCheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rise: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fall: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect_status: Option<StatusRangeValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum RawCheckType {
    Http,
    Tcp,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawOutlier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consecutive_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consecutive_5xx: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_ejection: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ejection: Option<DurationValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ejected_percent: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: AddressValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backlog: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    // Legacy. Given (even empty) it makes an implicit upstream; missing and empty are both
    // "no backend", which validation words better than serde.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backends: Option<Vec<AddressValue>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    route: Vec<RawRoute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    certificate: Vec<RawCertificate>,
    #[serde(default)]
    tls: RawTlsOptions,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<FromStrValue<HostPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_prefix: Option<String>,
    upstream: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTlsOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_cache: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tickets: Option<bool>,
}

/// A duration: `"500ms"`, `"10s"`, `"2m"`, `"1h30m"`, or an integer of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DurationValue(Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"500ms\", \"10s\", \"2m\" or \"1h\", or an integer of \
                     milliseconds",
                )
            }

            fn visit_i64<E: de::Error>(self, millis: i64) -> Result<DurationValue, E> {
                u64::try_from(millis)
                    .map(|millis| DurationValue(Duration::from_millis(millis)))
                    .map_err(|_| E::custom(format!("{millis} is not a duration: it is negative")))
            }

            fn visit_u64<E: de::Error>(self, millis: u64) -> Result<DurationValue, E> {
                Ok(DurationValue(Duration::from_millis(millis)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<DurationValue, E> {
                parse_duration(text)
                    .map(DurationValue)
                    .map_err(|why| E::custom(format!("{text:?} is not a duration: {why}")))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

impl Serialize for DurationValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

/// A value read from a string with its [`FromStr`] and written with its [`fmt::Display`]:
/// policies, hash keys, host patterns. The parse error is the reason shown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FromStrValue<T>(T);

impl<'de, T> Deserialize<'de> for FromStrValue<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FromStrVisitor<T>(std::marker::PhantomData<T>);

        impl<T> Visitor<'_> for FromStrVisitor<T>
        where
            T: FromStr,
            T::Err: fmt::Display,
        {
            type Value = FromStrValue<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<FromStrValue<T>, E> {
                text.parse().map(FromStrValue).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(FromStrVisitor(std::marker::PhantomData))
    }
}

impl<T: fmt::Display> Serialize for FromStrValue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Expected response statuses: `"200-399"`, `"200"` or the integer `200`. Only the syntax is
/// checked here; the bounds are [`Config::validate`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatusRangeValue(RangeInclusive<u16>);

impl<'de> Deserialize<'de> for StatusRangeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;

        impl Visitor<'_> for StatusVisitor {
            type Value = StatusRangeValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status or range of statuses such as \"200\" or \"200-399\"")
            }

            fn visit_i64<E: de::Error>(self, status: i64) -> Result<StatusRangeValue, E> {
                u16::try_from(status)
                    .map(|status| StatusRangeValue(status..=status))
                    .map_err(|_| E::custom(format!("{status} is not an HTTP status")))
            }

            fn visit_u64<E: de::Error>(self, status: u64) -> Result<StatusRangeValue, E> {
                u16::try_from(status)
                    .map(|status| StatusRangeValue(status..=status))
                    .map_err(|_| E::custom(format!("{status} is not an HTTP status")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<StatusRangeValue, E> {
                let number = |part: &str| {
                    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    part.parse::<u16>().ok()
                };
                let range = match text.split_once('-') {
                    Some((low, high)) => number(low).zip(number(high)),
                    None => number(text).map(|status| (status, status)),
                };
                range
                    .map(|(low, high)| StatusRangeValue(low..=high))
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{text:?} is not a status or range of statuses such as \"200\" or \
                             \"200-399\""
                        ))
                    })
            }
        }

        deserializer.deserialize_any(StatusVisitor)
    }
}

impl Serialize for StatusRangeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_status_range(&self.0))
    }
}

/// An `ip:port` socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AddressValue(SocketAddr);

impl<'de> Deserialize<'de> for AddressValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AddressVisitor;

        impl Visitor<'_> for AddressVisitor {
            type Value = AddressValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ip:port address such as \"127.0.0.1:8080\" or \"[::1]:8443\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<AddressValue, E> {
                text.parse()
                    .map(AddressValue)
                    .map_err(|_| E::custom(format!("{text:?} is not an ip:port address")))
            }
        }

        deserializer.deserialize_str(AddressVisitor)
    }
}

impl Serialize for AddressValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Parses one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`: `"1h30m"`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number, as in \"10s\"".to_owned());
        }
        let (number, after) = rest.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{number} is too large"))?;
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let micros_per_unit: u64 = match unit {
            "us" => 1,
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "" => {
                return Err(match after.chars().next() {
                    Some(unexpected) => format!("unexpected {unexpected:?} after {number}"),
                    None => "missing unit (us, ms, s, m or h)".to_owned(),
                });
            }
            other => {
                return Err(format!(
                    "unknown unit {other:?} (expected us, ms, s, m or h)"
                ));
            }
        };
        let micros = number
            .checked_mul(micros_per_unit)
            .ok_or_else(|| "it is too large".to_owned())?;
        total = total
            .checked_add(Duration::from_micros(micros))
            .ok_or_else(|| "it is too large".to_owned())?;
        rest = after;
    }
    Ok(total)
}

/// The shortest exact form: `"2m"`, `"90s"`, `"1500ms"`, `"250us"`. Sub-microsecond parts are
/// dropped (the parser never produces them).
fn format_duration(duration: Duration) -> String {
    let micros = duration.as_micros();
    if !micros.is_multiple_of(1_000) {
        return format!("{micros}us");
    }
    match duration.as_millis() {
        0 => "0s".to_owned(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        ms => format!("{ms}ms"),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw document ⇄ Config

/// The document's values with the defaults filled in, upstream names resolved to indexes and
/// legacy `backends` lists turned into implicit upstreams (appended after the `[[upstream]]`
/// tables), plus how validation should name upstream keys. Checks only what needs the
/// document itself: names that refer to no `[[upstream]]`, and keys that do not go together
/// (`backends` with `upstream`, HTTP check keys with `type = "tcp"`).
fn from_raw(raw: RawConfig) -> Result<(Config, KeyNames), ConfigError> {
    let duration = |value: Option<DurationValue>, default: Duration| {
        value.map_or(default, |DurationValue(duration)| duration)
    };
    let t = Timeouts::default();
    let l = LimitsConfig::default();
    let p = PoolConfig::default();

    let mut names = KeyNames::default();
    let mut upstreams = Vec::with_capacity(raw.upstream.len() + raw.listener.len());
    for (index, upstream) in raw.upstream.into_iter().enumerate() {
        names.origins.push(Origin::Table {
            short: upstream.backends.len(),
        });
        upstreams.push(upstream_from_raw(index, upstream)?);
    }
    let declared: Vec<String> = upstreams.iter().map(|u| u.name.clone()).collect();
    let resolve = |name: &str, key: String| -> Result<usize, ConfigError> {
        declared
            .iter()
            .position(|declared| declared == name)
            .ok_or_else(|| invalid(key, unknown_upstream(name, &declared)))
    };

    let mut listeners = Vec::with_capacity(raw.listener.len());
    for (index, listener) in raw.listener.into_iter().enumerate() {
        let default_upstream = match (listener.upstream, listener.backends) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    format!("listener[{index}].backends"),
                    "cannot be given with upstream: name an [[upstream]] or list backends, \
                     not both",
                ));
            }
            (Some(name), None) => Some(resolve(&name, format!("listener[{index}].upstream"))?),
            (None, Some(backends)) => {
                names.origins.push(Origin::Legacy { listener: index });
                upstreams.push(UpstreamConfig::new(
                    format!("listener{index}"),
                    backends.into_iter().map(|AddressValue(address)| address),
                ));
                Some(upstreams.len() - 1)
            }
            (None, None) => None,
        };
        let routes = listener
            .route
            .into_iter()
            .enumerate()
            .map(|(position, route)| {
                Ok(RouteConfig {
                    host: route.host.map(|FromStrValue(host)| host),
                    path_prefix: route.path_prefix,
                    upstream: resolve(
                        &route.upstream,
                        format!("listener[{index}].route[{position}].upstream"),
                    )?,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let tls = TlsOptions::default();
        listeners.push(ListenerConfig {
            address: listener.address.0,
            backlog: listener.backlog.unwrap_or(ListenerConfig::DEFAULT_BACKLOG),
            certificates: listener
                .certificate
                .into_iter()
                .map(|RawCertificate { cert, key }| CertificateConfig { cert, key })
                .collect(),
            default_upstream,
            routes,
            tls: TlsOptions {
                session_cache: listener.tls.session_cache.unwrap_or(tls.session_cache),
                tickets: listener.tls.tickets.unwrap_or(tls.tickets),
            },
        });
    }

    let config = Config {
        workers: raw.workers,
        batch_wait: duration(raw.batch_wait, DEFAULT_BATCH_WAIT),
        ring_buffers: raw.ring_buffers,
        timeouts: Timeouts {
            handshake: duration(raw.timeouts.handshake, t.handshake),
            request_head: duration(raw.timeouts.request_head, t.request_head),
            keepalive: duration(raw.timeouts.keepalive, t.keepalive),
            body: duration(raw.timeouts.body, t.body),
            connect: duration(raw.timeouts.connect, t.connect),
            response: duration(raw.timeouts.response, t.response),
            drain: duration(raw.timeouts.drain, t.drain),
        },
        limits: LimitsConfig {
            request_line: raw.limits.request_line.unwrap_or(l.request_line),
            head: raw.limits.head.unwrap_or(l.head),
            headers: raw.limits.headers.unwrap_or(l.headers),
            body: raw.limits.body.unwrap_or(l.body),
            trailer: raw.limits.trailer.unwrap_or(l.trailer),
            connections_per_worker: raw
                .limits
                .connections_per_worker
                .unwrap_or(l.connections_per_worker),
        },
        pool: PoolConfig {
            max_idle_per_backend: raw
                .pool
                .max_idle_per_backend
                .unwrap_or(p.max_idle_per_backend),
            idle_timeout: duration(raw.pool.idle_timeout, p.idle_timeout),
        },
        log: raw
            .log
            .level
            .map_or_else(LogConfig::default, |level| LogConfig { level }),
        upstreams,
        listeners,
    };
    Ok((config, names))
}

/// Why `name` names no upstream, listing those there are.
fn unknown_upstream(name: &str, declared: &[String]) -> String {
    if declared.is_empty() {
        return format!("no [[upstream]] is named {name:?} (there is no [[upstream]])");
    }
    let known: Vec<String> = declared.iter().map(|name| format!("{name:?}")).collect();
    format!(
        "no [[upstream]] is named {name:?} (upstreams: {})",
        known.join(", ")
    )
}

/// `upstream[index]` with its defaults filled in: the short `backends` list first, then the
/// `[[upstream.backend]]` tables; the hash defaults to the client IP with `consistent_hash`.
fn upstream_from_raw(index: usize, raw: RawUpstream) -> Result<UpstreamConfig, ConfigError> {
    let policy = raw.policy.map_or_else(Policy::default, |FromStrValue(p)| p);
    let hash = match raw.hash {
        Some(FromStrValue(hash)) => Some(hash),
        None if policy == Policy::ConsistentHash => Some(HashKey::ClientIp),
        None => None,
    };
    let backends = raw
        .backends
        .into_iter()
        .map(|AddressValue(address)| BackendConfig::new(address))
        .chain(raw.backend.into_iter().map(|backend| {
            let defaults = BackendConfig::new(backend.address.0);
            BackendConfig {
                weight: backend.weight.unwrap_or(defaults.weight),
                max_connections: backend.max_connections.unwrap_or(defaults.max_connections),
                backup: backend.backup.unwrap_or(defaults.backup),
                ..defaults
            }
        }))
        .collect();
    let health_check = raw
        .health_check
        .map(|check| health_check_from_raw(index, check))
        .transpose()?;
    let o = OutlierConfig::default();
    let outlier = OutlierConfig {
        consecutive_failures: raw
            .outlier
            .consecutive_failures
            .unwrap_or(o.consecutive_failures),
        consecutive_5xx: raw.outlier.consecutive_5xx.unwrap_or(o.consecutive_5xx),
        base_ejection: raw
            .outlier
            .base_ejection
            .map_or(o.base_ejection, |DurationValue(d)| d),
        max_ejection: raw
            .outlier
            .max_ejection
            .map_or(o.max_ejection, |DurationValue(d)| d),
        max_ejected_percent: raw
            .outlier
            .max_ejected_percent
            .unwrap_or(o.max_ejected_percent),
    };
    Ok(UpstreamConfig {
        name: raw.name,
        policy,
        hash,
        slow_start: raw.slow_start.map_or(Duration::ZERO, |DurationValue(d)| d),
        backends,
        health_check,
        outlier,
    })
}

/// `upstream[index].health_check` with its defaults filled in; HTTP keys with `type = "tcp"`
/// are refused.
fn health_check_from_raw(
    index: usize,
    raw: RawHealthCheck,
) -> Result<HealthCheckConfig, ConfigError> {
    let d = HealthCheckConfig::default();
    let kind = match raw.kind.unwrap_or(RawCheckType::Http) {
        RawCheckType::Tcp => {
            for (name, given) in [
                ("method", raw.method.is_some()),
                ("path", raw.path.is_some()),
                ("host", raw.host.is_some()),
                ("expect_status", raw.expect_status.is_some()),
            ] {
                if given {
                    return Err(invalid(
                        format!("upstream[{index}].health_check.{name}"),
                        "is only used with type = \"http\"",
                    ));
                }
            }
            CheckKind::Tcp
        }
        RawCheckType::Http => CheckKind::Http {
            method: raw.method.unwrap_or_else(|| "GET".to_owned()),
            path: raw.path.unwrap_or_else(|| "/".to_owned()),
            host: raw.host,
            expect_status: raw
                .expect_status
                .map_or(200..=399, |StatusRangeValue(range)| range),
        },
    };
    let duration = |value: Option<DurationValue>, default: Duration| {
        value.map_or(default, |DurationValue(duration)| duration)
    };
    Ok(HealthCheckConfig {
        kind,
        interval: duration(raw.interval, d.interval),
        jitter: duration(raw.jitter, d.jitter),
        timeout: duration(raw.timeout, d.timeout),
        rise: raw.rise.unwrap_or(d.rise),
        fall: raw.fall.unwrap_or(d.fall),
    })
}

/// The document for `config`, every key written out so the TOML shows the effective values:
/// every upstream as an `[[upstream]]` table with long-form backends, listeners naming them.
fn raw_config(config: &Config) -> Result<RawConfig, toml::ser::Error> {
    let name_of = |index: usize| {
        config
            .upstreams
            .get(index)
            .map(|upstream| upstream.name.clone())
            .ok_or_else(|| {
                <toml::ser::Error as serde::ser::Error>::custom(format!(
                    "upstream index {index} is out of range: there are {} upstreams",
                    config.upstreams.len()
                ))
            })
    };
    let t = &config.timeouts;
    let l = &config.limits;
    let mut listeners = Vec::with_capacity(config.listeners.len());
    for listener in &config.listeners {
        listeners.push(RawListener {
            address: AddressValue(listener.address),
            backlog: Some(listener.backlog),
            upstream: listener.default_upstream.map(name_of).transpose()?,
            backends: None,
            route: listener
                .routes
                .iter()
                .map(|route| {
                    Ok(RawRoute {
                        host: route.host.clone().map(FromStrValue),
                        path_prefix: route.path_prefix.clone(),
                        upstream: name_of(route.upstream)?,
                    })
                })
                .collect::<Result<_, toml::ser::Error>>()?,
            certificate: listener
                .certificates
                .iter()
                .map(|certificate| RawCertificate {
                    cert: certificate.cert.clone(),
                    key: certificate.key.clone(),
                })
                .collect(),
            tls: RawTlsOptions {
                session_cache: Some(listener.tls.session_cache),
                tickets: Some(listener.tls.tickets),
            },
        });
    }
    Ok(RawConfig {
        workers: config.workers,
        batch_wait: Some(DurationValue(config.batch_wait)),
        ring_buffers: config.ring_buffers,
        timeouts: RawTimeouts {
            handshake: Some(DurationValue(t.handshake)),
            request_head: Some(DurationValue(t.request_head)),
            keepalive: Some(DurationValue(t.keepalive)),
            body: Some(DurationValue(t.body)),
            connect: Some(DurationValue(t.connect)),
            response: Some(DurationValue(t.response)),
            drain: Some(DurationValue(t.drain)),
        },
        limits: RawLimits {
            request_line: Some(l.request_line),
            head: Some(l.head),
            headers: Some(l.headers),
            body: Some(l.body),
            trailer: Some(l.trailer),
            connections_per_worker: Some(l.connections_per_worker),
        },
        pool: RawPool {
            max_idle_per_backend: Some(config.pool.max_idle_per_backend),
            idle_timeout: Some(DurationValue(config.pool.idle_timeout)),
        },
        log: RawLog {
            level: Some(config.log.level.clone()),
        },
        upstream: config.upstreams.iter().map(raw_upstream).collect(),
        listener: listeners,
    })
}

fn raw_upstream(upstream: &UpstreamConfig) -> RawUpstream {
    let o = &upstream.outlier;
    RawUpstream {
        name: upstream.name.clone(),
        policy: Some(FromStrValue(upstream.policy)),
        hash: upstream.hash.clone().map(FromStrValue),
        slow_start: Some(DurationValue(upstream.slow_start)),
        backends: Vec::new(),
        backend: upstream
            .backends
            .iter()
            .map(|backend| RawBackend {
                address: AddressValue(backend.address),
                weight: Some(backend.weight),
                max_connections: Some(backend.max_connections),
                backup: Some(backend.backup),
            })
            .collect(),
        health_check: upstream.health_check.as_ref().map(|check| {
            let mut raw = RawHealthCheck {
                interval: Some(DurationValue(check.interval)),
                jitter: Some(DurationValue(check.jitter)),
                timeout: Some(DurationValue(check.timeout)),
                rise: Some(check.rise),
                fall: Some(check.fall),
                ..RawHealthCheck::default()
            };
            match &check.kind {
                CheckKind::Tcp => raw.kind = Some(RawCheckType::Tcp),
                CheckKind::Http {
                    method,
                    path,
                    host,
                    expect_status,
                } => {
                    raw.kind = Some(RawCheckType::Http);
                    raw.method = Some(method.clone());
                    raw.path = Some(path.clone());
                    raw.host = host.clone();
                    raw.expect_status = Some(StatusRangeValue(expect_status.clone()));
                }
            }
            raw
        }),
        outlier: RawOutlier {
            consecutive_failures: Some(o.consecutive_failures),
            consecutive_5xx: Some(o.consecutive_5xx),
            base_ejection: Some(DurationValue(o.base_ejection)),
            max_ejection: Some(DurationValue(o.max_ejection)),
            max_ejected_percent: Some(o.max_ejected_percent),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// toml errors → key path and position

/// Turns a toml/serde error into a one-line error naming the key at the error's position.
fn toml_error(text: &str, error: &toml::de::Error) -> ConfigError {
    // toml's messages are one line; make sure of it, and do not show serde's names for
    // ringway's internal types.
    let mut message = error.message().trim().replace('\n', "; ");
    for (internal, shown) in [
        ("expected usize", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
    ] {
        message = message.replace(internal, shown);
    }
    while let Some(start) = message.find("struct Raw") {
        let end = message[start + "struct ".len()..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(message.len(), |len| start + "struct ".len() + len);
        message.replace_range(start..end, "a table");
    }
    let at = Location {
        file: None,
        line_column: error.span().map(|span| line_column(text, span.start)),
    };
    match error.span().and_then(|span| key_at(text, span)) {
        Some(key) if key == "listener" && message.contains("expected a sequence") => {
            ConfigError::Invalid {
                key,
                reason: format!("{message}: write each listener as [[listener]]"),
                at,
            }
        }
        Some(key) => ConfigError::Invalid {
            key,
            reason: message,
            at,
        },
        None => ConfigError::Syntax { message, at },
    }
}

/// Adds the position of the key to an [`ConfigError::Invalid`] from [`Config::validate`]: the
/// key's value if the document has it, else its nearest enclosing table or array (a missing
/// `backends` points at its `[[listener]]`). Keys the document lacks altogether (`listener`
/// in an empty file) get no position.
fn locate(text: &str, error: ConfigError) -> ConfigError {
    match error {
        ConfigError::Invalid { key, reason, at } if at.line_column.is_none() => {
            let line_column = span_of(text, &key).map(|span| line_column(text, span.start));
            ConfigError::Invalid {
                key,
                reason,
                at: Location { line_column, ..at },
            }
        }
        other => other,
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// One key of the document: its path (`listener[0].certificate[1].key`; array elements are
/// entries too, with an empty key span), where the key is written and where its value is. A
/// table opened by a header (`[[listener]]`) has the header as its value span, so a table's
/// span never contains its keys'.
struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

/// Every key and array element of the document, parents before children; `None` when the
/// document is not TOML.
fn entries(text: &str) -> Option<Vec<Entry>> {
    use toml::de::{DeTable, DeValue};

    fn walk_value(value: &Spanned<DeValue<'_>>, path: &str, out: &mut Vec<Entry>) {
        match value.get_ref() {
            DeValue::Table(table) => walk_table(table, path, out),
            DeValue::Array(array) => {
                for (index, item) in array.iter().enumerate() {
                    let path = format!("{path}[{index}]");
                    out.push(Entry {
                        path: path.clone(),
                        key: 0..0,
                        value: item.span(),
                    });
                    walk_value(item, &path, out);
                }
            }
            _ => {}
        }
    }

    fn walk_table(table: &DeTable<'_>, path: &str, out: &mut Vec<Entry>) {
        for (key, value) in table.iter() {
            let child = if path.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            out.push(Entry {
                path: child.clone(),
                key: key.span(),
                value: value.span(),
            });
            walk_value(value, &child, out);
        }
    }

    let document = DeTable::parse(text).ok()?;
    let mut out = Vec::new();
    walk_table(document.get_ref(), "", &mut out);
    Some(out)
}

/// The key path of the smallest key or value whose span contains `span` (on a tie, the deeper
/// one): where serde reported an error.
fn key_at(text: &str, span: Range<usize>) -> Option<String> {
    let contains = |node: &Range<usize>| {
        node.start <= span.start && span.end <= node.end && node.start < node.end
    };
    let mut best: Option<(usize, String)> = None;
    for entry in entries(text)? {
        for node in [&entry.key, &entry.value] {
            let len = node.end - node.start;
            if contains(node) && best.as_ref().is_none_or(|(best, _)| len <= *best) {
                best = Some((len, entry.path.clone()));
            }
        }
    }
    best.map(|(_, path)| path)
}

/// Where the value of `key` is written, or of its nearest ancestor that is.
fn span_of(text: &str, key: &str) -> Option<Range<usize>> {
    let entries = entries(text)?;
    let mut key = key;
    loop {
        if let Some(entry) = entries.iter().find(|entry| entry.path == key) {
            return Some(entry.value.clone());
        }
        key = &key[..key.rfind(['.', '['])?];
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::route::Routed;

    const MINIMAL: &str = r#"
[[listener]]
address = "127.0.0.1:8443"
backends = ["127.0.0.1:8080"]
[[listener.certificate]]
cert = "a.pem"
key = "a.key"
"#;

    /// MINIMAL with `extra` spliced in before the listener.
    fn with(extra: &str) -> String {
        format!("{extra}\n{MINIMAL}")
    }

    fn invalid(toml: &str) -> (String, String, Location) {
        match Config::from_toml_str(toml) {
            Err(ConfigError::Invalid { key, reason, at }) => (key, reason, at),
            other => panic!("expected Invalid for\n{toml}\ngot {other:?}"),
        }
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} is not an address: {e}"))
    }

    fn assert_one_line(error: &ConfigError) {
        let text = error.to_string();
        assert!(!text.contains('\n'), "one line: {text}");
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "ringway-config-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&path).expect("temp dir");
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn defaults() {
        let config = Config::from_toml_str(MINIMAL).expect("minimal config");
        assert_eq!(config.workers, None);
        assert_eq!(
            config.timeouts,
            Timeouts {
                handshake: Duration::from_secs(10),
                request_head: Duration::from_secs(10),
                keepalive: Duration::from_secs(60),
                body: Duration::from_secs(60),
                connect: Duration::from_secs(3),
                response: Duration::from_secs(30),
                drain: Duration::from_secs(30),
            }
        );
        assert_eq!(
            config.limits,
            LimitsConfig {
                request_line: 8192,
                head: 32768,
                headers: 100,
                body: 0,
                trailer: 8192,
                connections_per_worker: 10000,
            }
        );
        assert_eq!(
            config.pool,
            PoolConfig {
                max_idle_per_backend: DEFAULT_MAX_IDLE_PER_BACKEND,
                idle_timeout: Duration::from_secs(30),
            }
        );
        assert_eq!(config.log.level, "info");
        let listener = &config.listeners[0];
        assert_eq!(listener.backlog, 4096);
        assert_eq!(
            listener.tls,
            TlsOptions {
                session_cache: 4096,
                tickets: true,
            }
        );
        assert_eq!(
            listener.certificates,
            [CertificateConfig {
                cert: "a.pem".into(),
                key: "a.key".into(),
            }]
        );

        let default = Config::default();
        assert_eq!(default.timeouts, config.timeouts);
        assert_eq!(default.limits, config.limits);
        assert_eq!(default.pool, config.pool);
        assert_eq!(default.log, config.log);
        assert!(default.listeners.is_empty());
    }

    /// The README's config examples are valid: the full one alone, and the upstream examples
    /// together with a listener that uses them.
    #[test]
    fn the_readme_examples_parse() {
        let readme = include_str!("../README.md");
        let blocks: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .map(|b| &b[..b.find("```").expect("closed block")])
            .collect();
        assert!(blocks.len() >= 7, "{} toml blocks", blocks.len());
        let full = blocks
            .iter()
            .find(|b| b.contains("[timeouts]"))
            .expect("the full example");
        Config::from_toml_str(full).unwrap_or_else(|e| panic!("README full example: {e}"));
        let examples = &readme[readme.find("### Examples").expect("Examples section")..];
        let examples = &examples[..examples.find("### Validation").expect("Validation section")];
        let upstreams: Vec<&str> = examples
            .split("```toml\n")
            .skip(1)
            .map(|b| &b[..b.find("```").expect("closed block")])
            .filter(|b| !b.contains("[[listener]]"))
            .collect();
        let mut doc = upstreams.concat();
        for name in ["api-v1", "static"] {
            doc.push_str(&format!(
                "[[upstream]]\nname = \"{name}\"\nbackends = [\"10.0.9.9:80\"]\n"
            ));
        }
        let routes = examples
            .split("```toml\n")
            .skip(1)
            .map(|b| &b[..b.find("```").expect("closed block")])
            .find(|b| b.contains("[[listener.route]]"))
            .expect("the routes example");
        doc.push_str(routes);
        let config = Config::from_toml_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert_eq!(config.listeners[0].routes.len(), 4);
    }

    fn example() -> Config {
        Config::from_toml_str(include_str!("../ringway.example.toml"))
            .unwrap_or_else(|e| panic!("ringway.example.toml: {e}"))
    }

    #[test]
    fn the_example_file_parses_to_what_it_says() {
        let config = example();
        let defaults = Config::default();
        assert_eq!(config.workers, Some(2));
        assert_eq!(config.timeouts, defaults.timeouts);
        assert_eq!(config.limits, defaults.limits);
        assert_eq!(config.pool, defaults.pool);
        assert_eq!(config.log, defaults.log);
        assert_eq!(
            config.upstreams,
            [
                UpstreamConfig {
                    name: "app".into(),
                    policy: Policy::WeightedRoundRobin,
                    hash: None,
                    slow_start: Duration::from_secs(30),
                    backends: vec![
                        BackendConfig::new(addr("127.0.0.1:8080")),
                        BackendConfig::new(addr("127.0.0.1:8081")),
                        BackendConfig {
                            address: addr("127.0.0.1:8082"),
                            weight: 3,
                            max_connections: 100,
                            backup: false,
                        },
                        BackendConfig {
                            backup: true,
                            ..BackendConfig::new(addr("127.0.0.1:8090"))
                        },
                    ],
                    health_check: Some(HealthCheckConfig {
                        kind: CheckKind::Http {
                            method: "GET".into(),
                            path: "/healthz".into(),
                            host: Some("app.internal".into()),
                            expect_status: 200..=399,
                        },
                        ..HealthCheckConfig::default()
                    }),
                    outlier: OutlierConfig::default(),
                },
                UpstreamConfig {
                    name: "api".into(),
                    policy: Policy::ConsistentHash,
                    hash: Some(HashKey::Cookie("session".into())),
                    slow_start: Duration::ZERO,
                    backends: ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]
                        .map(|a| BackendConfig::new(addr(a)))
                        .to_vec(),
                    health_check: Some(HealthCheckConfig {
                        kind: CheckKind::Tcp,
                        interval: Duration::from_secs(2),
                        jitter: Duration::from_millis(500),
                        timeout: Duration::from_secs(1),
                        rise: 2,
                        fall: 3,
                    }),
                    outlier: OutlierConfig::default(),
                },
                UpstreamConfig::new("listener1", [addr("[::1]:8080")]),
            ]
        );
        assert_eq!(
            config.listeners,
            [
                ListenerConfig {
                    address: addr("0.0.0.0:8443"),
                    backlog: 4096,
                    certificates: vec![
                        CertificateConfig {
                            cert: "certs/example.com.pem".into(),
                            key: "certs/example.com.key".into(),
                        },
                        CertificateConfig {
                            cert: "certs/wildcard.example.net.pem".into(),
                            key: "certs/wildcard.example.net.key".into(),
                        },
                    ],
                    default_upstream: Some(0),
                    routes: vec![
                        RouteConfig {
                            host: Some(HostPattern::Exact("api.example.com".into())),
                            path_prefix: None,
                            upstream: 1,
                        },
                        RouteConfig {
                            host: Some(HostPattern::Wildcard(".example.net".into())),
                            path_prefix: Some("/v1/".into()),
                            upstream: 1,
                        },
                    ],
                    tls: TlsOptions::default(),
                },
                ListenerConfig {
                    address: addr("[::1]:9443"),
                    backlog: 4096,
                    certificates: vec![CertificateConfig {
                        cert: "certs/localhost.pem".into(),
                        key: "certs/localhost.pem".into(),
                    }],
                    default_upstream: Some(2),
                    routes: Vec::new(),
                    tls: TlsOptions::default(),
                },
            ]
        );
    }

    #[test]
    fn every_value_round_trips_through_toml() {
        let config = Config::from_toml_str(
            r#"
workers = 7
batch_wait = "250us"
[timeouts]
handshake = "1500ms"
request_head = 250
keepalive = "1h30m"
body = "2m"
connect = "100ms"
response = "45s"
drain = "0s"
[limits]
request_line = 1024
head = 4096
headers = 16
body = 1048576
trailer = 512
connections_per_worker = 3
[pool]
max_idle_per_backend = 0
idle_timeout = "5s"
[log]
level = "warn,ringway::proxy=debug"
[[listener]]
address = "[::]:443"
backlog = 16
backends = ["10.0.0.1:80", "[fd00::2]:8080"]
[[listener.certificate]]
cert = "/etc/ringway/a.pem"
key = "/etc/ringway/a.key"
[[listener.certificate]]
cert = "b.pem"
key = "b.pem"
[listener.tls]
session_cache = 0
tickets = false
[[listener]]
address = "127.0.0.1:8443"
backends = ["127.0.0.1:1"]
[[listener.certificate]]
cert = "c.pem"
key = "c.key"
"#,
        )
        .expect("full config");
        assert_eq!(config.workers, Some(7));
        assert_eq!(config.batch_wait, Duration::from_micros(250));
        assert_eq!(config.timeouts.handshake, Duration::from_millis(1500));
        assert_eq!(config.timeouts.request_head, Duration::from_millis(250));
        assert_eq!(config.timeouts.keepalive, Duration::from_secs(5400));
        assert_eq!(config.timeouts.drain, Duration::ZERO);
        assert_eq!(config.limits.body, 1 << 20);
        assert_eq!(config.pool.max_idle_per_backend, 0);
        assert_eq!(config.log.level, "warn,ringway::proxy=debug");
        assert_eq!(
            config.listeners[0].tls,
            TlsOptions {
                session_cache: 0,
                tickets: false
            }
        );
        assert_eq!(
            config.upstreams[0].backends[1],
            BackendConfig::new(addr("[fd00::2]:8080"))
        );
        assert_eq!(config.upstreams[0].name, "listener0");
        assert_eq!(config.upstreams[1].name, "listener1");
        assert_eq!(config.listeners[1].default_upstream, Some(1));

        for config in [config, example()] {
            let text = config.to_toml_string().expect("serialize");
            let again =
                Config::from_toml_str(&text).unwrap_or_else(|e| panic!("re-parse: {e}\n{text}"));
            assert_eq!(again, config, "{text}");
        }
    }

    #[test]
    fn durations() {
        for (text, millis) in [
            ("500ms", 500),
            ("10s", 10_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("1m0s250ms", 60_250),
            ("0s", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
            assert_eq!(
                parse_duration(&format_duration(Duration::from_millis(millis))),
                Ok(Duration::from_millis(millis))
            );
        }
        for text in [
            "",
            "10",
            "s",
            "10x",
            "1.5s",
            " 10s",
            "10s ",
            "-1s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
        assert_eq!(format_duration(Duration::from_millis(90_000)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1ms500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(format_duration(Duration::from_micros(250)), "250us");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1500us");
        assert_eq!(format_duration(Duration::from_micros(2000)), "2ms");
    }

    #[test]
    fn batch_wait_has_a_default_can_be_off_and_is_bounded() {
        let config = Config::from_toml_str(&with("")).expect("minimal");
        assert_eq!(config.batch_wait, DEFAULT_BATCH_WAIT);
        let config = Config::from_toml_str(&with("batch_wait = \"0s\"")).expect("off");
        assert_eq!(config.batch_wait, Duration::ZERO);
        let config = Config::from_toml_str(&with("batch_wait = \"1ms\"")).expect("max");
        assert_eq!(config.batch_wait, MAX_BATCH_WAIT);
        let (key, reason, _) = invalid(&with("batch_wait = \"1001us\""));
        assert_eq!(key, "batch_wait");
        assert!(reason.contains("at most 1ms"), "{reason}");
    }

    #[test]
    fn ring_buffers_default_to_the_load_and_are_bounded() {
        let config = Config::from_toml_str(&with("")).expect("minimal");
        assert_eq!(config.ring_buffers, None);
        let config = Config::from_toml_str(&with("ring_buffers = 4")).expect("tiny");
        assert_eq!(config.ring_buffers, Some(4));
        for bad in ["ring_buffers = 0", "ring_buffers = 32769"] {
            let (key, reason, _) = invalid(&with(bad));
            assert_eq!(key, "ring_buffers");
            assert!(reason.contains("between 1 and 32768"), "{reason}");
        }
    }

    #[test]
    fn bad_duration_names_the_key_and_the_line() {
        let toml = with("[timeouts]\nconnect = \"3 s\"");
        let (key, reason, at) = invalid(&toml);
        assert_eq!(key, "timeouts.connect");
        assert!(reason.contains("\"3 s\" is not a duration"), "{reason}");
        assert_eq!(at.line_column, Some((2, 11)));

        let (key, reason, _) = invalid(&with("[timeouts]\nbody = \"10min\""));
        assert_eq!(key, "timeouts.body");
        assert!(reason.contains("unknown unit"), "{reason}");

        let (key, reason, _) = invalid(&with("[pool]\nidle_timeout = -5"));
        assert_eq!(key, "pool.idle_timeout");
        assert!(reason.contains("negative"), "{reason}");

        let (key, reason, _) = invalid(&with("[timeouts]\nhandshake = true"));
        assert_eq!(key, "timeouts.handshake");
        assert!(reason.contains("a duration such as"), "{reason}");

        let (key, reason, _) = invalid(&with("[timeouts]\nhandshake = \"0ms\""));
        assert_eq!(key, "timeouts.handshake");
        assert_eq!(reason, "must be greater than 0");

        let (key, reason, _) = invalid(&with("[pool]\nidle_timeout = 0"));
        assert_eq!(key, "pool.idle_timeout");
        assert_eq!(reason, "must be greater than 0");
    }

    #[test]
    fn bad_address_names_the_key() {
        let toml = r#"
[[listener]]
address = "127.0.0.1:8443"
backends = ["127.0.0.1:8080", "x:y"]
[[listener.certificate]]
cert = "a.pem"
key = "a.key"
"#;
        let error = Config::from_toml_str(toml).expect_err("bad backend");
        assert_one_line(&error);
        assert_eq!(
            error.to_string(),
            "listener[0].backends[1]: \"x:y\" is not an ip:port address (line 4, column 31)"
        );

        let (key, reason, _) = invalid(&MINIMAL.replace("127.0.0.1:8443", "localhost:8443"));
        assert_eq!(key, "listener[0].address");
        assert_eq!(reason, "\"localhost:8443\" is not an ip:port address");

        let (key, _, _) = invalid(&MINIMAL.replace("127.0.0.1:8443", "::1:8443"));
        assert_eq!(key, "listener[0].address", "IPv6 needs brackets");

        let (key, _, _) = invalid(&MINIMAL.replace("127.0.0.1:8443", "127.0.0.1"));
        assert_eq!(key, "listener[0].address", "port required");

        let (key, reason, _) = invalid(&MINIMAL.replace("127.0.0.1:8080", "127.0.0.1:0"));
        assert_eq!(key, "listener[0].backends[0]");
        assert!(reason.contains("port 0"), "{reason}");

        let (key, reason, _) = invalid(&MINIMAL.replace("\"127.0.0.1:8080\"", "8080"));
        assert_eq!(key, "listener[0].backends[0]");
        assert!(reason.contains("ip:port"), "{reason}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_key_and_line() {
        let (key, reason, at) = invalid(&with("wrokers = 2"));
        assert_eq!(key, "wrokers");
        assert!(reason.starts_with("unknown field `wrokers`"), "{reason}");
        assert_eq!(at.line_column, Some((1, 1)));

        let (key, _, _) = invalid(&with("[timeouts]\nidle = \"5s\""));
        assert_eq!(key, "timeouts.idle");

        let (key, _, _) = invalid(&with("[logging]\nlevel = \"info\""));
        assert_eq!(key, "logging");

        let toml =
            format!("{MINIMAL}[[listener.certificate]]\ncert = \"b.pem\"\nkye = \"b.key\"\n");
        let error = Config::from_toml_str(&toml).expect_err("typo in second certificate");
        assert_one_line(&error);
        assert!(
            error.to_string().starts_with(
                "listener[0].certificate[1].kye: unknown field `kye`, expected `cert` or `key` \
                 (line 10, column 1)"
            ),
            "{error}"
        );

        let (key, _, _) = invalid(&format!(
            "{MINIMAL}tls = {{ session_cache = 1, ticket = true }}"
        ));
        assert_eq!(
            key, "listener[0].certificate[0].tls",
            "a key after a table header belongs to it"
        );

        let toml = MINIMAL.replace(
            "backends = [\"127.0.0.1:8080\"]",
            "backends = [\"127.0.0.1:8080\"]\ntls = { session_cache = 1, ticket = true }",
        );
        let (key, _, _) = invalid(&toml);
        assert_eq!(key, "listener[0].tls.ticket", "inline table");
    }

    #[test]
    fn no_listener() {
        let (key, reason, _) = invalid(&MINIMAL.replace("[[listener]]", "[listener]"));
        assert_eq!(key, "listener");
        assert!(
            reason.ends_with("write each listener as [[listener]]"),
            "{reason}"
        );

        for toml in ["", "workers = 1", "listener = []"] {
            let (key, reason, _) = invalid(toml);
            assert_eq!(key, "listener", "{toml:?}");
            assert_eq!(reason, "at least one [[listener]] is required");
        }
    }

    #[test]
    fn no_backends() {
        let (key, reason, at) = invalid(&MINIMAL.replace("backends = [\"127.0.0.1:8080\"]", ""));
        assert_eq!(key, "listener[0].backends");
        assert!(
            reason.starts_with("at least one backend is required"),
            "{reason}"
        );
        assert_eq!(at.line_column, Some((2, 1)), "points at the [[listener]]");

        let (key, reason, at) = invalid(&MINIMAL.replace("[\"127.0.0.1:8080\"]", "[]"));
        assert_eq!(key, "listener[0].backends");
        assert!(
            reason.starts_with("at least one backend is required"),
            "{reason}"
        );
        assert_eq!(at.line_column, Some((4, 12)), "points at the empty array");
    }

    #[test]
    fn missing_required_keys() {
        let toml = "[[listener]]\nbackends = [\"127.0.0.1:8080\"]\n";
        let (key, reason, _) = invalid(toml);
        assert_eq!(key, "listener[0]");
        assert!(reason.contains("missing field `address`"), "{reason}");

        let toml = "[[listener]]\naddress = \"127.0.0.1:1\"\nbackends = [\"127.0.0.1:8080\"]\n";
        let (key, reason, _) = invalid(toml);
        assert_eq!(key, "listener[0].certificate");
        assert!(
            reason.starts_with("at least one [[listener.certificate]]"),
            "{reason}"
        );

        let (key, reason, _) = invalid(&MINIMAL.replace("key = \"a.key\"", ""));
        assert_eq!(key, "listener[0].certificate[0]");
        assert!(reason.contains("missing field `key`"), "{reason}");

        let (key, _, _) = invalid(&MINIMAL.replace("\"a.key\"", "\"\""));
        assert_eq!(key, "listener[0].certificate[0].key");
    }

    #[test]
    fn zero_and_inconsistent_limits() {
        for key in [
            "request_line",
            "head",
            "headers",
            "trailer",
            "connections_per_worker",
        ] {
            let (got, reason, _) = invalid(&with(&format!("[limits]\n{key} = 0")));
            assert_eq!(got, format!("limits.{key}"));
            assert_eq!(reason, "must be at least 1");
        }
        let config = Config::from_toml_str(&with("[limits]\nbody = 0")).expect("body 0");
        assert_eq!(config.limits.body, 0, "0 = unlimited");

        let (key, reason, _) = invalid(&with("workers = 0"));
        assert_eq!(key, "workers");
        assert!(reason.starts_with("must be at least 1"), "{reason}");

        let (key, _, _) = invalid(&MINIMAL.replace("backends", "backlog = 0\nbackends"));
        assert_eq!(key, "listener[0].backlog");

        let (key, reason, _) = invalid(&with("[limits]\nrequest_line = 9000\nhead = 8192"));
        assert_eq!(key, "limits.head");
        assert!(
            reason.contains("smaller than limits.request_line"),
            "{reason}"
        );

        let (key, reason, _) = invalid(&with("[limits]\nheaders = -1"));
        assert_eq!(key, "limits.headers");
        assert!(reason.contains("-1"), "{reason}");

        let (key, _, _) = invalid(&with("[limits]\nhead = \"32k\""));
        assert_eq!(key, "limits.head", "sizes are integers");
    }

    #[test]
    fn validate_a_config_built_in_code() {
        // As `ringway run --listen ... --cert ... --key ... --backend ...` builds it.
        let mut config = Config {
            workers: Some(1),
            upstreams: vec![UpstreamConfig::new("listener0", [addr("127.0.0.1:8080")])],
            listeners: vec![ListenerConfig {
                address: addr("127.0.0.1:8443"),
                certificates: vec![CertificateConfig {
                    cert: "a.pem".into(),
                    key: "a.key".into(),
                }],
                default_upstream: Some(0),
                ..ListenerConfig::default()
            }],
            ..Config::default()
        };
        config.validate().expect("valid");
        assert_eq!(
            config,
            Config::from_toml_str(&with("workers = 1")).expect("same as TOML")
        );

        config.upstreams[0].backends.clear();
        let error = config.validate().expect_err("no backend");
        assert_eq!(error.key(), Some("upstream[0].backends"));
        assert_eq!(
            error.to_string(),
            "upstream[0].backends: at least one backend is required \
             (backends = [\"127.0.0.1:8080\"] or [[upstream.backend]])",
            "no position for a config built in code"
        );
        let error = config.check().expect_err("check validates first");
        assert_eq!(error.key(), Some("upstream[0].backends"));

        config.upstreams[0] = UpstreamConfig::new("app", [addr("127.0.0.1:8080")]);
        config.upstreams[0].backends[0].weight = 0;
        assert_eq!(
            config.validate().expect_err("weight").key(),
            Some("upstream[0].backend[0].weight"),
            "a config built in code names backends by position"
        );
        config.upstreams[0].backends[0].weight = 1;
        config.listeners[0].default_upstream = Some(1);
        let error = config.validate().expect_err("index");
        assert_eq!(
            error.to_string(),
            "listener[0].upstream: upstream index 1 is out of range: there are 1 upstreams"
        );
        config.listeners[0].default_upstream = None;
        config.listeners[0].routes = vec![RouteConfig {
            host: None,
            path_prefix: None,
            upstream: 7,
        }];
        assert_eq!(
            config.validate().expect_err("route index").key(),
            Some("listener[0].route[0].upstream")
        );
        config.listeners[0].routes[0].upstream = 0;
        config.validate().expect("a route alone is enough");
        assert_eq!(
            config.listeners[0].router().route(b"x", b"/", None),
            Routed::Upstream(0)
        );
        config.upstreams[0].hash = Some(HashKey::Header("X-User".into()));
        config.upstreams[0].policy = Policy::ConsistentHash;
        assert_eq!(
            config.validate().expect_err("uppercase header").to_string(),
            "upstream[0].hash: header name \"X-User\" must be a lowercase token"
        );
        config.upstreams[0].hash = None;
        assert_eq!(
            config.validate().expect_err("no hash").key(),
            Some("upstream[0].hash")
        );

        config.listeners.clear();
        assert_eq!(config.validate().expect_err("none").key(), Some("listener"));

        let listener = ListenerConfig::default();
        assert_eq!(listener.address, "0.0.0.0:8443".parse().expect("addr"));
        assert_eq!(listener.backlog, 4096);
        assert_eq!(listener.tls, TlsOptions::default());
        assert_eq!(
            listener.validate(3).expect_err("empty").key(),
            Some("listener[3].backends")
        );
    }

    // -----------------------------------------------------------------------------------------
    // Upstreams, backends, health checks, outlier ejection, routes

    const LISTENER: &str = r#"
[[listener]]
address = "127.0.0.1:8443"
upstream = "app"
[[listener.certificate]]
cert = "a.pem"
key = "a.key"
"#;

    /// An upstream named "app" with `body` (line 3 on), then a listener using it.
    fn app(body: &str) -> String {
        format!("[[upstream]]\nname = \"app\"\n{body}\n{LISTENER}")
    }

    /// `app` with one backend and a `[upstream.health_check]` holding `body`.
    fn check(body: &str) -> String {
        app(&format!(
            "backends = [\"127.0.0.1:9001\"]\n[upstream.health_check]\n{body}"
        ))
    }

    /// `app` with one backend and an `[upstream.outlier]` holding `body`.
    fn outlier(body: &str) -> String {
        app(&format!(
            "backends = [\"127.0.0.1:9001\"]\n[upstream.outlier]\n{body}"
        ))
    }

    fn key_and_reason(toml: &str) -> (String, String) {
        let (key, reason, _) = invalid(toml);
        (key, reason)
    }

    #[test]
    fn every_upstream_key_parses() {
        let config = Config::from_toml_str(&format!(
            r#"
[[upstream]]
name = "app.v2_blue-1"
policy = "peak_ewma"
slow_start = "1m"
backends = ["10.0.0.1:80"]
[[upstream.backend]]
address = "[fd00::1]:8080"
weight = 1000
max_connections = 64
backup = true
[upstream.health_check]
type = "http"
interval = "10s"
jitter = "10s"
timeout = "9s"
rise = 1
fall = 7
method = "HEAD"
path = "/health?full=1"
host = "app.internal:8080"
expect_status = 204
[upstream.outlier]
consecutive_failures = 0
consecutive_5xx = 3
base_ejection = "1s"
max_ejection = "1s"
max_ejected_percent = 30

[[upstream]]
name = "app"
policy = "consistent_hash"
hash = "header:X-User"
backends = ["10.0.0.2:80"]

[[upstream]]
name = "unused"
policy = "consistent_hash"
backends = ["10.0.0.3:80"]
{LISTENER}
[[listener.route]]
host = "API.example.com"
path_prefix = "/v2/"
upstream = "app.v2_blue-1"
[[listener.route]]
path_prefix = "/"
upstream = "app"
"#
        ))
        .expect("every key");
        assert_eq!(
            config.upstreams[0],
            UpstreamConfig {
                name: "app.v2_blue-1".into(),
                policy: Policy::PeakEwma,
                hash: None,
                slow_start: Duration::from_secs(60),
                backends: vec![
                    BackendConfig::new(addr("10.0.0.1:80")),
                    BackendConfig {
                        address: addr("[fd00::1]:8080"),
                        weight: 1000,
                        max_connections: 64,
                        backup: true,
                    },
                ],
                health_check: Some(HealthCheckConfig {
                    kind: CheckKind::Http {
                        method: "HEAD".into(),
                        path: "/health?full=1".into(),
                        host: Some("app.internal:8080".into()),
                        expect_status: 204..=204,
                    },
                    interval: Duration::from_secs(10),
                    jitter: Duration::from_secs(10),
                    timeout: Duration::from_secs(9),
                    rise: 1,
                    fall: 7,
                }),
                outlier: OutlierConfig {
                    consecutive_failures: 0,
                    consecutive_5xx: 3,
                    base_ejection: Duration::from_secs(1),
                    max_ejection: Duration::from_secs(1),
                    max_ejected_percent: 30,
                },
            }
        );
        assert_eq!(config.upstreams[1].policy, Policy::ConsistentHash);
        assert_eq!(
            config.upstreams[1].hash,
            Some(HashKey::Header("x-user".into())),
            "header names are lowercased"
        );
        assert_eq!(
            config.upstreams[2].hash,
            Some(HashKey::ClientIp),
            "consistent_hash defaults to the client IP"
        );
        assert_eq!(config.upstreams.len(), 3, "unused upstreams are kept");
        let listener = &config.listeners[0];
        assert_eq!(listener.default_upstream, Some(1));
        assert_eq!(
            listener.routes,
            [
                RouteConfig {
                    host: Some(HostPattern::Exact("api.example.com".into())),
                    path_prefix: Some("/v2/".into()),
                    upstream: 0,
                },
                RouteConfig {
                    host: None,
                    path_prefix: Some("/".into()),
                    upstream: 1,
                },
            ]
        );
        let router = listener.router();
        assert_eq!(
            router.route(b"api.example.com:8443", b"/v2/x", None),
            Routed::Upstream(0)
        );
        assert_eq!(
            router.route(b"api.example.com", b"/v1/x", None),
            Routed::Upstream(1)
        );

        let text = config.to_toml_string().expect("serialize");
        let again = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(again, config, "{text}");
    }

    #[test]
    fn upstream_defaults() {
        let config = Config::from_toml_str(&app("backends = [\"127.0.0.1:9001\"]")).expect("app");
        assert_eq!(
            config.upstreams,
            [UpstreamConfig::new("app", [addr("127.0.0.1:9001")])]
        );
        let upstream = &config.upstreams[0];
        assert_eq!(upstream.policy, Policy::RoundRobin);
        assert_eq!(upstream.hash, None);
        assert_eq!(upstream.slow_start, Duration::ZERO);
        assert_eq!(upstream.health_check, None, "no section, no active checks");
        assert_eq!(
            upstream.outlier,
            OutlierConfig {
                consecutive_failures: 5,
                consecutive_5xx: 0,
                base_ejection: Duration::from_secs(10),
                max_ejection: Duration::from_secs(300),
                max_ejected_percent: 50,
            }
        );
        assert_eq!(
            upstream.backends,
            [BackendConfig {
                address: addr("127.0.0.1:9001"),
                weight: 1,
                max_connections: 0,
                backup: false,
            }]
        );

        let config = Config::from_toml_str(&check("")).expect("empty health_check");
        assert_eq!(
            config.upstreams[0].health_check,
            Some(HealthCheckConfig {
                kind: CheckKind::Http {
                    method: "GET".into(),
                    path: "/".into(),
                    host: None,
                    expect_status: 200..=399,
                },
                interval: Duration::from_secs(5),
                jitter: Duration::from_secs(1),
                timeout: Duration::from_secs(2),
                rise: 2,
                fall: 3,
            })
        );
        assert_eq!(
            config.upstreams[0].health_check,
            Some(HealthCheckConfig::default())
        );
        let config = Config::from_toml_str(&check("type = \"tcp\"")).expect("tcp");
        assert_eq!(
            config.upstreams[0].health_check.as_ref().map(|c| &c.kind),
            Some(&CheckKind::Tcp)
        );
    }

    #[test]
    fn short_and_long_backends_keep_their_order_and_key_names() {
        let toml = app(r#"backends = ["127.0.0.1:1", "127.0.0.1:2"]
[[upstream.backend]]
address = "127.0.0.1:3"
[[upstream.backend]]
address = "127.0.0.1:4""#);
        let config = Config::from_toml_str(&toml).expect("mixed");
        let addresses: Vec<u16> = config.upstreams[0]
            .backends
            .iter()
            .map(|b| b.address.port())
            .collect();
        assert_eq!(addresses, [1, 2, 3, 4]);

        let toml = app(r#"policy = "random""#).replace(
            "policy",
            "backends = [\"127.0.0.1:1\"]\n[[upstream.backend]]\naddress = \"127.0.0.1:0\"\n#",
        );
        let (key, reason) = key_and_reason(&toml);
        assert_eq!(key, "upstream[0].backend[0].address");
        assert_eq!(reason, "127.0.0.1:0: port 0 cannot be connected to");

        let (key, _) = key_and_reason(&app(r#"backends = ["127.0.0.1:0"]"#));
        assert_eq!(key, "upstream[0].backends[0]");
    }

    #[test]
    fn weight_out_of_range_names_the_backend_and_line() {
        let toml = format!(
            r#"[[upstream]]
name = "zero"
backends = ["127.0.0.1:1"]
[[upstream]]
name = "app"
backends = ["127.0.0.1:2"]
[[upstream.backend]]
address = "127.0.0.1:3"
weight = 0
{LISTENER}"#
        );
        let error = Config::from_toml_str(&toml).expect_err("weight 0");
        assert_one_line(&error);
        assert_eq!(
            error.to_string(),
            "upstream[1].backend[0].weight: 0 is out of range: must be 1 to 1000 \
             (line 9, column 10)"
        );
        let (key, reason) = key_and_reason(&toml.replace("weight = 0", "weight = 1001"));
        assert_eq!(key, "upstream[1].backend[0].weight");
        assert_eq!(reason, "1001 is out of range: must be 1 to 1000");
        let (key, reason) = key_and_reason(&toml.replace("weight = 0", "weight = -1"));
        assert_eq!(key, "upstream[1].backend[0].weight");
        assert!(
            reason.contains("expected a non-negative integer"),
            "{reason}"
        );
        Config::from_toml_str(&toml.replace("weight = 0", "weight = 1000")).expect("1000");
    }

    #[test]
    fn upstream_names() {
        let toml = format!(
            "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:1\"]\n{}",
            app("backends = [\"127.0.0.1:2\"]")
        );
        let error = Config::from_toml_str(&toml).expect_err("duplicate");
        assert_eq!(
            error.to_string(),
            "upstream[1].name: \"app\" is already the name of upstream[0] (line 5, column 8)"
        );

        for name in ["", "a b", "app/1", "ä"] {
            let toml = app("backends = [\"127.0.0.1:1\"]")
                .replace("name = \"app\"", &format!("name = {name:?}"))
                .replace("upstream = \"app\"", &format!("upstream = {name:?}"));
            let (key, reason) = key_and_reason(&toml);
            assert_eq!(key, "upstream[0].name", "{name:?}");
            assert_eq!(
                reason,
                format!(
                    "{name:?} is not a valid upstream name: use letters, digits, '_', '.' and '-'"
                )
            );
        }

        let (key, reason) = key_and_reason("[[upstream]]\nbackends = [\"127.0.0.1:1\"]\n");
        assert_eq!(key, "upstream[0]");
        assert!(reason.contains("missing field `name`"), "{reason}");
    }

    #[test]
    fn names_that_refer_to_no_upstream() {
        let toml =
            app("backends = [\"127.0.0.1:1\"]").replace("upstream = \"app\"", "upstream = \"ap\"");
        let error = Config::from_toml_str(&toml).expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "listener[0].upstream: no [[upstream]] is named \"ap\" (upstreams: \"app\") \
             (line 7, column 12)"
        );

        let toml = format!(
            "{}[[listener.route]]\nhost = \"a.example.com\"\nupstream = \"nope\"\n",
            app("backends = [\"127.0.0.1:1\"]")
        );
        let (key, reason) = key_and_reason(&toml);
        assert_eq!(key, "listener[0].route[0].upstream");
        assert_eq!(
            reason,
            "no [[upstream]] is named \"nope\" (upstreams: \"app\")"
        );

        let (key, reason) = key_and_reason(LISTENER);
        assert_eq!(key, "listener[0].upstream");
        assert_eq!(
            reason,
            "no [[upstream]] is named \"app\" (there is no [[upstream]])"
        );

        let toml =
            format!("{MINIMAL}[[listener]]\naddress = \"127.0.0.1:1\"\nupstream = \"listener0\"\n");
        let (key, _) = key_and_reason(&toml);
        assert_eq!(
            key, "listener[1].upstream",
            "implicit upstreams cannot be named"
        );

        let (key, reason) = key_and_reason(&format!(
            "{}[[listener.route]]\nhost = \"a.example.com\"\n",
            app("backends = [\"127.0.0.1:1\"]")
        ));
        assert_eq!(key, "listener[0].route[0]");
        assert!(reason.contains("missing field `upstream`"), "{reason}");
    }

    #[test]
    fn listener_needs_an_upstream_or_routes() {
        let routes_only = format!(
            "{}[[listener.route]]\npath_prefix = \"/api/\"\nupstream = \"app\"\n",
            app("backends = [\"127.0.0.1:1\"]").replace("upstream = \"app\"\n", "")
        );
        let config = Config::from_toml_str(&routes_only).expect("routes only");
        assert_eq!(config.listeners[0].default_upstream, None);
        assert_eq!(
            config.listeners[0].router().route(b"a", b"/", Some("b")),
            Routed::Misdirected
        );

        let neither = app("backends = [\"127.0.0.1:1\"]").replace("upstream = \"app\"\n", "");
        let (key, reason, at) = invalid(&neither);
        assert_eq!(key, "listener[0].backends");
        assert_eq!(
            reason,
            "at least one backend is required: list them (backends = [\"127.0.0.1:8080\"]), \
             name an [[upstream]] (upstream = \"app\") or add [[listener.route]] entries"
        );
        assert_eq!(at.line_column, Some((5, 1)), "points at the [[listener]]");
    }

    #[test]
    fn legacy_backends() {
        let config = Config::from_toml_str(MINIMAL).expect("legacy");
        assert_eq!(
            config.upstreams,
            [UpstreamConfig::new("listener0", [addr("127.0.0.1:8080")])]
        );
        assert_eq!(config.upstreams[0].policy, Policy::RoundRobin);
        assert_eq!(config.upstreams[0].health_check, None);
        assert_eq!(config.listeners[0].default_upstream, Some(0));
        assert!(config.listeners[0].routes.is_empty());

        // Implicit upstreams come after the [[upstream]] tables, in listener order.
        let toml = format!(
            "{}{}",
            app("backends = [\"127.0.0.1:1\"]"),
            MINIMAL.replace("8443", "8444")
        );
        let config = Config::from_toml_str(&toml).expect("both styles");
        assert_eq!(config.upstreams[1].name, "listener1");
        assert_eq!(config.listeners[1].default_upstream, Some(1));

        let both = MINIMAL.replace("backends", "upstream = \"app\"\nbackends");
        let (key, reason) = key_and_reason(&format!(
            "[[upstream]]\nname = \"app\"\nbackends = [\"127.0.0.1:1\"]\n{both}"
        ));
        assert_eq!(key, "listener[0].backends");
        assert_eq!(
            reason,
            "cannot be given with upstream: name an [[upstream]] or list backends, not both"
        );

        let clash =
            format!("[[upstream]]\nname = \"listener0\"\nbackends = [\"127.0.0.1:1\"]\n{MINIMAL}");
        let (key, reason) = key_and_reason(&clash);
        assert_eq!(key, "listener[0].backends");
        assert_eq!(
            reason,
            "these backends make an implicit upstream named \"listener0\", which is already the \
             name of upstream[0]: rename upstream[0]"
        );

        let duplicate = MINIMAL.replace(
            "[\"127.0.0.1:8080\"]",
            "[\"127.0.0.1:8080\", \"127.0.0.1:8080\"]",
        );
        let (key, reason) = key_and_reason(&duplicate);
        assert_eq!(key, "listener[0].backends[1]");
        assert_eq!(reason, "127.0.0.1:8080 is already listener[0].backends[0]");
    }

    #[test]
    fn upstream_without_primary_backends() {
        let (key, reason, at) = invalid(&app("policy = \"random\""));
        assert_eq!(key, "upstream[0].backends");
        assert_eq!(
            reason,
            "at least one backend is required (backends = [\"127.0.0.1:8080\"] or \
             [[upstream.backend]])"
        );
        assert_eq!(at.line_column, Some((1, 1)), "points at the [[upstream]]");

        let (key, _) = key_and_reason(&app("backends = []"));
        assert_eq!(key, "upstream[0].backends");

        let only_backups = app(
            "[[upstream.backend]]\naddress = \"127.0.0.1:1\"\nbackup = true\n\
             [[upstream.backend]]\naddress = \"127.0.0.1:2\"\nbackup = true",
        );
        let (key, reason) = key_and_reason(&only_backups);
        assert_eq!(key, "upstream[0].backend");
        assert_eq!(
            reason,
            "every backend is a backup (backup = true): at least one primary backend is required"
        );
        let one_primary = only_backups.replacen("backup = true", "backup = false", 1);
        Config::from_toml_str(&one_primary).expect("one primary");
    }

    #[test]
    fn duplicate_backend_addresses() {
        let cases = [
            (
                r#"backends = ["127.0.0.1:1", "127.0.0.1:1"]"#,
                "upstream[0].backends[1]",
                "127.0.0.1:1 is already upstream[0].backends[0]",
            ),
            (
                "backends = [\"127.0.0.1:1\"]\n[[upstream.backend]]\naddress = \"127.0.0.1:1\"",
                "upstream[0].backend[0].address",
                "127.0.0.1:1 is already upstream[0].backends[0]",
            ),
            (
                "[[upstream.backend]]\naddress = \"[::1]:1\"\n\
                 [[upstream.backend]]\naddress = \"[0::1]:1\"",
                "upstream[0].backend[1].address",
                "[::1]:1 is already upstream[0].backend[0].address",
            ),
        ];
        for (body, key, reason) in cases {
            assert_eq!(
                key_and_reason(&app(body)),
                (key.to_owned(), reason.to_owned()),
                "{body}"
            );
        }
        // The same address in two upstreams is fine.
        Config::from_toml_str(&format!(
            "[[upstream]]\nname = \"b\"\nbackends = [\"127.0.0.1:1\"]\n{}",
            app("backends = [\"127.0.0.1:1\"]")
        ))
        .expect("distinct upstreams");
    }

    #[test]
    fn policies_and_hash_keys() {
        for policy in Policy::ALL {
            assert_eq!(policy.to_string().parse::<Policy>(), Ok(policy));
            let body = format!("policy = \"{policy}\"\nbackends = [\"127.0.0.1:1\"]");
            let config = Config::from_toml_str(&app(&body)).expect("policy");
            assert_eq!(config.upstreams[0].policy, policy);
        }
        assert_eq!(
            "least_connections".parse::<Policy>(),
            Ok(Policy::LeastConnections)
        );
        assert!(!Policy::RoundRobin.uses_weights());
        assert!(Policy::ALL[1..].iter().all(|policy| policy.uses_weights()));

        let (key, reason, at) =
            invalid(&app("policy = \"leastconn\"\nbackends = [\"127.0.0.1:1\"]"));
        assert_eq!(key, "upstream[0].policy");
        assert_eq!(
            reason,
            "unknown balancing policy `leastconn`: expected one of round_robin, \
             weighted_round_robin, random, least_connections, peak_ewma, consistent_hash"
        );
        assert_eq!(at.line_column, Some((3, 10)));

        for (text, key) in [
            ("client_ip", HashKey::ClientIp),
            ("header:X-User", HashKey::Header("x-user".into())),
            ("cookie:Session_ID", HashKey::Cookie("Session_ID".into())),
        ] {
            assert_eq!(text.parse::<HashKey>(), Ok(key.clone()), "{text}");
            assert_eq!(key.to_string().parse::<HashKey>(), Ok(key));
        }
        assert_eq!(
            HashKey::Header("x-user".into()).to_string(),
            "header:x-user"
        );

        let hashed = |hash: &str| {
            app(&format!(
                "policy = \"consistent_hash\"\nhash = {hash:?}\nbackends = [\"127.0.0.1:1\"]"
            ))
        };
        for (hash, reason) in [
            (
                "ip",
                "\"ip\" is not a hash key (expected \"client_ip\", \"header:<name>\" or \
                 \"cookie:<name>\")",
            ),
            (
                "header:",
                "\"header:\": \"\" is not a valid header name (letters, digits and \
                 !#$%&'*+-.^_`|~)",
            ),
            (
                "header:X User",
                "\"header:X User\": \"X User\" is not a valid header name (letters, digits and \
                 !#$%&'*+-.^_`|~)",
            ),
            (
                "cookie:a=b",
                "\"cookie:a=b\": \"a=b\" is not a valid cookie name (letters, digits and \
                 !#$%&'*+-.^_`|~)",
            ),
            (
                "Header:x",
                "\"Header:x\" is not a hash key (expected \"client_ip\", \"header:<name>\" or \
                 \"cookie:<name>\")",
            ),
        ] {
            let (key, got, at) = invalid(&hashed(hash));
            assert_eq!(key, "upstream[0].hash", "{hash}");
            assert_eq!(got, reason, "{hash}");
            assert_eq!(at.line_column, Some((4, 8)), "{hash}");
        }

        let (key, reason) = key_and_reason(&app(
            "policy = \"random\"\nhash = \"client_ip\"\nbackends = [\"127.0.0.1:1\"]",
        ));
        assert_eq!(key, "upstream[0].hash");
        assert_eq!(
            reason,
            "is only used with policy = \"consistent_hash\", not \"random\""
        );
        let (key, _) = key_and_reason(&app("hash = \"client_ip\"\nbackends = [\"127.0.0.1:1\"]"));
        assert_eq!(key, "upstream[0].hash", "round_robin is the default policy");
    }

    #[test]
    fn health_check_timings() {
        let cases = [
            (
                "interval = \"0s\"",
                "upstream[0].health_check.interval",
                "must be greater than 0",
            ),
            (
                "timeout = 0",
                "upstream[0].health_check.timeout",
                "must be greater than 0",
            ),
            (
                "interval = \"5s\"\ntimeout = \"5s\"",
                "upstream[0].health_check.timeout",
                "5s must be shorter than interval (5s)",
            ),
            (
                "interval = \"1s\"",
                "upstream[0].health_check.timeout",
                "2s must be shorter than interval (1s)",
            ),
            (
                "jitter = \"6s\"",
                "upstream[0].health_check.jitter",
                "6s must not exceed interval (5s)",
            ),
            (
                "rise = 0",
                "upstream[0].health_check.rise",
                "must be at least 1",
            ),
            (
                "fall = 0",
                "upstream[0].health_check.fall",
                "must be at least 1",
            ),
        ];
        for (body, key, reason) in cases {
            assert_eq!(
                key_and_reason(&check(body)),
                (key.to_owned(), reason.to_owned()),
                "{body}"
            );
        }
        let (_, _, at) = invalid(&check("rise = 0"));
        assert_eq!(at.line_column, Some((5, 8)), "points at the value");
        let (_, _, at) = invalid(&check("interval = \"1s\""));
        assert_eq!(
            at.line_column,
            Some((4, 1)),
            "a default not written points at the section"
        );
        Config::from_toml_str(&check(
            "interval = \"5s\"\njitter = \"5s\"\ntimeout = \"4999ms\"",
        ))
        .expect("edges are fine");
        Config::from_toml_str(&check("jitter = 0")).expect("no jitter");
    }

    #[test]
    fn http_check_fields() {
        let cases = [
            (
                "method = \"GE T\"",
                "upstream[0].health_check.method",
                "\"GE T\" is not an HTTP method (a token such as \"GET\")",
            ),
            (
                "method = \"\"",
                "upstream[0].health_check.method",
                "\"\" is not an HTTP method (a token such as \"GET\")",
            ),
            (
                "path = \"health\"",
                "upstream[0].health_check.path",
                "\"health\" must start with '/'",
            ),
            (
                "path = \"/a b\"",
                "upstream[0].health_check.path",
                "\"/a b\" may only hold visible ASCII characters (no spaces)",
            ),
            (
                "host = \"a b\"",
                "upstream[0].health_check.host",
                "\"a b\" is not a host name or address, with an optional port",
            ),
            (
                "host = \"\"",
                "upstream[0].health_check.host",
                "\"\" is not a host name or address, with an optional port",
            ),
            (
                "expect_status = \"399-200\"",
                "upstream[0].health_check.expect_status",
                "\"399-200\" is not a status or range of statuses within 100-599 (low-high)",
            ),
            (
                "expect_status = \"200-600\"",
                "upstream[0].health_check.expect_status",
                "\"200-600\" is not a status or range of statuses within 100-599 (low-high)",
            ),
            (
                "expect_status = 99",
                "upstream[0].health_check.expect_status",
                "\"99\" is not a status or range of statuses within 100-599 (low-high)",
            ),
            (
                "expect_status = \"2xx\"",
                "upstream[0].health_check.expect_status",
                "\"2xx\" is not a status or range of statuses such as \"200\" or \"200-399\"",
            ),
            (
                "expect_status = \"200-\"",
                "upstream[0].health_check.expect_status",
                "\"200-\" is not a status or range of statuses such as \"200\" or \"200-399\"",
            ),
            (
                "expect_status = 70000",
                "upstream[0].health_check.expect_status",
                "70000 is not an HTTP status",
            ),
            (
                "type = \"udp\"",
                "upstream[0].health_check.type",
                "unknown variant `udp`, expected `http` or `tcp`",
            ),
            (
                "type = \"tcp\"\npath = \"/\"",
                "upstream[0].health_check.path",
                "is only used with type = \"http\"",
            ),
            (
                "type = \"tcp\"\nexpect_status = \"200\"",
                "upstream[0].health_check.expect_status",
                "is only used with type = \"http\"",
            ),
            (
                "paht = \"/\"",
                "upstream[0].health_check.paht",
                "unknown field `paht`, expected one of `type`, `interval`, `jitter`, `timeout`, \
                 `rise`, `fall`, `method`, `path`, `host`, `expect_status`",
            ),
        ];
        for (body, key, reason) in cases {
            assert_eq!(
                key_and_reason(&check(body)),
                (key.to_owned(), reason.to_owned()),
                "{body}"
            );
        }
        let config = Config::from_toml_str(&check(
            "expect_status = \"100-599\"\nhost = \"[fd00::1]:8080\"\nmethod = \"OPTIONS\"",
        ))
        .expect("edges");
        assert!(matches!(
            &config.upstreams[0].health_check.as_ref().map(|c| &c.kind),
            Some(CheckKind::Http { expect_status, host: Some(host), .. })
                if *expect_status == (100..=599) && host == "[fd00::1]:8080"
        ));
    }

    #[test]
    fn outlier_ejection_times() {
        let (key, reason) = key_and_reason(&outlier("max_ejection = \"5s\""));
        assert_eq!(key, "upstream[0].outlier.max_ejection");
        assert_eq!(reason, "5s is shorter than base_ejection (10s)");
        let (key, reason) = key_and_reason(&outlier("base_ejection = \"0s\""));
        assert_eq!(key, "upstream[0].outlier.base_ejection");
        assert_eq!(reason, "must be greater than 0");
        let (key, reason) = key_and_reason(&outlier("base_ejection = \"10m\""));
        assert_eq!(
            (key.as_str(), reason.as_str()),
            (
                "upstream[0].outlier.max_ejection",
                "5m is shorter than base_ejection (10m)"
            )
        );
        let (key, _) = key_and_reason(&outlier("consecutive_failures = -1"));
        assert_eq!(key, "upstream[0].outlier.consecutive_failures");
        let config = Config::from_toml_str(&outlier(
            "consecutive_failures = 0\nconsecutive_5xx = 0\nbase_ejection = \"1m\"\nmax_ejection = \"1m\"",
        ))
        .expect("off, equal times");
        assert_eq!(config.upstreams[0].outlier.consecutive_failures, 0);
    }

    #[test]
    fn max_ejected_percent_is_a_share_up_to_100() {
        let config = Config::from_toml_str(&outlier("")).expect("default");
        assert_eq!(config.upstreams[0].outlier.max_ejected_percent, 50);
        for ok in [0, 100] {
            let config = Config::from_toml_str(&outlier(&format!("max_ejected_percent = {ok}")))
                .expect("in range");
            assert_eq!(config.upstreams[0].outlier.max_ejected_percent, ok);
        }
        let (key, reason) = key_and_reason(&outlier("max_ejected_percent = 101"));
        assert_eq!(
            (key.as_str(), reason.as_str()),
            (
                "upstream[0].outlier.max_ejected_percent",
                "must be at most 100"
            )
        );
        let (key, _) = key_and_reason(&outlier("max_ejected_percent = -1"));
        assert_eq!(key, "upstream[0].outlier.max_ejected_percent");
    }

    #[test]
    fn route_keys() {
        let routed = |route: &str| {
            format!(
                "{}[[listener.route]]\n{route}\nupstream = \"app\"\n",
                app("backends = [\"127.0.0.1:1\"]")
            )
        };
        let cases = [
            (
                "path_prefix = \"api/\"",
                "listener[0].route[0].path_prefix",
                "\"api/\" must start with '/'",
            ),
            (
                "path_prefix = \"\"",
                "listener[0].route[0].path_prefix",
                "\"\" must start with '/'",
            ),
            (
                "path_prefix = \"/a b\"",
                "listener[0].route[0].path_prefix",
                "\"/a b\" may only hold visible ASCII characters (no spaces)",
            ),
            (
                "host = \"example.com:443\"",
                "listener[0].route[0].host",
                "\"example.com:443\" has a port: routes match the host name only",
            ),
            (
                "host = \"a.*.com\"",
                "listener[0].route[0].host",
                "\"a.*.com\": '*' is only allowed as a whole first label before a domain, as in \
                 \"*.example.com\"",
            ),
            (
                "host = \"\"",
                "listener[0].route[0].host",
                "a host name must not be empty",
            ),
            (
                "hots = \"a.com\"",
                "listener[0].route[0].hots",
                "unknown field `hots`, expected one of `host`, `path_prefix`, `upstream`",
            ),
        ];
        for (route, key, reason) in cases {
            assert_eq!(
                key_and_reason(&routed(route)),
                (key.to_owned(), reason.to_owned()),
                "{route}"
            );
        }
        let (_, _, at) = invalid(&routed("host = \"a..com\""));
        assert_eq!(at.line_column, Some((12, 8)), "points at the host value");
        let config = Config::from_toml_str(&routed("host = \"*.Example.com.\"")).expect("wildcard");
        assert_eq!(
            config.listeners[0].routes[0].host,
            Some(HostPattern::Wildcard(".example.com".into()))
        );
        Config::from_toml_str(&routed("")).expect("a route matching everything is allowed");
    }

    #[test]
    fn unknown_keys_in_upstream_sections() {
        let (key, reason) = key_and_reason(&app("backends = [\"127.0.0.1:1\"]\nweight = 2"));
        assert_eq!(key, "upstream[0].weight");
        assert!(reason.starts_with("unknown field `weight`"), "{reason}");
        let (key, _) = key_and_reason(&app(
            "[[upstream.backend]]\naddress = \"127.0.0.1:1\"\nweigth = 2",
        ));
        assert_eq!(key, "upstream[0].backend[0].weigth");
        let (key, _) = key_and_reason(&outlier("consecutive_500 = 1"));
        assert_eq!(key, "upstream[0].outlier.consecutive_500");
        let (key, reason) = key_and_reason(&app("[[upstream.backend]]\nweight = 2"));
        assert_eq!(key, "upstream[0].backend[0]");
        assert!(reason.contains("missing field `address`"), "{reason}");
    }

    #[test]
    fn duplicate_listener_addresses() {
        let (key, reason, _) = invalid(&format!("{MINIMAL}{MINIMAL}"));
        assert_eq!(key, "listener[1].address");
        assert!(reason.contains("listener[0]"), "{reason}");
    }

    #[test]
    fn log_levels() {
        for level in [
            "info",
            "DEBUG",
            "warn,ringway::proxy=debug",
            "ringway",
            "off",
        ] {
            Config::from_toml_str(&with(&format!("[log]\nlevel = {level:?}")))
                .unwrap_or_else(|e| panic!("{level}: {e}"));
        }
        for level in ["", "info,", "ringway=loud"] {
            let (key, _, _) = invalid(&with(&format!("[log]\nlevel = {level:?}")));
            assert_eq!(key, "log.level", "{level:?}");
        }
    }

    #[test]
    fn not_toml_is_a_syntax_error() {
        let error = Config::from_toml_str("workers = \n").expect_err("no value");
        assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
        assert_one_line(&error);
        assert!(error.to_string().contains("(line 1, column"), "{error}");
        let error = Config::from_toml_str("[[listener]\n").expect_err("bad header");
        assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
    }

    /// A directory with a self-signed pair (`good.pem`/`good.key`), a second key
    /// (`other.key`) and the config file, written with `listener` TOML.
    fn certificate_dir(tag: &str) -> TempDir {
        let dir = TempDir::new(tag);
        let good = tls::self_signed(&["a.test"]).expect("self-signed");
        let other = tls::self_signed(&["b.test"]).expect("self-signed");
        fs::write(dir.0.join("good.pem"), &good.cert_pem).expect("write");
        fs::write(dir.0.join("good.key"), &good.key_pem).expect("write");
        fs::write(dir.0.join("other.key"), &other.key_pem).expect("write");
        dir
    }

    fn config_with_certificates(dir: &TempDir, pairs: &[(&str, &str)]) -> PathBuf {
        let mut toml = String::from(
            "[[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:8080\"]\n",
        );
        for (cert, key) in pairs {
            toml.push_str(&format!(
                "[[listener.certificate]]\ncert = {cert:?}\nkey = {key:?}\n"
            ));
        }
        let path = dir.0.join("ringway.toml");
        fs::write(&path, toml).expect("write config");
        path
    }

    #[test]
    fn check_loads_certificates_relative_to_the_config_file() {
        let dir = certificate_dir("check-ok");
        let path = config_with_certificates(&dir, &[("good.pem", "good.key")]);
        let config = Config::load(&path).expect("load");
        assert_eq!(
            config.listeners[0].certificates[0].cert,
            dir.0.join("good.pem")
        );
        config.check().expect("check");
        let server = config.listeners[0]
            .server_config(0, Some(tls::ticketer().expect("ticketer")))
            .expect("server config");
        assert!(server.ticketer.enabled());
    }

    #[test]
    fn check_names_the_key_and_the_file() {
        let dir = certificate_dir("check-errors");
        let missing = dir.0.join("missing.pem");
        for (pair, key, contains) in [
            (
                ("missing.pem", "good.key"),
                "listener[0].certificate[1].cert",
                "No such file or directory",
            ),
            (
                ("good.pem", "missing.pem"),
                "listener[0].certificate[1].key",
                "No such file or directory",
            ),
            (
                ("good.pem", "good.pem"),
                "listener[0].certificate[1].key",
                "holds a certificate, not a private key",
            ),
            (
                ("good.pem", "other.key"),
                "listener[0].certificate[1].key",
                "does not match the certificate",
            ),
            (
                ("good.key", "good.key"),
                "listener[0].certificate[1].cert",
                "no certificate found",
            ),
        ] {
            let path = config_with_certificates(&dir, &[("good.pem", "good.key"), pair]);
            let config = Config::load(&path).expect("syntax is fine");
            let error = config.check().expect_err(key);
            assert!(
                matches!(error, ConfigError::Certificate { .. }),
                "{error:?}"
            );
            assert_eq!(error.key(), Some(key));
            assert_one_line(&error);
            let text = error.to_string();
            assert!(
                text.starts_with(&format!("{key}: {}", dir.0.display())),
                "{text}"
            );
            assert!(text.contains(contains), "{text}");
        }
        let path = config_with_certificates(
            &dir,
            &[("good.pem", "good.key"), ("good.pem", "missing.pem")],
        );
        let error = Config::load(&path)
            .expect("load")
            .check()
            .expect_err("missing key");
        assert_eq!(
            error.to_string(),
            format!(
                "listener[0].certificate[1].key: {}: No such file or directory",
                missing.display()
            )
        );
    }

    #[test]
    fn load_names_the_file() {
        let dir = TempDir::new("load");
        let missing = dir.0.join("nope.toml");
        let error = Config::load(&missing).expect_err("missing file");
        assert!(matches!(error, ConfigError::Read { .. }));
        assert_eq!(
            error.to_string(),
            format!("{}: No such file or directory", missing.display())
        );

        let path = dir.0.join("bad.toml");
        fs::write(&path, with("[timeouts]\nconnect = \"3x\"")).expect("write");
        let error = Config::load(&path).expect_err("bad duration");
        assert_one_line(&error);
        assert!(
            error
                .to_string()
                .ends_with(&format!("({}:2:11)", path.display())),
            "{error}"
        );
        assert_eq!(error.key(), Some("timeouts.connect"));
    }
}
