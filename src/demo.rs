//! Demo backends for `ringway demo`: tiny HTTP/1.1 servers on loopback, in-process.
//!
//! Owns nothing on the request path: each demo backend is a plain blocking server on its own
//! threads that answers every request with a short text naming itself and echoing what it
//! received (method, path, forwarding headers), so a user sees round robin and the added headers
//! at once. Keep-alive is supported; request bodies are read (Content-Length) and discarded.

#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

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

fn serve(n: usize, stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0u64;
        let mut close = false;
        let mut echoed = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let lower = name.to_ascii_lowercase();
            match lower.as_str() {
                "content-length" => content_length = value.parse().unwrap_or(0),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "host" | "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"
                | "forwarded" => echoed.push_str(&format!("  {name}: {value}\n")),
                _ => {}
            }
        }
        io::copy(&mut (&mut reader).take(content_length), &mut io::sink())?;
        let body = format!(
            "hello from demo backend {n}\nrequest: {}\n{echoed}",
            request_line.trim_end()
        );
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}
