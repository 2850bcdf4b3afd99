//! Response parsing and rewriting.

use super::*;

fn parse_with(
    buf: &[u8],
    limits: &Limits,
    method: Method,
) -> Result<(Parsed, ResponseHead), ResponseError> {
    let mut head = ResponseHead::new();
    parse_response(buf, limits, method, &mut head).map(|p| (p, head))
}

#[track_caller]
fn complete_for(buf: &[u8], method: Method) -> ResponseHead {
    match parse_with(buf, &Limits::default(), method) {
        Ok((Parsed::Complete, head)) => head,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

#[track_caller]
fn complete(buf: &[u8]) -> ResponseHead {
    complete_for(buf, Method::Get)
}

#[track_caller]
fn reject(buf: &[u8]) -> ResponseError {
    match parse_with(buf, &Limits::default(), Method::Get) {
        Err(e) => {
            assert_eq!(e.status(), 502);
            e
        }
        Ok((p, _)) => panic!("{:?} was accepted: {p:?}", String::from_utf8_lossy(buf)),
    }
}

#[track_caller]
fn reject_fields(fields: &str) -> ResponseError {
    reject(format!("HTTP/1.1 200 OK\r\n{fields}\r\n").as_bytes())
}

#[track_caller]
fn relay(buf: &[u8], method: Method, client_keep_alive: bool, client_http10: bool) -> String {
    let head = complete_for(buf, method);
    let mut out = Vec::new();
    write_response_head(buf, &head, client_keep_alive, client_http10, &mut out);
    String::from_utf8(out).expect("ascii")
}

// ---- framing ---------------------------------------------------------------------------------

#[test]
fn content_length_response() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
    let head = complete(buf);
    assert_eq!(head.status, 200);
    assert_eq!(head.body, BodyKind::Length(5));
    assert_eq!(&buf[head.head_len..head.head_len + 5], b"hello");
    assert!(head.keep_alive);
    assert!(!head.http10);
    assert_eq!(head.reason(buf), b"OK");
}

#[test]
fn chunked_response() {
    let head = complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_eq!(head.body, BodyKind::Chunked);
    assert!(head.keep_alive);
}

#[test]
fn no_framing_is_close_delimited() {
    let head = complete(b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n");
    assert_eq!(head.body, BodyKind::CloseDelimited);
    assert!(!head.keep_alive);
    assert!(head.forces_client_close(false));
}

#[test]
fn head_1xx_204_304_have_no_body_whatever_the_fields_say() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    let head = complete_for(buf, Method::Head);
    assert_eq!(head.body, BodyKind::Empty);
    assert!(head.keep_alive);
    let head = complete_for(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        Method::Head,
    );
    assert_eq!(head.body, BodyKind::Empty);
    // Not close-delimited either: a HEAD response without framing ends with its head.
    let head = complete_for(b"HTTP/1.1 200 OK\r\n\r\n", Method::Head);
    assert_eq!(head.body, BodyKind::Empty);
    assert!(head.keep_alive);
    for status in [
        "204 No Content",
        "304 Not Modified",
        "100 Continue",
        "103 Early Hints",
        "102 Processing",
    ] {
        for fields in [
            "",
            "Content-Length: 10\r\n",
            "Transfer-Encoding: chunked\r\n",
        ] {
            let buf = format!("HTTP/1.1 {status}\r\n{fields}\r\n");
            let head = complete(buf.as_bytes());
            assert_eq!(head.body, BodyKind::Empty, "{buf:?}");
            assert!(head.keep_alive, "{buf:?}");
        }
    }
}

#[test]
fn interim_responses_then_the_final_one() {
    let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let mut head = ResponseHead::new();
    let mut at = 0;
    let mut statuses = Vec::new();
    loop {
        let rest = &buf[at..];
        assert_eq!(
            parse_response(rest, &Limits::default(), Method::Post, &mut head),
            Ok(Parsed::Complete)
        );
        statuses.push(head.status);
        at += head.head_len;
        if !head.is_informational() {
            break;
        }
        assert_eq!(head.body, BodyKind::Empty);
    }
    assert_eq!(statuses, [100, 103, 201]);
    assert_eq!(head.body, BodyKind::Length(2));
    assert_eq!(&buf[at..], b"ok");
}

#[test]
fn switching_protocols_is_an_error() {
    assert_eq!(
        reject(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
        ResponseError::SwitchingProtocols
    );
    // Refused as soon as the status line is in.
    assert_eq!(
        reject(b"HTTP/1.1 101 Switching Protocols\r\n"),
        ResponseError::SwitchingProtocols
    );
}

#[test]
fn success_to_connect_is_an_error() {
    let r = parse_with(
        b"HTTP/1.1 200 OK\r\n\r\n",
        &Limits::default(),
        Method::Connect,
    );
    assert_eq!(r.map(|(p, _)| p), Err(ResponseError::ConnectTunnel));
    let head = complete_for(
        b"HTTP/1.1 407 No\r\nContent-Length: 0\r\n\r\n",
        Method::Connect,
    );
    assert_eq!(head.body, BodyKind::Length(0));
}

#[test]
fn keep_alive_of_the_backend_connection() {
    let cases: [(&[u8], bool); 6] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            false,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false),
        (b"HTTP/1.1 200 OK\r\n\r\n", false),
    ];
    for (buf, keep) in cases {
        assert_eq!(
            complete(buf).keep_alive,
            keep,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
    assert!(complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").http10);
}

#[test]
fn bad_framing_is_rejected() {
    assert_eq!(
        reject_fields("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
        HeadError::ContentLengthWithTransferEncoding.into()
    );
    assert_eq!(
        reject_fields("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
        HeadError::ContentLengthWithTransferEncoding.into()
    );
    assert_eq!(
        reject_fields("Content-Length: 5\r\nContent-Length: 6\r\n"),
        HeadError::DifferingContentLength.into()
    );
    assert_eq!(
        reject_fields("Content-Length: 5, 6\r\n"),
        HeadError::DifferingContentLength.into()
    );
    for cl in ["-1", "+5", "0x10", "1.5", "", "1 0", "18446744073709551616"] {
        assert_eq!(
            reject_fields(&format!("Content-Length: {cl}\r\n")),
            HeadError::InvalidContentLength.into()
        );
    }
    assert_eq!(
        reject_fields("Transfer-Encoding: gzip\r\n"),
        HeadError::TransferEncodingNotChunked.into()
    );
    assert_eq!(
        reject_fields("Transfer-Encoding: xchunked\r\n"),
        HeadError::UnknownTransferCoding.into()
    );
    assert_eq!(
        reject_fields("Transfer-Encoding: chunked, chunked\r\n"),
        HeadError::DuplicateChunked.into()
    );
    assert_eq!(
        reject_fields("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        HeadError::DuplicateTransferEncoding.into()
    );
    assert_eq!(
        reject(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HeadError::TransferEncodingInHttp10.into()
    );
    // Validated even where the status makes the body empty.
    let r = parse_with(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        &Limits::default(),
        Method::Get,
    );
    assert_eq!(
        r.map(|(p, _)| p),
        Err(HeadError::DifferingContentLength.into())
    );
}

#[test]
fn identical_duplicate_content_length_is_accepted() {
    let head = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 42, 42\r\nContent-Length: 42\r\n\r\n");
    assert_eq!(head.body, BodyKind::Length(42));
}

#[test]
fn bad_field_syntax_is_rejected() {
    assert_eq!(reject_fields("X-A: b\r\n c\r\n"), HeadError::ObsFold.into());
    assert_eq!(
        reject(b"HTTP/1.1 200 OK\r\n X-A: b\r\n\r\n"),
        HeadError::ObsFold.into()
    );
    assert_eq!(
        reject_fields("Content-Length : 5\r\n"),
        HeadError::WhitespaceBeforeColon.into()
    );
    assert_eq!(
        reject(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
        HeadError::BareLf.into()
    );
    assert_eq!(
        reject(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"),
        HeadError::BareLf.into()
    );
    assert_eq!(
        reject(b"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n"),
        HeadError::BareCr.into()
    );
    assert_eq!(reject_fields("X-A: b\rc\r\n"), HeadError::BareCr.into());
    assert_eq!(reject_fields("X-A: b\0\r\n"), HeadError::Nul.into());
    assert_eq!(
        reject_fields("X-A: b\x07\r\n"),
        HeadError::InvalidFieldValue.into()
    );
    assert_eq!(
        reject_fields("X(A: b\r\n"),
        HeadError::InvalidFieldName.into()
    );
    assert_eq!(reject_fields("X-A\r\n"), HeadError::MissingColon.into());
}

#[test]
fn bad_status_lines_are_rejected() {
    for line in [
        "HTTP/1.1 20 OK",
        "HTTP/1.1 2000 OK",
        "HTTP/1.1 abc OK",
        "HTTP/1.1  200 OK",
        "HTTP/1.1 200OK",
        "HTTP/1.1",
        "HTTP/1.1 ",
        "HTTP/1.1 -20 OK",
        "HTTP/1.1 200 O\x01K",
    ] {
        assert_eq!(
            reject(format!("{line}\r\n\r\n").as_bytes()),
            ResponseError::MalformedStatusLine,
            "{line:?}"
        );
    }
    for line in [
        "HTTP/1.1 099 X",
        "HTTP/1.1 600 X",
        "HTTP/1.1 000 X",
        "HTTP/1.1 999 X",
    ] {
        assert_eq!(
            reject(format!("{line}\r\n\r\n").as_bytes()),
            ResponseError::InvalidStatus,
            "{line:?}"
        );
    }
    for line in [
        "http/1.1 200 OK",
        "HTTP/1.10 200 OK",
        "HTTP/1 200 OK",
        "ICY 200 OK",
        "200 OK",
    ] {
        assert_eq!(
            reject(format!("{line}\r\n\r\n").as_bytes()),
            ResponseError::MalformedVersion,
            "{line:?}"
        );
    }
    for line in ["HTTP/2.0 200 OK", "HTTP/0.9 200 OK"] {
        assert_eq!(
            reject(format!("{line}\r\n\r\n").as_bytes()),
            ResponseError::UnsupportedVersion,
            "{line:?}"
        );
    }
}

#[test]
fn lenient_but_harmless_status_lines_are_accepted() {
    // No reason phrase, with or without the space before it.
    for buf in [
        &b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"[..],
        b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
    ] {
        let head = complete(buf);
        assert_eq!(head.status, 200);
        assert_eq!(head.reason(buf), b"");
    }
    let buf = b"HTTP/1.1 404 Not \tHere \xff\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(complete(buf).reason(buf), b"Not \tHere \xff");
    // A higher minor version is HTTP/1.1.
    assert!(!complete(b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n").http10);
}

#[test]
fn oversized_heads_are_rejected() {
    let limits = Limits {
        max_request_line: 32,
        max_head: 128,
        max_headers: 3,
        max_body: 0,
        max_trailer: 64,
    };
    let long_line = format!("HTTP/1.1 200 {}\r\n\r\n", "x".repeat(40));
    let r = parse_with(long_line.as_bytes(), &limits, Method::Get);
    assert_eq!(r.map(|(p, _)| p), Err(ResponseError::StatusLineTooLong));
    let long_head = format!("HTTP/1.1 200 OK\r\nX-A: {}\r\n\r\n", "v".repeat(120));
    let r = parse_with(long_head.as_bytes(), &limits, Method::Get);
    assert_eq!(r.map(|(p, _)| p), Err(HeadError::TooLarge.into()));
    let partial = format!("HTTP/1.1 200 OK\r\nX-A: {}", "v".repeat(120));
    let r = parse_with(partial.as_bytes(), &limits, Method::Get);
    assert_eq!(r.map(|(p, _)| p), Err(HeadError::TooLarge.into()));
    let many = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let r = parse_with(many.as_bytes(), &limits, Method::Get);
    assert_eq!(r.map(|(p, _)| p), Err(HeadError::TooManyFields.into()));
}

#[test]
fn every_strict_prefix_is_partial() {
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\n";
    let mut head = ResponseHead::new();
    for end in 0..buf.len() {
        assert_eq!(
            parse_response(&buf[..end], &Limits::default(), Method::Get, &mut head),
            Ok(Parsed::Partial)
        );
    }
    assert_eq!(
        parse_response(buf, &Limits::default(), Method::Get, &mut head),
        Ok(Parsed::Complete)
    );
    assert_eq!(head.head_len, buf.len());
}

#[test]
fn reparsing_into_a_reused_head_does_not_allocate() {
    let big = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 0\r\n\r\n";
    let small = b"HTTP/1.1 204 No Content\r\n\r\n";
    let mut head = ResponseHead::new();
    assert_eq!(
        parse_response(big, &Limits::default(), Method::Get, &mut head),
        Ok(Parsed::Complete)
    );
    let (ptr, cap) = (head.fields.as_ptr(), head.fields.capacity());
    for buf in [&small[..], big, small] {
        assert_eq!(
            parse_response(buf, &Limits::default(), Method::Get, &mut head),
            Ok(Parsed::Complete)
        );
        assert_eq!((head.fields.as_ptr(), head.fields.capacity()), (ptr, cap));
    }
}

// ---- rewriting for the client ----------------------------------------------------------------

#[test]
fn hop_by_hop_fields_are_dropped() {
    let buf = b"HTTP/1.1 200 OK\r\n\
        Content-Type: text/html\r\n\
        Connection: keep-alive, X-Internal\r\n\
        Keep-Alive: timeout=5\r\n\
        Proxy-Connection: keep-alive\r\n\
        Upgrade: h2c\r\n\
        X-Internal: secret\r\n\
        Set-Cookie: a=1\r\n\
        Set-Cookie: b=2\r\n\
        Content-Length: 5, 5\r\n\
        \r\n";
    assert_eq!(
        relay(buf, Method::Get, true, false),
        "HTTP/1.1 200 OK\r\n\
         Content-Type: text/html\r\n\
         Set-Cookie: a=1\r\n\
         Set-Cookie: b=2\r\n\
         Content-Length: 5\r\n\
         \r\n"
    );
    assert_eq!(
        relay(buf, Method::Get, false, false),
        "HTTP/1.1 200 OK\r\n\
         Content-Type: text/html\r\n\
         Set-Cookie: a=1\r\n\
         Set-Cookie: b=2\r\n\
         Content-Length: 5\r\n\
         Connection: close\r\n\
         \r\n"
    );
    assert_eq!(
        relay(buf, Method::Get, true, true),
        "HTTP/1.1 200 OK\r\n\
         Content-Type: text/html\r\n\
         Set-Cookie: a=1\r\n\
         Set-Cookie: b=2\r\n\
         Content-Length: 5\r\n\
         Connection: keep-alive\r\n\
         \r\n"
    );
}

#[test]
fn status_line_is_normalized_to_http11() {
    let buf = b"HTTP/1.0 404 Nope\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, true, false),
        "HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n"
    );
    let buf = b"HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, true, false),
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    );
    let buf = b"HTTP/1.1 299\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, true, false),
        "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn chunked_is_kept_for_http11_clients() {
    let buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, true, false),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
}

#[test]
fn chunked_to_an_http10_client_is_dechunked_and_closed() {
    let buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n";
    let head = complete(buf);
    assert!(head.forces_client_close(true));
    assert!(!head.forces_client_close(false));
    assert_eq!(
        relay(buf, Method::Get, true, true),
        "HTTP/1.1 200 OK\r\nX-A: b\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn close_delimited_forces_connection_close() {
    let buf = b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, true, false),
        "HTTP/1.1 200 OK\r\nX-A: b\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn framing_survives_connection_naming_it() {
    let buf = b"HTTP/1.1 200 OK\r\nConnection: Content-Length, Transfer-Encoding\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, true, false),
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
    );
}

#[test]
fn no_framing_fields_on_1xx_and_204_and_no_connection_on_1xx() {
    let buf = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: b\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, false, false),
        "HTTP/1.1 204 No Content\r\nX-A: b\r\nConnection: close\r\n\r\n"
    );
    let buf = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, false, false),
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    );
    // 304 and HEAD responses keep their Content-Length: it describes the representation.
    let buf = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Get, true, false),
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
    );
    let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    assert_eq!(
        relay(buf, Method::Head, true, false),
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    );
}

// ---- protocol upgrades -----------------------------------------------------------------------

fn parse_upgrade(buf: &[u8]) -> Result<(Parsed, ResponseHead), ResponseError> {
    let mut head = ResponseHead::new();
    parse_response_with(buf, &Limits::default(), Method::Get, true, &mut head).map(|p| (p, head))
}

#[test]
fn switching_protocols_completes_when_an_upgrade_was_requested() {
    let buf = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        \r\n\x81\x05hello";
    let (parsed, head) = parse_upgrade(buf).unwrap();
    assert_eq!(parsed, Parsed::Complete);
    assert!(head.switches_protocols());
    assert_eq!(head.body, BodyKind::Empty);
    // The new protocol's bytes start right after the head.
    assert_eq!(&buf[head.head_len..], b"\x81\x05hello");
    // Not a 101: an ordinary response.
    let (_, head) =
        parse_upgrade(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert!(!head.switches_protocols());
    assert_eq!(
        parse_upgrade(b"HTTP/1.1 101 Sw").unwrap().0,
        Parsed::Partial
    );
}

#[test]
fn a_switch_must_be_to_a_protocol_the_request_offered() {
    let switch = |upgrade: &str| {
        let buf =
            format!("HTTP/1.1 101 Switching Protocols\r\n{upgrade}Connection: upgrade\r\n\r\n");
        let (_, head) = parse_upgrade(buf.as_bytes()).unwrap();
        move |offer: &str| head.switches_to_offered(buf.as_bytes(), offer.as_bytes())
    };
    // The offered protocol, in any case; a version given by one side only.
    assert!(switch("Upgrade: websocket\r\n")("websocket"));
    assert!(switch("Upgrade: WebSocket\r\n")("websocket"));
    assert!(switch("Upgrade: h2c\r\n")("websocket,h2c"));
    assert!(switch("Upgrade: foo/2\r\n")("foo"));
    assert!(switch("Upgrade: foo\r\n")("foo/2"));
    assert!(switch("Upgrade: foo/2, bar\r\nUpgrade: baz\r\n")(
        "baz,bar,foo/2"
    ));
    // Something else, another version, one protocol of two not offered, nothing offered.
    assert!(!switch("Upgrade: h2c\r\n")("websocket"));
    assert!(!switch("Upgrade: foo/3\r\n")("foo/2"));
    assert!(!switch("Upgrade: websocket, h2c\r\n")("websocket"));
    assert!(!switch("Upgrade: websocket\r\n")(""));
    assert!(!switch("Upgrade: websocket\r\n")("websocketx"));
}

#[test]
fn switching_protocols_needs_an_upgrade_field() {
    assert_eq!(
        parse_upgrade(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n")
            .unwrap_err(),
        ResponseError::SwitchingWithoutUpgrade
    );
}

#[test]
fn a_switch_is_relayed_with_upgrade_and_connection_upgrade() {
    let buf = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade, X-Hop\r\n\
        X-Hop: 1\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        \r\n";
    let (_, head) = parse_upgrade(buf).unwrap();
    let mut out = Vec::new();
    write_response_head(buf, &head, true, false, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Connection: upgrade\r\n\
         \r\n"
    );
}
