//! Header-section syntax shared by requests and responses: line scanning, field tokenizing
//! (httparse), and the framing fields (Content-Length, Transfer-Encoding, Connection).
//!
//! The scanner here is strict where httparse is lenient (RFC 9112 §2.2, §5): every line ends in
//! CRLF, a CR is always followed by LF, no NUL anywhere, no obs-fold, no whitespace before the
//! colon, field names are tokens and field values hold no CTL other than HTAB. httparse then
//! tokenizes the already-validated section into a stack array, and the fields are stored as
//! offsets into the caller's buffer.

use super::HeadError;

/// Header fields tokenized on the stack at once.
pub(crate) const MAX_STACK_HEADERS: usize = 128;

/// Most Connection options honoured per head; bounds the work of dropping the fields they name.
pub(crate) const MAX_CONNECTION_OPTIONS: usize = 64;

/// A byte range of the caller's buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The bytes of this span; empty if `buf` is not the buffer the span was made from.
    pub(crate) fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start..self.end).unwrap_or(&[])
    }
}

/// Field names this layer acts on; everything else is [`FieldKind::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Trailer,
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Forwarded,
    RequestId,
    /// One of the fields ringway writes about a client certificate
    /// ([`super::request::CLIENT_CERT_FIELDS`]): never taken from a client.
    ClientCert,
    Other,
}

impl FieldKind {
    /// Classifies a field name, case-insensitively (RFC 9110 §5.1).
    pub(crate) fn classify(name: &[u8]) -> Self {
        const KINDS: [(&[u8], FieldKind); 19] = [
            (b"host", FieldKind::Host),
            (b"content-length", FieldKind::ContentLength),
            (b"transfer-encoding", FieldKind::TransferEncoding),
            (b"connection", FieldKind::Connection),
            (b"keep-alive", FieldKind::KeepAlive),
            (b"proxy-connection", FieldKind::ProxyConnection),
            (b"te", FieldKind::Te),
            (b"trailer", FieldKind::Trailer),
            (b"upgrade", FieldKind::Upgrade),
            (b"expect", FieldKind::Expect),
            (b"x-forwarded-for", FieldKind::XForwardedFor),
            (b"x-forwarded-proto", FieldKind::XForwardedProto),
            (b"x-forwarded-host", FieldKind::XForwardedHost),
            (b"forwarded", FieldKind::Forwarded),
            (b"x-request-id", FieldKind::RequestId),
            (b"x-client-verify", FieldKind::ClientCert),
            (b"x-client-cert-subject", FieldKind::ClientCert),
            (b"x-client-cert-san", FieldKind::ClientCert),
            (b"x-client-cert-fingerprint", FieldKind::ClientCert),
        ];
        KINDS
            .iter()
            .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
            .map_or(FieldKind::Other, |&(_, k)| k)
    }
}

/// One header field line: name and value (OWS-trimmed) as offsets into the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: Span,
    pub(crate) value: Span,
    pub(crate) kind: FieldKind,
    /// Named by a Connection option: hop-by-hop, never forwarded (RFC 9110 §7.6.1).
    pub(crate) hop: bool,
}

/// `tchar` of RFC 9110 §5.6.2.
#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// [`is_tchar`] as a table: it runs once per byte of every field name.
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    table
};

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// An element of an Upgrade field (RFC 9110 §7.8): `protocol-name [ "/" protocol-version ]`,
/// both tokens.
pub(crate) fn is_protocol(s: &[u8]) -> bool {
    match s.iter().position(|&b| b == b'/') {
        Some(slash) => is_token(&s[..slash]) && is_token(&s[slash + 1..]),
        None => is_token(s),
    }
}

/// A byte allowed in a field value: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5).
pub(crate) fn is_field_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Strips optional whitespace (SP / HTAB) from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The elements of a comma-separated list value (RFC 9110 §5.6.1), OWS-trimmed; empty elements
/// are included so that callers can decide whether they are allowed.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// Why no start line could be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineError {
    TooLong,
    Head(HeadError),
}

/// Finds the start line beginning at `start`: returns the index just past its CRLF, or `None`
/// when it is not complete yet. The line (CRLF included) may not exceed `max_line` bytes and
/// must end within the first `max_head` bytes of the buffer.
pub(crate) fn find_start_line(
    buf: &[u8],
    start: usize,
    max_line: usize,
    max_head: usize,
) -> Result<Option<usize>, LineError> {
    let mut i = start;
    while let Some(&b) = buf.get(i) {
        if i - start >= max_line {
            return Err(LineError::TooLong);
        }
        if i >= max_head {
            return Err(LineError::Head(HeadError::TooLarge));
        }
        match b {
            b'\r' => {
                return match buf.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => {
                        let end = i + 2;
                        if end - start > max_line {
                            Err(LineError::TooLong)
                        } else if end > max_head {
                            Err(LineError::Head(HeadError::TooLarge))
                        } else {
                            Ok(Some(end))
                        }
                    }
                    Some(_) => Err(LineError::Head(HeadError::BareCr)),
                };
            }
            b'\n' => return Err(LineError::Head(HeadError::BareLf)),
            0 => return Err(LineError::Head(HeadError::Nul)),
            _ => i += 1,
        }
    }
    Ok(None)
}

/// Validates the field lines starting at `from` through the empty line that ends the head.
/// Returns the head length (index past the final CRLF) and the number of fields, or `None` when
/// the head is not complete yet. Errors as soon as a violation is seen, complete or not.
pub(crate) fn scan_fields(
    buf: &[u8],
    from: usize,
    max_head: usize,
    max_fields: usize,
) -> Result<Option<(usize, usize)>, HeadError> {
    let view = &buf[..buf.len().min(max_head)];
    match scan_fields_in(view, from, max_fields)? {
        Some(done) => Ok(Some(done)),
        None if buf.len() > max_head => Err(HeadError::TooLarge),
        None => Ok(None),
    }
}

/// Checks that the CR at `i` is followed by LF: `Ok(None)` if the next byte has not arrived.
fn crlf_at(buf: &[u8], i: usize) -> Result<Option<()>, HeadError> {
    match buf.get(i + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(())),
        Some(_) => Err(HeadError::BareCr),
    }
}

fn scan_fields_in(
    buf: &[u8],
    from: usize,
    max_fields: usize,
) -> Result<Option<(usize, usize)>, HeadError> {
    let mut i = from;
    let mut fields = 0usize;
    loop {
        // At the start of a line.
        let Some(&first) = buf.get(i) else {
            return Ok(None);
        };
        match first {
            b'\r' => {
                return Ok(crlf_at(buf, i)?.map(|()| (i + 2, fields)));
            }
            b'\n' => return Err(HeadError::BareLf),
            // RFC 9112 §5.2: obs-fold; also leading whitespace on the first field line
            // (RFC 9112 §2.2 says such a line must be rejected or ignored: we reject).
            b' ' | b'\t' => return Err(HeadError::ObsFold),
            _ => {}
        }
        fields += 1;
        if fields > max_fields {
            return Err(HeadError::TooManyFields);
        }
        // Field name: tokens up to the colon, nothing in between (RFC 9112 §5.1).
        let name_start = i;
        while buf.get(i).is_some_and(|&b| is_tchar(b)) {
            i += 1;
        }
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        match b {
            b':' if i > name_start => i += 1,
            b' ' | b'\t' if i > name_start => return Err(HeadError::WhitespaceBeforeColon),
            b'\r' => {
                crlf_at(buf, i)?;
                return if buf.get(i + 1).is_some() {
                    Err(HeadError::MissingColon)
                } else {
                    Ok(None)
                };
            }
            b'\n' => return Err(HeadError::BareLf),
            0 => return Err(HeadError::Nul),
            _ => return Err(HeadError::InvalidFieldName),
        }
        // Field value: no CTL but HTAB (RFC 9110 §5.5).
        while buf.get(i).is_some_and(|&b| is_field_byte(b)) {
            i += 1;
        }
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        match b {
            b'\r' => match crlf_at(buf, i)? {
                None => return Ok(None),
                Some(()) => i += 2,
            },
            b'\n' => return Err(HeadError::BareLf),
            0 => return Err(HeadError::Nul),
            _ => return Err(HeadError::InvalidFieldValue),
        }
    }
}

/// Tokenizes the validated field lines `buf[from..head_len]` with httparse (on a stack array of
/// at most [`MAX_STACK_HEADERS`] entries) and appends them to `fields` as offsets into `buf`.
/// `expected` is the scanner's field count: the two parsers must agree.
pub(crate) fn collect_fields(
    buf: &[u8],
    from: usize,
    head_len: usize,
    max_fields: usize,
    expected: usize,
    fields: &mut Vec<Field>,
) -> Result<(), HeadError> {
    let src = buf.get(from..head_len).ok_or(HeadError::Malformed)?;
    // Most heads have few fields: initialize a small array for them, the full one otherwise.
    if expected <= SMALL_HEADERS {
        let mut storage = [httparse::EMPTY_HEADER; SMALL_HEADERS];
        let dst = &mut storage[..max_fields.min(SMALL_HEADERS)];
        let parsed = tokenize(src, dst, expected)?;
        push_fields(buf, from, head_len, parsed, fields)
    } else {
        let mut storage = [httparse::EMPTY_HEADER; MAX_STACK_HEADERS];
        let dst = &mut storage[..max_fields.min(MAX_STACK_HEADERS)];
        let parsed = tokenize(src, dst, expected)?;
        push_fields(buf, from, head_len, parsed, fields)
    }
}

/// Field counts up to which [`collect_fields`] uses the small stack array.
const SMALL_HEADERS: usize = 16;

fn tokenize<'b, 'h>(
    src: &'b [u8],
    dst: &'h mut [httparse::Header<'b>],
    expected: usize,
) -> Result<&'h [httparse::Header<'b>], HeadError> {
    let parsed: &[httparse::Header<'b>] = match httparse::parse_headers(src, dst) {
        Ok(httparse::Status::Complete((len, parsed))) if len == src.len() => parsed,
        Ok(_) => return Err(HeadError::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(_) => return Err(HeadError::Malformed),
    };
    if parsed.len() != expected {
        return Err(HeadError::Malformed);
    }
    Ok(parsed)
}

fn push_fields(
    buf: &[u8],
    from: usize,
    head_len: usize,
    parsed: &[httparse::Header<'_>],
    fields: &mut Vec<Field>,
) -> Result<(), HeadError> {
    let base = buf.as_ptr().addr();
    let offset_of = |s: &[u8]| -> Result<Span, HeadError> {
        let start = s
            .as_ptr()
            .addr()
            .checked_sub(base)
            .ok_or(HeadError::Malformed)?;
        let end = start + s.len();
        if start < from || end > head_len {
            return Err(HeadError::Malformed);
        }
        Ok(Span::new(start, end))
    };
    for h in parsed {
        let name = offset_of(h.name.as_bytes())?;
        let value = if h.value.is_empty() {
            Span::new(name.end + 1, name.end + 1)
        } else {
            let raw = offset_of(h.value)?;
            trim_span(buf, raw)
        };
        fields.push(Field {
            name,
            value,
            kind: FieldKind::classify(name.get(buf)),
            hop: false,
        });
    }
    Ok(())
}

/// Narrows a span to its OWS-trimmed content.
fn trim_span(buf: &[u8], mut span: Span) -> Span {
    while span.start < span.end && matches!(buf.get(span.start), Some(b' ' | b'\t')) {
        span.start += 1;
    }
    while span.end > span.start && matches!(buf.get(span.end - 1), Some(b' ' | b'\t')) {
        span.end -= 1;
    }
    span
}

/// Folds one Content-Length field value into `acc` (RFC 9110 §8.6, RFC 9112 §6.3): the value
/// is a list of decimal numbers (`42, 42` is a legal repetition), and every number seen across
/// all Content-Length fields must be equal. Anything else (sign, hex, decimal point, empty
/// element, inner space, overflow) is an error.
pub(crate) fn fold_content_length(value: &[u8], acc: &mut Option<u64>) -> Result<(), HeadError> {
    for element in list_elements(value) {
        if element.is_empty() {
            return Err(HeadError::InvalidContentLength);
        }
        let mut n: u64 = 0;
        for &b in element {
            if !b.is_ascii_digit() {
                return Err(HeadError::InvalidContentLength);
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or(HeadError::InvalidContentLength)?;
        }
        match *acc {
            Some(prev) if prev != n => return Err(HeadError::DifferingContentLength),
            _ => *acc = Some(n),
        }
    }
    Ok(())
}

/// Transfer codings ringway recognises (RFC 9110 §8.4.1, RFC 9112 §7); the body is forwarded
/// as-is, so only chunked is ever decoded.
const KNOWN_CODINGS: [&[u8]; 6] = [
    b"gzip",
    b"x-gzip",
    b"deflate",
    b"compress",
    b"x-compress",
    b"chunked",
];

/// Validates a Transfer-Encoding value for message framing (RFC 9112 §6.1, §6.3): a list of
/// known codings without parameters or empty elements, chunked exactly once, and last.
pub(crate) fn check_transfer_encoding(value: &[u8]) -> Result<(), HeadError> {
    let mut chunked = 0usize;
    let mut last_chunked = false;
    let mut unknown = false;
    for coding in list_elements(value) {
        if !is_token(coding) {
            return Err(HeadError::InvalidTransferEncoding);
        }
        last_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if last_chunked {
            chunked += 1;
        } else if !KNOWN_CODINGS.iter().any(|k| k.eq_ignore_ascii_case(coding)) {
            unknown = true;
        }
    }
    if unknown {
        Err(HeadError::UnknownTransferCoding)
    } else if chunked > 1 {
        Err(HeadError::DuplicateChunked)
    } else if !last_chunked {
        Err(HeadError::TransferEncodingNotChunked)
    } else {
        Ok(())
    }
}

/// Writes a validated Transfer-Encoding value normalized: lowercase codings joined by ", ".
pub(crate) fn write_transfer_encoding(value: &[u8], out: &mut Vec<u8>) {
    for (i, coding) in list_elements(value).enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend(coding.iter().map(u8::to_ascii_lowercase));
    }
}

/// The connection options of a head (RFC 9112 §9.3, RFC 9110 §7.6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnectionOptions {
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    /// The `upgrade` option (RFC 9110 §7.8): the Upgrade field is meant for this hop.
    pub(crate) upgrade: bool,
}

/// Reads every Connection field: records `close`, `keep-alive` and `upgrade`, and marks each
/// field named by another option (`upgrade` included) as hop-by-hop. Elements that are not tokens cannot name a field and are
/// ignored; more than [`MAX_CONNECTION_OPTIONS`] options is an error.
pub(crate) fn apply_connection(
    buf: &[u8],
    fields: &mut [Field],
) -> Result<ConnectionOptions, HeadError> {
    let mut opts = ConnectionOptions::default();
    let mut count = 0usize;
    for idx in 0..fields.len() {
        let Some(field) = fields.get(idx) else { break };
        if field.kind != FieldKind::Connection {
            continue;
        }
        for option in list_elements(field.value.get(buf)) {
            if !is_token(option) {
                continue;
            }
            count += 1;
            if count > MAX_CONNECTION_OPTIONS {
                return Err(HeadError::TooManyConnectionOptions);
            }
            if option.eq_ignore_ascii_case(b"close") {
                opts.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                opts.keep_alive = true;
            } else {
                opts.upgrade |= option.eq_ignore_ascii_case(b"upgrade");
                for f in fields.iter_mut() {
                    let name = f.name.get(buf);
                    if name.len() == option.len() && name.eq_ignore_ascii_case(option) {
                        f.hop = true;
                    }
                }
            }
        }
    }
    Ok(opts)
}

/// Parses `HTTP/x.y` (RFC 9112 §2.3): `Ok(Some((major, minor)))`, `Ok(None)` for something that
/// is not an HTTP-version at all. The name is case-sensitive.
pub(crate) fn parse_version(v: &[u8]) -> Option<(u8, u8)> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Some((major - b'0', minor - b'0'))
        }
        _ => None,
    }
}

/// Validates `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a non-empty reg-name
/// (unreserved, pct-encoded, sub-delims), an IPv4 address (a reg-name syntactically) or a
/// bracketed IPv6 literal, then optionally a colon and a 1-5 digit port up to 65535.
/// Userinfo (`@`) is not part of the grammar and is rejected.
pub(crate) fn is_valid_authority(a: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = a.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, after) = rest.split_at(close);
        let ok_literal = literal.len() >= 2
            && literal.contains(&b':')
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok_literal {
            return false;
        }
        // `after` starts with ']'.
        let after = after.get(1..).unwrap_or(&[]);
        match after {
            [] => return true,
            [b':', port @ ..] => (None, Some(port)),
            _ => return false,
        }
    } else {
        match a.iter().rposition(|&b| b == b':') {
            Some(colon) => (a.get(..colon), a.get(colon + 1..)),
            None => (Some(a), None),
        }
    };
    if let Some(host) = host
        && !is_reg_name(host)
    {
        return false;
    }
    match port {
        None => true,
        Some(p) => {
            (1..=5).contains(&p.len())
                && p.iter().all(u8::is_ascii_digit)
                && p.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= 65535
        }
    }
}

fn is_reg_name(host: &[u8]) -> bool {
    if host.is_empty() {
        return false;
    }
    let mut i = 0;
    while let Some(&b) = host.get(i) {
        let ok = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        if ok {
            i += 1;
        } else if b == b'%'
            && host.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && host.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            i += 3;
        } else {
            return false;
        }
    }
    true
}

/// Appends `name: value\r\n`.
pub(crate) fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends a decimal number without allocating.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(&[]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_is_case_insensitive() {
        assert_eq!(FieldKind::classify(b"HoSt"), FieldKind::Host);
        assert_eq!(FieldKind::classify(b"TE"), FieldKind::Te);
        assert_eq!(
            FieldKind::classify(b"Transfer-Encoding"),
            FieldKind::TransferEncoding
        );
        assert_eq!(FieldKind::classify(b"Hosts"), FieldKind::Other);
    }

    #[test]
    fn trim_and_list() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
        let v: Vec<&[u8]> = list_elements(b"a, b ,,c").collect();
        assert_eq!(v, [&b"a"[..], b"b", b"", b"c"]);
    }

    #[test]
    fn content_length_folding() {
        let mut acc = None;
        assert_eq!(fold_content_length(b"42, 42", &mut acc), Ok(()));
        assert_eq!(acc, Some(42));
        assert_eq!(fold_content_length(b"42", &mut acc), Ok(()));
        assert_eq!(
            fold_content_length(b"43", &mut acc),
            Err(HeadError::DifferingContentLength)
        );
        let mut acc = None;
        assert_eq!(
            fold_content_length(b"18446744073709551615", &mut acc),
            Ok(())
        );
        assert_eq!(acc, Some(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b"-1",
            b"+5",
            b"0x10",
            b"1.5",
            b"",
            b"1 0",
            b"5,",
        ] {
            assert_eq!(
                fold_content_length(bad, &mut None),
                Err(HeadError::InvalidContentLength),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn transfer_encoding_rules() {
        assert_eq!(check_transfer_encoding(b"chunked"), Ok(()));
        assert_eq!(check_transfer_encoding(b"gzip, CHUNKED"), Ok(()));
        assert_eq!(
            check_transfer_encoding(b"gzip"),
            Err(HeadError::TransferEncodingNotChunked)
        );
        assert_eq!(
            check_transfer_encoding(b"chunked, gzip"),
            Err(HeadError::TransferEncodingNotChunked)
        );
        assert_eq!(
            check_transfer_encoding(b"chunked, chunked"),
            Err(HeadError::DuplicateChunked)
        );
        assert_eq!(
            check_transfer_encoding(b"xchunked"),
            Err(HeadError::UnknownTransferCoding)
        );
        assert_eq!(
            check_transfer_encoding(b"identity"),
            Err(HeadError::UnknownTransferCoding)
        );
        assert_eq!(
            check_transfer_encoding(b""),
            Err(HeadError::InvalidTransferEncoding)
        );
        assert_eq!(
            check_transfer_encoding(b", chunked"),
            Err(HeadError::InvalidTransferEncoding)
        );
        assert_eq!(
            check_transfer_encoding(b"chunked;q=1"),
            Err(HeadError::InvalidTransferEncoding)
        );
        let mut out = Vec::new();
        write_transfer_encoding(b"GZip ,Chunked", &mut out);
        assert_eq!(out, b"gzip, chunked");
    }

    #[test]
    fn authority_grammar() {
        for ok in [
            &b"a"[..],
            b"example.com",
            b"example.com:8080",
            b"1.2.3.4",
            b"1.2.3.4:80",
            b"[::1]",
            b"[::1]:443",
            b"[2001:db8::1]",
            b"xn--bcher-kva.example",
            b"a%20b",
            b"a:65535",
        ] {
            assert!(is_valid_authority(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b""[..],
            b":80",
            b"a:",
            b"a:65536",
            b"a:123456",
            b"a:b",
            b"a b",
            b"a/b",
            b"u@a",
            b"[::1",
            b"[::1]x",
            b"[]",
            b"[zz::1]",
            b"a%2",
            b"a\"b",
            b"a\\b",
            b"a:1:2",
        ] {
            assert!(
                !is_valid_authority(bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn version_grammar() {
        assert_eq!(parse_version(b"HTTP/1.1"), Some((1, 1)));
        assert_eq!(parse_version(b"HTTP/2.0"), Some((2, 0)));
        assert_eq!(parse_version(b"http/1.1"), None);
        assert_eq!(parse_version(b"HTTP/1.10"), None);
        assert_eq!(parse_version(b"HTTP/1"), None);
    }

    #[test]
    fn u64_formatting() {
        for n in [0u64, 7, 10, 4096, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn start_line_limits() {
        assert_eq!(find_start_line(b"abc\r\n", 0, 5, 100), Ok(Some(5)));
        assert_eq!(
            find_start_line(b"abcd\r\n", 0, 5, 100),
            Err(LineError::TooLong)
        );
        assert_eq!(find_start_line(b"abcde", 0, 5, 100), Ok(None));
        assert_eq!(
            find_start_line(b"abcdef", 0, 5, 100),
            Err(LineError::TooLong)
        );
        assert_eq!(find_start_line(b"abc\r", 0, 5, 100), Ok(None));
        assert_eq!(
            find_start_line(b"abc\rx", 0, 5, 100),
            Err(LineError::Head(HeadError::BareCr))
        );
        assert_eq!(
            find_start_line(b"abc\n", 0, 5, 100),
            Err(LineError::Head(HeadError::BareLf))
        );
        assert_eq!(
            find_start_line(b"a\0c\r\n", 0, 5, 100),
            Err(LineError::Head(HeadError::Nul))
        );
    }
}
