//! Responses ringway writes itself.
//!
//! Pre-built error responses are static bytes, so answering an error never allocates. Every one
//! closes the connection (`Connection: close`): after a framing error the rest of the client's
//! bytes cannot be trusted to start a new request (RFC 9112 §11.2). Each carries a `Content-Length`
//! and a short `text/plain` body.
//!
//! [`local_response`] builds the answers to well-framed requests that no backend takes (no
//! route: 404 or 421; no healthy backend: 503 with `Retry-After`): the connection may stay open
//! after them.

use super::Method;

/// The interim response sent when a request with `Expect: 100-continue` may send its body
/// (RFC 9110 §10.1.1).
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// `400 Bad Request`.
pub const BAD_REQUEST_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 16\r\n\
Connection: close\r\n\
\r\n\
400 Bad Request\n";

/// `403 Forbidden`: a request to switch protocols (WebSocket) where the configuration turns
/// upgrades off.
pub const FORBIDDEN_403: &[u8] = b"HTTP/1.1 403 Forbidden\r\n\
Content-Type: text/plain\r\n\
Content-Length: 14\r\n\
Connection: close\r\n\
\r\n\
403 Forbidden\n";

/// `404 Not Found`.
pub const NOT_FOUND_404: &[u8] = b"HTTP/1.1 404 Not Found\r\n\
Content-Type: text/plain\r\n\
Content-Length: 14\r\n\
Connection: close\r\n\
\r\n\
404 Not Found\n";

/// `408 Request Timeout`.
pub const REQUEST_TIMEOUT_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
Content-Type: text/plain\r\n\
Content-Length: 20\r\n\
Connection: close\r\n\
\r\n\
408 Request Timeout\n";

/// `413 Content Too Large`.
pub const CONTENT_TOO_LARGE_413: &[u8] = b"HTTP/1.1 413 Content Too Large\r\n\
Content-Type: text/plain\r\n\
Content-Length: 22\r\n\
Connection: close\r\n\
\r\n\
413 Content Too Large\n";

/// `414 URI Too Long`.
pub const URI_TOO_LONG_414: &[u8] = b"HTTP/1.1 414 URI Too Long\r\n\
Content-Type: text/plain\r\n\
Content-Length: 17\r\n\
Connection: close\r\n\
\r\n\
414 URI Too Long\n";

/// `421 Misdirected Request`.
pub const MISDIRECTED_REQUEST_421: &[u8] = b"HTTP/1.1 421 Misdirected Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 24\r\n\
Connection: close\r\n\
\r\n\
421 Misdirected Request\n";

/// `431 Request Header Fields Too Large`.
pub const HEADER_FIELDS_TOO_LARGE_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
Content-Type: text/plain\r\n\
Content-Length: 36\r\n\
Connection: close\r\n\
\r\n\
431 Request Header Fields Too Large\n";

/// `500 Internal Server Error`.
pub const INTERNAL_SERVER_ERROR_500: &[u8] = b"HTTP/1.1 500 Internal Server Error\r\n\
Content-Type: text/plain\r\n\
Content-Length: 26\r\n\
Connection: close\r\n\
\r\n\
500 Internal Server Error\n";

/// `501 Not Implemented`.
pub const NOT_IMPLEMENTED_501: &[u8] = b"HTTP/1.1 501 Not Implemented\r\n\
Content-Type: text/plain\r\n\
Content-Length: 20\r\n\
Connection: close\r\n\
\r\n\
501 Not Implemented\n";

/// `502 Bad Gateway`.
pub const BAD_GATEWAY_502: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\n\
Content-Type: text/plain\r\n\
Content-Length: 16\r\n\
Connection: close\r\n\
\r\n\
502 Bad Gateway\n";

/// `503 Service Unavailable`.
pub const SERVICE_UNAVAILABLE_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain\r\n\
Content-Length: 24\r\n\
Retry-After: 1\r\nConnection: close\r\n\
\r\n\
503 Service Unavailable\n";

/// `504 Gateway Timeout`.
pub const GATEWAY_TIMEOUT_504: &[u8] = b"HTTP/1.1 504 Gateway Timeout\r\n\
Content-Type: text/plain\r\n\
Content-Length: 20\r\n\
Connection: close\r\n\
\r\n\
504 Gateway Timeout\n";

/// `505 HTTP Version Not Supported`.
pub const HTTP_VERSION_NOT_SUPPORTED_505: &[u8] = b"HTTP/1.1 505 HTTP Version Not Supported\r\n\
Content-Type: text/plain\r\n\
Content-Length: 31\r\n\
Connection: close\r\n\
\r\n\
505 HTTP Version Not Supported\n";

/// A status ringway answers itself (RFC 9110 §15): one of the responses above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Status {
    /// 400.
    BadRequest = 400,
    /// 403: a protocol upgrade (WebSocket) the configuration refuses.
    Forbidden = 403,
    /// 404: no route takes the request.
    NotFound = 404,
    /// 408: the request (its head or body) did not arrive in time.
    RequestTimeout = 408,
    /// 413: the body is over the limit.
    ContentTooLarge = 413,
    /// 414: the request line is over the limit.
    UriTooLong = 414,
    /// 421: the request names another host than the TLS connection was made for.
    MisdirectedRequest = 421,
    /// 431: the head or the trailers are over the limit.
    HeaderFieldsTooLarge = 431,
    /// 500.
    InternalServerError = 500,
    /// 501: a transfer coding or method ringway does not implement.
    NotImplemented = 501,
    /// 502: the backend failed or answered badly.
    BadGateway = 502,
    /// 503: no backend can take the request, or this process is short of something.
    ServiceUnavailable = 503,
    /// 504: the backend timed out.
    GatewayTimeout = 504,
    /// 505.
    HttpVersionNotSupported = 505,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 14] = [
        Status::BadRequest,
        Status::Forbidden,
        Status::NotFound,
        Status::RequestTimeout,
        Status::ContentTooLarge,
        Status::UriTooLong,
        Status::MisdirectedRequest,
        Status::HeaderFieldsTooLarge,
        Status::InternalServerError,
        Status::NotImplemented,
        Status::BadGateway,
        Status::ServiceUnavailable,
        Status::GatewayTimeout,
        Status::HttpVersionNotSupported,
    ];

    /// The status code.
    pub const fn code(self) -> u16 {
        self as u16
    }
}

impl PartialEq<u16> for Status {
    fn eq(&self, code: &u16) -> bool {
        self.code() == *code
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// The pre-built response for `status`, with `Connection: close`.
pub fn error_response(status: Status) -> &'static [u8] {
    match status {
        Status::BadRequest => BAD_REQUEST_400,
        Status::Forbidden => FORBIDDEN_403,
        Status::NotFound => NOT_FOUND_404,
        Status::RequestTimeout => REQUEST_TIMEOUT_408,
        Status::ContentTooLarge => CONTENT_TOO_LARGE_413,
        Status::UriTooLong => URI_TOO_LONG_414,
        Status::MisdirectedRequest => MISDIRECTED_REQUEST_421,
        Status::HeaderFieldsTooLarge => HEADER_FIELDS_TOO_LARGE_431,
        Status::InternalServerError => INTERNAL_SERVER_ERROR_500,
        Status::NotImplemented => NOT_IMPLEMENTED_501,
        Status::BadGateway => BAD_GATEWAY_502,
        Status::ServiceUnavailable => SERVICE_UNAVAILABLE_503,
        Status::GatewayTimeout => GATEWAY_TIMEOUT_504,
        Status::HttpVersionNotSupported => HTTP_VERSION_NOT_SUPPORTED_505,
    }
}

/// Appends a response to a well-framed request with `method` that ringway answers itself:
/// `status` (404, 421 or 503; anything else is answered as its pre-built error), `Retry-After`
/// in whole seconds when given, `Connection: close` unless `keep_alive`, and no body for HEAD
/// (same head, RFC 9110 §9.3.2).
pub fn local_response(
    status: Status,
    retry_after: Option<u64>,
    keep_alive: bool,
    method: Method,
    out: &mut Vec<u8>,
) {
    let reason: &[u8] = match status {
        Status::NotFound => b"404 Not Found",
        Status::MisdirectedRequest => b"421 Misdirected Request",
        Status::ServiceUnavailable => b"503 Service Unavailable",
        _ => {
            out.extend_from_slice(error_response(status));
            return;
        }
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    super::field::write_u64(out, reason.len() as u64 + 1);
    if let Some(seconds) = retry_after {
        out.extend_from_slice(b"\r\nRetry-After: ");
        super::field::write_u64(out, seconds);
    }
    if !keep_alive {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if method != Method::Head {
        out.extend_from_slice(reason);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(resp: &[u8]) -> (&[u8], &[u8]) {
        let end = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head ends");
        (&resp[..end + 4], &resp[end + 4..])
    }

    #[test]
    fn every_response_is_well_formed() {
        for status in Status::ALL {
            let resp = error_response(status);
            let (head, body) = split(resp);
            let text = std::str::from_utf8(head).expect("ascii");
            assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
            assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
            assert!(text.contains("\r\nContent-Type: text/plain\r\n"), "{text}");
            assert!(
                text.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
                "{text}"
            );
            assert!(body.starts_with(status.to_string().as_bytes()));
            // It parses back as a valid response with exactly that body.
            let mut parsed = crate::http1::ResponseHead::new();
            let r = crate::http1::parse_response(
                resp,
                &crate::http1::Limits::default(),
                crate::http1::Method::Get,
                &mut parsed,
            );
            assert_eq!(r, Ok(crate::http1::Parsed::Complete));
            assert_eq!(parsed.status, status.code());
            assert_eq!(
                parsed.body,
                crate::http1::BodyKind::Length(body.len() as u64)
            );
            assert!(!parsed.keep_alive);
        }
    }

    #[test]
    fn retry_after_only_on_503() {
        for status in Status::ALL {
            let has = split(error_response(status))
                .0
                .windows(14)
                .any(|w| w == b"Retry-After: 1");
            assert_eq!(has, status == 503, "{status}");
        }
    }

    #[test]
    fn every_status_has_its_own_code_and_response() {
        let codes: Vec<u16> = Status::ALL.iter().map(|s| s.code()).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "{codes:?}");
        for status in Status::ALL {
            let line = format!("HTTP/1.1 {} ", status.code());
            assert!(
                error_response(status).starts_with(line.as_bytes()),
                "{status}"
            );
            assert_eq!(status, status.code());
        }
    }

    #[test]
    fn local_responses_are_exact() {
        let mut out = Vec::new();
        local_response(
            Status::ServiceUnavailable,
            Some(12),
            true,
            Method::Get,
            &mut out,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
              Content-Length: 24\r\nRetry-After: 12\r\n\r\n503 Service Unavailable\n"
        );
        out.clear();
        local_response(Status::NotFound, None, false, Method::Get, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\
              Content-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n"
        );
        for (status, keep) in [
            (Status::NotFound, true),
            (Status::MisdirectedRequest, false),
            (Status::ServiceUnavailable, true),
        ] {
            out.clear();
            local_response(status, Some(1), keep, Method::Get, &mut out);
            let mut parsed = crate::http1::ResponseHead::new();
            let r = crate::http1::parse_response(
                &out,
                &crate::http1::Limits::default(),
                crate::http1::Method::Get,
                &mut parsed,
            );
            assert_eq!(r, Ok(crate::http1::Parsed::Complete));
            assert_eq!(parsed.status, status.code());
            assert_eq!(parsed.keep_alive, keep);
            let body = &out[parsed.head_len..];
            assert_eq!(
                parsed.body,
                crate::http1::BodyKind::Length(body.len() as u64)
            );
        }
        out.clear();
        local_response(Status::NotFound, None, true, Method::Head, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\
              Content-Length: 14\r\n\r\n"
        );
        out.clear();
        local_response(Status::BadGateway, None, true, Method::Get, &mut out);
        assert_eq!(out, BAD_GATEWAY_502);
    }

    #[test]
    fn continue_parses_as_an_interim_response_with_nothing_after_it() {
        let mut parsed = crate::http1::ResponseHead::new();
        let r = crate::http1::parse_response(
            CONTINUE_100,
            &crate::http1::Limits::default(),
            crate::http1::Method::Post,
            &mut parsed,
        );
        assert_eq!(r, Ok(crate::http1::Parsed::Complete));
        assert_eq!(parsed.status, 100);
        assert_eq!(parsed.head_len, CONTINUE_100.len());
    }
}
