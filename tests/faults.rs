//! Backend and client faults, timeouts and bounded memory, injected for real on loopback.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

const FAST_TIMEOUTS: &str = "[timeouts]\nconnect = \"500ms\"\nresponse = \"700ms\"\nrequest_head = \"500ms\"\nbody = \"2s\"\n";

fn fast() -> ProxyOptions {
    ProxyOptions {
        extra: FAST_TIMEOUTS.into(),
        ..ProxyOptions::default()
    }
}

#[test]
fn refused_backend_gives_quick_502() {
    let proxy = Proxy::start_with(&[refused_addr()], fast());
    let mut c = proxy.client();
    let t = Instant::now();
    let r = c.get("/");
    assert_eq!(r.status, 502);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(c.is_closed());
}

#[test]
fn refused_backend_is_retried_on_another() {
    let good = Backend::start("good");
    let proxy = Proxy::start_with(&[refused_addr(), good.addr], fast());
    let mut c = proxy.client();
    for _ in 0..4 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-backend"), Some("good"));
    }
    // Even a POST: nothing was sent to the refusing backend.
    c.send(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(c.read_response("POST").unwrap().status, 200); // The log names the refusing backend and says the request went on.
    let refused = proxy
        .log()
        .lines()
        .find(|l| l.contains("request failed"))
        .map(str::to_owned)
        .expect("a failure line");
    assert!(
        refused.contains("retrying") && refused.contains("request=GET /"),
        "{refused}"
    );
}

#[test]
fn all_backends_down_gives_502_and_close() {
    let proxy = Proxy::start_with(&[refused_addr(), refused_addr()], fast());
    let mut c = proxy.client();
    let r = c.get("/");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn backend_that_never_answers_gives_504_and_post_is_not_retried() {
    let accepts = Arc::new(AtomicUsize::new(0));
    let mut silent = Vec::new();
    for _ in 0..2 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        silent.push(l.local_addr().unwrap());
        let accepts = accepts.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().flatten() {
                accepts.fetch_add(1, Ordering::SeqCst);
                held.push(s);
            }
        });
    }
    let proxy = Proxy::start_with(&silent, fast());
    let mut c = proxy.client();
    let t = Instant::now();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 504);
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(accepts.load(Ordering::SeqCst), 1, "POST was retried");
}

#[test]
fn blackholed_backend_gives_504_at_connect_timeout() {
    // A listener with a full backlog that never accepts: further connects never complete.
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    l.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    let proxy = Proxy::start_with(&[addr], fast());
    let mut c = proxy.client();
    let t = Instant::now();
    let r = c.get("/");
    assert_eq!(r.status, 504);
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(l);
}

#[test]
fn backend_closing_before_head_gives_502() {
    let b = Backend::with_handler("closer", Arc::new(|_, _| Ok(Keep::Close)));
    let proxy = Proxy::start_with(&[b.addr], fast());
    let mut c = proxy.client();
    c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 502);
    // A fresh connection that fails is not retried (it was not a stale pooled one).
    assert_eq!(b.accepted(), 1);
}

#[test]
fn stale_pooled_connection_is_replaced_without_failing_the_request() {
    // Answers one request per connection, then closes it behind the proxy's back.
    let b = Backend::with_handler(
        "oneshot",
        Arc::new(|_, s| {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")?;
            s.flush()?;
            std::thread::sleep(Duration::from_millis(50));
            Ok(Keep::Close)
        }),
    );
    let proxy = Proxy::start_with(&[b.addr], fast());
    let mut c = proxy.client();
    for _ in 0..5 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        std::thread::sleep(Duration::from_millis(150));
    }
    assert_eq!(b.accepted(), 5);
}

#[test]
fn backend_dying_mid_body_truncates_and_closes() {
    let b = Backend::with_handler(
        "dies",
        Arc::new(|req, s| {
            if req.path == "/chunked" {
                s.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                )?;
            } else {
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")?;
            }
            s.flush()?;
            std::thread::sleep(Duration::from_millis(100));
            Ok(Keep::Close)
        }),
    );
    let proxy = Proxy::start_with(&[b.addr], fast());
    // Content-Length: the client gets exactly the bytes sent, then the connection closes.
    let mut c = proxy.client();
    c.send(b"GET /cl HTTP/1.1\r\nHost: a\r\n\r\n");
    let err = c.read_response("GET").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    // Chunked: no invented final chunk.
    let mut c = proxy.client();
    c.send(b"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut raw = Vec::new();
    let _ = c.tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("5\r\nhello\r\n"), "{text}");
    assert!(!text.contains("0\r\n\r\n"), "invented last chunk: {text}");
}

#[test]
fn slow_request_head_gets_408_and_others_are_served() {
    let b = Backend::start("b");
    let proxy = Proxy::start_with(&[b.addr], fast());
    let mut slow = proxy.client();
    slow.send(b"GET / HTTP/1.1\r\nHost: a\r\n");
    let t = Instant::now();
    // Meanwhile a well-behaved client is served.
    let mut good = proxy.client();
    assert_eq!(good.get("/").status, 200);
    let r = slow.read_response("GET").unwrap();
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(slow.is_closed());
    assert_eq!(b.received().len(), 1);
}

#[test]
fn idle_keepalive_connection_is_closed_at_timeout() {
    let b = Backend::start("b");
    let opts = ProxyOptions {
        extra: "[timeouts]\nkeepalive = \"300ms\"\n".into(),
        ..ProxyOptions::default()
    };
    let proxy = Proxy::start_with(&[b.addr], opts);
    let mut c = proxy.client();
    assert_eq!(c.get("/").status, 200);
    let t = Instant::now();
    assert!(c.is_closed());
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn stalled_handshake_is_closed_at_timeout() {
    let b = Backend::start("b");
    let opts = ProxyOptions {
        extra: "[timeouts]\nhandshake = \"300ms\"\n".into(),
        ..ProxyOptions::default()
    };
    let proxy = Proxy::start_with(&[b.addr], opts);
    let mut raw = std::net::TcpStream::connect(proxy.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(t.elapsed() < Duration::from_secs(2));
    // The port keeps serving.
    assert_eq!(proxy.client().get("/").status, 200);
}

fn big_download_backend(len: usize) -> Backend {
    Backend::with_handler(
        "big",
        Arc::new(move |_, s| {
            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
            let block = vec![b'd'; 256 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(block.len());
                s.write_all(&block[..n])?;
                left -= n;
            }
            Ok(Keep::Open)
        }),
    )
}

#[test]
fn streams_64_mib_each_way_with_bounded_memory() {
    const LEN: usize = 64 * 1024 * 1024;
    let b = big_download_backend(LEN);
    let proxy = Proxy::start(&[b.addr]);
    let mut c = proxy.client();
    assert_eq!(c.get("/warm").status, 200);
    let baseline = proxy.rss_kib();

    // Download: read incrementally and watch the proxy's memory while bytes flow.
    c.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut got = 0usize;
    let mut head_done = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut peak = baseline;
    let mut pending = Vec::new();
    while got < LEN {
        let n = c.tls.read(&mut buf).unwrap();
        assert!(n > 0, "eof after {got} bytes");
        if !head_done {
            pending.extend_from_slice(&buf[..n]);
            if let Some(i) = find(&pending, b"\r\n\r\n") {
                head_done = true;
                got += pending.len() - (i + 4);
            }
        } else {
            got += n;
        }
        if got % (8 * 1024 * 1024) < n {
            peak = peak.max(proxy.rss_kib());
        }
    }
    assert_eq!(got, LEN);
    peak = peak.max(proxy.rss_kib());
    assert!(
        peak < baseline + 32 * 1024,
        "proxy memory grew from {baseline} KiB to {peak} KiB during a 64 MiB download"
    );

    // Upload: 64 MiB with Content-Length, sent in pieces.
    let up = Backend::start("up");
    let proxy2 = Proxy::start(&[up.addr]);
    let mut c2 = proxy2.client();
    assert_eq!(c2.get("/warm").status, 200);
    let baseline2 = proxy2.rss_kib();
    c2.send(format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {LEN}\r\n\r\n").as_bytes());
    let block = vec![b'u'; 256 * 1024];
    let mut peak2 = baseline2;
    for i in 0..LEN / block.len() {
        c2.tls.write_all(&block).unwrap();
        if i % 32 == 0 {
            peak2 = peak2.max(proxy2.rss_kib());
        }
    }
    c2.tls.flush().unwrap();
    let r = c2.read_response("POST").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-body-len"), Some(LEN.to_string().as_str()));
    assert!(
        peak2 < baseline2 + 32 * 1024,
        "proxy memory grew from {baseline2} KiB to {peak2} KiB during a 64 MiB upload"
    );
}

#[test]
fn client_disconnect_mid_download_releases_everything() {
    let b = big_download_backend(256 * 1024 * 1024);
    let proxy = Proxy::start(&[b.addr]);
    {
        let mut c = proxy.client();
        assert_eq!(c.get("/warm").status, 200);
    }
    std::thread::sleep(Duration::from_millis(200));
    let fds = proxy.open_fds();
    for _ in 0..3 {
        let mut c = proxy.client();
        c.send(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut buf = vec![0u8; 64 * 1024];
        let _ = c.tls.read(&mut buf).unwrap();
        drop(c);
    }
    assert!(
        wait_until(Duration::from_secs(10), || proxy.open_fds() <= fds),
        "fds: {} before, {} after",
        fds,
        proxy.open_fds()
    );
}

/// A failing backend's log lines name the upstream, the backend and the request; under a
/// stream of failures the worker writes one line per backend per second, with the count of
/// the lines it left out.
#[test]
fn failure_logs_name_the_backend_and_do_not_flood() {
    let dead = refused_addr();
    let proxy = Proxy::start_with(&[dead], fast());
    let started = Instant::now();
    for i in 0..200 {
        let mut c = proxy.client();
        assert_eq!(c.get(&format!("/item/{i}?q=1")).status, 502);
    }
    let elapsed = started.elapsed();
    assert!(wait_until(Duration::from_secs(2), || proxy
        .log()
        .contains("request failed")));
    let log = proxy.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request failed"))
        .collect();
    let first = lines[0];
    assert!(first.contains(&format!("backend={dead}")), "{first}");
    assert!(first.contains("upstream="), "{first}");
    // A sole backend is not tried twice: no line says it is retried.
    assert!(!first.contains("retrying"), "{first}");
    assert!(first.contains("request=GET /item/0?q=1"), "{first}");
    assert!(first.contains("WARN"), "{first}");
    // One line at once, then at most one per second: the 200 failures took `elapsed`.
    let allowed = 1 + elapsed.as_secs() as usize + 1;
    assert!(
        lines.len() <= allowed,
        "{} lines in {elapsed:?}:\n{}",
        lines.len(),
        lines.join("\n")
    );
    // The lines after the first carry the count of those left out; together they account for
    // the failures (the last second's may not be logged yet).
    let counted: usize = lines
        .iter()
        .map(|l| {
            l.split("suppressed=")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<usize>().ok())
                .expect("suppressed count")
        })
        .sum();
    assert!(counted + lines.len() <= 200, "{counted} + {}", lines.len());
}

/// A backend that answers after `delay`; records whether the connection was already closed by
/// then (`cancelled`) and how many requests it got.
fn slow_backend(delay: Duration, cancelled: Arc<AtomicUsize>) -> Backend {
    Backend::with_handler(
        "slow",
        Arc::new(move |_, s| {
            std::thread::sleep(delay);
            let mut probe = [0u8; 1];
            s.set_nonblocking(true)?;
            let closed = matches!(s.peek(&mut probe), Ok(0));
            s.set_nonblocking(false)?;
            if closed {
                cancelled.fetch_add(1, Ordering::SeqCst);
                return Ok(Keep::Close);
            }
            write_ok(s, "slow")?;
            Ok(Keep::Open)
        }),
    )
}

/// Hedging: a GET with no answer after `hedge_after` goes to a second backend as well; the
/// first answer wins, the slow attempt's connection is closed; a POST is never hedged; with
/// the retry budget spent there is no hedge.
#[test]
fn a_hedged_get_takes_the_first_answer_and_cancels_the_other() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let slow = slow_backend(Duration::from_millis(800), cancelled.clone());
    let fast = Backend::start("fast");
    let upstream = |retries: &str| {
        format!(
            "[[upstream]]\nname = \"app\"\nhedge_after = \"100ms\"\nbackends = [\"{}\", \"{}\"]\n\
             [upstream.retries]\n{retries}\n",
            slow.addr, fast.addr
        )
    };
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: upstream("budget_percent = 20\nmin_per_second = 10"),
            listener: Some("upstream = \"app\"".into()),
            ..ProxyOptions::default()
        },
    );
    let mut c = proxy.client();
    // Round robin: every other request goes to the slow backend first.
    for i in 0..4 {
        let t = Instant::now();
        let r = c.get(&format!("/h/{i}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-backend"), Some("fast"), "request {i}");
        assert!(
            t.elapsed() < Duration::from_millis(700),
            "{:?}",
            t.elapsed()
        );
    }
    // The slow backend got the hedged requests and found their connections closed.
    assert!(wait_until(Duration::from_secs(3), || cancelled
        .load(Ordering::SeqCst)
        >= 2));
    let to_slow = slow.received().len();
    assert!(to_slow >= 2, "{to_slow}");
    // A POST is never sent twice: the one that lands on the slow backend waits for it.
    let posts_before = fast
        .received()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    for i in 0..2 {
        c.send(
            format!("POST /p/{i} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi").as_bytes(),
        );
        assert_eq!(c.read_response("POST").unwrap().status, 200);
    }
    let posts = slow
        .received()
        .iter()
        .filter(|r| r.method == "POST")
        .count()
        + fast
            .received()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
        - posts_before;
    assert_eq!(posts, 2, "each POST reached one backend once");

    // No budget, no hedge: the request on the slow backend waits for it.
    let cancelled = Arc::new(AtomicUsize::new(0));
    let slow = slow_backend(Duration::from_millis(300), cancelled.clone());
    let fast = Backend::start("fast");
    let upstream = format!(
        "[[upstream]]\nname = \"app\"\nhedge_after = \"50ms\"\nbackends = [\"{}\", \"{}\"]\n\
         [upstream.retries]\nbudget_percent = 0\nmin_per_second = 0\n",
        slow.addr, fast.addr
    );
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: upstream,
            listener: Some("upstream = \"app\"".into()),
            ..ProxyOptions::default()
        },
    );
    let mut c = proxy.client();
    // The slow backend answers with the body "slow"; the fast one names itself in a header.
    let answers: Vec<String> = (0..2)
        .map(|i| {
            let r = c.get(&format!("/n/{i}"));
            assert_eq!(r.status, 200);
            r.header("x-backend")
                .map_or_else(|| r.text(), str::to_owned)
        })
        .collect();
    assert!(answers.contains(&"slow".to_owned()), "{answers:?}");
    assert_eq!(cancelled.load(Ordering::SeqCst), 0);
}
