//! What one access log line says: [`Record`], borrowed from the connection and the request
//! that ended, and [`Termination`], how and whose side ended it.
//!
//! This module owns the record's fields and their meaning; [`super::format`] owns how a line
//! spells them. It is sans-IO and allocation-free: a `Record` only borrows (`&str`, `Copy`
//! values), so building one on a worker costs nothing but the stores.
//!
//! Invariants:
//! - a record describes one request that ended (answered, failed or abandoned), or one
//!   connection that ended without a request (see [`Record::connection`]): nothing in it is
//!   inferred by the formatter;
//! - every field is present on every record; an absent value is `None` (written `null` in
//!   JSON, `-` in the combined format), except `method`, `host` and `target`, which are empty
//!   when there is no request or no Host (and written `null` in JSON);
//! - [`Termination::reason`] is a short `snake_case` name (`[a-z0-9_]+`, see
//!   [`is_reason`]), so lines can be counted and grouped by it.
//!
//! # Termination reasons
//!
//! The code that ends a request names why, with a [`Side`] saying whose doing it was:
//! - [`Termination::COMPLETE`] (side [`Side::None`], reason `complete`): the exchange ran to
//!   its end, whatever the status (a 404 or a 503 ringway answered itself is complete too:
//!   `status` says what the client got);
//! - [`Side::Client`]: the client closed, reset, timed out or sent something refused:
//!   `client_closed`, `client_reset`, `client_timeout`, `handshake_failed`,
//!   `handshake_timeout`, `bad_request`, or the name of the framing rule a request broke
//!   (`cl_te`, `bad_chunk`, `head_too_large`, ...);
//! - [`Side::Backend`]: a backend failed the request: `backend_closed`, `backend_reset`,
//!   `backend_timeout`, `connect_failed`, `connect_timeout`, `bad_response`, `no_backend`
//!   (no backend of the upstream could take it);
//! - [`Side::Proxy`]: this process or its configuration ended it: a local shortage
//!   (`local_shortage`), no route (`no_route`), a listener removed by a reload, draining
//!   (`draining`).
//!
//! The lists are the convention, not a closed set: the caller supplies the name as a
//! `&'static str`. Reuse a name for the same cause; make a new one only for a new cause.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Everything one access log line says, borrowed. Build it where the request ends and hand it
/// to [`super::Format::write`]; it holds no allocation.
///
/// Sizes are what ringway read and wrote in plaintext (TLS records' overhead not counted):
/// `bytes_in` the request's head and body as received from the client, `bytes_out` the
/// response's head and body as sent to it. Durations are measured from the moment ringway
/// started reading the request (for a connection-level record: from the accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the request ended (wall clock, written in UTC).
    pub time: SystemTime,
    /// The client's address, as accepted. An IPv4-mapped IPv6 address is written as IPv4.
    pub client: SocketAddr,
    /// The TLS version: `"TLSv1.2"` or `"TLSv1.3"`; `None` before a handshake completed.
    pub tls_version: Option<&'static str>,
    /// The negotiated cipher suite (rustls' name, e.g. `"TLS13_AES_128_GCM_SHA256"`).
    pub cipher: Option<&'static str>,
    /// The server name the client asked for in its ClientHello.
    pub sni: Option<&'a str>,
    /// Whether the TLS session was resumed (ticket or session cache).
    pub resumed: bool,
    /// The request method as received; empty for a connection-level record.
    pub method: &'a str,
    /// The request's Host (or absolute-form authority) as received; empty when none (and for
    /// a connection-level record).
    pub host: &'a str,
    /// The request target as received; empty for a connection-level record.
    pub target: &'a str,
    /// The status of the response the client got; 0 when no response was sent.
    pub status: u16,
    /// Request bytes received from the client (head and body).
    pub bytes_in: u64,
    /// Response bytes sent to the client (head and body).
    pub bytes_out: u64,
    /// The upstream the request was routed to; `None` when it was not routed.
    pub upstream: Option<&'a str>,
    /// The backend of the last attempt; `None` when no backend was chosen.
    pub backend: Option<SocketAddr>,
    /// Attempts made on backends (a retry or a hedge counts); 0 when none was.
    pub attempts: u32,
    /// From the start of the request to its end.
    pub total: Duration,
    /// The backend connection's connect time (last attempt); `None` for a pooled connection
    /// or when no connection was opened.
    pub connect: Option<Duration>,
    /// From the request sent to the first byte of the backend's response (last attempt);
    /// `None` when no byte came.
    pub first_byte: Option<Duration>,
    /// The request's id (e.g. an `X-Request-Id` ringway set or forwarded).
    pub request_id: Option<&'a str>,
    /// The request's `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// How the request ended.
    pub termination: Termination,
}

impl<'a> Record<'a> {
    /// A record of `client` at `time` with nothing else known: no TLS, no request (empty
    /// method, host and target), status 0, no bytes, no upstream or backend, no attempt, every
    /// duration zero or absent, [`Termination::COMPLETE`]. Fill in the rest with struct update
    /// syntax: `Record { method, target, status, ..Record::new(time, client) }`.
    pub const fn new(time: SystemTime, client: SocketAddr) -> Self {
        Self {
            time,
            client,
            tls_version: None,
            cipher: None,
            sni: None,
            resumed: false,
            method: "",
            host: "",
            target: "",
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            upstream: None,
            backend: None,
            attempts: 0,
            total: Duration::ZERO,
            connect: None,
            first_byte: None,
            request_id: None,
            user_agent: None,
            termination: Termination::COMPLETE,
        }
    }

    /// A connection-level record: a connection that ended without a request (a failed or
    /// timed-out handshake, a client that went away or stayed silent, a head refused before
    /// it could be read as a request). The same [`Record`] with method, host and target empty
    /// and status 0 (unless an error response was sent: then set `status` and `bytes_out`);
    /// the TLS fields are whatever the handshake got to. `total` runs from the accept.
    pub const fn connection(
        time: SystemTime,
        client: SocketAddr,
        total: Duration,
        termination: Termination,
    ) -> Self {
        Self {
            total,
            termination,
            ..Self::new(time, client)
        }
    }

    /// Whether this is a connection-level record (no request line: the method is empty).
    pub const fn is_connection_level(&self) -> bool {
        self.method.is_empty()
    }
}

/// Whose doing the end of a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client: it closed, reset, timed out or sent something refused.
    Client,
    /// A backend: it failed to connect, answer or finish, or no backend could take the
    /// request.
    Backend,
    /// This process or its configuration: a local shortage, no route, a reload or a drain.
    Proxy,
    /// Nobody's fault: the exchange ran to its end.
    None,
}

impl Side {
    /// The name a line writes: `client`, `backend`, `proxy` or `none`.
    pub const fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Backend => "backend",
            Side::Proxy => "proxy",
            Side::None => "none",
        }
    }
}

/// How a request (or a connection without one) ended: whose side and why. Written
/// `side/reason` (`client/cl_te`), or the bare reason when the side is [`Side::None`]
/// (`complete`). See the module doc for the names in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Termination {
    pub side: Side,
    /// A short `snake_case` name ([`is_reason`]).
    pub reason: &'static str,
}

impl Termination {
    /// The exchange ran to its end.
    pub const COMPLETE: Termination = Termination {
        side: Side::None,
        reason: "complete",
    };

    /// `side/reason`. In a debug build, panics when `reason` is not a [`is_reason`] name (the
    /// names are constants in the code: a test that reaches one finds a bad one).
    pub const fn new(side: Side, reason: &'static str) -> Self {
        debug_assert!(is_reason(reason), "a termination reason is snake_case");
        Self { side, reason }
    }

    /// The client's doing: `client/<reason>`.
    pub const fn client(reason: &'static str) -> Self {
        Self::new(Side::Client, reason)
    }

    /// A backend's doing: `backend/<reason>`.
    pub const fn backend(reason: &'static str) -> Self {
        Self::new(Side::Backend, reason)
    }

    /// This process's or its configuration's doing: `proxy/<reason>`.
    pub const fn proxy(reason: &'static str) -> Self {
        Self::new(Side::Proxy, reason)
    }
}

/// Whether `reason` follows the convention for [`Termination::reason`]: 1 to 32 bytes of
/// `[a-z0-9_]`, starting with a letter.
pub const fn is_reason(reason: &str) -> bool {
    let bytes = reason.as_bytes();
    if bytes.is_empty() || bytes.len() > 32 || !bytes[0].is_ascii_lowercase() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// The longest prefix of `bytes` that is UTF-8, without copying: how a caller turns a header
/// value received as bytes (which may hold obs-text) into a field of a [`Record`]. Whatever
/// follows the first byte that is not UTF-8 is left out.
pub fn utf8_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            // `valid_up_to` is a character boundary below which the bytes are UTF-8.
            std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn termination_names() {
        assert_eq!(Termination::COMPLETE.side, Side::None);
        assert_eq!(Termination::COMPLETE.reason, "complete");
        assert_eq!(
            Termination::client("cl_te"),
            Termination {
                side: Side::Client,
                reason: "cl_te"
            }
        );
        assert_eq!(Termination::backend("backend_reset").side, Side::Backend);
        assert_eq!(Termination::proxy("no_route").side, Side::Proxy);
        for (side, name) in [
            (Side::Client, "client"),
            (Side::Backend, "backend"),
            (Side::Proxy, "proxy"),
            (Side::None, "none"),
        ] {
            assert_eq!(side.name(), name);
        }
    }

    #[test]
    fn reasons_are_snake_case() {
        for good in ["complete", "cl_te", "client_timeout", "http2_preface", "a"] {
            assert!(is_reason(good), "{good}");
        }
        for bad in [
            "",
            "Client",
            "client-timeout",
            "client timeout",
            "_x",
            "9x",
            "a/b",
            "x\n",
            "a_very_long_reason_name_over_32_bytes",
        ] {
            assert!(!is_reason(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_connection_record_has_no_request() {
        let client = SocketAddr::from(([192, 0, 2, 1], 40000));
        let record = Record::connection(
            SystemTime::UNIX_EPOCH,
            client,
            Duration::from_secs(10),
            Termination::client("handshake_timeout"),
        );
        assert!(record.is_connection_level());
        assert_eq!((record.method, record.host, record.target), ("", "", ""));
        assert_eq!(record.status, 0);
        assert_eq!(record.total, Duration::from_secs(10));
        let request = Record {
            method: "GET",
            target: "/",
            ..Record::new(SystemTime::UNIX_EPOCH, client)
        };
        assert!(!request.is_connection_level());
        assert_eq!(request.termination, Termination::COMPLETE);
    }

    #[test]
    fn utf8_prefix_stops_at_the_first_bad_byte() {
        assert_eq!(utf8_prefix(b"curl/8.5.0"), "curl/8.5.0");
        assert_eq!(utf8_prefix("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(utf8_prefix(b"Mozilla\xff/5.0"), "Mozilla");
        // A truncated multi-byte sequence.
        assert_eq!(utf8_prefix(b"ab\xc3"), "ab");
        assert_eq!(utf8_prefix(b"\x80"), "");
    }
}
