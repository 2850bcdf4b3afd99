//! `[admin]`: off without the table, the address and token as written, refused values named
//! by their key, the round trip, and a `Debug` that does not show the token.

use super::*;

const TOKEN: &str = "Zm9yLXRoZS1hZG1pbi1wb3J0Cg==";

#[test]
fn admin_is_off_without_the_table() {
    assert_eq!(Config::from_toml_str(MINIMAL).expect("minimal").admin, None);
    assert_eq!(Config::default().admin, None);
}

#[test]
fn admin_address_and_token_as_written() {
    let config =
        Config::from_toml_str(&with("[admin]\naddress = \"127.0.0.1:9900\"")).expect("admin");
    assert_eq!(
        config.admin,
        Some(AdminConfig {
            address: addr("127.0.0.1:9900"),
            token: None,
        })
    );
    let config = Config::from_toml_str(&with(&format!(
        "[admin]\naddress = \"[::1]:9900\"\ntoken = \"{TOKEN}\""
    )))
    .expect("admin with a token");
    assert_eq!(
        config.admin,
        Some(AdminConfig {
            address: addr("[::1]:9900"),
            token: Some(TOKEN.to_owned()),
        })
    );
    // Port 0 (tests) and a non-loopback address are accepted; the server warns about the
    // latter when it starts.
    for address in ["127.0.0.1:0", "0.0.0.0:9900", "10.1.2.3:9900"] {
        let config = Config::from_toml_str(&with(&format!("[admin]\naddress = \"{address}\"")))
            .unwrap_or_else(|e| panic!("{address}: {e}"));
        assert_eq!(config.admin.map(|a| a.address), Some(addr(address)));
    }
}

#[test]
fn admin_refusals_name_the_key() {
    let (key, reason, at) = invalid(&with("[admin]\ntoken = \"abcdefghijklmnopqrstuvwxyz\""));
    assert_eq!(key, "admin");
    assert!(reason.contains("address"), "{reason}");
    assert_eq!(at.line_column.map(|(line, _)| line), Some(1));

    let (key, reason) = key_and_reason(&with("[admin]\naddress = \"localhost:9900\""));
    assert_eq!(key, "admin.address");
    assert!(!reason.is_empty());

    let (key, _) = key_and_reason(&with("[admin]\naddress = \"127.0.0.1:9900\"\nport = 1"));
    assert_eq!(key, "admin.port");

    let (key, _) = key_and_reason(&with("admin = \"127.0.0.1:9900\""));
    assert_eq!(key, "admin");

    for token in [
        "",
        "has spaces in it, sixteen+",
        "tab\tseparated-token-value",
        "ünïcödé-tokens-here",
    ] {
        let (key, reason, at) = invalid(&with(&format!(
            "[admin]\naddress = \"127.0.0.1:9900\"\ntoken = {token:?}"
        )));
        assert_eq!(key, "admin.token", "{token:?}");
        assert!(reason.starts_with("the token "), "{reason}");
        assert_eq!(at.line_column, Some((3, 9)), "{token:?}");
        // The token itself is not repeated in the error.
        if !token.is_empty() {
            assert!(!reason.contains(token), "{reason}");
        }
    }
    let (key, reason) = key_and_reason(&with(
        "[admin]\naddress = \"127.0.0.1:9900\"\ntoken = \"short\"",
    ));
    assert_eq!(key, "admin.token");
    assert!(reason.contains("shorter than 16 characters"), "{reason}");
}

#[test]
fn admin_address_is_not_a_listeners() {
    // MINIMAL's listener is 127.0.0.1:8443.
    for address in ["127.0.0.1:8443", "0.0.0.0:8443", "[::]:8443"] {
        let (key, reason, at) = invalid(&with(&format!("[admin]\naddress = \"{address}\"")));
        assert_eq!(key, "admin.address", "{address}");
        assert_eq!(
            reason,
            format!(
                "{address} is taken by listener[0] (127.0.0.1:8443): the admin server needs a \
                 port of its own"
            )
        );
        assert_eq!(at.line_column, Some((2, 11)));
    }
    // Another address on the same port, or another port, is fine.
    for address in ["127.0.0.2:8443", "127.0.0.1:8444"] {
        Config::from_toml_str(&with(&format!("[admin]\naddress = \"{address}\"")))
            .unwrap_or_else(|e| panic!("{address}: {e}"));
    }
    // In code: validate names the same key.
    let mut config = Config::from_toml_str(MINIMAL).expect("minimal");
    config.admin = Some(AdminConfig {
        address: addr("127.0.0.1:8443"),
        token: None,
    });
    let error = config.validate().expect_err("clash");
    assert_eq!(error.key(), Some("admin.address"));
    assert_one_line(&error);
}

#[test]
fn admin_round_trips_and_debug_hides_the_token() {
    let config = Config::from_toml_str(&with(&format!(
        "[admin]\naddress = \"127.0.0.1:9900\"\ntoken = \"{TOKEN}\""
    )))
    .expect("admin");
    let text = config.to_toml_string().expect("serialize");
    assert!(text.contains("[admin]"), "{text}");
    assert_eq!(Config::from_toml_str(&text).expect("re-parse"), config);
    let shown = format!("{config:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(
        shown.contains("AdminConfig { address: 127.0.0.1:9900, token: Some(\"<redacted>\") }"),
        "{shown}"
    );
}

/// The README's `[admin]` example ("Observing ringway") parses, and says what it means.
#[test]
fn the_readme_admin_example_parses() {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| &b[..b.find("```").expect("closed block")])
        .find(|b| b.starts_with("[admin]"))
        .expect("the [admin] example");
    let config = Config::from_toml_str(&with(block)).expect("README [admin] example");
    assert_eq!(
        config.admin,
        Some(AdminConfig {
            address: addr("127.0.0.1:9900"),
            token: None,
        })
    );
    let uncommented = block.replace("# token", "token");
    let config = Config::from_toml_str(&with(&uncommented)).expect("with its token");
    assert!(config.admin.and_then(|a| a.token).is_some());
}
