//! InfluxDB line protocol, written exactly as Telegraf's `influx` serializer
//! writes it: the same escaping, the same treatment of values that line
//! protocol cannot carry (NaN/Inf fields, empty tags and keys, trailing
//! backslashes), uint clamping unless `influx_uint_support`, optional field
//! sorting and line splitting at `influx_max_line_bytes`.
//!
//! Deliberate differences, so that what graft writes reads back equal in
//! InfluxDB 1.x and in graft's parser (which reads as 1.x does):
//! - Tabs, form feeds and carriage returns are written as they are, where
//!   Telegraf writes `\t`, `\f`, `\r`: InfluxDB 1.x stores such an escape
//!   as two characters, and reads the raw character back as itself. Inside a
//!   quoted string field a newline is written as it is too.
//! - In a measurement or a field key, a `=` or `"` right after a backslash
//!   gets a backslash of its own: 1.x would drop the backslash before it.
//!
//! What line protocol cannot carry at all: a newline outside a string field
//! (written `\n`, as Telegraf does), a backslash at the end of a name, key
//! or tag value (removed from tags, as Telegraf does), and a measurement or
//! first field key that starts with a tab or NUL (1.x skips them) or a
//! measurement that starts with `#` (a comment).

use crate::batch::{Batch, MetricRef};
use crate::value::FieldRef;

/// Serializer options, named after Telegraf's `influx_*` settings.
#[derive(Clone, Debug, Default)]
pub struct SerializerOptions {
    /// `influx_sort_fields`: write fields sorted by key.
    pub sort_fields: bool,
    /// `influx_uint_support`: write unsigned fields with `u`; otherwise they
    /// are written as integers, clamped to `i64::MAX`.
    pub uint_support: bool,
    /// `influx_omit_timestamp`: leave the timestamp out.
    pub omit_timestamp: bool,
    /// `influx_max_line_bytes`: split a metric's fields over several lines
    /// so that no line is longer; 0 means no limit.
    pub max_line_bytes: usize,
    /// Tags left out of every line (an output's `exclude_database_tag`).
    pub exclude_tags: Vec<String>,
}

/// Why a metric could not be written at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerializeError {
    #[error("metric has an empty name")]
    EmptyName,
    #[error("metric {series:?} has no field that line protocol can carry")]
    NoFields { series: String },
    #[error("metric {series:?} does not fit into {max} bytes per line")]
    LineTooLong { series: String, max: usize },
}

/// Writes metrics as line protocol.
#[derive(Clone, Debug, Default)]
pub struct Serializer {
    options: SerializerOptions,
}

impl Serializer {
    /// A serializer with the given options.
    pub fn new(options: SerializerOptions) -> Self {
        Self { options }
    }

    /// Append every metric of `batch` to `out`. Metrics that cannot be
    /// written are skipped; their errors are returned.
    pub fn write_batch(&self, batch: &Batch, out: &mut Vec<u8>) -> Vec<SerializeError> {
        let mut errors = Vec::new();
        for m in batch.iter() {
            if let Err(e) = self.write_metric(m, out) {
                errors.push(e);
            }
        }
        errors
    }

    /// Append one metric (one or more lines) to `out`.
    pub fn write_metric(&self, m: MetricRef<'_>, out: &mut Vec<u8>) -> Result<(), SerializeError> {
        let mut header = Vec::with_capacity(64);
        escape_into(&mut header, m.name(), NAME);
        if header.is_empty() {
            return Err(SerializeError::EmptyName);
        }
        for (k, v) in m.tags() {
            if self.options.exclude_tags.iter().any(|t| t == k) {
                continue;
            }
            let (k, v) = (escape_tag_part(k), escape_tag_part(v));
            if k.is_empty() || v.is_empty() {
                continue;
            }
            header.push(b',');
            header.extend_from_slice(&k);
            header.push(b'=');
            header.extend_from_slice(&v);
        }
        header.push(b' ');

        let mut footer = Vec::with_capacity(21);
        if !self.options.omit_timestamp {
            footer.push(b' ');
            footer.extend_from_slice(m.timestamp().to_string().as_bytes());
        }
        footer.push(b'\n');

        let mut fields: Vec<(&str, FieldRef<'_>)> = m.fields().collect();
        if self.options.sort_fields {
            fields.sort_by(|a, b| a.0.cmp(b.0));
        }
        let series = || String::from_utf8_lossy(&header[..header.len() - 1]).into_owned();

        let max = self.options.max_line_bytes;
        let start = out.len();
        let mut line_len = 0; // bytes of field pairs on the current line
        let mut first = true;
        let mut pair = Vec::with_capacity(32);
        for (key, value) in fields {
            pair.clear();
            if !self.pair_into(&mut pair, key, value) {
                continue;
            }
            let needed = header.len() + line_len + pair.len() + footer.len() + usize::from(!first);
            if max > 0 && needed > max {
                if first || header.len() + pair.len() + footer.len() > max {
                    out.truncate(start);
                    return Err(SerializeError::LineTooLong {
                        series: series(),
                        max,
                    });
                }
                out.extend_from_slice(&footer);
                line_len = 0;
                first = true;
            }
            if first {
                out.extend_from_slice(&header);
            } else {
                out.push(b',');
                line_len += 1;
            }
            out.extend_from_slice(&pair);
            line_len += pair.len();
            first = false;
        }
        if first {
            out.truncate(start);
            return Err(SerializeError::NoFields { series: series() });
        }
        out.extend_from_slice(&footer);
        Ok(())
    }

    /// Write `key=value`; false when the field cannot be carried.
    fn pair_into(&self, out: &mut Vec<u8>, key: &str, value: FieldRef<'_>) -> bool {
        escape_into(out, key, FIELD_KEY);
        if out.is_empty() {
            return false;
        }
        out.push(b'=');
        match value {
            FieldRef::Float(x) if !x.is_finite() => return false,
            FieldRef::Float(x) => out.extend_from_slice(x.to_string().as_bytes()),
            FieldRef::Int(x) => {
                out.extend_from_slice(x.to_string().as_bytes());
                out.push(b'i');
            }
            FieldRef::Uint(x) if self.options.uint_support => {
                out.extend_from_slice(x.to_string().as_bytes());
                out.push(b'u');
            }
            FieldRef::Uint(x) => {
                out.extend_from_slice(x.min(i64::MAX as u64).to_string().as_bytes());
                out.push(b'i');
            }
            FieldRef::Bool(x) => out.extend_from_slice(if x { b"true" } else { b"false" }),
            FieldRef::Str(s) => {
                out.push(b'"');
                escape_into(out, s, STRING);
                out.push(b'"');
            }
        }
        true
    }
}

/// Which characters a part of the line escapes.
struct Escapes {
    /// `,` and space, always.
    comma_space: bool,
    /// `=`, always.
    equals: bool,
    /// `=` and `"` when right after a backslash (measurements, field keys).
    after_backslash: bool,
    /// `"` and `\` (string fields).
    quote_backslash: bool,
}

const NAME: Escapes = Escapes {
    comma_space: true,
    equals: false,
    after_backslash: true,
    quote_backslash: false,
};
const TAG: Escapes = Escapes {
    comma_space: true,
    equals: true,
    after_backslash: false,
    quote_backslash: false,
};
const FIELD_KEY: Escapes = Escapes {
    comma_space: true,
    equals: true,
    after_backslash: true,
    quote_backslash: false,
};
const STRING: Escapes = Escapes {
    comma_space: false,
    equals: false,
    after_backslash: false,
    quote_backslash: true,
};

fn escape_into(out: &mut Vec<u8>, s: &str, e: Escapes) {
    let mut after_backslash = false;
    for &b in s.as_bytes() {
        let escaped: Option<&[u8]> = match b {
            // A newline would end the line; inside quotes it is kept.
            b'\n' if !e.quote_backslash => Some(b"\\n"),
            b',' if e.comma_space => Some(b"\\,"),
            b' ' if e.comma_space => Some(b"\\ "),
            b'=' if e.equals || (e.after_backslash && after_backslash) => Some(b"\\="),
            b'"' if e.quote_backslash || (e.after_backslash && after_backslash) => Some(b"\\\""),
            b'\\' if e.quote_backslash => Some(b"\\\\"),
            _ => None,
        };
        match escaped {
            Some(seq) => out.extend_from_slice(seq),
            None => out.push(b),
        }
        after_backslash = b == b'\\';
    }
}

/// Escape a tag key or value; trailing backslashes cannot be carried and are
/// removed, as Telegraf does.
fn escape_tag_part(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    escape_into(&mut out, s, TAG);
    while out.last() == Some(&b'\\') {
        out.pop();
    }
    out
}

#[cfg(test)]
#[path = "lineproto_tests.rs"]
mod tests;
