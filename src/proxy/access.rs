//! The access log as the proxy writes it: which requests are logged, and the request's
//! fields a line needs.
//!
//! Owns the per-listener rule ([`LogRule`], compiled from `[access_log]` and the listener's
//! and routes' switches) and [`Fields`]: the method, host, target and user agent of a request,
//! copied out of its head when the exchange starts (the head's bytes are reused once its body
//! is read), into a buffer from the worker's free list that goes back when the line is written.
//!
//! Invariants: nothing is copied when the request is not logged; a field that is not valid
//! UTF-8 is cut at its first invalid byte ([`utf8_prefix`]), so a line is always valid.

use std::ops::Range;

use crate::access_log::utf8_prefix;
use crate::buf;
use crate::http1::RequestHead;

/// Length of a generated request id: 32 lowercase hex digits.
pub const REQUEST_ID_LEN: usize = 32;

/// The longest client `X-Request-Id` kept (a longer one is replaced).
pub const MAX_CLIENT_REQUEST_ID: usize = 128;

/// Whether a client's `X-Request-Id` is kept: 1 to [`MAX_CLIENT_REQUEST_ID`] visible ASCII
/// characters (the parser has already refused control characters).
pub fn acceptable_request_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_CLIENT_REQUEST_ID && id.iter().all(|b| b.is_ascii_graphic())
}

/// One worker's request ids: a random prefix drawn at startup and a counter, as 32 hex digits
/// (unique per worker and process start without coordination).
pub struct RequestIdSource {
    /// The random prefix, as hex digits.
    prefix: [u8; REQUEST_ID_LEN / 2],
    next: std::cell::Cell<u64>,
}

/// `word` as 16 lowercase hex digits.
fn hex16(word: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        let nibble = (word >> (4 * (15 - i))) & 0xf;
        *byte = b"0123456789abcdef"[nibble as usize];
    }
    out
}

impl RequestIdSource {
    /// A source with a random prefix.
    pub fn new() -> Self {
        Self {
            prefix: hex16(fastrand::u64(..)),
            next: std::cell::Cell::new(0),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> [u8; REQUEST_ID_LEN] {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        let mut id = [0u8; REQUEST_ID_LEN];
        id[..16].copy_from_slice(&self.prefix);
        id[16..].copy_from_slice(&hex16(n));
        id
    }
}

impl Default for RequestIdSource {
    fn default() -> Self {
        Self::new()
    }
}

/// Which requests of a listener are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRule {
    /// None (the access log is off, or off for this listener and every route).
    Off,
    /// All.
    On,
    /// As the matched route says; `default` for a route that says nothing (or none).
    Routes {
        /// The listener's own switch.
        default: bool,
    },
}

/// A request's fields for its access-log line.
pub struct Fields {
    bytes: Vec<u8>,
    method: Range<usize>,
    host: Range<usize>,
    target: Range<usize>,
    agent: Option<Range<usize>>,
    request_id: Option<Range<usize>>,
}

impl Fields {
    /// Copies the fields of `head` (whose bytes are `buf`), and the request id it goes with.
    pub fn capture(head: &RequestHead, buf: &[u8], request_id: Option<&[u8]>) -> Self {
        let method = head.method_bytes(buf);
        let host = head.host(buf);
        let target = head.path(buf);
        let agent = head
            .headers(buf)
            .find(|(name, _)| name.eq_ignore_ascii_case(b"user-agent"))
            .map(|(_, value)| value);
        let len = method.len()
            + host.len()
            + target.len()
            + agent.map_or(0, <[u8]>::len)
            + request_id.map_or(0, <[u8]>::len);
        let mut bytes = buf::take(len);
        let mut push = |field: &[u8]| {
            let start = bytes.len();
            bytes.extend_from_slice(field);
            start..bytes.len()
        };
        let method = push(method);
        let host = push(host);
        let target = push(target);
        let agent = agent.map(&mut push);
        let request_id = request_id.map(&mut push);
        Self {
            bytes,
            method,
            host,
            target,
            agent,
            request_id,
        }
    }

    /// The method.
    pub fn method(&self) -> &str {
        utf8_prefix(&self.bytes[self.method.clone()])
    }

    /// The host, as the request gave it.
    pub fn host(&self) -> &str {
        utf8_prefix(&self.bytes[self.host.clone()])
    }

    /// The target (path and query).
    pub fn target(&self) -> &str {
        utf8_prefix(&self.bytes[self.target.clone()])
    }

    /// The `User-Agent`, when the request had one.
    pub fn agent(&self) -> Option<&str> {
        self.agent.clone().map(|r| utf8_prefix(&self.bytes[r]))
    }

    /// The request id sent to the backend (or the client's, kept).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.clone().map(|r| utf8_prefix(&self.bytes[r]))
    }

    /// Gives the buffer back to the worker's free list.
    pub fn release(self) {
        buf::give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_32_hex_digits_and_distinct() {
        let source = RequestIdSource::new();
        let (a, b) = (source.next_id(), source.next_id());
        assert_ne!(a, b);
        assert!(
            a.iter()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(&a[..16], &b[..16], "one prefix per worker");
        assert_eq!(&b[16..], b"0000000000000001");
    }

    #[test]
    fn client_ids_are_kept_when_short_and_visible() {
        assert!(acceptable_request_id(b"abc-123"));
        assert!(!acceptable_request_id(b""));
        assert!(!acceptable_request_id(b"has space"));
        assert!(!acceptable_request_id(&[b'a'; MAX_CLIENT_REQUEST_ID + 1]));
    }
}
