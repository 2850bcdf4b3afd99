//! The checks on ordinary inputs, and the replay of every saved fuzz input.

use std::sync::Arc;

use rustls::pki_types::ServerName;

use super::client_hello::rustls_reading;
use super::*;
use crate::config::Config;
use crate::tls::client_hello::{Sni, client_hello_sni};

type Check = fn(&[u8]);

/// Every fuzz target (`fuzz/fuzz_targets/<name>.rs`) and its check.
const TARGETS: [(&str, Check); 6] = [
    ("request_head", check_request_head),
    ("chunked", check_chunked),
    ("response_head", check_response_head),
    ("client_hello", check_client_hello),
    ("config", check_config),
    ("proxy_protocol", check_proxy_protocol),
];

fn fuzz_dir(rest: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(rest)
}

/// Replays every saved input under fuzz/regressions/<target>/ (each target has its
/// directory, with a README at least), then the seeds under fuzz/seeds/<target>/. An input
/// named `open-*` is a reported finding whose fix is in code the fuzzing owner may not
/// change (its README says which): it must still break an invariant, so that its fix shows
/// here and the file is renamed to `crash-*`.
#[test]
fn saved_fuzz_inputs_hold_the_invariants() {
    for (target, check) in TARGETS {
        let regressions = fuzz_dir("regressions").join(target);
        let entries = std::fs::read_dir(&regressions).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (every target keeps its directory)",
                regressions.display()
            )
        });
        let seeds = std::fs::read_dir(fuzz_dir("seeds").join(target));
        for entry in entries.chain(seeds.into_iter().flatten()) {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let open = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("open-"));
            let replay = std::panic::catch_unwind(|| check(&data));
            if open {
                assert!(
                    replay.is_err(),
                    "{} holds the invariants now: rename it to crash-* and update its \
                     README",
                    path.display()
                );
            } else {
                assert!(replay.is_ok(), "{} breaks an invariant", path.display());
            }
        }
    }
}

#[test]
fn every_fuzz_target_is_replayed() {
    let targets = std::fs::read_dir(fuzz_dir("fuzz_targets")).expect("fuzz/fuzz_targets");
    for entry in targets {
        let path = entry.expect("directory entry").path();
        let name = path.file_stem().and_then(|n| n.to_str()).expect("name");
        assert!(
            TARGETS.iter().any(|(target, _)| *target == name),
            "fuzz target {name} is not replayed"
        );
    }
}

#[test]
fn checks_hold_on_ordinary_messages() {
    check_request_head(
        b"POST /a?b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    check_request_head(
        b"GET http://h:8/p HTTP/1.1\r\nHost: h:8\r\nConnection: x, close\r\nX: y\r\n\r\n",
    );
    check_response_head(b"\x00HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    check_response_head(b"\x01HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    check_chunked(b"\x80a;x=\"y\"\r\n0123456789\r\n0\r\nT: v\r\n\r\nnext");
}

/// ClientHellos a rustls client sends, as fuzz inputs (two selector bytes first), with the
/// name each carries: TLS 1.3 and 1.2, with and without SNI, ALPN, in one record or many.
fn real_client_hellos() -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    use rustls::crypto::aws_lc_rs;
    use rustls::version::{TLS12, TLS13};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, SupportedProtocolVersion};

    struct Case {
        file: &'static str,
        versions: Vec<&'static SupportedProtocolVersion>,
        name: &'static str,
        alpn: &'static [&'static [u8]],
        fragment: Option<usize>,
        sni: bool,
        expected: Option<&'static str>,
    }
    let cases = [
        Case {
            file: "tls13_12_sni",
            versions: vec![&TLS13, &TLS12],
            name: "www.example.com",
            alpn: &[b"http/1.1"],
            fragment: None,
            sni: true,
            expected: Some("www.example.com"),
        },
        Case {
            file: "tls12_mixed_case",
            versions: vec![&TLS12],
            name: "API.Example.COM",
            alpn: &[b"h2", b"http/1.1"],
            fragment: None,
            sni: true,
            expected: Some("api.example.com"),
        },
        Case {
            file: "tls13_fragmented",
            versions: vec![&TLS13],
            name: "a.fragmented.test",
            alpn: &[],
            fragment: Some(64),
            sni: true,
            expected: Some("a.fragmented.test"),
        },
        Case {
            file: "tls13_12_ip",
            versions: vec![&TLS13, &TLS12],
            name: "192.0.2.1",
            alpn: &[b"http/1.1"],
            fragment: None,
            sni: true,
            expected: None,
        },
        Case {
            file: "tls13_no_sni",
            versions: vec![&TLS13],
            name: "hidden.test",
            alpn: &[],
            fragment: None,
            sni: false,
            expected: None,
        },
    ];
    cases
        .into_iter()
        .enumerate()
        .map(|(i, case)| {
            let provider = Arc::new(aws_lc_rs::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&case.versions)
                .expect("versions")
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth();
            config.alpn_protocols = case.alpn.iter().map(|p| p.to_vec()).collect();
            config.max_fragment_size = case.fragment;
            config.enable_sni = case.sni;
            let name = ServerName::try_from(case.name).expect("name").to_owned();
            let mut client = ClientConnection::new(Arc::new(config), name).expect("client");
            let mut data = vec![i as u8 * 37, 0x80 + i as u8];
            while client.wants_write() {
                client.write_tls(&mut data).expect("write");
            }
            (case.file, data, case.expected)
        })
        .collect()
}

#[test]
fn client_hello_checks_hold_on_real_hellos() {
    for (file, data, expected) in real_client_hellos() {
        let expected = Sni::Done(expected.map(str::to_owned));
        assert_eq!(client_hello_sni(&data[2..]), expected, "{file}");
        // rustls accepts them all, so the comparison with its reading is made.
        assert!(
            matches!(rustls_reading(&data[2..]), Some(Ok(Some(_)))),
            "{file}"
        );
        check_client_hello(&data);
        for arrival in [0, 1, 255] {
            for framing in [0, 7, 127, 128, 135] {
                let mut other = data.clone();
                other[..2].copy_from_slice(&[arrival, framing]);
                check_client_hello(&other);
            }
        }
        // Every prefix.
        for cut in 2..data.len() {
            check_client_hello(&data[..cut]);
        }
    }
}

#[test]
fn client_hello_checks_hold_on_odd_bytes() {
    check_client_hello(b"");
    check_client_hello(b"\x00\x00GET / HTTP/1.1\r\n\r\n");
    check_client_hello(&[0, 0, 22, 3, 1]);
    check_client_hello(&[3, 9, 22, 3, 1, 0, 4, 1, 0, 0]);
    check_client_hello(&[3, 9, 22, 3, 1, 0, 4, 1, 1, 0, 0]);
}

/// Writes the ClientHellos of [`real_client_hellos`] to fuzz/seeds/client_hello/, the
/// corpus scripts/fuzz.sh starts from.
#[test]
#[ignore = "writes fuzz/seeds/client_hello/; run by hand to refresh the seeds"]
fn write_client_hello_seeds() {
    let dir = fuzz_dir("seeds/client_hello");
    std::fs::create_dir_all(&dir).expect("seed directory");
    for (file, data, _) in real_client_hellos() {
        std::fs::write(dir.join(file), data).expect("seed");
    }
}

#[test]
fn config_checks_hold_on_ordinary_documents() {
    let example = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ringway.example.toml"),
    )
    .expect("ringway.example.toml");
    check_config(&example);
    check_config(b"");
    check_config(b"[[listener]]\naddress = \"127.0.0.1:8443\"\n");
    check_config(b"workers = 0\n[[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:1\"]\n[[listener.certificate]]\ncert = \"c\"\nkey = \"k\"\n");
    let accepted = b"[[listener]]\naddress = \"127.0.0.1:8443\"\nbackends = [\"127.0.0.1:1\"]\n[[listener.certificate]]\ncert = \"c\"\nkey = \"k\"\n";
    assert!(Config::from_toml_str(std::str::from_utf8(accepted).unwrap()).is_ok());
    check_config(accepted);
    check_config(b"= \xff");
    // The seeds scripts/fuzz.sh starts from are accepted, so the fuzzer starts deep.
    for seed in ["example.toml", "minimal.toml", "inline.toml"] {
        let text = std::fs::read_to_string(fuzz_dir("seeds/config").join(seed)).expect("seed");
        if let Err(error) = Config::from_toml_str(&text) {
            panic!("fuzz/seeds/config/{seed}: {error}");
        }
    }
}

#[test]
fn proxy_protocol_checks_hold_on_ordinary_headers() {
    use crate::proxy_protocol::{Parsed, parse};

    for bytes in [
        &b""[..],
        b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n\x16\x03\x01",
        b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1 65535\r\nGET",
        b"PROXY UNKNOWN\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x07\xdb\xfc\x01\xbb",
        b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x04\x01",
        b"\x16\x03\x01\x02\x00",
        b"GET / HTTP/1.1\r\n",
    ] {
        check_proxy_protocol(bytes);
    }
    check_proxy_protocol(&[b'P'; 300]);
    // The seeds scripts/fuzz.sh starts from are whole headers, so the fuzzer starts deep.
    let seeds = std::fs::read_dir(fuzz_dir("seeds/proxy_protocol")).expect("seeds");
    let mut count = 0;
    for entry in seeds {
        let path = entry.expect("directory entry").path();
        let data = std::fs::read(&path).expect("seed");
        assert!(
            matches!(parse(&data), Ok(Parsed::Complete { .. })),
            "{}: {:?}",
            path.display(),
            parse(&data)
        );
        count += 1;
    }
    assert!(count >= 5, "{count} seeds");
}
