//! Every valid form, every malformed one by name, and where each is decided.

use super::*;
use ProxyHeaderError::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

fn proxied(source: &str, destination: &str) -> ProxyHeader {
    ProxyHeader::Proxied {
        source: addr(source),
        destination: addr(destination),
    }
}

/// What follows a header on a real connection: a TLS record's first bytes, or a request.
const AFTER: [&[u8]; 3] = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"GET / HTTP/1.1\r\n",
    b"\r\n",
];

/// `header` is a whole header that reads as `expected`: every shorter prefix is `Partial`, and
/// the bytes that follow it are not read (`header_len` is its length).
fn assert_complete(header: &[u8], expected: ProxyHeader) {
    let shown = String::from_utf8_lossy(header);
    for cut in 0..header.len() {
        assert_eq!(
            parse(&header[..cut]),
            Ok(Parsed::Partial),
            "{cut} bytes of {shown:?}"
        );
    }
    let complete = Ok(Parsed::Complete {
        header_len: header.len(),
        header: expected,
    });
    assert_eq!(parse(header), complete, "{shown:?}");
    for after in AFTER {
        let mut more = header.to_vec();
        more.extend_from_slice(after);
        assert_eq!(parse(&more), complete, "{shown:?} and {after:?}");
    }
}

/// `bytes` is refused with `error` from its first `decided` bytes on, and is `Partial` before.
fn assert_refused_at(bytes: &[u8], error: ProxyHeaderError, decided: usize) {
    let shown = String::from_utf8_lossy(bytes);
    assert!(
        decided <= bytes.len(),
        "{shown:?} has {} bytes",
        bytes.len()
    );
    for cut in 0..decided {
        assert_eq!(
            parse(&bytes[..cut]),
            Ok(Parsed::Partial),
            "{cut} bytes of {shown:?}"
        );
    }
    for cut in decided..=bytes.len() {
        assert_eq!(parse(&bytes[..cut]), Err(error), "{cut} bytes of {shown:?}");
    }
}

/// `bytes` is refused with `error` at the byte `marker` (its first occurrence) ends.
fn assert_refused_after(bytes: &[u8], error: ProxyHeaderError, marker: &[u8]) {
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("marker in the bytes");
    assert_refused_at(bytes, error, at + marker.len());
}

// ---------------------------------------------------------------------------------------------
// Version 1

#[test]
fn v1_tcp4() {
    assert_complete(
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        proxied("192.168.0.1:56324", "192.168.0.11:443"),
    );
    assert_complete(
        b"PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n",
        proxied("0.0.0.0:0", "10.0.0.1:0"),
    );
    // The spec's longest TCP4 line.
    let longest = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(longest.len(), 56);
    assert_complete(
        longest,
        proxied("255.255.255.255:65535", "255.255.255.255:65535"),
    );
}

#[test]
fn v1_tcp6() {
    assert_complete(
        b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 8443\r\n",
        proxied("[2001:db8::1]:40000", "[2001:db8::2]:8443"),
    );
    assert_complete(b"PROXY TCP6 :: ::1 1 2\r\n", proxied("[::]:1", "[::1]:2"));
    assert_complete(
        b"PROXY TCP6 FE80::ABCD 2001:DB8:0:0:0:0:0:2 1 2\r\n",
        proxied("[fe80::abcd]:1", "[2001:db8::2]:2"),
    );
    // An IPv4-mapped address is an IPv6 address, and stays one.
    assert_complete(
        b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n",
        proxied("[::ffff:192.0.2.1]:1", "[::1]:2"),
    );
    // The spec's longest TCP6 line.
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let longest = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
    assert_eq!(longest.len(), 104);
    assert_complete(
        longest.as_bytes(),
        proxied(&format!("[{full}]:65535"), &format!("[{full}]:65535")),
    );
}

#[test]
fn v1_unknown_keeps_the_connections_addresses() {
    let short = b"PROXY UNKNOWN\r\n";
    assert_eq!(short.len(), 15);
    assert_complete(short, ProxyHeader::Local);
    // The rest of the line is ignored, whatever it holds.
    assert_complete(
        b"PROXY UNKNOWN 192.168.0.1 192.168.0.11 56324 443\r\n",
        ProxyHeader::Local,
    );
    assert_complete(b"PROXY UNKNOWN \x00\xff junk\tx\r\n", ProxyHeader::Local);
    assert_complete(b"PROXY UNKNOWN \r\n", ProxyHeader::Local);
    // The spec's worst case: 107 bytes.
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let longest = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
    assert_eq!(longest.len(), V1_MAX_LEN);
    assert_complete(longest.as_bytes(), ProxyHeader::Local);
}

#[test]
fn v1_longer_than_107_bytes_is_refused_at_the_107th() {
    // An UNKNOWN line whose CRLF would end at byte 108, then at 109.
    for filler in [92, 93] {
        let line = format!("PROXY UNKNOWN {}\r\n", "x".repeat(filler));
        assert_eq!(line.len(), 16 + filler);
        assert_refused_at(line.as_bytes(), TooLong, V1_MAX_LEN);
    }
    // 106 bytes without a CRLF may still end at 107: waited for.
    let waiting = format!("PROXY UNKNOWN {}", "x".repeat(V1_MAX_LEN - 15));
    assert_eq!(waiting.len(), V1_MAX_LEN - 1);
    assert_eq!(parse(waiting.as_bytes()), Ok(Parsed::Partial));
    // The CR as the 107th byte: the LF would be the 108th.
    let cr_last = format!("{waiting}\r\n");
    assert_refused_at(cr_last.as_bytes(), TooLong, V1_MAX_LEN);
    // Valid addresses in their longest form Rust reads (an embedded IPv4 address) do not fit.
    let long = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    let line = format!("PROXY TCP6 {long} {long} 65535 65535\r\n");
    assert!(line.len() > V1_MAX_LEN);
    assert_refused_at(line.as_bytes(), TooLong, V1_MAX_LEN);
    // Neither does an endless line, nor one of spaces.
    assert_refused_at(&[b'P'; 200][..], NotProxyProtocol, 2);
    let mut spaces = b"PROXY UNKNOWN".to_vec();
    spaces.extend_from_slice(&[b' '; 200]);
    assert_refused_at(&spaces, TooLong, V1_MAX_LEN);
}

#[test]
fn v1_syntax_errors_are_bad_v1() {
    assert_refused_after(b"PROXY\r\n", BadV1, b"PROXY\r");
    assert_refused_after(b"PROXY\tTCP4", BadV1, b"\t");
    assert_refused_after(b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", BadV1, b"  ");
    assert_refused_after(b"PROXY  UNKNOWN\r\n", BadV1, b"  ");
    assert_refused_after(b"PROXY \r\n", BadV1, b"\r");
    // Missing fields.
    assert_refused_after(b"PROXY TCP4\r\n", BadV1, b"\r");
    assert_refused_after(b"PROXY TCP4 1.2.3.4\r\n", BadV1, b"\r");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", BadV1, b"\r");
    // An empty field (two spaces), a trailing space, an extra field.
    assert_refused_after(b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", BadV1, b"  ");
    assert_refused_after(b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", BadV1, b"  ");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", BadV1, b"  ");
    assert_refused_after(b"PROXY TCP6 ::1 ::2 1 2 \r\n", BadV1, b"1 2 ");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", BadV1, b"2 ");
}

#[test]
fn v1_protocol_other_than_tcp4_tcp6_unknown_is_bad_v1_protocol() {
    assert_refused_after(
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        BadV1Protocol,
        b"TCP5",
    );
    assert_refused_after(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", BadV1Protocol, b"UD");
    assert_refused_after(b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", BadV1Protocol, b"t");
    assert_refused_after(
        b"PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n",
        BadV1Protocol,
        b"TCP44",
    );
    assert_refused_after(b"PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", BadV1Protocol, b"TCP ");
    assert_refused_after(b"PROXY UNKNOWNX\r\n", BadV1Protocol, b"NX");
    assert_refused_after(b"PROXY UNKNOW\r\n", BadV1Protocol, b"\r");
}

#[test]
fn v1_address_not_of_the_family_is_bad_v1_address() {
    // Each is refused where the field ends (its space), or at the first byte no address of the
    // family may hold.
    let at_the_space: [&[u8]; 8] = [
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", // leading zero: Rust refuses it (octal?)
        b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", // an IPv4 address on a TCP6 line
        b"PROXY TCP6 1::2::3 ::1 1 2\r\n",
        b"PROXY TCP6 12345::1 ::1 1 2\r\n",
    ];
    for line in at_the_space {
        let space = line[11..].iter().position(|&b| b == b' ').expect("space") + 11;
        assert_refused_at(line, BadV1Address, space + 1);
    }
    // The destination, checked the same way.
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n", BadV1Address, b"5.6.7 ");
    assert_refused_after(b"PROXY TCP6 ::1 ::1:: 1 2\r\n", BadV1Address, b"::1:: ");
    // Refused at the byte.
    assert_refused_after(b"PROXY TCP4 ::1 ::1 1 2\r\n", BadV1Address, b"TCP4 :");
    assert_refused_after(
        b"PROXY TCP4 0x7f.0.0.1 1.1.1.1 1 2\r\n",
        BadV1Address,
        b"0x",
    );
    assert_refused_after(b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", BadV1Address, b"%");
    assert_refused_after(b"PROXY TCP6 [::1] ::1 1 2\r\n", BadV1Address, b"[");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 g 1 2\r\n", BadV1Address, b"g");
    // Longer than any address of the family.
    assert_refused_after(
        b"PROXY TCP4 1111.111.111.111 1.1.1.1 1 2\r\n",
        BadV1Address,
        b"1111.111.111.111",
    );
}

#[test]
fn v1_port_not_in_0_to_65535_without_leading_zero_is_bad_v1_port() {
    assert_refused_after(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        BadV1Port,
        b"65536 ",
    );
    assert_refused_after(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        BadV1Port,
        b"99999\r",
    );
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", BadV1Port, b" 01");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n", BadV1Port, b" 00");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 0443\r\n", BadV1Port, b" 04");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", BadV1Port, b"+");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", BadV1Port, b"-");
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 1a 2\r\n", BadV1Port, b"1a");
    assert_refused_after(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n",
        BadV1Port,
        b"123456",
    );
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n", BadV1Port, b"2x");
}

#[test]
fn v1_bare_cr_or_lf_is_bad_v1_line_end() {
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", BadV1LineEnd, b"\n");
    assert_refused_after(
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
        BadV1LineEnd,
        b"\r\r",
    );
    assert_refused_after(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET", BadV1LineEnd, b"\rG");
    assert_refused_after(b"PROXY TCP4 1.2.3.4\n", BadV1LineEnd, b"\n");
    assert_refused_after(b"PROXY UNKNOWN\n", BadV1LineEnd, b"\n");
    assert_refused_after(b"PROXY UNKNOWN\r\r\n", BadV1LineEnd, b"\r\r");
    assert_refused_after(b"PROXY UNKNOWN a\nb\r\n", BadV1LineEnd, b"\n");
    assert_refused_after(b"PROXY UNKNOWN a\rb\r\n", BadV1LineEnd, b"\rb");
    assert_refused_after(b"PROXY\n", BadV1LineEnd, b"\n");
}

// ---------------------------------------------------------------------------------------------
// Not a PROXY header at all

#[test]
fn a_tls_or_http_first_byte_is_refused_at_once() {
    // A ClientHello, a request, an SSH banner: refused with their first byte.
    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    for bytes in [
        &hello[..],
        b"GET / HTTP/1.1\r\n",
        b"SSH-2.0-OpenSSH\r\n",
        b"\0",
    ] {
        assert_refused_at(bytes, NotProxyProtocol, 1);
    }
    // Starts like a header, then is not one: refused at the byte that differs.
    assert_refused_at(b"PUT / HTTP/1.1\r\n", NotProxyProtocol, 2);
    assert_refused_at(b"POST / HTTP/1.1\r\n", NotProxyProtocol, 2);
    assert_refused_at(b"PROXZ TCP4", NotProxyProtocol, 5);
    assert_refused_at(b"proxy TCP4", NotProxyProtocol, 1);
    assert_refused_at(b"\r\nGET / HTTP/1.1\r\n", NotProxyProtocol, 3);
    assert_refused_at(b"\r\n\r\n\0\r\nQUIX\n\x21\x11", NotProxyProtocol, 11);
    // Nothing yet: wait.
    assert_eq!(parse(b""), Ok(Parsed::Partial));
    assert_eq!(parse(b"P"), Ok(Parsed::Partial));
    assert_eq!(parse(b"\r"), Ok(Parsed::Partial));
}

// ---------------------------------------------------------------------------------------------
// Version 2

/// A v2 header: version 2 and `command`, `family_protocol`, the block.
fn v2(command: u8, family_protocol: u8, block: &[u8]) -> Vec<u8> {
    v2_with_length(command, family_protocol, block.len(), block)
}

fn v2_with_length(command: u8, family_protocol: u8, length: usize, block: &[u8]) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.push(0x20 | command);
    header.push(family_protocol);
    header.extend_from_slice(&u16::try_from(length).expect("length").to_be_bytes());
    header.extend_from_slice(block);
    header
}

fn inet(source: [u8; 4], destination: [u8; 4], ports: [u16; 2]) -> Vec<u8> {
    let mut block = source.to_vec();
    block.extend_from_slice(&destination);
    block.extend_from_slice(&ports[0].to_be_bytes());
    block.extend_from_slice(&ports[1].to_be_bytes());
    block
}

fn inet6(source: Ipv6Addr, destination: Ipv6Addr, ports: [u16; 2]) -> Vec<u8> {
    let mut block = source.octets().to_vec();
    block.extend_from_slice(&destination.octets());
    block.extend_from_slice(&ports[0].to_be_bytes());
    block.extend_from_slice(&ports[1].to_be_bytes());
    block
}

fn tlv(typ: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![typ];
    out.extend_from_slice(&u16::try_from(value.len()).expect("tlv").to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// A few TLVs a proxy sends: ALPN, authority, an empty NOOP, a unique id, SSL with a version.
fn some_tlvs() -> Vec<u8> {
    let mut out = tlv(0x01, b"http/1.1");
    out.extend(tlv(0x02, b"www.example.com"));
    out.extend(tlv(0x04, b""));
    out.extend(tlv(0x05, &[0xab; 128]));
    let mut ssl = vec![0x01, 0, 0, 0, 0];
    ssl.extend(tlv(0x21, b"TLSv1.3"));
    out.extend(tlv(0x20, &ssl));
    out
}

const INET_STREAM: u8 = 0x11;
const INET6_STREAM: u8 = 0x21;
const UNIX_STREAM: u8 = 0x31;

#[test]
fn v2_proxy_over_tcp4() {
    let block = inet([192, 0, 2, 1], [198, 51, 100, 7], [56324, 443]);
    let expected = proxied("192.0.2.1:56324", "198.51.100.7:443");
    let header = v2(PROXY, INET_STREAM, &block);
    assert_eq!(header.len(), 28);
    assert_complete(&header, expected);
    let mut with_tlvs = block.clone();
    with_tlvs.extend(some_tlvs());
    assert_complete(&v2(PROXY, INET_STREAM, &with_tlvs), expected);
}

#[test]
fn v2_proxy_over_tcp6() {
    let (source, destination) = (
        "2001:db8::1".parse().expect("ip"),
        "2001:db8::2".parse().expect("ip"),
    );
    let block = inet6(source, destination, [1, 65535]);
    let expected = proxied("[2001:db8::1]:1", "[2001:db8::2]:65535");
    let header = v2(PROXY, INET6_STREAM, &block);
    assert_eq!(header.len(), 52);
    assert_complete(&header, expected);
    let mut with_tlvs = block.clone();
    with_tlvs.extend(some_tlvs());
    assert_complete(&v2(PROXY, INET6_STREAM, &with_tlvs), expected);
}

#[test]
fn v2_local_keeps_the_connections_addresses_and_skips_its_block() {
    assert_complete(&v2(LOCAL, 0x00, b""), ProxyHeader::Local);
    // Its family is ignored, and its block (addresses or not) skipped by its length.
    let block = inet([192, 0, 2, 1], [198, 51, 100, 7], [1, 2]);
    for family in [0x00, INET_STREAM, 0x12, INET6_STREAM, 0x55, 0xff] {
        assert_complete(&v2(LOCAL, family, &block), ProxyHeader::Local);
    }
    assert_complete(&v2(LOCAL, 0x11, &[0xff; 5]), ProxyHeader::Local);
}

#[test]
fn v2_proxy_without_an_ip_family_keeps_the_connections_addresses() {
    let block = inet([192, 0, 2, 1], [198, 51, 100, 7], [1, 2]);
    // AF_UNSPEC, or protocol UNSPEC: address information ignored, block skipped.
    for family in [0x00, 0x01, 0x10, 0x20, 0x30] {
        assert_complete(&v2(PROXY, family, b""), ProxyHeader::Local);
        assert_complete(&v2(PROXY, family, &block[..5]), ProxyHeader::Local);
    }
    // AF_UNIX stream: 216 bytes of addresses, then TLVs; no IP to use.
    let mut unix = vec![0; UNIX_BLOCK];
    unix[..9].copy_from_slice(b"/run/sock");
    assert_complete(&v2(PROXY, UNIX_STREAM, &unix), ProxyHeader::Local);
    unix.extend(some_tlvs());
    assert_complete(&v2(PROXY, UNIX_STREAM, &unix), ProxyHeader::Local);
}

#[test]
fn v2_version_other_than_2_is_bad_v2_version() {
    for version_command in [0x01, 0x11, 0x31, 0xf1, 0x00] {
        let mut header = v2(PROXY, INET_STREAM, &[0; 12]);
        header[12] = version_command;
        assert_refused_at(&header, BadV2Version, 13);
    }
}

#[test]
fn v2_command_other_than_local_or_proxy_is_bad_v2_command() {
    for command in [0x2, 0x3, 0xf] {
        assert_refused_at(&v2(command, INET_STREAM, &[0; 12]), BadV2Command, 13);
    }
}

#[test]
fn v2_unassigned_family_or_protocol_is_bad_v2_family() {
    for family in [0x41, 0x13, 0xf1, 0x1f, 0xff, 0x03, 0x40] {
        assert_refused_at(&v2(PROXY, family, &[0; 36]), BadV2Family, 14);
    }
}

#[test]
fn v2_datagram_is_refused_on_a_stream_connection() {
    for family in [0x12, 0x22, 0x32, 0x02] {
        assert_refused_at(&v2(PROXY, family, &[0; 36]), V2Datagram, 14);
    }
}

#[test]
fn v2_block_shorter_than_its_addresses_is_refused_at_the_length() {
    assert_refused_at(&v2(PROXY, INET_STREAM, &[0; 11]), V2ShortAddresses, 16);
    assert_refused_at(&v2(PROXY, INET6_STREAM, &[0; 35]), V2ShortAddresses, 16);
    assert_refused_at(&v2(PROXY, INET6_STREAM, &[0; 12]), V2ShortAddresses, 16);
    assert_refused_at(&v2(PROXY, UNIX_STREAM, &[0; 215]), V2ShortAddresses, 16);
    assert_refused_at(&v2(PROXY, INET_STREAM, b""), V2ShortAddresses, 16);
}

#[test]
fn v2_tlv_past_the_end_of_the_block_is_bad_v2_tlv() {
    let block = inet([192, 0, 2, 1], [198, 51, 100, 7], [1, 2]);
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // One or two bytes after the addresses: no whole TLV header.
    cases.push([&block[..], &[0x04][..]].concat());
    cases.push([&block[..], &[0x04, 0x00][..]].concat());
    // A value one byte longer than what is left; after a valid TLV too.
    let mut over = tlv(0x02, b"example");
    over.pop();
    cases.push([&block[..], &over[..]].concat());
    cases.push([&block[..], &some_tlvs()[..], &over[..]].concat());
    cases.push([&block[..], &[0x05, 0xff, 0xff][..]].concat());
    for tail in cases {
        let header = v2(PROXY, INET_STREAM, &tail);
        // Decided once the whole block is in, not before.
        let len = header.len();
        assert_refused_at(&header, BadV2Tlv, len);
    }
    let mut unix = vec![0; UNIX_BLOCK];
    unix.push(0x01);
    let header = v2(PROXY, UNIX_STREAM, &unix);
    let len = header.len();
    assert_refused_at(&header, BadV2Tlv, len);
}

#[test]
fn v2_block_over_1024_bytes_is_too_long_at_the_length() {
    // 1024 bytes of addresses and TLVs: read.
    let mut block = inet([192, 0, 2, 1], [198, 51, 100, 7], [1, 2]);
    block.extend(tlv(0x04, &vec![0; V2_MAX_BLOCK - block.len() - 3]));
    assert_eq!(block.len(), V2_MAX_BLOCK);
    let header = v2(PROXY, INET_STREAM, &block);
    assert_eq!(header.len(), MAX_HEADER_LEN);
    assert_complete(&header, proxied("192.0.2.1:1", "198.51.100.7:2"));
    assert_complete(&v2(LOCAL, 0, &block), ProxyHeader::Local);
    // 1025 bytes, or the spec's 65535: refused when the length arrives, not waited for.
    for length in [V2_MAX_BLOCK + 1, 0xffff] {
        let header = v2_with_length(PROXY, INET_STREAM, length, &block);
        assert_refused_at(&header, TooLong, 16);
        let header = v2_with_length(LOCAL, 0, length, &block);
        assert_refused_at(&header, TooLong, 16);
    }
}

#[test]
fn never_waits_past_the_longest_header() {
    // Any bytes: `Partial` only under MAX_HEADER_LEN, a v1 line only under V1_MAX_LEN.
    let mut waiting = v2_with_length(LOCAL, 0, V2_MAX_BLOCK, b"");
    waiting.resize(MAX_HEADER_LEN - 1, 0);
    assert_eq!(parse(&waiting), Ok(Parsed::Partial));
    waiting.push(0);
    assert!(matches!(parse(&waiting), Ok(Parsed::Complete { .. })));
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX_LEN - 1, b'x');
    assert_eq!(parse(&line), Ok(Parsed::Partial));
    line.push(b'x');
    assert_eq!(parse(&line), Err(TooLong));
}

#[test]
fn error_names_are_short_distinct_snake_case() {
    let all = [
        NotProxyProtocol,
        BadV1,
        BadV1Protocol,
        BadV1Address,
        BadV1Port,
        BadV1LineEnd,
        TooLong,
        BadV2Version,
        BadV2Command,
        BadV2Family,
        V2Datagram,
        V2ShortAddresses,
        BadV2Tlv,
    ];
    let mut names: Vec<&str> = all.iter().map(ProxyHeaderError::name).collect();
    for name in &names {
        assert!(
            name.len() <= 20
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}"
        );
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "two errors share a name");
    assert_eq!(NotProxyProtocol.name(), "not_proxy_protocol");
    assert_eq!(TooLong.name(), "too_long");
}

// ---------------------------------------------------------------------------------------------
// Writing, and who may send a header

/// `header` written in `version`, parsed back.
fn written(version: Version, header: &ProxyHeader) -> (Vec<u8>, Result<Parsed, ProxyHeaderError>) {
    let mut out = Vec::new();
    write(version, header, &mut out);
    assert!(out.len() <= MAX_WRITTEN, "{} bytes", out.len());
    let mut more = out.clone();
    more.extend_from_slice(AFTER[0]);
    let parsed = parse(&more);
    (out, parsed)
}

#[test]
fn written_headers_read_back_the_same() {
    for (source, destination) in [
        ("203.0.113.7:51234", "10.0.0.1:443"),
        ("0.0.0.0:0", "255.255.255.255:65535"),
        ("[2001:db8::7]:51234", "[2001:db8::1]:443"),
        ("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[::]:1"),
        ("[::ffff:192.0.2.1]:8", "[::1]:443"),
    ] {
        let header = proxied(source, destination);
        for version in [Version::V1, Version::V2] {
            let (out, parsed) = written(version, &header);
            assert_eq!(
                parsed,
                Ok(Parsed::Complete {
                    header_len: out.len(),
                    header
                }),
                "{version} {source} {destination}: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }
    let (out, _) = written(Version::V1, &proxied("203.0.113.7:51234", "10.0.0.1:443"));
    assert_eq!(out, b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n");
}

#[test]
fn written_local_headers_read_back_as_local() {
    for version in [Version::V1, Version::V2] {
        let (out, parsed) = written(version, &ProxyHeader::Local);
        assert_eq!(
            parsed,
            Ok(Parsed::Complete {
                header_len: out.len(),
                header: ProxyHeader::Local
            }),
            "{version}"
        );
    }
    assert_eq!(
        written(Version::V1, &ProxyHeader::Local).0,
        b"PROXY UNKNOWN\r\n"
    );
    assert_eq!(
        written(Version::V2, &ProxyHeader::Local).0.len(),
        V2_HEADER_LEN
    );
}

#[test]
fn mixed_families_are_written_ipv4_mapped() {
    let header = proxied("203.0.113.7:51234", "[2001:db8::1]:443");
    let mapped = proxied("[::ffff:203.0.113.7]:51234", "[2001:db8::1]:443");
    for version in [Version::V1, Version::V2] {
        let (out, parsed) = written(version, &header);
        assert_eq!(
            parsed,
            Ok(Parsed::Complete {
                header_len: out.len(),
                header: mapped
            }),
            "{version}"
        );
    }
}

#[test]
fn versions_read_and_write_as_in_the_configuration() {
    for version in [Version::V1, Version::V2] {
        assert_eq!(version.to_string().parse(), Ok(version));
    }
    let e = "V1".parse::<Version>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "\"V1\" is not a PROXY protocol version (expected \"v1\" or \"v2\")"
    );
}

fn network(text: &str) -> Network {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test ip")
}

#[test]
fn networks_contain_their_addresses_only() {
    let ten = network("10.0.0.0/8");
    assert!(ten.contains(ip("10.0.0.0")));
    assert!(ten.contains(ip("10.255.255.255")));
    assert!(!ten.contains(ip("11.0.0.0")));
    assert!(!ten.contains(ip("9.255.255.255")));
    // A dual-stack socket shows an IPv4 peer IPv4-mapped.
    assert!(ten.contains(ip("::ffff:10.1.2.3")));
    assert!(!ten.contains(ip("::a01:203")));
    let host = network("127.0.0.1");
    assert_eq!(host.to_string(), "127.0.0.1/32");
    assert!(host.contains(ip("127.0.0.1")));
    assert!(!host.contains(ip("127.0.0.2")));
    let loopback6 = network("::1/128");
    assert!(loopback6.contains(ip("::1")));
    assert!(!loopback6.contains(ip("127.0.0.1")));
    let all4 = network("0.0.0.0/0");
    assert!(all4.contains(ip("192.0.2.1")));
    assert!(!all4.contains(ip("2001:db8::1")));
    let doc = network("2001:db8::/32");
    assert!(doc.contains(ip("2001:db8:ffff::1")));
    assert!(!doc.contains(ip("2001:db9::1")));
    assert_eq!(network("::/0").to_string(), "::/0");
    let inbound = Inbound {
        trusted: vec![ten, loopback6],
        timeout: Inbound::DEFAULT_TIMEOUT,
    };
    assert!(inbound.trusts(ip("10.9.8.7")));
    assert!(inbound.trusts(ip("::1")));
    assert!(!inbound.trusts(ip("127.0.0.1")));
}

#[test]
fn malformed_networks_are_refused_with_the_reason() {
    for text in [
        "",
        "10.0.0.0/",
        "/8",
        "10.0.0.0/+8",
        "10.0.0.0/08",
        "10.0.0.0/ 8",
        "10.0.0/8",
        "10.0.0.0/8/8",
        "example.com/8",
        "10.0.0.0/1000",
    ] {
        assert_eq!(
            text.parse::<Network>(),
            Err(NetworkError::Syntax(text.to_owned())),
            "{text:?}"
        );
    }
    assert_eq!(
        "10.0.0.0/33".parse::<Network>().unwrap_err().to_string(),
        "\"10.0.0.0/33\": the prefix length is more than 32 bits for this family"
    );
    assert!(matches!(
        "::/129".parse::<Network>(),
        Err(NetworkError::Prefix { max: 128, .. })
    ));
    assert_eq!(
        "10.0.0.1/8".parse::<Network>().unwrap_err().to_string(),
        "\"10.0.0.1/8\" has bits set past its prefix length: did you mean \"10.0.0.0/8\"?"
    );
}
