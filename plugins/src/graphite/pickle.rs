//! Carbon's pickle protocol, safely.
//!
//! The decoder runs a small pickle machine that knows only what carbon
//! senders use — lists, tuples, strings, bytes, integers, floats, booleans,
//! `None`, the memo, marks and frames — for protocols 0 to 5. Every opcode
//! that could name or call Python code (GLOBAL, STACK_GLOBAL, REDUCE, BUILD,
//! INST, OBJ, NEWOBJ, extension registry, persistent ids) and every
//! container that is not a list or tuple is refused: nothing in a frame can
//! run anything. The encoder writes protocol 2, as carbon's own relay does.
//!
//! Nothing a frame says can make the decoder use more than its
//! [`PickleLimits`]: the machine is a loop over an explicit stack (no
//! recursion), containers nest at most `max_depth` deep (which also bounds
//! the recursion of dropping or comparing a value), the memo holds at most
//! `max_memo_entries`, and every value built, copied by `DUP`, stored by a
//! memo `PUT` or fetched by `GET` is charged its whole size against
//! `max_decoded_size` before it is made — so a frame that doubles a list
//! through the memo is refused after a few rounds, not after gigabytes. A
//! declared string or bytes length is checked against what is left of the
//! frame before anything is allocated.

mod machine;
#[cfg(test)]
mod tests;
mod text;

use std::collections::HashMap;

use machine::{Item, Machine, NODE, Reader};
use text::{raw_unicode, string, two_complement, unquote};

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// Not a pickle graft reads: truncated, malformed, or code.
    #[error("{0}")]
    Invalid(String),
    /// Containers nested deeper than `max_depth`.
    #[error("containers nested deeper than {0}")]
    Depth(usize),
    /// More memo entries than `max_memo_entries`.
    #[error("more than {0} memo entries")]
    Memo(usize),
    /// The decoded value would be larger than `max_decoded_size` bytes.
    #[error("decodes to more than {0} bytes")]
    DecodedSize(usize),
}

pub(crate) fn err<T>(m: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError::Invalid(m.into()))
}

/// What one frame may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickleLimits {
    /// Deepest nesting of lists and tuples (carbon's frames use 3).
    pub max_depth: usize,
    /// Most memo entries.
    pub max_memo_entries: usize,
    /// Most bytes the decoder may build, every copy counted.
    pub max_decoded_size: usize,
}

impl Default for PickleLimits {
    fn default() -> Self {
        Self {
            max_depth: 32,
            max_memo_entries: 1 << 18,
            max_decoded_size: 32 << 20,
        }
    }
}

/// Decode one pickle with the default [`PickleLimits`].
pub fn decode(data: &[u8]) -> Result<Value, PickleError> {
    decode_with(data, &PickleLimits::default())
}

/// Decode one pickle within `limits`. Refuses anything that is not plain
/// data. This is the entry point the fuzz target drives.
pub fn decode_with(data: &[u8], limits: &PickleLimits) -> Result<Value, PickleError> {
    let mut r = Reader { data, pos: 0 };
    let mut m = Machine {
        limits: *limits,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        spent: 0,
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
                return match (m.stack.pop(), m.stack.is_empty()) {
                    (Some(v), true) => Ok(v.v),
                    _ => err("stack not empty at STOP"),
                };
            }
            b'(' => {
                m.charge(std::mem::size_of::<usize>())?;
                m.marks.push(m.stack.len());
            }
            b']' => m.container(Vec::new(), true)?,
            b')' => m.container(Vec::new(), false)?,
            b'l' | b't' => {
                let items = m.pop_mark()?;
                m.container(items, op == b'l')?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if m.stack.len() < n {
                    return err("stack underflow");
                }
                let items = m.stack.split_off(m.stack.len() - n);
                m.container(items, false)?;
            }
            b'a' => {
                let v = m.pop()?;
                m.append(vec![v])?;
            }
            b'e' => {
                let items = m.pop_mark()?;
                m.append(items)?;
            }
            b'0' => {
                m.pop()?;
            }
            b'1' => {
                m.pop_mark()?;
            }
            b'2' => {
                let v = m.copy_top()?;
                m.stack.push(v);
            }
            b'N' => m.push_scalar(Value::None)?,
            0x88 => m.push_scalar(Value::Bool(true))?,
            0x89 => m.push_scalar(Value::Bool(false))?,
            b'I' => {
                let l = r.line()?;
                m.push_scalar(match l {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    _ => Value::Int(l.trim().parse().or_else(|_| err("bad INT"))?),
                })?;
            }
            b'L' => {
                let l = r.line()?;
                let l = l.trim().trim_end_matches('L');
                m.push_scalar(Value::Int(l.parse().or_else(|_| err("bad LONG"))?))?;
            }
            b'J' => m.push_scalar(Value::Int(i128::from(r.le(4)? as u32 as i32)))?,
            b'K' => m.push_scalar(Value::Int(i128::from(r.byte()?)))?,
            b'M' => m.push_scalar(Value::Int(i128::from(r.le(2)?)))?,
            0x8a | 0x8b => {
                let n = r.len(if op == 0x8a { 1 } else { 4 })?;
                m.push_scalar(Value::Int(two_complement(r.take(n)?)?))?;
            }
            b'F' => {
                let l = r.line()?;
                m.push_scalar(Value::Float(
                    l.trim().parse().or_else(|_| err("bad FLOAT"))?,
                ))?;
            }
            b'G' => {
                let b = r.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                m.push_scalar(Value::Float(f64::from_be_bytes(a)))?;
            }
            b'S' => {
                let l = r.line()?;
                m.push_scalar(match String::from_utf8(unquote(l)?) {
                    Ok(s) => Value::Str(s),
                    Err(e) => Value::Bytes(e.into_bytes()),
                })?;
            }
            b'V' => {
                let l = r.line()?;
                m.push_scalar(Value::Str(raw_unicode(l.as_bytes())?))?;
            }
            b'T' | b'U' | b'B' | b'C' | 0x8e | b'X' | 0x8c | 0x8d => {
                // The length is checked against the rest of the frame
                // before anything is allocated.
                let n = match op {
                    b'U' | b'C' | 0x8c => r.len(1)?,
                    b'T' | b'B' | b'X' => r.len(4)?,
                    _ => r.len(8)?,
                };
                m.charge(NODE + n)?;
                let bytes = r.take(n)?.to_vec();
                let v = match op {
                    b'X' | 0x8c | 0x8d => string(bytes)?,
                    // Python 2 str (T, U) arrives as text when it is UTF-8.
                    b'T' | b'U' => match String::from_utf8(bytes) {
                        Ok(s) => Value::Str(s),
                        Err(e) => Value::Bytes(e.into_bytes()),
                    },
                    _ => Value::Bytes(bytes),
                };
                // Charged above already.
                m.stack.push(Item::scalar(v));
            }
            b'p' | b'q' | b'r' | 0x94 => {
                let idx = match op {
                    b'p' => r.line()?.trim().parse().or_else(|_| err("bad PUT"))?,
                    b'q' => usize::from(r.byte()?),
                    b'r' => r.le(4)? as usize,
                    _ => m.memo.len(),
                };
                m.put(idx)?;
            }
            b'g' | b'h' | b'j' => {
                let idx: usize = match op {
                    b'g' => r.line()?.trim().parse().or_else(|_| err("bad GET"))?,
                    b'h' => usize::from(r.byte()?),
                    _ => r.le(4)? as usize,
                };
                m.get(idx)?;
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
