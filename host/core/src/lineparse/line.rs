//! One line of line protocol into one metric, read as InfluxDB 1.x reads
//! it (`models/points.go`), in one pass and in time linear in its length.
//!
//! - In the measurement, tag keys, tag values and field keys a byte is
//!   escaped when a backslash stands right before it; `\\` is not an escape
//!   of its own (`a\\ b` is the tag value `a\ b`). Unescaping drops a
//!   backslash before `,`, space, `=` (and `"` in measurements and field
//!   keys); every other backslash is kept.
//! - Any number of spaces, tabs and NULs may stand before the line and
//!   between its sections; after the timestamp only spaces.
//! - Control characters are ordinary characters in names and values.
//! - Floats as Go's `ParseFloat` reads them over 1.x's character set
//!   (`05`, `1.`, `.5`, `1.e5`); integers `i`; unsigned `u` (which 1.x
//!   refuses and 2.x and Telegraf accept); booleans in all ten spellings;
//!   strings with `\"` and `\\` as escapes.
//! - Duplicate tag keys are an error; of duplicate field keys the last
//!   value wins, in the place of the first.

use std::borrow::Cow;

use super::{ParseErrorKind, ParseOptions};
use crate::builder::BatchBuilder;
use crate::value::FieldRef;

/// Why a line was refused.
pub(crate) type Bad = (ParseErrorKind, &'static str);

fn syntax(reason: &'static str) -> Bad {
    (ParseErrorKind::Syntax, reason)
}

/// A field value as written, strings still escaped.
enum RawValue<'a> {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(&'a str),
}

/// Buffers reused from line to line.
#[derive(Default)]
pub(crate) struct Scratch {
    /// (key start, key end, value start, value end) of the tags.
    tags: Vec<(usize, usize, usize, usize)>,
    /// (key start, key end) of the fields, in the line's order.
    fields: Vec<(usize, usize)>,
    /// Field indices sorted by key, to find duplicates.
    order: Vec<usize>,
}

/// Bytes that separate the parts of a line.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\0')
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    i
}

/// The first of `a`, `b`, `c` at or after `from` that no backslash stands
/// right before.
fn find3(s: &[u8], from: usize, a: u8, b: u8, c: u8) -> Option<usize> {
    let mut i = from;
    while let Some(n) = memchr::memchr3(a, b, c, &s[i.min(s.len())..]) {
        let at = i + n;
        if at == 0 || s[at - 1] != b'\\' {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Drop each backslash that stands right before one of `special`.
fn unescape<'a>(s: &'a str, special: &[u8]) -> Cow<'a, str> {
    let b = s.as_bytes();
    let mut out: Option<String> = None;
    let mut last = 0;
    let mut from = 0;
    while let Some(n) = memchr::memchr(b'\\', &b[from..]) {
        let at = from + n;
        if b.get(at + 1).is_some_and(|c| special.contains(c)) {
            let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
            o.push_str(&s[last..at]);
            last = at + 1;
            from = at + 2;
        } else {
            from = at + 1;
        }
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[last..]);
            Cow::Owned(o)
        }
    }
}

const NAME_SPECIAL: &[u8] = b", =\"";
const TAG_SPECIAL: &[u8] = b", =";

/// A string field's content: `\\` and `\"` are escapes.
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

/// The end of a string value starting at its opening quote `from`: after a
/// closing quote the value goes on to the next comma or space, and a
/// further quote opens it again (as 1.x scans it).
fn string_end(b: &[u8], from: usize) -> Result<usize, Bad> {
    let mut quoted = true;
    let mut i = from + 1;
    while i < b.len() {
        if quoted {
            match memchr::memchr2(b'"', b'\\', &b[i..]) {
                None => break,
                Some(n) => i += n,
            }
        }
        match b[i] {
            b'\\' => i += 2,
            b'"' => {
                quoted = !quoted;
                i += 1;
            }
            b',' | b' ' if !quoted => return Ok(i),
            _ => i += 1,
        }
    }
    if quoted {
        return Err(syntax("unbalanced quotes"));
    }
    Ok(b.len())
}

/// A number as 1.x's `scanNumber` and Go's `strconv` read it.
fn number(v: &str) -> Result<RawValue<'_>, Bad> {
    let b = v.as_bytes();
    let (digits, suffix) = match b.last() {
        Some(b'i') => (&v[..v.len() - 1], Some(b'i')),
        Some(b'u') => (&v[..v.len() - 1], Some(b'u')),
        _ => (v, None),
    };
    let d = digits.as_bytes();
    let unsigned = d.strip_prefix(b"-").unwrap_or(d);
    match suffix {
        Some(s) => {
            if unsigned.is_empty() || !unsigned.iter().all(u8::is_ascii_digit) {
                return Err(syntax("invalid number"));
            }
            if s == b'i' {
                digits
                    .parse()
                    .map(RawValue::Int)
                    .map_err(|_| syntax("invalid or out-of-range integer"))
            } else if d[0] == b'-' {
                Err(syntax("invalid or out-of-range unsigned integer"))
            } else {
                digits
                    .parse()
                    .map(RawValue::Uint)
                    .map_err(|_| syntax("invalid or out-of-range unsigned integer"))
            }
        }
        None => {
            // 1.x's character set: digits, one `.`, `e`/`E` (not first),
            // a sign only at the start or right after the exponent mark.
            let mut dots = 0;
            for (n, &c) in unsigned.iter().enumerate() {
                let ok = match c {
                    b'0'..=b'9' => true,
                    b'.' => {
                        dots += 1;
                        dots == 1
                    }
                    b'e' | b'E' => n > 0 || unsigned.len() < d.len(),
                    b'+' | b'-' => n > 0 && matches!(unsigned[n - 1], b'e' | b'E'),
                    _ => false,
                };
                if !ok {
                    return Err(syntax("invalid number"));
                }
            }
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(RawValue::Float(x)),
                Ok(_) => Err(syntax("invalid float (out of range)")),
                Err(_) => Err(syntax("invalid number")),
            }
        }
    }
}

fn boolean(v: &str) -> Result<RawValue<'_>, Bad> {
    match v {
        "t" | "T" | "true" | "True" | "TRUE" => Ok(RawValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => Ok(RawValue::Bool(false)),
        _ => Err(syntax("invalid boolean")),
    }
}

/// The value starting at `v` (not at the end, not a comma or space); its
/// end and what it is.
fn value(line: &str, v: usize) -> Result<(usize, RawValue<'_>), Bad> {
    let b = line.as_bytes();
    if b[v] == b'"' {
        let end = string_end(b, v)?;
        // As 1.x: the string is what stands between the first and the last
        // byte of the value (text after the closing quote is 1.x's quirk).
        if !line.is_char_boundary(end - 1) {
            return Err(syntax("invalid string (text after its closing quote)"));
        }
        return Ok((end, RawValue::Str(&line[v + 1..end - 1])));
    }
    let end = memchr::memchr2(b',', b' ', &b[v..]).map_or(b.len(), |n| v + n);
    let text = &line[v..end];
    let parsed = match b[v] {
        b'0'..=b'9' | b'.' | b'-' => number(text)?,
        b'N' | b'n' => return Err(syntax("invalid number")),
        _ => boolean(text)?,
    };
    Ok((end, parsed))
}

/// Parse one line (leading spaces removed, not empty, not a comment) into
/// `out`.
pub(crate) fn parse_line(
    line: &str,
    options: &ParseOptions,
    out: &mut BatchBuilder,
    scratch: &mut Scratch,
) -> Result<(), Bad> {
    let b = line.as_bytes();
    if b[0] == b',' {
        return Err(syntax("missing measurement"));
    }
    let mut i = find3(b, 1, b',', b' ', b' ').ok_or(syntax("missing fields"))?;
    let name_end = i;

    let tags = &mut scratch.tags;
    tags.clear();
    while b[i] == b',' {
        let k = i + 1;
        if k >= b.len() || matches!(b[k], b' ' | b',' | b'=') {
            return Err(syntax("missing tag key"));
        }
        let eq = find3(b, k + 1, b'=', b',', b' ').ok_or(syntax("missing tag value"))?;
        if b[eq] != b'=' {
            return Err(syntax("missing tag value"));
        }
        let v = eq + 1;
        if v >= b.len() || matches!(b[v], b' ' | b',') {
            return Err(syntax("missing tag value"));
        }
        let end = find3(b, v + 1, b'=', b',', b' ').ok_or(syntax("missing fields"))?;
        if b[end] == b'=' {
            return Err(syntax("invalid tag format"));
        }
        if options.max_tags > 0 && tags.len() >= options.max_tags {
            return Err((ParseErrorKind::TooManyTags, "more tags than max_tags"));
        }
        tags.push((k, eq, v, end));
        i = end;
    }

    let mut j = skip_space(b, i);
    if j >= b.len() {
        return Err(syntax("missing fields"));
    }
    let fields = &mut scratch.fields;
    fields.clear();
    let mut values = Vec::new();
    let ts_start = loop {
        let eq = find3(b, j, b'=', b',', b' ').ok_or(syntax("invalid field format"))?;
        if b[eq] != b'=' {
            return Err(syntax("invalid field format"));
        }
        if eq == j {
            return Err(syntax("missing field key"));
        }
        let v = eq + 1;
        if v >= b.len() || matches!(b[v], b',' | b' ') {
            return Err(syntax("missing field value"));
        }
        if options.max_fields > 0 && fields.len() >= options.max_fields {
            return Err((ParseErrorKind::TooManyFields, "more fields than max_fields"));
        }
        let (end, parsed) = value(line, v)?;
        fields.push((j, eq));
        values.push(parsed);
        match b.get(end) {
            None => break end,
            Some(b' ') => break end,
            _ => j = end + 1,
        }
    };

    let t = skip_space(b, ts_start);
    let timestamp = if t >= b.len() {
        options.default_time
    } else {
        let end = memchr::memchr(b' ', &b[t..]).map_or(b.len(), |n| t + n);
        let digits = &b[t..end];
        let body = digits.strip_prefix(b"-").unwrap_or(digits);
        if body.is_empty() || !body.iter().all(u8::is_ascii_digit) {
            return Err(syntax("bad timestamp"));
        }
        if b[end..].iter().any(|&c| c != b' ') {
            return Err(syntax("point is invalid (text after the timestamp)"));
        }
        let n: i64 = line[t..end]
            .parse()
            .map_err(|_| syntax("timestamp out of range"))?;
        n.checked_mul(options.precision.nanos())
            .ok_or(syntax("timestamp out of range"))?
    };

    let name = unescape(&line[..name_end], NAME_SPECIAL);
    // Tags sorted once by key: duplicates are neighbours.
    let mut keyed: Vec<(Cow<'_, str>, Cow<'_, str>)> = tags
        .iter()
        .map(|&(k, e, v, end)| {
            (
                unescape(&line[k..e], TAG_SPECIAL),
                unescape(&line[v..end], TAG_SPECIAL),
            )
        })
        .collect();
    keyed.sort_unstable_by(|x, y| x.0.cmp(&y.0));
    if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(syntax("duplicate tag key"));
    }

    let keys: Vec<Cow<'_, str>> = fields
        .iter()
        .map(|&(k, e)| unescape(&line[k..e], NAME_SPECIAL))
        .collect();
    let take = last_value_wins(&keys, &mut scratch.order);

    let mut m = out.metric(&name, timestamp);
    for (k, v) in &keyed {
        m.tag(k, v);
    }
    for (key, from) in keys.iter().zip(take) {
        let Some(from) = from else { continue };
        match &values[from] {
            RawValue::Float(x) => m.field(key, *x),
            RawValue::Int(x) => m.field(key, *x),
            RawValue::Uint(x) => m.field(key, *x),
            RawValue::Bool(x) => m.field(key, *x),
            RawValue::Str(s) => m.field(key, FieldRef::Str(&unescape_string(s))),
        };
    }
    Ok(())
}

/// For each field key: the index of the value it takes, or `None` when an
/// earlier field has the same key. Of equal keys the last value wins, in
/// the first one's place. One sort, so linear-logarithmic in the count.
fn last_value_wins(keys: &[Cow<'_, str>], order: &mut Vec<usize>) -> Vec<Option<usize>> {
    let mut take: Vec<Option<usize>> = (0..keys.len()).map(Some).collect();
    if keys.len() < 2 {
        return take;
    }
    order.clear();
    order.extend(0..keys.len());
    // Stable: equal keys keep their order in the line.
    order.sort_by(|&x, &y| keys[x].cmp(&keys[y]));
    for group in order.chunk_by(|&x, &y| keys[x] == keys[y]) {
        if let [first, .., last] = group {
            take[*first] = Some(*last);
            for &dup in &group[1..] {
                take[dup] = None;
            }
        }
    }
    take
}
