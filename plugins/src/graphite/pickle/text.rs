//! The text and number encodings inside pickle opcodes: protocol 0's
//! quoted strings and raw-unicode-escape, two's-complement longs.

use super::{PickleError, Value, err};

/// Python's quoted string literal of protocol 0 (`'abc'` or `"abc"`), with
/// its backslash escapes.
pub(super) fn unquote(s: &str) -> Result<Vec<u8>, PickleError> {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b[b.len() - 1] || !matches!(b[0], b'\'' | b'"') {
        return err("STRING argument is not quoted");
    }
    unescape(&b[1..b.len() - 1])
}

fn unescape(b: &[u8]) -> Result<Vec<u8>, PickleError> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        match b[i] {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'x' if b.len() >= i + 3 => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                let v = h.and_then(|h| u8::from_str_radix(h, 16).ok());
                match v {
                    Some(v) => out.push(v),
                    None => return err("bad \\x escape"),
                }
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Protocol 0's `raw-unicode-escape`: `\uXXXX` and `\UXXXXXXXX`, bytes as
/// Latin-1 otherwise.
pub(super) fn raw_unicode(b: &[u8]) -> Result<String, PickleError> {
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && matches!(b[i + 1], b'u' | b'U') {
            let n = if b[i + 1] == b'u' { 4 } else { 8 };
            let hex = b
                .get(i + 2..i + 2 + n)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32);
            match hex {
                Some(c) => out.push(c),
                None => return err("bad \\u escape"),
            }
            i += 2 + n;
        } else {
            out.push(char::from(b[i]));
            i += 1;
        }
    }
    Ok(out)
}

pub(super) fn two_complement(b: &[u8]) -> Result<i128, PickleError> {
    if b.len() > 16 {
        return err("integer too large");
    }
    let mut v: i128 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= i128::from(x) << (8 * i);
    }
    if let Some(&last) = b.last()
        && last & 0x80 != 0
        && b.len() < 16
    {
        v -= 1i128 << (8 * b.len());
    }
    Ok(v)
}

pub(super) fn string(bytes: Vec<u8>) -> Result<Value, PickleError> {
    String::from_utf8(bytes)
        .map(Value::Str)
        .or_else(|_| err("string is not UTF-8"))
}
