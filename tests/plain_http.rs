//! Plain-HTTP listeners, the redirect to HTTPS, routes that answer by themselves and per-route
//! header rules, on a real ringway with real backend sockets (and curl, when installed).

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::*;

/// A ringway whose only listener has no certificate: `listener` holds its keys and tables.
fn plain_proxy(extra: &str, listener: String) -> Proxy {
    Proxy::start_with(
        &[],
        ProxyOptions {
            extra: extra.to_owned(),
            certs: Vec::new(),
            listener: Some(listener),
            ..ProxyOptions::default()
        },
    )
}

/// `curl` with `args` against `url`: its output, or `None` (said) when curl is not installed.
fn curl(args: &[&str], url: &str) -> Option<String> {
    match Command::new("curl").args(args).arg(url).output() {
        Ok(out) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Err(e) => {
            eprintln!("curl not run ({e}): the curl part of this test is skipped");
            None
        }
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[test]
fn a_plain_listener_routes_and_balances_like_a_tls_one() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let api = Backend::start("api");
    let proxy = plain_proxy(
        &format!(
            "[[upstream]]\nname = \"web\"\nbackends = [\"{}\", \"{}\"]\n\
             [[upstream]]\nname = \"api\"\nbackends = [\"{}\"]\n",
            a.addr, b.addr, api.addr
        ),
        "upstream = \"web\"\n[[listener.route]]\npath_prefix = \"/api/\"\nupstream = \"api\"\n"
            .to_owned(),
    );
    let mut c = PlainClient::connect(proxy.addr);
    let mut seen = Vec::new();
    for _ in 0..4 {
        c.send(b"GET /page HTTP/1.1\r\nHost: example.com\r\n\r\n");
        let r = c.read_response("GET").unwrap();
        assert_eq!(r.status, 200);
        seen.push(r.header("x-backend").unwrap().to_owned());
    }
    assert!(
        seen.contains(&"a".into()) && seen.contains(&"b".into()),
        "{seen:?}"
    );
    c.send(b"POST /api/v1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello");
    let r = c.read_response("POST").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "api POST /api/v1\n"));
    assert_eq!(r.header("x-body-len"), Some("5"));

    let got = &api.received()[0];
    assert_eq!(got.header("x-forwarded-proto"), Some("http"));
    assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
    assert!(
        got.header("forwarded").unwrap().contains("proto=http"),
        "{:?}",
        got.header("forwarded")
    );

    if let Some(out) = curl(&["-s"], &url(proxy.addr, "/api/x")) {
        assert_eq!(out, "api GET /api/x\n");
    }
}

#[test]
fn redirect_https_answers_308_except_acme_challenges() {
    let acme = Backend::start("acme");
    let proxy = plain_proxy(
        &format!(
            "[[upstream]]\nname = \"acme\"\nbackends = [\"{}\"]\n",
            acme.addr
        ),
        "redirect_https = true\nredirect_https_port = 8443\n\
         [listener.response_headers]\nset = { \"X-Frame-Options\" = \"DENY\" }\n\
         [[listener.route]]\npath_prefix = \"/.well-known/acme-challenge/\"\nupstream = \"acme\"\n"
            .to_owned(),
    );
    let mut c = PlainClient::connect(proxy.addr);
    c.send(b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: Example.COM:80\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://Example.COM:8443/a/b?x=1&y=%20")
    );
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("connection"), None, "kept alive");

    // The same connection: a HEAD, then a POST whose body is read and dropped.
    c.send(b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    let r = c.read_response("HEAD").unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://example.com:8443/"));
    c.send(b"POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello");
    let r = c.read_response("POST").unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://example.com:8443/form"));

    // ACME HTTP-01 challenges reach their upstream over plain HTTP.
    c.send(b"GET /.well-known/acme-challenge/tok3n HTTP/1.1\r\nHost: example.com\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "acme GET /.well-known/acme-challenge/tok3n\n");
    assert_eq!(
        acme.received().len(),
        1,
        "only the challenge reached a backend"
    );

    // A Host no Location can name: 400, the connection closes, nothing forwarded.
    let mut bad = PlainClient::connect(proxy.addr);
    bad.send(b"GET /x HTTP/1.1\r\nHost: a@evil.example\r\n\r\n");
    let r = bad.read_response("GET").unwrap();
    assert_eq!(r.status, 400);
    assert!(bad.is_closed());
    assert_eq!(acme.received().len(), 1);

    if let Some(out) = curl(
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
            "Host: shop.example",
        ],
        &url(proxy.addr, "/cart?id=7"),
    ) {
        assert_eq!(out, "308 https://shop.example:8443/cart?id=7");
    }
}

#[test]
fn a_redirecting_listener_without_upstream_answers_404_to_challenges() {
    let proxy = plain_proxy("", "redirect_https = true\n".to_owned());
    let mut c = PlainClient::connect(proxy.addr);
    c.send(b"GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://example.com/x"));
    c.send(b"GET /.well-known/acme-challenge/t HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(c.read_response("GET").unwrap().status, 404);
}

#[test]
fn a_route_answers_by_itself_without_a_backend() {
    let app = Backend::start("app");
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: format!("[[upstream]]\nname = \"app\"\nbackends = [\"{}\"]\n", app.addr),
            listener: Some(
                "upstream = \"app\"\n\
                 [listener.response_headers]\nset = { \"Strict-Transport-Security\" = \"max-age=600\" }\n\
                 [[listener.route]]\npath_prefix = \"/shop/\"\n\
                 respond = { status = 503, body = \"<h1>Back soon</h1>\\n\", content_type = \"text/html; charset=utf-8\" }\n\
                 [listener.route.response_headers]\nset = { \"Retry-After\" = \"120\" }\n\
                 [[listener.route]]\npath_prefix = \"/blocked\"\nrespond = { status = 403 }\n"
                    .to_owned(),
            ),
            ..ProxyOptions::default()
        },
    );
    let mut c = proxy.client();
    c.send(b"GET /shop/cart HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response("GET").unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "<h1>Back soon</h1>\n");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("retry-after"), Some("120"));
    assert_eq!(r.header("strict-transport-security"), Some("max-age=600"));
    c.send(b"HEAD /shop/ HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let r = c.read_response("HEAD").unwrap();
    assert_eq!((r.status, r.body.len()), (503, 0));
    assert_eq!(r.header("content-length"), Some("19"));
    c.send(b"DELETE /blocked/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc");
    let r = c.read_response("DELETE").unwrap();
    assert_eq!((r.status, r.body.len()), (403, 0));
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(app.received().is_empty(), "nothing reached the backend");

    // The connection stays usable; other paths go to the upstream, without the route's rules.
    let r = c.get("/other");
    assert_eq!((r.status, r.text().as_str()), (200, "app GET /other\n"));
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(r.header("strict-transport-security"), Some("max-age=600"));
}

#[test]
fn a_routes_header_rules_follow_the_listeners_on_that_route_only() {
    let app = Backend::start("app");
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            extra: format!("[[upstream]]\nname = \"app\"\nbackends = [\"{}\"]\n", app.addr),
            listener: Some(
                "upstream = \"app\"\n\
                 [listener.request_headers]\nset = { \"X-Env\" = \"prod\", \"X-Tier\" = \"edge\" }\n\
                 [listener.response_headers]\nset = { \"Cache-Control\" = \"no-store\" }\n\
                 [[listener.route]]\npath_prefix = \"/static/\"\nupstream = \"app\"\n\
                 [listener.route.request_headers]\nremove = [\"Cookie\", \"X-Tier\"]\n\
                 [listener.route.response_headers]\nset = { \"Cache-Control\" = \"max-age=3600\" }\n"
                    .to_owned(),
            ),
            ..ProxyOptions::default()
        },
    );
    let mut c = proxy.client();
    for path in ["/static/app.js", "/api/x"] {
        c.send(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nCookie: session=1\r\n\r\n")
                .as_bytes(),
        );
        let r = c.read_response("GET").unwrap();
        assert_eq!(r.status, 200);
        let expected = if path.starts_with("/static/") {
            "max-age=3600"
        } else {
            "no-store"
        };
        assert_eq!(r.header("cache-control"), Some(expected), "{path}");
    }
    let got = app.received();
    assert_eq!(got[0].path, "/static/app.js");
    assert_eq!(got[0].header("cookie"), None, "the route removes it");
    assert_eq!(
        got[0].header("x-tier"),
        None,
        "the route removes the listener's field"
    );
    assert_eq!(
        got[0].header("x-env"),
        Some("prod"),
        "the listener's rules apply first"
    );
    assert_eq!(got[1].header("cookie"), Some("session=1"));
    assert_eq!(got[1].header("x-tier"), Some("edge"));
}

#[test]
fn a_fixed_body_file_is_read_again_at_each_reload() {
    let dir = temp_dir("respond-file");
    let page = dir.join("maintenance.html");
    std::fs::write(&page, "<h1>one</h1>").unwrap();
    let proxy = plain_proxy(
        "",
        format!(
            "[[listener.route]]\nrespond = {{ status = 503, body_file = \"{}\", \
             content_type = \"text/html\" }}\n",
            page.display()
        ),
    );
    let mut c = PlainClient::connect(proxy.addr);
    let get = |c: &mut PlainClient| {
        c.send(b"GET /any HTTP/1.1\r\nHost: example.com\r\n\r\n");
        let r = c.read_response("GET").unwrap();
        assert_eq!(r.status, 503);
        r.text()
    };
    assert_eq!(get(&mut c), "<h1>one</h1>");
    std::fs::write(&page, "<h1>two</h1>").unwrap();
    let outcome = proxy.reload();
    assert!(outcome.contains("configuration reloaded"), "{outcome}");
    assert_eq!(
        get(&mut c),
        "<h1>two</h1>",
        "the kept connection follows the reload"
    );

    // A file that went away fails the reload, naming it; the page in force stays.
    std::fs::remove_file(&page).unwrap();
    let outcome = proxy.reload();
    assert!(
        outcome.contains("reload failed") && outcome.contains("maintenance.html"),
        "{outcome}"
    );
    assert_eq!(get(&mut c), "<h1>two</h1>");
}
