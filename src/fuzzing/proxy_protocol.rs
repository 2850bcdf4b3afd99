//! The PROXY protocol header parser's invariants ([`check_proxy_protocol`]): it never panics,
//! answers the same way twice, never reads past its header or [`MAX_HEADER_LEN`], decides at
//! one byte and keeps that answer however many bytes follow, and the addresses it reads,
//! written out again in either version (`proxy_protocol::write`), read back the same.

use crate::proxy_protocol::{
    MAX_HEADER_LEN, Parsed, ProxyHeader, V1_MAX_LEN, V2_HEADER_LEN, Version, parse, write,
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

/// A header's addresses written as a v1 line and as a v2 header (with and without a TLV after
/// the addresses) read back the same.
fn check_written_back(header: ProxyHeader) {
    let ProxyHeader::Proxied {
        source,
        destination,
    } = header
    else {
        return;
    };
    let mut v1 = Vec::new();
    write(Version::V1, &header, &mut v1);
    let mut v2 = Vec::new();
    write(Version::V2, &header, &mut v2);
    for written in [v1, v2.clone(), with_authority(v2)] {
        let mut more = written.clone();
        more.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(
            parse(&more),
            Ok(Parsed::Complete {
                header_len: written.len(),
                header,
            }),
            "{source} to {destination} written as {:?} reads otherwise",
            String::from_utf8_lossy(&written)
        );
    }
}

/// A v2 header with an authority TLV appended to its block.
fn with_authority(mut header: Vec<u8>) -> Vec<u8> {
    const TLV: &[u8] = b"\x02\x00\x06a.test";
    header.extend_from_slice(TLV);
    let block = u16::from_be_bytes([header[14], header[15]]) + TLV.len() as u16;
    header[14..16].copy_from_slice(&block.to_be_bytes());
    header
}
