//! Sans-IO HTTP/1.1 costs on the request path, per message:
//!
//! - `request_head`: `parse_request` (httparse + the RFC 9112 framing and Host rules) followed
//!   by `write_request_head` (the rewritten head with hop-by-hop fields dropped and the
//!   forwarding fields added) into a reused `Vec`, for a 3-field API request and a 30-field
//!   browser request;
//! - `chunked`: `BodyDecoder::advance` over a 64 KiB payload encoded in 4 KiB chunks and in
//!   16 B chunks, fed 16 KiB at a time (one TLS record of plaintext per receive);
//! - `response_head`: `parse_response` of a typical nginx response head (8 fields) followed by
//!   `write_response_head` into a reused `Vec`.
//!
//! Throughput is in head (or encoded body) bytes, so the two request sizes compare directly.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ringway::http1::{
    BodyDecoder, BodyKind, ClientCertFields, Forwarding, Limits, Method, Parsed, RequestHead,
    ResponseHead, parse_request, parse_response, write_request_head, write_response_head,
};

/// A small API call, as curl or a service client sends it.
const REQUEST_3: &[u8] = b"GET /api/v1/users/42?fields=name,email HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
\r\n";

/// A page load from a current desktop browser: 30 fields, cookies included.
const REQUEST_30: &[u8] = b"GET /products/shoes/running?color=blue&size=42&page=2 HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0\r\n\
sec-ch-ua: \"Chromium\";v=\"130\", \"Google Chrome\";v=\"130\", \"Not?A_Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Windows\"\r\n\
sec-ch-ua-platform-version: \"15.0.0\"\r\n\
sec-ch-ua-arch: \"x86\"\r\n\
sec-ch-ua-bitness: \"64\"\r\n\
sec-ch-prefers-color-scheme: light\r\n\
sec-ch-ua-full-version-list: \"Chromium\";v=\"130.0.6723.92\", \"Google Chrome\";v=\"130.0.6723.92\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/products/shoes?color=blue\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en-US;q=0.9,en;q=0.8,fr;q=0.7\r\n\
Cookie: session=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08; _ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; consent=analytics%3Dtrue%26ads%3Dfalse; cart=3\r\n\
If-None-Match: W/\"5e8c-18d2f1a9b40\"\r\n\
If-Modified-Since: Tue, 14 Jan 2025 10:00:00 GMT\r\n\
Priority: u=0, i\r\n\
DNT: 1\r\n\
X-Requested-With: XMLHttpRequest\r\n\
X-Forwarded-For: 198.51.100.23\r\n\
X-Request-Id: 3f1c2b7e-8d4a-4e6f-9b0a-1c2d3e4f5a6b\r\n\
Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\
\r\n";

/// nginx serving a static file.
const RESPONSE_NGINX: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Tue, 14 Jan 2025 10:00:00 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 1024\r\n\
Last-Modified: Mon, 13 Jan 2025 08:30:00 GMT\r\n\
Connection: keep-alive\r\n\
ETag: \"6784d0b8-400\"\r\n\
Accept-Ranges: bytes\r\n\
\r\n";

const BODY_LEN: usize = 64 * 1024;

/// Bytes handed to the decoder per call: one TLS record of plaintext.
const RECEIVE: usize = 16 * 1024;

fn forwarding() -> Forwarding<'static> {
    Forwarding {
        client_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        proto: "https",
        // As the proxy sends with `request_id = "keep"` and no client id: a generated one.
        request_id: Some(b"0123456789abcdef0000000000000001"),
        client_cert: ClientCertFields::Off,
    }
}

fn request_head(c: &mut Criterion) {
    let limits = Limits::default();
    let fwd = forwarding();
    let mut group = c.benchmark_group("request_head");
    for (name, raw) in [("3_fields", REQUEST_3), ("30_fields", REQUEST_30)] {
        // Check once, outside the measurement, that the input is what the bench claims.
        let mut head = RequestHead::new();
        assert_eq!(parse_request(raw, &limits, &mut head), Ok(Parsed::Complete));
        assert_eq!(head.head_len, raw.len());
        let fields = head.headers(raw).count();
        assert!(
            (name == "3_fields" && fields == 3) || (name == "30_fields" && fields == 30),
            "{name}: {fields} fields"
        );

        let mut out = Vec::with_capacity(4096);
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(BenchmarkId::new("parse_rewrite", name), |b| {
            b.iter(|| {
                out.clear();
                let parsed = parse_request(black_box(raw), &limits, &mut head);
                debug_assert_eq!(parsed, Ok(Parsed::Complete));
                write_request_head(raw, &head, &fwd, &mut out);
                black_box(out.len())
            })
        });
        group.bench_function(BenchmarkId::new("parse_only", name), |b| {
            b.iter(|| black_box(parse_request(black_box(raw), &limits, &mut head)))
        });
    }
    group.finish();
}

/// `BODY_LEN` payload bytes in chunks of `chunk` bytes, with the last chunk and an empty
/// trailer section.
fn chunked_body(chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(BODY_LEN * 2);
    let mut left = BODY_LEN;
    while left > 0 {
        let n = left.min(chunk);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend(std::iter::repeat_n(b'x', n));
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Runs one body through a fresh decoder, `RECEIVE` bytes per call; returns the bytes consumed.
fn decode_all(encoded: &[u8], limits: &Limits) -> usize {
    let mut decoder = BodyDecoder::new(BodyKind::Chunked, limits);
    let mut pos = 0;
    while pos < encoded.len() {
        let end = (pos + RECEIVE).min(encoded.len());
        let step = decoder
            .advance(&encoded[pos..end])
            .expect("valid chunked body");
        pos += step.consumed;
        if step.done {
            break;
        }
    }
    pos
}

fn chunked(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("chunked_64KiB");
    for (name, chunk) in [("4KiB_chunks", 4096), ("16B_chunks", 16)] {
        let encoded = chunked_body(chunk);
        assert_eq!(decode_all(&encoded, &limits), encoded.len());
        group.throughput(Throughput::Bytes(encoded.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| black_box(decode_all(black_box(&encoded), &limits)))
        });
    }
    group.finish();
}

fn response_head(c: &mut Criterion) {
    let limits = Limits::default();
    let raw = RESPONSE_NGINX;
    let mut head = ResponseHead::new();
    assert_eq!(
        parse_response(raw, &limits, Method::Get, &mut head),
        Ok(Parsed::Complete)
    );
    assert_eq!(head.head_len, raw.len());
    assert_eq!(head.body, BodyKind::Length(1024));

    let mut out = Vec::with_capacity(4096);
    let mut group = c.benchmark_group("response_head");
    group.throughput(Throughput::Bytes(raw.len() as u64));
    group.bench_function("nginx_8_fields/parse_rewrite", |b| {
        b.iter(|| {
            out.clear();
            let parsed = parse_response(black_box(raw), &limits, Method::Get, &mut head);
            debug_assert_eq!(parsed, Ok(Parsed::Complete));
            write_response_head(raw, &head, true, false, &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, request_head, chunked, response_head);
criterion_main!(benches);
