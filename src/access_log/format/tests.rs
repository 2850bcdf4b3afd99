//! The line formats: exact lines for a sample record, escaping, every JSON line parsing with
//! every key, absent fields as `null`, one line per record whatever the strings hold, and the
//! calendar.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::super::record::{Record, Termination};
use super::*;

/// 2026-12-01T16:20:01.123456789Z.
fn sample_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::new(1_796_142_001, 123_456_789)
}

fn addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not an address: {e}"))
}

fn sample() -> Record<'static> {
    Record {
        time: sample_time(),
        client: addr("192.0.2.10:51234"),
        tls_version: Some("TLSv1.3"),
        cipher: Some("TLS13_AES_128_GCM_SHA256"),
        sni: Some("api.example.com"),
        resumed: false,
        method: "GET",
        host: "api.example.com",
        target: "/v1/items?id=7",
        status: 200,
        bytes_in: 312,
        bytes_out: 5120,
        upstream: Some("api"),
        backend: Some(addr("10.0.0.21:8080")),
        attempts: 1,
        total: Duration::from_nanos(12_345_678),
        connect: Some(Duration::from_micros(512)),
        first_byte: Some(Duration::from_micros(11_002)),
        request_id: Some("9f2c41d07ab35e6c0000000000004e2a"),
        user_agent: Some("curl/8.5.0"),
        termination: Termination::COMPLETE,
    }
}

fn line(format: Format, record: &Record<'_>) -> String {
    let mut out = Vec::new();
    format.write(record, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| panic!("{format} line is not UTF-8: {e}"))
}

/// The line parsed as a JSON object, after checking it is one line with every key in order.
fn parse(text: &str) -> serde_json::Map<String, serde_json::Value> {
    assert_one_line(text);
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON: {e}\n{text}"));
    let serde_json::Value::Object(object) = value else {
        panic!("not an object: {text}");
    };
    assert_eq!(object.len(), JSON_KEYS.len(), "{text}");
    let mut last = 0;
    for key in JSON_KEYS {
        assert!(object.contains_key(key), "{key} missing: {text}");
        let at = text
            .find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key} not written: {text}"));
        assert!(at >= last, "{key} out of order: {text}");
        last = at;
    }
    object
}

fn assert_one_line(text: &str) {
    assert!(text.ends_with('\n'), "no final newline: {text:?}");
    assert_eq!(
        text.matches('\n').count(),
        1,
        "more than one line: {text:?}"
    );
    assert!(!text.contains('\r'), "a carriage return: {text:?}");
}

#[test]
fn a_sample_record_as_json() {
    assert_eq!(
        line(Format::Json, &sample()),
        concat!(
            r#"{"time":"2026-12-01T16:20:01.123Z","client":"192.0.2.10:51234","#,
            r#""client_ip":"192.0.2.10","tls_version":"TLSv1.3","#,
            r#""cipher":"TLS13_AES_128_GCM_SHA256","sni":"api.example.com","resumed":false,"#,
            r#""method":"GET","host":"api.example.com","target":"/v1/items?id=7","status":200,"#,
            r#""bytes_in":312,"bytes_out":5120,"upstream":"api","backend":"10.0.0.21:8080","#,
            r#""attempts":1,"duration_ms":12.345,"connect_ms":0.512,"first_byte_ms":11.002,"#,
            r#""request_id":"9f2c41d07ab35e6c0000000000004e2a","user_agent":"curl/8.5.0","#,
            r#""termination":"complete"}"#,
            "\n"
        )
    );
    let object = parse(&line(Format::Json, &sample()));
    assert_eq!(object["duration_ms"].as_f64(), Some(12.345));
    assert_eq!(object["status"].as_u64(), Some(200));
    assert_eq!(object["resumed"].as_bool(), Some(false));
}

#[test]
fn a_sample_record_as_combined() {
    assert_eq!(
        line(Format::Combined, &sample()),
        "192.0.2.10 - - [01/Dec/2026:16:20:01 +0000] \"GET /v1/items?id=7 HTTP/1.1\" 200 5120 \
         \"-\" \"curl/8.5.0\"\n"
    );
}

#[test]
fn absent_fields_are_null_and_a_connection_record_has_no_request_line() {
    let record = Record::connection(
        sample_time(),
        addr("192.0.2.10:51234"),
        Duration::from_secs(10),
        Termination::client("handshake_timeout"),
    );
    let text = line(Format::Json, &record);
    let object = parse(&text);
    for key in [
        "tls_version",
        "cipher",
        "sni",
        "method",
        "host",
        "target",
        "upstream",
        "backend",
        "connect_ms",
        "first_byte_ms",
        "request_id",
        "user_agent",
    ] {
        assert!(object[key].is_null(), "{key} is not null: {text}");
    }
    assert_eq!(object["status"].as_u64(), Some(0));
    assert_eq!(object["attempts"].as_u64(), Some(0));
    assert_eq!(object["resumed"].as_bool(), Some(false));
    assert_eq!(object["duration_ms"].as_f64(), Some(10_000.0));
    assert_eq!(
        object["termination"].as_str(),
        Some("client/handshake_timeout")
    );
    assert!(text.contains(r#""duration_ms":10000.000,"#), "{text}");

    assert_eq!(
        line(Format::Combined, &record),
        "192.0.2.10 - - [01/Dec/2026:16:20:01 +0000] \"-\" 0 0 \"-\" \"-\"\n"
    );
}

#[test]
fn termination_is_side_and_reason() {
    for (termination, shown) in [
        (Termination::COMPLETE, "complete"),
        (Termination::client("cl_te"), "client/cl_te"),
        (
            Termination::backend("backend_reset"),
            "backend/backend_reset",
        ),
        (Termination::proxy("no_route"), "proxy/no_route"),
    ] {
        let record = Record {
            termination,
            ..sample()
        };
        let object = parse(&line(Format::Json, &record));
        assert_eq!(object["termination"].as_str(), Some(shown));
    }
}

#[test]
fn json_strings_are_escaped() {
    let nasty = "a\"b\\c\nd\re\tf\u{0}g\u{1f}h\u{7f}i\u{2028}j\u{2029}k\u{e9}\u{1f600}</script>";
    let record = Record {
        user_agent: Some(nasty),
        target: nasty,
        ..sample()
    };
    let text = line(Format::Json, &record);
    assert!(
        text.contains(
            r#""user_agent":"a\"b\\c\u000ad\u000de\u0009f\u0000g\u001fh\u007fi\u2028j\u2029k"#
        ),
        "{text}"
    );
    // Non-ASCII characters other than U+2028/U+2029 stay as they are (UTF-8).
    assert!(text.contains("k\u{e9}\u{1f600}</script>\""), "{text}");
    assert!(!text.contains('\u{2028}') && !text.contains('\u{2029}'));
    let object = parse(&text);
    assert_eq!(object["user_agent"].as_str(), Some(nasty));
    assert_eq!(object["target"].as_str(), Some(nasty));
}

#[test]
fn combined_quoted_fields_are_escaped_as_nginx_does() {
    let record = Record {
        method: "GET",
        target: "/a\"b\\c\nd\u{7f}\u{e9}",
        user_agent: Some("x\" \"y\t"),
        ..sample()
    };
    let text = line(Format::Combined, &record);
    assert_one_line(&text);
    assert_eq!(
        text,
        "192.0.2.10 - - [01/Dec/2026:16:20:01 +0000] \
         \"GET /a\\x22b\\x5Cc\\x0Ad\\x7F\\xC3\\xA9 HTTP/1.1\" 200 5120 \"-\" \"x\\x22 \\x22y\\x09\"\n"
    );
    assert!(text.is_ascii());
}

/// Every string field, in turn and together, holding every ASCII byte and some characters
/// beyond: each line is one line, and each JSON line parses back to the same strings.
#[test]
fn whatever_the_strings_hold_a_record_is_one_line() {
    let mut all: String = (0u8..0x80).map(char::from).collect();
    all.push_str("\u{85}\u{a0}\u{2028}\u{2029}\u{feff}\u{10ffff}");
    let strings = ["", "\n", "\r\n", "\"", "\\", &all];
    for text in strings {
        let record = Record {
            sni: Some(text),
            method: text,
            host: text,
            target: text,
            upstream: Some(text),
            request_id: Some(text),
            user_agent: Some(text),
            ..sample()
        };
        let combined = line(Format::Combined, &record);
        assert_one_line(&combined);
        assert!(combined.is_ascii(), "{combined:?}");
        let object = parse(&line(Format::Json, &record));
        let expect = |key: &str| {
            if text.is_empty() && ["method", "host", "target"].contains(&key) {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(text.to_owned())
            }
        };
        for key in [
            "sni",
            "method",
            "host",
            "target",
            "upstream",
            "request_id",
            "user_agent",
        ] {
            assert_eq!(object[key], expect(key), "{key} of {text:?}");
        }
    }
}

#[test]
fn addresses_are_written_canonical() {
    let record = Record {
        client: addr("[::ffff:192.0.2.7]:443"),
        backend: Some(addr("[2001:db8::21]:8080")),
        ..sample()
    };
    let object = parse(&line(Format::Json, &record));
    assert_eq!(object["client"].as_str(), Some("192.0.2.7:443"));
    assert_eq!(object["client_ip"].as_str(), Some("192.0.2.7"));
    assert_eq!(object["backend"].as_str(), Some("[2001:db8::21]:8080"));
    assert!(line(Format::Combined, &record).starts_with("192.0.2.7 - - ["));

    let record = Record {
        client: addr("[2001:db8::1]:51234"),
        ..sample()
    };
    let object = parse(&line(Format::Json, &record));
    assert_eq!(object["client"].as_str(), Some("[2001:db8::1]:51234"));
    assert_eq!(object["client_ip"].as_str(), Some("2001:db8::1"));
    assert!(line(Format::Combined, &record).starts_with("2001:db8::1 - - ["));
}

#[test]
fn durations_are_milliseconds_with_three_decimals() {
    for (duration, shown) in [
        (Duration::ZERO, "0.000"),
        (Duration::from_nanos(999), "0.000"),
        (Duration::from_micros(7), "0.007"),
        (Duration::from_micros(1_020), "1.020"),
        (Duration::from_secs(1), "1000.000"),
        (Duration::from_secs(86_400), "86400000.000"),
        (Duration::MAX, "18446744073709551.615"),
    ] {
        let mut out = Vec::new();
        push_millis(&mut out, duration);
        assert_eq!(String::from_utf8_lossy(&out), shown, "{duration:?}");
    }
}

fn rfc3339(secs: u64, nanos: u32) -> String {
    let mut out = Vec::new();
    push_rfc3339(
        &mut out,
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos),
    );
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn times_are_utc() {
    assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        rfc3339(951_782_400, 999_999_999),
        "2000-02-29T00:00:00.999Z"
    );
    assert_eq!(rfc3339(946_684_799, 1_000_000), "1999-12-31T23:59:59.001Z");
    assert_eq!(rfc3339(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    assert_eq!(
        rfc3339(1_796_142_001, 123_456_789),
        "2026-12-01T16:20:01.123Z"
    );
    // A clock before 1970 is written as the epoch.
    let mut out = Vec::new();
    push_rfc3339(&mut out, SystemTime::UNIX_EPOCH - Duration::from_secs(1));
    assert_eq!(out, b"1970-01-01T00:00:00.000Z");

    for (month, name) in MONTHS.iter().enumerate() {
        // The 15th of each month of 2026.
        let days = civil_days(2026, month as u64 + 1, 15);
        let record = Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + 3_661),
            ..sample()
        };
        let text = line(Format::Combined, &record);
        let name = std::str::from_utf8(*name).expect("ASCII");
        assert!(
            text.contains(&format!("[15/{name}/2026:01:01:01 +0000]")),
            "{text}"
        );
    }
}

/// Days from 1970-01-01 to a date, counted one day at a time.
fn civil_days(year: u64, month: u64, day: u64) -> u64 {
    let mut date = (1970, 1, 1);
    let mut days = 0;
    while date != (year, month, day) {
        date = next_day(date);
        days += 1;
    }
    days
}

fn next_day((year, month, day): (u64, u64, u64)) -> (u64, u64, u64) {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let length = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    match (day == length, month == 12) {
        (false, _) => (year, month, day + 1),
        (true, false) => (year, month + 1, 1),
        (true, true) => (year + 1, 1, 1),
    }
}

/// The closed form agrees with counting day by day, over 600 years.
#[test]
fn civil_from_days_matches_the_calendar() {
    let mut date = (1970, 1, 1);
    for days in 0..219_150 {
        assert_eq!(civil_from_days(days), date, "day {days}");
        date = next_day(date);
    }
}

#[test]
fn format_names() {
    for (text, format) in [("json", Format::Json), ("combined", Format::Combined)] {
        assert_eq!(text.parse::<Format>(), Ok(format));
        assert_eq!(format.to_string(), text);
    }
    assert_eq!(Format::default(), Format::Json);
    let error = "JSON".parse::<Format>().expect_err("case matters");
    assert_eq!(
        error.to_string(),
        "\"JSON\" is not an access log format (expected \"json\" or \"combined\")"
    );
}

#[test]
fn lines_append() {
    let mut out = b"earlier\n".to_vec();
    Format::Json.write(&sample(), &mut out);
    Format::Combined.write(&sample(), &mut out);
    let text = String::from_utf8(out).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "earlier");
    assert!(lines[1].starts_with("{\"time\":"));
    assert!(lines[2].starts_with("192.0.2.10 "));
}

/// The README shows what this formatter writes, line for line.
#[test]
fn the_readme_shows_these_lines() {
    let readme = include_str!("../../../README.md");
    let connection = Record::connection(
        sample_time(),
        addr("192.0.2.10:51234"),
        Duration::from_secs(10),
        Termination::client("handshake_timeout"),
    );
    for record in [sample(), connection] {
        for format in [Format::Json, Format::Combined] {
            let shown = line(format, &record);
            assert!(
                readme.contains(&format!("\n{shown}")),
                "README.md lacks the {format} line\n{shown}"
            );
        }
    }
}

#[test]
fn numbers_are_written_in_decimal_with_their_padding() {
    for (n, width, text) in [
        (0, 1, "0"),
        (7, 2, "07"),
        (42, 1, "42"),
        (100, 1, "100"),
        (5, 3, "005"),
        (2026, 4, "2026"),
        (12_345, 1, "12345"),
        (u64::MAX, 1, "18446744073709551615"),
    ] {
        let mut out = Vec::new();
        super::push_padded(&mut out, n, width);
        assert_eq!(String::from_utf8(out).unwrap(), text, "{n}");
    }
}
