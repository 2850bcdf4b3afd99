//! Request heads: parsing and validation ([`parse_request`]) and re-serialization for the
//! backend ([`write_request_head`]).
//!
//! Invariants:
//! - A `Complete` parse means the request line, every field line and the framing passed every
//!   rule below; `head.body` is then the one and only reading of the message length.
//! - The head stores offsets into the caller's buffer; pass the same buffer to the accessors
//!   and to [`write_request_head`].
//! - The backend never receives raw head bytes from the client: the request line, Host,
//!   Content-Length / Transfer-Encoding and the forwarding fields are written from parsed
//!   values, whatever hop-by-hop marking the client asked for.
//! - The client-certificate fields ([`CLIENT_CERT_FIELDS`]) a client sends are always dropped,
//!   on every listener: only ringway's own, from the verified certificate, reach a backend.

use std::net::IpAddr;

use super::field::{
    self, Field, FieldKind, LineError, MAX_STACK_HEADERS, Span, is_protocol, is_tchar,
    is_valid_authority, list_elements, parse_version, write_field, write_u64,
};
use super::header_rules::HeaderRules;
use super::{BodyKind, HeadError, Limits, Method, Parsed, RequestError};

/// A parsed request head. Reusable: [`parse_request`] resets it, and once its field vector has
/// grown to the largest head seen, parsing into it again does not allocate.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: Method,
    /// Bytes of the head, from the buffer start (leading empty lines included) through the
    /// CRLF of the empty line. The body starts here.
    pub head_len: usize,
    pub body: BodyKind,
    /// The client wants the connection kept after this exchange (RFC 9112 §9.3): HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive` (and no close).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request (ignored on HTTP/1.0, RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// The request is HTTP/1.0 (anything else accepted is treated as HTTP/1.1).
    pub http10: bool,
    /// The client asks to switch protocols on this connection (RFC 9110 §7.8; a WebSocket
    /// handshake): an HTTP/1.1 request with the `upgrade` Connection option and at least one
    /// Upgrade field, every element of which is a `protocol` (`name[/version]`). The Upgrade
    /// fields and `Connection: upgrade` are then forwarded; otherwise Upgrade is dropped like
    /// any hop-by-hop field (an Upgrade without `Connection: upgrade`, on HTTP/1.0, or
    /// malformed, is no upgrade).
    pub upgrade: bool,
    method_span: Span,
    /// The origin-form (or asterisk-form) target to forward; see `path_override`.
    path: Span,
    /// Used instead of `path` when an absolute-form target has an empty path: "/" or "*"
    /// (RFC 9112 §3.2.4 for OPTIONS).
    path_override: Option<&'static [u8]>,
    /// The authority: from an absolute-form target if any, else the Host field.
    host: Span,
    /// The target was in absolute-form: `host` came from it.
    absolute: bool,
    fields: Vec<Field>,
}

impl Default for RequestHead {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestHead {
    /// An empty head; allocates nothing until fields are parsed into it.
    pub fn new() -> Self {
        Self {
            method: Method::Get,
            head_len: 0,
            body: BodyKind::Empty,
            keep_alive: false,
            expect_continue: false,
            http10: false,
            upgrade: false,
            method_span: Span::default(),
            path: Span::default(),
            path_override: None,
            host: Span::default(),
            absolute: false,
            fields: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.method = Method::Get;
        self.head_len = 0;
        self.body = BodyKind::Empty;
        self.keep_alive = false;
        self.expect_continue = false;
        self.http10 = false;
        self.upgrade = false;
        self.method_span = Span::default();
        self.path = Span::default();
        self.path_override = None;
        self.host = Span::default();
        self.absolute = false;
        self.fields.clear();
    }

    /// The request's authority (`host[:port]`), as received: the absolute-form target's
    /// authority when present, else the Host field value.
    /// Not normalized (case, trailing dot, default port): routing compares it itself.
    pub fn host<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.host.get(buf)
    }

    /// The value of the client's first `X-Request-Id` field, if it sent one (and did not name
    /// it in `Connection`).
    pub fn request_id<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.kind == FieldKind::RequestId && !f.hop)
            .map(|f| f.value.get(buf))
    }

    /// The protocols an [upgrade](RequestHead::upgrade) request offers, copied out of `buf`:
    /// the elements of its Upgrade fields, in order, as one comma-separated list (empty for
    /// any other request). Kept for checking the 101 after the head is consumed.
    pub fn upgrade_offer(&self, buf: &[u8]) -> Vec<u8> {
        let mut offer = Vec::new();
        let upgrade_fields = self
            .fields
            .iter()
            .filter(|f| self.upgrade && f.kind == FieldKind::Upgrade);
        for element in upgrade_fields.flat_map(|f| field::list_elements(f.value.get(buf))) {
            if !element.is_empty() {
                if !offer.is_empty() {
                    offer.push(b',');
                }
                offer.extend_from_slice(element);
            }
        }
        offer
    }

    /// The origin-form target (path and query, or `*` for OPTIONS) that is forwarded. Raw: not
    /// percent-decoded nor dot-segment normalized.
    pub fn path<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        match self.path_override {
            Some(p) => p,
            None => self.path.get(buf),
        }
    }

    /// The method token as received (useful for [`Method::Other`]).
    pub fn method_bytes<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.method_span.get(buf)
    }

    /// The header fields as received (name, OWS-trimmed value), in order.
    pub fn headers<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.fields
            .iter()
            .map(move |f| (f.name.get(buf), f.value.get(buf)))
    }
}

/// Parses and validates the request head at the front of `buf` into `head`.
///
/// `Ok(Partial)`: the head is incomplete; call again with the same buffer plus more bytes.
/// `Ok(Complete)`: `head` describes the request; its body starts at `head.head_len`.
/// `Err(e)`: answer `e.status()` and close. `head` is unspecified after `Partial` or `Err`.
///
/// Host (RFC 9112 §3.2): exactly one valid Host field, on HTTP/1.0 too (it is forwarded as 1.1).
/// With an absolute-form target the host is the target's authority and a missing Host field
/// is tolerated (a present one must still be single and valid).
///
/// Limits: a buffer holding more than `max_request_line` bytes with no complete request line
/// is 414; more than `max_head` bytes with no complete head, or more than `max_headers`
/// fields, is 431; a Content-Length over a nonzero `max_body` is 413.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
    head: &mut RequestHead,
) -> Result<Parsed, RequestError> {
    head.reset();
    // RFC 9112 §2.2: ignore empty lines received before the request line.
    let mut start = 0;
    while start < limits.max_head && buf.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    let line_end =
        match field::find_start_line(buf, start, limits.max_request_line, limits.max_head) {
            Ok(Some(end)) => end,
            Ok(None) => return Ok(Parsed::Partial),
            Err(LineError::TooLong) => return Err(RequestError::UriTooLong),
            Err(LineError::Head(e)) => return Err(e.into()),
        };
    // Validate the request line as soon as it is complete: garbage is refused early.
    let line = buf.get(start..line_end - 2).unwrap_or(&[]);
    parse_request_line(line, start, head)?;

    let max_fields = limits.max_headers.min(MAX_STACK_HEADERS);
    let Some((head_len, count)) = field::scan_fields(buf, line_end, limits.max_head, max_fields)?
    else {
        return Ok(Parsed::Partial);
    };
    field::collect_fields(buf, line_end, head_len, max_fields, count, &mut head.fields)?;
    head.head_len = head_len;
    check_fields(buf, limits, head)?;
    Ok(Parsed::Complete)
}

/// RFC 9112 §3: `method SP request-target SP HTTP-version`, single spaces, nothing else.
/// `offset` is where `line` starts in the buffer (spans are buffer offsets).
fn parse_request_line(
    line: &[u8],
    offset: usize,
    head: &mut RequestHead,
) -> Result<(), RequestError> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::MalformedRequestLine);
    };
    // An empty part means two spaces in a row (or a leading space).
    if method.is_empty() || target.is_empty() || version.is_empty() {
        return Err(RequestError::MalformedRequestLine);
    }
    // RFC 9112 §2.3; RFC 9110 §6.2: a higher minor version of 1 is processed as 1.1.
    match parse_version(version) {
        None => return Err(RequestError::MalformedVersion),
        Some((1, minor)) => head.http10 = minor == 0,
        Some(_) => return Err(RequestError::UnsupportedVersion),
    }
    if !method.iter().all(|&b| is_tchar(b)) {
        return Err(RequestError::InvalidMethod);
    }
    head.method = Method::from_bytes(method);
    head.method_span = Span::new(offset, offset + method.len());
    let target_start = offset + method.len() + 1;
    parse_target(target, target_start, head)
}

/// Classifies and validates the request-target (RFC 9112 §3.2).
fn parse_target(target: &[u8], offset: usize, head: &mut RequestHead) -> Result<(), RequestError> {
    // Visible ASCII only; a fragment is never sent (RFC 9112 §3.2, RFC 3986 §3.5).
    for &b in target {
        if b == b'#' {
            return Err(RequestError::FragmentInTarget);
        }
        if !(0x21..=0x7e).contains(&b) {
            return Err(RequestError::InvalidTarget);
        }
    }
    let whole = Span::new(offset, offset + target.len());
    if head.method == Method::Connect {
        // RFC 9112 §3.2.3: CONNECT takes authority-form (host and port) only.
        let has_port = target.iter().rposition(|&b| b == b':').is_some_and(|c| {
            // The colon must follow the host, not sit inside an IPv6 literal.
            target
                .get(..c)
                .is_some_and(|h| !h.starts_with(b"[") || h.ends_with(b"]"))
        });
        if !has_port || !is_valid_authority(target) {
            return Err(RequestError::InvalidTarget);
        }
        return Err(RequestError::ConnectNotSupported);
    }
    match target.first() {
        // origin-form (RFC 9112 §3.2.1)
        Some(b'/') => {
            head.path = whole;
            Ok(())
        }
        // asterisk-form (RFC 9112 §3.2.4): OPTIONS only.
        Some(b'*') if target.len() == 1 => {
            if head.method != Method::Options {
                return Err(RequestError::AsteriskNotOptions);
            }
            head.path = whole;
            Ok(())
        }
        _ => parse_absolute_form(target, offset, head),
    }
}

/// absolute-form (RFC 9112 §3.2.2): `http[s]://authority[path-abempty][?query]`. The host comes
/// from the authority (the Host field is then ignored, though still validated).
fn parse_absolute_form(
    target: &[u8],
    offset: usize,
    head: &mut RequestHead,
) -> Result<(), RequestError> {
    let has_prefix = |p: &[u8]| {
        target
            .get(..p.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(p))
    };
    let scheme_len = if has_prefix(b"http://") {
        7
    } else if has_prefix(b"https://") {
        8
    } else if is_valid_authority(target) {
        return Err(RequestError::AuthorityFormNotConnect);
    } else {
        return Err(RequestError::InvalidTarget);
    };
    let rest = target.get(scheme_len..).unwrap_or(&[]);
    let auth_len = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(auth_len);
    // RFC 9110 §4.2.4: userinfo is an error; is_valid_authority also refuses empty hosts.
    if !is_valid_authority(authority) {
        return Err(RequestError::InvalidHost);
    }
    let auth_start = offset + scheme_len;
    head.absolute = true;
    head.host = Span::new(auth_start, auth_start + auth_len);
    match path.first() {
        Some(b'/') => head.path = Span::new(auth_start + auth_len, offset + target.len()),
        None if head.method == Method::Options => head.path_override = Some(b"*"),
        None => head.path_override = Some(b"/"),
        // `http://a?q`: the origin-form would be `/?q`, not a slice of the buffer. Legal but
        // not sent by real clients; refused rather than rebuilt.
        Some(_) => return Err(RequestError::InvalidTarget),
    }
    Ok(())
}

/// The field-level rules: Host (RFC 9112 §3.2), framing (RFC 9112 §6), connection options
/// (RFC 9112 §9.3), Expect (RFC 9110 §10.1.1).
fn check_fields(buf: &[u8], limits: &Limits, head: &mut RequestHead) -> Result<(), RequestError> {
    let mut host_field: Option<Span> = None;
    let mut content_length: Option<u64> = None;
    let mut te_value: Option<&[u8]> = None;
    let mut expect_continue = false;
    // Upgrade fields seen, and whether every element of them is a protocol.
    let (mut upgrade_fields, mut upgrade_valid) = (false, true);
    for f in &head.fields {
        let value = f.value.get(buf);
        match f.kind {
            FieldKind::Host => {
                if host_field.is_some() {
                    return Err(RequestError::DuplicateHost);
                }
                if !is_valid_authority(value) {
                    return Err(RequestError::InvalidHost);
                }
                host_field = Some(f.value);
            }
            FieldKind::ContentLength => field::fold_content_length(value, &mut content_length)?,
            FieldKind::TransferEncoding => {
                // Two field lines could legally be one list, but splitting framing across
                // lines is a smuggling pattern: refuse it (checked before either value).
                if te_value.is_some() {
                    return Err(HeadError::DuplicateTransferEncoding.into());
                }
                te_value = Some(value);
            }
            FieldKind::Expect => {
                expect_continue |=
                    list_elements(value).any(|e| e.eq_ignore_ascii_case(b"100-continue"));
            }
            FieldKind::Upgrade => {
                upgrade_fields = true;
                upgrade_valid &= list_elements(value).all(|e| e.is_empty() || is_protocol(e))
                    && list_elements(value).any(|e| !e.is_empty());
            }
            _ => {}
        }
    }
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
    // An absolute-form target already set the host; the Host field is then only validated.
    // HTTP/1.0 does not require Host (RFC 9112 §3.2 is for 1.1), but ringway forwards every
    // request as HTTP/1.1, which does: without one there is nothing valid to forward.
    if !head.absolute {
        match host_field {
            Some(h) => head.host = h,
            None => return Err(RequestError::MissingHost),
        }
    }
    head.body = if transfer_encoding {
        BodyKind::Chunked
    } else if let Some(n) = content_length {
        if limits.max_body != 0 && n > limits.max_body {
            return Err(RequestError::BodyTooLarge);
        }
        BodyKind::Length(n)
    } else {
        BodyKind::Empty
    };
    let opts = field::apply_connection(buf, &mut head.fields)?;
    head.keep_alive = !opts.close && (!head.http10 || opts.keep_alive);
    head.expect_continue = expect_continue && !head.http10;
    // RFC 9110 §7.8: an Upgrade on HTTP/1.0 is ignored; one not named by Connection was not
    // meant for this hop.
    head.upgrade = opts.upgrade && upgrade_fields && upgrade_valid && !head.http10;
    Ok(())
}

/// The fields ringway writes about a client's certificate, as it writes them. A client's own
/// fields of these names are never forwarded.
pub const CLIENT_CERT_FIELDS: [&str; 4] = [
    "X-Client-Verify",
    "X-Client-Cert-Subject",
    "X-Client-Cert-SAN",
    "X-Client-Cert-Fingerprint",
];

/// Who the request came from, for the forwarding fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarding<'a> {
    pub client_ip: IpAddr,
    /// The scheme the client used, e.g. `"https"`.
    pub proto: &'static str,
    /// The `X-Request-Id` to send instead of the client's (`None`: the client's, if any, is
    /// forwarded as it came).
    pub request_id: Option<&'a [u8]>,
    /// What the backend is told of the client's certificate.
    pub client_cert: ClientCertFields<'a>,
}

/// What the backend is told of the client's certificate. The values are the caller's, each
/// already a valid field value (visible ASCII and spaces).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientCertFields<'a> {
    /// The listener asks for no certificate: no field is written.
    #[default]
    Off,
    /// The listener asked; the client sent none: `X-Client-Verify: NONE`.
    NoCertificate,
    /// The client's certificate was verified: `X-Client-Verify: SUCCESS`, then
    /// `X-Client-Cert-Subject` and `X-Client-Cert-SAN` (each when not empty) and
    /// `X-Client-Cert-Fingerprint`.
    Verified {
        /// RFC 4514 subject.
        subject: &'a str,
        /// subjectAltNames, comma-separated.
        san: &'a str,
        /// SHA-256 of the certificate's DER, lowercase hex.
        fingerprint: &'a str,
    },
}

impl ClientCertFields<'_> {
    /// Bytes these fields add to a head, at most.
    pub fn len(&self) -> usize {
        match self {
            Self::Off => 0,
            Self::NoCertificate => 24,
            Self::Verified {
                subject,
                san,
                fingerprint,
            } => 120 + subject.len() + san.len() + fingerprint.len(),
        }
    }

    /// True when no field is written.
    pub fn is_empty(&self) -> bool {
        *self == Self::Off
    }

    fn write(&self, out: &mut Vec<u8>) {
        let [verify, subject_name, san_name, fingerprint_name] = CLIENT_CERT_FIELDS;
        match *self {
            Self::Off => {}
            Self::NoCertificate => write_field(out, verify.as_bytes(), b"NONE"),
            Self::Verified {
                subject,
                san,
                fingerprint,
            } => {
                write_field(out, verify.as_bytes(), b"SUCCESS");
                for (name, value) in [
                    (subject_name, subject),
                    (san_name, san),
                    (fingerprint_name, fingerprint),
                ] {
                    if !value.is_empty() {
                        write_field(out, name.as_bytes(), value.as_bytes());
                    }
                }
            }
        }
    }
}

/// Appends the head to send to the backend to `out`. Never copies the head verbatim:
///
/// 1. `METHOD SP origin-form SP HTTP/1.1` (absolute-form reduced to origin-form),
/// 2. `Host` (the absolute-form authority, else the Host field),
/// 3. every other field in order, except hop-by-hop ones — Connection, Keep-Alive,
///    Proxy-Connection, TE, Trailer, Upgrade and any field named in Connection (RFC 9110
///    §7.6.1) — and except the fields rewritten below (and Expect on HTTP/1.0, which is ignored);
///    the Upgrade fields of an [upgrade](RequestHead::upgrade) request are kept, and
///    `Connection: upgrade` is written after the framing;
/// 4. the framing, from the parsed [`BodyKind`]: `Transfer-Encoding` (normalized) for chunked
///    (the body is forwarded with its chunk framing), else one `Content-Length`;
/// 5. `X-Forwarded-For` (earlier values merged into one field, then the client),
///    `X-Forwarded-Proto` and `X-Forwarded-Host` (replaced), and `Forwarded` (RFC 7239; earlier
///    values merged into one field, then this hop's element);
/// 6. the client-certificate fields ([`ClientCertFields`]; the client's own are never copied).
///
/// No other Connection field is sent: the backend connection is kept alive (HTTP/1.1 default)
/// unless it switches protocols.
pub fn write_request_head(buf: &[u8], head: &RequestHead, fwd: &Forwarding, out: &mut Vec<u8>) {
    write_request_head_with(buf, head, fwd, &HeaderRules::default(), out);
}

/// [`write_request_head`], with header `rules` applied: the fields they remove or set are
/// left out of the client's, and theirs are written after them.
pub fn write_request_head_with(
    buf: &[u8],
    head: &RequestHead,
    fwd: &Forwarding,
    rules: &HeaderRules,
    out: &mut Vec<u8>,
) {
    let host = head.host(buf);
    out.extend_from_slice(head.method_bytes(buf));
    out.push(b' ');
    out.extend_from_slice(head.path(buf));
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_field(out, b"Host", host);

    let mut te_value: &[u8] = b"chunked";
    for f in &head.fields {
        match f.kind {
            FieldKind::TransferEncoding => te_value = f.value.get(buf),
            // End-to-end fields, unless Connection named them or a rule drops them. Expect is
            // ignored on HTTP/1.0.
            FieldKind::Other if !f.hop && !rules.drops(f.name.get(buf)) => {
                write_field(out, f.name.get(buf), f.value.get(buf));
            }
            FieldKind::Expect if !f.hop && !head.http10 => {
                write_field(out, f.name.get(buf), f.value.get(buf));
            }
            FieldKind::RequestId if !f.hop && fwd.request_id.is_none() => {
                write_field(out, f.name.get(buf), f.value.get(buf));
            }
            // Named by `Connection: upgrade`, so hop-by-hop, and meant for this hop and the
            // next alike: the backend decides whether to switch.
            FieldKind::Upgrade if head.upgrade => {
                write_field(out, f.name.get(buf), f.value.get(buf));
            }
            // Host, framing and forwarding fields are written below from parsed values;
            // hop-by-hop fields are never forwarded.
            _ => {}
        }
    }
    match head.body {
        BodyKind::Chunked => {
            out.extend_from_slice(b"Transfer-Encoding: ");
            field::write_transfer_encoding(te_value, out);
            out.extend_from_slice(b"\r\n");
        }
        BodyKind::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            write_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyKind::Empty | BodyKind::CloseDelimited => {}
    }
    if head.upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    }

    let ip = fwd.client_ip.to_canonical();
    rules.write_added(out);
    if let Some(id) = fwd.request_id {
        write_field(out, b"X-Request-Id", id);
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    write_merged(buf, head, FieldKind::XForwardedFor, out);
    write_ip(out, ip);
    out.extend_from_slice(b"\r\n");
    write_field(out, b"X-Forwarded-Proto", fwd.proto.as_bytes());
    if !host.is_empty() {
        write_field(out, b"X-Forwarded-Host", host);
    }
    out.extend_from_slice(b"Forwarded: ");
    write_merged(buf, head, FieldKind::Forwarded, out);
    out.extend_from_slice(b"for=");
    match ip {
        IpAddr::V4(_) => write_ip(out, ip),
        IpAddr::V6(_) => {
            out.extend_from_slice(b"\"[");
            write_ip(out, ip);
            out.extend_from_slice(b"]\"");
        }
    }
    if !host.is_empty() {
        out.extend_from_slice(b";host=");
        write_forwarded_value(out, host);
    }
    out.extend_from_slice(b";proto=");
    write_forwarded_value(out, fwd.proto.as_bytes());
    out.extend_from_slice(b"\r\n");
    fwd.client_cert.write(out);
    out.extend_from_slice(b"\r\n");
}

/// Writes the non-empty values of every forwardable field of `kind`, each followed by ", ".
fn write_merged(buf: &[u8], head: &RequestHead, kind: FieldKind, out: &mut Vec<u8>) {
    for f in head.fields.iter().filter(|f| f.kind == kind && !f.hop) {
        let value = f.value.get(buf);
        if !value.is_empty() {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
}

fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        // Every request writes its client's address twice: IPv4 without `core::fmt`.
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(_) => {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{ip}");
        }
    }
}

#[cfg(test)]
#[test]
fn ipv4_is_written_like_display() {
    let every_octet = (0..=255u8).map(|o| IpAddr::from([o, 255 - o, o / 2, 7]));
    let fixed = ["0.0.0.0", "10.0.99.100", "255.255.255.255"].map(|ip| ip.parse().expect("ip"));
    for ip in every_octet.chain(fixed) {
        let mut out = Vec::new();
        write_ip(&mut out, ip);
        assert_eq!(out, ip.to_string().as_bytes());
    }
}

/// RFC 7239 §4: a value is a token or a quoted-string.
fn write_forwarded_value(out: &mut Vec<u8>, value: &[u8]) {
    if field::is_token(value) {
        out.extend_from_slice(value);
        return;
    }
    out.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests;
