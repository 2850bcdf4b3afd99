//! Configuration: the TOML schema, its defaults, and validation that names the bad key and why.
//!
//! This module owns turning a TOML document into a [`Config`] whose values are all usable:
//! [`Config::from_toml_str`] (and [`Config::load`], which also reads the file) checks syntax,
//! types, unknown keys, addresses, durations and limits; [`Config::check`] additionally loads
//! every certificate and key and builds each listener's rustls configuration, so a missing
//! file, an unreadable key or a key that does not match its certificate is reported before
//! anything listens. Nothing here opens a socket or starts a thread.
//!
//! Invariants of a `Config` returned by `from_toml_str` or `load`:
//! - at least one listener; listener addresses are distinct;
//! - every listener has at least one backend (an `ip:port`, port not 0) and at least one
//!   certificate;
//! - every timeout except `timeouts.drain` is greater than zero;
//! - every limit except `limits.body` (0 = unlimited) is at least 1, and `limits.head` is at
//!   least `limits.request_line`;
//! - `workers`, when given, is at least 1.
//!
//! Every error's `Display` is one line: the key path (`listener[0].backends[1]`), why it is
//! wrong and, for errors found in the document, where (`ringway.toml:12:14`, or
//! `line 12, column 14` without a file). Certificate errors from [`Config::check`] name the key
//! and the file instead (`listener[0].certificate[1].key: /etc/x.pem: No such file or
//! directory`).
//!
//! # The TOML file
//!
//! Every section and key is optional except the `[[listener]]` entries, each with `address`,
//! `backends` and at least one `[[listener.certificate]]`. Unknown keys are errors.
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
//!
//! ```toml
//! workers = 2            # optional; default: every core the process may run on
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
//! max_idle_per_backend = 64   # idle kept-alive backend connections per worker; 0 = none
//! idle_timeout = "30s"
//!
//! [log]
//! level = "info"
//!
//! [[listener]]
//! address = "0.0.0.0:8443"
//! backlog = 4096
//! backends = ["127.0.0.1:8080", "127.0.0.1:8081"]
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
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::tls::{self, CertifiedKey, FileKind, TlsError};

// ---------------------------------------------------------------------------------------------
// The validated configuration

/// The whole configuration, validated. See the module doc for the TOML shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Worker threads, one per core. `None`: every core the process may run on.
    pub workers: Option<usize>,
    pub timeouts: Timeouts,
    pub limits: LimitsConfig,
    pub pool: PoolConfig,
    pub log: LogConfig,
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
    /// Idle kept-alive connections kept per backend, per worker; 0 keeps none. Default 64.
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

/// One listening address with its backends and certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    /// `listen(2)` backlog. Default 4096.
    pub backlog: u32,
    /// At least one. TOML: `[[listener.certificate]]`. The first is the default certificate.
    pub certificates: Vec<CertificateConfig>,
    /// At least one.
    pub backends: Vec<SocketAddr>,
    pub tls: TlsOptions,
}

/// A PEM certificate chain (leaf first) and its PEM private key. May be the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// TLS session resumption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsOptions {
    /// Entries of the stateful session cache; 0 disables it. Default 4096.
    pub session_cache: usize,
    /// Stateless session tickets. Default true.
    pub tickets: bool,
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
            max_idle_per_backend: 64,
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

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            session_cache: 4096,
            tickets: true,
        }
    }
}

/// Every section at its default and no listener. Not valid as it is: a configuration needs at
/// least one listener.
impl Default for Config {
    fn default() -> Self {
        Self {
            workers: None,
            timeouts: Timeouts::default(),
            limits: LimitsConfig::default(),
            pool: PoolConfig::default(),
            log: LogConfig::default(),
            listeners: Vec::new(),
        }
    }
}

impl ListenerConfig {
    /// Default `listen(2)` backlog.
    pub const DEFAULT_BACKLOG: u32 = 4096;
}

/// `0.0.0.0:8443`, the default backlog and TLS options, and no certificate nor backend: not
/// valid until both are filled in.
impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([0, 0, 0, 0], 8443)),
            backlog: Self::DEFAULT_BACKLOG,
            certificates: Vec::new(),
            backends: Vec::new(),
            tls: TlsOptions::default(),
        }
    }
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
    /// durations, then [`Config::validate`]. Files are not touched: certificate paths are kept
    /// as written.
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(s).map_err(|error| toml_error(s, &error))?;
        let config = Config::from(raw);
        config.validate().map_err(|error| locate(s, error))?;
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
    /// file. Errors name the key; they carry no position.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == Some(0) {
            return Err(invalid(
                "workers",
                "must be at least 1 (leave it out to use every core the process may run on)",
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
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(&RawConfig::from(self))
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
        if self.backends.is_empty() {
            return Err(invalid(
                key("backends"),
                "at least one backend is required (backends = [\"127.0.0.1:8080\"])",
            ));
        }
        for (position, backend) in self.backends.iter().enumerate() {
            if backend.port() == 0 {
                return Err(invalid(
                    key(&format!("backends[{position}]")),
                    format!("{backend}: port 0 cannot be connected to"),
                ));
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
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    pool: RawPool,
    #[serde(default)]
    log: RawLog,
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
struct RawListener {
    address: AddressValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backlog: Option<u32>,
    // Missing and empty are both "no backend", which validation words better than serde.
    #[serde(default)]
    backends: Vec<AddressValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    certificate: Vec<RawCertificate>,
    #[serde(default)]
    tls: RawTlsOptions,
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
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => {
                return Err(match after.chars().next() {
                    Some(unexpected) => format!("unexpected {unexpected:?} after {number}"),
                    None => "missing unit (ms, s, m or h)".to_owned(),
                });
            }
            other => return Err(format!("unknown unit {other:?} (expected ms, s, m or h)")),
        };
        let millis = number
            .checked_mul(millis_per_unit)
            .ok_or_else(|| "it is too large".to_owned())?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(|| "it is too large".to_owned())?;
        rest = after;
    }
    Ok(total)
}

/// The shortest exact form: `"2m"`, `"90s"`, `"1500ms"`. Sub-millisecond parts are dropped
/// (the parser never produces them).
fn format_duration(duration: Duration) -> String {
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

impl From<RawConfig> for Config {
    /// Fills in the defaults; no checks beyond the types serde already enforced.
    fn from(raw: RawConfig) -> Self {
        let duration = |value: Option<DurationValue>, default: Duration| {
            value.map_or(default, |DurationValue(duration)| duration)
        };
        let t = Timeouts::default();
        let l = LimitsConfig::default();
        let p = PoolConfig::default();
        Config {
            workers: raw.workers,
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
            listeners: raw.listener.into_iter().map(ListenerConfig::from).collect(),
        }
    }
}

impl From<RawListener> for ListenerConfig {
    fn from(raw: RawListener) -> Self {
        let defaults = TlsOptions::default();
        ListenerConfig {
            address: raw.address.0,
            backlog: raw.backlog.unwrap_or(ListenerConfig::DEFAULT_BACKLOG),
            certificates: raw
                .certificate
                .into_iter()
                .map(|RawCertificate { cert, key }| CertificateConfig { cert, key })
                .collect(),
            backends: raw.backends.into_iter().map(|address| address.0).collect(),
            tls: TlsOptions {
                session_cache: raw.tls.session_cache.unwrap_or(defaults.session_cache),
                tickets: raw.tls.tickets.unwrap_or(defaults.tickets),
            },
        }
    }
}

impl From<&Config> for RawConfig {
    /// Every key written out, so the TOML shows the effective values.
    fn from(config: &Config) -> Self {
        let t = &config.timeouts;
        let l = &config.limits;
        RawConfig {
            workers: config.workers,
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
            listener: config
                .listeners
                .iter()
                .map(|listener| RawListener {
                    address: AddressValue(listener.address),
                    backlog: Some(listener.backlog),
                    backends: listener
                        .backends
                        .iter()
                        .copied()
                        .map(AddressValue)
                        .collect(),
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
                })
                .collect(),
        }
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
                max_idle_per_backend: 64,
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
            config.listeners,
            [
                ListenerConfig {
                    address: "0.0.0.0:8443".parse().expect("addr"),
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
                    backends: vec![
                        "127.0.0.1:8080".parse().expect("addr"),
                        "127.0.0.1:8081".parse().expect("addr"),
                    ],
                    tls: TlsOptions::default(),
                },
                ListenerConfig {
                    address: "[::1]:9443".parse().expect("addr"),
                    backlog: 4096,
                    certificates: vec![CertificateConfig {
                        cert: "certs/localhost.pem".into(),
                        key: "certs/localhost.pem".into(),
                    }],
                    backends: vec!["[::1]:8080".parse().expect("addr")],
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
            config.listeners[0].backends[1],
            "[fd00::2]:8080".parse().expect("addr")
        );

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
            listeners: vec![ListenerConfig {
                address: "127.0.0.1:8443".parse().expect("addr"),
                certificates: vec![CertificateConfig {
                    cert: "a.pem".into(),
                    key: "a.key".into(),
                }],
                backends: vec!["127.0.0.1:8080".parse().expect("addr")],
                ..ListenerConfig::default()
            }],
            ..Config::default()
        };
        config.validate().expect("valid");
        assert_eq!(
            config,
            Config::from_toml_str(&with("workers = 1")).expect("same as TOML")
        );

        config.listeners[0].backends.clear();
        let error = config.validate().expect_err("no backend");
        assert_eq!(error.key(), Some("listener[0].backends"));
        assert_eq!(
            error.to_string(),
            "listener[0].backends: at least one backend is required \
             (backends = [\"127.0.0.1:8080\"])",
            "no position for a config built in code"
        );
        let error = config.check().expect_err("check validates first");
        assert_eq!(error.key(), Some("listener[0].backends"));

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
