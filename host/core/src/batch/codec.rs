//! A compact binary encoding of a whole [`Batch`], for the disk buffer's
//! write-ahead log: the columns copied in bulk, little-endian, behind a
//! version byte and a fixed header of counts.
//!
//! Layout (version 1, or 2 when some metric has a kind; `uN`/`iN`
//! little-endian):
//!
//! ```text
//! u8  version = 1
//! u32 strings S | u32 string bytes B | u32 metrics N | u32 tags T | u32 fields F
//! B bytes      string data (UTF-8, end to end)
//! S × u32      string ends
//! N × u32      names            N × i64  timestamps
//! (N+1) × u32  tag offsets      T × u32  tag keys      T × u32  tag values
//! (N+1) × u32  field offsets    F × u32  field keys
//! F × u8       field types (0 float, 1 int, 2 uint, 3 bool, 4 string)
//! F × u64      field payloads (float bits, int, uint, 0/1, string symbol)
//! N × u8       kinds (version 2 only; see `MetricKind::as_byte`)
//! ```
//!
//! A batch of untyped metrics is written as version 1, byte for byte what
//! graft wrote before metrics had kinds, so old logs and peers read it.
//!
//! [`decode`] checks the total length the header implies against the input
//! before it allocates anything, so a lying header costs nothing; the
//! columns then go through [`Batch::from_parts`], which checks every
//! invariant.

use super::{Batch, BatchError, BatchParts};
use crate::kind::MetricKind;
use crate::value::Value;

/// The newest encoding this code writes and reads.
pub const VERSION: u8 = 2;

/// The encoding of batches without kinds.
const UNTYPED: u8 = 1;

/// Whether `byte` is a version byte [`decode`] reads.
pub fn is_version(byte: u8) -> bool {
    (UNTYPED..=VERSION).contains(&byte)
}

/// Version byte and five `u32` counts.
const HEADER: usize = 1 + 5 * 4;

/// Why bytes are not an encoded batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    #[error("unknown batch encoding version {found} (this graft reads versions 1 to {VERSION})")]
    Version { found: u8 },
    #[error("the encoded batch should be {expected} bytes long, but {actual} bytes were given")]
    Length { expected: u64, actual: usize },
    #[error("the string data is not UTF-8 (at byte {at})")]
    Utf8 { at: usize },
    #[error("field value {index} has the unknown type {tag}")]
    FieldType { index: usize, tag: u8 },
    #[error("field value {index} is a bool encoded as {payload}, neither 0 nor 1")]
    Bool { index: usize, payload: u64 },
    #[error("field value {index} is string symbol {payload}, which does not fit 32 bits")]
    Symbol { index: usize, payload: u64 },
    #[error("a batch without metrics is written as version 1, not {VERSION}")]
    EmptyTyped,
    #[error("metric {index} has the unknown kind {tag}")]
    Kind { index: usize, tag: u8 },
    #[error("the decoded columns do not form a valid batch: {0}")]
    Invalid(#[from] BatchError),
}

/// How many bytes [`encode`] appends for `batch`.
pub fn encoded_len(batch: &Batch) -> usize {
    let (data, ends) = batch.strings.raw_parts();
    let (n, t, f) = (batch.len(), batch.tag_keys.len(), batch.field_keys.len());
    let kinds = if batch.kinds.is_empty() { 0 } else { n };
    HEADER + data.len() + 4 * ends.len() + 12 * n + 8 * (n + 1) + 8 * t + 13 * f + kinds
}

/// Append the encoding of `batch` to `out`.
pub fn encode(batch: &Batch, out: &mut Vec<u8>) {
    out.reserve(encoded_len(batch));
    let (data, ends) = batch.strings.raw_parts();
    out.push(if batch.kinds.is_empty() {
        UNTYPED
    } else {
        VERSION
    });
    for count in [
        ends.len(),
        data.len(),
        batch.len(),
        batch.tag_keys.len(),
        batch.field_keys.len(),
    ] {
        // A batch's columns are indexed by u32 throughout.
        out.extend_from_slice(&(count as u32).to_le_bytes());
    }
    out.extend_from_slice(data.as_bytes());
    put(out, ends, |x| x.to_le_bytes());
    put(out, &batch.names, |x| x.to_le_bytes());
    put(out, &batch.timestamps, |x| x.to_le_bytes());
    put(out, &batch.tag_offsets, |x| x.to_le_bytes());
    put(out, &batch.tag_keys, |x| x.to_le_bytes());
    put(out, &batch.tag_values, |x| x.to_le_bytes());
    put(out, &batch.field_offsets, |x| x.to_le_bytes());
    put(out, &batch.field_keys, |x| x.to_le_bytes());
    out.extend(batch.field_values.iter().map(|v| match v {
        Value::Float(_) => 0u8,
        Value::Int(_) => 1,
        Value::Uint(_) => 2,
        Value::Bool(_) => 3,
        Value::Str(_) => 4,
    }));
    put(out, &batch.field_values, |v| {
        match *v {
            Value::Float(x) => x.to_bits(),
            Value::Int(x) => x as u64,
            Value::Uint(x) => x,
            Value::Bool(x) => u64::from(x),
            Value::Str(s) => u64::from(s),
        }
        .to_le_bytes()
    });
    out.extend(batch.kinds.iter().map(|k| k.as_byte()));
}

/// Append `xs`, each as the `W` bytes `bytes` gives, in one resize.
fn put<T, const W: usize>(out: &mut Vec<u8>, xs: &[T], bytes: impl Fn(&T) -> [u8; W]) {
    let start = out.len();
    out.resize(start + xs.len() * W, 0);
    for (dst, x) in out[start..].chunks_exact_mut(W).zip(xs) {
        dst.copy_from_slice(&bytes(x));
    }
}

/// Read a batch that [`encode`] wrote. Never panics; allocates at most
/// about twice `bytes.len()`; every invariant of the batch is checked.
pub fn decode(bytes: &[u8]) -> Result<Batch, CodecError> {
    let short = || CodecError::Length {
        expected: HEADER as u64,
        actual: bytes.len(),
    };
    let (&version, rest) = bytes.split_first().ok_or_else(short)?;
    if !is_version(version) {
        return Err(CodecError::Version { found: version });
    }
    let mut input = Input(rest);
    let mut count = || -> Result<u64, CodecError> {
        let b = input.take(4).map_err(|_| short())?;
        Ok(u64::from(u32_at(b)))
    };
    let (s, b, n, t, f) = (count()?, count()?, count()?, count()?, count()?);
    // u32 counts: this cannot overflow a u64.
    if version != UNTYPED && n == 0 {
        // Keeps the encoding canonical: an empty batch has no kinds.
        return Err(CodecError::EmptyTyped);
    }
    let kinds = if version == UNTYPED { 0 } else { n };
    let expected = HEADER as u64 + b + 4 * s + 12 * n + 8 * (n + 1) + 8 * t + 13 * f + kinds;
    if expected != bytes.len() as u64 {
        return Err(CodecError::Length {
            expected,
            actual: bytes.len(),
        });
    }
    // Every count is now known to fit the input.
    let (s, b, n, t, f) = (s as usize, b as usize, n as usize, t as usize, f as usize);
    let string_data = std::str::from_utf8(input.take(b)?)
        .map_err(|e| CodecError::Utf8 {
            at: e.valid_up_to(),
        })?
        .to_owned();
    let string_ends = input.u32s(s)?;
    let names = input.u32s(n)?;
    let timestamps = input.items(n, |c: [u8; 8]| i64::from_le_bytes(c))?;
    let tag_offsets = input.u32s(n + 1)?;
    let tag_keys = input.u32s(t)?;
    let tag_values = input.u32s(t)?;
    let field_offsets = input.u32s(n + 1)?;
    let field_keys = input.u32s(f)?;
    let types = input.take(f)?;
    let payloads = input.items(f, u64::from_le_bytes)?;
    let field_values = types
        .iter()
        .zip(payloads)
        .enumerate()
        .map(|(index, (&tag, payload))| value(index, tag, payload))
        .collect::<Result<Vec<_>, _>>()?;
    let kinds = input
        .take(kinds as usize)?
        .iter()
        .enumerate()
        .map(|(index, &tag)| MetricKind::from_byte(tag).ok_or(CodecError::Kind { index, tag }))
        .collect::<Result<Vec<_>, _>>()?;
    let parts = BatchParts {
        string_data,
        string_ends,
        names,
        timestamps,
        tag_offsets,
        tag_keys,
        tag_values,
        field_offsets,
        field_keys,
        field_values,
        kinds,
    };
    Ok(Batch::from_parts(parts)?)
}

fn value(index: usize, tag: u8, payload: u64) -> Result<Value, CodecError> {
    Ok(match tag {
        0 => Value::Float(f64::from_bits(payload)),
        1 => Value::Int(payload as i64),
        2 => Value::Uint(payload),
        3 => match payload {
            0 | 1 => Value::Bool(payload == 1),
            _ => return Err(CodecError::Bool { index, payload }),
        },
        4 => Value::Str(u32::try_from(payload).map_err(|_| CodecError::Symbol { index, payload })?),
        _ => return Err(CodecError::FieldType { index, tag }),
    })
}

fn u32_at(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// What is left of the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        let (head, rest) = self.0.split_at_checked(len).ok_or(CodecError::Length {
            expected: len as u64,
            actual: self.0.len(),
        })?;
        self.0 = rest;
        Ok(head)
    }

    fn items<T, const W: usize>(
        &mut self,
        count: usize,
        read: impl Fn([u8; W]) -> T,
    ) -> Result<Vec<T>, CodecError> {
        let bytes = self.take(count * W)?;
        Ok(bytes
            .chunks_exact(W)
            .map(|c| {
                let mut a = [0u8; W];
                a.copy_from_slice(c);
                read(a)
            })
            .collect())
    }

    fn u32s(&mut self, count: usize) -> Result<Vec<u32>, CodecError> {
        self.items(count, u32::from_le_bytes)
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
