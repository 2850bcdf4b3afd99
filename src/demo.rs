//! Demo backends for `ringway demo`: tiny HTTP/1.1 servers on loopback, in-process.
//!
//! Owns nothing on the request path: each demo backend is a plain blocking server on its own
//! threads that answers every request with a short text naming itself and echoing what it
//! received (method, path, forwarding headers), so a user sees round robin and the added headers
//! at once. Keep-alive is supported; requests are parsed with the proxy's own [`http1`] rules
//! and their bodies read and discarded.

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use crate::http1::{self, BodyDecoder, Limits, Parsed, RequestHead};

/// Starts `count` demo backends on loopback; returns their addresses.
pub fn start_backends(count: usize) -> io::Result<Vec<SocketAddr>> {
    let mut addrs = Vec::with_capacity(count);
    for n in 1..=count {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        addrs.push(listener.local_addr()?);
        std::thread::Builder::new()
            .name(format!("demo-backend-{n}"))
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let _ = std::thread::Builder::new()
                        .name(format!("demo-backend-{n}-conn"))
                        .spawn(move || {
                            let _ = serve(n, stream);
                        });
                }
            })?;
    }
    Ok(addrs)
}

/// Bytes read from a demo connection at once.
const READ_CHUNK: usize = 4096;

/// Serves one connection: each request is parsed by [`http1::parse_request`] (the proxy's own
/// rules) and its body read through [`BodyDecoder`] and discarded.
fn serve(n: usize, mut stream: TcpStream) -> io::Result<()> {
    let limits = Limits::default();
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut head = RequestHead::new();
    loop {
        loop {
            match http1::parse_request(&buf, &limits, &mut head) {
                Ok(Parsed::Complete) => break,
                Ok(Parsed::Partial) => {
                    if read_more(&mut stream, &mut buf)? == 0 {
                        return Ok(());
                    }
                }
                Err(e) => return stream.write_all(http1::error_response(e.status())),
            }
        }
        let line_end = buf.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
        let request_line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let mut echoed = String::new();
        for (name, value) in head.headers(&buf) {
            let shown = [
                &b"host"[..],
                b"x-forwarded-for",
                b"x-forwarded-proto",
                b"x-forwarded-host",
                b"forwarded",
            ];
            if shown.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                echoed.push_str(&format!(
                    "  {}: {}\n",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(value)
                ));
            }
        }
        // The body: read to its end and dropped.
        let mut body = BodyDecoder::new(head.body, &limits);
        let mut at = head.head_len;
        loop {
            let adv = body
                .advance(&buf[at..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            at += adv.consumed;
            if adv.done {
                break;
            }
            if read_more(&mut stream, &mut buf)? == 0 {
                return Ok(());
            }
        }
        let keep = head.keep_alive;
        buf.drain(..at);
        let body = format!("hello from demo backend {n}\nrequest: {request_line}\n{echoed}");
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        stream.flush()?;
        if !keep {
            return Ok(());
        }
    }
}

/// Appends what the connection has (at most [`READ_CHUNK`] bytes) to `buf`; 0 at its end.
fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let n = stream.read(&mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn a_demo_backend_answers_kept_alive_requests_with_bodies() {
        let addr = super::start_backends(1).unwrap()[0];
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(
            b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
              GET /b HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2, "{got}");
        assert!(got.contains("request: POST /a HTTP/1.1"), "{got}");
        assert!(got.contains("request: GET /b HTTP/1.1"), "{got}");
        assert!(got.contains("  X-Forwarded-For: 192.0.2.1"), "{got}");
    }
}
