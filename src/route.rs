//! Request routing: which upstream serves a request, from its Host, its path and the TLS SNI.
//!
//! This module owns the per-listener route table ([`Router`]) and host-name patterns
//! ([`HostPattern`]). It is sans-IO: [`Router::route`] takes the request's authority and
//! target bytes as received plus the SNI, and returns a decision ([`Routed`]): an upstream, or
//! a route that answers by itself (its fixed response is the caller's, found by the route's
//! position); the caller turns [`Routed::NotFound`] into 404 and [`Routed::Misdirected`] into
//! 421 (RFC 9110 §15.5.20). Every decision names the route that took the request (its
//! position), so the caller can apply what it keeps per route (header rules).
//!
//! Invariants:
//! - routing never allocates: hosts are compared ASCII-case-insensitively in place, patterns
//!   are stored lowercase;
//! - routes are tried in order and the first match wins; the default (when there is one)
//!   applies only when no route matches;
//! - a [`HostPattern`] holds a lowercase DNS name without a trailing dot, port or `*` other
//!   than the one leading `*.` of a wildcard.
//!
//! Matching rules:
//! - The Host is normalized by [`normalize_host`]: the port and one trailing dot are dropped,
//!   an IPv6 literal keeps its brackets (`[::1]:8443` → `[::1]`). Patterns cannot name IPv6
//!   literals, so such hosts only match routes without a host.
//! - `Exact("api.example.com")` matches that name in any case.
//! - `Wildcard` written `*.example.com` matches every name below `example.com`, at any depth
//!   (`a.example.com`, `a.b.example.com`), but not `example.com` itself. (Certificate
//!   wildcards match one label only; route wildcards are deliberately broader.)
//! - A path prefix is a plain, case-sensitive byte prefix of the request target as forwarded
//!   (path and query): `/api` matches `/api`, `/api/v1`, `/api?x=1` and also `/apis`; `/api/`
//!   matches `/api/v1` but not `/api`. Write both routes when both are wanted. The asterisk
//!   target `*` (`OPTIONS *`) matches no prefix.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

/// The longest DNS name, in bytes, without the trailing dot (RFC 1035 §2.3.4).
const MAX_NAME: usize = 253;
/// The longest DNS label, in bytes (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// A host name a route matches. Parse it with [`FromStr`]; [`fmt::Display`] writes it back in
/// the same form (`api.example.com`, `*.example.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this name: lowercase, no trailing dot.
    Exact(String),
    /// Every name ending in this suffix, which starts with a dot (`*.example.com` is stored as
    /// `.example.com`): names at any depth below the domain, not the bare domain.
    Wildcard(String),
}

/// Why a string is not a [`HostPattern`]. Each variant holds the pattern as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPatternError {
    /// Nothing to match.
    #[error("a host name must not be empty")]
    Empty,
    /// A `*` other than one leading `*.` before a domain.
    #[error(
        "{0:?}: '*' is only allowed as a whole first label before a domain, as in \"*.example.com\""
    )]
    Wildcard(String),
    /// A `:port` suffix.
    #[error("{0:?} has a port: routes match the host name only")]
    Port(String),
    /// A bracketed IPv6 literal.
    #[error("{0:?}: IPv6 literals cannot be matched by a route host")]
    Ipv6(String),
    /// Two dots in a row, or a leading dot.
    #[error("{0:?} has an empty label")]
    EmptyLabel(String),
    /// A label over 63 bytes.
    #[error("{0:?} has a label longer than 63 bytes")]
    LabelTooLong(String),
    /// A name over 253 bytes.
    #[error("{0:?} is longer than 253 bytes")]
    TooLong(String),
    /// A label starting or ending with `-`.
    #[error("{0:?}: a label must not start or end with '-'")]
    Hyphen(String),
    /// A byte that is not a letter, digit, `-`, `_` or `.`.
    #[error(
        "{pattern:?}: {found:?} is not allowed in a host name (letters, digits, '-', '_' and '.')"
    )]
    Char {
        /// The pattern as written.
        pattern: String,
        /// The first character refused.
        found: char,
    },
}

impl FromStr for HostPattern {
    type Err = HostPatternError;

    /// Accepts a DNS name (letters, digits, `-`, `_`, dots; one trailing dot is dropped),
    /// optionally preceded by `*.`; lowercases it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let owned = || text.to_owned();
        if text.is_empty() {
            return Err(HostPatternError::Empty);
        }
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.contains('*') || (wildcard && name.is_empty()) {
            return Err(HostPatternError::Wildcard(owned()));
        }
        if name.starts_with('[') {
            return Err(HostPatternError::Ipv6(owned()));
        }
        if name.contains(':') {
            return Err(HostPatternError::Port(owned()));
        }
        if name.len() > MAX_NAME {
            return Err(HostPatternError::TooLong(owned()));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(HostPatternError::EmptyLabel(owned()));
            }
            if label.len() > MAX_LABEL {
                return Err(HostPatternError::LabelTooLong(owned()));
            }
            if let Some(found) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(HostPatternError::Char {
                    pattern: owned(),
                    found,
                });
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(HostPatternError::Hyphen(owned()));
            }
        }
        let name = name.to_ascii_lowercase();
        Ok(if wildcard {
            HostPattern::Wildcard(format!(".{name}"))
        } else {
            HostPattern::Exact(name)
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl HostPattern {
    /// Whether `host`, already normalized by [`normalize_host`] (any case), matches. Does not
    /// allocate.
    pub fn matches(&self, host: &[u8]) -> bool {
        match self {
            HostPattern::Exact(name) => host.eq_ignore_ascii_case(name.as_bytes()),
            HostPattern::Wildcard(suffix) => {
                let suffix = suffix.as_bytes();
                host.len() > suffix.len()
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

/// The host name part of a request authority, borrowed: the port is dropped (`host:8443`,
/// `[::1]:8443` → `[::1]`), then one trailing dot (`example.com.` → `example.com`). Case is not
/// folded, to avoid allocating: compare the result with `eq_ignore_ascii_case`. An unclosed
/// `[` is returned as is (it matches no pattern).
pub fn normalize_host(host: &[u8]) -> &[u8] {
    let name = if host.first() == Some(&b'[') {
        match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.iter().position(|&b| b == b':') {
            Some(colon) => &host[..colon],
            None => host,
        }
    };
    name.strip_suffix(b".").unwrap_or(name)
}

/// One routing rule: requests whose host and path match go to `upstream`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    /// The host to match; `None` matches every host.
    pub host: Option<HostPattern>,
    /// A byte prefix of the request target (path and query); `None` matches every target.
    pub path_prefix: Option<String>,
    /// The upstream requests go to (an index the caller defines, e.g. into
    /// `Config::upstreams`); `None`: the route answers by itself ([`Routed::Respond`]).
    pub upstream: Option<usize>,
    /// Whether the requests this route takes are written to the access log: `None` follows
    /// the listener (TOML `access_log`; see `config::AccessLogConfig::logs`). Routing ignores
    /// it.
    pub access_log: Option<bool>,
}

impl Route {
    /// Whether this route takes a request with this normalized host and this target.
    fn matches(&self, host: &[u8], path: &[u8]) -> bool {
        self.host
            .as_ref()
            .is_none_or(|pattern| pattern.matches(host))
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|prefix| path.starts_with(prefix.as_bytes()))
    }
}

/// What [`Router::route`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// Send the request to `upstream`: the route at position `route` took it, or the default
    /// upstream when `route` is `None`.
    Upstream {
        /// The upstream.
        upstream: usize,
        /// The route's position in [`Router::routes`]; `None`: the default upstream.
        route: Option<usize>,
    },
    /// The route at this position answers by itself (a route without upstream).
    Respond(usize),
    /// No route and no default: answer 404.
    NotFound,
    /// No route and no default, and the TLS connection was made for another name than the
    /// request's Host (the client reused a connection it should not have): answer 421.
    Misdirected,
}

/// A listener's routes, tried in order, and its default upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    routes: Vec<Route>,
    default: Option<usize>,
}

impl Router {
    /// A router trying `routes` in order, then `default`.
    pub fn new(routes: Vec<Route>, default: Option<usize>) -> Self {
        Self { routes, default }
    }

    /// The routes, in the order they are tried.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The upstream for requests no route matches.
    pub fn default_upstream(&self) -> Option<usize> {
        self.default
    }

    /// Routes one request. `host`: the request authority as received (may carry `:port`, any
    /// case, a trailing dot, or be an IPv6 literal such as `[::1]:8443`); `path`: the
    /// origin-form target as forwarded (path and query, or `*`); `sni`: the TLS server name,
    /// if the client sent one.
    ///
    /// The first route whose host pattern (if any) matches the normalized host and whose path
    /// prefix (if any) is a byte prefix of `path` wins; else the default upstream; else
    /// [`Routed::Misdirected`] when `sni` names another host than the request's (compared
    /// case-insensitively, trailing dot ignored), otherwise [`Routed::NotFound`]. Does not
    /// allocate.
    pub fn route(&self, host: &[u8], path: &[u8], sni: Option<&str>) -> Routed {
        let host = normalize_host(host);
        if let Some(at) = self
            .routes
            .iter()
            .position(|route| route.matches(host, path))
        {
            return match self.routes[at].upstream {
                Some(upstream) => Routed::Upstream {
                    upstream,
                    route: Some(at),
                },
                None => Routed::Respond(at),
            };
        }
        if let Some(default) = self.default {
            return Routed::Upstream {
                upstream: default,
                route: None,
            };
        }
        match sni {
            Some(sni) if !normalize_host(sni.as_bytes()).eq_ignore_ascii_case(host) => {
                Routed::Misdirected
            }
            _ => Routed::NotFound,
        }
    }

    /// The access-log switch of the route [`Router::route`] picks for this host and path:
    /// `None` when that route says nothing or no route matches (the listener's switch
    /// applies).
    pub fn logs(&self, host: &[u8], path: &[u8]) -> Option<bool> {
        let host = normalize_host(host);
        self.routes
            .iter()
            .find(|route| route.matches(host, path))
            .and_then(|route| route.access_log)
    }

    /// Whether [`Router::route`] may look at the SNI: only when there is no default upstream.
    /// When false the caller can pass `None` without fetching the name.
    pub fn needs_sni(&self) -> bool {
        self.default.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> HostPattern {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    /// The decision of sending to upstream `n`, whichever route took it.
    fn up(upstream: usize) -> Routed {
        Routed::Upstream {
            upstream,
            route: None,
        }
    }

    impl Router {
        /// [`Router::route`] without the route's position (most tests look at upstreams).
        fn r(&self, host: &[u8], path: &[u8], sni: Option<&str>) -> Routed {
            match self.route(host, path, sni) {
                Routed::Upstream { upstream, .. } => up(upstream),
                other => other,
            }
        }
    }

    fn route(host: Option<&str>, path: Option<&str>, upstream: usize) -> Route {
        Route {
            host: host.map(pattern),
            path_prefix: path.map(str::to_owned),
            upstream: Some(upstream),
            access_log: None,
        }
    }

    #[test]
    fn patterns_parse_lowercase_and_round_trip() {
        assert_eq!(
            pattern("API.Example.COM"),
            HostPattern::Exact("api.example.com".into())
        );
        assert_eq!(
            pattern("example.com."),
            HostPattern::Exact("example.com".into())
        );
        assert_eq!(
            pattern("*.Example.com"),
            HostPattern::Wildcard(".example.com".into())
        );
        assert_eq!(pattern("127.0.0.1"), HostPattern::Exact("127.0.0.1".into()));
        assert_eq!(pattern("my_host-1"), HostPattern::Exact("my_host-1".into()));
        for text in ["api.example.com", "*.example.com", "localhost", "*.com"] {
            assert_eq!(pattern(text).to_string(), text);
            assert_eq!(pattern(&pattern(text).to_string()), pattern(text));
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        use HostPatternError as E;
        let cases: [(&str, HostPatternError); 14] = [
            ("", E::Empty),
            ("*", E::Wildcard("*".into())),
            ("*.", E::Wildcard("*.".into())),
            ("a.*.com", E::Wildcard("a.*.com".into())),
            ("*.*.com", E::Wildcard("*.*.com".into())),
            ("*example.com", E::Wildcard("*example.com".into())),
            ("example.com:443", E::Port("example.com:443".into())),
            ("[::1]", E::Ipv6("[::1]".into())),
            ("a..b", E::EmptyLabel("a..b".into())),
            (".example.com", E::EmptyLabel(".example.com".into())),
            ("-a.com", E::Hyphen("-a.com".into())),
            (
                "a b.com",
                E::Char {
                    pattern: "a b.com".into(),
                    found: ' ',
                },
            ),
            (
                "exämple.com",
                E::Char {
                    pattern: "exämple.com".into(),
                    found: 'ä',
                },
            ),
            (
                "a/b",
                E::Char {
                    pattern: "a/b".into(),
                    found: '/',
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<HostPattern>(), Err(expected), "{text:?}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert_eq!(
            long_label.parse::<HostPattern>(),
            Err(E::LabelTooLong(long_label.clone()))
        );
        let long_name = vec!["a".repeat(63); 4].join(".");
        assert_eq!(long_name.len(), 255);
        assert_eq!(
            long_name.parse::<HostPattern>(),
            Err(E::TooLong(long_name.clone()))
        );
        assert_eq!(
            E::Port("a:1".into()).to_string(),
            "\"a:1\" has a port: routes match the host name only"
        );
    }

    #[test]
    fn normalize_strips_port_and_trailing_dot_only() {
        assert_eq!(normalize_host(b"Example.COM:8443"), b"Example.COM");
        assert_eq!(normalize_host(b"example.com."), b"example.com");
        assert_eq!(normalize_host(b"example.com.:443"), b"example.com");
        assert_eq!(normalize_host(b"example.com:"), b"example.com");
        assert_eq!(normalize_host(b"[::1]:8443"), b"[::1]");
        assert_eq!(normalize_host(b"[::1]"), b"[::1]");
        assert_eq!(normalize_host(b"[::1"), b"[::1");
        assert_eq!(normalize_host(b"127.0.0.1:80"), b"127.0.0.1");
        assert_eq!(normalize_host(b""), b"");
    }

    #[test]
    fn exact_host_matches_any_case_port_and_trailing_dot() {
        let router = Router::new(vec![route(Some("api.example.com"), None, 3)], None);
        for host in [
            &b"api.example.com"[..],
            b"API.Example.Com",
            b"api.example.com:8443",
            b"api.example.com.",
            b"Api.Example.Com.:443",
        ] {
            assert_eq!(
                router.r(host, b"/", None),
                up(3),
                "{}",
                String::from_utf8_lossy(host)
            );
        }
        for host in [
            &b"example.com"[..],
            b"xapi.example.com",
            b"api.example.com.evil",
            b"a.api.example.com",
            b"api.example.co",
        ] {
            assert_eq!(router.r(host, b"/", None), Routed::NotFound);
        }
    }

    #[test]
    fn wildcard_matches_any_depth_but_not_the_bare_domain() {
        let router = Router::new(vec![route(Some("*.example.com"), None, 1)], None);
        for host in [
            &b"a.example.com"[..],
            b"a.b.c.example.com",
            b"A.EXAMPLE.COM:443",
            b"www.example.com.",
        ] {
            assert_eq!(
                router.r(host, b"/", None),
                up(1),
                "{}",
                String::from_utf8_lossy(host)
            );
        }
        for host in [
            &b"example.com"[..],
            b"example.com.",
            b".example.com",
            b"aexample.com",
            b"example.com.org",
            b"[::1]",
        ] {
            assert_eq!(
                router.r(host, b"/", None),
                Routed::NotFound,
                "{}",
                String::from_utf8_lossy(host)
            );
        }
    }

    #[test]
    fn ipv6_literal_hosts_match_only_hostless_routes() {
        let router = Router::new(
            vec![
                route(Some("localhost"), None, 0),
                route(None, Some("/v6/"), 1),
            ],
            None,
        );
        assert_eq!(router.r(b"[::1]:8443", b"/v6/x", None), up(1));
        assert_eq!(router.r(b"[::1]:8443", b"/", None), Routed::NotFound);
        assert_eq!(
            router.r(b"[::1]:8443", b"/", Some("localhost")),
            Routed::Misdirected
        );
    }

    #[test]
    fn path_prefix_is_a_plain_byte_prefix() {
        let router = Router::new(
            vec![route(None, Some("/api/"), 1), route(None, Some("/img"), 2)],
            Some(0),
        );
        let cases: [(&[u8], usize); 10] = [
            (b"/api/", 1),
            (b"/api/v1?x=1", 1),
            (b"/api", 0),
            (b"/api?x", 0),
            (b"/API/v1", 0),
            (b"/img", 2),
            (b"/imgs/a.png", 2),
            (b"/img?size=2", 2),
            (b"*", 0),
            (b"/", 0),
        ];
        for (path, expected) in cases {
            assert_eq!(
                router.r(b"example.com", path, None),
                up(expected),
                "{}",
                String::from_utf8_lossy(path)
            );
        }
    }

    #[test]
    fn first_match_wins_and_host_and_path_must_both_match() {
        let router = Router::new(
            vec![
                route(Some("api.example.com"), Some("/v2/"), 2),
                route(Some("api.example.com"), None, 1),
                route(Some("*.example.com"), None, 3),
                route(None, Some("/v2/"), 4),
            ],
            None,
        );
        let cases: [(&[u8], &[u8], Routed); 6] = [
            (b"api.example.com", b"/v2/users", up(2)),
            (b"api.example.com", b"/v1/users", up(1)),
            (b"www.example.com", b"/v2/users", up(3)),
            (b"other.net", b"/v2/users", up(4)),
            (b"other.net", b"/v1/users", Routed::NotFound),
            (b"example.com", b"/", Routed::NotFound),
        ];
        for (host, path, expected) in cases {
            assert_eq!(router.r(host, path, None), expected);
        }

        let shadowed = Router::new(
            vec![
                route(Some("*.example.com"), None, 3),
                route(Some("api.example.com"), None, 1),
            ],
            None,
        );
        assert_eq!(
            shadowed.r(b"api.example.com", b"/", None),
            up(3),
            "order, not specificity"
        );
    }

    #[test]
    fn default_catches_what_no_route_matches() {
        let router = Router::new(vec![route(Some("api.example.com"), None, 1)], Some(0));
        assert!(!router.needs_sni());
        assert_eq!(router.default_upstream(), Some(0));
        assert_eq!(router.routes().len(), 1);
        assert_eq!(router.r(b"api.example.com", b"/", Some("other.net")), up(1));
        assert_eq!(
            router.r(b"www.example.com", b"/", Some("other.net")),
            up(0),
            "a default never gives 421"
        );
        assert_eq!(Router::new(Vec::new(), Some(5)).r(b"", b"*", None), up(5));
    }

    #[test]
    fn not_found_versus_misdirected() {
        let router = Router::new(vec![route(Some("api.example.com"), None, 1)], None);
        assert!(router.needs_sni());
        // No SNI (IP-address clients, old clients): 404.
        assert_eq!(router.r(b"www.example.com", b"/", None), Routed::NotFound);
        // SNI equal to the Host, in any case, with or without a trailing dot: 404.
        for sni in ["www.example.com", "WWW.Example.com", "www.example.com."] {
            assert_eq!(
                router.r(b"www.example.com:8443", b"/", Some(sni)),
                Routed::NotFound,
                "{sni}"
            );
        }
        // The connection was made for another name: 421.
        assert_eq!(
            router.r(b"www.example.com", b"/", Some("api.example.com")),
            Routed::Misdirected
        );
        assert_eq!(
            router.r(b"www.example.com", b"/", Some("www.example.co")),
            Routed::Misdirected
        );
        // A route that matches wins whatever the SNI says.
        assert_eq!(
            router.r(b"api.example.com", b"/", Some("www.example.com")),
            up(1)
        );
    }

    #[test]
    fn decisions_name_the_route_and_a_route_without_upstream_answers_itself() {
        let mut maintenance = route(None, Some("/old/"), 0);
        maintenance.upstream = None;
        let router = Router::new(
            vec![route(Some("api.example.com"), None, 1), maintenance],
            Some(2),
        );
        assert_eq!(
            router.route(b"api.example.com", b"/old/x", None),
            Routed::Upstream {
                upstream: 1,
                route: Some(0)
            }
        );
        assert_eq!(
            router.route(b"www.example.com", b"/old/x", None),
            Routed::Respond(1)
        );
        assert_eq!(
            router.route(b"www.example.com", b"/", None),
            Routed::Upstream {
                upstream: 2,
                route: None
            }
        );
    }
}
