//! Timestamps as text, as Telegraf's JSON options name them: Unix numbers
//! in a unit (`"unix"`, `"unix_ms"`, `"unix_us"`, `"unix_ns"`) and the two
//! Go layouts of RFC 3339 (`"2006-01-02T15:04:05Z07:00"` and its
//! `.999999999` form). Other Go layouts are refused by name.

use anyhow::{Result, bail};

/// Go's `time.RFC3339`.
pub const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
/// Go's `time.RFC3339Nano`.
pub const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";

/// How a timestamp is written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// A number of this many nanoseconds.
    Unix(i64),
    /// RFC 3339, whole seconds when writing; any fraction when reading.
    Rfc3339,
    /// RFC 3339 with the fraction, trailing zeros left out.
    Rfc3339Nano,
}

impl TimeFormat {
    /// From a `json_time_format`-style value; `key` names the option in
    /// the error.
    pub fn parse(key: &str, s: &str) -> Result<Self> {
        Ok(match s {
            "unix" => Self::Unix(1_000_000_000),
            "unix_ms" => Self::Unix(1_000_000),
            "unix_us" => Self::Unix(1_000),
            "unix_ns" => Self::Unix(1),
            RFC3339 | "rfc3339" | "RFC3339" => Self::Rfc3339,
            RFC3339_NANO | "rfc3339nano" | "RFC3339Nano" => Self::Rfc3339Nano,
            other => bail!(
                "{key}: {other:?} is not supported; use \"unix\", \"unix_ms\", \"unix_us\", \
                 \"unix_ns\", {RFC3339:?} or {RFC3339_NANO:?}"
            ),
        })
    }
}

/// `ns` since the epoch as RFC 3339 in UTC; with `fraction`, the
/// nanoseconds without trailing zeros (Go's `.999999999`).
pub fn format_rfc3339(ns: i64, fraction: bool) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if fraction && nanos > 0 {
        let digits = format!("{nanos:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// RFC 3339 (`2006-01-02T15:04:05[.frac](Z|±hh:mm)`) as ns since the
/// epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for ns in [
            0,
            1_458_229_140_000_000_000,
            1_700_000_000_123_456_789,
            -1_000_000_001,
        ] {
            let text = format_rfc3339(ns, true);
            assert_eq!(parse_rfc3339(&text), Some(ns), "{text}");
        }
        assert_eq!(
            format_rfc3339(1_458_229_140_500_000_000, false),
            "2016-03-17T15:39:00Z"
        );
        assert_eq!(
            format_rfc3339(1_458_229_140_500_000_000, true),
            "2016-03-17T15:39:00.5Z"
        );
    }

    #[test]
    fn offsets_and_fractions_are_read() {
        assert_eq!(
            parse_rfc3339("2016-03-17T16:39:00+01:00"),
            parse_rfc3339("2016-03-17T15:39:00Z")
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.25Z"), Some(250_000_000));
        for bad in [
            "",
            "2016-03-17",
            "2016-13-01T00:00:00Z",
            "2016-03-17T15:39:00",
            "x016-03-17T15:39:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_layouts_name_the_key() {
        let e = TimeFormat::parse("json_time_format", "Jan 2 2006").unwrap_err();
        assert!(e.to_string().contains("json_time_format"), "{e}");
        assert_eq!(
            TimeFormat::parse("k", "unix_ms").unwrap(),
            TimeFormat::Unix(1_000_000)
        );
    }
}
