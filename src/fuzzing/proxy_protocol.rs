//! The PROXY protocol header parser's invariants ([`check_proxy_protocol`]): it never panics,
//! answers the same way twice, never reads past its header or [`MAX_HEADER_LEN`], decides at
//! one byte and keeps that answer however many bytes follow, and the addresses it reads,
//! written out again in either version, read back the same.

use std::net::{IpAddr, SocketAddr};

use crate::proxy_protocol::{
    MAX_HEADER_LEN, Parsed, ProxyHeader, V1_MAX_LEN, V2_HEADER_LEN, parse,
};

use super::cut_points;

/// Every prefix up to this length is checked (every v1 line, every v2 fixed header and
/// address block); a spread of the longer ones.
const EVERY_PREFIX: usize = 128;

/// The PROXY protocol header (`proxy_protocol::parse`, read before the TLS ClientHello on a
/// listener that expects one). Input: the first bytes of a connection. Checks:
/// - parsing the same bytes twice gives the same answer; bytes past [`MAX_HEADER_LEN`] change
///   nothing;
/// - `Partial` only while fewer than [`MAX_HEADER_LEN`] bytes are in ([`V1_MAX_LEN`] for a v1
///   line), so what a connection holds while it waits is bounded;
/// - a complete header is at most the bytes given (a v1 line ends with its CRLF within
///   [`V1_MAX_LEN`] bytes, a v2 header has its 16 bytes), and a prefix of the bytes answers
///   `Partial` until one byte decides (the header's last, or the first that proves an error),
///   then exactly the whole answer: an error never turns into a wait or another error when more
///   bytes arrive;
/// - the addresses of a `Proxied` header, written as a v1 line and as a v2 header, parse back
///   to the same addresses, with nothing else read.
pub fn check_proxy_protocol(data: &[u8]) {
    let whole = parse(data);
    assert_eq!(parse(data), whole, "two readings of the same bytes");
    assert_eq!(
        parse(&data[..data.len().min(MAX_HEADER_LEN)]),
        whole,
        "bytes past the longest header change the answer"
    );
    let v1 = data.first() == Some(&b'P');
    let mut decides = None;
    match whole {
        Ok(Parsed::Partial) => {
            assert!(data.len() < MAX_HEADER_LEN, "waits past the longest header");
            assert!(
                !v1 || data.len() < V1_MAX_LEN,
                "waits past the longest line"
            );
        }
        Ok(Parsed::Complete { header_len, header }) => {
            assert!(header_len <= data.len(), "a header longer than the bytes");
            assert!(header_len <= MAX_HEADER_LEN);
            if v1 {
                assert!(header_len <= V1_MAX_LEN, "a v1 line of {header_len} bytes");
                assert!(
                    data[..header_len].ends_with(b"\r\n"),
                    "a v1 line without CRLF"
                );
            } else {
                assert!(
                    header_len >= V2_HEADER_LEN,
                    "a v2 header of {header_len} bytes"
                );
            }
            decides = Some(header_len);
            check_written_back(header);
        }
        Err(_) => {}
    }

    // Prefixes: `Partial` until the byte that decides, then the whole answer.
    let mut cuts: Vec<usize> = (0..=data.len().min(EVERY_PREFIX))
        .chain(cut_points(data.len()))
        .chain(decides.map(|n| n.saturating_sub(1)))
        .chain(decides)
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut decided_at = None;
    for cut in cuts {
        match parse(&data[..cut]) {
            Ok(Parsed::Partial) => assert!(
                decided_at.is_none(),
                "the first {cut} bytes wait, the first {decided_at:?} did not"
            ),
            part => {
                assert_eq!(part, whole, "the first {cut} bytes answer otherwise");
                decided_at.get_or_insert(cut);
            }
        }
    }
    if let Some(header_len) = decides {
        assert_eq!(
            decided_at,
            Some(header_len),
            "complete before its last byte"
        );
    }
}

/// A header's addresses written as a v1 line and as a v2 header read back the same.
fn check_written_back(header: ProxyHeader) {
    let ProxyHeader::Proxied {
        source,
        destination,
    } = header
    else {
        return;
    };
    for written in [v1_line(source, destination), v2_header(source, destination)] {
        let Some(written) = written else {
            panic!("{source} and {destination} are not of one family");
        };
        let mut more = written.clone();
        more.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(
            parse(&more),
            Ok(Parsed::Complete {
                header_len: written.len(),
                header,
            }),
            "{header:?} written as {:?} reads otherwise",
            String::from_utf8_lossy(&written)
        );
    }
}

/// The v1 line of a TCP connection between two addresses of one family.
fn v1_line(source: SocketAddr, destination: SocketAddr) -> Option<Vec<u8>> {
    let family = match (source.ip(), destination.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => "TCP4",
        (IpAddr::V6(_), IpAddr::V6(_)) => "TCP6",
        _ => return None,
    };
    let line = format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    );
    Some(line.into_bytes())
}

/// The v2 PROXY header of a TCP connection between two addresses of one family, with an
/// authority TLV.
fn v2_header(source: SocketAddr, destination: SocketAddr) -> Option<Vec<u8>> {
    let (family, mut block) = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (0x11, [s.octets(), d.octets()].concat()),
        (IpAddr::V6(s), IpAddr::V6(d)) => (0x21, [s.octets(), d.octets()].concat()),
        _ => return None,
    };
    block.extend_from_slice(&source.port().to_be_bytes());
    block.extend_from_slice(&destination.port().to_be_bytes());
    block.extend_from_slice(b"\x02\x00\x06a.test");
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21".to_vec();
    header.push(family);
    header.extend_from_slice(&u16::try_from(block.len()).ok()?.to_be_bytes());
    header.extend_from_slice(&block);
    Some(header)
}
