//! End-to-end proxying: round trips, balancing, keep-alive, pipelining, bodies, forwarding
//! headers, graceful stop. Real ringway process, real TLS client, real backend sockets.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::*;

#[test]
fn get_round_trip() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    let r = c.get("/hello?x=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "b1 GET /hello?x=1\n");
    assert_eq!(r.header("x-backend"), Some("b1"));
    let got = b.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("host"), Some("localhost"));
    assert_eq!(got[0].header("x-forwarded-proto"), Some("https"));
    assert_eq!(got[0].header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(got[0].header("x-forwarded-host"), Some("localhost"));
    assert_eq!(
        got[0].header("forwarded"),
        Some("for=127.0.0.1;host=localhost;proto=https")
    );
}

#[test]
fn post_round_trip_with_body() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    let body = vec![b'x'; 100_000];
    c.send(
        format!(
            "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-body-len"), Some("100000"));
    assert_eq!(b.received()[0].body, body);
}

#[test]
fn round_robin_alternates() {
    let b1 = Backend::start("b1");
    let b2 = Backend::start("b2");
    let proxy = Proxy::start(&[b1.addr, b2.addr]);
    let mut c = proxy.client();
    let names: Vec<String> = (0..6)
        .map(|_| c.get("/").header("x-backend").unwrap().to_string())
        .collect();
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "{names:?}");
    }
    assert_eq!(b1.received().len(), 3);
    assert_eq!(b2.received().len(), 3);
}

#[test]
fn keep_alive_reuses_connections_on_both_sides() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    for _ in 0..20 {
        assert_eq!(c.get("/").status, 200);
    }
    // One client connection carried 20 requests over one backend connection.
    assert_eq!(b.accepted(), 1);
    assert_eq!(b.received().len(), 20);
    // A second client reuses the pooled backend connection too.
    let mut c2 = proxy.client();
    assert_eq!(c2.get("/").status, 200);
    assert_eq!(b.accepted(), 1);
}

#[test]
fn pipelined_requests_answered_in_order() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    let mut batch = Vec::new();
    for i in 0..5 {
        batch
            .extend_from_slice(format!("GET /p{i} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    }
    batch
        .extend_from_slice(b"POST /p5 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc");
    batch.extend_from_slice(b"GET /p6 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    c.send(&batch);
    for i in 0..7 {
        let method = if i == 5 { "POST" } else { "GET" };
        let r = c.read_response(method).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("b1 {method} /p{i}\n"));
    }
    assert_eq!(b.received()[5].body, b"abc");
}

#[test]
fn chunked_request_body_is_relayed() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.send(b"5\r\nhello\r\n");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"6;ext=1\r\n world\r\n0\r\n\r\n");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-body-len"), Some("11"));
    let got = b.received();
    assert_eq!(got[0].body, b"hello world");
    assert_eq!(got[0].header("transfer-encoding"), Some("chunked"));
    // Keep-alive continues after a chunked request.
    assert_eq!(c.get("/after").text(), "b1 GET /after\n");
}

#[test]
fn chunked_response_is_relayed() {
    let b = Backend::with_handler(
        "chunky",
        Arc::new(|_, s| {
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            s.write_all(b"4\r\nwiki\r\n")?;
            s.flush()?;
            std::thread::sleep(Duration::from_millis(30));
            s.write_all(b"5\r\npedia\r\n0\r\n\r\n")?;
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    for _ in 0..2 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.text(), "wikipedia");
    }
    assert_eq!(b.accepted(), 1);
}

#[test]
fn close_delimited_response_closes_client() {
    let b = Backend::with_handler(
        "old",
        Arc::new(|_, s| {
            s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")?;
            Ok(Keep::Close)
        }),
    );
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "until the end");
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn head_and_204_and_304_have_no_body() {
    let b = Backend::with_handler(
        "liar",
        Arc::new(|req, s| {
            let status = match req.path.as_str() {
                "/204" => "204 No Content",
                "/304" => "304 Not Modified",
                _ => "200 OK",
            };
            // Claims a body length but sends none, as HEAD/204/304 responses do.
            write!(s, "HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n")?;
            if req.method == "GET" && status.starts_with("200") {
                s.write_all(b"0123456789")?;
            }
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response("HEAD").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("10"));
    for path in ["/204", "/304"] {
        let r = c.get(path);
        assert!(r.body.is_empty());
    }
    // Still in sync: one backend connection for all of it.
    assert_eq!(c.get("/").text(), "0123456789");
    assert_eq!(b.accepted(), 1);
}

#[test]
fn expect_100_continue_is_relayed() {
    let b = Backend::with_handler(
        "cont",
        Arc::new(|req, s| {
            write_ok(s, &format!("got {}", req.body.len()))?;
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(
        b"POST /e HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    // The test backend does not send 100 itself; the client sends the body after a pause,
    // as curl does, and gets the final response.
    std::thread::sleep(Duration::from_millis(100));
    c.send(b"data");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "got 4");
    assert_eq!(b.received()[0].header("expect"), Some("100-continue"));
}

#[test]
fn expect_100_continue_from_backend_reaches_client() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        // Read the head only, answer 100, then read the body and answer.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut line = Vec::new();
            std::io::BufRead::read_until(&mut reader, b'\n', &mut line).unwrap();
            head.extend_from_slice(&line);
        }
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        let mut body = [0u8; 4];
        std::io::Read::read_exact(&mut reader, &mut body).unwrap();
        w.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\n")
            .unwrap();
        w.write_all(&body).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let proxy = Proxy::start(&[addr]);
    let mut c = proxy.client();
    c.send(
        b"PUT /e HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    let interim = c.read_response("PUT").unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"ping");
    let r = c.read_response("PUT").unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.text(), "ping");
    backend.join().unwrap();
}

#[test]
fn early_final_response_closes_without_reading_body_as_request() {
    // The backend answers 413 right after the head, without reading the body.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = [0u8; 1024];
        let _ = std::io::Read::read(&mut s, &mut head);
        s.write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_secs(2));
    });
    let proxy = Proxy::start(&[addr]);
    let mut c = proxy.client();
    c.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    // The unread body is never parsed as a request: the connection is closed.
    assert!(c.is_closed());
}

#[test]
fn hop_by_hop_and_connection_named_headers_are_dropped() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, X-Secret, X-Forwarded-For\r\n\
          X-Secret: s\r\nX-Forwarded-For: 6.6.6.6\r\nKeep-Alive: 300\r\nTE: trailers\r\n\
          Upgrade: websocket\r\nX-Keep: yes\r\n\r\n",
    );
    assert_eq!(c.read_response("GET").unwrap().status, 200);
    let got = &b.received()[0];
    for dropped in ["x-secret", "keep-alive", "te", "upgrade", "connection"] {
        assert_eq!(got.header(dropped), None, "{dropped} forwarded");
    }
    assert_eq!(got.header("x-keep"), Some("yes"));
    // The XFF named in Connection was dropped, then ringway added its own.
    assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
}

#[test]
fn x_forwarded_for_is_appended() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 10.1.1.1\r\nForwarded: for=10.1.1.1\r\n\r\n");
    assert_eq!(c.read_response("GET").unwrap().status, 200);
    let got = &b.received()[0];
    assert_eq!(got.header("x-forwarded-for"), Some("10.1.1.1, 127.0.0.1"));
    assert_eq!(
        got.header("forwarded"),
        Some("for=10.1.1.1, for=127.0.0.1;host=localhost;proto=https")
    );
}

#[test]
fn http10_client_gets_close_by_default() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"GET /old HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert!(c.is_closed());
}

#[test]
fn client_connection_close_is_honoured() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed());
    // The backend connection is still pooled and reused.
    let mut c2 = proxy.client();
    assert_eq!(c2.get("/").status, 200);
    assert_eq!(b.accepted(), 1);
}

#[test]
fn sigterm_drains_in_flight_request_and_exits_zero() {
    let slow = Backend::with_handler(
        "slow",
        Arc::new(|_, s| {
            std::thread::sleep(Duration::from_millis(700));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")?;
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start(&[slow.addr]);
    let addr = proxy.addr;
    let mut c = proxy.client();
    c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let pid = proxy.child.id();
    let reader = std::thread::spawn(move || c.read_response("GET").unwrap());
    signal(pid, "TERM");
    // New connections are refused while draining.
    std::thread::sleep(Duration::from_millis(200));
    let refused = std::net::TcpStream::connect(addr).is_err();
    let status = proxy.wait_exit();
    assert!(refused, "still accepting after SIGTERM");
    let r = reader.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "done");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(status.success(), "{status:?}");
}

#[test]
fn response_racing_the_end_of_an_upload_is_not_lost() {
    // Like nginx's `return 200` for a POST: the backend answers right after the head, then
    // reads and discards the body. Its response and the completion of ringway's last upload
    // write then often arrive together; neither may be dropped.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                while let Ok(Some(())) = answer_then_discard(&mut reader, &mut w) {}
            });
        }
    });
    let proxy = Proxy::start_with(
        &[addr],
        ProxyOptions {
            extra: "[timeouts]\nresponse = \"5s\"\n".into(),
            ..ProxyOptions::default()
        },
    );
    let body = vec![b'p'; 16 * 1024];
    for i in 0..60 {
        let mut c = proxy.client();
        for j in 0..3 {
            c.send(
                format!(
                    "POST /r{i}-{j} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            c.send(&body);
            let started = std::time::Instant::now();
            let r = c.read_response("POST").unwrap();
            assert_eq!(r.status, 200, "connection {i} request {j}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "connection {i} request {j} took {:?}",
                started.elapsed()
            );
            if r.header("connection") == Some("close") {
                // Answered before the whole body arrived: ringway closes; reconnect.
                c = proxy.client();
            }
        }
    }
}

/// Reads a request head, answers 200 at once, then reads and discards the body.
fn answer_then_discard(
    reader: &mut std::io::BufReader<std::net::TcpStream>,
    w: &mut std::net::TcpStream,
) -> std::io::Result<Option<()>> {
    use std::io::{BufRead, Read};
    let mut len = 0u64;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if line == "\r\n" && !first {
            break;
        }
        first = false;
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")?;
    std::io::copy(&mut reader.take(len), &mut std::io::sink())?;
    Ok(Some(()))
}

#[test]
fn a_small_body_is_read_whole_before_anything_reaches_a_backend() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nhello");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.accepted(),
        0,
        "the backend was contacted before the body was in"
    );
    c.send(b"world");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(b.received()[0].body, b"helloworld");
}

#[test]
fn a_request_arriving_with_the_end_of_a_small_body_is_answered_next() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    c.send(b"POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nhello");
    std::thread::sleep(Duration::from_millis(100));
    // The body's end and the next request in one TLS record: the request must not be taken
    // for body bytes, nor lost.
    c.send(b"worldGET /next HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "b1 POST /small\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "b1 GET /next\n");
    let received = b.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body, b"helloworld");
    assert!(received[1].body.is_empty());
}

#[test]
fn a_client_leaving_in_the_middle_of_a_small_body_reaches_no_backend() {
    let b = Backend::start("b1");
    let proxy = Proxy::start(&[b.addr]);
    let base_fds = proxy.open_fds();
    let mut c = proxy.client();
    c.send(b"POST /small HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nhel");
    drop(c);
    assert!(wait_until(Duration::from_secs(5), || proxy.open_fds() <= base_fds));
    assert_eq!(b.accepted(), 0);
    assert_eq!(proxy.client().get("/").status, 200);
    assert_eq!(b.received().len(), 1);
}

/// Enough clients at once that the worker has many requests in flight and its event loop
/// gathers completions in batches (see `runtime::event_loop`): every client still gets its own
/// answers, in order, and every request body arrives whole.
#[test]
fn many_clients_at_once_each_get_their_own_answers() {
    let b = Backend::with_handler(
        "slow",
        std::sync::Arc::new(|req, s| {
            // Slow enough that requests pile up in flight in the proxy.
            std::thread::sleep(Duration::from_millis(2));
            write_ok(
                s,
                &format!("{} {} {}\n", req.method, req.path, req.body.len()),
            )?;
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start(&[b.addr]);
    let clients: Vec<_> = (0..24)
        .map(|c| {
            let mut client = proxy.client();
            std::thread::spawn(move || {
                for i in 0..25 {
                    if i % 5 == 4 {
                        let body = vec![b'x'; 1000 + c * 10 + i];
                        let mut req = format!(
                            "POST /c{c}/r{i} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        req.extend_from_slice(&body);
                        client.send(&req);
                        let r = client.read_response("POST").unwrap();
                        assert_eq!(r.status, 200);
                        assert_eq!(r.text(), format!("POST /c{c}/r{i} {}\n", body.len()));
                    } else {
                        let r = client.get(&format!("/c{c}/r{i}"));
                        assert_eq!(r.status, 200);
                        assert_eq!(r.text(), format!("GET /c{c}/r{i} 0\n"));
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client failed");
    }
    assert_eq!(b.received().len(), 24 * 25);
}
