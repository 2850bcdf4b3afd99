//! Plain-HTTP listeners, the redirect to HTTPS, fixed responses and per-route header rules.

use super::*;

const PLAIN: &str = r#"
[[upstream]]
name = "app"
backends = ["127.0.0.1:8080"]

[[listener]]
address = "127.0.0.1:8080"
"#;

fn plain(extra: &str) -> String {
    format!("{PLAIN}{extra}\n")
}

#[test]
fn a_listener_without_certificates_serves_plain_http() {
    let config = Config::from_toml_str(&plain("upstream = \"app\"")).expect("plain");
    assert!(config.listeners[0].is_plain());
    assert!(!config.listeners[0].redirect_https);
    config
        .check()
        .expect("nothing to load for a plain listener");

    let (key, reason, _) = invalid(&plain(
        "upstream = \"app\"\n[listener.tls]\ntickets = false",
    ));
    assert_eq!(key, "listener[0].tls");
    assert!(reason.contains("without certificates"), "{reason}");
}

#[test]
fn redirect_https_needs_no_upstream_and_only_plain_listeners() {
    let config = Config::from_toml_str(&plain("redirect_https = true")).expect("redirect alone");
    assert!(config.listeners[0].redirect_https);
    assert_eq!(config.listeners[0].redirect_https_port, None);
    let config = Config::from_toml_str(&plain("redirect_https = true\nredirect_https_port = 8443"))
        .expect("with a port");
    assert_eq!(config.listeners[0].redirect_https_port, Some(8443));
    let back = Config::from_toml_str(&config.to_toml_string().unwrap()).unwrap();
    assert_eq!(back.listeners, config.listeners);

    let (key, reason, _) = invalid(&plain("redirect_https_port = 8443\nupstream = \"app\""));
    assert_eq!(key, "listener[0].redirect_https_port");
    assert!(reason.contains("without redirect_https"), "{reason}");
    let (key, _, _) = invalid(&plain("redirect_https = true\nredirect_https_port = 0"));
    assert_eq!(key, "listener[0].redirect_https_port");

    let (key, reason, _) = invalid(&with("").replace(
        "backends = [\"127.0.0.1:8080\"]",
        "backends = [\"127.0.0.1:8080\"]\nredirect_https = true",
    ));
    assert_eq!(key, "listener[0].redirect_https");
    assert!(reason.contains("plain-HTTP listener"), "{reason}");
}

#[test]
fn routes_answer_by_themselves() {
    let config = Config::from_toml_str(&plain(
        "upstream = \"app\"\n[[listener.route]]\npath_prefix = \"/old/\"\n\
         respond = { status = 503, body = \"down\\n\", content_type = \"text/html\" }",
    ))
    .expect("a fixed response");
    let route = &config.listeners[0].routes[0];
    assert_eq!(route.upstream, None);
    let respond = route.respond.as_ref().expect("respond");
    assert_eq!((respond.status, respond.body.as_str()), (503, "down\n"));
    assert_eq!(respond.response().unwrap().status(), 503);
    let back = Config::from_toml_str(&config.to_toml_string().unwrap()).unwrap();
    assert_eq!(back.listeners, config.listeners);

    let cases = [
        (
            "respond = { status = 99 }",
            "listener[0].route[0].respond",
            "status 99 is not a final status: use 200 to 599",
        ),
        (
            "respond = { status = 204, body = \"x\" }",
            "listener[0].route[0].respond",
            "a 204 response has no body",
        ),
        (
            "respond = { status = 200, content_type = \"a\\nb\" }",
            "listener[0].route[0].respond",
            "content_type \"a\\nb\" is not a header field value",
        ),
        (
            "respond = { status = 200, body = \"x\", body_file = \"x.html\" }",
            "listener[0].route[0].respond",
            "body and body_file cannot both be given",
        ),
        (
            "respond = { status = 200, body_file = \"\" }",
            "listener[0].route[0].respond",
            "body_file must be a file path, not empty",
        ),
        (
            "respond = { status = 200 }\nupstream = \"app\"",
            "listener[0].route[0].respond",
            "cannot be given with upstream: a route sends to an upstream or answers by itself, \
             not both",
        ),
        (
            "respond = { status = 200, bdy = \"x\" }",
            "listener[0].route[0].respond.bdy",
            "unknown field `bdy`, expected one of `status`, `body`, `body_file`, `content_type`",
        ),
    ];
    for (route, key, reason) in cases {
        let (got_key, got_reason, _) = invalid(&plain(&format!(
            "upstream = \"app\"\n[[listener.route]]\n{route}"
        )));
        assert_eq!(
            (got_key.as_str(), got_reason.as_str()),
            (key, reason),
            "{route}"
        );
    }
    let big = "x".repeat(RespondConfig::MAX_BODY + 1);
    let (key, reason, _) = invalid(&plain(&format!(
        "upstream = \"app\"\n[[listener.route]]\nrespond = {{ status = 200, body = \"{big}\" }}"
    )));
    assert_eq!(key, "listener[0].route[0].respond");
    assert!(reason.contains("over the limit"), "{reason}");
}

#[test]
fn routes_have_header_rules() {
    let config = Config::from_toml_str(&plain(
        "upstream = \"app\"\n[[listener.route]]\npath_prefix = \"/static/\"\nupstream = \"app\"\n\
         [listener.route.response_headers]\nset = { \"Cache-Control\" = \"max-age=3600\" }\n\
         [listener.route.request_headers]\nremove = [\"Cookie\"]",
    ))
    .expect("route header rules");
    let route = &config.listeners[0].routes[0];
    assert_eq!(route.response_headers.set["Cache-Control"], "max-age=3600");
    assert_eq!(route.request_headers.remove, ["Cookie"]);

    let (key, reason, _) = invalid(&plain(
        "upstream = \"app\"\n[[listener.route]]\nupstream = \"app\"\n\
         [listener.route.request_headers]\nset = { \"Host\" = \"x\" }",
    ));
    assert_eq!(key, "listener[0].route[0].request_headers");
    assert!(reason.contains("Host cannot be changed"), "{reason}");
}

#[test]
fn a_fixed_body_is_read_from_its_file_relative_to_the_config() {
    let dir = std::env::temp_dir().join(format!("ringway-respond-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("down.html"), "<h1>down</h1>").unwrap();
    let path = dir.join("ringway.toml");
    std::fs::write(
        &path,
        plain(
            "upstream = \"app\"\n[[listener.route]]\n\
             respond = { status = 503, body_file = \"down.html\", content_type = \"text/html\" }",
        ),
    )
    .unwrap();
    let config = Config::load(&path).expect("load");
    let respond = config.listeners[0].routes[0].respond.as_ref().unwrap();
    assert_eq!(
        respond.body_file.as_deref(),
        Some(dir.join("down.html").as_path())
    );
    config.check().expect("the file is there");
    let mut out = Vec::new();
    respond.response().unwrap().write(
        crate::http1::Method::Get,
        true,
        &Default::default(),
        &mut out,
    );
    assert!(out.ends_with(b"\r\n\r\n<h1>down</h1>"));

    std::fs::remove_file(dir.join("down.html")).unwrap();
    match config.check() {
        Err(ConfigError::Invalid { key, reason, .. }) => {
            assert_eq!(key, "listener[0].route[0].respond");
            assert!(
                reason.starts_with("body_file ") && reason.contains("down.html"),
                "{reason}"
            );
        }
        other => panic!("expected the missing file, got {other:?}"),
    }
    std::fs::write(
        dir.join("down.html"),
        vec![b'x'; RespondConfig::MAX_BODY + 1],
    )
    .unwrap();
    let error = config.check().expect_err("too large");
    assert!(error.to_string().contains("over the limit"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
