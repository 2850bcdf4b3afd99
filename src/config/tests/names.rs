//! Backends given by name and the `[resolver]` table: parsing, defaults, refused values, the
//! names to resolve and the backends they make. Nothing here resolves a name.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn name(text: &str) -> Name {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a name: {e}"))
}

#[test]
fn a_backend_may_be_a_name() {
    let config = Config::from_toml_str(&app(r#"backends = ["App.Internal:8080", "10.0.0.1:80"]
[[upstream.backend]]
address = "db.internal.:5432"
weight = 3
max_connections = 10
backup = true"#))
    .expect("names");
    let backends = &config.upstreams[0].backends;
    assert_eq!(
        backends[0].address,
        BackendAddress::Name(Name {
            host: "app.internal".into(),
            port: 8080
        }),
        "lowercased"
    );
    assert_eq!(backends[1].address, BackendAddress::Ip(addr("10.0.0.1:80")));
    assert_eq!(
        backends[2],
        BackendConfig {
            address: name("db.internal.:5432").into(),
            weight: 3,
            max_connections: 10,
            backup: true,
        }
    );
    assert_eq!(backends[0].address.to_string(), "app.internal:8080");

    // The legacy list of a listener takes names too.
    let config =
        Config::from_toml_str(&MINIMAL.replace("127.0.0.1:8080", "app:8080")).expect("legacy");
    assert_eq!(config.names(), [name("app:8080")]);
}

#[test]
fn names_lists_every_name_once_in_order() {
    let toml = format!(
        r#"[[upstream]]
name = "a"
backends = ["b.internal:80", "10.0.0.1:80", "a.internal:80"]
[[upstream]]
name = "app"
backends = ["a.internal:80", "a.internal:81"]
{LISTENER}"#
    );
    let config = Config::from_toml_str(&toml).expect("names");
    assert_eq!(
        config.names(),
        [
            name("b.internal:80"),
            name("a.internal:80"),
            name("a.internal:81")
        ]
    );
    let plain = Config::from_toml_str(MINIMAL).expect("no name");
    assert!(plain.names().is_empty());
}

#[test]
fn resolved_backends_are_one_per_address_with_the_entry_settings() {
    let upstream = UpstreamConfig {
        name: "app".into(),
        backends: vec![
            BackendConfig::new(addr("10.0.0.1:80")),
            BackendConfig {
                weight: 5,
                max_connections: 7,
                ..BackendConfig::new(name("app.internal:80"))
            },
            BackendConfig {
                backup: true,
                ..BackendConfig::new(name("backup.internal:80"))
            },
        ],
        ..UpstreamConfig::default()
    };
    let mut addresses: Addresses = HashMap::new();
    addresses.insert(
        name("app.internal:80"),
        vec![
            addr("10.0.0.1:80"),
            addr("10.0.0.2:80"),
            addr("[fd00::2]:80"),
        ],
    );
    addresses.insert(name("backup.internal:80"), vec![addr("10.0.0.9:80")]);
    let specs = upstream.resolved_backends(&addresses).expect("resolved");
    let expected = [
        // 10.0.0.1:80 is listed by address first: the name's copy is left out.
        BackendSpec {
            address: addr("10.0.0.1:80"),
            weight: 1,
            max_connections: 0,
            backup: false,
        },
        BackendSpec {
            address: addr("10.0.0.2:80"),
            weight: 5,
            max_connections: 7,
            backup: false,
        },
        BackendSpec {
            address: addr("[fd00::2]:80"),
            weight: 5,
            max_connections: 7,
            backup: false,
        },
        BackendSpec {
            address: addr("10.0.0.9:80"),
            weight: 1,
            max_connections: 0,
            backup: true,
        },
    ];
    assert_eq!(specs, expected);

    addresses.remove(&name("backup.internal:80"));
    let error = upstream
        .resolved_backends(&addresses)
        .expect_err("unresolved");
    assert_eq!(
        error.to_string(),
        "upstream \"app\": backend backup.internal:80 has not been resolved to any address"
    );
    addresses.insert(name("backup.internal:80"), Vec::new());
    assert!(
        upstream.resolved_backends(&addresses).is_err(),
        "an empty set"
    );
}

#[test]
fn a_bad_name_is_refused_naming_the_key() {
    let (key, reason) = key_and_reason(&app(r#"backends = ["10.0.0.1:80", "app_1:80"]"#));
    assert_eq!(key, "upstream[0].backends[1]");
    assert_eq!(
        reason,
        "\"app_1:80\" is not an ip:port or host:port address: host \"app_1\": only letters, \
         digits, '-' and '.' may form a host name"
    );

    let (key, reason) = key_and_reason(&app("[[upstream.backend]]\naddress = \"app.internal\""));
    assert_eq!(key, "upstream[0].backend[0].address");
    assert!(reason.contains("the port is missing"), "{reason}");

    let (key, reason) = key_and_reason(&app(r#"backends = ["app:0"]"#));
    assert_eq!(key, "upstream[0].backends[0]");
    assert!(reason.contains("port 0"), "{reason}");

    let (key, reason) = key_and_reason(&app(r#"backends = ["10.0.0.300:80"]"#));
    assert_eq!(key, "upstream[0].backends[0]");
    assert!(reason.contains("all digits"), "{reason}");

    let (key, reason) = key_and_reason(&app(r#"backends = ["app:80", "APP:80"]"#));
    assert_eq!(key, "upstream[0].backends[1]");
    assert_eq!(reason, "app:80 is already upstream[0].backends[0]");

    let (key, reason) = key_and_reason(&MINIMAL.replace("127.0.0.1:8080", "-app:8080"));
    assert_eq!(key, "listener[0].backends[0]");
    assert!(reason.contains("starts or ends with '-'"), "{reason}");

    // Listener addresses stay ip:port.
    let (key, reason) = key_and_reason(&MINIMAL.replace("127.0.0.1:8443", "app:8443"));
    assert_eq!(key, "listener[0].address");
    assert_eq!(reason, "\"app:8443\" is not an ip:port address");

    // A configuration built in code is checked too.
    let mut config = Config::from_toml_str(MINIMAL).expect("minimal");
    config.upstreams[0].backends[0].address = BackendAddress::Name(Name {
        host: "a b".into(),
        port: 80,
    });
    let error = config.validate().expect_err("bad name");
    assert_eq!(error.key(), Some("upstream[0].backend[0].address"));
    assert!(error.to_string().contains("only letters"), "{error}");
}

#[test]
fn the_resolver_table_has_defaults() {
    let config = Config::from_toml_str(MINIMAL).expect("minimal");
    assert_eq!(config.resolver, ResolverConfig::default());
    assert_eq!(
        config.resolver,
        ResolverConfig {
            nameservers: Vec::new(),
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(300),
            timeout: Duration::from_secs(2),
        }
    );

    let config = Config::from_toml_str(&with(
        "[resolver]\nnameservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\nmin_ttl = \"5s\"",
    ))
    .expect("resolver");
    assert_eq!(
        config.resolver,
        ResolverConfig {
            nameservers: vec![addr("127.0.0.1:5353"), addr("[::1]:53")],
            min_ttl: Duration::from_secs(5),
            ..ResolverConfig::default()
        }
    );

    let config = Config::from_toml_str(&with(
        "[resolver]\nmin_ttl = \"500ms\"\nmax_ttl = \"1h\"\ntimeout = 750",
    ))
    .expect("resolver");
    assert_eq!(config.resolver.min_ttl, Duration::from_millis(500));
    assert_eq!(config.resolver.max_ttl, Duration::from_secs(3600));
    assert_eq!(config.resolver.timeout, Duration::from_millis(750));
}

#[test]
fn bad_resolver_values_are_refused_naming_the_key() {
    let (key, reason) = key_and_reason(&with("[resolver]\nmin_ttl = \"10m\"\nmax_ttl = \"1m\""));
    assert_eq!(key, "resolver.min_ttl");
    assert!(
        reason.starts_with("10m is longer than resolver.max_ttl (1m)"),
        "{reason}"
    );
    let (key, _) = key_and_reason(&with("[resolver]\nmax_ttl = \"500ms\""));
    assert_eq!(
        key, "resolver.min_ttl",
        "the default min_ttl, 1s, is above it"
    );

    for field in ["min_ttl", "max_ttl", "timeout"] {
        let (key, reason) = key_and_reason(&with(&format!("[resolver]\n{field} = \"0s\"")));
        assert_eq!(key, format!("resolver.{field}"));
        assert_eq!(reason, "must be greater than 0");
    }

    let (key, reason) = key_and_reason(&with("[resolver]\ntimeout = \"2 s\""));
    assert_eq!(key, "resolver.timeout");
    assert!(reason.contains("is not a duration"), "{reason}");

    let (key, reason) = key_and_reason(&with("[resolver]\nnameservers = [\"dns.internal:53\"]"));
    assert_eq!(key, "resolver.nameservers[0]");
    assert!(reason.contains("is not an ip:port address"), "{reason}");

    let (key, reason) = key_and_reason(&with("[resolver]\nnameservers = [\"127.0.0.1:0\"]"));
    assert_eq!(key, "resolver.nameservers[0]");
    assert!(reason.contains("port 0"), "{reason}");

    let (key, reason) = key_and_reason(&with("[resolver]\nsearch = [\"internal\"]"));
    assert_eq!(key, "resolver.search");
    assert!(reason.starts_with("unknown field `search`"), "{reason}");
}

#[test]
fn names_and_the_resolver_round_trip_through_toml() {
    let config = Config::from_toml_str(&format!(
        r#"[resolver]
nameservers = ["127.0.0.1:5353"]
min_ttl = "2s"
max_ttl = "1m"
timeout = "300ms"
[[upstream]]
name = "app"
backends = ["app.internal:8080", "[fd00::1]:80"]
[[upstream.backend]]
address = "db.internal.:5432"
weight = 2
{LISTENER}"#
    ))
    .expect("config");
    let text = config.to_toml_string().expect("serialize");
    let again = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("re-parse: {e}\n{text}"));
    assert_eq!(again, config, "{text}");
}
