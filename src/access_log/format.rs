//! How a [`Record`] is spelled: one line of JSON, or one line of the Apache/nginx combined
//! format ([`Format`]), appended to a byte buffer.
//!
//! This module owns the line formats: their field names and order, how values are written
//! (times in UTC, durations in milliseconds, addresses) and how strings are escaped. It is
//! sans-IO and serde-free: [`Format::write`] appends bytes to a `Vec<u8>` by hand, allocating
//! only when the buffer grows.
//!
//! Invariants of every line written:
//! - it ends with one `\n` and holds no other `\n` or `\r`: every string is escaped, so a line
//!   is one record whatever a client sent;
//! - JSON: one object, valid JSON and UTF-8, every key of [`JSON_KEYS`] present, in that
//!   order, with `null` for an absent value; strings escape `"`, `\`, control characters
//!   (`\u00XX`, DEL included) and U+2028/U+2029 (so a line is also a valid JavaScript
//!   literal);
//! - combined: printable ASCII only: inside quoted fields `"`, `\`, control characters and
//!   bytes outside ASCII are written `\xHH`, as nginx writes them.
//!
//! # JSON
//!
//! ```text
//! {"time":"2026-12-01T16:20:01.123Z","client":"192.0.2.10:51234","client_ip":"192.0.2.10",
//!  "tls_version":"TLSv1.3","cipher":"TLS13_AES_128_GCM_SHA256","sni":"api.example.com",
//!  "resumed":false,"method":"GET","host":"api.example.com","target":"/v1/items?id=7",
//!  "status":200,"bytes_in":312,"bytes_out":5120,"upstream":"api","backend":"10.0.0.21:8080",
//!  "attempts":1,"duration_ms":12.345,"connect_ms":0.512,"first_byte_ms":11.002,
//!  "request_id":"9f2c41d07ab35e6c0000000000004e2a","user_agent":"curl/8.5.0","termination":"complete"}
//! ```
//!
//! (one line in the file). `time` is RFC 3339 in UTC with milliseconds (truncated);
//! `client`, `backend` are `ip:port` (`[v6]:port`), `client_ip` the bare address (an
//! IPv4-mapped IPv6 address is written as IPv4); `*_ms` are milliseconds with three decimals
//! (microseconds, truncated); `method`, `host` and `target` are `null` when empty (a
//! connection-level record); `status` is 0 when no response was sent; `termination` is
//! `side/reason` or `complete` (see [`super::record`]).
//!
//! # Combined
//!
//! ```text
//! 192.0.2.10 - - [01/Dec/2026:16:20:01 +0000] "GET /v1/items?id=7 HTTP/1.1" 200 5120 "-" "curl/8.5.0"
//! ```
//!
//! The client's address, `-` for identity and user, the time in UTC, the request line (always
//! `HTTP/1.1`; `"-"` for a connection-level record), the status (0 when none was sent),
//! `bytes_out` (head included, like Apache's `%O`, not nginx's `$body_bytes_sent`), the
//! referer (not tracked: `"-"`) and the user agent (`"-"` when absent).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use super::record::{Record, Side};

/// The keys of a JSON line, in the order they are written.
pub const JSON_KEYS: [&str; 22] = [
    "time",
    "client",
    "client_ip",
    "tls_version",
    "cipher",
    "sni",
    "resumed",
    "method",
    "host",
    "target",
    "status",
    "bytes_in",
    "bytes_out",
    "upstream",
    "backend",
    "attempts",
    "duration_ms",
    "connect_ms",
    "first_byte_ms",
    "request_id",
    "user_agent",
    "termination",
];

/// A line format. TOML and [`FromStr`]/[`fmt::Display`]: `"json"`, `"combined"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// One JSON object per line, every field always present.
    #[default]
    Json,
    /// The Apache/nginx combined log format.
    Combined,
}

/// Why a string is not a [`Format`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an access log format (expected \"json\" or \"combined\")")]
pub struct UnknownFormat(pub String);

impl Format {
    /// The format's name: `json` or `combined`.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Combined => "combined",
        }
    }

    /// Appends `record` to `out` as one line ending with `\n`.
    pub fn write(self, record: &Record<'_>, out: &mut Vec<u8>) {
        match self {
            Format::Json => write_json(record, out),
            Format::Combined => write_combined(record, out),
        }
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "json" => Ok(Format::Json),
            "combined" => Ok(Format::Combined),
            _ => Err(UnknownFormat(text.to_owned())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

fn write_json(r: &Record<'_>, out: &mut Vec<u8>) {
    let client = canonical(r.client);
    out.extend_from_slice(b"{\"time\":\"");
    push_rfc3339(out, r.time);
    out.extend_from_slice(b"\",\"client\":\"");
    push_addr(out, client);
    out.extend_from_slice(b"\",\"client_ip\":\"");
    push_ip(out, client.ip());
    out.extend_from_slice(b"\",\"tls_version\":");
    push_json_opt(out, r.tls_version);
    out.extend_from_slice(b",\"cipher\":");
    push_json_opt(out, r.cipher);
    out.extend_from_slice(b",\"sni\":");
    push_json_opt(out, r.sni);
    out.extend_from_slice(b",\"resumed\":");
    out.extend_from_slice(if r.resumed { b"true" } else { b"false" });
    out.extend_from_slice(b",\"method\":");
    push_json_opt(out, non_empty(r.method));
    out.extend_from_slice(b",\"host\":");
    push_json_opt(out, non_empty(r.host));
    out.extend_from_slice(b",\"target\":");
    push_json_opt(out, non_empty(r.target));
    out.extend_from_slice(b",\"status\":");
    push_u64(out, u64::from(r.status));
    out.extend_from_slice(b",\"bytes_in\":");
    push_u64(out, r.bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    push_u64(out, r.bytes_out);
    out.extend_from_slice(b",\"upstream\":");
    push_json_opt(out, r.upstream);
    out.extend_from_slice(b",\"backend\":");
    match r.backend {
        Some(backend) => {
            out.push(b'"');
            push_addr(out, canonical(backend));
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"attempts\":");
    push_u64(out, u64::from(r.attempts));
    out.extend_from_slice(b",\"duration_ms\":");
    push_millis(out, r.total);
    out.extend_from_slice(b",\"connect_ms\":");
    push_opt_millis(out, r.connect);
    out.extend_from_slice(b",\"first_byte_ms\":");
    push_opt_millis(out, r.first_byte);
    out.extend_from_slice(b",\"request_id\":");
    push_json_opt(out, r.request_id);
    out.extend_from_slice(b",\"user_agent\":");
    push_json_opt(out, r.user_agent);
    out.extend_from_slice(b",\"termination\":\"");
    // Escaped like any string: the reason is the caller's.
    if r.termination.side != Side::None {
        out.extend_from_slice(r.termination.side.name().as_bytes());
        out.push(b'/');
    }
    push_json_escaped(out, r.termination.reason);
    out.extend_from_slice(b"\"}\n");
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

fn push_json_opt(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => {
            out.push(b'"');
            push_json_escaped(out, text);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// `text` as the inside of a JSON string: `"` and `\` escaped, control characters and DEL as
/// `\u00XX`, U+2028 and U+2029 as `\u2028` and `\u2029`; everything else as it is (UTF-8).
fn push_json_escaped(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let len = match b {
            b'"' | b'\\' | 0x00..=0x1f | 0x7f => 1,
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8.
            0xe2 if matches!(bytes.get(i + 1..i + 3), Some([0x80, 0xa8 | 0xa9])) => 3,
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0xe2 if bytes[i + 2] == 0xa8 => out.extend_from_slice(b"\\u2028"),
            0xe2 => out.extend_from_slice(b"\\u2029"),
            _ => {
                out.extend_from_slice(b"\\u00");
                push_hex(out, b, b"0123456789abcdef");
            }
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// RFC 3339 in UTC with milliseconds: `2026-12-01T16:20:01.123Z`. A time before 1970 (a
/// clock set wrong) is written as the epoch.
fn push_rfc3339(out: &mut Vec<u8>, time: SystemTime) {
    let (civil, millis) = civil(time);
    push_padded(out, civil.year, 4);
    out.push(b'-');
    push_padded(out, civil.month, 2);
    out.push(b'-');
    push_padded(out, civil.day, 2);
    out.push(b'T');
    push_padded(out, civil.hour, 2);
    out.push(b':');
    push_padded(out, civil.minute, 2);
    out.push(b':');
    push_padded(out, civil.second, 2);
    out.push(b'.');
    push_padded(out, millis, 3);
    out.push(b'Z');
}

fn push_opt_millis(out: &mut Vec<u8>, duration: Option<Duration>) {
    match duration {
        Some(duration) => push_millis(out, duration),
        None => out.extend_from_slice(b"null"),
    }
}

/// Milliseconds with three decimals (microseconds, truncated): `12.345`, `0.007`.
fn push_millis(out: &mut Vec<u8>, duration: Duration) {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    push_u64(out, micros / 1000);
    out.push(b'.');
    push_padded(out, micros % 1000, 3);
}

// ---------------------------------------------------------------------------------------------
// Combined

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn write_combined(r: &Record<'_>, out: &mut Vec<u8>) {
    push_ip(out, canonical(r.client).ip());
    out.extend_from_slice(b" - - [");
    let (civil, _) = civil(r.time);
    push_padded(out, civil.day, 2);
    out.push(b'/');
    // `month` is 1 to 12 by construction.
    let month = MONTHS.get(civil.month.wrapping_sub(1) as usize).copied();
    out.extend_from_slice(month.unwrap_or(b"???"));
    out.push(b'/');
    push_padded(out, civil.year, 4);
    out.push(b':');
    push_padded(out, civil.hour, 2);
    out.push(b':');
    push_padded(out, civil.minute, 2);
    out.push(b':');
    push_padded(out, civil.second, 2);
    out.extend_from_slice(b" +0000] \"");
    if r.is_connection_level() {
        out.push(b'-');
    } else {
        push_clf_escaped(out, r.method);
        out.push(b' ');
        push_clf_escaped(out, r.target);
        out.extend_from_slice(b" HTTP/1.1");
    }
    out.extend_from_slice(b"\" ");
    push_u64(out, u64::from(r.status));
    out.push(b' ');
    push_u64(out, r.bytes_out);
    out.extend_from_slice(b" \"-\" \"");
    match r.user_agent {
        Some(agent) => push_clf_escaped(out, agent),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b"\"\n");
}

/// The inside of a quoted field of the combined format, as nginx escapes it: `"`, `\`,
/// control characters, DEL and every byte outside ASCII as `\xHH` (uppercase hex).
fn push_clf_escaped(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.extend_from_slice(b"\\x");
            push_hex(out, b, b"0123456789ABCDEF");
        } else {
            out.push(b);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// `addr` with an IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4 client)
/// turned into the IPv4 address.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip().to_canonical() {
        IpAddr::V4(v4) if addr.is_ipv6() => SocketAddr::new(IpAddr::V4(v4), addr.port()),
        _ => addr,
    }
}

/// Appends `addr` as `ip:port` (`[ip]:port` for IPv6): IPv4 written digit by digit, without
/// the formatting machinery (a line has up to three addresses).
fn push_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(_) => push_ip(out, addr.ip()),
        IpAddr::V6(_) => {
            out.push(b'[');
            push_ip(out, addr.ip());
            out.push(b']');
        }
    }
    out.push(b':');
    push_u64(out, u64::from(addr.port()));
}

/// Appends `ip` (IPv4 digit by digit; IPv6 through its `Display`).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_u64(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => push_display(out, v6),
    }
}

/// Appends `value`'s `Display` form (addresses: their text has nothing to escape).
fn push_display(out: &mut Vec<u8>, value: impl fmt::Display) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail (`io::Write for Vec<u8>` always returns Ok), and the
    // `Display` of an address never errs.
    let _ = write!(out, "{value}");
}

fn push_hex(out: &mut Vec<u8>, byte: u8, digits: &[u8; 16]) {
    out.push(digits[usize::from(byte >> 4)]);
    out.push(digits[usize::from(byte & 0xf)]);
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    push_padded(out, n, 1);
}

/// The decimal digits of 0 to 99, two per number: a line writes about twenty numbers, two
/// digits per division.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `n` in decimal, left-padded with zeros to at least `width` digits (at most 20).
fn push_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        digits[start] = b'0' + n as u8;
    }
    let start = start.min(digits.len().saturating_sub(width));
    out.extend_from_slice(&digits[start..]);
}

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
}

/// `time` in UTC, and its milliseconds. Before 1970: the epoch.
fn civil(time: SystemTime) -> (Civil, u64) {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let civil = Civil {
        year,
        month,
        day,
        hour: of_day / 3600,
        minute: of_day % 3600 / 60,
        second: of_day % 60,
    };
    (civil, u64::from(since.subsec_millis()))
}

/// The proleptic Gregorian date `days` after 1970-01-01: Howard Hinnant's `civil_from_days`
/// (<https://howardhinnant.github.io/date_algorithms.html>), for days on or after the epoch.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so that a leap day ends its year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
