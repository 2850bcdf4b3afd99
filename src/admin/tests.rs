//! The admin server with a real std `TcpStream` client: every route, HEAD, 404, 405, the
//! token, readiness, refused heads, slow clients, stopping; and the request parsing and token
//! checks on their own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::sample::{sample, sample_after};
use super::*;

/// An answer as a client reads it: status, head (lowercased names) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` as it is and reads the answer to the end of the connection.
fn exchange(address: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    read_answer(&mut stream)
}

fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read to the end");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Answer {
        status,
        head,
        body: bytes[split + 4..].to_vec(),
    }
}

fn get(address: SocketAddr, path: &str) -> Answer {
    exchange(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n").as_bytes(),
    )
}

fn with_token(address: SocketAddr, path: &str, authorization: &str) -> Answer {
    exchange(
        address,
        format!("GET {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: {authorization}\r\n\r\n")
            .as_bytes(),
    )
}

fn start(token: Option<&str>, snapshot: impl Fn() -> Snapshot + Send + Sync + 'static) -> Admin {
    spawn(
        AdminSettings {
            address: "127.0.0.1:0".parse().expect("address"),
            token: token.map(str::to_owned),
        },
        Arc::new(snapshot),
    )
    .expect("spawn")
}

#[test]
fn every_route_answers() {
    let admin = start(None, sample);
    let address = admin.address();
    assert_ne!(address.port(), 0, "port 0 becomes the kernel's choice");

    let metrics = get(address, "/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(metrics.header("connection"), Some("close"));
    assert_eq!(
        metrics.header("content-length"),
        Some(metrics.body.len().to_string().as_str())
    );
    let text = metrics.text();
    assert!(text.contains("ringway_build_info{version=\"0.1.0 (2b5a641)\"} 1\n"));
    assert!(
        text.contains("\nprocess_open_fds "),
        "process metrics: {text}"
    );
    assert!(text.contains("\nprocess_threads "));

    let health = get(address, "/healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let ready = get(address, "/readyz");
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));

    let status = get(address, "/status");
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&status.body).expect("JSON");
    assert_eq!(json["upstreams"][0]["name"], "app");
    assert!(json["now"].as_f64().is_some());

    let page = get(address, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.starts_with("default-src 'none'"))
    );
    assert!(page.text().starts_with("<!DOCTYPE html>"));

    // A query string does not change the route.
    assert_eq!(get(address, "/metrics?name[]=x").status, 200);
}

#[test]
fn head_has_the_length_and_no_body() {
    let admin = start(None, sample);
    let address = admin.address();
    let head = exchange(address, b"HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("3"));
    assert!(head.body.is_empty());
    let head = exchange(address, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let length: usize = head
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .expect("length");
    assert!(length > 1000, "{length}");
    // Every status: a head, no body.
    let missing = exchange(address, b"HEAD /nothing HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-length"), Some("10"));
    assert!(missing.body.is_empty());
}

#[test]
fn unknown_paths_and_methods() {
    let admin = start(None, sample);
    let address = admin.address();
    let missing = get(address, "/nothing");
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "not found\n")
    );
    assert_eq!(get(address, "/metrics/").status, 404);
    assert_eq!(get(address, "http://admin/metrics").status, 404);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let answer = exchange(
            address,
            format!("{method} /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), Some("GET, HEAD"));
    }
    // A body nobody asked for does not reset the connection under the answer.
    let answer = exchange(
        address,
        &[
            b"POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 20000\r\n\r\n".as_slice(),
            &[b'x'; 20000],
        ]
        .concat(),
    );
    assert_eq!(answer.status, 405);
}

#[test]
fn readyz_says_not_ready() {
    let ready = Arc::new(AtomicBool::new(false));
    let admin = start(None, {
        let ready = Arc::clone(&ready);
        move || Snapshot {
            ready: ready.load(Ordering::Relaxed),
            ..Snapshot::default()
        }
    });
    let answer = get(admin.address(), "/readyz");
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (503, "not ready\n")
    );
    assert_eq!(answer.header("connection"), Some("close"));
    // /healthz stays 200 whatever the readiness.
    assert_eq!(get(admin.address(), "/healthz").status, 200);
    ready.store(true, Ordering::Relaxed);
    assert_eq!(get(admin.address(), "/readyz").status, 200);
}

#[test]
fn a_token_is_required_everywhere_but_healthz() {
    let calls = Arc::new(AtomicUsize::new(0));
    let admin = start(Some("s3cr3t-T0ken_value"), {
        let calls = Arc::clone(&calls);
        move || {
            calls.fetch_add(1, Ordering::Relaxed);
            sample()
        }
    });
    let address = admin.address();
    for path in ["/metrics", "/readyz", "/status", "/", "/nothing"] {
        let refused = get(address, path);
        assert_eq!(refused.status, 401, "{path}");
        assert!(
            refused
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{path}: {refused:?}"
        );
    }
    assert_eq!(get(address, "/healthz").status, 200);
    for wrong in [
        "Bearer wrong",
        "Bearer s3cr3t-T0ken_valu",
        "Bearer s3cr3t-T0ken_value2",
        "Basic czNjcjN0LVQwa2VuX3ZhbHVl",
        "s3cr3t-T0ken_value",
        "Bearer",
        "Bearer ",
    ] {
        assert_eq!(
            with_token(address, "/metrics", wrong).status,
            401,
            "{wrong}"
        );
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "no snapshot for a refused request"
    );
    for right in [
        "Bearer s3cr3t-T0ken_value",
        "bearer s3cr3t-T0ken_value",
        "BEARER   s3cr3t-T0ken_value ",
    ] {
        assert_eq!(
            with_token(address, "/metrics", right).status,
            200,
            "{right}"
        );
    }
    assert_eq!(
        with_token(address, "/readyz", "Bearer s3cr3t-T0ken_value").status,
        200
    );
    // With the token, an unknown path is 404 and a wrong method 405.
    assert_eq!(
        with_token(address, "/nothing", "Bearer s3cr3t-T0ken_value").status,
        404
    );
}

#[test]
fn bad_and_oversized_heads_are_refused() {
    let admin = start(None, sample);
    let address = admin.address();
    let answer = exchange(address, b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert_eq!(answer.status, 400);
    let answer = exchange(address, b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n");
    assert_eq!(answer.status, 400);

    // 9 KiB of headers: refused at 8 KiB.
    let mut request = b"GET /metrics HTTP/1.1\r\nHost: a\r\n".to_vec();
    while request.len() < 9 * 1024 {
        request
            .extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let answer = exchange(address, &request);
    assert_eq!(answer.status, 431, "{answer:?}");

    // More header fields than parsed.
    let mut request = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        request.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert_eq!(exchange(address, &request).status, 431);

    // A client that connects and goes away gets nothing, and the server goes on.
    drop(TcpStream::connect(address).expect("connect"));
    let mut half = TcpStream::connect(address).expect("connect");
    half.write_all(b"GET /met").expect("send");
    half.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert_eq!(read_answer(&mut half).status, 400);
    assert_eq!(get(address, "/healthz").status, 200);
}

#[test]
fn slow_clients_are_bounded() {
    let admin = start(None, sample);
    let address = admin.address();
    // One slow client holds one slot: the next client is served at once.
    let mut slow = TcpStream::connect(address).expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").expect("send");
    let started = Instant::now();
    assert_eq!(get(address, "/healthz").status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Every slot held by a silent client: the next one waits for the first timeout, no longer.
    let silent: Vec<TcpStream> = (1..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(address).expect("connect"))
        .collect();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(get(address, "/healthz").status, 200);
    let waited = started.elapsed();
    assert!(
        waited <= READ_TIMEOUT + Duration::from_secs(2),
        "waited {waited:?}"
    );

    // The slow client got 408 once its time was up.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let answer = read_answer(&mut slow);
    assert_eq!(answer.status, 408);
    drop(silent);
}

#[test]
fn a_panicking_snapshot_is_a_500_and_the_server_goes_on() {
    let admin = start(None, || panic!("snapshot failed on purpose"));
    let address = admin.address();
    let answer = get(address, "/metrics");
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (500, "snapshot failed\n")
    );
    assert_eq!(get(address, "/status").status, 500);
    assert_eq!(get(address, "/healthz").status, 200);
}

#[test]
fn an_address_in_use_is_an_error_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address");
    let error = spawn(
        AdminSettings {
            address,
            token: None,
        },
        Arc::new(sample),
    )
    .expect_err("in use");
    assert!(matches!(error, AdminError::Bind { .. }), "{error:?}");
    let shown = error.to_string();
    assert!(shown.contains(&address.to_string()), "{shown}");
    assert!(shown.contains("in use"), "{shown}");

    // A token that cannot be sent in a header.
    for token in ["", "two words", "===", "é"] {
        let error = spawn(
            AdminSettings {
                address: "127.0.0.1:0".parse().expect("address"),
                token: Some(token.to_owned()),
            },
            Arc::new(sample),
        )
        .expect_err("bad token");
        assert!(
            matches!(error, AdminError::Token(_)),
            "{token:?}: {error:?}"
        );
    }
}

#[test]
fn dropping_stops_at_once_and_frees_the_port() {
    let admin = start(None, sample);
    let address = admin.address();
    // A connection being served (a slow client) does not hold the stop up.
    let mut slow = TcpStream::connect(address).expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\n").expect("send");
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(admin);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    slow.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let _ = slow.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing after the stop");
    assert!(TcpStream::connect(address).is_err(), "nothing listens");
    // Bound again right away.
    let again = spawn(
        AdminSettings {
            address,
            token: None,
        },
        Arc::new(sample),
    )
    .expect("the port is free again");
    assert_eq!(get(again.address(), "/healthz").status, 200);
}

#[test]
fn settings_do_not_show_the_token() {
    let settings = AdminSettings {
        address: "127.0.0.1:9900".parse().expect("address"),
        token: Some("s3cr3t".to_owned()),
    };
    let shown = format!("{settings:?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("127.0.0.1:9900"));
}

#[test]
fn parse_head_cases() {
    assert_eq!(
        parse_head(b"GET /metrics HTTP/1.1\r\nHost: a\r\n"),
        Ok(None)
    );
    let request = parse_head(b"GET /status?x=1 HTTP/1.0\r\nauthorization: Bearer t\r\n\r\n")
        .expect("parses")
        .expect("complete");
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/status");
    assert_eq!(
        request.authorization.as_deref(),
        Some(b"Bearer t".as_slice())
    );
    assert_eq!(
        parse_head(b"GET / HTTP/1.1\r\n\r\n").map(|r| r.map(|r| r.authorization)),
        Ok(Some(None))
    );
    assert_eq!(
        parse_head(b"G@T / HTTP/1.1\r\n\r\n").map_err(|r| r.status),
        Err(400)
    );
}

#[test]
fn token_checks() {
    assert_eq!(check_token("abc-DEF_012.~+/=="), Ok(()));
    assert!(check_token("").is_err());
    assert!(check_token("==").is_err());
    assert!(check_token("a b").is_err());
    assert!(check_token("a\"b").is_err());
    assert!(check_token("a=b").is_err());
    assert!(constant_time_eq(b"secret", b"secret"));
    assert!(!constant_time_eq(b"secreT", b"secret"));
    assert!(!constant_time_eq(b"secret1", b"secret"));
    assert!(!constant_time_eq(b"secre", b"secret"));
    assert!(!constant_time_eq(b"", b"secret"));
}

#[test]
fn responses_are_well_formed() {
    let response = Response::text(405, "method not allowed\n").with("Allow", "GET, HEAD");
    assert_eq!(
        String::from_utf8(response.bytes()).expect("text"),
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 19\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\nAllow: GET, HEAD\r\n\r\nmethod not allowed\n"
    );
    let now = SystemTime::now();
    let route_status = |path: &str| route(path, &sample(), now).status;
    assert_eq!(route_status("/metrics"), 200);
    assert_eq!(route_status("/elsewhere"), 404);
}

/// Serves a sample snapshot that grows like a loaded server, for `scripts/status-screenshot.sh`:
/// `cargo test --lib admin::tests::serve_sample -- --ignored --nocapture` serves
/// http://127.0.0.1:9901/ (or `RINGWAY_ADMIN_SAMPLE_ADDR`) for 30 s (or
/// `RINGWAY_ADMIN_SAMPLE_SECS`), with the token `RINGWAY_ADMIN_SAMPLE_TOKEN` if set.
#[test]
#[ignore = "serves a sample page for a screenshot; run on demand"]
fn serve_sample() {
    let address = std::env::var("RINGWAY_ADMIN_SAMPLE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:9901".to_owned())
        .parse()
        .expect("RINGWAY_ADMIN_SAMPLE_ADDR is ip:port");
    let seconds = std::env::var("RINGWAY_ADMIN_SAMPLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let token = std::env::var("RINGWAY_ADMIN_SAMPLE_TOKEN").ok();
    let begun = Instant::now();
    let admin = spawn(
        AdminSettings { address, token },
        Arc::new(move || {
            let mut snapshot = sample_after(SystemTime::now(), begun.elapsed());
            // The odd reason is for the escaping tests, not for the picture.
            snapshot
                .tls_failures
                .retain(|(reason, _)| !reason.contains('"'));
            snapshot
        }),
    )
    .expect("spawn");
    println!(
        "serving a sample on http://{}/ for {seconds} s",
        admin.address()
    );
    thread::sleep(Duration::from_secs(seconds));
}
