//! The access log end to end: one JSON line per request and per connection that ends without
//! one, every field present, for a success, a request refused by a framing rule, a 502, a 503,
//! a 504 and a failed handshake; the combined format; logrotate's move-then-SIGUSR1; per-route
//! switches. Real ringway process, real TLS clients, real backend sockets.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The JSON lines of the log at `path`, parsed.
fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits until the log at `path` has `n` lines.
fn wait_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    assert!(
        wait_until(Duration::from_secs(5), || lines(path).len() >= n),
        "expected {n} lines: {:?}",
        std::fs::read_to_string(path)
    );
    lines(path)
}

/// A backend that reads the request and never answers.
fn silent_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            held.push(s);
        }
    });
    addr
}

fn start(dir: &std::path::Path, format: &str, extra_routes: &str) -> (Proxy, Backend) {
    let ok = Backend::start("ok");
    let log = dir.join("access.log");
    let upstream = |name: &str, addr: SocketAddr, more: &str| {
        format!("[[upstream]]\nname = \"{name}\"\nbackends = [\"{addr}\"]\n{more}")
    };
    let extra = format!(
        "[timeouts]\nresponse = \"500ms\"\n[access_log]\nenabled = true\nformat = \"{format}\"\n\
         path = \"{}\"\n{}{}{}{}",
        log.display(),
        upstream("app", ok.addr, ""),
        upstream("bad", bad_status_backend(), ""),
        upstream("slow", silent_backend(), ""),
        upstream(
            "down",
            refused_addr(),
            "[upstream.health_check]\ninterval = \"100ms\"\ntimeout = \"50ms\"\njitter = \"0s\"\nfall = 1\n"
        ),
    );
    let listener = format!(
        "upstream = \"app\"\n\
         [[listener.route]]\npath_prefix = \"/bad\"\nupstream = \"bad\"\n\
         [[listener.route]]\npath_prefix = \"/slow\"\nupstream = \"slow\"\n\
         [[listener.route]]\npath_prefix = \"/down\"\nupstream = \"down\"\n{extra_routes}"
    );
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra,
            listener: Some(listener),
            ..ProxyOptions::default()
        },
    );
    (proxy, ok)
}

#[test]
fn every_outcome_is_one_json_line_with_every_field() {
    let dir = temp_dir("access-log");
    let (proxy, ok) = start(&dir, "json", "");
    let log = dir.join("access.log");
    assert!(wait_until(Duration::from_secs(5), || proxy
        .log()
        .contains("backend down")));

    let mut c = proxy.client();
    c.send(b"GET /hello?x=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test-agent/1.0\r\n\r\n");
    assert_eq!(c.read_response("GET").unwrap().status, 200);
    assert_eq!(proxy.client().get("/bad").status, 502);
    assert_eq!(proxy.client().get("/slow").status, 504);
    assert_eq!(proxy.client().get("/down").status, 503);
    // A request smuggling attempt: refused by the CL/TE rule, nothing forwarded.
    let mut s = proxy.client();
    s.send(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\
          Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(s.read_response("POST").unwrap().status, 400);
    // Not TLS at all: the handshake fails.
    let mut raw = TcpStream::connect(proxy.addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let _ = raw.read(&mut [0u8; 64]);
    drop(raw);

    // A handshake, then nothing.
    let silent = proxy.client();
    drop(silent);

    let lines = wait_lines(&log, 7);
    for line in &lines {
        for key in ringway::access_log::JSON_KEYS {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
    }
    let find = |target: &str| {
        lines
            .iter()
            .find(|l| l["target"].as_str() == Some(target))
            .unwrap_or_else(|| panic!("no line for {target}: {lines:?}"))
    };
    let hello = find("/hello?x=1");
    assert_eq!(hello["status"], 200);
    assert_eq!(hello["method"], "GET");
    assert_eq!(hello["host"], "localhost");
    assert_eq!(hello["user_agent"], "test-agent/1.0");
    assert_eq!(hello["upstream"], "app");
    assert_eq!(hello["backend"], ok.addr.to_string());
    assert_eq!(hello["attempts"], 1);
    assert_eq!(hello["termination"], "complete");
    assert_eq!(hello["tls_version"], "TLSv1.3");
    assert_eq!(hello["sni"], "localhost");
    assert!(hello["bytes_in"].as_u64().unwrap() > 0 && hello["bytes_out"].as_u64().unwrap() > 0);
    assert!(hello["duration_ms"].as_f64().is_some() && hello["first_byte_ms"].as_f64().is_some());
    assert_eq!(find("/bad")["status"], 502);
    assert_eq!(find("/bad")["termination"], "backend/malformed_status_line");
    assert_eq!(find("/slow")["status"], 504);
    assert_eq!(find("/slow")["termination"], "backend/try_timeout");
    assert_eq!(find("/down")["status"], 503);
    assert_eq!(find("/down")["termination"], "backend/no_backend");
    let refused = lines
        .iter()
        .find(|l| l["status"] == 400)
        .expect("a line for the refused request");
    assert_eq!(refused["termination"], "client/cl_te");
    let handshake = lines
        .iter()
        .find(|l| {
            l["termination"]
                .as_str()
                .is_some_and(|t| t.starts_with("client/handshake"))
        })
        .expect("a line for the failed handshake");
    assert_eq!(handshake["status"], 0);
    assert_eq!(handshake["method"], Value::Null);
    let silent = lines
        .iter()
        .find(|l| l["termination"] == "client/no_request")
        .expect("a line for the connection without a request");
    assert_eq!(silent["tls_version"], "TLSv1.3", "the handshake it made");
    assert_eq!(handshake["tls_version"], Value::Null, "no handshake made");
    assert_eq!(
        ok.received().len(),
        1,
        "only the good request reached a backend"
    );
}

#[test]
fn combined_format_rotation_and_route_switches() {
    let dir = temp_dir("access-log-combined");
    let (proxy, _ok) = start(
        &dir,
        "combined",
        "[[listener.route]]\npath_prefix = \"/quiet\"\nupstream = \"app\"\naccess_log = false\n",
    );
    let log = dir.join("access.log");
    let mut c = proxy.client();
    c.send(b"GET /first HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\n\r\n");
    assert_eq!(c.read_response("GET").unwrap().status, 200);
    assert_eq!(c.get("/quiet").status, 200);
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(5), || read(&log).contains("/first")));
    let text = read(&log);
    let line = text.lines().next().unwrap_or_default();
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(line.contains("] \"GET /first HTTP/1.1\" 200 "), "{line}");
    assert!(line.ends_with(" \"-\" \"curl/8\""), "{line}");

    // logrotate: move the file, then SIGUSR1; the next lines go to a new file at the path.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(proxy.child.id(), "USR1");
    assert!(wait_until(Duration::from_secs(5), || proxy
        .log()
        .contains("access log reopened")));
    assert_eq!(c.get("/second").status, 200);
    assert!(wait_until(Duration::from_secs(5), || read(&log).contains("/second")));
    assert!(!read(&rotated).contains("/second"));
    assert!(!read(&rotated).contains("/quiet") && !read(&log).contains("/quiet"));
}

#[test]
fn request_ids_are_generated_or_kept_sent_to_the_backend_and_logged() {
    let dir = temp_dir("access-log-ids");
    let (proxy, ok) = start(&dir, "json", "");
    let log = dir.join("access.log");
    let mut c = proxy.client();
    assert_eq!(c.get("/generated").status, 200);
    c.send(b"GET /kept HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: client-id-42\r\n\r\n");
    assert_eq!(c.read_response("GET").unwrap().status, 200);
    let lines = wait_lines(&log, 2);
    let received = ok.received();
    let generated = received[0]
        .header("x-request-id")
        .expect("an id sent to the backend");
    assert_eq!(generated.len(), 32, "{generated}");
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(lines[0]["request_id"], generated);
    assert_eq!(
        received[1].headers_named("x-request-id"),
        vec!["client-id-42"]
    );
    assert_eq!(lines[1]["request_id"], "client-id-42");
}
