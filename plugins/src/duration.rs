//! Telegraf's spellings of durations (`"10s"`, `"1m30s"`, `"500ms"`, or a
//! bare number of seconds) and sizes (`"64MiB"`, `"10MB"`, or bytes).
//!
//! Both are bounded: a duration longer than [`MAX_DURATION`] (a year) or a
//! size larger than [`MAX_SIZE`] (1 TiB) is an error, never a panic or a
//! schedule that never fires.

use std::time::Duration;

use anyhow::{Result, bail};

/// The longest duration any option accepts: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86400);

/// The largest size any option accepts: 1 TiB.
pub const MAX_SIZE: u64 = 1 << 40;

/// `seconds` as a duration, if it is one graft accepts (at most
/// [`MAX_DURATION`]); `shown` is how the value was written, for the error.
fn bounded_seconds(seconds: f64, shown: &dyn std::fmt::Display) -> Result<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        bail!("invalid duration {shown}: expected a finite, non-negative length");
    }
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => bail!("duration {shown} is too long: the most any option accepts is 365d (a year)"),
    }
}

/// Parse a duration value from TOML.
pub fn parse_duration_value(v: &toml::Value) -> Result<Duration> {
    match v {
        toml::Value::String(s) => parse_duration(s),
        toml::Value::Integer(n) if *n >= 0 => bounded_seconds(*n as f64, n),
        toml::Value::Float(f) if *f >= 0.0 => bounded_seconds(*f, &format_args!("{f:?}")),
        toml::Value::Integer(_) | toml::Value::Float(_) => {
            bail!("invalid duration {v}: a duration cannot be negative")
        }
        other => bail!(
            "expected a duration such as \"10s\", found {}",
            other.type_str()
        ),
    }
}

/// Parse `"1h2m3s"`, `"250ms"`, `"1.5s"`, `"0"`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    if s == "0" || s.is_empty() {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let Ok(n) = num.parse::<f64>() else {
            bail!("invalid duration {s:?}: expected a number before a unit");
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
            "" => bail!("invalid duration {s:?}: missing unit (ns, us, ms, s, m, h, d)"),
            other => bail!("invalid duration {s:?}: unknown unit {other:?}"),
        };
        total += n * scale;
        rest = next;
    }
    bounded_seconds(total, &format_args!("{s:?}"))
}

/// Parse a size value from TOML: `"64MiB"`, `"10MB"`, `"512KiB"` or bytes.
pub fn parse_size_value(v: &toml::Value) -> Result<u64> {
    match v {
        toml::Value::Integer(n) if *n >= 0 && *n as u64 <= MAX_SIZE => Ok(*n as u64),
        toml::Value::Integer(n) if *n >= 0 => {
            bail!("size {n} is too large: the most any option accepts is 1TiB")
        }
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid size {s:?}"))?;
            let scale: u64 = match unit.trim() {
                "" | "B" => 1,
                "KB" | "kB" => 1000,
                "KiB" => 1 << 10,
                "MB" => 1_000_000,
                "MiB" => 1 << 20,
                "GB" => 1_000_000_000,
                "GiB" => 1 << 30,
                other => bail!("invalid size {s:?}: unknown unit {other:?}"),
            };
            match n.checked_mul(scale) {
                Some(bytes) if bytes <= MAX_SIZE => Ok(bytes),
                _ => bail!("size {s:?} is too large: the most any option accepts is 1TiB"),
            }
        }
        other => bail!(
            "expected a size such as \"64MiB\", found {}",
            other.type_str()
        ),
    }
}

/// `#[serde(deserialize_with)]` for a duration key.
pub fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = <toml::Value as serde::Deserialize>::deserialize(d)?;
    parse_duration_value(&v).map_err(serde::de::Error::custom)
}

/// `#[serde(deserialize_with)]` for a size key.
pub fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = <toml::Value as serde::Deserialize>::deserialize(d)?;
    parse_size_value(&v).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(
            parse_duration_value(&toml::Value::Integer(3)).unwrap(),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn durations_past_a_year_are_errors_not_panics() {
        for s in [
            "99999999999999999999999h",
            "9999999999999h",
            "366d",
            "8761h",
        ] {
            let err = parse_duration(s).unwrap_err().to_string();
            assert!(err.contains("too long"), "{s}: {err}");
        }
        for v in [1e300, 1e30, f64::MAX, 31_622_400.0] {
            let err = parse_duration_value(&toml::Value::Float(v)).unwrap_err();
            assert!(err.to_string().contains("too long"), "{v}: {err}");
        }
        for v in [f64::INFINITY, f64::NAN, -1.0] {
            assert!(parse_duration_value(&toml::Value::Float(v)).is_err(), "{v}");
        }
        assert!(parse_duration_value(&toml::Value::Integer(i64::MAX)).is_err());
        assert!(parse_duration_value(&toml::Value::Integer(-1)).is_err());
        assert_eq!(parse_duration("365d").unwrap(), MAX_DURATION);
        assert_eq!(
            parse_duration_value(&toml::Value::Float(0.25)).unwrap(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn sizes_past_a_tebibyte_are_errors() {
        for s in ["1025GiB", "99999999999GiB", "99999999999999999999999"] {
            assert!(parse_size_value(&s.into()).is_err(), "{s}");
        }
        assert!(parse_size_value(&toml::Value::Integer(i64::MAX)).is_err());
        assert_eq!(parse_size_value(&"1024GiB".into()).unwrap(), MAX_SIZE);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_value(&"64MiB".into()).unwrap(), 64 << 20);
        assert_eq!(parse_size_value(&"10MB".into()).unwrap(), 10_000_000);
        assert_eq!(parse_size_value(&toml::Value::Integer(7)).unwrap(), 7);
        assert!(parse_size_value(&"12 bananas".into()).is_err());
    }
}
