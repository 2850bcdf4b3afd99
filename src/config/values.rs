//! Typed values of the document: durations, `ip:port` addresses, backend addresses
//! (`ip:port` or `host:port`), status ranges and strings
//! parsed with [`FromStr`] (the `*Value` serde helpers), and the duration and status-range
//! parsers and formatters.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::{BackendAddress, Name};

/// A duration: `"500ms"`, `"10s"`, `"2m"`, `"1h30m"`, or an integer of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DurationValue(pub(super) Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"500ms\", \"10s\", \"2m\" or \"1h\", or an integer of \
                     milliseconds",
                )
            }

            fn visit_i64<E: de::Error>(self, millis: i64) -> Result<DurationValue, E> {
                u64::try_from(millis)
                    .map(|millis| DurationValue(Duration::from_millis(millis)))
                    .map_err(|_| E::custom(format!("{millis} is not a duration: it is negative")))
            }

            fn visit_u64<E: de::Error>(self, millis: u64) -> Result<DurationValue, E> {
                Ok(DurationValue(Duration::from_millis(millis)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<DurationValue, E> {
                parse_duration(text)
                    .map(DurationValue)
                    .map_err(|why| E::custom(format!("{text:?} is not a duration: {why}")))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

impl Serialize for DurationValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

/// A value read from a string with its [`FromStr`] and written with its [`fmt::Display`]:
/// policies, hash keys, host patterns. The parse error is the reason shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FromStrValue<T>(pub(super) T);

impl<'de, T> Deserialize<'de> for FromStrValue<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FromStrVisitor<T>(std::marker::PhantomData<T>);

        impl<T> Visitor<'_> for FromStrVisitor<T>
        where
            T: FromStr,
            T::Err: fmt::Display,
        {
            type Value = FromStrValue<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<FromStrValue<T>, E> {
                text.parse().map(FromStrValue).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(FromStrVisitor(std::marker::PhantomData))
    }
}

impl<T: fmt::Display> Serialize for FromStrValue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Expected response statuses: `"200-399"`, `"200"` or the integer `200`. Only the syntax is
/// checked here; the bounds are [`Config::validate`]'s.
///
/// [`Config::validate`]: super::Config::validate
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StatusRangeValue(pub(super) RangeInclusive<u16>);

impl<'de> Deserialize<'de> for StatusRangeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;

        impl Visitor<'_> for StatusVisitor {
            type Value = StatusRangeValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status or range of statuses such as \"200\" or \"200-399\"")
            }

            fn visit_i64<E: de::Error>(self, status: i64) -> Result<StatusRangeValue, E> {
                u16::try_from(status)
                    .map(|status| StatusRangeValue(status..=status))
                    .map_err(|_| E::custom(format!("{status} is not an HTTP status")))
            }

            fn visit_u64<E: de::Error>(self, status: u64) -> Result<StatusRangeValue, E> {
                u16::try_from(status)
                    .map(|status| StatusRangeValue(status..=status))
                    .map_err(|_| E::custom(format!("{status} is not an HTTP status")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<StatusRangeValue, E> {
                let number = |part: &str| {
                    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    part.parse::<u16>().ok()
                };
                let range = match text.split_once('-') {
                    Some((low, high)) => number(low).zip(number(high)),
                    None => number(text).map(|status| (status, status)),
                };
                range
                    .map(|(low, high)| StatusRangeValue(low..=high))
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{text:?} is not a status or range of statuses such as \"200\" or \
                             \"200-399\""
                        ))
                    })
            }
        }

        deserializer.deserialize_any(StatusVisitor)
    }
}

impl Serialize for StatusRangeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_status_range(&self.0))
    }
}

/// An `ip:port` socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AddressValue(pub(super) SocketAddr);

impl<'de> Deserialize<'de> for AddressValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AddressVisitor;

        impl Visitor<'_> for AddressVisitor {
            type Value = AddressValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ip:port address such as \"127.0.0.1:8080\" or \"[::1]:8443\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<AddressValue, E> {
                text.parse()
                    .map(AddressValue)
                    .map_err(|_| E::custom(format!("{text:?} is not an ip:port address")))
            }
        }

        deserializer.deserialize_str(AddressVisitor)
    }
}

impl Serialize for AddressValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A backend's address: `ip:port` (`"10.0.0.1:8080"`, `"[fd00::1]:8080"`) or `host:port`
/// (`"app.internal:8080"`). Only the syntax is checked here (a port of 0 in `ip:port` is
/// [`Config::validate`]'s).
///
/// [`Config::validate`]: super::Config::validate
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BackendAddressValue(pub(super) BackendAddress);

impl<'de> Deserialize<'de> for BackendAddressValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BackendAddressVisitor;

        impl Visitor<'_> for BackendAddressVisitor {
            type Value = BackendAddressValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an ip:port or host:port address such as \"127.0.0.1:8080\", \"[::1]:8443\" \
                     or \"app.internal:8080\"",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<BackendAddressValue, E> {
                if let Ok(addr) = text.parse::<SocketAddr>() {
                    return Ok(BackendAddressValue(BackendAddress::Ip(addr)));
                }
                text.parse::<Name>()
                    .map(|name| BackendAddressValue(BackendAddress::Name(name)))
                    .map_err(|why| {
                        E::custom(format!(
                            "{text:?} is not an ip:port or host:port address: {why}"
                        ))
                    })
            }
        }

        deserializer.deserialize_str(BackendAddressVisitor)
    }
}

impl Serialize for BackendAddressValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Parses one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`: `"1h30m"`.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number, as in \"10s\"".to_owned());
        }
        let (number, after) = rest.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{number} is too large"))?;
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let micros_per_unit: u64 = match unit {
            "us" => 1,
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "" => {
                return Err(match after.chars().next() {
                    Some(unexpected) => format!("unexpected {unexpected:?} after {number}"),
                    None => "missing unit (us, ms, s, m or h)".to_owned(),
                });
            }
            other => {
                return Err(format!(
                    "unknown unit {other:?} (expected us, ms, s, m or h)"
                ));
            }
        };
        let micros = number
            .checked_mul(micros_per_unit)
            .ok_or_else(|| "it is too large".to_owned())?;
        total = total
            .checked_add(Duration::from_micros(micros))
            .ok_or_else(|| "it is too large".to_owned())?;
        rest = after;
    }
    Ok(total)
}

/// The shortest exact form: `"2m"`, `"90s"`, `"1500ms"`, `"250us"`. Sub-microsecond parts are
/// dropped (the parser never produces them).
pub(super) fn format_duration(duration: Duration) -> String {
    let micros = duration.as_micros();
    if !micros.is_multiple_of(1_000) {
        return format!("{micros}us");
    }
    match duration.as_millis() {
        0 => "0s".to_owned(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        ms => format!("{ms}ms"),
    }
}

/// `"200"` or `"200-399"`.
pub(super) fn format_status_range(range: &RangeInclusive<u16>) -> String {
    if range.start() == range.end() {
        range.start().to_string()
    } else {
        format!("{}-{}", range.start(), range.end())
    }
}
