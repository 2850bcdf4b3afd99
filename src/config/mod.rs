//! Configuration: the TOML schema, its defaults, and validation that names the bad key and why.
//!
//! This module owns turning a TOML document into a [`Config`] whose values are all usable:
//! [`Config::from_toml_str`] (and [`Config::load`], which also reads the file) checks syntax,
//! types, unknown keys, addresses, durations, limits, upstreams, routes and the names that tie
//! them together; [`Config::check`] additionally loads every certificate and key and builds
//! each listener's rustls configuration, so a missing file, an unreadable key or a key that
//! does not match its certificate is reported before anything listens, and reads the session
//! ticket key file (`ticket_keys`), so a bad line is reported naming the file and the line.
//! Nothing here opens a socket or starts a thread.
//!
//! Invariants of a `Config` returned by `from_toml_str` or `load` (all checked by
//! [`Config::validate`]):
//! - at least one listener; listener addresses are distinct;
//! - every listener has a default upstream or at least one route (or `redirect_https`), every
//!   upstream index (a listener's default, a route's) is below `upstreams.len()`, every route
//!   has an upstream or a valid fixed response (`respond`), never both, and every route path
//!   prefix starts with `/`; a listener without certificates (plain HTTP) has default TLS
//!   options and no `client_auth`; `redirect_https` only on such a listener; certificate, key,
//!   `ocsp` and `client_auth` (`ca`, `crl`) paths, when given, are not empty;
//! - upstream names are distinct and made of `[A-Za-z0-9_.-]`; every upstream has at least one
//!   backend that is not a backup, distinct backend addresses (`ip:port` or `host:port`, port
//!   not 0, a host name following [`Name::check_host`]), weights
//!   in `1..=1000`, a hash key exactly when its policy is `consistent_hash`, health check
//!   timings with `0 < timeout < interval`, `jitter <= interval`, `rise` and `fall` at least 1,
//!   and ejection times with `0 < base_ejection <= max_ejection`;
//! - every timeout except `timeouts.drain` is greater than zero;
//! - every limit except `limits.body` (0 = unlimited) is at least 1, and `limits.head` is at
//!   least `limits.request_line`;
//! - `workers`, when given, is at least 1;
//! - `batch_wait` is at most [`MAX_BATCH_WAIT`];
//! - `ring_buffers`, when given, is between 1 and [`MAX_CONFIGURED_RING_BUFFERS`];
//! - `ticket_keys`, when given, is not an empty path.
//! - `resolver`: `0 < min_ttl <= max_ttl`, `timeout > 0`, name server ports not 0.
//! - `access_log`: `buffer` between 1 and [`MAX_ACCESS_LOG_BUFFER`], `path`, when given, not
//!   empty; a listener or route says `access_log = true` only when `[access_log]` is enabled.
//! - `proxy_protocol` on a listener, when given: at least one trusted network (each an
//!   address and a prefix with no bit set past it), a timeout greater than zero.
//! - `admin`, when given: its address is no listener's (same port on the same or an unspecified
//!   address), and its token, when given, is at least [`AdminConfig::MIN_TOKEN_LEN`] characters
//!   that can be sent in an `Authorization: Bearer` header ([`crate::admin::check_token`]).
//!
//! Every error's `Display` is one line: the key path (`upstream[1].backend[0].weight`), why it
//! is wrong and, for errors found in the document, where (`ringway.toml:12:14`, or
//! `line 12, column 14` without a file). Errors name the keys as the document writes them: a
//! backend from an upstream's short `backends` list is `upstream[1].backends[0]`, one from the
//! long form `upstream[1].backend[0].address`, and one from a listener's legacy `backends`
//! list `listener[0].backends[0]`. Certificate errors from [`Config::check`] name the key and
//! the file instead (`listener[0].certificate[1].key: /etc/x.pem: No such file or
//! directory`, `listener[0].client_auth.ca: /etc/ca.pem: no certificate found ...`), ticket key errors the key, the file and the line (`ticket_keys:
//! /etc/ringway/ticket.keys:3: not base64 ...`), and access log errors the key and the file
//! (`access_log.path: /var/log/ringway/access.log does not exist and cannot be created:
//! /var/log/ringway: No such file or directory`).
//!
//! # The TOML file
//!
//! Every section and key is optional except the `[[listener]]` entries, each with `address`,
//! an upstream to send requests to (`upstream = "name"`, the legacy `backends = [...]`, or
//! `[[listener.route]]` entries; a listener without `[[listener.certificate]]` serves plain
//! HTTP); and in each `[[upstream]]`, `name` and at least one backend. Unknown keys are errors.
//!
//! - Durations are strings of one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`
//!   (`"500ms"`, `"10s"`, `"2m"`, `"1h30m"`), or plain integers meaning milliseconds.
//! - Sizes and counts are integers.
//! - Addresses are `ip:port` (`"127.0.0.1:8080"`, `"[::1]:8443"`). A backend's address may
//!   also be `host:port` (`"app.internal:8080"`, a [`Name`]): the name is resolved (A and
//!   AAAA) when ringway starts, and every address it resolves to is a backend with the entry's
//!   settings; [`crate::discovery`] resolves and watches names, `[resolver]` says how. Nothing
//!   here resolves a name: a configuration checks on a machine without the DNS. A listener
//!   port of 0 asks the kernel for a free port (tests only: each worker's SO_REUSEPORT socket
//!   would get a different one).
//! - Certificate, key, OCSP, client CA, CRL, ticket key and access log paths that are relative
//!   are taken relative to the
//!   directory of the configuration file when it is read with [`Config::load`], and to the
//!   current directory with [`Config::from_toml_str`]. `cert` and `key` may name the same file.
//! - `ticket_keys` names a file of session-ticket keys shared by every instance that loads it
//!   (format: [`crate::tls::ticket_keys`]); without it each process makes its own keys.
//! - `log.level` is a tracing `EnvFilter` directive list: `"info"`, or
//!   `"info,ringway::proxy=debug"`.
//! - `[access_log]` is off unless `enabled = true`: a proxy that writes a line per request to
//!   standard output unasked surprises. Enabled, every listener and route logs unless it says
//!   `access_log = false`; the most specific setting wins (a route's over its listener's,
//!   a listener's over the table's), see [`AccessLogConfig::logs`]. The line formats are
//!   [`crate::access_log::format`]'s.
//! - A listener's legacy `backends = [...]` list (no `upstream`) becomes an upstream named
//!   `listener<i>` (`i` the listener's position), round robin, weight 1, no active health
//!   checks, default passive ejection. It is appended to [`Config::upstreams`] after the
//!   `[[upstream]]` tables; other listeners cannot name it.
//!
//! ```toml
//! workers = 2            # optional; default: every core the process may run on
//! batch_wait = "50us"    # longest a busy worker lets I/O completions gather; "0s" = off
//! ring_buffers = 512     # optional; 32 KiB receive buffers per worker; default: from the load
//! ticket_keys = "ticket.keys" # optional; session-ticket keys shared by a fleet
//!
//! [timeouts]
//! handshake = "10s"      # TLS handshake, from accept
//! request_head = "10s"   # first byte to the end of a request head
//! keepalive = "60s"      # idle client connection between requests
//! body = "60s"           # inactivity while a request or response body streams
//! connect = "3s"         # connecting to a backend
//! response = "30s"       # request sent to the backend's response head
//! drain = "30s"          # graceful stop: time for in-flight requests (0 = stop at once)
//! tunnel = "1h"          # inactivity of an upgraded connection (WebSocket) after its 101
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
//! [access_log]                  # one line per request; off unless enabled
//! enabled = false
//! format = "json"               # json | combined
//! # path = "/var/log/ringway/access.log" # default: standard output
//! buffer = 1024                 # batches queued for the log thread; beyond them lines drop
//!
//! [resolver]                    # for backends given by name
//! # nameservers = ["127.0.0.1:53"] # default: /etc/resolv.conf (and /etc/hosts)
//! min_ttl = "1s"                # names are looked up again at their TTL, at least this apart
//! max_ttl = "300s"              # and at most this apart
//! timeout = "2s"                # one lookup (A and AAAA)
//!
//! [admin]                       # the admin server (metrics, probes, status page); off without it
//! address = "127.0.0.1:9900"    # required in [admin]; keep it on loopback or a private network
//! # token = "..."               # optional: every route but /healthz then requires
//!                               # `Authorization: Bearer <token>`; at least 16 characters
//!
//! [[upstream]]
//! name = "app"                  # required, unique, [A-Za-z0-9_.-]+
//! policy = "round_robin"        # round_robin | weighted_round_robin | random |
//!                               # least_connections | peak_ewma | consistent_hash
//! # hash = "client_ip"          # consistent_hash only: client_ip | "header:X-User" | "cookie:sid"
//! slow_start = "0s"             # weight ramp after a backend comes back; 0 = off
//! # send_proxy_protocol = "v2"   # "v1" | "v2": a PROXY header first on each backend connection
//! backends = ["127.0.0.1:8080"] # short form: weight 1, unlimited, not a backup
//!
//! [[upstream.backend]]          # long form (after the short ones)
//! address = "127.0.0.1:8081"    # or "app.internal:8080": one backend per address it resolves to
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
//! # access_log = false          # this listener's requests unlogged; default: [access_log]
//! # upgrade = false             # refuse WebSocket / Upgrade requests (403); default: true
//! # proxy_protocol = { trusted = ["10.0.0.0/8"], timeout = "5s" } # a PROXY header first
//!
//! [[listener.route]]            # first match wins, before the default
//! host = "*.example.com"        # exact or "*.domain"; optional
//! path_prefix = "/api/"         # plain byte prefix; optional
//! upstream = "app"
//! # access_log = false          # this route's requests unlogged; default: the listener's
//! # upgrade = false             # this route's upgrades refused (403); default: the listener's
//!
//! [[listener.certificate]]   # the first certificate is the default (no SNI, unknown name)
//! cert = "certs/example.com.pem"
//! key = "certs/example.com.key"
//! # ocsp = "certs/example.com.ocsp" # DER OCSP response to staple; re-read at each reload
//!
//! # [listener.client_auth]   # client certificates (mutual TLS); off without it
//! # ca = "certs/clients-ca.pem" # PEM CAs a client certificate must chain to
//! # mode = "require"          # require | optional (no certificate: served, told NONE)
//! # crl = "certs/clients.crl" # optional PEM (or DER) revocation lists
//!
//! [listener.tls]
//! session_cache = 4096   # stateful resumption cache entries; 0 disables it
//! tickets = true         # stateless session tickets (TLS 1.2 and 1.3)
//! ```
//!
//! `ringway.example.toml` at the top of the repository is the same file with more comments; a
//! test parses it.
#![forbid(unsafe_code)]

// The model below is public; the rest is split by concern:
mod error; // ConfigError, Location, and naming the key and position of an error
mod raw; // the document as serde sees it, and its conversion to a Config and back
mod validate; // Config::validate and Config::check
mod values; // durations, addresses, status ranges: parsing and formatting

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use crate::discovery::{Addresses, Name, NameError};
use crate::route::{HostPattern, Route, Router};
pub use crate::tls::TlsOptions;

pub use self::error::{ConfigError, Location};
use self::error::{locate, toml_error};
use self::raw::{RawConfig, from_raw};

// ---------------------------------------------------------------------------------------------
// The validated configuration

/// Default of [`Config::batch_wait`].
pub const DEFAULT_BATCH_WAIT: Duration = crate::runtime::event_loop::DEFAULT_MAX_GATHER;
/// The largest [`Config::batch_wait`] accepted.
pub const MAX_BATCH_WAIT: Duration = Duration::from_millis(1);
/// Default of [`PoolConfig::max_idle_per_backend`].
pub const DEFAULT_MAX_IDLE_PER_BACKEND: usize = 1024;
/// The largest [`Config::ring_buffers`] accepted.
pub use crate::runtime::MAX_CONFIGURED_RING_BUFFERS;
/// Default of [`Timeouts::tunnel`]: an hour, what proxies in front of WebSocket applications
/// are usually given (nginx's `proxy_read_timeout`, HAProxy's `timeout tunnel`); applications
/// that ping more often than that never see it.
pub const DEFAULT_TUNNEL_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default of [`AccessLogConfig::buffer`].
pub const DEFAULT_ACCESS_LOG_BUFFER: usize = 256;
/// The largest [`AccessLogConfig::buffer`] accepted: a batch is about 64 KiB, so the queue
/// holds at most about 1 GiB.
pub const MAX_ACCESS_LOG_BUFFER: usize = 16384;

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
    /// A file of session-ticket keys (TOML `ticket_keys`; format: [`crate::tls::ticket_keys`]):
    /// every instance that loads the same file resumes the others' sessions. Relative to the
    /// configuration file's directory once read with [`Config::load`]. `None`: the process
    /// makes its own ticket keys ([`crate::tls::ticketer`]).
    pub ticket_keys: Option<PathBuf>,
    /// TOML `request_id = "keep" | "replace" | "off"`: what ringway does with `X-Request-Id`
    /// (sent to the backend and logged). Default `keep`: a client's well-formed id is kept,
    /// one is generated when there is none.
    pub request_id: crate::proxy::RequestIds,
    pub timeouts: Timeouts,
    pub limits: LimitsConfig,
    pub pool: PoolConfig,
    pub log: LogConfig,
    /// The access log. TOML: `[access_log]`.
    pub access_log: AccessLogConfig,
    /// How backend names are resolved. TOML: `[resolver]`.
    pub resolver: ResolverConfig,
    /// The admin server (`/metrics`, `/healthz`, `/readyz`, `/status`, the status page).
    /// TOML: `[admin]`. `None` (no `[admin]` table): no admin server.
    pub admin: Option<AdminConfig>,
    /// Backend pools, referred to by index from [`ListenerConfig::default_upstream`] and
    /// [`RouteConfig::upstream`]. TOML: `[[upstream]]`, in file order, then one implicit
    /// upstream per listener written with the legacy `backends = [...]`. Unused upstreams are
    /// allowed.
    pub upstreams: Vec<UpstreamConfig>,
    /// At least one. TOML: `[[listener]]`.
    pub listeners: Vec<ListenerConfig>,
}

/// The admin server's address and token. TOML: `[admin]` with `address` (`ip:port`, required
/// in the table) and `token` (optional). `Debug` does not show the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the admin server listens. Loopback (`127.0.0.1:9900`) unless something in front
    /// of it (a firewall, a private network) keeps it from the clients; port 0 asks the
    /// kernel for a free one (tests only).
    pub address: SocketAddr,
    /// With a token, every route but `/healthz` requires `Authorization: Bearer <token>`.
    /// Written in the configuration file itself, which should then be readable by ringway and
    /// its operators only. At least [`AdminConfig::MIN_TOKEN_LEN`] characters of
    /// `A-Za-z0-9-._~+/`, then `=` padding (what `openssl rand -base64 24` prints).
    pub token: Option<String>,
}

impl AdminConfig {
    /// The shortest token accepted.
    pub const MIN_TOKEN_LEN: usize = 16;
}

/// The token is not shown.
impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Timeouts. All are greater than zero except `drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TLS handshake, from accept (on a listener with `proxy_protocol`, from the end of the
    /// PROXY header, which has its own timeout). Default 10 s.
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
    /// TOML `try`: how long an attempt that may be retried (an idempotent request held whole,
    /// with an attempt left and the upstream's retry budget allowing it) waits for the first
    /// byte of its response before it is abandoned (its backend connection closed) and the
    /// request sent to another backend. At most `response`; a request that may not be retried
    /// waits the whole `response`. Default 10 s, or `response` when that is shorter.
    pub per_try: Duration,
    /// Graceful stop: how long in-flight requests may finish. 0 stops at once. Default 30 s.
    /// Open tunnels count as in flight: they are closed when it ends.
    pub drain: Duration,
    /// Inactivity of a tunnel (a WebSocket or other upgraded connection, after the backend's
    /// 101): no byte either way this long closes both sides. Default 1 h.
    pub tunnel: Duration,
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

/// The access log (TOML `[access_log]`): whether requests are logged, how and where. The
/// writer is [`crate::access_log::AccessLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// Whether anything is logged. Default false: off unless configured.
    pub enabled: bool,
    /// The line format. TOML `"json"` (default) or `"combined"`.
    pub format: AccessLogFormat,
    /// The file lines are appended to (created with mode 0640 when missing; reopened on
    /// SIGUSR1, for logrotate); `None` (default): standard output. Relative to the
    /// configuration file's directory once read with [`Config::load`]. [`Config::check`]
    /// checks that it can be written.
    pub path: Option<PathBuf>,
    /// Batches of lines (about 16 KiB each) queued between the workers and the log thread,
    /// 1 to [`MAX_ACCESS_LOG_BUFFER`]; when the queue is full, a worker drops its batch (and
    /// counts its lines) rather than wait. Default [`DEFAULT_ACCESS_LOG_BUFFER`].
    pub buffer: usize,
}

/// The access log's line formats (the formatter's own type): TOML and
/// [`FromStr`]/[`fmt::Display`] use `"json"` and `"combined"`.
pub use crate::access_log::{Format as AccessLogFormat, UnknownFormat as UnknownAccessLogFormat};

/// One listening address with its certificates and where its requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    /// `listen(2)` backlog. Default 4096.
    pub backlog: u32,
    /// TOML: `[[listener.certificate]]`. The first is the default certificate. None: the
    /// listener serves plain HTTP.
    pub certificates: Vec<CertificateConfig>,
    /// TOML `redirect_https = true`: every request is answered with a 308 to the same host and
    /// target over HTTPS, except ACME HTTP-01 challenges (`/.well-known/acme-challenge/`),
    /// which are routed as usual. Plain-HTTP listeners only.
    pub redirect_https: bool,
    /// TOML `redirect_https_port`: the port the redirects name (default: none, i.e. 443).
    pub redirect_https_port: Option<u16>,
    /// The upstream for requests no route matches: an index into [`Config::upstreams`].
    /// TOML: `upstream = "name"`, or the legacy `backends = [...]` (an implicit upstream).
    /// `None`: unmatched requests get 404 (or 421 when the SNI names another host).
    pub default_upstream: Option<usize>,
    /// Tried in order before the default; the first match wins. TOML: `[[listener.route]]`.
    /// A listener has a default upstream, routes, or both.
    pub routes: Vec<RouteConfig>,
    pub tls: TlsOptions,
    /// Client certificates (mutual TLS). TOML `client_auth = { ca = "ca.pem", mode =
    /// "require" }` or a `[listener.client_auth]` table. `None`: none are asked for.
    pub client_auth: Option<ClientAuthConfig>,
    /// Whether this listener's requests (and connections that end without one) are access
    /// logged. TOML `access_log = false`; `None` (default) follows `[access_log]`. `Some(true)`
    /// only when `[access_log]` is enabled. See [`AccessLogConfig::logs`].
    pub access_log: Option<bool>,
    /// Whether requests to switch protocols (`Connection: upgrade` with `Upgrade`, a WebSocket
    /// handshake) are forwarded, and the connection tunnelled after the backend's 101. TOML
    /// `upgrade = false` refuses them with 403 (and closes the connection); a route's
    /// `upgrade` overrides it. Default true.
    pub upgrade: bool,
    /// TOML `[listener.request_headers]`: fields set, appended or removed on requests to the
    /// backends.
    pub request_headers: HeaderRulesConfig,
    /// TOML `[listener.response_headers]`: fields set, appended or removed on responses to the
    /// clients (`Strict-Transport-Security`, no `Server`, ...).
    pub response_headers: HeaderRulesConfig,
    /// TOML `proxy_protocol = { trusted = ["10.0.0.0/8"], timeout = "5s" }`: every connection
    /// starts with a PROXY header (v1 or v2) from one of the trusted networks, whose client
    /// address then stands for the connection's peer. `None` (default): no header is read
    /// (one sent anyway fails the TLS handshake).
    pub proxy_protocol: Option<ProxyProtocolConfig>,
}

/// A listener's PROXY protocol settings: the parser's own type (`trusted`: at least one
/// network, `"10.0.0.0/8"`, `"::1/128"` or a bare address; `timeout` from the accept to the
/// end of the header, default 5 s, greater than zero).
pub use crate::proxy_protocol::{Inbound as ProxyProtocolConfig, Network, NetworkError};

/// Which PROXY header an upstream's backends get ([`UpstreamConfig::send_proxy_protocol`]):
/// TOML `"v1"` or `"v2"`.
pub use crate::proxy_protocol::{UnknownVersion as UnknownProxyVersion, Version as ProxyVersion};

/// Header rules as written: `set = { "Name" = "value" }`, `append = { ... }`,
/// `remove = ["Name"]`; checked by [`HeaderRulesConfig::rules`] (names are tokens, values have
/// no control character, no rule touches framing or forwarding fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRulesConfig {
    /// Fields set, replacing the message's own.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub set: std::collections::BTreeMap<String, String>,
    /// Fields added beside the message's own.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub append: std::collections::BTreeMap<String, String>,
    /// Fields removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HeaderRulesConfig {
    /// True when it has no rule.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.append.is_empty() && self.remove.is_empty()
    }

    /// The rules, checked.
    pub fn rules(&self) -> Result<crate::http1::HeaderRules, crate::http1::HeaderRuleError> {
        crate::http1::HeaderRules::new(
            self.set.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            self.append.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            self.remove.iter().map(String::as_str),
        )
    }
}

/// A routing rule of a listener: requests matching `host` (if given) and `path_prefix` (if
/// given) go to `upstream`, an index into [`Config::upstreams`], or are answered by ringway
/// with `respond`. TOML: `[[listener.route]]` with `host`, `path_prefix`, `upstream = "name"`
/// or `respond = { status, body, content_type }`, `access_log` (`false` leaves the route's
/// requests out of the access log; default: the listener's setting), `upgrade` (`false`
/// refuses its WebSocket handshakes with 403, `true` allows them; default: the listener's), and
/// `[listener.route.request_headers]` / `[listener.route.response_headers]` (applied after the
/// listener's). Its matching part feeds [`Router::new`] ([`RouteConfig::route`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteConfig {
    /// The host to match; `None` matches every host.
    pub host: Option<HostPattern>,
    /// A byte prefix of the request target; `None` matches every target.
    pub path_prefix: Option<String>,
    /// The upstream (an index into [`Config::upstreams`]); `None` with `respond`.
    pub upstream: Option<usize>,
    /// Whether its requests are access logged (`None`: the listener's switch).
    pub access_log: Option<bool>,
    /// The response ringway answers with itself, instead of an upstream.
    pub respond: Option<RespondConfig>,
    /// Whether its requests may switch protocols (WebSocket): TOML `upgrade`; `None` follows
    /// the listener's [`ListenerConfig::upgrade`].
    pub upgrade: Option<bool>,
    /// Fields set, appended or removed on its requests, after the listener's rules.
    pub request_headers: HeaderRulesConfig,
    /// Fields set, appended or removed on its responses, after the listener's rules.
    pub response_headers: HeaderRulesConfig,
}

impl RouteConfig {
    /// The router's rule: what it matches and where it sends.
    pub fn route(&self) -> Route {
        Route {
            host: self.host.clone(),
            path_prefix: self.path_prefix.clone(),
            upstream: self.upstream,
            access_log: self.access_log,
        }
    }
}

/// A fixed response a route answers with (a maintenance page, a blocked path). TOML:
/// `respond = { status = 503, body = "...", content_type = "text/html" }`, or the body read
/// from a file: `body_file = "maintenance.html"` (relative to the configuration file's
/// directory once read with [`Config::load`]; read at startup, by `ringway check` and at each
/// reload).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RespondConfig {
    /// 200 to 599; a 204 or 304 has no body.
    pub status: u16,
    /// The body, sent as is (default: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// A file whose bytes are the body, instead of `body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<PathBuf>,
    /// Its Content-Type (default `text/plain; charset=utf-8` when there is a body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Why a route's fixed response cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The status, content type or body is refused.
    #[error(transparent)]
    Response(#[from] crate::http1::FixedResponseError),
    /// `body` and `body_file` both given.
    #[error("body and body_file cannot both be given")]
    BothBodies,
    /// `body_file` is an empty path.
    #[error("body_file must be a file path, not empty")]
    EmptyPath,
    /// `body_file` cannot be read.
    #[error("body_file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl RespondConfig {
    /// The longest body a fixed response may have.
    pub const MAX_BODY: usize = 1024 * 1024;

    /// Checks what can be checked without reading `body_file`: status, content type, the
    /// inline body, not both bodies.
    pub fn check(&self) -> Result<(), RespondError> {
        match &self.body_file {
            Some(_) if !self.body.is_empty() => Err(RespondError::BothBodies),
            Some(path) if path.as_os_str().is_empty() => Err(RespondError::EmptyPath),
            _ => self.build(self.body.as_bytes()).map(|_| ()),
        }
    }

    /// The response, checked (status, content type, body size); `body_file` is read now.
    pub fn response(&self) -> Result<crate::http1::FixedResponse, RespondError> {
        self.check()?;
        let Some(path) = &self.body_file else {
            return self.build(self.body.as_bytes());
        };
        let file = |source| RespondError::File {
            path: path.clone(),
            source,
        };
        let len = std::fs::metadata(path).map_err(file)?.len();
        if len > Self::MAX_BODY as u64 {
            return Err(crate::http1::FixedResponseError::BodyTooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max: Self::MAX_BODY,
            }
            .into());
        }
        let body = std::fs::read(path).map_err(file)?;
        self.build(&body)
    }

    fn build(&self, body: &[u8]) -> Result<crate::http1::FixedResponse, RespondError> {
        Ok(crate::http1::FixedResponse::new(
            self.status,
            self.content_type.as_deref(),
            body,
            Self::MAX_BODY,
        )?)
    }
}

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
    /// TOML `hedge_after`: an idempotent request held whole that has no byte of answer this
    /// long after it was sent gets a second attempt on another backend while the first stays
    /// open; the first answer wins and the other attempt is closed. Spends from the retry
    /// budget. Off (`None`) by default.
    pub hedge_after: Option<Duration>,
    /// At least one, at least one of them not a backup, addresses distinct. TOML: the short
    /// `backends = [...]` list first, then the `[[upstream.backend]]` tables.
    pub backends: Vec<BackendConfig>,
    /// Active checks, run once per upstream for all workers. `None`: no active checks (every
    /// backend counts as up unless passively ejected). TOML: `[upstream.health_check]`.
    pub health_check: Option<HealthCheckConfig>,
    /// Passive ejection, per worker. TOML: `[upstream.outlier]`; present with its defaults
    /// when the section is absent.
    pub outlier: OutlierConfig,
    /// How much retrying the upstream allows, per worker. TOML: `[upstream.retries]`:
    /// `budget_percent` (retries as a share of requests, 0 to 100; default 20) and
    /// `min_per_second` (retries allowed each second whatever the budget; default 10).
    pub retries: RetryBudgetConfig,
    /// TOML `send_proxy_protocol = "v1" | "v2"`: each new connection to a backend starts with a
    /// PROXY header carrying the client's address (and the address it connected to); such
    /// connections serve one client connection only (never pooled), and health checks send a
    /// LOCAL header. `None` (default): no header.
    pub send_proxy_protocol: Option<ProxyVersion>,
}

/// A retry budget: the domain's own type (see [`UpstreamConfig::retries`]).
pub use crate::upstream::budget::RetryBudgetPolicy as RetryBudgetConfig;

/// The balancing policies (the same type as the balancer's): TOML and
/// [`FromStr`]/[`fmt::Display`] use the snake_case names (`"least_connections"`).
pub use crate::balance::{PolicyKind as Policy, UnknownPolicy};

/// What a [`Policy::ConsistentHash`] upstream hashes to pick a backend. TOML:
/// `"client_ip"`, `"header:<name>"`, `"cookie:<name>"` ([`FromStr`]); [`fmt::Display`] writes
/// the same form. The domain's own type.
pub use crate::upstream::group::KeySource as HashKey;

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

/// How backend names are resolved and watched (TOML: `[resolver]`: `nameservers`, a list of
/// `ip:port`, default none: `/etc/resolv.conf`; `min_ttl`, default 1 s; `max_ttl`, default
/// 300 s; `timeout`, default 2 s). The resolver's own type.
pub use crate::discovery::ResolverSettings as ResolverConfig;

/// One backend of an upstream at a concrete address: what [`UpstreamConfig::resolved_backends`]
/// makes of a [`BackendConfig`]. The domain's own type.
pub use crate::upstream::group::BackendSpec;

/// One backend entry of an upstream. TOML: an entry of `backends = [...]` (every other field
/// at its default) or an `[[upstream.backend]]` table. An entry given by name stands for one
/// backend per address the name resolves to, each with the entry's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// Where it listens: `ip:port` or `host:port`, port not 0.
    pub address: BackendAddress,
    /// Relative share under weighted policies, `1..=`[`BackendConfig::MAX_WEIGHT`], default 1.
    /// Used by every policy but round robin.
    pub weight: u32,
    /// Requests in flight to this backend (to each of its addresses, for a name), all workers
    /// together; at the limit it is skipped. 0 = unlimited (default).
    pub max_connections: u32,
    /// Used only when no primary (non-backup) backend of the upstream is usable. Default
    /// false.
    pub backup: bool,
}

/// Where a backend listens. TOML: `"10.0.0.1:8080"`, `"[fd00::1]:8080"` or
/// `"app.internal:8080"`; [`fmt::Display`] writes the same form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendAddress {
    /// An `ip:port` socket address.
    Ip(SocketAddr),
    /// A DNS name and port, resolved when ringway starts (see [`crate::discovery`]).
    Name(Name),
}

/// A backend name that [`UpstreamConfig::resolved_backends`] was given no address for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream {upstream:?}: backend {name} has not been resolved to any address")]
pub struct UnresolvedName {
    pub upstream: String,
    pub name: Name,
}

/// Active health checks of an upstream's backends (TOML: `[upstream.health_check]`), and what
/// a check does: the health checker's own types, validated here.
pub use crate::upstream::checker::{CheckKind, CheckSpec as HealthCheckConfig};

/// Passive ejection: a worker stops sending to a backend that keeps failing, for a while.
/// Kept per worker. TOML: `[upstream.outlier]`: `consecutive_failures` (connect failures,
/// resets and timeouts in a row that eject a backend; 0 = off; default 5), `consecutive_5xx`
/// (5xx responses in a row; 0 = off; default 0), `base_ejection` (the first ejection's length,
/// greater than zero; default 10 s), `max_ejection` (the longest, at least `base_ejection`;
/// default 300 s), `max_ejected_percent` (the largest share, 0 to 100, of an upstream's primary
/// or backup backends one worker ejects at once; default 50). The domain's own type.
pub use crate::upstream::health::OutlierPolicy as OutlierConfig;

/// A PEM certificate chain (leaf first) and its PEM private key. May be the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A DER OCSP response stapled to handshakes that get this certificate (TOML `ocsp`), as
    /// `openssl ocsp -respout` writes it; re-read at each reload. `None`: nothing stapled.
    pub ocsp: Option<PathBuf>,
}

/// Whether a listener asks for client certificates: TOML `require` or `optional`.
pub use crate::tls::{ClientAuthMode, UnknownClientAuthMode};

/// A listener's client authentication (TOML `client_auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthConfig {
    /// PEM CA certificates a client certificate must chain to (TOML `ca`, required).
    pub ca: PathBuf,
    /// TOML `mode`, default `require`.
    pub mode: ClientAuthMode,
    /// PEM (or DER) certificate revocation lists (TOML `crl`, optional).
    pub crl: Option<PathBuf>,
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
            per_try: Duration::from_secs(10),
            drain: Duration::from_secs(30),
            tunnel: DEFAULT_TUNNEL_TIMEOUT,
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

impl Default for AccessLogConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            format: AccessLogFormat::default(),
            path: None,
            buffer: DEFAULT_ACCESS_LOG_BUFFER,
        }
    }
}

impl AccessLogConfig {
    /// Whether a request on `listener` that `route` took (`None`: no route matched, or a
    /// connection that ended without a request) is logged: never when the log is not
    /// enabled; otherwise the route's `access_log` when it has one, else the listener's, else
    /// yes.
    pub fn logs(&self, listener: &ListenerConfig, route: Option<&RouteConfig>) -> bool {
        self.enabled
            && route
                .and_then(|route| route.access_log)
                .or(listener.access_log)
                .unwrap_or(true)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
        }
    }
}

impl BackendConfig {
    /// The largest weight.
    pub const MAX_WEIGHT: u32 = BackendSpec::MAX_WEIGHT;

    /// A backend at `address` with weight 1, no connection limit, not a backup.
    pub fn new(address: impl Into<BackendAddress>) -> Self {
        Self {
            address: address.into(),
            weight: 1,
            max_connections: 0,
            backup: false,
        }
    }

    /// The backend at `addr` (the entry's own address, or one its name resolved to), with this
    /// entry's weight, connection limit and backup flag.
    pub fn at(&self, addr: SocketAddr) -> BackendSpec {
        BackendSpec {
            address: addr,
            weight: self.weight,
            max_connections: self.max_connections,
            backup: self.backup,
        }
    }
}

impl BackendAddress {
    /// The port, whichever the form.
    pub fn port(&self) -> u16 {
        match self {
            BackendAddress::Ip(addr) => addr.port(),
            BackendAddress::Name(name) => name.port,
        }
    }

    /// The name, when the address is one.
    pub fn name(&self) -> Option<&Name> {
        match self {
            BackendAddress::Ip(_) => None,
            BackendAddress::Name(name) => Some(name),
        }
    }
}

impl From<SocketAddr> for BackendAddress {
    fn from(addr: SocketAddr) -> Self {
        BackendAddress::Ip(addr)
    }
}

impl From<Name> for BackendAddress {
    fn from(name: Name) -> Self {
        BackendAddress::Name(name)
    }
}

impl fmt::Display for BackendAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAddress::Ip(addr) => addr.fmt(f),
            BackendAddress::Name(name) => name.fmt(f),
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
            ticket_keys: None,
            request_id: crate::proxy::RequestIds::default(),
            timeouts: Timeouts::default(),
            limits: LimitsConfig::default(),
            pool: PoolConfig::default(),
            log: LogConfig::default(),
            access_log: AccessLogConfig::default(),
            resolver: ResolverConfig::default(),
            admin: None,
            upstreams: Vec::new(),
            listeners: Vec::new(),
        }
    }
}

impl ListenerConfig {
    /// Default `listen(2)` backlog.
    pub const DEFAULT_BACKLOG: u32 = 4096;

    /// This listener's router: its routes in order, then its default upstream.
    pub fn router(&self) -> Router {
        Router::new(
            self.routes.iter().map(RouteConfig::route).collect(),
            self.default_upstream,
        )
    }

    /// Whether the listener serves plain HTTP (it has no certificate).
    pub fn is_plain(&self) -> bool {
        self.certificates.is_empty()
    }
}

/// `0.0.0.0:8443`, the default backlog and TLS options, and no certificate, upstream nor
/// route: not valid until a certificate and an upstream or route are filled in.
impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([0, 0, 0, 0], 8443)),
            backlog: Self::DEFAULT_BACKLOG,
            certificates: Vec::new(),
            redirect_https: false,
            redirect_https_port: None,
            default_upstream: None,
            routes: Vec::new(),
            tls: TlsOptions::default(),
            client_auth: None,
            access_log: None,
            upgrade: true,
            request_headers: HeaderRulesConfig::default(),
            response_headers: HeaderRulesConfig::default(),
            proxy_protocol: None,
        }
    }
}

impl UpstreamConfig {
    /// A round-robin upstream over `addresses`, each with the [`BackendConfig::new`]
    /// defaults, and every other field at its default: what a legacy `backends = [...]` list
    /// or the quick-start `--backend` flags make.
    pub fn new<A: Into<BackendAddress>>(
        name: impl Into<String>,
        addresses: impl IntoIterator<Item = A>,
    ) -> Self {
        Self {
            name: name.into(),
            backends: addresses.into_iter().map(BackendConfig::new).collect(),
            ..Self::default()
        }
    }

    /// The backend names of this upstream, in order (a name listed twice, twice).
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        self.backends.iter().filter_map(|b| b.address.name())
    }

    /// The upstream's backends at concrete addresses, in order: an `ip:port` entry as it is,
    /// an entry given by name at every address `addresses` holds for the name (in that order),
    /// each with the entry's weight, `max_connections` and backup flag. An address an earlier
    /// entry already gave is left out (two names, or a name and an `ip:port` entry, may reach
    /// the same backend): the first entry's settings win. Fails on a name `addresses` has no
    /// address for.
    pub fn resolved_backends(
        &self,
        addresses: &Addresses,
    ) -> Result<Vec<BackendSpec>, UnresolvedName> {
        let mut seen = HashSet::new();
        let mut backends = Vec::with_capacity(self.backends.len());
        for backend in &self.backends {
            let resolved: &[SocketAddr] = match &backend.address {
                BackendAddress::Ip(addr) => std::slice::from_ref(addr),
                BackendAddress::Name(name) => match addresses.get(name) {
                    Some(addrs) if !addrs.is_empty() => addrs,
                    _ => {
                        return Err(UnresolvedName {
                            upstream: self.name.clone(),
                            name: name.clone(),
                        });
                    }
                },
            };
            for &addr in resolved {
                if seen.insert(addr) {
                    backends.push(backend.at(addr));
                }
            }
        }
        Ok(backends)
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
            hedge_after: None,
            backends: Vec::new(),
            health_check: None,
            outlier: OutlierConfig::default(),
            retries: RetryBudgetConfig::default(),
            send_proxy_protocol: None,
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

/// RFC 9110 §5.6.2: `token = 1*tchar`.
fn is_token(text: &str) -> bool {
    crate::http1::is_token(text.as_bytes())
}

impl Config {
    /// Every backend name of every upstream, each once, in the order the configuration lists
    /// them: what to resolve before [`UpstreamConfig::resolved_backends`] can make backends.
    /// Nothing here resolves them ([`Config::check`] neither).
    pub fn names(&self) -> Vec<Name> {
        let mut seen = HashSet::new();
        self.upstreams
            .iter()
            .flat_map(UpstreamConfig::names)
            .filter(|name| seen.insert(*name))
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

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
    /// Relative certificate, key, OCSP, client CA and CRL, ticket key, access log and fixed
    /// response body paths are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_toml_str(&text).map_err(|error| error.in_file(path))?;
        let base = path.parent().unwrap_or(Path::new(""));
        if let Some(ticket_keys) = &mut config.ticket_keys {
            *ticket_keys = base.join(&*ticket_keys);
        }
        if let Some(access_log) = &mut config.access_log.path {
            *access_log = base.join(&*access_log);
        }
        for listener in &mut config.listeners {
            for certificate in &mut listener.certificates {
                certificate.cert = base.join(&certificate.cert);
                certificate.key = base.join(&certificate.key);
                if let Some(ocsp) = &mut certificate.ocsp {
                    *ocsp = base.join(&*ocsp);
                }
            }
            for route in &mut listener.routes {
                if let Some(file) = route.respond.as_mut().and_then(|r| r.body_file.as_mut()) {
                    *file = base.join(&*file);
                }
            }
            if let Some(auth) = &mut listener.client_auth {
                auth.ca = base.join(&auth.ca);
                if let Some(crl) = &mut auth.crl {
                    *crl = base.join(&*crl);
                }
            }
        }
        Ok(config)
    }
}
