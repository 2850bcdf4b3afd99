//! CHECKLISTS.md section 1, end to end: every framing and smuggling row against the real proxy.
//! A rejected request gets its exact status, the connection is closed, and no byte of it
//! reaches the backend.

mod common;

use std::sync::Arc;

use common::*;

/// Sends each case on its own connection and checks status, close, and that the backend got
/// nothing.
fn assert_all_rejected(cases: &[(&str, &[u8], u16)]) {
    assert_all_rejected_with(cases, ProxyOptions::default());
}

fn assert_all_rejected_with(cases: &[(&str, &[u8], u16)], opts: ProxyOptions) {
    let b = Backend::start("b");
    let proxy = Proxy::start_with(&[b.addr], opts);
    for (name, raw, status) in cases {
        let mut c = proxy.client();
        c.send(raw);
        let r = c
            .read_response("GET")
            .unwrap_or_else(|e| panic!("{name}: no response: {e}"));
        assert_eq!(r.status, *status, "{name}");
        assert_eq!(r.header("connection"), Some("close"), "{name}");
        assert!(c.is_closed(), "{name}: connection left open");
        assert_eq!(b.raw_len(), 0, "{name}: bytes reached the backend");
        assert_eq!(b.accepted(), 0, "{name}: backend connection opened");
    }
}

#[test]
fn content_length_with_transfer_encoding() {
    assert_all_rejected(&[
        (
            "CL then TE",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "TE then CL",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            400,
        ),
    ]);
}

#[test]
fn transfer_encoding_variants() {
    assert_all_rejected(&[
        ("gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (
            "chunked, gzip",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            400,
        ),
        (
            "chunked, chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            400,
        ),
        (
            "two TE headers",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (
            "space before colon",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
            400,
        ),
        (
            "leading whitespace on first header line",
            b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n",
            400,
        ),
        (
            "control character in TE",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n",
            400,
        ),
        (
            "HTTP/1.0 with TE",
            b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
    ]);
}

#[test]
fn unknown_transfer_codings_are_refused() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    for te in ["xchunked", "identity"] {
        let mut c = proxy.client();
        c.send(format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n").as_bytes());
        let r = c.read_response("POST").unwrap();
        assert!(r.status == 400 || r.status == 501, "{te}: {}", r.status);
        assert!(c.is_closed(), "{te}");
    }
    assert_eq!(b.raw_len(), 0);
}

#[test]
fn tab_before_chunked_is_valid() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(b.received()[0].body, b"abc");
}

#[test]
fn bad_content_lengths() {
    let mut cases: Vec<(String, Vec<u8>, u16)> = Vec::new();
    for cl in [
        "3,2",
        "-1",
        "+5",
        "0x10",
        "1.5",
        "",
        "1 0",
        "99999999999999999999999",
    ] {
        cases.push((
            format!("CL {cl:?}"),
            format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {cl}\r\n\r\nabc").into_bytes(),
            400,
        ));
    }
    cases.push((
        "two differing CLs".into(),
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\nabc".to_vec(),
        400,
    ));
    let borrowed: Vec<(&str, &[u8], u16)> = cases
        .iter()
        .map(|(n, r, s)| (n.as_str(), r.as_slice(), *s))
        .collect();
    assert_all_rejected(&borrowed);
}

#[test]
fn identical_duplicate_content_length_forwards_one_value() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 200);
    let got = &b.received()[0];
    assert_eq!(got.headers_named("content-length"), vec!["3"]);
    assert_eq!(got.body, b"abc");
}

#[test]
fn bad_chunk_sizes_and_extensions() {
    let mut cases: Vec<(String, Vec<u8>, u16)> = Vec::new();
    let bodies: [(&str, &[u8]); 10] = [
        ("0x5", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("+5", b"+5\r\nhello\r\n0\r\n\r\n"),
        ("5 0", b"5 0\r\nhello\r\n0\r\n\r\n"),
        ("Z", b"Z\r\nhello\r\n0\r\n\r\n"),
        ("17 hex digits", b"00000000000000005\r\nhello\r\n0\r\n\r\n"),
        ("bare LF in extension", b"5;a=\nb\r\nhello\r\n0\r\n\r\n"),
        ("bare CR in extension", b"5;a=\rb\r\nhello\r\n0\r\n\r\n"),
        ("NUL in extension", b"5;a=\0b\r\nhello\r\n0\r\n\r\n"),
        ("data not followed by CRLF", b"5\r\nhelloXX0\r\n\r\n"),
        ("bare LF after size", b"5\nhello\r\n0\r\n\r\n"),
    ];
    for (name, body) in bodies {
        let mut raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        raw.extend_from_slice(body);
        cases.push((name.to_string(), raw, 400));
    }
    let mut long_ext =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;".to_vec();
    long_ext.extend(std::iter::repeat_n(b'a', 64 * 1024));
    long_ext.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    cases.push(("overlong extension".into(), long_ext, 400));
    let borrowed: Vec<(&str, &[u8], u16)> = cases
        .iter()
        .map(|(n, r, s)| (n.as_str(), r.as_slice(), *s))
        .collect();
    assert_all_rejected(&borrowed);
}

#[test]
fn bad_trailers_are_rejected() {
    let mut huge =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    for (name, raw) in [
        ("oversized trailer", huge.as_slice()),
        (
            "malformed trailer",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n"
                .as_slice(),
        ),
    ] {
        let mut c = proxy.client();
        c.send(raw);
        let r = c.read_response("POST").unwrap();
        assert!(r.status == 400 || r.status == 431, "{name}: {}", r.status);
        assert!(c.is_closed(), "{name}");
    }
    // Trailers are never merged into the head: the backend never saw a head with X-T.
    for req in b.received() {
        assert_eq!(req.header("x-t"), None);
    }
}

#[test]
fn malformed_heads() {
    assert_all_rejected(&[
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
            400,
        ),
        (
            "bare CR in head",
            b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
            400,
        ),
        ("bare LF line endings", b"GET / HTTP/1.1\nHost: a\n\n", 400),
        (
            "NUL in value",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n",
            400,
        ),
        (
            "CR in value",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
            400,
        ),
        (
            "bad name byte",
            b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
            400,
        ),
        ("no Host", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
        (
            "two Hosts",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
        (
            "invalid Host",
            b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n",
            400,
        ),
        ("GET *", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (
            "authority-form GET",
            b"GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            400,
        ),
        ("# in target", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("double space", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (
            "malformed version",
            b"GET / HTTP/1.x\r\nHost: a\r\n\r\n",
            400,
        ),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ]);
}

#[test]
fn absolute_form_target_sets_host() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"GET http://a/x?y HTTP/1.1\r\nHost: other\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    let got = &b.received()[0];
    assert_eq!(got.path, "/x?y");
    assert_eq!(got.headers_named("host"), vec!["a"]);
}

#[test]
fn get_and_head_with_body_keep_their_body() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(
        b"GET /g HTTP/1.1\r\nHost: a\r\nContent-Length: 26\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    );
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.text(), "b GET /g\n");
    assert_eq!(c.get("/next").text(), "b GET /next\n");
    let got = b.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, b"GET /smuggled HTTP/1.1\r\n\r\n");
    assert_eq!(got[1].path, "/next");
}

#[test]
fn limits_give_414_431_413() {
    let opts = ProxyOptions {
        extra: "[limits]\nrequest_line = 1024\nhead = 4096\nheaders = 20\nbody = 1000\n".into(),
        ..ProxyOptions::default()
    };
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(2000));
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(5000)
    );
    let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..10_000 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let big_body = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n".to_string();
    let mut chunked_big =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n".to_vec();
    chunked_big.extend(std::iter::repeat_n(b'z', 1001));
    chunked_big.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_all_rejected_with(
        &[
            ("request line", long_target.as_bytes(), 414),
            ("head", big_head.as_bytes(), 431),
            ("10,000 headers", many.as_bytes(), 431),
            ("Content-Length over limit", big_body.as_bytes(), 413),
            ("chunked over limit", &chunked_big, 413),
        ],
        opts,
    );
}

#[test]
fn nothing_after_a_400_is_processed() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response("GET").unwrap().status, 200);
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 400);
    assert!(c.is_closed());
    let got = b.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/");
}

#[test]
fn upgrade_is_not_tunnelled() {
    // An Upgrade without `Connection: upgrade` is no upgrade: it is dropped, and a backend
    // that switches protocols anyway is a 502 whose tunnel bytes never reach the client.
    // (Real upgrades: tests/websocket.rs.)
    let b = Backend::with_handler(
        "switch",
        Arc::new(|_, s| {
            use std::io::Write;
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\ntunnel bytes")?;
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 502);
    assert!(c.is_closed());
    assert!(find(c.pending(), b"tunnel bytes").is_none());
    let got = &b.received()[0];
    assert_eq!(got.header("upgrade"), None);
    assert_eq!(got.header("connection"), None);
}

#[test]
fn bad_backend_responses_are_502() {
    let cases: Vec<(&str, &'static [u8])> = vec![
        (
            "bad status line",
            b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "duplicate CL",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        ),
        (
            "CL with TE",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "unknown TE",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
        (
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n",
        ),
        ("garbage", b"SSH-2.0-OpenSSH\r\n\r\n"),
        (
            "bad chunk size right after the head",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhi\r\n0\r\n\r\n",
        ),
    ];
    for (name, response) in cases {
        let b = Backend::with_handler(
            "bad",
            Arc::new(move |_, s| {
                use std::io::Write;
                s.write_all(response)?;
                Ok(Keep::Open)
            }),
        );
        let proxy = Proxy::start(&[b.addr]);
        let mut c = proxy.client();
        let r = c.get("/");
        assert_eq!(r.status, 502, "{name}");
        assert!(c.is_closed(), "{name}");
    }
}

#[test]
fn oversized_backend_head_is_502() {
    let b = Backend::with_handler(
        "huge",
        Arc::new(|_, s| {
            use std::io::Write;
            write!(
                s,
                "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
                "a".repeat(100_000)
            )?;
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    assert_eq!(c.get("/").status, 502);
}

#[test]
fn bytes_past_declared_length_are_not_forwarded() {
    let b = Backend::with_handler(
        "extra",
        Arc::new(|_, s| {
            use std::io::Write;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA BYTES")?;
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    let r = c.get("/");
    assert_eq!(r.text(), "ok");
    let r2 = c.get("/");
    assert_eq!(r2.text(), "ok");
    // The polluted backend connection was not reused.
    assert_eq!(b.accepted(), 2);
    assert!(c.pending().is_empty());
}
