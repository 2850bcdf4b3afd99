//! Header rules on a real ringway: fields set, appended and removed on requests to the
//! backend and on responses to the client; rules that would touch framing or forwarding are
//! refused by `ringway check`, naming the key.

mod common;

use std::io::Write;
use std::sync::Arc;

use common::*;

#[test]
fn request_and_response_rules_apply() {
    let backend = Backend::with_handler(
        "b",
        Arc::new(|_req, s| {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nServer: backend/1.0\r\nX-Powered-By: php\r\nContent-Length: 2\r\n\r\nok"
            )?;
            Ok(Keep::Open)
        }),
    );
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            listener: Some(format!(
                "backends = [\"{}\"]\n\
                 [listener.request_headers]\nset = {{ \"X-Env\" = \"prod\" }}\n\
                 append = {{ \"Via\" = \"1.1 ringway\" }}\nremove = [\"X-Debug\"]\n\
                 [listener.response_headers]\n\
                 set = {{ \"Strict-Transport-Security\" = \"max-age=63072000\" }}\n\
                 remove = [\"Server\", \"x-powered-by\"]\n",
                backend.addr
            )),
            ..ProxyOptions::default()
        },
    );
    let mut c = proxy.client();
    c.send(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Debug: 1\r\nX-Env: dev\r\nVia: 1.0 edge\r\n\r\n",
    );
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=63072000")
    );
    assert_eq!(r.header("server"), None);
    assert_eq!(r.header("x-powered-by"), None);
    let got = &backend.received()[0];
    assert_eq!(
        got.headers_named("x-env"),
        vec!["prod"],
        "set replaces the client's"
    );
    assert_eq!(
        got.headers_named("via"),
        vec!["1.0 edge", "1.1 ringway"],
        "append adds"
    );
    assert!(got.headers_named("x-debug").is_empty(), "removed");
}

#[test]
fn a_rule_on_a_framing_or_forwarding_field_is_refused_naming_the_key() {
    let dir = temp_dir("header-rules");
    let cert = write_cert(&dir, "c", &["localhost"]);
    for (table, rule) in [
        ("request_headers", "remove = [\"Content-Length\"]"),
        (
            "response_headers",
            "set = { \"Transfer-Encoding\" = \"chunked\" }",
        ),
        (
            "request_headers",
            "set = { \"X-Forwarded-For\" = \"1.2.3.4\" }",
        ),
        (
            "response_headers",
            "set = { \"X-A\" = \"a\\r\\nInjected: 1\" }",
        ),
    ] {
        let config = dir.join("ringway.toml");
        std::fs::write(
            &config,
            format!(
                "[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"127.0.0.1:9\"]\n\
                 [listener.{table}]\n{rule}\n\
                 [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
                cert.cert.display(),
                cert.key.display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringway"))
            .arg("check")
            .arg(&config)
            .output()
            .expect("run ringway check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{rule}: {stderr}");
        assert!(stderr.contains(&format!("listener[0].{table}")), "{stderr}");
    }
}
