//! Reading the PROXY header at the start of a client connection, on a listener that expects
//! one (`proxy_protocol` in its plan), before the TLS handshake.
//!
//! Owns the I/O around [`crate::proxy_protocol::parse`]: receives what arrives (the first
//! receive takes whatever the client sent, usually the header and its ClientHello together),
//! parses, and hands back the header and the bytes after it, which belong to TLS and must be
//! fed to the session before it reads the socket.
//!
//! Invariants: nothing is held while waiting for the first bytes (the ring's provided
//! buffers); a header split over receives is gathered in one buffer of at most
//! [`MAX_HEADER_LEN`] bytes from the worker's free list, and later receives ask for no more
//! than it lacks; every buffer goes back to the free list except the bytes after the header,
//! which the caller gives back once TLS has read them. The first answer of the parser that
//! is not `Partial` is final.

use std::io;

use compio::net::TcpStream;

use crate::buf;
use crate::proxy_protocol::{MAX_HEADER_LEN, Parsed, ProxyHeader, ProxyHeaderError, parse};
use crate::runtime::recv::recv_with;

/// A complete header.
pub struct Received {
    pub header: ProxyHeader,
    /// What came after the header in the same receive (the start of the ClientHello), in a
    /// buffer of the worker's free list (give it back with `buf::give`); `None` when nothing
    /// did.
    pub rest: Option<Vec<u8>>,
}

/// Why no header was read.
#[derive(Debug)]
pub enum HeaderFailure {
    /// The bytes are not a valid header (or no header at all).
    Invalid(ProxyHeaderError),
    /// The client closed the connection before a whole header.
    Closed,
    /// The socket failed.
    Io(io::Error),
}

impl HeaderFailure {
    /// The access log's reason (a connection line, `client/<reason>`).
    pub fn reason(&self) -> &'static str {
        match self {
            HeaderFailure::Invalid(_) => "proxy_header_invalid",
            HeaderFailure::Closed | HeaderFailure::Io(_) => "proxy_header_eof",
        }
    }

    /// What went wrong, for a debug line: the parser's name for a malformed header.
    pub fn detail(&self) -> String {
        match self {
            HeaderFailure::Invalid(e) => format!("{}: {e}", e.name()),
            HeaderFailure::Closed => "closed before a whole header".to_owned(),
            HeaderFailure::Io(e) => e.to_string(),
        }
    }
}

/// The access log's reason when the header did not arrive within the listener's timeout.
pub const TIMEOUT_REASON: &str = "proxy_header_timeout";

/// Reads the PROXY header from `tcp`; `read` counts the bytes received (for the traffic
/// counters), whatever the outcome. No timeout: the caller bounds it.
pub async fn read_header(tcp: &TcpStream, read: &mut u64) -> Result<Received, HeaderFailure> {
    // The bytes of a header split over receives (empty, holding no buffer, until one is).
    let mut held: Vec<u8> = Vec::new();
    let outcome = loop {
        // A header split over receives: no more than it can still need.
        let max = if held.is_empty() {
            0
        } else {
            MAX_HEADER_LEN - held.len()
        };
        let received = recv_with(tcp, max, |bytes| {
            *read += bytes.len() as u64;
            step(&mut held, bytes)
        })
        .await;
        match received {
            Ok(Some(Some(done))) => break done,
            Ok(Some(None)) => {}
            Ok(None) => break Err(HeaderFailure::Closed),
            Err(e) => break Err(HeaderFailure::Io(e)),
        }
    };
    if held.capacity() > 0 {
        buf::give(held);
    }
    outcome
}

/// Takes one receive's `bytes`: the outcome, or `None` to wait for more (they are then in
/// `held`).
fn step(held: &mut Vec<u8>, bytes: &[u8]) -> Option<Result<Received, HeaderFailure>> {
    let whole: &[u8] = if held.is_empty() {
        bytes
    } else {
        held.extend_from_slice(bytes);
        held
    };
    match parse(whole) {
        Ok(Parsed::Partial) => {
            if held.is_empty() {
                // `Partial` means fewer than MAX_HEADER_LEN bytes: they fit.
                let mut keep = buf::take(MAX_HEADER_LEN);
                keep.extend_from_slice(bytes);
                *held = keep;
            }
            None
        }
        Ok(Parsed::Complete { header_len, header }) => {
            let after = &whole[header_len..];
            let rest = (!after.is_empty()).then(|| {
                let mut rest = buf::take(after.len());
                rest.extend_from_slice(after);
                rest
            });
            Some(Ok(Received { header, rest }))
        }
        Err(e) => Some(Err(HeaderFailure::Invalid(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(parts: &[&[u8]]) -> Option<Result<Received, HeaderFailure>> {
        let mut held = Vec::new();
        let mut last = None;
        for part in parts {
            last = step(&mut held, part);
            if last.is_some() {
                break;
            }
        }
        if held.capacity() > 0 {
            assert!(held.capacity() >= MAX_HEADER_LEN.min(held.len()));
            buf::give(held);
        }
        last
    }

    #[test]
    fn the_bytes_after_the_header_are_handed_back() {
        let Some(Ok(received)) =
            steps(&[b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n\x16\x03\x01"])
        else {
            panic!("complete");
        };
        assert_eq!(
            received.header,
            ProxyHeader::Proxied {
                source: "203.0.113.7:51234".parse().unwrap(),
                destination: "10.0.0.1:443".parse().unwrap(),
            }
        );
        assert_eq!(received.rest.as_deref(), Some(&b"\x16\x03\x01"[..]));
    }

    #[test]
    fn a_header_split_over_receives_is_gathered() {
        let Some(Ok(received)) =
            steps(&[b"PROXY TCP4 203.0.", b"113.7 10.0.0.1 5", b"1234 443\r\n"])
        else {
            panic!("complete");
        };
        assert!(matches!(received.header, ProxyHeader::Proxied { .. }));
        assert!(received.rest.is_none());
        let Some(Ok(received)) = steps(&[b"PROXY UNKNOWN\r", b"\n\x16"]) else {
            panic!("complete");
        };
        assert_eq!(received.header, ProxyHeader::Local);
        assert_eq!(received.rest.as_deref(), Some(&b"\x16"[..]));
        assert!(steps(&[b"PROXY", b" TCP4"]).is_none(), "waits");
    }

    #[test]
    fn a_bad_header_is_refused_with_the_parsers_name() {
        let Some(Err(failure)) = steps(&[b"\x16\x03\x01\x02\x00"]) else {
            panic!("refused");
        };
        assert_eq!(failure.reason(), "proxy_header_invalid");
        assert!(
            failure.detail().starts_with("not_proxy_protocol"),
            "{}",
            failure.detail()
        );
        let Some(Err(failure)) = steps(&[b"PROXY TCP4 1.2.3.4", b" 5.6.7.8 1 2\n"]) else {
            panic!("refused");
        };
        assert!(
            failure.detail().starts_with("bad_v1_line_end"),
            "{}",
            failure.detail()
        );
    }
}
