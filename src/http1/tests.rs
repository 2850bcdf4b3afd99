//! Cross-module tests: a connection's worth of pipelined messages driven through the parsers
//! and the body decoder, and mutation tests that check the invariants on malformed input.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

/// A request's path and its body bytes as forwarded.
type Exchange = (Vec<u8>, Vec<u8>);

/// What a caller does with a client's bytes: parse a head, frame its body, repeat.
/// Returns (path, body bytes as forwarded) per request, or the first error's status.
fn drive(buf: &[u8]) -> Result<Vec<Exchange>, u16> {
    let limits = Limits::default();
    let mut head = RequestHead::new();
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let rest = &buf[at..];
        match parse_request(rest, &limits, &mut head) {
            Ok(Parsed::Complete) => {}
            Ok(Parsed::Partial) => break,
            Err(e) => return Err(e.status().code()),
        }
        let path = head.path(rest).to_vec();
        at += head.head_len;
        let mut body = BodyDecoder::new(head.body, &limits);
        let a = body.advance(&buf[at..]).map_err(|e| e.status().code())?;
        out.push((path, buf[at..at + a.consumed].to_vec()));
        at += a.consumed;
        if !a.done {
            break;
        }
    }
    Ok(out)
}

#[test]
fn pipelined_requests_with_bodies_stay_in_order() {
    let buf = b"GET /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 17\r\n\r\nGET /x HTTP/1.1\r\n\
                POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
                4\r\nGET \r\n0\r\nT: v\r\n\r\n\
                HEAD /3 HTTP/1.1\r\nHost: a\r\n\r\n";
    let got = drive(buf).expect("valid");
    let want: Vec<Exchange> = vec![
        (b"/1".to_vec(), b"GET /x HTTP/1.1\r\n".to_vec()),
        (b"/2".to_vec(), b"4\r\nGET \r\n0\r\nT: v\r\n\r\n".to_vec()),
        (b"/3".to_vec(), Vec::new()),
    ];
    assert_eq!(got, want);
}

#[test]
fn classic_smuggling_attempts_are_refused() {
    // CL.TE and TE.CL: both framings present.
    let cl_te = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG";
    assert_eq!(drive(cl_te), Err(400));
    // TE.TE obfuscations.
    for te in [
        &b"Transfer-Encoding: xchunked"[..],
        b"Transfer-Encoding : chunked",
        b"Transfer-Encoding: chunked\r\nTransfer-encoding: x",
        b"Transfer-Encoding:\x0bchunked",
        b"X: y\r\n Transfer-Encoding: chunked",
        b"Transfer-Encoding\n: chunked",
        b"Transfer-Encoding: \"chunked\"",
    ] {
        let mut buf = b"POST / HTTP/1.1\r\nHost: a\r\n".to_vec();
        buf.extend_from_slice(te);
        buf.extend_from_slice(b"\r\nContent-Length: 4\r\n\r\n1\r\nZ\r\n0\r\n\r\n");
        let r = drive(&buf);
        assert!(
            matches!(r, Err(400 | 501)),
            "{:?}: {r:?}",
            String::from_utf8_lossy(te)
        );
    }
    // A chunk size line ending in a bare LF hides a request from a lenient reader.
    let bare =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;\nxx\r\n0\r\n\r\n";
    assert_eq!(drive(bare), Err(400));
}

/// Deterministic xorshift, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INTERESTING: &[u8] = b" \t\r\n:;,=\"\\0aAfFxX-+/?#@[]*\x00\x0b\x7f\xff";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let pos = rng.below(m.len() + 1);
        let byte = if rng.below(4) == 0 {
            rng.next() as u8
        } else {
            INTERESTING[rng.below(INTERESTING.len())]
        };
        match rng.below(3) {
            0 if pos < m.len() => m[pos] = byte,
            1 if pos < m.len() => {
                m.remove(pos);
            }
            _ => m.insert(pos, byte),
        }
    }
    m
}

/// Whatever the bytes, a complete request's re-serialized head parses back complete, with the
/// same method, target, host and framing: ringway and a backend that uses the same rules can
/// never disagree on where the request ends.
#[test]
fn mutated_requests_never_panic_and_rewrites_reparse_identically() {
    let seeds: [&[u8]; 6] = [
        b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
        b"POST /u HTTP/1.1\r\nHost: a:8080\r\nContent-Length: 42\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\n",
        b"PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\nExpect: 100-continue\r\n\r\n",
        b"GET http://a:1/p HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nForwarded: for=x\r\n\r\n",
        b"OPTIONS * HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
        b"\r\nDELETE /d HTTP/1.1\r\nHost: [::1]:9\r\nContent-Length: 1, 1\r\n\r\n",
    ];
    let fwd = Forwarding {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        proto: "https",
        request_id: None,
        client_cert: ClientCertFields::Off,
    };
    let limits = Limits::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut complete, mut rejected) = (0, 0);
    for i in 0..30_000 {
        let buf = mutate(&mut rng, seeds[i % seeds.len()]);
        let mut head = RequestHead::new();
        match parse_request(&buf, &limits, &mut head) {
            Ok(Parsed::Complete) => complete += 1,
            Ok(Parsed::Partial) => continue,
            Err(e) => {
                assert!([400, 413, 414, 431, 501, 505].contains(&e.status().code()));
                rejected += 1;
                continue;
            }
        }
        assert!(head.head_len <= buf.len());
        let mut out = Vec::new();
        write_request_head(&buf, &head, &fwd, &mut out);
        let mut again = RequestHead::new();
        let r = parse_request(&out, &limits, &mut again);
        let ctx = || {
            format!(
                "{:?} -> {:?}",
                String::from_utf8_lossy(&buf),
                String::from_utf8_lossy(&out)
            )
        };
        assert_eq!(r, Ok(Parsed::Complete), "{}", ctx());
        assert_eq!(again.head_len, out.len(), "{}", ctx());
        assert_eq!(again.body, head.body, "{}", ctx());
        assert_eq!(
            again.method_bytes(&out),
            head.method_bytes(&buf),
            "{}",
            ctx()
        );
        assert_eq!(again.path(&out), head.path(&buf), "{}", ctx());
        assert_eq!(again.host(&out), head.host(&buf), "{}", ctx());
        assert!(again.keep_alive, "{}", ctx());
    }
    assert!(complete > 1000 && rejected > 1000, "{complete} {rejected}");
}

#[test]
fn mutated_responses_never_panic_and_rewrites_reparse_identically() {
    let seeds: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        b"HTTP/1.0 304 Not Modified\r\nETag: \"x\"\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
    ];
    let limits = Limits::default();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for i in 0..20_000 {
        let buf = mutate(&mut rng, seeds[i % seeds.len()]);
        let method = if i % 7 == 0 {
            Method::Head
        } else {
            Method::Get
        };
        let mut head = ResponseHead::new();
        match parse_response(&buf, &limits, method, &mut head) {
            Ok(Parsed::Complete) => {}
            Ok(Parsed::Partial) => continue,
            Err(e) => {
                assert_eq!(e.status(), 502);
                continue;
            }
        }
        assert!(head.head_len <= buf.len());
        let mut out = Vec::new();
        write_response_head(&buf, &head, true, false, &mut out);
        let mut again = ResponseHead::new();
        let ctx = || {
            format!(
                "{:?} -> {:?}",
                String::from_utf8_lossy(&buf),
                String::from_utf8_lossy(&out)
            )
        };
        assert_eq!(
            parse_response(&out, &limits, method, &mut again),
            Ok(Parsed::Complete),
            "{}",
            ctx()
        );
        assert_eq!(again.status, head.status, "{}", ctx());
        assert_eq!(again.head_len, out.len(), "{}", ctx());
        if head.status != 204 && !head.is_informational() {
            assert_eq!(again.body, head.body, "{}", ctx());
        }
    }
}

/// Chunked decoding gives the same outcome whether the input comes whole or byte by byte.
#[test]
fn mutated_chunked_bodies_decode_the_same_whole_and_bytewise() {
    let seeds: [&[u8]; 3] = [
        b"5\r\nhello\r\n3;a=b\r\nabc\r\n0\r\nT: v\r\n\r\nNEXT",
        b"1; q=\"x\\\"\" \r\nx\r\nA\r\n0123456789\r\n0\r\n\r\n",
        b"0\r\n\r\n",
    ];
    let limits = Limits {
        max_trailer: 32,
        max_body: 64,
        ..Limits::default()
    };
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for i in 0..20_000 {
        let buf = mutate(&mut rng, seeds[i % seeds.len()]);
        let mut d = BodyDecoder::new(BodyKind::Chunked, &limits);
        let whole = d.advance(&buf).map(|a| (a.consumed, a.done));
        let mut d = BodyDecoder::new(BodyKind::Chunked, &limits);
        let mut bytewise = Ok((0, false));
        for b in &buf {
            if d.is_done() {
                break;
            }
            match d.advance(std::slice::from_ref(b)) {
                Ok(a) => bytewise = Ok((bytewise.map_or(0, |(c, _)| c) + a.consumed, a.done)),
                Err(e) => {
                    bytewise = Err(e);
                    break;
                }
            }
        }
        assert_eq!(whole, bytewise, "{:?}", String::from_utf8_lossy(&buf));
    }
}
