//! Sans-IO HTTP/1.1: request and response head parsing and validation, body framing
//! (Content-Length, chunked, close-delimited) and head rewriting for forwarding.
//!
//! # What this module owns
//!
//! - [`parse_request`] / [`parse_response`]: turn the bytes at the front of a receive buffer into
//!   a validated [`RequestHead`] / [`ResponseHead`] (or ask for more bytes). httparse tokenizes
//!   the header fields; the stricter RFC 9112 rules it does not enforce (bare LF and bare CR
//!   line endings, NUL, obs-fold, whitespace before the colon, Content-Length and
//!   Transfer-Encoding framing, Host) are checked here, before and after it.
//! - [`write_request_head`] / [`write_response_head`]: re-serialize a parsed head for the other
//!   side. Raw head bytes are never forwarded: hop-by-hop fields are dropped, framing headers
//!   are written from the parsed framing (never copied), forwarding headers are added.
//! - [`BodyDecoder`]: finds where a message body ends, byte-driven, without buffering.
//! - [`responses`]: pre-built error responses.
//!
//! # Invariants
//!
//! - No I/O and no clocks: bytes in, decisions and bytes out. No `unsafe`.
//! - No panic on any input: every rule is a checked branch, and malformed input yields an error
//!   whose [`RequestError::status`] / [`BodyError::status`] is the status to answer with.
//! - A head is `Complete` only when every framing rule passed: the message length is then
//!   unambiguous ([`BodyKind`]), so a request and the bytes after it can never be read two ways
//!   by ringway and a backend (request smuggling, RFC 9112 §11.2).
//! - After any error the caller answers (if it can), closes the connection and forwards nothing
//!   of that message (docs/ARCHITECTURE.md, "Invariants that hold across modules").
//! - Parsed heads store offsets into the caller's buffer, not copies: parsing into a reused
//!   [`RequestHead`] / [`ResponseHead`] does not allocate once its field vector has grown.
#![forbid(unsafe_code)]

mod body;
mod error;
mod field;
mod fixed;
mod header_rules;
mod request;
mod response;
pub mod responses;

pub use body::{Advance, BodyDecoder, MAX_CHUNK_EXTENSION};
pub use error::{BodyError, HeadError, RequestError, ResponseError};
pub(crate) use field::is_token;
pub use fixed::{FixedResponse, FixedResponseError, redirect_host_ok, write_https_redirect};
pub use header_rules::{HeaderRuleError, HeaderRules};
pub use request::{
    CLIENT_CERT_FIELDS, ClientCertFields, Forwarding, RequestHead, parse_request,
    write_request_head, write_request_head_with,
};
pub use response::{
    ResponseHead, parse_response, parse_response_with, parse_status, write_response_head,
    write_response_head_with,
};
pub use responses::{CONTINUE_100, Status, error_response, local_response};

/// Most header fields held on the stack while httparse tokenizes a head; a `max_headers`
/// above this is clamped to it (more fields are answered with 431).
pub const MAX_STACK_HEADERS: usize = field::MAX_STACK_HEADERS;

/// Size limits for one message. All lengths are in bytes and include line terminators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (status line for responses), CRLF included. Over it: 414.
    pub max_request_line: usize,
    /// Longest head: start line, fields and the final empty line. Over it: 431.
    pub max_head: usize,
    /// Most header fields in one head (at most [`MAX_STACK_HEADERS`]). Over it: 431.
    pub max_headers: usize,
    /// Largest body in bytes (payload only, chunk framing excluded); 0 = unlimited. Over it: 413.
    /// [`parse_request`] checks a declared Content-Length against it; [`BodyDecoder`] enforces
    /// it on the bytes as they arrive. [`parse_response`] does not apply it.
    pub max_body: u64,
    /// Largest trailer section of a chunked body. Over it: 431.
    pub max_trailer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_line: 8192,
            max_head: 32768,
            max_headers: 100,
            max_body: 0,
            max_trailer: 8192,
        }
    }
}

/// Request method. Method names are case-sensitive (RFC 9110 §9.1): `get` is [`Method::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Patch,
    Connect,
    /// Any other valid token; its bytes are kept in the head and forwarded as received.
    Other,
}

impl Method {
    /// Maps a method token to its variant (exact, case-sensitive match).
    pub fn from_bytes(token: &[u8]) -> Self {
        match token {
            b"GET" => Self::Get,
            b"HEAD" => Self::Head,
            b"POST" => Self::Post,
            b"PUT" => Self::Put,
            b"DELETE" => Self::Delete,
            b"OPTIONS" => Self::Options,
            b"TRACE" => Self::Trace,
            b"PATCH" => Self::Patch,
            b"CONNECT" => Self::Connect,
            _ => Self::Other,
        }
    }

    /// RFC 9110 §9.2.2: GET, HEAD, PUT, DELETE, OPTIONS and TRACE are idempotent, so a request
    /// that failed before any response byte may be retried on another backend.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Self::Get | Self::Head | Self::Put | Self::Delete | Self::Options | Self::Trace
        )
    }
}

/// How the end of a message body is found (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: no framing header on a request, or a response that cannot have one.
    Empty,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// Transfer-Encoding whose final coding is chunked.
    Chunked,
    /// Responses only: the body runs until the backend closes the connection.
    CloseDelimited,
}

/// Outcome of a head parse that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A full, valid head; the body (if any) starts at `head_len`.
    Complete,
    /// The head is not complete yet: read more bytes and call again with the whole buffer.
    Partial,
}

#[cfg(test)]
mod tests;
