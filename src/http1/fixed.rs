//! Responses an operator configures ringway to answer with itself: a route's fixed response
//! (a maintenance page, a blocked path) and the redirect of a plain-HTTP listener to HTTPS.
//!
//! Owns [`FixedResponse`], checked when built (at config load: a final status, a field-value
//! content type, a bounded body, no body where the status forbids one), and
//! [`write_https_redirect`]. Both write a complete, well-framed response (`Content-Length`
//! always), with the listener's and route's response header rules, and `Connection: close`
//! when the connection closes after it; a HEAD request gets the head alone.
//!
//! Invariants: what these write never depends on bytes a client controls except the redirect's
//! host and target, which are checked ([`redirect_host_ok`]) or were validated by the request
//! parser (field and target bytes hold no CR, LF or other control byte).

use super::field::{is_field_byte, trim_ows, write_u64};
use super::{HeaderRules, Method};

/// The content type of a fixed body when none is configured.
const DEFAULT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Why a fixed response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixedResponseError {
    /// Not a final status code (200 to 599).
    #[error("status {0} is not a final status: use 200 to 599")]
    Status(u16),
    /// A body where the status forbids one (204, 304).
    #[error("a {0} response has no body")]
    BodyForbidden(u16),
    /// The body is over the limit.
    #[error("the body is {len} bytes, over the limit of {max}")]
    BodyTooLarge {
        /// The body's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The content type is empty or holds a control character.
    #[error("content_type {0:?} is not a header field value")]
    ContentType(String),
}

/// A complete response to send as is: its status line and fields (without the end of the
/// head), and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    status: u16,
    /// `HTTP/1.1 <status> <reason>\r\n`, `Content-Type` (with a body) and `Content-Length`.
    head: Box<[u8]>,
    body: Box<[u8]>,
}

impl FixedResponse {
    /// A response with `status`, `body` and its `content_type` (default
    /// `text/plain; charset=utf-8` when there is a body), the body at most `max_body` bytes.
    pub fn new(
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
        max_body: usize,
    ) -> Result<Self, FixedResponseError> {
        if !(200..=599).contains(&status) {
            return Err(FixedResponseError::Status(status));
        }
        if matches!(status, 204 | 304) && !body.is_empty() {
            return Err(FixedResponseError::BodyForbidden(status));
        }
        if body.len() > max_body {
            return Err(FixedResponseError::BodyTooLarge {
                len: body.len(),
                max: max_body,
            });
        }
        let mut head = Vec::with_capacity(96);
        head.extend_from_slice(b"HTTP/1.1 ");
        write_u64(&mut head, u64::from(status));
        head.push(b' ');
        head.extend_from_slice(reason(status).as_bytes());
        head.extend_from_slice(b"\r\n");
        let content_type = match content_type {
            Some(given) => {
                let trimmed = trim_ows(given.as_bytes());
                if trimmed.is_empty() || !trimmed.iter().all(|&b| is_field_byte(b)) {
                    return Err(FixedResponseError::ContentType(given.to_owned()));
                }
                Some(trimmed)
            }
            None => (!body.is_empty()).then_some(DEFAULT_CONTENT_TYPE.as_bytes()),
        };
        if let Some(content_type) = content_type {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(content_type);
            head.extend_from_slice(b"\r\n");
        }
        if !matches!(status, 204 | 304) {
            head.extend_from_slice(b"Content-Length: ");
            write_u64(&mut head, body.len() as u64);
            head.extend_from_slice(b"\r\n");
        }
        Ok(Self {
            status,
            head: head.into(),
            body: body.into(),
        })
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Bytes [`FixedResponse::write`] may write, without the rules' fields.
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len() + CLOSE.len() + 2
    }

    /// Whether the response is empty: never (it always has a status line).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the response for a request with `method`: `rules`' fields after its own,
    /// `Connection: close` unless `keep_alive`, the body unless it is a HEAD request.
    pub fn write(&self, method: Method, keep_alive: bool, rules: &HeaderRules, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        end_head(keep_alive, rules, out);
        if method != Method::Head {
            out.extend_from_slice(&self.body);
        }
    }
}

/// `Connection: close` and its line end.
const CLOSE: &[u8] = b"Connection: close\r\n";

/// The rules' fields, `Connection: close` unless `keep_alive`, the empty line.
fn end_head(keep_alive: bool, rules: &HeaderRules, out: &mut Vec<u8>) {
    rules.write_added(out);
    if !keep_alive {
        out.extend_from_slice(CLOSE);
    }
    out.extend_from_slice(b"\r\n");
}

/// Whether `host` (the request's Host without its port) can be written into a `Location`:
/// a registered name or IPv4 address (letters, digits, `-`, `.`, `_`, `~` and
/// percent-encoding) or a bracketed IPv6 literal; not empty.
pub fn redirect_host_ok(host: &[u8]) -> bool {
    match host {
        [] => false,
        [b'[', inner @ .., b']'] => {
            !inner.is_empty()
                && inner
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        _ => host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')),
    }
}

/// Writes a `308 Permanent Redirect` to `https://host[:port]target` (RFC 9110 §15.4.9: the
/// method and body are kept). `host` must pass [`redirect_host_ok`]; `target` is the request's
/// origin-form target (path and query), `*` becoming `/`.
pub fn write_https_redirect(
    host: &[u8],
    port: Option<u16>,
    target: &[u8],
    keep_alive: bool,
    rules: &HeaderRules,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://");
    out.extend_from_slice(host);
    if let Some(port) = port.filter(|&p| p != 443) {
        out.push(b':');
        write_u64(out, u64::from(port));
    }
    if target.first() == Some(&b'/') {
        out.extend_from_slice(target);
    } else {
        out.push(b'/');
    }
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
    end_head(keep_alive, rules, out);
}

/// The reason phrase of a status (RFC 9110 §15); empty for a code it does not name, which the
/// status line allows (RFC 9112 §4).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    #[test]
    fn a_fixed_response_is_framed_and_kept_or_closed() {
        let page = FixedResponse::new(503, Some(" text/html "), b"<h1>down</h1>", 1024).unwrap();
        assert_eq!(page.status(), 503);
        let mut out = Vec::new();
        page.write(Method::Get, true, &HeaderRules::default(), &mut out);
        assert_eq!(
            text(&out),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n\
             Content-Length: 13\r\n\r\n<h1>down</h1>"
        );
        out.clear();
        let rules = HeaderRules::new([("Retry-After", "60")], [], []).unwrap();
        page.write(Method::Head, false, &rules, &mut out);
        assert_eq!(
            text(&out),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n\
             Content-Length: 13\r\nRetry-After: 60\r\nConnection: close\r\n\r\n"
        );
        assert!(out.len() <= page.len() + 19);
    }

    #[test]
    fn defaults_and_refusals() {
        let plain = FixedResponse::new(200, None, b"ok\n", 1024).unwrap();
        let mut out = Vec::new();
        plain.write(Method::Get, true, &HeaderRules::default(), &mut out);
        assert!(text(&out).contains("Content-Type: text/plain; charset=utf-8\r\n"));
        let empty = FixedResponse::new(204, None, b"", 1024).unwrap();
        out.clear();
        empty.write(Method::Get, true, &HeaderRules::default(), &mut out);
        assert_eq!(text(&out), "HTTP/1.1 204 No Content\r\n\r\n");
        let odd = FixedResponse::new(299, None, b"", 1024).unwrap();
        out.clear();
        odd.write(Method::Get, true, &HeaderRules::default(), &mut out);
        assert_eq!(text(&out), "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n");

        assert_eq!(
            FixedResponse::new(101, None, b"", 10),
            Err(FixedResponseError::Status(101))
        );
        assert_eq!(
            FixedResponse::new(600, None, b"", 10),
            Err(FixedResponseError::Status(600))
        );
        assert_eq!(
            FixedResponse::new(304, None, b"x", 10),
            Err(FixedResponseError::BodyForbidden(304))
        );
        assert_eq!(
            FixedResponse::new(200, None, b"0123456789x", 10),
            Err(FixedResponseError::BodyTooLarge { len: 11, max: 10 })
        );
        assert_eq!(
            FixedResponse::new(200, Some("text/html\r\nX: y"), b"", 10),
            Err(FixedResponseError::ContentType("text/html\r\nX: y".into()))
        );
        assert!(FixedResponse::new(200, Some(" "), b"", 10).is_err());
    }

    #[test]
    fn redirects_keep_host_target_and_port() {
        let none = HeaderRules::default();
        let mut out = Vec::new();
        write_https_redirect(b"example.com", None, b"/a?b=1", true, &none, &mut out);
        assert_eq!(
            text(&out),
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://example.com/a?b=1\r\n\
             Content-Length: 0\r\n\r\n"
        );
        out.clear();
        write_https_redirect(b"[::1]", Some(8443), b"*", false, &none, &mut out);
        assert_eq!(
            text(&out),
            "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://[::1]:8443/\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        write_https_redirect(b"a.example", Some(443), b"/", true, &none, &mut out);
        assert!(text(&out).contains("Location: https://a.example/\r\n"));
    }

    #[test]
    fn redirect_hosts_are_names_or_literals() {
        for ok in [
            &b"example.com"[..],
            b"127.0.0.1",
            b"[::1]",
            b"a_b-c.d",
            b"xn--bcher-kva.example",
        ] {
            assert!(redirect_host_ok(ok), "{}", text(ok));
        }
        for bad in [
            &b""[..],
            b"a/b",
            b"a@b",
            b"evil.com/x?",
            b"[]",
            b"[::1",
            b"a b",
            b"a:80",
            b"\\evil",
        ] {
            assert!(!redirect_host_ok(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
