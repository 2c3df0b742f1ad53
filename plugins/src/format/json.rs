//! JSON both ways, as Telegraf has it.
//!
//! Writing (Telegraf's `json` serializer): one object per metric with its
//! keys sorted, `{"fields":{..},"name":"..","tags":{..},"timestamp":N}`,
//! the timestamp in `json_timestamp_units` (truncated to a power of ten, 1 s
//! by default) or as text in `json_timestamp_format`; a batch is
//! `{"metrics":[..]}`. Each body ends with a newline.
//!
//! Reading (Telegraf's `json` parser, version 1): an object, or an array of
//! objects, optionally picked out of the document by `json_query` (a GJSON
//! path of keys and indices). Nested objects and arrays are flattened with
//! `_` (`b_c`, `list_0`); numbers become float fields; strings and
//! booleans are kept only when `tag_keys` or `json_string_fields` (globs,
//! on the flattened keys) name them; `json_name_key` and `json_time_key`
//! pick the name and the time.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use globset::{Glob, GlobSet, GlobSetBuilder};
use graft_core::{BatchBuilder, FieldRef, MetricRef};
use serde_json::Value;

use super::time::{TimeFormat, format_rfc3339, parse_rfc3339};

/// How the serializer writes timestamps.
#[derive(Debug, Clone, Copy)]
pub enum JsonTime {
    /// An integer count of this many nanoseconds.
    Units(i64),
    /// Text in UTC; `true` with the fraction.
    Text { fraction: bool },
}

/// Append `m` as one JSON object (no newline).
pub fn write_metric(m: MetricRef<'_>, time: JsonTime, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"fields\":{");
    let mut fields: Vec<(&str, FieldRef<'_>)> = m.fields().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut first = true;
    for (k, v) in fields {
        if let FieldRef::Float(x) = v
            && !x.is_finite()
        {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(k, out);
        out.push(b':');
        write_value(v, out);
    }
    out.extend_from_slice(b"},\"name\":");
    write_str(m.name(), out);
    out.extend_from_slice(b",\"tags\":{");
    let mut tags: Vec<(&str, &str)> = m.tags().collect();
    tags.sort_unstable();
    for (i, (k, v)) in tags.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(k, out);
        out.push(b':');
        write_str(v, out);
    }
    out.extend_from_slice(b"},\"timestamp\":");
    match time {
        JsonTime::Units(unit) => {
            out.extend_from_slice((m.timestamp() / unit).to_string().as_bytes());
        }
        JsonTime::Text { fraction } => write_str(&format_rfc3339(m.timestamp(), fraction), out),
    }
    out.push(b'}');
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_value(v: FieldRef<'_>, out: &mut Vec<u8>) {
    let mut text = String::new();
    match v {
        FieldRef::Float(x) if x != 0.0 && (x.abs() < 1e-6 || x.abs() >= 1e21) => {
            let _ = write!(text, "{x:e}");
        }
        FieldRef::Float(x) => {
            let _ = write!(text, "{x}");
        }
        FieldRef::Int(x) => {
            let _ = write!(text, "{x}");
        }
        FieldRef::Uint(x) => {
            let _ = write!(text, "{x}");
        }
        FieldRef::Bool(x) => text.push_str(if x { "true" } else { "false" }),
        FieldRef::Str(s) => return write_str(s, out),
    }
    out.extend_from_slice(text.as_bytes());
}

/// `json_timestamp_units` truncated to a power of ten, as Telegraf does.
pub fn timestamp_unit(ns: i64) -> i64 {
    let mut unit = 1i64;
    while unit <= ns / 10 {
        unit *= 10;
    }
    unit
}

/// Telegraf's `json` parser, configured.
#[derive(Debug, Clone)]
pub struct JsonParser {
    pub(super) query: Vec<String>,
    pub(super) tag_keys: GlobSet,
    pub(super) string_fields: GlobSet,
    pub(super) name_key: Option<String>,
    pub(super) time_key: Option<String>,
    pub(super) time_format: Option<TimeFormat>,
    pub(super) strict: bool,
}

/// The flattened keys of one object may take this many times the bytes of
/// the body (plus 4 KiB); a document past it is refused as malformed.
const KEY_BYTES_PER_BODY_BYTE: usize = 8;

/// Build a glob set from a key's patterns; errors name the key.
pub fn globs(key: &str, patterns: &[String]) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        set.add(Glob::new(p).map_err(|e| anyhow::anyhow!("{key}: {p:?} is not a glob: {e}"))?);
    }
    set.build()
        .map_err(|e| anyhow::anyhow!("{key}: cannot use these globs: {e}"))
}

/// A GJSON path of plain keys and indices (`obj.friends`, `list.0`,
/// `a\.b`); errors name the key.
pub fn query_path(query: &str) -> Result<Vec<String>> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    if query.contains(['*', '?', '#', '|', '@', '!', '=', '<', '>', '%']) {
        bail!(
            "json_query: {query:?} uses GJSON features graft does not read; \
             only paths of keys and indices (`a.b.0`) are supported"
        );
    }
    let mut parts = vec![String::new()];
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => parts.last_mut().unwrap().extend(chars.next()),
            '.' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    Ok(parts)
}

impl JsonParser {
    /// Parse one document into `out`; on error nothing is added.
    pub fn parse(
        &self,
        body: &[u8],
        name: &str,
        now: i64,
        out: &mut BatchBuilder,
    ) -> Result<usize> {
        let doc: Value = serde_json::from_slice(body)?;
        // Flattening copies each key's path into every value under it: a
        // long key over many values would multiply the body. The flattened
        // keys of one object may take at most this many bytes.
        let budget = KEY_BYTES_PER_BODY_BYTE * body.len() + 4096;
        let mut doc = &doc;
        for (depth, part) in self.query.iter().enumerate() {
            doc = match doc {
                Value::Object(o) => o.get(part),
                Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "json_query: nothing at {:?}",
                    self.query[..=depth].join(".")
                )
            })?;
        }
        let mut metrics = Vec::new();
        match doc {
            Value::Object(_) => metrics.push(self.metric(doc, name, now, budget)?),
            Value::Array(items) => {
                for item in items {
                    match self.metric(item, name, now, budget) {
                        Ok(m) => metrics.push(m),
                        Err(e) if self.strict => return Err(e),
                        Err(_) => {}
                    }
                }
            }
            _ => bail!("the document is not an object or an array of objects"),
        }
        let mut added = 0;
        for m in metrics {
            if m.fields.is_empty() {
                continue;
            }
            let mut b = out.metric(&m.name, m.time);
            for (k, v) in &m.tags {
                b.tag(k, v);
            }
            for (k, v) in &m.fields {
                match v {
                    Leaf::Num(x) => b.field(k, x.as_f64().unwrap_or(f64::NAN)),
                    Leaf::Str(s) => b.field(k, s.as_str()),
                    Leaf::Bool(x) => b.field(k, *x),
                };
            }
            added += 1;
        }
        Ok(added)
    }

    fn metric(&self, v: &Value, name: &str, now: i64, key_budget: usize) -> Result<Flat> {
        let Value::Object(_) = v else {
            bail!("an array element is not an object");
        };
        let mut leaves = Vec::new();
        let mut budget = key_budget;
        flatten("", v, &mut leaves, &mut budget)?;
        let mut m = Flat {
            name: name.to_owned(),
            time: now,
            tags: Vec::new(),
            fields: Vec::new(),
        };
        let mut time_found = false;
        for (key, leaf) in leaves {
            if self.name_key.as_deref() == Some(key.as_str()) {
                if let Leaf::Str(s) = &leaf {
                    m.name = s.clone();
                }
                continue;
            }
            if self.time_key.as_deref() == Some(key.as_str()) {
                m.time = self.time(&key, &leaf)?;
                time_found = true;
                continue;
            }
            if self.tag_keys.is_match(&key) {
                m.tags.push((key, leaf.text()));
                continue;
            }
            match leaf {
                Leaf::Num(_) => m.fields.push((key, leaf)),
                Leaf::Str(_) | Leaf::Bool(_) if self.string_fields.is_match(&key) => {
                    let text = leaf.text();
                    m.fields.push((key, Leaf::Str(text)));
                }
                Leaf::Str(_) | Leaf::Bool(_) => {}
            }
        }
        if let Some(key) = &self.time_key
            && !time_found
        {
            bail!("json_time_key {key:?} is not in the document");
        }
        Ok(m)
    }

    fn time(&self, key: &str, leaf: &Leaf) -> Result<i64> {
        let bad = || {
            anyhow::anyhow!(
                "json_time_key {key:?}: cannot read {:?} as a time",
                leaf.text()
            )
        };
        match (self.time_format, leaf) {
            (Some(TimeFormat::Unix(unit)), Leaf::Num(x)) => match x.as_i64() {
                Some(n) => n.checked_mul(unit).ok_or_else(bad),
                None => unix(x.as_f64().ok_or_else(bad)?, unit).ok_or_else(bad),
            },
            (Some(TimeFormat::Unix(unit)), Leaf::Str(s)) => {
                if let Ok(n) = s.trim().parse::<i64>() {
                    return n.checked_mul(unit).ok_or_else(bad);
                }
                unix(s.trim().parse::<f64>().map_err(|_| bad())?, unit).ok_or_else(bad)
            }
            (Some(TimeFormat::Rfc3339 | TimeFormat::Rfc3339Nano), Leaf::Str(s)) => {
                parse_rfc3339(s).ok_or_else(bad)
            }
            _ => Err(bad()),
        }
    }
}

fn unix(x: f64, unit: i64) -> Option<i64> {
    let ns = x * unit as f64;
    (ns.is_finite() && ns.abs() < 9.2e18).then_some(ns.round() as i64)
}

/// A metric read from one object, before it goes into the batch.
struct Flat {
    name: String,
    time: i64,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Leaf)>,
}

/// A value at the end of a flattened path.
#[derive(Debug, Clone)]
enum Leaf {
    Num(serde_json::Number),
    Str(String),
    Bool(bool),
}

impl Leaf {
    fn text(&self) -> String {
        match self {
            Leaf::Num(x) => x.to_string(),
            Leaf::Str(s) => s.clone(),
            Leaf::Bool(b) => b.to_string(),
        }
    }
}

fn flatten(
    prefix: &str,
    v: &Value,
    out: &mut Vec<(String, Leaf)>,
    budget: &mut usize,
) -> Result<()> {
    // Every value, kept or not, costs its path: so does building it.
    *budget = budget.checked_sub(prefix.len() + 16).ok_or_else(|| {
        anyhow::anyhow!("the flattened keys would take many times the document's size")
    })?;
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}_{k}")
        }
    };
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                flatten(&join(k), v, out, budget)?;
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out, budget)?;
            }
        }
        Value::Number(n) => out.push((prefix.to_owned(), Leaf::Num(n.clone()))),
        Value::String(s) => out.push((prefix.to_owned(), Leaf::Str(s.clone()))),
        Value::Bool(b) => out.push((prefix.to_owned(), Leaf::Bool(*b))),
        Value::Null => {}
    }
    Ok(())
}
