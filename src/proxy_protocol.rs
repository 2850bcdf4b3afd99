//! The PROXY protocol header (HAProxy's `doc/proxy-protocol.txt`, versions 1 and 2) at the start
//! of a connection: bytes in, the client's addresses (or "keep the connection's own") out.
//!
//! Owns reading the header (and writing one, and deciding who may send one): no socket, no
//! clock. The caller (the connection path, on a listener configured to expect the header: the
//! spec forbids guessing whether it is there) calls [`parse`] with every byte received so far, from the first, until
//! it answers [`Parsed::Complete`] or an error; the bytes after `header_len` belong to the
//! protocol that follows (the TLS ClientHello). A missing or malformed header closes the
//! connection: every error is final.
//!
//! Invariants:
//! - [`parse`] never panics and never allocates; it reads at most [`MAX_HEADER_LEN`] bytes.
//! - It answers [`Parsed::Partial`] only while the bytes can still start a valid header, so a
//!   caller buffers at most [`MAX_HEADER_LEN`] bytes: a version 1 line is at most
//!   [`V1_MAX_LEN`] bytes with its CRLF (the spec's maximum); a version 2 header is 16 bytes
//!   and a block of addresses and TLVs of at most [`V2_MAX_BLOCK`] bytes. That cap is ours, not
//!   the spec's (whose length field allows 65535): it leaves room for the addresses and the
//!   TLVs a proxy sends in practice (ALPN, authority, unique id of at most 128 bytes, SSL
//!   details), and a longer block is refused ([`ProxyHeaderError::TooLong`]), never waited for.
//! - Bytes that are not a PROXY header are refused as soon as the first byte that proves it
//!   has arrived (a TLS record's 0x16, the `G` of `GET`), and so is every other malformed
//!   header: the answer for a buffer is the answer for any longer buffer with the same start,
//!   or [`Parsed::Partial`] before the byte that decides. `header_len` is exact: nothing after
//!   the header is read.
//!
//! What each form gives:
//! - v1 `TCP4`/`TCP6`, v2 PROXY over TCP (`\x11`, `\x21`): [`ProxyHeader::Proxied`] with the
//!   source and destination as sent (an IPv4-mapped IPv6 address stays IPv6).
//! - v1 `UNKNOWN` (the rest of its line is ignored, as the spec says), v2 LOCAL (its family
//!   byte and block are ignored, as the spec says, and skipped by their length), v2 PROXY with
//!   the family or the protocol UNSPEC (address information ignored, as the spec recommends),
//!   v2 PROXY over AF_UNIX stream (no IP address to use): [`ProxyHeader::Local`], the
//!   connection's own addresses.
//! - v2 PROXY over a datagram protocol (`\x12`, `\x22`, `\x32`): refused, a stream listener
//!   cannot carry one.
//!
//! Version 1 is read strictly: `PROXY`, single spaces, `TCP4`, `TCP6` or `UNKNOWN`, two
//! addresses Rust's own parsers accept for the family (so no leading zeros in IPv4, no zone in
//! IPv6), two decimal ports without sign or leading zero, then CRLF; a bare CR or LF is
//! refused. Version 2's TLVs (after the addresses of a TCP or UNIX header) are length-checked
//! and skipped, not interpreted; a CRC32C TLV is not verified.
//!
//! Also here, as plain values: who may send a header ([`Network`], [`Inbound`]: a listener's
//! trusted sources and header timeout) and writing one ([`write`] in a [`Version`]: the header
//! ringway sends to a backend that wants it, and the LOCAL form of its health checks). The
//! connection path that reads the header and feeds what follows it to TLS is
//! `proxy::session`'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

mod network;
mod write;

pub use network::{Inbound, Network, NetworkError};
pub use write::{MAX_WRITTEN, UnknownVersion, Version, write};

/// Longest version 1 line, CRLF included: `PROXY UNKNOWN` with two full IPv6 addresses and
/// ports (the spec's worst case, 107 bytes).
pub const V1_MAX_LEN: usize = 107;
/// The fixed part of a version 2 header: signature, version and command, family and protocol,
/// length of the block that follows.
pub const V2_HEADER_LEN: usize = 16;
/// Longest version 2 block (addresses and TLVs) read: ringway's cap, not the spec's.
pub const V2_MAX_BLOCK: usize = 1024;
/// Most bytes [`parse`] reads or waits for.
pub const MAX_HEADER_LEN: usize = V2_HEADER_LEN + V2_MAX_BLOCK;

/// The bytes a version 1 header starts with.
const V1_SIGNATURE: &[u8; 5] = b"PROXY";
/// The bytes a version 2 header starts with.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 2 command LOCAL (low nibble of the 13th byte).
const LOCAL: u8 = 0x0;
/// Version 2 command PROXY.
const PROXY: u8 = 0x1;
/// Version 2 address families (high nibble of the 14th byte; 0 is AF_UNSPEC).
const AF_INET: u8 = 0x1;
const AF_INET6: u8 = 0x2;
const AF_UNIX: u8 = 0x3;
/// Version 2 transport protocols (low nibble of the 14th byte; 0 is UNSPEC).
const STREAM: u8 = 0x1;
const DGRAM: u8 = 0x2;
/// Address block lengths of TCP over IPv4 and IPv6 and of UNIX sockets.
const INET_BLOCK: usize = 2 * 4 + 2 * 2;
const INET6_BLOCK: usize = 2 * 16 + 2 * 2;
const UNIX_BLOCK: usize = 2 * 108;
/// A TLV's type and length.
const TLV_HEADER: usize = 3;
/// Longest textual address read in a version 1 field: IPv4 dotted quad, IPv6 (with an embedded
/// IPv4 address, the longest form Rust's parser accepts).
const V1_MAX_IPV4: usize = 15;
const V1_MAX_IPV6: usize = 45;
/// Longest port: `65535`.
const V1_MAX_PORT: usize = 5;

/// What the first bytes of a connection hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A valid header may still follow: call again with more bytes (the buffer is shorter than
    /// [`MAX_HEADER_LEN`]).
    Partial,
    /// The header is the first `header_len` bytes; what follows is the next protocol's.
    Complete {
        header_len: usize,
        header: ProxyHeader,
    },
}

/// What a complete header says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// Relayed: the client's address and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// Keep the connection's own addresses: v1 `UNKNOWN`, v2 LOCAL (a proxy's health check),
    /// v2 PROXY with an unspecified family or protocol, or over AF_UNIX.
    Local,
}

/// Why the bytes are not a header ringway accepts. Every one closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("not a PROXY protocol header (neither the v1 nor the v2 signature)")]
    NotProxyProtocol,
    #[error("malformed v1 line: a missing, empty or extra field, or not single spaces")]
    BadV1,
    #[error("v1 protocol is not TCP4, TCP6 or UNKNOWN")]
    BadV1Protocol,
    #[error("v1 address is not one of the announced family")]
    BadV1Address,
    #[error("v1 port is not a decimal number in 0..=65535 without a leading zero")]
    BadV1Port,
    #[error("v1 line ends with a bare CR or LF, not CRLF")]
    BadV1LineEnd,
    #[error("header longer than read: a v1 line of 107 bytes, a v2 block of 1024 bytes")]
    TooLong,
    #[error("v2 version is not 2")]
    BadV2Version,
    #[error("v2 command is neither LOCAL nor PROXY")]
    BadV2Command,
    #[error("v2 address family or transport protocol is not assigned")]
    BadV2Family,
    #[error("v2 header for a datagram protocol on a stream connection")]
    V2Datagram,
    #[error("v2 block shorter than the addresses of its family")]
    V2ShortAddresses,
    #[error("v2 TLV runs past the end of the header")]
    BadV2Tlv,
}

impl ProxyHeaderError {
    /// A short snake_case name for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NotProxyProtocol => "not_proxy_protocol",
            Self::BadV1 => "bad_v1",
            Self::BadV1Protocol => "bad_v1_protocol",
            Self::BadV1Address => "bad_v1_address",
            Self::BadV1Port => "bad_v1_port",
            Self::BadV1LineEnd => "bad_v1_line_end",
            Self::TooLong => "too_long",
            Self::BadV2Version => "bad_v2_version",
            Self::BadV2Command => "bad_v2_command",
            Self::BadV2Family => "bad_v2_family",
            Self::V2Datagram => "v2_datagram",
            Self::V2ShortAddresses => "v2_short_addresses",
            Self::BadV2Tlv => "bad_v2_tlv",
        }
    }
}

/// Reads the PROXY header at the start of a connection (`buf`: every byte received so far, from
/// the first).
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    match buf.first() {
        None => Ok(Parsed::Partial),
        Some(&b'P') => parse_v1(buf),
        Some(&b'\r') => parse_v2(buf),
        Some(_) => Err(ProxyHeaderError::NotProxyProtocol),
    }
}

// ---------------------------------------------------------------------------------------------
// Version 1: one line of text

/// The protocol word of a v1 line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum V1Protocol {
    Tcp4,
    Tcp6,
    Unknown,
}

/// Where the v1 scanner is: each byte moves it on or fails, so the answer for a prefix never
/// contradicts the answer for the whole.
#[derive(Clone, Copy)]
enum V1State {
    /// In the signature `PROXY` (index of the next byte), then its space.
    Signature(usize),
    /// In the protocol word, which starts at the given offset.
    Protocol(usize),
    /// In field `index` (0 source, 1 destination, 2 source port, 3 destination port) of a TCP
    /// line, which starts at the given offset.
    Field { tcp6: bool, index: u8, start: usize },
    /// After `UNKNOWN` and a space: ignored up to the CRLF.
    Ignored,
    /// After the CR: the LF must follow.
    Lf,
}

/// The addresses of a TCP line, as their fields end.
#[derive(Default)]
struct V1Fields {
    source: Option<IpAddr>,
    destination: Option<IpAddr>,
    source_port: u16,
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    use ProxyHeaderError::*;
    let line = &buf[..buf.len().min(V1_MAX_LEN)];
    let mut state = V1State::Signature(0);
    let mut fields = V1Fields::default();
    let mut header = ProxyHeader::Local;
    for (at, &byte) in line.iter().enumerate() {
        // A LF anywhere but after the CR ends the line without it.
        if byte == b'\n' && !matches!(state, V1State::Lf) {
            return Err(BadV1LineEnd);
        }
        state = match state {
            V1State::Signature(i) => match V1_SIGNATURE.get(i) {
                Some(&expected) if byte == expected => V1State::Signature(i + 1),
                Some(_) => return Err(NotProxyProtocol),
                None if byte == b' ' => V1State::Protocol(at + 1),
                None => return Err(BadV1),
            },
            V1State::Protocol(start) => {
                let word = &line[start..at];
                match byte {
                    b' ' | b'\r' => {
                        let protocol = match word {
                            b"TCP4" => V1Protocol::Tcp4,
                            b"TCP6" => V1Protocol::Tcp6,
                            b"UNKNOWN" => V1Protocol::Unknown,
                            _ if word.is_empty() => return Err(BadV1),
                            _ => return Err(BadV1Protocol),
                        };
                        match (protocol, byte) {
                            (V1Protocol::Unknown, b' ') => V1State::Ignored,
                            (V1Protocol::Unknown, _) => V1State::Lf,
                            // "TCP4\r": the fields are missing.
                            (_, b'\r') => return Err(BadV1),
                            (_, _) => V1State::Field {
                                tcp6: protocol == V1Protocol::Tcp6,
                                index: 0,
                                start: at + 1,
                            },
                        }
                    }
                    _ => {
                        let word = &line[start..=at];
                        if [&b"TCP4"[..], b"TCP6", b"UNKNOWN"]
                            .iter()
                            .any(|known| known.starts_with(word))
                        {
                            V1State::Protocol(start)
                        } else {
                            return Err(BadV1Protocol);
                        }
                    }
                }
            }
            V1State::Field { tcp6, index, start } => {
                let field = &line[start..at];
                match byte {
                    b' ' | b'\r' => {
                        if field.is_empty() {
                            return Err(BadV1);
                        }
                        match index {
                            0 => fields.source = Some(v1_address(field, tcp6)?),
                            1 => fields.destination = Some(v1_address(field, tcp6)?),
                            2 => fields.source_port = v1_port(field)?,
                            _ => {}
                        }
                        match (index, byte) {
                            (0..=2, b' ') => V1State::Field {
                                tcp6,
                                index: index + 1,
                                start: at + 1,
                            },
                            (3, b'\r') => {
                                let destination_port = v1_port(field)?;
                                let (Some(source), Some(destination)) =
                                    (fields.source, fields.destination)
                                else {
                                    return Err(BadV1);
                                };
                                header = ProxyHeader::Proxied {
                                    source: SocketAddr::new(source, fields.source_port),
                                    destination: SocketAddr::new(destination, destination_port),
                                };
                                V1State::Lf
                            }
                            // A missing field ("\r" early) or an extra one (" " after the last).
                            _ => return Err(BadV1),
                        }
                    }
                    _ if index < 2 => {
                        let (valid, longest) = if tcp6 {
                            (
                                byte.is_ascii_hexdigit() || byte == b':' || byte == b'.',
                                V1_MAX_IPV6,
                            )
                        } else {
                            (byte.is_ascii_digit() || byte == b'.', V1_MAX_IPV4)
                        };
                        if !valid || field.len() >= longest {
                            return Err(BadV1Address);
                        }
                        state
                    }
                    _ => {
                        // No sign, no leading zero ("0" alone is a port), at most 5 digits.
                        if !byte.is_ascii_digit() || field == b"0" || field.len() >= V1_MAX_PORT {
                            return Err(BadV1Port);
                        }
                        state
                    }
                }
            }
            V1State::Ignored => match byte {
                b'\r' => V1State::Lf,
                _ => V1State::Ignored,
            },
            V1State::Lf => {
                if byte != b'\n' {
                    return Err(BadV1LineEnd);
                }
                return Ok(Parsed::Complete {
                    header_len: at + 1,
                    header,
                });
            }
        };
    }
    if buf.len() >= V1_MAX_LEN {
        Err(TooLong)
    } else {
        Ok(Parsed::Partial)
    }
}

/// A v1 address field of the announced family (its bytes are ASCII: checked as they came).
fn v1_address(field: &[u8], tcp6: bool) -> Result<IpAddr, ProxyHeaderError> {
    let text = std::str::from_utf8(field).map_err(|_| ProxyHeaderError::BadV1Address)?;
    let address = if tcp6 {
        text.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().map(IpAddr::V4)
    };
    address.map_err(|_| ProxyHeaderError::BadV1Address)
}

/// A v1 port field: decimal digits (checked as they came), at most 65535.
fn v1_port(field: &[u8]) -> Result<u16, ProxyHeaderError> {
    let mut port: u32 = 0;
    for &digit in field {
        if !digit.is_ascii_digit() {
            return Err(ProxyHeaderError::BadV1Port);
        }
        port = port * 10 + u32::from(digit - b'0');
        if port > u32::from(u16::MAX) {
            return Err(ProxyHeaderError::BadV1Port);
        }
    }
    u16::try_from(port).map_err(|_| ProxyHeaderError::BadV1Port)
}

// ---------------------------------------------------------------------------------------------
// Version 2: binary

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    use ProxyHeaderError::*;
    let signed = buf.len().min(V2_SIGNATURE.len());
    if buf[..signed] != V2_SIGNATURE[..signed] {
        return Err(NotProxyProtocol);
    }
    let Some(&version_command) = buf.get(12) else {
        return Ok(Parsed::Partial);
    };
    if version_command >> 4 != 2 {
        return Err(BadV2Version);
    }
    let command = version_command & 0x0f;
    if command != LOCAL && command != PROXY {
        return Err(BadV2Command);
    }
    let Some(&family_protocol) = buf.get(13) else {
        return Ok(Parsed::Partial);
    };
    // LOCAL: the family is ignored (spec §2.2), whatever it says.
    let (family, protocol) = (family_protocol >> 4, family_protocol & 0x0f);
    if command == PROXY {
        if family > AF_UNIX || protocol > DGRAM {
            return Err(BadV2Family);
        }
        if protocol == DGRAM {
            return Err(V2Datagram);
        }
    }
    let Some(length) = buf.get(14..16) else {
        return Ok(Parsed::Partial);
    };
    let block_len = usize::from(u16::from_be_bytes([length[0], length[1]]));
    if block_len > V2_MAX_BLOCK {
        return Err(TooLong);
    }
    // The addresses this header carries, when it is read: PROXY over a stream of a known family.
    let addresses = match (command, family, protocol) {
        (PROXY, AF_INET, STREAM) => INET_BLOCK,
        (PROXY, AF_INET6, STREAM) => INET6_BLOCK,
        (PROXY, AF_UNIX, STREAM) => UNIX_BLOCK,
        _ => 0,
    };
    if block_len < addresses {
        return Err(V2ShortAddresses);
    }
    let header_len = V2_HEADER_LEN + block_len;
    let Some(block) = buf.get(V2_HEADER_LEN..header_len) else {
        return Ok(Parsed::Partial);
    };
    let header = match (command, family, protocol) {
        (PROXY, AF_INET | AF_INET6 | AF_UNIX, STREAM) => {
            let Some((addresses, tlvs)) = block.split_at_checked(addresses) else {
                return Err(V2ShortAddresses);
            };
            check_tlvs(tlvs)?;
            v2_addresses(family, addresses)
        }
        // LOCAL, or PROXY with the family or protocol UNSPEC: the block is skipped whole.
        _ => ProxyHeader::Local,
    };
    Ok(Parsed::Complete { header_len, header })
}

/// The addresses of a v2 PROXY header over TCP (`block`: exactly the family's address bytes).
fn v2_addresses(family: u8, block: &[u8]) -> ProxyHeader {
    let port = |at: usize| match block.get(at..at + 2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    };
    match family {
        AF_INET => {
            let ip = |at: usize| match block.get(at..at + 4) {
                Some(&[a, b, c, d]) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }
        AF_INET6 => {
            let ip = |at: usize| {
                let mut octets = [0; 16];
                if let Some(bytes) = block.get(at..at + 16) {
                    octets.copy_from_slice(bytes);
                }
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        // AF_UNIX: no IP address to use.
        _ => ProxyHeader::Local,
    }
}

/// The TLVs after the addresses: each a type, a 16-bit length and that many bytes, ending
/// exactly at the end of the block. Skipped, not interpreted.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), ProxyHeaderError> {
    while !tlvs.is_empty() {
        let Some(&[_, hi, lo]) = tlvs.get(..TLV_HEADER) else {
            return Err(ProxyHeaderError::BadV2Tlv);
        };
        let end = TLV_HEADER + usize::from(u16::from_be_bytes([hi, lo]));
        tlvs = tlvs.get(end..).ok_or(ProxyHeaderError::BadV2Tlv)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
