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
}

impl Fields {
    /// Copies the fields of `head` (whose bytes are `buf`).
    pub fn capture(head: &RequestHead, buf: &[u8]) -> Self {
        let method = head.method_bytes(buf);
        let host = head.host(buf);
        let target = head.path(buf);
        let agent = head
            .headers(buf)
            .find(|(name, _)| name.eq_ignore_ascii_case(b"user-agent"))
            .map(|(_, value)| value);
        let len = method.len() + host.len() + target.len() + agent.map_or(0, <[u8]>::len);
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
        Self {
            bytes,
            method,
            host,
            target,
            agent,
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

    /// Gives the buffer back to the worker's free list.
    pub fn release(self) {
        buf::give(self.bytes);
    }
}
