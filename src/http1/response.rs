//! Response heads from backends: parsing and validation ([`parse_response`]) and
//! re-serialization for the client ([`write_response_head`]).
//!
//! Invariants:
//! - Backends get the same scrutiny as clients (CHECKLISTS.md §1): a head that breaks a
//!   syntax or framing rule is an error, the client gets 502 and the backend connection is
//!   discarded, so a confused backend cannot desynchronize a kept-alive connection.
//! - Whether a body exists is decided by the request method and the status first (RFC 9112
//!   §6.3): a response to HEAD, a 1xx, 204 or 304 has no body whatever its fields say.
//! - The client never receives raw head bytes: the status line, framing fields and Connection
//!   are written from parsed values.

use super::field::{
    self, Field, FieldKind, LineError, MAX_STACK_HEADERS, Span, parse_version, write_u64,
};
use super::header_rules::HeaderRules;
use super::{BodyKind, HeadError, Limits, Method, Parsed, ResponseError};

/// A parsed response head. Reusable like [`super::RequestHead`].
#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub status: u16,
    /// Bytes of the head through the CRLF of the empty line; the body starts here.
    pub head_len: usize,
    pub body: BodyKind,
    /// The backend connection can be reused once the body has been read: HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`; never for a
    /// close-delimited body.
    pub keep_alive: bool,
    /// The backend answered with HTTP/1.0.
    pub http10: bool,
    reason: Span,
    /// The single Content-Length value, if the response carried one.
    content_length: Option<u64>,
    fields: Vec<Field>,
}

impl Default for ResponseHead {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseHead {
    /// An empty head; allocates nothing until fields are parsed into it.
    pub fn new() -> Self {
        Self {
            status: 0,
            head_len: 0,
            body: BodyKind::Empty,
            keep_alive: false,
            http10: false,
            reason: Span::default(),
            content_length: None,
            fields: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.status = 0;
        self.head_len = 0;
        self.body = BodyKind::Empty;
        self.keep_alive = false;
        self.http10 = false;
        self.reason = Span::default();
        self.content_length = None;
        self.fields.clear();
    }

    /// 1xx: an interim response; the final response follows it on the same connection
    /// (except after a 101: see [`ResponseHead::switches_protocols`]).
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// 101 Switching Protocols (parsed only for a request that asked for it, see
    /// [`parse_response_with`]): the last HTTP/1.1 message of the connection; the bytes after
    /// its head are the new protocol's.
    pub fn switches_protocols(&self) -> bool {
        self.status == 101
    }

    /// Whether every protocol this 101 switches to (its Upgrade field values in `buf`) is one
    /// the request offered (`offer`, [`super::RequestHead::upgrade_offer`]): a server must not
    /// switch to a protocol the client did not indicate (RFC 9110 §7.8). Names compare without
    /// regard to case; a version, when both sides give one, must be the same.
    pub fn switches_to_offered(&self, buf: &[u8], offer: &[u8]) -> bool {
        self.fields
            .iter()
            .filter(|f| f.kind == FieldKind::Upgrade)
            .flat_map(|f| field::list_elements(f.value.get(buf)))
            .filter(|chosen| !chosen.is_empty())
            .all(|chosen| field::list_elements(offer).any(|offered| same_protocol(chosen, offered)))
    }

    /// The reason phrase as received (may be empty).
    pub fn reason<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.reason.get(buf)
    }

    /// The header fields as received (name, OWS-trimmed value), in order.
    pub fn headers<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.fields
            .iter()
            .map(move |f| (f.name.get(buf), f.value.get(buf)))
    }

    /// Relaying this response forces the client connection closed after it, whatever the
    /// client asked: a close-delimited body, or a chunked body to an HTTP/1.0 client (which
    /// cannot read chunked, RFC 9112 §7.1: the caller de-chunks it with
    /// [`super::BodyDecoder::decode`] and ends it by closing).
    pub fn forces_client_close(&self, client_http10: bool) -> bool {
        self.body == BodyKind::CloseDelimited || (client_http10 && self.body == BodyKind::Chunked)
    }
}

/// Whether two `protocol-name ["/" protocol-version]` elements name the same protocol: the
/// names equal ignoring case, and the versions too when both have one.
fn same_protocol(a: &[u8], b: &[u8]) -> bool {
    fn split(p: &[u8]) -> (&[u8], Option<&[u8]>) {
        match p.iter().position(|&c| c == b'/') {
            Some(slash) => (&p[..slash], Some(&p[slash + 1..])),
            None => (p, None),
        }
    }
    let ((name_a, version_a), (name_b, version_b)) = (split(a), split(b));
    name_a.eq_ignore_ascii_case(name_b)
        && match (version_a, version_b) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => true,
        }
}

/// Parses and validates the response head at the front of `buf` into `head`.
///
/// `request_method` decides bodilessness (RFC 9112 §6.3). 1xx other than 101 parse as
/// `Complete` with an empty body: skip or relay them, then parse the next head at
/// `buf[head.head_len..]`. 101 is an error (the request asked for no upgrade: see
/// [`parse_response_with`]), as is a 2xx to CONNECT (ringway never sends CONNECT).
/// `Limits::max_body` is not applied here.
pub fn parse_response(
    buf: &[u8],
    limits: &Limits,
    request_method: Method,
    head: &mut ResponseHead,
) -> Result<Parsed, ResponseError> {
    parse_response_with(buf, limits, request_method, false, head)
}

/// [`parse_response`] of the answer to a request that asked to switch protocols or not
/// (`upgrade_requested`, [`super::RequestHead::upgrade`]). With it, a 101 is a complete head
/// ([`ResponseHead::switches_protocols`]): it must carry an Upgrade field (RFC 9110 §15.2.2),
/// and whatever follows its head belongs to the new protocol. Without it a 101 is
/// [`ResponseError::SwitchingProtocols`].
pub fn parse_response_with(
    buf: &[u8],
    limits: &Limits,
    request_method: Method,
    upgrade_requested: bool,
    head: &mut ResponseHead,
) -> Result<Parsed, ResponseError> {
    head.reset();
    let line_end = match field::find_start_line(buf, 0, limits.max_request_line, limits.max_head) {
        Ok(Some(end)) => end,
        Ok(None) => return Ok(Parsed::Partial),
        Err(LineError::TooLong) => return Err(ResponseError::StatusLineTooLong),
        Err(LineError::Head(e)) => return Err(e.into()),
    };
    let line = buf.get(..line_end - 2).unwrap_or(&[]);
    parse_status_line(line, head)?;
    if head.status == 101 && !upgrade_requested {
        return Err(ResponseError::SwitchingProtocols);
    }

    let max_fields = limits.max_headers.min(MAX_STACK_HEADERS);
    let Some((head_len, count)) = field::scan_fields(buf, line_end, limits.max_head, max_fields)?
    else {
        return Ok(Parsed::Partial);
    };
    field::collect_fields(buf, line_end, head_len, max_fields, count, &mut head.fields)?;
    head.head_len = head_len;
    check_fields(buf, request_method, head)?;
    if head.status == 101 && !head.fields.iter().any(|f| f.kind == FieldKind::Upgrade) {
        return Err(ResponseError::SwitchingWithoutUpgrade);
    }
    Ok(Parsed::Complete)
}

/// The status code of the status line at the front of `buf`, read alone (a health check needs
/// nothing else): `Ok(None)` until the line's CRLF has arrived; the same rules as
/// [`parse_response`]'s, the line at most `max_line` bytes.
pub fn parse_status(buf: &[u8], max_line: usize) -> Result<Option<u16>, ResponseError> {
    let line_end = match field::find_start_line(buf, 0, max_line, max_line) {
        Ok(Some(end)) => end,
        Ok(None) => return Ok(None),
        Err(LineError::TooLong) => return Err(ResponseError::StatusLineTooLong),
        Err(LineError::Head(e)) => return Err(e.into()),
    };
    let mut head = ResponseHead::new();
    parse_status_line(buf.get(..line_end - 2).unwrap_or(&[]), &mut head)?;
    Ok(Some(head.status))
}

/// RFC 9112 §4: `HTTP-version SP 3DIGIT SP [reason-phrase]`. A missing `SP reason` is
/// tolerated (common, and harmless to framing).
fn parse_status_line(line: &[u8], head: &mut ResponseHead) -> Result<(), ResponseError> {
    let (version, rest) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => line.split_at(sp),
        None => return Err(ResponseError::MalformedStatusLine),
    };
    match parse_version(version) {
        None => return Err(ResponseError::MalformedVersion),
        Some((1, minor)) => head.http10 = minor == 0,
        Some(_) => return Err(ResponseError::UnsupportedVersion),
    }
    // `rest` starts with the SP.
    let (code, reason) = match rest {
        [b' ', a, b, c] => ([*a, *b, *c], &[][..]),
        [b' ', a, b, c, b' ', reason @ ..] => ([*a, *b, *c], reason),
        _ => return Err(ResponseError::MalformedStatusLine),
    };
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(ResponseError::MalformedStatusLine);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&status) {
        return Err(ResponseError::InvalidStatus);
    }
    // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
    if !reason.iter().all(|&b| field::is_field_byte(b)) {
        return Err(ResponseError::MalformedStatusLine);
    }
    head.status = status;
    let reason_start = line.len() - reason.len();
    head.reason = Span::new(reason_start, line.len());
    Ok(())
}

fn check_fields(
    buf: &[u8],
    request_method: Method,
    head: &mut ResponseHead,
) -> Result<(), ResponseError> {
    let mut content_length = None;
    let mut te_value: Option<&[u8]> = None;
    for f in &head.fields {
        let value = f.value.get(buf);
        match f.kind {
            FieldKind::ContentLength => field::fold_content_length(value, &mut content_length)?,
            FieldKind::TransferEncoding => {
                // Two field lines could legally be one list, but splitting framing across
                // lines is a smuggling pattern: refuse it (checked before either value).
                if te_value.is_some() {
                    return Err(HeadError::DuplicateTransferEncoding.into());
                }
                te_value = Some(value);
            }
            _ => {}
        }
    }
    // Framing fields are validated even when the status makes them moot: a backend that sends
    // contradictory framing is not trusted with a kept-alive connection.
    if let Some(value) = te_value {
        field::check_transfer_encoding(value)?;
    }
    let transfer_encoding = te_value.is_some();
    if transfer_encoding && head.http10 {
        return Err(HeadError::TransferEncodingInHttp10.into());
    }
    if transfer_encoding && content_length.is_some() {
        return Err(HeadError::ContentLengthWithTransferEncoding.into());
    }
    head.content_length = content_length;
    let status = head.status;
    // RFC 9112 §6.3, in order.
    head.body = if request_method == Method::Head
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        BodyKind::Empty
    } else if request_method == Method::Connect && (200..300).contains(&status) {
        return Err(ResponseError::ConnectTunnel);
    } else if transfer_encoding {
        BodyKind::Chunked
    } else if let Some(n) = content_length {
        BodyKind::Length(n)
    } else {
        BodyKind::CloseDelimited
    };
    let opts = field::apply_connection(buf, &mut head.fields)?;
    head.keep_alive =
        !opts.close && (!head.http10 || opts.keep_alive) && head.body != BodyKind::CloseDelimited;
    Ok(())
}

/// Appends the head to send to the client to `out`:
///
/// - `HTTP/1.1 <code> <reason>` (the backend's reason, or the standard one when it sent none);
/// - every field except Connection, Keep-Alive, Proxy-Connection, Upgrade, TE and those named
///   in Connection (RFC 9110 §7.6.1); a 101 keeps its Upgrade fields and is followed by
///   `Connection: upgrade` (the switch concerns the client's hop too);
/// - the framing fields written from parsed values: one normalized Content-Length; no
///   Content-Length or Transfer-Encoding on 1xx and 204 (RFC 9110 §8.6, RFC 9112 §6.1); no
///   Transfer-Encoding to an HTTP/1.0 client;
/// - on a final response, `Connection: close` when `client_keep_alive` is false or the
///   response [forces a close](ResponseHead::forces_client_close), else
///   `Connection: keep-alive` for an HTTP/1.0 client.
///
/// 1xx responses must not be relayed to HTTP/1.0 clients (RFC 9110 §15.2): the caller skips them.
pub fn write_response_head(
    buf: &[u8],
    head: &ResponseHead,
    client_keep_alive: bool,
    client_http10: bool,
    out: &mut Vec<u8>,
) {
    let no_rules = HeaderRules::default();
    write_response_head_with(buf, head, client_keep_alive, client_http10, &no_rules, out);
}

/// [`write_response_head`], with header `rules` applied: the fields they remove or set are
/// left out of the backend's, and theirs are written after them.
pub fn write_response_head_with(
    buf: &[u8],
    head: &ResponseHead,
    client_keep_alive: bool,
    client_http10: bool,
    rules: &HeaderRules,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    write_u64(out, u64::from(head.status));
    out.push(b' ');
    let reason = head.reason(buf);
    out.extend_from_slice(if reason.is_empty() {
        reason_phrase(head.status)
    } else {
        reason
    });
    out.extend_from_slice(b"\r\n");

    let no_framing = head.is_informational() || head.status == 204;
    let mut length_written = false;
    for f in &head.fields {
        match f.kind {
            // Framing is written from the parsed values even if Connection named it.
            FieldKind::ContentLength => {
                if let (false, false, Some(n)) = (no_framing, length_written, head.content_length) {
                    out.extend_from_slice(b"Content-Length: ");
                    write_u64(out, n);
                    out.extend_from_slice(b"\r\n");
                    length_written = true;
                }
            }
            FieldKind::TransferEncoding => {
                if !no_framing && !client_http10 {
                    out.extend_from_slice(b"Transfer-Encoding: ");
                    field::write_transfer_encoding(f.value.get(buf), out);
                    out.extend_from_slice(b"\r\n");
                }
            }
            FieldKind::Upgrade if head.switches_protocols() => {
                field::write_field(out, f.name.get(buf), f.value.get(buf));
            }
            FieldKind::Connection
            | FieldKind::KeepAlive
            | FieldKind::ProxyConnection
            | FieldKind::Upgrade
            | FieldKind::Te => {}
            _ => {
                if !f.hop && !rules.drops(f.name.get(buf)) {
                    field::write_field(out, f.name.get(buf), f.value.get(buf));
                }
            }
        }
    }
    if head.switches_protocols() {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    }
    if !head.is_informational() {
        rules.write_added(out);
        if !client_keep_alive || head.forces_client_close(client_http10) {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if client_http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The standard reason phrase of a status (RFC 9110 §15), or "" for an unknown one.
fn reason_phrase(status: u16) -> &'static [u8] {
    match status {
        100 => b"Continue",
        102 => b"Processing",
        103 => b"Early Hints",
        200 => b"OK",
        201 => b"Created",
        202 => b"Accepted",
        203 => b"Non-Authoritative Information",
        204 => b"No Content",
        205 => b"Reset Content",
        206 => b"Partial Content",
        300 => b"Multiple Choices",
        301 => b"Moved Permanently",
        302 => b"Found",
        303 => b"See Other",
        304 => b"Not Modified",
        307 => b"Temporary Redirect",
        308 => b"Permanent Redirect",
        400 => b"Bad Request",
        401 => b"Unauthorized",
        403 => b"Forbidden",
        404 => b"Not Found",
        405 => b"Method Not Allowed",
        408 => b"Request Timeout",
        409 => b"Conflict",
        410 => b"Gone",
        411 => b"Length Required",
        412 => b"Precondition Failed",
        413 => b"Content Too Large",
        414 => b"URI Too Long",
        415 => b"Unsupported Media Type",
        416 => b"Range Not Satisfiable",
        417 => b"Expectation Failed",
        421 => b"Misdirected Request",
        422 => b"Unprocessable Content",
        426 => b"Upgrade Required",
        429 => b"Too Many Requests",
        431 => b"Request Header Fields Too Large",
        500 => b"Internal Server Error",
        501 => b"Not Implemented",
        502 => b"Bad Gateway",
        503 => b"Service Unavailable",
        504 => b"Gateway Timeout",
        505 => b"HTTP Version Not Supported",
        _ => b"",
    }
}

#[cfg(test)]
mod tests;
