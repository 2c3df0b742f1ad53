//! Telegraf's spellings of durations (`"10s"`, `"1m30s"`, `"500ms"`, or a
//! bare number of seconds) and sizes (`"64MiB"`, `"10MB"`, or bytes).

use std::time::Duration;

use anyhow::{Result, bail};

/// Parse a duration value from TOML.
pub fn parse_duration_value(v: &toml::Value) -> Result<Duration> {
    match v {
        toml::Value::String(s) => parse_duration(s),
        toml::Value::Integer(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        toml::Value::Float(f) if *f >= 0.0 && f.is_finite() => Ok(Duration::from_secs_f64(*f)),
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
    Ok(Duration::from_secs_f64(total))
}

/// Parse a size value from TOML: `"64MiB"`, `"10MB"`, `"512KiB"` or bytes.
pub fn parse_size_value(v: &toml::Value) -> Result<u64> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
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
            n.checked_mul(scale)
                .ok_or_else(|| anyhow::anyhow!("size {s:?} is too large"))
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
    fn sizes() {
        assert_eq!(parse_size_value(&"64MiB".into()).unwrap(), 64 << 20);
        assert_eq!(parse_size_value(&"10MB".into()).unwrap(), 10_000_000);
        assert_eq!(parse_size_value(&toml::Value::Integer(7)).unwrap(), 7);
        assert!(parse_size_value(&"12 bananas".into()).is_err());
    }
}
