//! The columnar batch: the unit in which metrics move between stages, and
//! the shape in which they cross into WASM plugins.
//!
//! A batch keeps its columns private so that its invariants (offsets, symbol
//! ranges, sorted tags, finite floats) always hold; [`Batch::from_parts`] is
//! the one door for columns that come from outside, and it checks them.

use std::ops::Range;

use crate::strings::{StringTable, StringTableError, Sym};
use crate::value::{FieldRef, Value};

/// A batch of metrics in columnar form. See the WIT record `batch`.
#[derive(Clone, Debug)]
pub struct Batch {
    pub(crate) strings: StringTable,
    pub(crate) names: Vec<Sym>,
    pub(crate) timestamps: Vec<i64>,
    pub(crate) tag_offsets: Vec<u32>,
    pub(crate) tag_keys: Vec<Sym>,
    pub(crate) tag_values: Vec<Sym>,
    pub(crate) field_offsets: Vec<u32>,
    pub(crate) field_keys: Vec<Sym>,
    pub(crate) field_values: Vec<Value>,
}

/// The raw columns of a batch, as they cross the WASM boundary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchParts {
    /// Every string of the batch, end to end.
    pub string_data: String,
    /// End offset of each string in `string_data`.
    pub string_ends: Vec<u32>,
    pub names: Vec<Sym>,
    pub timestamps: Vec<i64>,
    pub tag_offsets: Vec<u32>,
    pub tag_keys: Vec<Sym>,
    pub tag_values: Vec<Sym>,
    pub field_offsets: Vec<u32>,
    pub field_keys: Vec<Sym>,
    pub field_values: Vec<Value>,
}

/// Why columns do not form a valid batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Strings(#[from] StringTableError),
    #[error("`{list}` has {actual} entries where {expected} were expected")]
    Length {
        list: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("`{list}[{index}]` is symbol {sym}, outside the string table of {len} strings")]
    SymbolOutOfRange {
        list: &'static str,
        index: usize,
        sym: Sym,
        len: usize,
    },
    #[error("`{list}` must start at 0, never decrease and end at {end}; entry {index} breaks that")]
    Offsets {
        list: &'static str,
        index: usize,
        end: usize,
    },
    #[error("metric {index} has no field")]
    NoFields { index: usize },
    #[error("metric {index}: field `{key}` is {value}, not a finite number")]
    NotFinite {
        index: usize,
        key: String,
        value: f64,
    },
    #[error("metric {index}: tag keys are not sorted and unique (`{previous}` then `{key}`)")]
    TagOrder {
        index: usize,
        previous: String,
        key: String,
    },
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self {
            strings: StringTable::new(),
            names: Vec::new(),
            timestamps: Vec::new(),
            tag_offsets: vec![0],
            tag_keys: Vec::new(),
            tag_values: Vec::new(),
            field_offsets: vec![0],
            field_keys: Vec::new(),
            field_values: Vec::new(),
        }
    }

    /// Check columns from outside and make a batch of them.
    pub fn from_parts(parts: BatchParts) -> Result<Self, BatchError> {
        let batch = Self::assemble(parts)?;
        batch.validate()?;
        Ok(batch)
    }

    /// The columns as a batch; only the string table is checked.
    fn assemble(parts: BatchParts) -> Result<Self, StringTableError> {
        Ok(Self {
            strings: StringTable::from_parts(parts.string_data, parts.string_ends)?,
            names: parts.names,
            timestamps: parts.timestamps,
            tag_offsets: parts.tag_offsets,
            tag_keys: parts.tag_keys,
            tag_values: parts.tag_values,
            field_offsets: parts.field_offsets,
            field_keys: parts.field_keys,
            field_values: parts.field_values,
        })
    }

    /// Make a batch of columns that graft itself produced and checked (the
    /// host's batches as a WASM plugin receives them), without checking
    /// them again. Columns that break the invariants make later reads panic;
    /// they cannot corrupt memory. Anything from elsewhere goes through
    /// [`Batch::from_parts`].
    pub fn from_trusted_parts(parts: BatchParts) -> Self {
        Self::assemble(parts)
            .unwrap_or_else(|e| panic!("a trusted batch has a broken string table: {e}"))
    }

    /// Hand the columns over, for example to a WASM plugin.
    pub fn into_parts(self) -> BatchParts {
        let (string_data, string_ends) = self.strings.into_parts();
        BatchParts {
            string_data,
            string_ends,
            names: self.names,
            timestamps: self.timestamps,
            tag_offsets: self.tag_offsets,
            tag_keys: self.tag_keys,
            tag_values: self.tag_values,
            field_offsets: self.field_offsets,
            field_keys: self.field_keys,
            field_values: self.field_values,
        }
    }

    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the batch holds no metric.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The string table.
    pub fn strings(&self) -> &StringTable {
        &self.strings
    }

    /// The string behind a symbol.
    pub fn str(&self, sym: Sym) -> &str {
        self.strings.get(sym)
    }

    /// The symbol of `s` in this batch, if present.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.strings.lookup(s)
    }

    /// The symbol of `s`, adding it to the string table when missing.
    pub fn intern(&mut self, s: &str) -> Sym {
        self.strings.intern(s)
    }

    /// Metric `i`. Panics when out of range.
    pub fn get(&self, i: usize) -> MetricRef<'_> {
        assert!(i < self.len(), "metric {i} of a batch of {}", self.len());
        MetricRef { batch: self, i }
    }

    /// Every metric, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = MetricRef<'_>> + '_ {
        (0..self.len()).map(move |i| MetricRef { batch: self, i })
    }

    /// Total number of fields over all metrics.
    pub fn field_count(&self) -> usize {
        self.field_keys.len()
    }

    pub(crate) fn tag_range(&self, i: usize) -> Range<usize> {
        self.tag_offsets[i] as usize..self.tag_offsets[i + 1] as usize
    }

    pub(crate) fn field_range(&self, i: usize) -> Range<usize> {
        self.field_offsets[i] as usize..self.field_offsets[i + 1] as usize
    }

    /// Rename the measurement `from` to `to` in every metric. Returns how
    /// many metrics changed.
    pub fn rename_measurement(&mut self, from: &str, to: &str) -> usize {
        let Some(from) = self.lookup(from) else {
            return 0;
        };
        let to = self.intern(to);
        let mut changed = 0;
        for name in &mut self.names {
            if *name == from {
                *name = to;
                changed += 1;
            }
        }
        changed
    }

    /// Rename the field key `from` to `to` in every metric; where a metric
    /// already has a field `to`, the renamed one replaces it. Returns how
    /// many fields were renamed.
    pub fn rename_field(&mut self, from: &str, to: &str) -> usize {
        let Some(from) = self.lookup(from) else {
            return 0;
        };
        let existed = self.lookup(to);
        let to = self.intern(to);
        if from == to {
            return 0;
        }
        let renamed: Vec<bool> = self.field_keys.iter().map(|&k| k == from).collect();
        let changed = renamed.iter().filter(|&&r| r).count();
        for (key, &r) in self.field_keys.iter_mut().zip(&renamed) {
            if r {
                *key = to;
            }
        }
        if existed.is_some() && changed > 0 {
            self.drop_replaced_fields(to, &renamed);
        }
        changed
    }

    /// Rename the tag key `from` to `to` in every metric that has it; where a
    /// metric already has a tag `to`, the renamed one replaces it. Tags stay
    /// sorted. Returns how many tags were renamed.
    pub fn rename_tag(&mut self, from: &str, to: &str) -> usize {
        let Some(from_sym) = self.lookup(from) else {
            return 0;
        };
        if from == to || !self.tag_keys.contains(&from_sym) {
            return 0;
        }
        let to_sym = self.intern(to);
        let n = self.len();
        let mut keys = Vec::with_capacity(self.tag_keys.len());
        let mut values = Vec::with_capacity(self.tag_keys.len());
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u32);
        let mut changed = 0;
        for i in 0..n {
            let range = self.tag_range(i);
            let found = self.tag_keys[range.clone()]
                .iter()
                .position(|&k| k == from_sym);
            let Some(pos) = found else {
                keys.extend_from_slice(&self.tag_keys[range.clone()]);
                values.extend_from_slice(&self.tag_values[range]);
                offsets.push(keys.len() as u32);
                continue;
            };
            changed += 1;
            let value = self.tag_values[range.start + pos];
            let mut placed = false;
            for t in range {
                let (k, v) = (self.tag_keys[t], self.tag_values[t]);
                let key = self.strings.get(k);
                if k == from_sym || key == to {
                    continue;
                }
                if !placed && key > to {
                    keys.push(to_sym);
                    values.push(value);
                    placed = true;
                }
                keys.push(k);
                values.push(v);
            }
            if !placed {
                keys.push(to_sym);
                values.push(value);
            }
            offsets.push(keys.len() as u32);
        }
        self.tag_keys = keys;
        self.tag_values = values;
        self.tag_offsets = offsets;
        changed
    }

    /// In metrics where a field was renamed to `key`, drop the other fields
    /// named `key`: the renamed one replaces them.
    fn drop_replaced_fields(&mut self, key: Sym, renamed: &[bool]) {
        let mut keep = vec![true; self.field_keys.len()];
        for i in 0..self.len() {
            let range = self.field_range(i);
            let Some(winner) = range.clone().rev().find(|&f| renamed[f]) else {
                continue;
            };
            for f in range.filter(|&f| f != winner && self.field_keys[f] == key) {
                keep[f] = false;
            }
        }
        self.retain_fields_by_mask(&keep);
    }

    /// Keep only the fields whose entry in `keep` is true. Metrics left
    /// without fields are removed.
    pub(crate) fn retain_fields_by_mask(&mut self, keep: &[bool]) {
        let mut out = Batch {
            strings: std::mem::take(&mut self.strings),
            ..Batch::new()
        };
        for i in 0..self.len() {
            let fields: Vec<usize> = self.field_range(i).filter(|&f| keep[f]).collect();
            if fields.is_empty() {
                continue;
            }
            out.names.push(self.names[i]);
            out.timestamps.push(self.timestamps[i]);
            let tags = self.tag_range(i);
            out.tag_keys.extend_from_slice(&self.tag_keys[tags.clone()]);
            out.tag_values.extend_from_slice(&self.tag_values[tags]);
            out.tag_offsets.push(out.tag_keys.len() as u32);
            for f in fields {
                out.field_keys.push(self.field_keys[f]);
                out.field_values.push(self.field_values[f]);
            }
            out.field_offsets.push(out.field_keys.len() as u32);
        }
        *self = out;
    }

    /// Keep the metrics for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(MetricRef<'_>) -> bool) {
        let mask: Vec<bool> = self.iter().map(&mut keep).collect();
        if mask.iter().all(|&k| k) {
            return;
        }
        let mut field_mask = Vec::with_capacity(self.field_keys.len());
        for (i, &k) in mask.iter().enumerate() {
            field_mask.extend(std::iter::repeat_n(k, self.field_range(i).len()));
        }
        self.retain_fields_by_mask(&field_mask);
    }

    /// Keep the fields for which `keep(key)` is true; metrics left without
    /// fields are removed. Returns how many metrics were removed.
    pub fn retain_fields(&mut self, mut keep: impl FnMut(&str) -> bool) -> usize {
        let mut memo: Vec<Option<bool>> = vec![None; self.strings.len()];
        let mask: Vec<bool> = self
            .field_keys
            .iter()
            .map(|&k| *memo[k as usize].get_or_insert_with(|| keep(self.strings.get(k))))
            .collect();
        if mask.iter().all(|&k| k) {
            return 0;
        }
        let before = self.len();
        self.retain_fields_by_mask(&mask);
        before - self.len()
    }

    /// Keep the tags for which `keep(key)` is true.
    pub fn retain_tags(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let mut memo: Vec<Option<bool>> = vec![None; self.strings.len()];
        let mut offsets = Vec::with_capacity(self.len() + 1);
        offsets.push(0u32);
        let (mut keys, mut values) = (Vec::new(), Vec::new());
        for i in 0..self.len() {
            for t in self.tag_range(i) {
                let k = self.tag_keys[t];
                if *memo[k as usize].get_or_insert_with(|| keep(self.strings.get(k))) {
                    keys.push(k);
                    values.push(self.tag_values[t]);
                }
            }
            offsets.push(keys.len() as u32);
        }
        self.tag_keys = keys;
        self.tag_values = values;
        self.tag_offsets = offsets;
    }

    /// Split into the metrics for which `pred` holds and the others.
    pub fn partition(self, mut pred: impl FnMut(MetricRef<'_>) -> bool) -> (Batch, Batch) {
        let mask: Vec<bool> = self.iter().map(&mut pred).collect();
        if mask.iter().all(|&m| m) {
            return (self, Batch::new());
        }
        if !mask.iter().any(|&m| m) {
            return (Batch::new(), self);
        }
        let mut yes = self.clone();
        let mut i = 0;
        yes.retain(|_| {
            i += 1;
            mask[i - 1]
        });
        let mut no = self;
        let mut i = 0;
        no.retain(|_| {
            i += 1;
            !mask[i - 1]
        });
        (yes, no)
    }

    /// Append every metric of `other`.
    pub fn append(&mut self, other: &Batch) {
        if self.is_empty() {
            *self = other.clone();
        } else {
            self.extend_from(other, 0..other.len());
        }
    }

    /// Set tag `key` to `value` on every metric (replacing an existing value),
    /// keeping tags sorted.
    pub fn set_tag(&mut self, key: &str, value: &str) {
        self.insert_tag(key, value, true);
    }

    fn insert_tag(&mut self, key: &str, value: &str, overwrite: bool) {
        let k = self.intern(key);
        let v = self.intern(value);
        let n = self.len();
        let mut keys = Vec::with_capacity(self.tag_keys.len() + n);
        let mut values = Vec::with_capacity(self.tag_keys.len() + n);
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u32);
        for i in 0..n {
            let range = self.tag_range(i);
            let tags = &self.tag_keys[range.clone()];
            let pos = tags.partition_point(|&t| self.strings.get(t) < key);
            let present = tags
                .get(pos)
                .is_some_and(|&t| t == k || self.strings.get(t) == key);
            keys.extend_from_slice(&tags[..pos]);
            values.extend_from_slice(&self.tag_values[range.start..range.start + pos]);
            if overwrite || !present {
                keys.push(k);
                values.push(v);
            }
            let rest = if present && overwrite { pos + 1 } else { pos };
            keys.extend_from_slice(&tags[rest..]);
            values.extend_from_slice(&self.tag_values[range.start + rest..range.end]);
            offsets.push(keys.len() as u32);
        }
        self.tag_keys = keys;
        self.tag_values = values;
        self.tag_offsets = offsets;
    }

    /// Set tag `key` to `value` on every metric that does not have it yet.
    pub fn set_tag_if_absent(&mut self, key: &str, value: &str) {
        self.insert_tag(key, value, false);
    }

    /// Replace every measurement name with `f(name)`; `f` runs once per
    /// distinct name.
    pub fn map_names(&mut self, mut f: impl FnMut(&str) -> String) {
        let mut memo: Vec<Option<Sym>> = vec![None; self.strings.len()];
        for i in 0..self.names.len() {
            let old = self.names[i];
            let new = match memo[old as usize] {
                Some(s) => s,
                None => {
                    let name = f(self.strings.get(old));
                    let s = self.strings.intern(&name);
                    memo[old as usize] = Some(s);
                    s
                }
            };
            self.names[i] = new;
        }
    }

    /// Round every timestamp to the nearest multiple of `precision_ns`.
    pub fn round_timestamps(&mut self, precision_ns: i64) {
        if precision_ns <= 1 {
            return;
        }
        let half = precision_ns / 2;
        for t in &mut self.timestamps {
            *t = (*t + half).div_euclid(precision_ns) * precision_ns;
        }
    }

    /// Append metrics `rows` of `other` to this batch.
    pub fn extend_from(&mut self, other: &Batch, rows: Range<usize>) {
        let mut remap: Vec<Option<Sym>> = vec![None; other.strings.len()];
        let mut map = |this: &mut Batch, sym: Sym| -> Sym {
            *remap[sym as usize].get_or_insert_with(|| this.strings.intern(other.strings.get(sym)))
        };
        for i in rows {
            let name = map(self, other.names[i]);
            self.names.push(name);
            self.timestamps.push(other.timestamps[i]);
            for t in other.tag_range(i) {
                let k = map(self, other.tag_keys[t]);
                let v = map(self, other.tag_values[t]);
                self.tag_keys.push(k);
                self.tag_values.push(v);
            }
            self.tag_offsets.push(self.tag_keys.len() as u32);
            for f in other.field_range(i) {
                let k = map(self, other.field_keys[f]);
                let v = match other.field_values[f] {
                    Value::Str(s) => Value::Str(map(self, s)),
                    v => v,
                };
                self.field_keys.push(k);
                self.field_values.push(v);
            }
            self.field_offsets.push(self.field_keys.len() as u32);
        }
    }

    /// A new batch holding metrics `rows` of this one.
    pub fn slice(&self, rows: Range<usize>) -> Batch {
        let mut out = Batch::new();
        out.extend_from(self, rows);
        out
    }
}

/// A read-only view of one metric of a batch.
#[derive(Clone, Copy)]
pub struct MetricRef<'a> {
    batch: &'a Batch,
    i: usize,
}

impl<'a> MetricRef<'a> {
    /// Position in the batch.
    pub fn index(&self) -> usize {
        self.i
    }

    /// The measurement name.
    pub fn name(&self) -> &'a str {
        self.batch.str(self.batch.names[self.i])
    }

    /// Nanoseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.batch.timestamps[self.i]
    }

    /// Tags as (key, value), sorted by key.
    pub fn tags(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let b = self.batch;
        b.tag_range(self.i)
            .map(move |t| (b.str(b.tag_keys[t]), b.str(b.tag_values[t])))
    }

    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&'a str> {
        self.tags().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Fields as (key, value), in the order they were added.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&'a str, FieldRef<'a>)> + 'a {
        let b = self.batch;
        b.field_range(self.i)
            .map(move |f| (b.str(b.field_keys[f]), resolve(b, b.field_values[f])))
    }

    /// The value of field `key`.
    pub fn field(&self, key: &str) -> Option<FieldRef<'a>> {
        self.fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl std::fmt::Debug for MetricRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metric")
            .field("name", &self.name())
            .field("tags", &self.tags().collect::<Vec<_>>())
            .field("fields", &self.fields().collect::<Vec<_>>())
            .field("timestamp", &self.timestamp())
            .finish()
    }
}

fn resolve(batch: &Batch, v: Value) -> FieldRef<'_> {
    match v {
        Value::Float(x) => FieldRef::Float(x),
        Value::Int(x) => FieldRef::Int(x),
        Value::Uint(x) => FieldRef::Uint(x),
        Value::Bool(x) => FieldRef::Bool(x),
        Value::Str(s) => FieldRef::Str(batch.str(s)),
    }
}

impl Batch {
    /// Check every invariant; the string table is already checked.
    fn validate(&self) -> Result<(), BatchError> {
        let n = self.names.len();
        let check_len = |list, actual: usize, expected| {
            if actual == expected {
                Ok(())
            } else {
                Err(BatchError::Length {
                    list,
                    expected,
                    actual,
                })
            }
        };
        check_len("timestamps", self.timestamps.len(), n)?;
        check_len("tag-offsets", self.tag_offsets.len(), n + 1)?;
        check_len("field-offsets", self.field_offsets.len(), n + 1)?;
        check_len("tag-values", self.tag_values.len(), self.tag_keys.len())?;
        check_len(
            "field-values",
            self.field_values.len(),
            self.field_keys.len(),
        )?;
        check_offsets("tag-offsets", &self.tag_offsets, self.tag_keys.len())?;
        check_offsets("field-offsets", &self.field_offsets, self.field_keys.len())?;

        let len = self.strings.len();
        let check_syms = |list, syms: &[Sym]| match syms.iter().position(|&s| s as usize >= len) {
            None => Ok(()),
            Some(index) => Err(BatchError::SymbolOutOfRange {
                list,
                index,
                sym: syms[index],
                len,
            }),
        };
        check_syms("names", &self.names)?;
        check_syms("tag-keys", &self.tag_keys)?;
        check_syms("tag-values", &self.tag_values)?;
        check_syms("field-keys", &self.field_keys)?;
        for (index, v) in self.field_values.iter().enumerate() {
            if let Value::Str(sym) = *v
                && sym as usize >= len
            {
                return Err(BatchError::SymbolOutOfRange {
                    list: "field-values",
                    index,
                    sym,
                    len,
                });
            }
        }

        for i in 0..n {
            let fields = self.field_range(i);
            if fields.is_empty() {
                return Err(BatchError::NoFields { index: i });
            }
            for f in fields {
                if let Value::Float(x) = self.field_values[f]
                    && !x.is_finite()
                {
                    return Err(BatchError::NotFinite {
                        index: i,
                        key: self.str(self.field_keys[f]).to_owned(),
                        value: x,
                    });
                }
            }
            let tags = &self.tag_keys[self.tag_range(i)];
            for pair in tags.windows(2) {
                let (a, b) = (self.str(pair[0]), self.str(pair[1]));
                if a >= b {
                    return Err(BatchError::TagOrder {
                        index: i,
                        previous: a.to_owned(),
                        key: b.to_owned(),
                    });
                }
            }
        }
        Ok(())
    }
}

fn check_offsets(list: &'static str, offsets: &[u32], end: usize) -> Result<(), BatchError> {
    let bad = |index| BatchError::Offsets { list, index, end };
    if offsets[0] != 0 {
        return Err(bad(0));
    }
    if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(bad(i + 1));
    }
    if *offsets.last().unwrap_or(&0) as usize != end {
        return Err(bad(offsets.len() - 1));
    }
    Ok(())
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
