//! A backend's DNS name and port ([`Name`]): parsing `host:port` and the rules a host name
//! follows. No lookup here.

use std::fmt;
use std::str::FromStr;

/// Longest host name, without a final dot (RFC 1035 §2.3.4: 255 octets on the wire).
pub const MAX_HOST_LEN: usize = 253;
/// Longest label of a host name (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A backend given by DNS name: `app.internal:8080`. Displays as `host:port`.
///
/// Built with [`FromStr`] (`"app.internal:8080".parse()`) or [`Name::new`], the host is
/// lowercased and follows [`Name::check_host`] and the port is not 0. An IP address never is a
/// `Name` (`10.0.0.1:80` and `[::1]:80` are socket addresses, which the configuration reads
/// first); the fields are public for tests and configurations built in code, which
/// [`Name::check`] validates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name {
    /// Letters, digits, `-` and `.`, lowercase; may end with one `.` (an absolute name: the
    /// resolver's search domains are not tried).
    pub host: String,
    /// Not 0.
    pub port: u16,
}

/// Why a text is not a [`Name`]. `Display` is the reason only; the caller names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No `:port`.
    #[error("the port is missing (write host:port)")]
    MissingPort,
    /// The port is not a number from 1 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    Port(String),
    /// Port 0.
    #[error("port 0 cannot be connected to")]
    PortZero,
    /// The host breaks a rule of host names.
    #[error("host {host:?}: {why}")]
    Host {
        /// The host as written.
        host: String,
        /// The rule it breaks.
        why: &'static str,
    },
}

impl Name {
    /// A name from its parts: the host is lowercased, then checked with [`Name::check`].
    pub fn new(host: &str, port: u16) -> Result<Name, NameError> {
        let name = Name {
            host: host.to_ascii_lowercase(),
            port,
        };
        name.check()?;
        Ok(name)
    }

    /// Whether the host follows [`Name::check_host`] and the port is not 0.
    pub fn check(&self) -> Result<(), NameError> {
        Self::check_host(&self.host)?;
        if self.port == 0 {
            return Err(NameError::PortZero);
        }
        Ok(())
    }

    /// The rules of a host name (RFC 1123 §2.1, RFC 3696 §2): letters, digits, `-` and `.`;
    /// labels of 1 to 63 bytes that neither start nor end with `-`; at most 253 bytes without
    /// a final `.`, which is allowed; the last label not all digits (so that `10.0.0.256` is
    /// refused instead of being looked up).
    pub fn check_host(host: &str) -> Result<(), NameError> {
        let refuse = |why| {
            Err(NameError::Host {
                host: host.to_owned(),
                why,
            })
        };
        let bare = host.strip_suffix('.').unwrap_or(host);
        if bare.is_empty() {
            return refuse("is empty");
        }
        if bare.contains(':') {
            return refuse("an IPv6 address needs brackets: [2001:db8::1]:8080");
        }
        if !bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return refuse("only letters, digits, '-' and '.' may form a host name");
        }
        if bare.len() > MAX_HOST_LEN {
            return refuse("is longer than 253 bytes");
        }
        for label in bare.split('.') {
            if label.is_empty() {
                return refuse("has an empty label (two dots in a row, or a leading dot)");
            }
            if label.len() > MAX_LABEL_LEN {
                return refuse("has a label longer than 63 bytes");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return refuse("has a label that starts or ends with '-'");
            }
        }
        if bare
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
        {
            return refuse("is not an IP address, and a name's last label cannot be all digits");
        }
        Ok(())
    }
}

impl FromStr for Name {
    type Err = NameError;

    /// `host:port`, the port from 1 to 65535.
    fn from_str(text: &str) -> Result<Name, NameError> {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(NameError::MissingPort);
        };
        if host.contains(':') || host.starts_with('[') {
            return Err(NameError::Host {
                host: host.to_owned(),
                why: "an IPv6 address needs brackets: [2001:db8::1]:8080",
            });
        }
        let port: u16 = if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            port.parse().map_err(|_| NameError::Port(port.to_owned()))?
        } else {
            return Err(NameError::Port(port.to_owned()));
        };
        Name::new(host, port)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(text: &str) -> String {
        text.parse::<Name>().expect_err(text).to_string()
    }

    #[test]
    fn names_parse_lowercased_and_display_as_written() {
        let name: Name = "App.Internal:8080".parse().expect("a name");
        assert_eq!(
            name,
            Name {
                host: "app.internal".into(),
                port: 8080
            }
        );
        assert_eq!(name.to_string(), "app.internal:8080");
        for ok in [
            "localhost:1",
            "a-b.c-d.e:65535",
            "app.internal.:80",
            "x1.y2:80",
            "db:5432",
        ] {
            assert!(ok.parse::<Name>().is_ok(), "{ok}");
        }
        let long_label = "a".repeat(63);
        assert!(format!("{long_label}.com:80").parse::<Name>().is_ok());
    }

    #[test]
    fn bad_names_say_why() {
        assert_eq!(why("app.internal"), "the port is missing (write host:port)");
        assert_eq!(why("app:"), "port \"\" is not a number from 1 to 65535");
        assert_eq!(why("app:x"), "port \"x\" is not a number from 1 to 65535");
        assert_eq!(
            why("app:65536"),
            "port \"65536\" is not a number from 1 to 65535"
        );
        assert_eq!(why("app:-1"), "port \"-1\" is not a number from 1 to 65535");
        assert_eq!(why("app:0"), "port 0 cannot be connected to");
        assert!(why(":80").contains("is empty"));
        assert!(why("a_b:80").contains("only letters, digits"));
        assert!(why("a b:80").contains("only letters, digits"));
        assert!(why("a..b:80").contains("empty label"));
        assert!(why(".a:80").contains("empty label"));
        assert!(why("-a.b:80").contains("starts or ends with '-'"));
        assert!(why("a-.b:80").contains("starts or ends with '-'"));
        assert!(why(&format!("{}.com:80", "a".repeat(64))).contains("longer than 63"));
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(long.len() > MAX_HOST_LEN);
        assert!(why(&format!("{long}:80")).contains("longer than 253"));
        assert!(why("10.0.0.256:80").contains("all digits"));
        assert!(why("1234:80").contains("all digits"));
        assert!(why("::1:80").contains("brackets"));
        assert!(why("[::1]:80").contains("brackets"));
    }

    #[test]
    fn names_built_in_code_are_checked() {
        assert!(Name::new("app", 0).is_err());
        assert!(Name::new("", 80).is_err());
        let bad = Name {
            host: "a b".into(),
            port: 80,
        };
        assert!(bad.check().is_err());
        assert_eq!(
            Name::new("APP", 80).expect("a name").host,
            "app",
            "lowercased"
        );
    }
}
