//! One line of an exposition: a sample (`name{label="value",...} value
//! [timestamp] [# exemplar]`) or a `#` line (`HELP`, `TYPE`, `UNIT`, `EOF`,
//! or a comment), read without allocating more than the names and label
//! values it keeps.

use super::{Format, LineError};

/// What a line says.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    /// An empty line or a comment.
    Nothing,
    /// `# TYPE name type`.
    Type(&'a str, &'a str),
    /// `# HELP name ...`; the text is not kept.
    Help(&'a str),
    /// `# UNIT name unit` (OpenMetrics).
    Unit(&'a str, &'a str),
    /// `# EOF` (OpenMetrics).
    Eof,
    /// A sample.
    Sample(RawSample<'a>),
}

/// A sample as written: its labels sorted by name, values unescaped.
#[derive(Debug, PartialEq)]
pub struct RawSample<'a> {
    pub name: &'a str,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Nanoseconds since the epoch: milliseconds in the text format,
    /// seconds with a fraction in OpenMetrics.
    pub timestamp_ns: Option<i64>,
}

/// Read one line (without its `\n`); `max_labels` bounds the labels kept.
pub fn parse(line: &str, format: Format, max_labels: usize) -> Result<Line<'_>, LineError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let line = line.trim_start_matches([' ', '\t']);
    if line.is_empty() {
        return Ok(Line::Nothing);
    }
    if let Some(rest) = line.strip_prefix('#') {
        return comment(rest, format);
    }
    sample(line, format, max_labels).map(Line::Sample)
}

fn comment(rest: &str, format: Format) -> Result<Line<'_>, LineError> {
    let mut words = rest.trim_start_matches([' ', '\t']).splitn(2, [' ', '\t']);
    let keyword = words.next().unwrap_or("");
    let rest = words.next().unwrap_or("").trim_start_matches([' ', '\t']);
    let (name, tail) = match rest.find([' ', '\t']) {
        Some(i) => (&rest[..i], rest[i..].trim_matches([' ', '\t'])),
        None => (rest, ""),
    };
    let named = |line: Line<'static>| -> Result<(), LineError> {
        if !is_metric_name(name) {
            return Err(LineError::BadName(line_kind(&line)));
        }
        Ok(())
    };
    match keyword {
        "TYPE" => {
            named(Line::Type("", ""))?;
            Ok(Line::Type(name, tail))
        }
        "HELP" => {
            named(Line::Help(""))?;
            Ok(Line::Help(name))
        }
        "UNIT" if format == Format::OpenMetrics => {
            named(Line::Unit("", ""))?;
            Ok(Line::Unit(name, tail))
        }
        "EOF" if format == Format::OpenMetrics && rest.is_empty() => Ok(Line::Eof),
        _ => Ok(Line::Nothing),
    }
}

fn line_kind(line: &Line<'_>) -> &'static str {
    match line {
        Line::Type(..) => "TYPE",
        Line::Help(_) => "HELP",
        _ => "UNIT",
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn name_end(s: &str, colon: bool) -> usize {
    s.bytes()
        .position(|c| !(c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':')))
        .unwrap_or(s.len())
}

fn sample(line: &str, format: Format, max_labels: usize) -> Result<RawSample<'_>, LineError> {
    let end = name_end(line, true);
    let name = &line[..end];
    if !is_metric_name(name) {
        return Err(LineError::BadName("sample"));
    }
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    let open = match format {
        // The text format allows blanks between the name and its labels.
        Format::Text => rest.trim_start_matches([' ', '\t']).strip_prefix('{'),
        Format::OpenMetrics => rest.strip_prefix('{'),
    };
    if let Some(r) = open {
        rest = label_set(r, format, max_labels, &mut labels)?;
    }
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    if labels.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(LineError::DuplicateLabel);
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(LineError::NoValue);
    }
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let value = words.next().ok_or(LineError::NoValue)?;
    let value = parse_value(value).ok_or(LineError::BadValue)?;
    let mut timestamp_ns = None;
    if let Some(word) = words.next() {
        if format == Format::OpenMetrics && word == "#" {
            // An exemplar follows; it is not kept.
            return Ok(RawSample {
                name,
                labels,
                value,
                timestamp_ns,
            });
        }
        timestamp_ns = Some(match format {
            Format::Text => word
                .parse::<i64>()
                .ok()
                .and_then(|ms| ms.checked_mul(1_000_000))
                .ok_or(LineError::BadTimestamp)?,
            Format::OpenMetrics => seconds_to_ns(word).ok_or(LineError::BadTimestamp)?,
        });
        match words.next() {
            None => {}
            Some("#") if format == Format::OpenMetrics => {}
            Some(_) => return Err(LineError::TrailingText),
        }
    }
    Ok(RawSample {
        name,
        labels,
        value,
        timestamp_ns,
    })
}

/// The labels after `{`, up to and including `}`; returns what follows.
fn label_set<'a>(
    mut rest: &'a str,
    format: Format,
    max_labels: usize,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, LineError> {
    let skip = |s: &'a str| -> &'a str {
        if format == Format::Text {
            s.trim_start_matches([' ', '\t'])
        } else {
            s
        }
    };
    loop {
        rest = skip(rest);
        if let Some(r) = rest.strip_prefix('}') {
            return Ok(r);
        }
        let end = name_end(rest, false);
        let name = &rest[..end];
        if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
            return Err(LineError::BadLabel);
        }
        rest = skip(&rest[end..]);
        rest = rest.strip_prefix('=').ok_or(LineError::BadLabel)?;
        rest = skip(rest);
        rest = rest.strip_prefix('"').ok_or(LineError::BadLabel)?;
        let (value, r) = quoted(rest)?;
        if labels.len() == max_labels {
            return Err(LineError::TooManyLabels(max_labels));
        }
        labels.push((name.to_owned(), value));
        rest = skip(r);
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err(LineError::BadLabel);
        }
    }
}

/// A label value after its opening quote, unescaped (`\\`, `\"`, `\n`);
/// returns it and what follows the closing quote.
fn quoted(s: &str) -> Result<(String, &str), LineError> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                _ => return Err(LineError::BadEscape),
            },
            '\n' => return Err(LineError::BadLabel),
            c => out.push(c),
        }
    }
    Err(LineError::UnclosedQuote)
}

/// A sample value: a float as Go's `ParseFloat` reads it, `NaN`, `+Inf`,
/// `-Inf` included.
pub fn parse_value(s: &str) -> Option<f64> {
    // Rust takes "infinity" and "nan" in any case, as Go does; it refuses
    // what Go refuses too, except hexadecimal floats and `_` separators.
    s.parse::<f64>().ok()
}

/// OpenMetrics' timestamp: seconds since the epoch, with an optional
/// fraction (`1520879607.789`) or an exponent; exact to the nanosecond
/// when written in decimal.
fn seconds_to_ns(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let decimal = !int.is_empty()
        && int.bytes().all(|c| c.is_ascii_digit())
        && frac.bytes().all(|c| c.is_ascii_digit());
    let ns = if decimal {
        let secs: i64 = int.parse().ok()?;
        let mut nanos: i64 = 0;
        for (i, c) in frac.bytes().take(9).enumerate() {
            nanos += i64::from(c - b'0') * 10_i64.pow(8 - i as u32);
        }
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)?
    } else {
        let secs: f64 = digits.parse().ok()?;
        let ns = secs * 1e9;
        if !ns.is_finite() || ns.abs() >= i64::MAX as f64 {
            return None;
        }
        ns.round() as i64
    };
    Some(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &str) -> Result<Line<'_>, LineError> {
        parse(line, Format::Text, 8)
    }

    fn om(line: &str) -> Result<Line<'_>, LineError> {
        parse(line, Format::OpenMetrics, 8)
    }

    fn sample_of(line: Result<Line<'_>, LineError>) -> RawSample<'_> {
        match line {
            Ok(Line::Sample(s)) => s,
            other => panic!("not a sample: {other:?}"),
        }
    }

    #[test]
    fn samples_with_labels_escapes_and_timestamps() {
        let s = sample_of(text(
            r#"http_requests_total{method="post",code="200",path="C:\\dir \"x\"\nend"} 1027 1395066363000"#,
        ));
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(
            s.labels,
            [
                ("code".to_owned(), "200".to_owned()),
                ("method".to_owned(), "post".to_owned()),
                ("path".to_owned(), "C:\\dir \"x\"\nend".to_owned()),
            ]
        );
        assert_eq!(s.value, 1027.0);
        assert_eq!(s.timestamp_ns, Some(1_395_066_363_000_000_000));
        let s = sample_of(text("  metric_without_labels{} 12.47e3  \t"));
        assert_eq!(
            (s.value, s.labels.len(), s.timestamp_ns),
            (12470.0, 0, None)
        );
        let s = sample_of(text("a{ x = \"1\" , } -Inf"));
        assert_eq!(s.value, f64::NEG_INFINITY);
        assert_eq!(s.labels, [("x".to_owned(), "1".to_owned())]);
        assert!(sample_of(text("a NaN")).value.is_nan());
        assert_eq!(sample_of(text("a +Inf")).value, f64::INFINITY);
        assert_eq!(sample_of(text("a:b_c 1 -5")).timestamp_ns, Some(-5_000_000));
    }

    #[test]
    fn bad_lines_say_why() {
        assert_eq!(text("1abc 1"), Err(LineError::BadName("sample")));
        assert_eq!(text("abc"), Err(LineError::NoValue));
        assert_eq!(text("abc{} "), Err(LineError::NoValue));
        assert_eq!(text("abc one"), Err(LineError::BadValue));
        assert_eq!(text("abc 1 2.5"), Err(LineError::BadTimestamp));
        assert_eq!(text("abc 1 2 3"), Err(LineError::TrailingText));
        assert_eq!(text("abc{a=\"1} 2"), Err(LineError::UnclosedQuote));
        assert_eq!(text("abc{a=\"\\t\"} 2"), Err(LineError::BadEscape));
        assert_eq!(text("abc{a=1} 2"), Err(LineError::BadLabel));
        assert_eq!(text("abc{a=\"1\" b=\"2\"} 2"), Err(LineError::BadLabel));
        assert_eq!(
            text("abc{a=\"1\",a=\"2\"} 2"),
            Err(LineError::DuplicateLabel)
        );
        assert_eq!(text("abc{0a=\"1\"} 2"), Err(LineError::BadLabel));
        let many = format!(
            "m{{{}}} 1",
            (0..9)
                .map(|i| format!("l{i}=\"v\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(text(&many), Err(LineError::TooManyLabels(8)));
        assert_eq!(
            text("abc 1 99999999999999999"),
            Err(LineError::BadTimestamp)
        );
    }

    #[test]
    fn comments_and_metadata() {
        assert_eq!(text("# TYPE foo counter"), Ok(Line::Type("foo", "counter")));
        assert_eq!(text("# HELP foo some \\n text"), Ok(Line::Help("foo")));
        assert_eq!(text("# just a comment"), Ok(Line::Nothing));
        assert_eq!(text("#"), Ok(Line::Nothing));
        assert_eq!(text("# UNIT foo seconds"), Ok(Line::Nothing));
        assert_eq!(text("# EOF"), Ok(Line::Nothing));
        assert_eq!(text("# TYPE 9foo counter"), Err(LineError::BadName("TYPE")));
        assert_eq!(om("# UNIT foo seconds"), Ok(Line::Unit("foo", "seconds")));
        assert_eq!(om("# EOF"), Ok(Line::Eof));
        assert_eq!(text(""), Ok(Line::Nothing));
    }

    #[test]
    fn openmetrics_timestamps_are_seconds_and_exemplars_are_skipped() {
        let s = sample_of(om("foo_total{a=\"b\"} 17 1520879607.789"));
        assert_eq!(s.timestamp_ns, Some(1_520_879_607_789_000_000));
        let s = sample_of(om(
            "foo_bucket{le=\"0.1\"} 8 # {id=\"abc\"} 0.043 1520879607.7",
        ));
        assert_eq!((s.value, s.timestamp_ns), (8.0, None));
        let s = sample_of(om("foo_bucket{le=\"1\"} 9 1520879607 # {id=\"x\"} 1"));
        assert_eq!(s.timestamp_ns, Some(1_520_879_607_000_000_000));
        assert_eq!(
            sample_of(om("a 1 1.5e3")).timestamp_ns,
            Some(1_500_000_000_000)
        );
        assert_eq!(sample_of(om("a 1 -0.25")).timestamp_ns, Some(-250_000_000));
        assert_eq!(om("a 1 nope"), Err(LineError::BadTimestamp));
        assert_eq!(om("a 1 1e300"), Err(LineError::BadTimestamp));
    }
}
