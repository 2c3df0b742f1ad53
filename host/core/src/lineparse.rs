//! Parsing InfluxDB line protocol into a batch.
//!
//! The full grammar: measurement, tags and fields with their escapes
//! (`\,` `\=` `\ ` `\\` in names, keys and tag values; `\"` and `\\` in
//! string fields; any other backslash is kept as written), integers `i`,
//! unsigned `u`, floats (also `1.`, `.5`, exponents), booleans in all ten
//! spellings, comments, `\r\n`, a newline inside a quoted string, and the
//! timestamp in the request's precision. A bad line is reported with its
//! number and a short reason and skipped; the other lines are kept.

use std::borrow::Cow;

use crate::builder::BatchBuilder;
use crate::value::FieldRef;

/// Unit of the timestamps in the text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    fn nanos(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        }
    }

    /// From the `precision` query parameter: `ns`/`n`, `us`/`u`, `ms`, `s`,
    /// and InfluxDB 1.x's `m` and `h`.
    pub fn from_param(s: &str) -> Option<Self> {
        Some(match s {
            "" | "n" | "ns" => Precision::Nanoseconds,
            "u" | "us" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }
}

/// A line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number in the text.
    pub line: usize,
    pub reason: String,
}

/// A field value as written, strings still escaped.
enum RawValue<'a> {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(&'a str),
}

/// Where the scanner is in a line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Measurement and tags: quotes are plain characters.
    Head,
    /// A field key: quotes are plain characters.
    Key,
    /// Right after a field's `=`.
    ValueStart,
    /// Inside a quoted string value: only `\"` and `\\` are special,
    /// and a newline belongs to the string.
    Str,
    /// An unquoted value, or after a string's closing quote.
    Value,
    /// After the field set: the timestamp.
    Tail,
}

impl Part {
    /// The part after byte `c` (not a backslash, not a newline).
    fn next(self, c: u8) -> Part {
        match (self, c) {
            (Part::Head, b' ') => Part::Key,
            (Part::Key, b'=') => Part::ValueStart,
            (Part::Key, b' ') => Part::Tail,
            (Part::ValueStart, b'"') => Part::Str,
            (Part::ValueStart | Part::Value, b',') => Part::Key,
            (Part::ValueStart | Part::Value, b' ') => Part::Tail,
            (Part::ValueStart, _) => Part::Value,
            (Part::Str, b'"') => Part::Value,
            (p, _) => p,
        }
    }
}

/// Split `text` into lines, keeping a newline that is inside a quoted
/// string field as part of its line. Yields (1-based number, line).
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut lineno = 1;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let first = lineno;
        // Fast path: a line without a quote cannot hold a quoted newline.
        let nl = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |n| start + n);
        if memchr::memchr(b'"', &bytes[start..nl]).is_none() {
            let line = &text[start..nl];
            start = nl + 1;
            lineno += 1;
            return Some((first, line.strip_suffix('\r').unwrap_or(line)));
        }
        let (mut i, mut part) = (start, Part::Head);
        let mut first_newline = None;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if bytes.get(i + 1).is_some_and(|&n| n != b'\n') => {
                    if part == Part::ValueStart {
                        part = Part::Value;
                    }
                    i += 1;
                }
                b'\n' => {
                    lineno += 1;
                    first_newline.get_or_insert(i);
                    if part != Part::Str {
                        break;
                    }
                }
                c => part = part.next(c),
            }
            i += 1;
        }
        // A quote that never closes: the line ends at its first newline, so
        // that one bad line does not swallow the rest.
        if part == Part::Str
            && let Some(nl) = first_newline
        {
            i = nl;
            lineno = first + 1;
        }
        let end = i.min(bytes.len());
        let line = &text[start..end];
        start = end + 1;
        Some((first, line.strip_suffix('\r').unwrap_or(line)))
    })
}

/// The end of a field set starting at `from`: the first space outside a
/// string value, or the end of the line.
fn field_set_end(b: &[u8], from: usize) -> Result<usize, &'static str> {
    if memchr::memchr(b'"', &b[from..]).is_none() {
        return Ok(scan(b, from, b" "));
    }
    let (mut i, mut part) = (from, Part::Key);
    while i < b.len() {
        if b[i] == b'\\' {
            if part == Part::ValueStart {
                part = Part::Value;
            }
            i += 2;
            continue;
        }
        part = part.next(b[i]);
        if part == Part::Tail {
            return Ok(i);
        }
        i += 1;
    }
    if part == Part::Str {
        return Err("unterminated string field");
    }
    Ok(b.len())
}

/// Index of the first unescaped byte in `s` from `stop`, or `s.len()`.
fn scan(s: &[u8], from: usize, stop: &[u8]) -> usize {
    let mut i = from;
    while i < s.len() {
        if s[i] == b'\\' {
            i += 2;
            continue;
        }
        if stop.contains(&s[i]) {
            return i;
        }
        i += 1;
    }
    s.len()
}

/// Unescape a name, key or tag value.
fn unescape(raw: &str) -> Result<Cow<'_, str>, &'static str> {
    let mut backslash = false;
    for &b in raw.as_bytes() {
        if b < 0x20 || b == 0x7f {
            return Err("a name, key or tag value holds a control character");
        }
        backslash |= b == b'\\';
    }
    if !backslash {
        return Ok(raw.into());
    }
    if raw.ends_with('\\') && !raw.ends_with("\\\\") {
        return Err("a name, key or tag value ends with a backslash");
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && matches!(n, ',' | '=' | ' ' | '\\')
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    Ok(out.into())
}

fn unescape_string(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return raw.into();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && matches!(n, '"' | '\\')
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out.into()
}

fn parse_value(v: &str) -> Result<RawValue<'_>, &'static str> {
    let b = v.as_bytes();
    match b.first() {
        None => Err("a field has no value"),
        Some(b'"') => {
            if b.len() < 2 || b[b.len() - 1] != b'"' || scan(b, 1, b"\"") != b.len() - 1 {
                return Err("unterminated string field");
            }
            Ok(RawValue::Str(&v[1..v.len() - 1]))
        }
        Some(_) => match v {
            "t" | "T" | "true" | "True" | "TRUE" => Ok(RawValue::Bool(true)),
            "f" | "F" | "false" | "False" | "FALSE" => Ok(RawValue::Bool(false)),
            _ if v.ends_with('i') => v[..v.len() - 1]
                .parse::<i64>()
                .map(RawValue::Int)
                .map_err(|_| "invalid or out-of-range integer"),
            _ if v.ends_with('u') => {
                let digits = &v[..v.len() - 1];
                if digits.starts_with(['-', '+']) {
                    return Err("invalid or out-of-range unsigned integer");
                }
                digits
                    .parse::<u64>()
                    .map(RawValue::Uint)
                    .map_err(|_| "invalid or out-of-range unsigned integer")
            }
            _ => {
                // Rust also reads "inf" and "NaN"; line protocol does not.
                if !b
                    .iter()
                    .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E'))
                    || b.starts_with(b"+")
                {
                    return Err("invalid field value");
                }
                match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => Ok(RawValue::Float(x)),
                    Ok(_) => Err("float out of range"),
                    Err(_) => Err("invalid number"),
                }
            }
        },
    }
}

/// Buffers reused from line to line.
#[derive(Default)]
struct Scratch<'t> {
    tags: Vec<(Cow<'t, str>, Cow<'t, str>)>,
    fields: Vec<(Cow<'t, str>, RawValue<'t>)>,
}

/// Parse one line (not blank, not a comment) into `out`.
fn parse_line<'t>(
    line: &'t str,
    precision: Precision,
    default_time: i64,
    out: &mut BatchBuilder,
    scratch: &mut Scratch<'t>,
) -> Result<(), &'static str> {
    scratch.tags.clear();
    scratch.fields.clear();
    let Scratch { tags, fields } = scratch;
    let b = line.as_bytes();
    let name_end = scan(b, 0, b", ");
    let name = unescape(&line[..name_end])?;
    if name.is_empty() {
        return Err("missing measurement");
    }
    let mut i = name_end;
    while i < b.len() && b[i] == b',' {
        let end = scan(b, i + 1, b", ");
        let pair = &line[i + 1..end];
        let eq = scan(pair.as_bytes(), 0, b"=");
        if eq == pair.len() {
            return Err("a tag has no `=`");
        }
        let (k, v) = (unescape(&pair[..eq])?, unescape(&pair[eq + 1..])?);
        if k.is_empty() || v.is_empty() {
            return Err("empty tag key or value");
        }
        tags.push((k, v));
        i = end;
    }
    if i >= b.len() || b[i] != b' ' {
        return Err("missing fields");
    }
    i += 1;
    // Fields: up to the next unescaped space outside a quoted string.
    let fields_start = i;
    i = field_set_end(b, i)?;
    let fields_text = &line[fields_start..i.min(b.len())];
    if fields_text.is_empty() {
        return Err("missing fields");
    }
    let rest = line.get(i + 1..).unwrap_or("").trim_matches(' ');
    let timestamp = if rest.is_empty() {
        default_time
    } else {
        let t: i64 = rest.parse().map_err(|_| "invalid timestamp")?;
        t.checked_mul(precision.nanos())
            .ok_or("timestamp out of range")?
    };

    let fb = fields_text.as_bytes();
    let mut j = 0;
    while j <= fb.len() {
        let eq = scan(fb, j, b"=,");
        if eq >= fb.len() || fb[eq] != b'=' {
            return Err("a field has no `=`");
        }
        let key = unescape(&fields_text[j..eq])?;
        if key.is_empty() {
            return Err("empty field key");
        }
        // The value ends at the next comma outside a string.
        let mut k = eq + 1;
        let mut q = false;
        while k < fb.len() {
            match fb[k] {
                b'\\' if q => k += 1,
                b'"' => q = !q,
                b',' if !q => break,
                _ => {}
            }
            k += 1;
        }
        let value = parse_value(&fields_text[eq + 1..k.min(fb.len())])?;
        fields.retain(|(existing, _)| *existing != key);
        fields.push((key, value));
        j = k + 1;
        if k >= fb.len() {
            break;
        }
    }

    for (n, (k, _)) in tags.iter().enumerate() {
        if tags[..n].iter().any(|(earlier, _)| earlier == k) {
            return Err("duplicate tag key");
        }
    }
    let mut m = out.metric(&name, timestamp);
    for (k, v) in tags.iter() {
        m.tag(k, v);
    }
    for (k, v) in fields.iter() {
        match v {
            RawValue::Float(x) => m.field(k, *x),
            RawValue::Int(x) => m.field(k, *x),
            RawValue::Uint(x) => m.field(k, *x),
            RawValue::Bool(x) => m.field(k, *x),
            RawValue::Str(s) => m.field(k, FieldRef::Str(&unescape_string(s))),
        };
    }
    Ok(())
}

/// Parse `text` into `out`. Lines without a timestamp get `default_time`
/// (nanoseconds). Returns the lines that could not be parsed; every other
/// line is in `out`.
pub fn parse_into(
    text: &str,
    precision: Precision,
    default_time: i64,
    out: &mut BatchBuilder,
) -> Vec<ParseError> {
    let mut errors = Vec::new();
    let mut scratch = Scratch::default();
    for (line, content) in lines(text) {
        let trimmed = content.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Err(reason) = parse_line(trimmed, precision, default_time, out, &mut scratch) {
            errors.push(ParseError {
                line,
                reason: reason.to_owned(),
            });
        }
    }
    errors
}

#[cfg(test)]
#[path = "lineparse_tests.rs"]
mod tests;
