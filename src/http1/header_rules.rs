//! Header rules: fields an operator sets, appends or removes on the way to the backend or back
//! to the client (`Strict-Transport-Security` on every response, no `Server`, ...).
//!
//! Owns [`HeaderRules`], checked when built (at config load): names are tokens, values are
//! field-value bytes (no CR, LF, NUL or other control byte but tab), and no rule touches what
//! ringway writes itself or what frames the message (`Host`, `Content-Length`,
//! `Transfer-Encoding`, `Connection` and the other hop-by-hop fields, the `X-Forwarded-*` and
//! `Forwarded` fields, `X-Request-Id`, the client-certificate fields): a rule can never break
//! framing or forwarding, nor forge a client's identity.
//!
//! Invariants: applying rules is one case-insensitive comparison per field of the message
//! against the removed and set names, then the additions; with no rules, nothing.

use super::field::{is_field_byte, is_tchar, trim_ows, write_field};

/// Fields ringway writes itself or that frame a message: no rule may name them.
const PROTECTED: [&[u8]; 19] = [
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"upgrade",
    b"expect",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"forwarded",
    b"x-request-id",
    b"x-client-verify",
    b"x-client-cert-subject",
    b"x-client-cert-san",
    b"x-client-cert-fingerprint",
];

/// Why a header rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderRuleError {
    /// The name is empty or not a token (RFC 9110 §5.1).
    #[error("{0:?} is not a header field name")]
    Name(String),
    /// The value has a byte a field value may not hold.
    #[error("the value of {0} has a control character, CR or LF")]
    Value(String),
    /// The name is one ringway writes itself or one that frames the message.
    #[error("{0} cannot be changed by a rule (ringway writes it, or it frames the message)")]
    Protected(String),
}

/// One field a rule writes: its name and value.
type Added = (Box<[u8]>, Box<[u8]>);

/// Fields to set (replacing any the message has), append (beside any it has) and remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// Lowercase names whose fields are dropped from the message: removed and set ones.
    dropped: Vec<Box<[u8]>>,
    /// Fields written after the message's own: set, then appended.
    added: Vec<Added>,
}

impl HeaderRules {
    /// Rules that set `set`, append `append` and remove `remove` (names in any case).
    pub fn new<'a>(
        set: impl IntoIterator<Item = (&'a str, &'a str)>,
        append: impl IntoIterator<Item = (&'a str, &'a str)>,
        remove: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, HeaderRuleError> {
        let mut rules = Self::default();
        for name in remove {
            rules.dropped.push(checked_name(name)?);
        }
        for (name, value) in set {
            rules.dropped.push(checked_name(name)?);
            rules
                .added
                .push((name.as_bytes().into(), checked_value(name, value)?));
        }
        for (name, value) in append {
            checked_name(name)?;
            rules
                .added
                .push((name.as_bytes().into(), checked_value(name, value)?));
        }
        Ok(rules)
    }

    /// These rules followed by `later` (a route's after its listener's), as one set: what
    /// `later` removes or sets is dropped from the message and from these rules' additions.
    pub fn then(&self, later: &HeaderRules) -> HeaderRules {
        let mut dropped = self.dropped.clone();
        dropped.extend(later.dropped.iter().cloned());
        let mut added: Vec<Added> = self
            .added
            .iter()
            .filter(|(name, _)| !later.drops(name))
            .cloned()
            .collect();
        added.extend(later.added.iter().cloned());
        HeaderRules { dropped, added }
    }

    /// True when there is no rule.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty() && self.added.is_empty()
    }

    /// Whether the message's field `name` is left out.
    #[inline]
    pub fn drops(&self, name: &[u8]) -> bool {
        self.dropped.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    /// Writes the set and appended fields.
    pub fn write_added(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.added {
            write_field(out, name, value);
        }
    }
}

fn checked_name(name: &str) -> Result<Box<[u8]>, HeaderRuleError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(HeaderRuleError::Name(name.to_owned()));
    }
    let lower = name.to_ascii_lowercase().into_bytes();
    if PROTECTED.contains(&lower.as_slice()) {
        return Err(HeaderRuleError::Protected(name.to_owned()));
    }
    Ok(lower.into_boxed_slice())
}

fn checked_value(name: &str, value: &str) -> Result<Box<[u8]>, HeaderRuleError> {
    if !value.bytes().all(is_field_byte) {
        return Err(HeaderRuleError::Value(name.to_owned()));
    }
    Ok(trim_ows(value.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_checked_when_built() {
        assert!(HeaderRules::new([("X-Ok", "v")], [], ["Server"]).is_ok());
        assert_eq!(
            HeaderRules::new([("Bad Name", "v")], [], []),
            Err(HeaderRuleError::Name("Bad Name".into()))
        );
        assert_eq!(
            HeaderRules::new([("X-A", "a\r\nInjected: 1")], [], []),
            Err(HeaderRuleError::Value("X-A".into()))
        );
        for protected in [
            "Content-Length",
            "transfer-encoding",
            "Host",
            "X-Forwarded-For",
        ] {
            assert_eq!(
                HeaderRules::new([], [], [protected]),
                Err(HeaderRuleError::Protected(protected.into()))
            );
        }
    }

    #[test]
    fn set_replaces_append_adds_and_remove_drops() {
        let listener =
            HeaderRules::new([("X-Env", "prod")], [("Via", "ringway")], ["Server"]).unwrap();
        assert!(listener.drops(b"server") && listener.drops(b"X-ENV") && !listener.drops(b"via"));
        let mut out = Vec::new();
        listener.write_added(&mut out);
        assert_eq!(out, b"X-Env: prod\r\nVia: ringway\r\n");
        assert!(HeaderRules::default().is_empty());
    }

    #[test]
    fn a_routes_rules_follow_its_listeners() {
        let listener = HeaderRules::new(
            [("X-Env", "prod"), ("Cache-Control", "no-store")],
            [("Via", "ringway")],
            ["Server"],
        )
        .unwrap();
        let route = HeaderRules::new([("Cache-Control", "max-age=60")], [], ["Via"]).unwrap();
        let both = listener.then(&route);
        assert!(both.drops(b"server") && both.drops(b"cache-control") && both.drops(b"via"));
        let mut out = Vec::new();
        both.write_added(&mut out);
        assert_eq!(out, b"X-Env: prod\r\nCache-Control: max-age=60\r\n");
        assert_eq!(listener.then(&HeaderRules::default()), listener);
    }
}
