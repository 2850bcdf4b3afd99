//! Request parsing and rewriting, one test per CHECKLISTS.md §1 row (and then some).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn parse_with(buf: &[u8], limits: &Limits) -> Result<(Parsed, RequestHead), RequestError> {
    let mut head = RequestHead::new();
    parse_request(buf, limits, &mut head).map(|p| (p, head))
}

#[track_caller]
fn complete(buf: &[u8]) -> RequestHead {
    match parse_with(buf, &Limits::default()) {
        Ok((Parsed::Complete, head)) => head,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

#[track_caller]
fn reject_with(buf: &[u8], limits: &Limits) -> RequestError {
    match parse_with(buf, limits) {
        Err(e) => e,
        Ok((p, _)) => panic!("{:?} was accepted: {p:?}", String::from_utf8_lossy(buf)),
    }
}

#[track_caller]
fn reject(buf: &[u8]) -> RequestError {
    reject_with(buf, &Limits::default())
}

/// Parses a request with the given fields after `GET / HTTP/1.1` and `Host: a`.
#[track_caller]
fn reject_fields(fields: &str) -> RequestError {
    reject(format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").as_bytes())
}

#[track_caller]
fn complete_fields(fields: &str) -> RequestHead {
    complete(format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n").as_bytes())
}

const V4: Forwarding<'static> = Forwarding {
    client_ip: IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
    proto: "https",
    request_id: None,
    client_cert: ClientCertFields::Off,
};

#[track_caller]
fn forward_with(buf: &[u8], fwd: &Forwarding) -> String {
    let head = complete(buf);
    let mut out = Vec::new();
    write_request_head(buf, &head, fwd, &mut out);
    String::from_utf8(out).expect("ascii")
}

#[track_caller]
fn forward(buf: &[u8]) -> String {
    forward_with(buf, &V4)
}

// ---- framing: Content-Length and Transfer-Encoding -------------------------------------------

#[test]
fn content_length_with_transfer_encoding_either_order_is_400() {
    for fields in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    ] {
        let e = reject_fields(fields);
        assert_eq!(e, HeadError::ContentLengthWithTransferEncoding.into());
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_400() {
    for te in ["gzip", "chunked, gzip", "deflate,gzip"] {
        let e = reject_fields(&format!("Transfer-Encoding: {te}\r\n"));
        assert_eq!(e, HeadError::TransferEncodingNotChunked.into(), "{te}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn unknown_transfer_coding_is_501() {
    for te in ["xchunked", "identity", "chunked2", "gzip, foo, chunked"] {
        let e = reject_fields(&format!("Transfer-Encoding: {te}\r\n"));
        assert_eq!(e, HeadError::UnknownTransferCoding.into(), "{te}");
        assert_eq!(e.status(), 501);
    }
}

#[test]
fn chunked_twice_is_400() {
    let e = reject_fields("Transfer-Encoding: chunked, chunked\r\n");
    assert_eq!(e, HeadError::DuplicateChunked.into());
    assert_eq!(e.status(), 400);
}

#[test]
fn two_transfer_encoding_fields_are_400() {
    for fields in [
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\ntransfer-encoding: chunked\r\n",
    ] {
        let e = reject_fields(fields);
        assert_eq!(e, HeadError::DuplicateTransferEncoding.into(), "{fields}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn malformed_transfer_encoding_lists_are_400() {
    for te in ["", ",chunked", "chunked,", "chunked;foo=bar", "\"chunked\""] {
        let e = reject_fields(&format!("Transfer-Encoding: {te}\r\n"));
        assert_eq!(e, HeadError::InvalidTransferEncoding.into(), "{te:?}");
    }
}

#[test]
fn transfer_encoding_with_control_character_is_400() {
    let e = reject(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n");
    assert_eq!(e, HeadError::InvalidFieldValue.into());
    assert_eq!(e.status(), 400);
    let e = reject(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\x0c\r\n\r\n");
    assert_eq!(e, HeadError::InvalidFieldValue.into());
}

#[test]
fn transfer_encoding_after_tab_is_chunked() {
    let head = complete(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n");
    assert_eq!(head.body, BodyKind::Chunked);
    let head = complete(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t CHUNKED \t\r\n\r\n");
    assert_eq!(head.body, BodyKind::Chunked);
}

#[test]
fn http10_with_transfer_encoding_is_400() {
    let e = reject(b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(e, HeadError::TransferEncodingInHttp10.into());
    assert_eq!(e.status(), 400);
}

#[test]
fn differing_content_lengths_are_400() {
    for fields in [
        "Content-Length: 3,2\r\n",
        "Content-Length: 3, 2\r\n",
        "Content-Length: 3\r\nContent-Length: 2\r\n",
        "Content-Length: 42, 42\r\nContent-Length: 43\r\n",
    ] {
        let e = reject_fields(fields);
        assert_eq!(e, HeadError::DifferingContentLength.into(), "{fields}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn malformed_content_lengths_are_400() {
    for cl in [
        "-1",
        "+5",
        "0x10",
        "1.5",
        "",
        "1 0",
        "18446744073709551616",
        "99999999999999999999999",
        "5,",
        ",5",
        "five",
        "5;",
    ] {
        let e = reject_fields(&format!("Content-Length: {cl}\r\n"));
        assert_eq!(e, HeadError::InvalidContentLength.into(), "{cl:?}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn identical_duplicate_content_length_is_one_value() {
    for fields in [
        "Content-Length: 42, 42\r\n",
        "Content-Length: 42\r\nContent-Length: 42\r\n",
        "Content-Length: 42,42\r\ncontent-length: 042\r\n",
    ] {
        let head = complete_fields(fields);
        assert_eq!(head.body, BodyKind::Length(42), "{fields}");
    }
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\nContent-Length: 42, 42\r\n\r\n";
    let out = forward(buf);
    assert_eq!(out.matches("Content-Length").count(), 1, "{out}");
    assert!(out.contains("\r\nContent-Length: 42\r\n"), "{out}");
}

#[test]
fn largest_content_length_is_accepted_when_unlimited() {
    let head = complete_fields("Content-Length: 18446744073709551615\r\n");
    assert_eq!(head.body, BodyKind::Length(u64::MAX));
}

#[test]
fn content_length_over_max_body_is_413() {
    let limits = Limits {
        max_body: 100,
        ..Limits::default()
    };
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n";
    let e = reject_with(buf, &limits);
    assert_eq!(e, RequestError::BodyTooLarge);
    assert_eq!(e.status(), 413);
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n";
    assert!(
        matches!(parse_with(buf, &limits), Ok((Parsed::Complete, h)) if h.body == BodyKind::Length(100))
    );
}

#[test]
fn get_and_head_with_content_length_keep_their_body() {
    for method in ["GET", "HEAD"] {
        let buf = format!(
            "{method} / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n"
        );
        let head = complete(buf.as_bytes());
        assert_eq!(head.body, BodyKind::Length(5));
        let body_end = head.head_len + 5;
        assert_eq!(&buf.as_bytes()[head.head_len..body_end], b"hello");
        assert!(buf.as_bytes()[body_end..].starts_with(b"GET /next"));
        assert!(forward(buf.as_bytes()).contains("\r\nContent-Length: 5\r\n"));
    }
}

#[test]
fn no_framing_means_empty_body() {
    assert_eq!(
        complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").body,
        BodyKind::Empty
    );
    assert_eq!(
        complete_fields("Content-Length: 0\r\n").body,
        BodyKind::Length(0)
    );
}

// ---- field syntax ----------------------------------------------------------------------------

#[test]
fn whitespace_before_colon_is_400() {
    for fields in [
        "Transfer-Encoding : chunked\r\n",
        "Content-Length\t: 5\r\n",
        "X-A : b\r\n",
    ] {
        let e = reject_fields(fields);
        assert_eq!(e, HeadError::WhitespaceBeforeColon.into(), "{fields:?}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn leading_whitespace_on_first_field_line_is_400() {
    for buf in [
        &b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n\tHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(reject(buf), HeadError::ObsFold.into());
    }
}

#[test]
fn obs_fold_is_400() {
    for fields in [
        "X-A: b\r\n c\r\n",
        "X-A: b\r\n\tc\r\n",
        "Content-Length: 5\r\n 5\r\n",
    ] {
        let e = reject_fields(fields);
        assert_eq!(e, HeadError::ObsFold.into(), "{fields:?}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn bare_cr_anywhere_in_the_head_is_400() {
    for buf in [
        &b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX\r: b\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let e = reject(buf);
        assert_eq!(
            e,
            HeadError::BareCr.into(),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn bare_lf_line_endings_are_400() {
    for buf in [
        &b"GET / HTTP/1.1\nHost: a\n\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: b\nc\r\n\r\n",
        b"GET / HTTP/1.1\r\nX\n: b\r\nHost: a\r\n\r\n",
        b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\n\r\n",
    ] {
        let e = reject(buf);
        assert_eq!(
            e,
            HeadError::BareLf.into(),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn cr_lf_nul_and_controls_in_a_field_value_are_400() {
    // A CR or LF inside a value is a bare CR / bare LF; NUL and other CTLs are invalid bytes.
    assert_eq!(reject_fields("X-A: b\rc\r\n"), HeadError::BareCr.into());
    assert_eq!(reject_fields("X-A: b\nc\r\n"), HeadError::BareLf.into());
    assert_eq!(reject_fields("X-A: b\0c\r\n"), HeadError::Nul.into());
    assert_eq!(reject_fields("X-A: \0\r\n"), HeadError::Nul.into());
    for ctl in [0x01u8, 0x08, 0x0b, 0x1f, 0x7f] {
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b".to_vec();
        buf.push(ctl);
        buf.extend_from_slice(b"c\r\n\r\n");
        assert_eq!(
            reject(&buf),
            HeadError::InvalidFieldValue.into(),
            "{ctl:#x}"
        );
    }
}

#[test]
fn obs_text_in_a_field_value_is_accepted() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n";
    let head = complete(buf);
    assert!(
        head.headers(buf)
            .any(|(n, v)| n == b"X-A" && v == b"caf\xc3\xa9")
    );
}

#[test]
fn invalid_bytes_in_a_field_name_are_400() {
    for name in [
        "X(A", "X\"A", "X@A", "X/A", "X[A", "X{A", "X,A", "X=A", "X\u{e9}A",
    ] {
        let e = reject_fields(&format!("{name}: b\r\n"));
        assert_eq!(e, HeadError::InvalidFieldName.into(), "{name:?}");
        assert_eq!(e.status(), 400);
    }
    assert_eq!(reject_fields(": b\r\n"), HeadError::InvalidFieldName.into());
    assert_eq!(reject_fields("X\0A: b\r\n"), HeadError::Nul.into());
    assert_eq!(
        reject_fields("X\x01A: b\r\n"),
        HeadError::InvalidFieldName.into()
    );
}

#[test]
fn field_line_without_colon_is_400() {
    assert_eq!(reject_fields("NoColon\r\n"), HeadError::MissingColon.into());
}

#[test]
fn nul_in_the_request_line_is_400() {
    assert_eq!(
        reject(b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"),
        HeadError::Nul.into()
    );
}

// ---- Host ------------------------------------------------------------------------------------

#[test]
fn missing_host_is_400() {
    let e = reject(b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n");
    assert_eq!(e, RequestError::MissingHost);
    assert_eq!(e.status(), 400);
}

#[test]
fn two_host_fields_are_400() {
    for buf in [
        &b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
        b"GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
    ] {
        let e = reject(buf);
        assert_eq!(e, RequestError::DuplicateHost);
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn invalid_host_is_400() {
    for host in [
        "", "a b", "a/b", "u@a", "a:", "a:x", "a:99999", "[::1", "::1", "a,b c", "a\"b", "a?b",
        "a#b",
    ] {
        let e = reject(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        assert_eq!(e, RequestError::InvalidHost, "{host:?}");
        assert_eq!(e.status(), 400);
    }
    // Even when an absolute-form target makes the Host field moot, it must be valid.
    assert_eq!(
        reject(b"GET http://a/ HTTP/1.1\r\nHost: a b\r\n\r\n"),
        RequestError::InvalidHost
    );
}

#[test]
fn valid_hosts_are_accepted() {
    for host in [
        "example.com",
        "example.com:8443",
        "1.2.3.4",
        "[::1]:443",
        "EXAMPLE.com",
        "a_b-c.d",
    ] {
        let buf = format!("GET / HTTP/1.1\r\nHost:  {host} \r\n\r\n");
        let head = complete(buf.as_bytes());
        assert_eq!(head.host(buf.as_bytes()), host.as_bytes());
    }
}

#[test]
fn http10_without_host_is_rejected() {
    // Forwarded as HTTP/1.1, which requires Host (found by fuzzing: an empty Host went out).
    let mut head = RequestHead::new();
    let r = parse_request(b"GET / HTTP/1.0\r\n\r\n", &Limits::default(), &mut head);
    assert_eq!(r, Err(RequestError::MissingHost));
    // With an absolute-form target the authority is the host.
    let buf = b"GET http://a/ HTTP/1.0\r\n\r\n";
    assert_eq!(complete(buf).host(buf), b"a");
}

// ---- request target --------------------------------------------------------------------------

#[test]
fn absolute_form_is_accepted_and_host_taken_from_it() {
    let buf = b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n";
    let head = complete(buf);
    assert_eq!(head.host(buf), b"a");
    assert_eq!(head.path(buf), b"/");
    let out = forward(buf);
    assert!(out.starts_with("GET / HTTP/1.1\r\nHost: a\r\n"), "{out}");
    assert!(!out.contains("Host: b"), "{out}");
    assert!(out.contains("\r\nX-Forwarded-Host: a\r\n"), "{out}");

    // Without a Host field, the target's authority is the host.
    let buf = b"GET http://a/ HTTP/1.1\r\n\r\n";
    let head = complete(buf);
    assert_eq!(head.host(buf), b"a");
    assert!(forward(buf).starts_with("GET / HTTP/1.1\r\nHost: a\r\n"));
}

#[test]
fn absolute_form_variants() {
    let buf = b"GET HTTPS://Example.com:8443/x/y?z=1 HTTP/1.1\r\nHost: ignored\r\n\r\n";
    let head = complete(buf);
    assert_eq!(head.host(buf), b"Example.com:8443");
    assert_eq!(head.path(buf), b"/x/y?z=1");

    let buf = b"GET http://a HTTP/1.1\r\n\r\n";
    assert_eq!(complete(buf).path(buf), b"/");
    assert!(forward(buf).starts_with("GET / HTTP/1.1\r\nHost: a\r\n"));

    // RFC 9112 §3.2.4: OPTIONS with an empty path is forwarded as `*`.
    let buf = b"OPTIONS http://a:80 HTTP/1.1\r\n\r\n";
    assert_eq!(complete(buf).path(buf), b"*");
    assert!(forward(buf).starts_with("OPTIONS * HTTP/1.1\r\nHost: a:80\r\n"));

    assert_eq!(
        reject(b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        RequestError::InvalidTarget
    );
    assert_eq!(
        reject(b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        RequestError::InvalidHost
    );
    assert_eq!(
        reject(b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"),
        RequestError::InvalidHost
    );
    assert_eq!(
        reject(b"GET http:// HTTP/1.1\r\nHost: a\r\n\r\n"),
        RequestError::InvalidHost
    );
    assert_eq!(
        reject(b"GET http://a?q HTTP/1.1\r\nHost: a\r\n\r\n"),
        RequestError::InvalidTarget
    );
    assert_eq!(
        reject(b"GET http:/a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        RequestError::InvalidTarget
    );
}

#[test]
fn asterisk_form_only_for_options() {
    let e = reject(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(e, RequestError::AsteriskNotOptions);
    assert_eq!(e.status(), 400);
    let buf = b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_eq!(complete(buf).path(buf), b"*");
    assert!(forward(buf).starts_with("OPTIONS * HTTP/1.1\r\nHost: a\r\n"));
    assert_eq!(
        reject(b"OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n").status(),
        400
    );
}

#[test]
fn authority_form_only_for_connect() {
    for target in ["a:443", "example.com:80", "[::1]:443", "a"] {
        let e = reject(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(e, RequestError::AuthorityFormNotConnect, "{target}");
        assert_eq!(e.status(), 400);
    }
    // CONNECT itself is well-formed but not supported.
    let e = reject(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n");
    assert_eq!(e, RequestError::ConnectNotSupported);
    assert_eq!(e.status(), 501);
    // CONNECT needs authority-form with a port.
    for target in ["/", "a", "http://a/", "[::1]", "*"] {
        let e = reject(format!("CONNECT {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(e, RequestError::InvalidTarget, "{target}");
    }
}

#[test]
fn fragment_in_the_target_is_400() {
    for target in ["/a#b", "/#", "http://a/#x"] {
        let e = reject(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(e, RequestError::FragmentInTarget, "{target}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn invalid_bytes_in_the_target_are_400() {
    for target in [&b"/a\x7fb"[..], b"/caf\xc3\xa9", b"/a\tb", b"/a\x01"] {
        let mut buf = b"GET ".to_vec();
        buf.extend_from_slice(target);
        buf.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(reject(&buf), RequestError::InvalidTarget);
    }
    assert_eq!(
        reject(b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"),
        RequestError::InvalidTarget
    );
}

#[test]
fn raw_paths_are_forwarded_unchanged() {
    let buf = b"GET //x/../%2e%2E/?a=b&c=%20|{} HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = complete(buf);
    assert_eq!(head.path(buf), b"//x/../%2e%2E/?a=b&c=%20|{}");
}

// ---- request line ----------------------------------------------------------------------------

#[test]
fn double_space_and_other_malformed_request_lines_are_400() {
    for line in [
        "GET  / HTTP/1.1",
        "GET /  HTTP/1.1",
        " GET / HTTP/1.1",
        "GET / HTTP/1.1 ",
        "GET\t/ HTTP/1.1",
        "GET /",
        "GET",
        "GET / HTTP/1.1 extra",
    ] {
        let e = reject(format!("{line}\r\nHost: a\r\n\r\n").as_bytes());
        assert!(
            matches!(
                e,
                RequestError::MalformedRequestLine
                    | RequestError::MalformedVersion
                    | RequestError::InvalidMethod
                    | RequestError::InvalidTarget
            ),
            "{line:?}: {e:?}"
        );
        assert_eq!(e.status(), 400, "{line:?}");
    }
    assert_eq!(
        reject(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
        RequestError::MalformedRequestLine
    );
    // Empty lines alone are skipped (RFC 9112 §2.2): still waiting for a request line.
    assert!(matches!(
        parse_with(b"\r\n\r\n", &Limits::default()),
        Ok((Parsed::Partial, _))
    ));
}

#[test]
fn malformed_versions_are_400() {
    for version in [
        "HTTP/1.1x",
        "http/1.1",
        "HTTP/1",
        "HTTP/1.10",
        "HTTP/a.b",
        "HTTP/11",
        "HTTPS/1.1",
        "HTTP/1.1/",
    ] {
        let e = reject(format!("GET / {version}\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(e, RequestError::MalformedVersion, "{version}");
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn other_major_versions_are_505() {
    for version in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"] {
        let e = reject(format!("GET / {version}\r\nHost: a\r\n\r\n").as_bytes());
        assert_eq!(e, RequestError::UnsupportedVersion, "{version}");
        assert_eq!(e.status(), 505);
    }
    // The HTTP/2 connection preface is refused as soon as its first line is in.
    assert_eq!(reject(b"PRI * HTTP/2.0\r\n").status(), 505);
}

#[test]
fn higher_minor_version_is_processed_as_http11() {
    let head = complete(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n");
    assert!(!head.http10);
    assert!(head.keep_alive);
}

#[test]
fn methods() {
    let e = reject(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(e, RequestError::InvalidMethod);
    for (token, method) in [
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("DELETE", Method::Delete),
        ("OPTIONS", Method::Options),
        ("TRACE", Method::Trace),
        ("PATCH", Method::Patch),
        ("get", Method::Other),
        ("PROPFIND", Method::Other),
    ] {
        let buf = format!("{token} / HTTP/1.1\r\nHost: a\r\n\r\n");
        let head = complete(buf.as_bytes());
        assert_eq!(head.method, method);
        assert_eq!(head.method_bytes(buf.as_bytes()), token.as_bytes());
        assert!(forward(buf.as_bytes()).starts_with(&format!("{token} / HTTP/1.1\r\n")));
    }
    let idempotent = [
        Method::Get,
        Method::Head,
        Method::Put,
        Method::Delete,
        Method::Options,
        Method::Trace,
    ];
    for m in idempotent {
        assert!(m.is_idempotent(), "{m:?}");
    }
    for m in [Method::Post, Method::Patch, Method::Connect, Method::Other] {
        assert!(!m.is_idempotent(), "{m:?}");
    }
}

// ---- limits ----------------------------------------------------------------------------------

fn small_limits() -> Limits {
    Limits {
        max_request_line: 32,
        max_head: 128,
        max_headers: 4,
        max_body: 0,
        max_trailer: 64,
    }
}

#[test]
fn request_line_over_the_limit_is_414() {
    let limits = small_limits();
    // "GET /x.. HTTP/1.1\r\n" is 16 + n bytes.
    let fits = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(16));
    assert!(matches!(
        parse_with(fits.as_bytes(), &limits),
        Ok((Parsed::Complete, _))
    ));
    let over = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(17));
    let e = reject_with(over.as_bytes(), &limits);
    assert_eq!(e, RequestError::UriTooLong);
    assert_eq!(e.status(), 414);
    // An incomplete line already over the limit is refused without waiting for the rest.
    let partial = format!("GET /{}", "x".repeat(28));
    assert_eq!(
        reject_with(partial.as_bytes(), &limits),
        RequestError::UriTooLong
    );
    let partial = format!("GET /{}", "x".repeat(27));
    assert!(matches!(
        parse_with(partial.as_bytes(), &limits),
        Ok((Parsed::Partial, _))
    ));
    // Default limit: an 8 KiB target.
    let huge = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(8192));
    assert_eq!(reject(huge.as_bytes()).status(), 414);
}

#[test]
fn head_over_the_limit_is_431() {
    let limits = small_limits();
    let long = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: {}\r\n\r\n",
        "v".repeat(100)
    );
    let e = reject_with(long.as_bytes(), &limits);
    assert_eq!(e, HeadError::TooLarge.into());
    assert_eq!(e.status(), 431);
    // Incomplete and already over.
    let partial = format!("GET / HTTP/1.1\r\nHost: a\r\nX-A: {}", "v".repeat(120));
    assert_eq!(reject_with(partial.as_bytes(), &limits).status(), 431);
    // Exactly at the limit is fine.
    let base = "GET / HTTP/1.1\r\nHost: a\r\nX-A: \r\n\r\n".len();
    let exact = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: {}\r\n\r\n",
        "v".repeat(128 - base)
    );
    assert_eq!(exact.len(), 128);
    assert!(matches!(
        parse_with(exact.as_bytes(), &limits),
        Ok((Parsed::Complete, _))
    ));
    // Default limit: one 40 KiB field.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: {}\r\n\r\n",
        "v".repeat(40_000)
    );
    assert_eq!(reject(huge.as_bytes()).status(), 431);
}

#[test]
fn too_many_fields_is_431() {
    let limits = small_limits();
    let four = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert!(matches!(
        parse_with(four.as_bytes(), &limits),
        Ok((Parsed::Complete, _))
    ));
    let five = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let e = reject_with(five.as_bytes(), &limits);
    assert_eq!(e, HeadError::TooManyFields.into());
    assert_eq!(e.status(), 431);
}

#[test]
fn ten_thousand_fields_is_431() {
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..10_000 {
        buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
    assert_eq!(reject(&buf).status(), 431);
    // Also with a head limit big enough that only the count trips.
    let limits = Limits {
        max_head: usize::MAX,
        ..Limits::default()
    };
    assert_eq!(reject_with(&buf, &limits), HeadError::TooManyFields.into());
}

#[test]
fn max_headers_is_clamped_to_the_stack_array() {
    let limits = Limits {
        max_headers: 10_000,
        max_head: usize::MAX,
        ..Limits::default()
    };
    let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..MAX_STACK_HEADERS - 1 {
        buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    let mut ok = buf.clone();
    ok.extend_from_slice(b"\r\n");
    assert!(matches!(
        parse_with(&ok, &limits),
        Ok((Parsed::Complete, _))
    ));
    buf.extend_from_slice(b"X-last: v\r\n\r\n");
    assert_eq!(reject_with(&buf, &limits), HeadError::TooManyFields.into());
}

// ---- incremental parsing ---------------------------------------------------------------------

#[test]
fn every_strict_prefix_is_partial() {
    let buf = b"\r\nPOST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX-A:\r\n\r\n";
    let mut head = RequestHead::new();
    for end in 0..buf.len() {
        assert_eq!(
            parse_request(&buf[..end], &Limits::default(), &mut head),
            Ok(Parsed::Partial),
            "{:?}",
            String::from_utf8_lossy(&buf[..end])
        );
    }
    assert_eq!(
        parse_request(buf, &Limits::default(), &mut head),
        Ok(Parsed::Complete)
    );
    assert_eq!(head.head_len, buf.len());
    assert_eq!(head.body, BodyKind::Length(3));
    assert!(head.headers(buf).any(|(n, v)| n == b"X-A" && v.is_empty()));
}

#[test]
fn errors_are_found_before_the_head_is_complete() {
    assert_eq!(
        reject(b"GET / HTTP/1.1\r\nHost: a\r\n X"),
        HeadError::ObsFold.into()
    );
    assert_eq!(
        reject(b"GET / HTTP/1.1\r\nHost : a"),
        HeadError::WhitespaceBeforeColon.into()
    );
    assert_eq!(reject(b"GET / HTTP/1.1\n"), HeadError::BareLf.into());
    assert_eq!(
        reject(b"GET / HTTP/2.0\r\n"),
        RequestError::UnsupportedVersion
    );
}

#[test]
fn leading_empty_lines_are_skipped() {
    let buf = b"\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = complete(buf);
    assert_eq!(head.head_len, buf.len());
    assert_eq!(head.path(buf), b"/x");
}

#[test]
fn pipelined_requests_parse_one_at_a_time() {
    let buf = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\nGET /3";
    let mut head = RequestHead::new();
    assert_eq!(
        parse_request(buf, &Limits::default(), &mut head),
        Ok(Parsed::Complete)
    );
    assert_eq!(head.path(buf), b"/1");
    let rest = &buf[head.head_len..];
    assert_eq!(
        parse_request(rest, &Limits::default(), &mut head),
        Ok(Parsed::Complete)
    );
    assert_eq!(head.path(rest), b"/2");
    assert_eq!(head.host(rest), b"b");
    let rest = &rest[head.head_len..];
    assert_eq!(
        parse_request(rest, &Limits::default(), &mut head),
        Ok(Parsed::Partial)
    );
}

#[test]
fn reparsing_into_a_reused_head_does_not_allocate() {
    let big = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    let small = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n";
    let mut head = RequestHead::new();
    assert_eq!(
        parse_request(big, &Limits::default(), &mut head),
        Ok(Parsed::Complete)
    );
    let (ptr, cap) = (head.fields.as_ptr(), head.fields.capacity());
    for buf in [&small[..], big, small, big] {
        assert_eq!(
            parse_request(buf, &Limits::default(), &mut head),
            Ok(Parsed::Complete)
        );
        assert_eq!((head.fields.as_ptr(), head.fields.capacity()), (ptr, cap));
    }
    assert_eq!(RequestHead::new().fields.capacity(), 0);
}

// ---- connection management -------------------------------------------------------------------

#[test]
fn keep_alive_defaults() {
    let cases: [(&[u8], bool); 7] = [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
            false,
        ),
        (b"GET / HTTP/1.0\r\nHost: a\r\n\r\n", false),
        (
            b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
        (
            b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            true,
        ),
    ];
    for (buf, keep) in cases {
        assert_eq!(
            complete(buf).keep_alive,
            keep,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn expect_100_continue() {
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
    let head = complete(buf);
    assert!(head.expect_continue);
    assert!(forward(buf).contains("\r\nExpect: 100-Continue\r\n"));
    assert!(!complete(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n").expect_continue);
    // RFC 9110 §10.1.1: ignored (and not forwarded) on HTTP/1.0.
    let buf = b"POST / HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert!(!complete(buf).expect_continue);
    assert!(!forward(buf).contains("Expect"));
}

#[test]
fn too_many_connection_options_is_400() {
    let options: Vec<String> = (0..65).map(|i| format!("o{i}")).collect();
    let e = reject_fields(&format!("Connection: {}\r\n", options.join(", ")));
    assert_eq!(e, HeadError::TooManyConnectionOptions.into());
    assert_eq!(e.status(), 400);
}

// ---- forwarding rewrite ----------------------------------------------------------------------

#[test]
fn fields_named_by_connection_are_dropped_then_own_forwarding_fields_added() {
    let buf = b"GET /p?q=1 HTTP/1.1\r\n\
        Host: example.com\r\n\
        User-Agent: t\r\n\
        Connection: close, X-Forwarded-For\r\n\
        X-Forwarded-For: 9.9.9.9\r\n\
        Accept: */*\r\n\
        \r\n";
    assert_eq!(
        forward(buf),
        "GET /p?q=1 HTTP/1.1\r\n\
         Host: example.com\r\n\
         User-Agent: t\r\n\
         Accept: */*\r\n\
         X-Forwarded-For: 1.2.3.4\r\n\
         X-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: example.com\r\n\
         Forwarded: for=1.2.3.4;host=example.com;proto=https\r\n\
         \r\n"
    );
}

#[test]
fn forwarding_rewrite_exact_bytes() {
    let buf = b"POST /upload HTTP/1.1\r\n\
        X-Forwarded-For: 10.0.0.1\r\n\
        host: api.example.com:8443\r\n\
        Connection: keep-alive, X-Secret\r\n\
        Keep-Alive: timeout=5\r\n\
        Proxy-Connection: keep-alive\r\n\
        TE: trailers\r\n\
        Trailer: X-Checksum\r\n\
        Upgrade: h2c\r\n\
        X-Secret: s\r\n\
        Proxy-Authorization: Basic eDp5\r\n\
        X-Forwarded-Proto: http\r\n\
        X-Forwarded-Host: evil\r\n\
        Forwarded: for=10.0.0.1\r\n\
        X-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n\
        Content-Length: 5\r\n\
        Cookie: a=b\r\n\
        \r\n";
    assert_eq!(
        forward(buf),
        "POST /upload HTTP/1.1\r\n\
         Host: api.example.com:8443\r\n\
         Proxy-Authorization: Basic eDp5\r\n\
         Cookie: a=b\r\n\
         Content-Length: 5\r\n\
         X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 1.2.3.4\r\n\
         X-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: api.example.com:8443\r\n\
         Forwarded: for=10.0.0.1, for=1.2.3.4;host=\"api.example.com:8443\";proto=https\r\n\
         \r\n"
    );
}

#[test]
fn ipv6_clients_in_forwarding_fields() {
    let buf = b"GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n";
    let fwd = Forwarding {
        client_ip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        proto: "https",
        request_id: None,
        client_cert: ClientCertFields::Off,
    };
    assert_eq!(
        forward_with(buf, &fwd),
        "GET / HTTP/1.1\r\n\
         Host: [::1]:8443\r\n\
         X-Forwarded-For: 2001:db8::1\r\n\
         X-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: [::1]:8443\r\n\
         Forwarded: for=\"[2001:db8::1]\";host=\"[::1]:8443\";proto=https\r\n\
         \r\n"
    );
    // An IPv4-mapped address (dual-stack listener) is written as IPv4.
    let fwd = Forwarding {
        client_ip: IpAddr::V6(Ipv4Addr::new(5, 6, 7, 8).to_ipv6_mapped()),
        proto: "https",
        request_id: None,
        client_cert: ClientCertFields::Off,
    };
    let out = forward_with(buf, &fwd);
    assert!(out.contains("X-Forwarded-For: 5.6.7.8\r\n"), "{out}");
    assert!(out.contains("Forwarded: for=5.6.7.8;"), "{out}");
}

#[test]
fn chunked_requests_keep_normalized_transfer_encoding() {
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: GZIP ,\tChunked\r\nX-A: b\r\n\r\n";
    assert_eq!(
        forward(buf),
        "POST / HTTP/1.1\r\n\
         Host: a\r\n\
         X-A: b\r\n\
         Transfer-Encoding: gzip, chunked\r\n\
         X-Forwarded-For: 1.2.3.4\r\n\
         X-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: a\r\n\
         Forwarded: for=1.2.3.4;host=a;proto=https\r\n\
         \r\n"
    );
}

#[test]
fn connection_cannot_strip_framing_or_host() {
    // A client naming framing fields in Connection must not make ringway forward a request
    // whose length the backend would read differently (request smuggling).
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, Host\r\nContent-Length: 4\r\n\r\n";
    let head = complete(buf);
    assert_eq!(head.body, BodyKind::Length(4));
    let out = forward(buf);
    assert!(out.contains("\r\nContent-Length: 4\r\n"), "{out}");
    assert!(out.starts_with("POST / HTTP/1.1\r\nHost: a\r\n"), "{out}");
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(forward(buf).contains("\r\nTransfer-Encoding: chunked\r\n"));
}

#[test]
fn write_appends_to_out() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = complete(buf);
    let mut out = b"previous".to_vec();
    write_request_head(buf, &head, &V4, &mut out);
    assert!(out.starts_with(b"previousGET / HTTP/1.1\r\n"));
}

#[test]
fn request_id_is_forwarded_as_sent_or_replaced_by_ours() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: theirs\r\n\r\n";
    assert_eq!(complete(buf).request_id(buf), Some(&b"theirs"[..]));
    let kept = forward(buf);
    assert!(kept.contains("X-Request-Id: theirs\r\n"), "{kept}");
    let ours = Forwarding {
        request_id: Some(b"ours"),
        ..V4
    };
    let replaced = forward_with(buf, &ours);
    assert!(replaced.contains("X-Request-Id: ours\r\n"), "{replaced}");
    assert!(!replaced.contains("theirs"), "{replaced}");
    // Named in Connection: hop-by-hop, neither forwarded nor kept.
    let hop = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-request-id\r\nX-Request-Id: t\r\n\r\n";
    assert_eq!(complete(hop).request_id(hop), None);
}

// ---- protocol upgrades (RFC 9110 §7.8) -------------------------------------------------------

#[test]
fn an_upgrade_needs_connection_upgrade_an_upgrade_field_and_http11() {
    let cases: [(&[u8], bool); 9] = [
        (
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            true,
        ),
        (
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\nUpgrade: WebSocket\r\n\r\n",
            true,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c, foo/1.1\r\n\r\n",
            true,
        ),
        // Upgrade without the Connection option: not meant for this hop.
        (
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
            false,
        ),
        // The option without a field.
        (
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",
            false,
        ),
        // HTTP/1.0: ignored (RFC 9110 §7.8).
        (
            b"GET /ws HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            false,
        ),
        // Not a protocol list.
        (
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: web socket\r\n\r\n",
            false,
        ),
        (
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: a/\r\n\r\n",
            false,
        ),
        (
            b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: ,\r\n\r\n",
            false,
        ),
    ];
    for (buf, upgrade) in cases {
        assert_eq!(
            complete(buf).upgrade,
            upgrade,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
}

#[test]
fn an_upgrade_offer_lists_the_upgrade_fields_elements() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\
        Upgrade: h2c, , foo/1.1\r\nUpgrade: websocket\r\n\r\n";
    let head = complete(buf);
    assert!(head.upgrade);
    assert_eq!(head.upgrade_offer(buf), b"h2c,foo/1.1,websocket");
    // No upgrade (no Connection option): nothing on offer.
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    assert_eq!(complete(buf).upgrade_offer(buf), b"");
}

#[test]
fn an_upgrade_request_is_forwarded_with_upgrade_and_connection_upgrade() {
    let buf = b"GET /chat HTTP/1.1\r\n\
        Host: a\r\n\
        Connection: keep-alive, Upgrade, X-Hop\r\n\
        Upgrade: websocket\r\n\
        X-Hop: 1\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\
        \r\n";
    assert_eq!(
        forward(buf),
        "GET /chat HTTP/1.1\r\n\
         Host: a\r\n\
         Upgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Connection: upgrade\r\n\
         X-Forwarded-For: 1.2.3.4\r\n\
         X-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: a\r\n\
         Forwarded: for=1.2.3.4;host=a;proto=https\r\n\
         \r\n"
    );
    // Without `Connection: upgrade` the Upgrade field is dropped, as any hop-by-hop field.
    let plain = forward(b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert!(!plain.contains("Upgrade"), "{plain}");
    assert!(!plain.contains("Connection"), "{plain}");
    let old = forward(
        b"GET /chat HTTP/1.0\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    assert!(!old.contains("Upgrade"), "{old}");
    assert!(!old.contains("Connection"), "{old}");
}

#[test]
fn an_upgrade_request_with_a_body_keeps_its_framing() {
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\
        Content-Length: 3\r\n\r\nabc";
    let head = complete(buf);
    assert!(head.upgrade);
    assert_eq!(head.body, BodyKind::Length(3));
    let out = forward(buf);
    assert!(
        out.contains("Upgrade: h2c\r\nContent-Length: 3\r\nConnection: upgrade\r\n"),
        "{out}"
    );
}

#[test]
fn client_certificate_fields_are_never_the_clients() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nX-Client-Verify: SUCCESS\r\n\
        x-client-cert-subject: CN=admin\r\nX-CLIENT-CERT-SAN: DNS:admin\r\n\
        X-Client-Cert-Fingerprint: 00\r\nX-Client-Cert-Other: kept\r\n\r\n";
    let off = forward(buf);
    for name in ["verify", "subject", "san", "fingerprint"] {
        assert!(
            !off.to_ascii_lowercase()
                .contains(&format!("x-client-{name}"))
                && !off
                    .to_ascii_lowercase()
                    .contains(&format!("x-client-cert-{name}")),
            "{name}: {off}"
        );
    }
    assert!(off.contains("X-Client-Cert-Other: kept\r\n"), "{off}");
    assert!(off.ends_with("proto=https\r\n\r\n"), "{off}");

    let none = Forwarding {
        client_cert: ClientCertFields::NoCertificate,
        ..V4
    };
    let out = forward_with(buf, &none);
    assert!(
        out.ends_with("proto=https\r\nX-Client-Verify: NONE\r\n\r\n"),
        "{out}"
    );
    assert!(!out.contains("admin"), "{out}");

    let verified = Forwarding {
        client_cert: ClientCertFields::Verified {
            subject: "CN=client,O=Example",
            san: "",
            fingerprint: "ab01",
        },
        ..V4
    };
    let out = forward_with(buf, &verified);
    assert!(
        out.ends_with(
            "X-Client-Verify: SUCCESS\r\nX-Client-Cert-Subject: CN=client,O=Example\r\n\
             X-Client-Cert-Fingerprint: ab01\r\n\r\n"
        ),
        "{out}"
    );
    assert_eq!(out.matches("X-Client-Verify").count(), 1, "{out}");
    assert!(
        !out.contains("SAN"),
        "an empty SAN list writes no field: {out}"
    );
    assert!(verified.client_cert.len() >= out.len() - forward(buf).len());
}
