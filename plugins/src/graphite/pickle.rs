//! Carbon's pickle protocol, safely.
//!
//! The decoder runs a small pickle machine that knows only what carbon
//! senders use — lists, tuples, strings, bytes, integers, floats, booleans,
//! `None`, the memo, marks and frames — for protocols 0 to 5. Every opcode
//! that could name or call Python code (GLOBAL, STACK_GLOBAL, REDUCE, BUILD,
//! INST, OBJ, NEWOBJ, extension registry, persistent ids) and every
//! container that is not a list or tuple is refused: nothing in a frame can
//! run anything. The encoder writes protocol 2, as carbon's own relay does.

use std::fmt;

/// A decoded pickle value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Str(String),
    Bytes(Vec<u8>),
    Int(i128),
    Float(f64),
    Bool(bool),
    None,
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleError(pub String);

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PickleError {}

fn err<T>(m: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError(m.into()))
}

/// Longest list or tuple, and most memo entries, a frame may build.
const MAX_ITEMS: usize = 1 << 22;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.data.len() - self.pos < n {
            return err("truncated pickle");
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return err("truncated pickle (no newline)");
        };
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).or_else(|_| err("text opcode argument is not UTF-8"))
    }

    fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }

    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let l = self.le(n)?;
        usize::try_from(l)
            .ok()
            .filter(|&l| l <= self.data.len() - self.pos)
            .map_or_else(|| err("length runs past the end of the frame"), Ok)
    }
}

/// Python's quoted string literal of protocol 0 (`'abc'` or `"abc"`), with
/// its backslash escapes.
fn unquote(s: &str) -> Result<Vec<u8>, PickleError> {
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
fn raw_unicode(b: &[u8]) -> Result<String, PickleError> {
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

fn two_complement(b: &[u8]) -> Result<i128, PickleError> {
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

fn string(bytes: Vec<u8>) -> Result<Value, PickleError> {
    String::from_utf8(bytes)
        .map(Value::Str)
        .or_else(|_| err("string is not UTF-8"))
}

/// Decode one pickle. Refuses anything that is not plain data.
pub fn decode(data: &[u8]) -> Result<Value, PickleError> {
    let mut r = Reader { data, pos: 0 };
    let mut stack: Vec<Value> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: Vec<Option<Value>> = Vec::new();
    let pop = |stack: &mut Vec<Value>| stack.pop().map_or_else(|| err("stack underflow"), Ok);
    let pop_mark =
        |stack: &mut Vec<Value>, marks: &mut Vec<usize>| -> Result<Vec<Value>, PickleError> {
            let m = marks.pop().map_or_else(|| err("no mark"), Ok)?;
            if m > stack.len() {
                return err("mark past the stack");
            }
            Ok(stack.split_off(m))
        };
    loop {
        let op = r.byte()?;
        match op {
            0x80 => {
                let v = r.byte()?;
                if v > 5 {
                    return err(format!("unsupported pickle protocol {v}"));
                }
            }
            0x95 => {
                r.le(8)?; // FRAME: a hint only
            }
            b'.' => {
                return match (stack.pop(), stack.is_empty()) {
                    (Some(v), true) => Ok(v),
                    _ => err("stack not empty at STOP"),
                };
            }
            b'(' => marks.push(stack.len()),
            b']' => stack.push(Value::List(Vec::new())),
            b')' => stack.push(Value::Tuple(Vec::new())),
            b'l' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::List(items));
            }
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if stack.len() < n {
                    return err("stack underflow");
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(Value::Tuple(items));
            }
            b'a' => {
                let v = pop(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(l)) if l.len() < MAX_ITEMS => l.push(v),
                    _ => return err("APPEND to something that is not a list"),
                }
            }
            b'e' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                match stack.last_mut() {
                    Some(Value::List(l)) if l.len() + items.len() <= MAX_ITEMS => l.extend(items),
                    _ => return err("APPENDS to something that is not a list"),
                }
            }
            b'0' => {
                pop(&mut stack)?;
            }
            b'1' => {
                pop_mark(&mut stack, &mut marks)?;
            }
            b'2' => {
                let v = stack
                    .last()
                    .cloned()
                    .map_or_else(|| err("stack underflow"), Ok)?;
                stack.push(v);
            }
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'I' => {
                let l = r.line()?;
                stack.push(match l {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    _ => Value::Int(l.trim().parse().or_else(|_| err("bad INT"))?),
                });
            }
            b'L' => {
                let l = r.line()?;
                let l = l.trim().trim_end_matches('L');
                stack.push(Value::Int(l.parse().or_else(|_| err("bad LONG"))?));
            }
            b'J' => stack.push(Value::Int(i128::from(r.le(4)? as u32 as i32))),
            b'K' => stack.push(Value::Int(i128::from(r.byte()?))),
            b'M' => stack.push(Value::Int(i128::from(r.le(2)?))),
            0x8a => {
                let n = r.len(1)?;
                stack.push(Value::Int(two_complement(r.take(n)?)?));
            }
            0x8b => {
                let n = r.len(4)?;
                stack.push(Value::Int(two_complement(r.take(n)?)?));
            }
            b'F' => {
                let l = r.line()?;
                stack.push(Value::Float(
                    l.trim().parse().or_else(|_| err("bad FLOAT"))?,
                ));
            }
            b'G' => {
                let b = r.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                stack.push(Value::Float(f64::from_be_bytes(a)));
            }
            b'S' => {
                let l = r.line()?;
                stack.push(match String::from_utf8(unquote(l)?) {
                    Ok(s) => Value::Str(s),
                    Err(e) => Value::Bytes(e.into_bytes()),
                });
            }
            b'V' => {
                let l = r.line()?;
                stack.push(Value::Str(raw_unicode(l.as_bytes())?));
            }
            b'T' | b'U' | b'B' | b'C' | 0x8e | b'X' | 0x8c | 0x8d => {
                let n = match op {
                    b'U' | b'C' | 0x8c => r.len(1)?,
                    b'T' | b'B' | b'X' => r.len(4)?,
                    _ => r.len(8)?,
                };
                let bytes = r.take(n)?.to_vec();
                stack.push(match op {
                    b'X' | 0x8c | 0x8d => string(bytes)?,
                    // Python 2 str (T, U) arrives as text when it is UTF-8.
                    b'T' | b'U' => match String::from_utf8(bytes) {
                        Ok(s) => Value::Str(s),
                        Err(e) => Value::Bytes(e.into_bytes()),
                    },
                    _ => Value::Bytes(bytes),
                });
            }
            b'p' | b'q' | b'r' | 0x94 => {
                let idx = match op {
                    b'p' => r.line()?.trim().parse().or_else(|_| err("bad PUT"))?,
                    b'q' => usize::from(r.byte()?),
                    b'r' => r.le(4)? as usize,
                    _ => memo.len(),
                };
                if idx >= MAX_ITEMS {
                    return err("memo index too large");
                }
                let v = stack
                    .last()
                    .cloned()
                    .map_or_else(|| err("PUT on an empty stack"), Ok)?;
                if memo.len() <= idx {
                    memo.resize(idx + 1, None);
                }
                memo[idx] = Some(v);
            }
            b'g' | b'h' | b'j' => {
                let idx: usize = match op {
                    b'g' => r.line()?.trim().parse().or_else(|_| err("bad GET"))?,
                    b'h' => usize::from(r.byte()?),
                    _ => r.le(4)? as usize,
                };
                let v = memo
                    .get(idx)
                    .cloned()
                    .flatten()
                    .map_or_else(|| err("GET of an unknown memo entry"), Ok)?;
                stack.push(v);
            }
            b'c' | 0x93 | b'R' | b'b' | b'i' | b'o' | 0x81 | 0x92 | 0x82..=0x84 | b'P' | b'Q' => {
                return err(format!(
                    "refused opcode 0x{op:02x}: it would name or call Python code"
                ));
            }
            other => {
                return err(format!(
                    "unsupported opcode 0x{other:02x}: only lists, tuples, strings and numbers are accepted"
                ));
            }
        }
        if stack.len() > MAX_ITEMS {
            return err("pickle too large");
        }
    }
}

/// A number as Python's `float()` would take it.
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Float(f) => Some(*f),
        Value::Int(i) => Some(*i as f64),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A metric path from a str or bytes.
pub fn as_path(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// Encode `(path, (timestamp, value))` tuples as a protocol-2 pickle list.
pub fn encode(points: &[(&str, i64, f64)], out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x80, 2, b']']);
    if points.is_empty() {
        out.push(b'.');
        return;
    }
    out.push(b'(');
    for (path, ts, value) in points {
        out.push(b'X');
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        match i32::try_from(*ts) {
            Ok(t) => {
                out.push(b'J');
                out.extend_from_slice(&t.to_le_bytes());
            }
            Err(_) => {
                out.extend_from_slice(&[0x8a, 8]);
                out.extend_from_slice(&ts.to_le_bytes());
            }
        }
        out.push(b'G');
        out.extend_from_slice(&value.to_be_bytes());
        out.extend_from_slice(&[0x86, 0x86]);
    }
    out.extend_from_slice(b"e.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_carbon_protocol_0_vector() {
        let v = decode(b"(lp0\n(S'param1'\np1\n(I1423931224\nF60.2\ntp2\ntp3\na.").unwrap();
        assert_eq!(
            v,
            Value::List(vec![Value::Tuple(vec![
                Value::Str("param1".into()),
                Value::Tuple(vec![Value::Int(1423931224), Value::Float(60.2)])
            ])])
        );
    }

    #[test]
    fn statsd_protocol_0_with_string_values() {
        let v = decode(b"(l(S'a.b.c'\n(L1234L\nS'5678'\ntta.").unwrap();
        let Value::List(items) = v else { panic!() };
        let Value::Tuple(t) = &items[0] else { panic!() };
        let Value::Tuple(p) = &t[1] else { panic!() };
        assert_eq!(as_f64(&p[1]), Some(5678.0));
    }

    #[test]
    fn encoder_output_decodes() {
        let mut out = Vec::new();
        encode(
            &[("a.b", 1_700_000_000, 1.5), ("c", 5_000_000_000, -2.0)],
            &mut out,
        );
        let v = decode(&out).unwrap();
        assert_eq!(
            v,
            Value::List(vec![
                Value::Tuple(vec![
                    Value::Str("a.b".into()),
                    Value::Tuple(vec![Value::Int(1_700_000_000), Value::Float(1.5)])
                ]),
                Value::Tuple(vec![
                    Value::Str("c".into()),
                    Value::Tuple(vec![Value::Int(5_000_000_000), Value::Float(-2.0)])
                ]),
            ])
        );
    }

    #[test]
    fn code_is_refused() {
        // pickle.dumps of an object whose __reduce__ returns (os.system, ("id",)), protocol 2.
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
        let e = decode(evil).unwrap_err();
        assert!(e.0.contains("refused"), "{e}");
        assert!(
            decode(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93.")
                .is_err()
        );
        assert!(decode(b"}.").is_err());
        assert!(decode(b"(l").is_err());
        assert!(decode(b"\x80\x02X\xff\xff\xff\x7f").is_err());
    }
}
