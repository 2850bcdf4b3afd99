//! Changing a running ringway (SIGHUP): under continuous load, twenty reloads add and remove
//! backends, swap certificates and change routes without one failed request, traffic follows
//! each change, and a failing reload in the middle changes nothing; what a reload keeps of an
//! unchanged backend (its pooled connection, its health), how it adds a checked backend, and
//! listeners added and removed. Real ringway process, real TLS clients, real backends.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use rustls::pki_types::CertificateDer;

/// One state of the configuration under test.
struct Shape<'a> {
    /// Backends of upstream `app` (serves `/`).
    app: &'a [&'a Backend],
    /// Backends of upstream `other`; when present, `/other` routes there.
    other: Option<&'a [&'a Backend]>,
    /// The certificate files of the listener.
    cert: &'a CertFiles,
}

fn list(backends: &[&Backend]) -> String {
    let quoted: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    quoted.join(", ")
}

fn config(shape: &Shape) -> String {
    let mut toml = format!(
        "workers = 2\n[[upstream]]\nname = \"app\"\nbackends = [{}]\n",
        list(shape.app)
    );
    if let Some(other) = shape.other {
        toml.push_str(&format!(
            "[[upstream]]\nname = \"other\"\nbackends = [{}]\n",
            list(other)
        ));
    }
    toml.push_str("[[listener]]\naddress = \"127.0.0.1:0\"\nupstream = \"app\"\n");
    if shape.other.is_some() {
        toml.push_str("[[listener.route]]\npath_prefix = \"/other\"\nupstream = \"other\"\n");
    }
    toml.push_str(&format!(
        "[[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        shape.cert.cert.display(),
        shape.cert.key.display()
    ));
    toml
}

/// Starts ringway on `shape`, with the config file the test rewrites.
fn start(shape: &Shape) -> Proxy {
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            workers: 2,
            listener: Some(format!(
                "upstream = \"app\"\n[[upstream]]\nname = \"app\"\nbackends = [{}]",
                list(shape.app)
            )),
            ..ProxyOptions::default()
        },
    );
    write_config(&proxy, shape);
    assert!(proxy.reload().contains("configuration reloaded"));
    proxy
}

fn write_config(proxy: &Proxy, shape: &Shape) {
    std::fs::write(proxy.config_path(), config(shape)).expect("write config");
}

/// The backends that answer `path` on new connections, over `n` requests, and the
/// certificate the listener presented.
fn answers(proxy: &Proxy, path: &str, n: usize) -> (BTreeSet<String>, CertificateDer<'static>) {
    let mut client = proxy.client();
    let cert = client.tls.conn.peer_certificates().expect("a certificate")[0].clone();
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let r = client.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        seen.insert(r.header("x-backend").unwrap_or("?").to_string());
    }
    (seen, cert)
}

fn names(backends: &[&Backend]) -> BTreeSet<String> {
    backends.iter().map(|b| b.name.clone()).collect()
}

#[test]
fn twenty_reloads_under_load_fail_no_request_and_traffic_follows_each() {
    let all: Vec<Backend> = ["a", "b", "c", "d"]
        .into_iter()
        .map(Backend::start)
        .collect();
    let [a, b, c, d] = [&all[0], &all[1], &all[2], &all[3]];
    let dir = temp_dir("reload-certs");
    let certs = [
        write_cert(&dir, "one", &["localhost"]),
        write_cert(&dir, "two", &["localhost"]),
    ];
    let sets: [&[&Backend]; 4] = [&[a, b], &[b, c], &[c, d], &[d, a]];
    let first = Shape {
        app: sets[0],
        other: None,
        cert: &certs[0],
    };
    let proxy = start(&first);
    let load = Load::start(proxy.addr, 32, 4);
    std::thread::sleep(Duration::from_millis(300));

    let mut current = (names(sets[0]), certs[0].der.clone());
    for round in 1..=20 {
        if round == 10 {
            // A reload that fails: a route to an upstream that does not exist.
            let mut broken = config(&Shape {
                app: sets[1],
                other: None,
                cert: &certs[1],
            });
            broken.push_str("[[listener.route]]\npath_prefix = \"/x\"\nupstream = \"missing\"\n");
            std::fs::write(proxy.config_path(), broken).unwrap();
            let line = proxy.reload();
            assert!(line.contains("reload failed"), "{line}");
            assert!(
                line.contains("missing"),
                "the error names the upstream: {line}"
            );
            let (seen, cert) = answers(&proxy, "/", 8);
            assert!(
                seen.is_subset(&current.0),
                "round {round}: {seen:?} ⊄ {:?}",
                current.0
            );
            assert_eq!(
                cert, current.1,
                "round {round}: the certificate did not change"
            );
            continue;
        }
        let set = sets[round % sets.len()];
        let cert = &certs[round % 2];
        let only_c = [c];
        let other = (round % 3 == 0).then_some(&only_c[..]);
        write_config(
            &proxy,
            &Shape {
                app: set,
                other,
                cert,
            },
        );
        let line = proxy.reload();
        assert!(
            line.contains("configuration reloaded"),
            "round {round}: {line}"
        );
        // New connections follow at once: only the new set, with the new certificate.
        let (seen, presented) = answers(&proxy, "/", 8);
        assert!(
            seen.is_subset(&names(set)),
            "round {round}: {seen:?} ⊄ {:?}",
            names(set)
        );
        assert_eq!(presented, cert.der, "round {round}: the new certificate");
        let (routed, _) = answers(&proxy, "/other", 2);
        let expected = if other.is_some() {
            names(&[c])
        } else {
            names(set)
        };
        assert!(
            routed.is_subset(&expected),
            "round {round}: /other went to {routed:?}"
        );
        current = (names(set), cert.der.clone());
        std::thread::sleep(Duration::from_millis(100));
    }
    load.stop().assert_clean(1000);
    let log = proxy.log();
    assert_eq!(log.matches("configuration reloaded").count(), 20, "{log}");
    assert!(!log.contains("request failed"), "{log}");
}

#[test]
fn a_kept_backend_keeps_its_pooled_connection_and_its_health() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            listener: Some(format!(
                "upstream = \"app\"\n[[upstream]]\nname = \"app\"\nbackends = [\"{}\"]",
                a.addr
            )),
            ..ProxyOptions::default()
        },
    );
    let cert = &proxy.certs[0];
    // `app` (a, unchecked) serves `/`; `checked` (b, rise 2 checks 1 s apart) serves `/b`.
    let toml = |extra: &str| {
        format!(
            "workers = 1\n[[upstream]]\nname = \"app\"\nbackends = [\"{}\"]\n\
             [[upstream]]\nname = \"checked\"\nbackends = [\"{}\"]\n\
             [upstream.health_check]\ninterval = \"1s\"\ntimeout = \"500ms\"\nrise = 2\n{extra}\
             [[listener]]\naddress = \"127.0.0.1:0\"\nupstream = \"app\"\n\
             [[listener.route]]\npath_prefix = \"/b\"\nupstream = \"checked\"\n\
             [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
            a.addr,
            b.addr,
            cert.cert.display(),
            cert.key.display()
        )
    };
    std::fs::write(proxy.config_path(), toml("")).unwrap();
    let line = proxy.reload();
    assert!(
        line.contains(&format!("backends added: checked/{}", b.addr)),
        "{line}"
    );
    assert!(wait_until(Duration::from_secs(10), || proxy
        .log()
        .contains("backend up")));
    let mut client = proxy.client();
    for _ in 0..5 {
        assert_eq!(client.get("/").status, 200);
    }
    assert_eq!(client.get("/b").status, 200);
    assert_eq!(a.accepted(), 1, "one pooled connection to `a`");

    // A reload with an unrelated change (one more upstream): `a` keeps its pooled
    // connection, and `b` stays up (checked afresh it would be out for two checks).
    let other = Backend::start("other");
    let more = format!(
        "[[upstream]]\nname = \"spare\"\nbackends = [\"{}\"]\n",
        other.addr
    );
    std::fs::write(proxy.config_path(), toml(&more)).unwrap();
    let line = proxy.reload();
    assert!(line.contains("upstreams added: spare"), "{line}");
    let mut fresh = proxy.client();
    assert_eq!(fresh.get("/b").status, 200, "b is still up");
    for _ in 0..20 {
        let r = fresh.get("/");
        assert_eq!((r.status, r.header("x-backend")), (200, Some("a")));
    }
    assert_eq!(a.accepted(), 1, "the pooled connection to `a` was reused");
    assert!(!proxy.log().contains("request failed"), "{}", proxy.log());
}

#[test]
fn a_backend_added_to_a_checked_upstream_gets_traffic_only_once_checked() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let cfg = |backends: &[&Backend]| {
        format!(
            "workers = 1\n[[upstream]]\nname = \"app\"\nbackends = [{}]\n\
             [upstream.health_check]\ninterval = \"1s\"\ntimeout = \"500ms\"\nrise = 2\n",
            list(backends)
        )
    };
    let proxy = Proxy::start_with(
        &[],
        ProxyOptions {
            listener: Some(format!(
                "upstream = \"app\"\n{}",
                cfg(&[&a]).replace("workers = 1\n", "")
            )),
            ..ProxyOptions::default()
        },
    );
    let cert = &proxy.certs[0];
    let toml = format!(
        "{}[[listener]]\naddress = \"127.0.0.1:0\"\nupstream = \"app\"\n\
         [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        cfg(&[&a, &b]),
        cert.cert.display(),
        cert.key.display()
    );
    std::fs::write(proxy.config_path(), toml).unwrap();
    let line = proxy.reload();
    assert!(
        line.contains(&format!("backends added: app/{}", b.addr)),
        "{line}"
    );
    let (seen, _) = answers(&proxy, "/", 10);
    assert_eq!(
        seen,
        names(&[&a]),
        "not before its checks pass (rise = 2, 1 s apart)"
    );
    assert!(wait_until(Duration::from_secs(10), || proxy
        .log()
        .contains("backend up")));
    let (seen, _) = answers(&proxy, "/", 10);
    assert_eq!(seen, names(&[&a, &b]), "once checked, it takes its share");
}

#[test]
fn listeners_are_added_and_removed_by_a_reload() {
    let a = Backend::start("a");
    let proxy = Proxy::start(&[a.addr]);
    let cert = &proxy.certs[0];
    let spare = refused_addr();
    let listener = |address: String| {
        format!(
            "[[listener]]\naddress = \"{address}\"\nbackends = [\"{}\"]\n\
             [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
            a.addr,
            cert.cert.display(),
            cert.key.display()
        )
    };
    let both = format!(
        "workers = 1\n{}{}",
        listener("127.0.0.1:0".into()),
        listener(spare.to_string())
    );
    std::fs::write(proxy.config_path(), &both).unwrap();
    let line = proxy.reload();
    assert!(
        line.contains(&format!("listeners added: {spare}")),
        "{line}"
    );
    let mut on_spare = Client::connect(spare, Some("localhost"));
    assert_eq!(on_spare.get("/").status, 200);

    // Removing it: it stops accepting; a connection it had is served its next request, then
    // closed.
    let first_only = format!("workers = 1\n{}", listener("127.0.0.1:0".into()));
    std::fs::write(proxy.config_path(), first_only).unwrap();
    let line = proxy.reload();
    assert!(
        line.contains(&format!("listeners removed: {spare}")),
        "{line}"
    );
    let r = on_spare.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(on_spare.is_closed());
    assert!(
        wait_until(Duration::from_secs(2), || std::net::TcpStream::connect(
            spare
        )
        .is_err()),
        "the removed listener still accepts"
    );
    assert_eq!(
        proxy.client().get("/").status,
        200,
        "the kept listener serves on"
    );
}

#[test]
fn a_reload_that_cannot_bind_or_read_a_certificate_changes_nothing() {
    let a = Backend::start("a");
    let proxy = Proxy::start(&[a.addr]);
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cert = &proxy.certs[0];
    let toml = |extra: &str, cert_path: String| {
        format!(
            "workers = 1\n[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"{}\"]\n\
             [[listener.certificate]]\ncert = \"{cert_path}\"\nkey = \"{}\"\n{extra}",
            a.addr,
            cert.key.display()
        )
    };
    let taken = format!(
        "[[listener]]\naddress = \"{}\"\nbackends = [\"{}\"]\n\
         [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
        held.local_addr().unwrap(),
        a.addr,
        cert.cert.display(),
        cert.key.display()
    );
    std::fs::write(
        proxy.config_path(),
        toml(&taken, cert.cert.display().to_string()),
    )
    .unwrap();
    let line = proxy.reload();
    assert!(
        line.contains("reload failed") && line.contains("address already in use"),
        "{line}"
    );
    std::fs::write(
        proxy.config_path(),
        toml("", "/nonexistent/cert.pem".into()),
    )
    .unwrap();
    let line = proxy.reload();
    assert!(
        line.contains("reload failed") && line.contains("/nonexistent/cert.pem"),
        "{line}"
    );
    assert_eq!(proxy.client().get("/").status, 200);
    // The next good reload works.
    std::fs::write(
        proxy.config_path(),
        toml("", cert.cert.display().to_string()),
    )
    .unwrap();
    assert!(proxy.reload().contains("configuration reloaded"));
    assert_eq!(proxy.client().get("/").status, 200);
}

#[test]
fn a_request_in_flight_to_a_removed_backend_finishes() {
    let slow = Backend::with_handler(
        "slow",
        std::sync::Arc::new(|_req, s| {
            std::thread::sleep(Duration::from_millis(1500));
            write_ok(s, "slow answer")?;
            Ok(Keep::Open)
        }),
    );
    let fast = Backend::start("fast");
    let proxy = Proxy::start(&[slow.addr]);
    let addr = proxy.addr;
    let in_flight = std::thread::spawn(move || {
        let mut client = Client::connect(addr, Some("localhost"));
        let r = client.get("/slow");
        (r.status, r.text())
    });
    assert!(wait_until(Duration::from_secs(5), || slow.received().len() == 1));
    let cert = &proxy.certs[0];
    std::fs::write(
        proxy.config_path(),
        format!(
            "workers = 1\n[[listener]]\naddress = \"127.0.0.1:0\"\nbackends = [\"{}\"]\n\
             [[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
            fast.addr,
            cert.cert.display(),
            cert.key.display()
        ),
    )
    .unwrap();
    let line = proxy.reload();
    assert!(
        line.contains(&format!("backends removed: listener0/{}", slow.addr)),
        "{line}"
    );
    // New requests go to the new backend while the old one is still answering.
    let r = proxy.client().get("/new");
    assert_eq!(r.header("x-backend"), Some("fast"));
    let (status, text) = in_flight.join().expect("client thread");
    assert_eq!((status, text.as_str()), (200, "slow answer"));
    assert_eq!(
        slow.received().len(),
        1,
        "nothing more to the removed backend"
    );
}
