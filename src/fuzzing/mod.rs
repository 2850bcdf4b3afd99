//! Invariants of the sans-IO parsers, as executable checks.
//!
//! Owns the properties the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) assert, so that the
//! same checks replay saved crash inputs as ordinary unit tests. Each check panics when an
//! invariant breaks; none does I/O.
//!
//! The invariants: never a panic on any input; a message is never read two ways (parsing a
//! whole buffer and parsing any prefix of it agree; a body fed whole or in pieces ends at the
//! same byte with the same result); a parsed head, re-serialized, parses back to the same
//! method, target, host, status and framing. The ClientHello's server name is the one rustls
//! reads, whatever the record boundaries and however the bytes arrive, and the bytes kept while
//! waiting for it stay bounded ([`check_client_hello`]). A configuration document is accepted
//! only with the invariants its module doc lists, refused with a one-line error that names the
//! key or the syntax error, and written back out it parses to the same value ([`check_config`]).
//! A PROXY protocol header is decided at one byte and keeps that answer however many bytes
//! follow, is never waited for past its longest form, and its addresses written out again read
//! back the same ([`check_proxy_protocol`]).
#![forbid(unsafe_code)]

mod client_hello;
mod config;
mod proxy_protocol;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr};

use crate::http1::{
    Advance, BodyDecoder, BodyError, BodyKind, Forwarding, Limits, Method, Parsed, RequestHead,
    ResponseHead, parse_request, parse_response_with, write_request_head, write_response_head,
};

pub use client_hello::check_client_hello;
pub use config::check_config;
pub use proxy_protocol::check_proxy_protocol;

/// Cut points checked for prefix agreement: all of them for short inputs, a spread otherwise.
fn cut_points(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 64).max(1);
    (0..len).step_by(step)
}

/// Request heads: prefixes agree with the whole, and a re-serialized head reads back the same.
pub fn check_request_head(data: &[u8]) {
    let limits = Limits::default();
    let mut head = RequestHead::new();
    let whole = parse_request(data, &limits, &mut head);
    let complete = matches!(whole, Ok(Parsed::Complete));
    let mut prefix = RequestHead::new();
    for cut in cut_points(data.len()) {
        if let Ok(Parsed::Complete) = parse_request(&data[..cut], &limits, &mut prefix) {
            assert!(
                complete,
                "a prefix of {cut} bytes is a complete head but the whole is not"
            );
            assert_eq!(prefix.head_len, head.head_len, "two readings of one head");
            assert_eq!(prefix.body, head.body, "two framings of one head");
        }
    }
    if !complete {
        return;
    }
    assert!(head.head_len <= data.len());
    let mut out = Vec::new();
    let fwd = Forwarding {
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        proto: "https",
        request_id: head
            .request_id(data)
            .map(|_| &b"0123456789abcdef0123456789abcdef"[..]),
        client_cert: crate::http1::ClientCertFields::Off,
    };
    write_request_head(data, &head, &fwd, &mut out);
    let mut again = RequestHead::new();
    let relaxed = Limits {
        max_head: usize::MAX / 2,
        max_request_line: usize::MAX / 2,
        max_headers: crate::http1::MAX_STACK_HEADERS,
        ..limits
    };
    match parse_request(&out, &relaxed, &mut again) {
        Ok(Parsed::Complete) => {}
        other => panic!(
            "re-serialized head does not parse: {other:?}\n{}",
            String::from_utf8_lossy(&out)
        ),
    }
    assert_eq!(
        again.head_len,
        out.len(),
        "re-serialized head has trailing bytes"
    );
    assert_eq!(again.method, head.method);
    assert_eq!(
        again.method_bytes(&out),
        head.method_bytes(data),
        "method changed"
    );
    assert_eq!(again.path(&out), head.path(data), "target changed");
    assert!(
        again.host(&out).eq_ignore_ascii_case(head.host(data)),
        "host changed"
    );
    assert_eq!(again.body, head.body, "framing changed");
    assert_eq!(again.upgrade, head.upgrade, "an upgrade gained or lost");
    // The body after the head decodes without panicking.
    let _ = run_body(head.body, &limits, &[&data[head.head_len..]]);
}

/// Response heads: prefixes agree with the whole, and a re-serialized head reads back the same.
pub fn check_response_head(data: &[u8]) {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let method = if selector & 1 == 0 {
        Method::Get
    } else {
        Method::Head
    };
    // The answer to a request that asked to switch protocols (a 101 is then a head too).
    let upgrade = selector & 4 != 0;
    let limits = Limits::default();
    let mut head = ResponseHead::new();
    let whole = parse_response_with(data, &limits, method, upgrade, &mut head);
    let complete = matches!(whole, Ok(Parsed::Complete));
    let mut prefix = ResponseHead::new();
    for cut in cut_points(data.len()) {
        let parsed = parse_response_with(&data[..cut], &limits, method, upgrade, &mut prefix);
        if let Ok(Parsed::Complete) = parsed {
            assert!(
                complete,
                "a prefix of {cut} bytes is a complete head but the whole is not"
            );
            assert_eq!(prefix.head_len, head.head_len, "two readings of one head");
            assert_eq!(prefix.body, head.body, "two framings of one head");
            assert_eq!(prefix.status, head.status);
        }
    }
    if !complete || (head.status < 200 && !head.switches_protocols()) {
        return;
    }
    let mut out = Vec::new();
    let keep = selector & 2 == 0;
    write_response_head(data, &head, keep, false, &mut out);
    let mut again = ResponseHead::new();
    let relaxed = Limits {
        max_head: usize::MAX / 2,
        max_request_line: usize::MAX / 2,
        max_headers: crate::http1::MAX_STACK_HEADERS,
        ..limits
    };
    // A 101 is relayed with its Upgrade fields: it reads back as a switch.
    match parse_response_with(&out, &relaxed, method, upgrade, &mut again) {
        Ok(Parsed::Complete) => {}
        other => panic!(
            "re-serialized head does not parse: {other:?}\n{}",
            String::from_utf8_lossy(&out)
        ),
    }
    assert_eq!(again.head_len, out.len());
    assert_eq!(again.status, head.status);
    assert_eq!(again.body, head.body, "framing changed");
    let _ = run_body(head.body, &limits, &[&data[head.head_len..]]);
}

/// What decoding a body produced: bytes consumed, whether it ended, and the payload.
type BodyOutcome = Result<(usize, bool, Vec<u8>), BodyError>;

fn run_body(kind: BodyKind, limits: &Limits, pieces: &[&[u8]]) -> BodyOutcome {
    let mut decoder = BodyDecoder::new(kind, limits);
    let mut consumed = 0;
    let mut payload = Vec::new();
    if decoder.is_done() {
        return Ok((0, true, payload));
    }
    for piece in pieces {
        let Advance { consumed: n, done } = decoder.decode(piece, &mut payload)?;
        assert!(n <= piece.len(), "consumed more than given");
        consumed += n;
        if done {
            assert!(decoder.is_done());
            return Ok((consumed, true, payload));
        }
        assert_eq!(n, piece.len(), "stopped early without ending the body");
    }
    Ok((consumed, false, payload))
}

/// Chunked bodies: whole, byte by byte, and split in two give the same result.
pub fn check_chunked(data: &[u8]) {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_body: 1 << 20,
        max_trailer: 1024,
        ..Limits::default()
    };
    let whole = run_body(BodyKind::Chunked, &limits, &[body]);
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    let bytewise = run_body(BodyKind::Chunked, &limits, &bytes);
    let at = usize::from(split) * body.len() / 255;
    let halves = run_body(BodyKind::Chunked, &limits, &[&body[..at], &body[at..]]);
    assert_eq!(whole, bytewise, "byte-by-byte reading differs");
    assert_eq!(whole, halves, "reading split at {at} differs");
    // `advance` (verbatim relay) ends at the same byte as `decode`.
    let mut decoder = BodyDecoder::new(BodyKind::Chunked, &limits);
    let relayed = decoder.advance(body).map(|a| (a.consumed, a.done));
    assert_eq!(relayed, whole.map(|(n, done, _)| (n, done)));
}

// ---------------------------------------------------------------------------------------------
// ClientHello server name
