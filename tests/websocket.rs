//! WebSocket and other protocol upgrades through ringway (CHECKLISTS.md §4, tunnels): a real
//! WebSocket client (tungstenite over the tests' rustls stream) and a real WebSocket server
//! (tungstenite on a std listener) with ringway between them.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use common::*;

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Each handshake request's headers (lower-cased names), in arrival order.
type Handshakes = Mutex<Vec<Vec<(String, String)>>>;

/// A WebSocket server on loopback: echoes text and binary messages; on the text `close-me`
/// it starts a close handshake, on `ping-me` it pings the client and answers `pong <payload>`
/// once the pong came, on `die` it drops the connection without a close handshake. It records
/// the handshake requests' headers.
struct WsBackend {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    /// The handshake requests' headers, lower-cased names.
    handshakes: Arc<Handshakes>,
}

impl WsBackend {
    fn start() -> WsBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (accepts.clone(), handshakes.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let h = h.clone();
                std::thread::spawn(move || {
                    let _ = echo(stream, &h);
                });
            }
        });
        WsBackend {
            addr,
            accepts,
            handshakes,
        }
    }

    fn handshake_header(&self, i: usize, name: &str) -> Option<String> {
        self.handshakes.lock().unwrap()[i]
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

/// The server's handshake, recording the request's headers.
#[allow(clippy::result_large_err)] // tungstenite's callback type
fn accept_recording(
    stream: TcpStream,
    handshakes: &Handshakes,
) -> tungstenite::Result<WebSocket<TcpStream>> {
    let callback = |req: &Request, resp: Response| {
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        handshakes.lock().unwrap().push(headers);
        Ok(resp)
    };
    tungstenite::accept_hdr(stream, callback).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => {
            tungstenite::Error::Io(io::ErrorKind::WouldBlock.into())
        }
    })
}

fn echo(stream: TcpStream, handshakes: &Handshakes) -> tungstenite::Result<()> {
    let raw = stream.try_clone()?;
    let mut ws = accept_recording(stream, handshakes)?;
    loop {
        match ws.read()? {
            Message::Text(t) if t.as_str() == "close-me" => {
                ws.close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "bye".into(),
                }))?;
            }
            Message::Text(t) if t.as_str() == "die" => {
                // Gone without a close handshake.
                raw.shutdown(std::net::Shutdown::Both)?;
                return Ok(());
            }
            Message::Text(t) if t.as_str() == "ping-me" => {
                ws.send(Message::Ping(b"from-server".to_vec().into()))?;
                loop {
                    if let Message::Pong(p) = ws.read()? {
                        let text = format!("pong {}", String::from_utf8_lossy(&p));
                        ws.send(Message::text(text))?;
                        break;
                    }
                }
            }
            m @ (Message::Text(_) | Message::Binary(_)) => ws.send(m)?,
            // Pings are answered by tungstenite itself; a close is answered too.
            _ => {}
        }
    }
}

/// A TLS connection to ringway, with a read timeout.
fn tls(proxy: &Proxy, timeout: Duration) -> Tls {
    let c = proxy.client();
    c.tls.sock.set_read_timeout(Some(timeout)).unwrap();
    c.tls
}

/// A WebSocket client through ringway to `path`.
fn ws_client(proxy: &Proxy, path: &str) -> WebSocket<Tls> {
    let (ws, resp) = tungstenite::client(
        format!("ws://localhost{path}"),
        tls(proxy, Duration::from_secs(20)),
    )
    .unwrap_or_else(|e| panic!("WebSocket handshake through ringway: {e}"));
    assert_eq!(resp.status(), 101);
    ws
}

fn ws_proxy(backend: SocketAddr, extra: &str) -> Proxy {
    Proxy::start_with(
        &[backend],
        ProxyOptions {
            extra: extra.to_string(),
            ..ProxyOptions::default()
        },
    )
}

/// Reads the next text or binary message (skipping pongs).
fn next_data(ws: &mut WebSocket<Tls>) -> Message {
    loop {
        match ws.read().expect("message") {
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            Message::Pong(_) | Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn ten_thousand_messages_of_mixed_sizes_echo_through_the_tunnel() {
    let b = WsBackend::start();
    let proxy = ws_proxy(b.addr, "");
    let mut ws = ws_client(&proxy, "/echo");
    // The backend saw the handshake with its upgrade fields and ringway's forwarding fields.
    assert_eq!(
        b.handshake_header(0, "upgrade").as_deref(),
        Some("websocket")
    );
    assert_eq!(
        b.handshake_header(0, "connection").as_deref(),
        Some("upgrade")
    );
    assert_eq!(
        b.handshake_header(0, "x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert!(b.handshake_header(0, "sec-websocket-key").is_some());

    let mut rng = fastrand::Rng::with_seed(15);
    let letters: String = (0..128 * 1024).map(|_| rng.alphanumeric()).collect();
    let messages: Vec<Message> = (0..10_000)
        .map(|i| {
            // 1 B to 64 KiB, log-uniform: mostly small, some large.
            let max = 1usize << rng.u32(0..=16);
            let len = rng.usize(max / 2..=max).max(1);
            if i % 2 == 0 {
                let at = rng.usize(0..letters.len() - len);
                Message::text(&letters[at..at + len])
            } else {
                let mut bytes = vec![0u8; len];
                rng.fill(&mut bytes);
                Message::binary(bytes)
            }
        })
        .collect();
    let total: usize = messages.iter().map(Message::len).sum();
    // A window of messages in flight: enough to fill the pipes, never a deadlock.
    let window = 16;
    let started = Instant::now();
    for chunk in messages.chunks(window) {
        for m in chunk {
            ws.write(m.clone()).unwrap();
        }
        ws.flush().unwrap();
        for m in chunk {
            assert_eq!(&next_data(&mut ws), m);
        }
    }
    eprintln!(
        "echoed {} messages, {} KiB each way, in {:?}",
        messages.len(),
        total / 1024,
        started.elapsed()
    );
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close: {e}"),
        }
    }
}

#[test]
fn pings_and_pongs_pass_both_ways() {
    let b = WsBackend::start();
    let proxy = ws_proxy(b.addr, "");
    let mut ws = ws_client(&proxy, "/");
    // The client pings; the server's tungstenite answers.
    ws.send(Message::Ping(b"from-client".to_vec().into()))
        .unwrap();
    match ws.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"from-client"),
        other => panic!("unexpected {other:?}"),
    }
    // The server pings; the client's tungstenite answers and the server says it got it.
    ws.send(Message::text("ping-me")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("pong from-server"));
}

#[test]
fn a_close_handshake_started_by_the_client_ends_the_tunnel() {
    let b = WsBackend::start();
    let proxy = ws_proxy(b.addr, "");
    let mut ws = ws_client(&proxy, "/");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("hi"));
    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "done".into(),
    }))
    .unwrap();
    let mut echoed = None;
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => echoed = frame,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("close: {e}"),
        }
    }
    assert_eq!(echoed.map(|f| f.code), Some(CloseCode::Away));
    // Then the TLS connection ends cleanly: the server closed its side after the handshake.
    let mut rest = Vec::new();
    let got = ws.get_mut().read_to_end(&mut rest);
    assert!(matches!(got, Ok(0)), "{got:?}");
}

#[test]
fn a_close_handshake_started_by_the_server_ends_the_tunnel() {
    let b = WsBackend::start();
    let proxy = ws_proxy(b.addr, "");
    let mut ws = ws_client(&proxy, "/");
    ws.send(Message::text("close-me")).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::Normal);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("unexpected {other:?}"),
    }
    // tungstenite answered the close; the server drops the connection, ringway passes it on.
    match ws.read() {
        Ok(other) => panic!("unexpected {other:?}"),
        Err(tungstenite::Error::ConnectionClosed) => {}
        Err(e) => panic!("close: {e}"),
    }
}

#[test]
fn a_backend_that_dies_mid_tunnel_ends_it_without_a_hang() {
    let b = WsBackend::start();
    let proxy = ws_proxy(b.addr, "");
    let mut ws = ws_client(&proxy, "/");
    ws.get_mut()
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("hello"));
    ws.send(Message::text("die")).unwrap();
    let started = Instant::now();
    let end = ws.read();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the client waited {:?}",
        started.elapsed()
    );
    match end {
        Ok(m) => panic!("unexpected {m:?}"),
        Err(tungstenite::Error::Io(e)) => assert!(
            !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        Err(_) => {}
    }
}

#[test]
fn an_idle_tunnel_is_closed_at_the_tunnel_timeout_and_logged_when_it_ends() {
    let dir = temp_dir("ws-idle");
    let log = dir.join("access.log");
    let b = WsBackend::start();
    let proxy = ws_proxy(
        b.addr,
        &format!(
            "[timeouts]\ntunnel = \"1s\"\n[access_log]\nenabled = true\npath = \"{}\"\n",
            log.display()
        ),
    );
    let mut ws = ws_client(&proxy, "/idle");
    ws.send(Message::text("x".repeat(1000))).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("x".repeat(1000)));
    // Activity keeps it open past the timeout.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(500));
        ws.send(Message::text("still here")).unwrap();
        assert_eq!(next_data(&mut ws), Message::text("still here"));
    }
    let quiet = Instant::now();
    let end = ws.read();
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "closed after {waited:?}: {end:?}"
    );
    assert!(end.is_err(), "{end:?}");
    // The request's line is written when the tunnel ends: status 101, the tunnel's bytes.
    let mut line = String::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            line = std::fs::read_to_string(&log).unwrap_or_default();
            line.contains("tunnel_idle")
        }),
        "{line}"
    );
    let line = line.lines().find(|l| l.contains("/idle")).expect("line");
    assert!(line.contains("\"status\":101"), "{line}");
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    // Counted to the end of the tunnel: the 1000-byte message and the rest, both ways.
    assert!(json["bytes_in"].as_u64().unwrap() > 1000, "{line}");
    assert!(json["bytes_out"].as_u64().unwrap() > 1000, "{line}");
}

/// A WebSocket handshake written by hand, with `extra` after it in the same send.
fn handshake(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

#[test]
fn upgrades_switched_off_are_refused_with_403_and_never_reach_the_backend() {
    let b = WsBackend::start();
    // Off on the listener, on again for one route; a route that says nothing follows the
    // listener.
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: format!("[[upstream]]\nname = \"app\"\nbackends = [\"{}\"]\n", b.addr),
            listener: Some(
                "upstream = \"app\"\nupgrade = false\n[[listener.route]]\npath_prefix = \"/open\"\n\
                 upstream = \"app\"\nupgrade = true\n[[listener.route]]\npath_prefix = \"/shut/\"\n\
                 upstream = \"app\"\n"
                    .to_string(),
            ),
            ..ProxyOptions::default()
        },
    );
    for path in ["/ws", "/shut/x"] {
        let mut c = proxy.client();
        // The bytes after the handshake would be a request if the connection were read on.
        let mut raw = handshake(path);
        raw.push_str("GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n");
        c.send(raw.as_bytes());
        let r = c.read_response("GET").unwrap();
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed(), "{path}");
    }
    assert_eq!(b.accepts.load(Ordering::SeqCst), 0);
    // The route that allows them.
    let mut ws = ws_client(&proxy, "/open/chat");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("hi"));
}

#[test]
fn a_declined_upgrade_is_an_ordinary_response_on_a_kept_connection() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(handshake("/ws").as_bytes());
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), None);
    assert_eq!(r.header("upgrade"), None);
    // The backend was asked to switch, and declined; the connection goes on.
    let got = &b.received()[0];
    assert_eq!(got.header("upgrade"), Some("websocket"));
    assert_eq!(got.header("connection"), Some("upgrade"));
    let r = c.get("/after");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "b GET /after\n");
}

#[test]
fn bytes_pipelined_after_a_declined_upgrade_are_never_read_as_a_request() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    let mut raw = handshake("/ws");
    raw.push_str("GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n");
    c.send(raw.as_bytes());
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed());
    let paths: Vec<String> = b.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/ws"]);
}

#[test]
fn upgrade_without_connection_upgrade_reaches_the_backend_without_upgrade() {
    let b = Backend::start("b");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"GET /plain HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    // An HTTP/1.0 request's upgrade is ignored too (RFC 9110 §7.8).
    c.send(
        b"GET /old HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive, Upgrade\r\n\
          Upgrade: websocket\r\n\r\n",
    );
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    let got = b.received();
    assert_eq!(got.len(), 2);
    for req in &got {
        assert_eq!(req.header("upgrade"), None, "{}", req.path);
        assert_eq!(req.header("connection"), None, "{}", req.path);
    }
}

#[test]
fn bytes_sent_ahead_on_both_sides_are_relayed_first_in_order() {
    // A backend that answers 101 and its first frame in one write, and reads what the client
    // sent right after the handshake.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let got2 = got.clone();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while find(&buf, b"\r\n\r\n").is_none() {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: upgrade\r\n\r\nserver-first|")
            .unwrap();
        let head_end = find(&buf, b"\r\n\r\n").unwrap() + 4;
        let mut after = buf.split_off(head_end);
        while after.len() < b"client-early|client-late".len() {
            let n = s.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            after.extend_from_slice(&chunk[..n]);
        }
        *got2.lock().unwrap() = after;
        s.write_all(b"server-late").unwrap();
    });
    let proxy = Proxy::start(&[addr]);
    let mut c = proxy.client();
    c.send(b"GET /raw HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\nclient-early|");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(r.header("upgrade"), Some("raw"));
    assert_eq!(r.header("connection"), Some("upgrade"));
    c.send(b"client-late");
    let mut rest = c.pending().to_vec();
    let mut chunk = [0u8; 4096];
    while rest.len() < b"server-first|server-late".len() {
        let n = c.tls.read(&mut chunk).unwrap();
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&rest));
        rest.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(rest, b"server-first|server-late");
    assert!(wait_until(Duration::from_secs(5), || !got
        .lock()
        .unwrap()
        .is_empty()));
    assert_eq!(&got.lock().unwrap()[..], b"client-early|client-late");
}

#[test]
fn half_close_is_passed_through_both_ways() {
    // The backend answers 101, sends "bye", closes its side (FIN), and keeps reading; then it
    // reports what the client sent after that.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while find(&buf, b"\r\n\r\n").is_none() {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: upgrade\r\n\r\nbye",
        )
        .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        // Ends when the client's close reaches us as a FIN.
        let _ = s.read_to_end(&mut rest);
        let _ = tx.send(rest);
    });
    let proxy = Proxy::start(&[addr]);
    let mut c = proxy.client();
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 101);
    // The backend's FIN reaches the client as close_notify after "bye".
    let mut rest = c.pending().to_vec();
    c.tls.read_to_end(&mut rest).expect("a clean close_notify");
    assert_eq!(rest, b"bye");
    // The client's direction still works after that.
    c.send(b"after the backend's close");
    c.tls.conn.send_close_notify();
    c.tls.flush().unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("backend saw the end");
    assert_eq!(got, b"after the backend's close");
}

/// A backend that answers whatever it first reads with a 101 to `protocol` and "secret", the
/// new protocol's first bytes, then holds the connection for two seconds.
fn switching_backend(protocol: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut chunk = [0u8; 4096];
            let _ = s.read(&mut chunk);
            let _ = write!(
                s,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: {protocol}\r\nConnection: upgrade\r\n\r\nsecret"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    addr
}

#[test]
fn a_101_before_the_request_body_was_sent_is_a_502() {
    // The backend switches before reading the body it was announced: the body's bytes would
    // be read as the new protocol's.
    let addr = switching_backend("raw");
    let proxy = Proxy::start(&[addr]);
    let mut c = proxy.client();
    // A body too large to be read whole before sending: it streams, and is not done.
    let head = "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: raw\r\n\
                Content-Length: 10000000\r\n\r\n";
    c.send(head.as_bytes());
    c.send(&[b'a'; 1024]);
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 502);
    assert!(find(c.pending(), b"secret").is_none());
}

#[test]
fn a_101_to_a_protocol_the_client_did_not_offer_is_a_502() {
    // The client asks for "raw"; the backend switches to h2c and starts speaking it. A server
    // must not switch to a protocol that was not offered (RFC 9110 §7.8).
    let addr = switching_backend("h2c");
    let proxy = Proxy::start(&[addr]);
    let mut c = proxy.client();
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 502);
    assert!(find(c.pending(), b"secret").is_none());
    assert!(c.is_closed());
    assert!(find(c.pending(), b"secret").is_none());
}

#[test]
fn a_thousand_open_tunnels_cost_bounded_memory() {
    const TUNNELS: usize = 1000;
    // A backend that handshakes, echoes one message and then parks each WebSocket (no thread
    // per connection); it drops them all when the test ends.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let parked = Arc::new(Mutex::new(Vec::new()));
    let parked2 = parked.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let Ok(mut ws) = tungstenite::accept(s) else {
                continue;
            };
            if let Ok(m) = ws.read() {
                let _ = ws.send(m);
            }
            parked2.lock().unwrap().push(ws);
        }
    });
    let proxy = ws_proxy(addr, "");
    let open = |n: usize, clients: &mut Vec<WebSocket<Tls>>| {
        for i in 0..n {
            let mut ws = ws_client(&proxy, "/park");
            let m = Message::text(format!("tunnel {i}"));
            ws.send(m.clone()).unwrap();
            assert_eq!(next_data(&mut ws), m);
            clients.push(ws);
        }
    };
    let mut clients = Vec::with_capacity(TUNNELS + 20);
    // Warm up: the first connections take the worker's buffers and the allocator's arenas.
    open(20, &mut clients);
    std::thread::sleep(Duration::from_millis(500));
    let before = proxy.rss_kib();
    let started = Instant::now();
    open(TUNNELS, &mut clients);
    let opened_in = started.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let after = proxy.rss_kib();
    let per_tunnel = (after.saturating_sub(before)) as f64 / TUNNELS as f64;
    eprintln!(
        "{TUNNELS} open tunnels: RSS {before} KiB -> {after} KiB, {per_tunnel:.1} KiB per tunnel \
         (opened in {opened_in:?})"
    );
    assert!(per_tunnel < 64.0, "{per_tunnel:.1} KiB per tunnel");
    assert_eq!(parked.lock().unwrap().len(), TUNNELS + 20);
    drop(clients);
}

#[test]
fn a_draining_worker_closes_its_tunnels_at_the_drain_deadline() {
    let b = WsBackend::start();
    let proxy = ws_proxy(b.addr, "[timeouts]\ndrain = \"1s\"\n");
    let mut ws = ws_client(&proxy, "/");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("hi"));
    let started = Instant::now();
    signal(proxy.child.id(), "TERM");
    // The tunnel stays usable while the drain lasts...
    ws.send(Message::text("during the drain")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("during the drain"));
    // ...and ends (close_notify) before it is over.
    let end = ws.read();
    let waited = started.elapsed();
    assert!(end.is_err(), "{end:?}");
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let status = proxy.wait_exit();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_plain_http_listener_tunnels_websockets_too() {
    let b = WsBackend::start();
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            certs: Vec::new(),
            listener: Some(format!("backends = [\"{}\"]", b.addr)),
            ..ProxyOptions::default()
        },
    );
    let tcp = TcpStream::connect(proxy.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (mut ws, resp) = tungstenite::client("ws://localhost/plain", tcp).expect("handshake");
    assert_eq!(resp.status(), 101);
    assert_eq!(
        b.handshake_header(0, "x-forwarded-proto").as_deref(),
        Some("http")
    );
    for size in [1, 1000, 70_000] {
        let m = Message::binary(vec![7u8; size]);
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m);
    }
    // The server closes: its FIN reaches the client (no close_notify on plain HTTP).
    ws.send(Message::text("close-me")).unwrap();
    assert!(matches!(ws.read().unwrap(), Message::Close(Some(_))));
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("{other:?}"),
    }
}

/// The admin listener's `/metrics` text.
fn metrics(proxy: &Proxy) -> String {
    let log = proxy.log();
    let start = log
        .find("admin listener on http://")
        .map(|i| i + "admin listener on http://".len())
        .expect("the admin listener's line");
    let rest = &log[start..];
    let addr: SocketAddr = rest[..rest.find('/').unwrap_or(rest.len())]
        .parse()
        .expect("an address");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn open_tunnels_are_counted_in_the_metrics() {
    let b = WsBackend::start();
    let proxy = ws_proxy(b.addr, "[admin]\naddress = \"127.0.0.1:0\"\n");
    let mut ws = ws_client(&proxy, "/");
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("hi"));
    let open = "ringway_worker_tunnels_open{worker=\"0\"} 1\n";
    assert!(metrics(&proxy).contains(open), "{}", metrics(&proxy));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    // The backend closed after the close handshake; the tunnel ends when the client does too.
    drop(ws);
    let closed = "ringway_worker_tunnels_open{worker=\"0\"} 0\n";
    assert!(wait_until(Duration::from_secs(5), || metrics(&proxy).contains(closed)));
}
