//! Telegraf's spellings of durations (`"10s"`, `"1m30s"`, `"500ms"`, or a
//! bare number of seconds) and sizes (`"64MiB"`, `"10MB"`, or bytes), shared
//! by the host's configuration and the built-in plugins.
//!
//! Both are bounded: a duration longer than [`MAX_DURATION`] (a year) or a
//! size larger than [`MAX_SIZE`] (1 TiB) is an error, never a panic or a
//! schedule that never fires.
//!
//! A value is read in two steps: serde gives its [`Spelling`] (a string, a
//! whole number, a float, or something else), and [`Spelling::duration`] or
//! [`Spelling::size`] checks it. [`de_duration`] and [`de_size`] do both for
//! a `#[serde(deserialize_with)]` field; [`DurationValue`] and [`SizeValue`]
//! are the same as types.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// The longest duration any option accepts: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86400);

/// The largest size any option accepts: 1 TiB.
pub const MAX_SIZE: u64 = 1 << 40;

/// Why a duration or size was refused. Each message shows the value as it
/// was written.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid duration {0}: expected a finite, non-negative length")]
    NotALength(String),
    #[error("invalid duration {0}: a duration cannot be negative")]
    Negative(String),
    #[error("duration {0} is too long: the most any option accepts is 365d (a year)")]
    TooLong(String),
    #[error("invalid duration {0}: expected a number before a unit")]
    NoNumber(String),
    #[error("invalid duration {0}: missing unit (ns, us, ms, s, m, h, d)")]
    NoUnit(String),
    #[error("invalid duration {0}: unknown unit {1:?}")]
    UnknownDurationUnit(String, String),
    #[error("invalid size {0}")]
    InvalidSize(String),
    #[error("invalid size {0}: unknown unit {1:?}")]
    UnknownSizeUnit(String, String),
    #[error("size {0} is too large: the most any option accepts is 1TiB")]
    TooLarge(String),
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
}

const A_DURATION: &str = "a duration such as \"10s\"";
const A_SIZE: &str = "a size such as \"64MiB\"";

/// How a duration or size was written in a config file.
#[derive(Clone, Debug, PartialEq)]
pub enum Spelling {
    Text(String),
    Integer(i64),
    Float(f64),
    /// Any other kind of value: its kind (`boolean`, `array`, `table`).
    Other(&'static str),
}

impl Spelling {
    /// The duration this spells.
    pub fn duration(&self) -> Result<Duration, UnitError> {
        match self {
            Spelling::Text(s) => parse_duration(s),
            Spelling::Integer(n) if *n >= 0 => bounded_seconds(*n as f64, n.to_string()),
            Spelling::Float(f) if *f >= 0.0 => bounded_seconds(*f, format!("{f:?}")),
            Spelling::Integer(n) => Err(UnitError::Negative(n.to_string())),
            Spelling::Float(f) if f.is_nan() => Err(UnitError::NotALength(format!("{f:?}"))),
            Spelling::Float(f) => Err(UnitError::Negative(format!("{f:?}"))),
            Spelling::Other(found) => Err(UnitError::WrongType {
                expected: A_DURATION,
                found,
            }),
        }
    }

    /// The size in bytes this spells.
    pub fn size(&self) -> Result<u64, UnitError> {
        match self {
            Spelling::Integer(n) if *n >= 0 && *n as u64 <= MAX_SIZE => Ok(*n as u64),
            Spelling::Integer(n) if *n >= 0 => Err(UnitError::TooLarge(n.to_string())),
            Spelling::Text(s) => parse_size(s),
            Spelling::Integer(_) => Err(UnitError::WrongType {
                expected: A_SIZE,
                found: "a negative number",
            }),
            Spelling::Float(_) => Err(UnitError::WrongType {
                expected: A_SIZE,
                found: "float",
            }),
            Spelling::Other(found) => Err(UnitError::WrongType {
                expected: A_SIZE,
                found,
            }),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Spelling {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpellingVisitor)
    }
}

struct SpellingVisitor;

impl<'de> Visitor<'de> for SpellingVisitor {
    type Value = Spelling;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration or size")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Spelling, E> {
        Ok(Spelling::Text(v.to_owned()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Spelling, E> {
        Ok(Spelling::Integer(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Spelling, E> {
        Ok(i64::try_from(v).map_or(Spelling::Float(v as f64), Spelling::Integer))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Spelling, E> {
        Ok(Spelling::Float(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Spelling, E> {
        Ok(Spelling::Other("boolean"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Spelling, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Spelling::Other("array"))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Spelling, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Spelling::Other("table"))
    }
}

/// `seconds` as a duration, if it is one graft accepts (at most
/// [`MAX_DURATION`]); `shown` is how the value was written, for the error.
fn bounded_seconds(seconds: f64, shown: String) -> Result<Duration, UnitError> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(UnitError::NotALength(shown));
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(UnitError::TooLong(shown)),
    }
}

/// Parse `"1h2m3s"`, `"250ms"`, `"1.5s"`, `"0"`.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let s = s.trim();
    if s == "0" || s.is_empty() {
        return Ok(Duration::ZERO);
    }
    let shown = || format!("{s:?}");
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let Ok(n) = num.parse::<f64>() else {
            return Err(UnitError::NoNumber(shown()));
        };
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(UnitError::NoUnit(shown())),
            other => return Err(UnitError::UnknownDurationUnit(shown(), other.to_owned())),
        };
        total += n * scale;
        rest = next;
    }
    bounded_seconds(total, shown())
}

/// Parse `"64MiB"`, `"10MB"`, `"512KiB"` or a number of bytes.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| UnitError::InvalidSize(format!("{s:?}")))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => {
            return Err(UnitError::UnknownSizeUnit(
                format!("{s:?}"),
                other.to_owned(),
            ));
        }
    };
    match n.checked_mul(scale) {
        Some(bytes) if bytes <= MAX_SIZE => Ok(bytes),
        _ => Err(UnitError::TooLarge(format!("{s:?}"))),
    }
}

/// The spelling of a value any self-describing serde format holds (a
/// `toml::Value`, a `serde_json::Value`).
fn spelling_of<'de, T: Clone + Deserializer<'de>>(v: &T) -> Spelling {
    <Spelling as serde::Deserialize>::deserialize(v.clone()).unwrap_or(Spelling::Other("value"))
}

/// Parse a duration from a config value such as a `toml::Value`.
pub fn parse_duration_value<'de, T: Clone + Deserializer<'de>>(
    v: &T,
) -> Result<Duration, UnitError> {
    spelling_of(v).duration()
}

/// Parse a size from a config value such as a `toml::Value`.
pub fn parse_size_value<'de, T: Clone + Deserializer<'de>>(v: &T) -> Result<u64, UnitError> {
    spelling_of(v).size()
}

/// `#[serde(deserialize_with)]` for a duration key.
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = <Spelling as serde::Deserialize>::deserialize(d)?;
    s.duration().map_err(de::Error::custom)
}

/// `#[serde(deserialize_with)]` for a size key.
pub fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = <Spelling as serde::Deserialize>::deserialize(d)?;
    s.size().map_err(de::Error::custom)
}

/// A duration key as a type: any of Telegraf's spellings, at most
/// [`MAX_DURATION`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationValue(pub Duration);

impl<'de> serde::Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_duration(d).map(DurationValue)
    }
}

/// A size key as a type: bytes, at most [`MAX_SIZE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SizeValue(pub u64);

impl<'de> serde::Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_size(d).map(SizeValue)
    }
}

#[cfg(test)]
#[path = "units_tests.rs"]
mod tests;
