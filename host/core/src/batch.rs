//! The columnar batch: the unit in which metrics move between stages, and
//! the shape in which they cross into WASM plugins.
//!
//! A batch keeps its columns private so that its invariants (offsets, symbol
//! ranges, sorted tags, finite floats) always hold; [`Batch::from_parts`] is
//! the one door for columns that come from outside, and it checks them.

use std::ops::Range;

use crate::kind::MetricKind;
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
    /// The kind of each metric, or empty when every metric is untyped (the
    /// common case costs nothing).
    pub(crate) kinds: Vec<MetricKind>,
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
    /// The kind of each metric, or empty when all are untyped. Contract 0.1
    /// does not carry kinds: a batch from a WASM plugin comes back untyped.
    pub kinds: Vec<MetricKind>,
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
            kinds: Vec::new(),
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
            kinds: parts.kinds,
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
            kinds: self.kinds,
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

    /// The kind of metric `i`.
    pub(crate) fn kind_at(&self, i: usize) -> MetricKind {
        self.kinds.get(i).copied().unwrap_or_default()
    }

    /// Give every metric a kind entry, so that one can be set.
    pub(crate) fn materialize_kinds(&mut self) {
        self.kinds.resize(self.names.len(), MetricKind::Untyped);
    }

    pub(crate) fn tag_range(&self, i: usize) -> Range<usize> {
        self.tag_offsets[i] as usize..self.tag_offsets[i + 1] as usize
    }

    pub(crate) fn field_range(&self, i: usize) -> Range<usize> {
        self.field_offsets[i] as usize..self.field_offsets[i + 1] as usize
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

    /// What the metric's values mean over time.
    pub fn kind(&self) -> MetricKind {
        self.batch.kind_at(self.i)
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
        let mut s = f.debug_struct("Metric");
        s.field("name", &self.name())
            .field("tags", &self.tags().collect::<Vec<_>>())
            .field("fields", &self.fields().collect::<Vec<_>>())
            .field("timestamp", &self.timestamp());
        // Untyped is the default: shown only when it says something.
        if self.kind() != MetricKind::Untyped {
            s.field("kind", &self.kind());
        }
        s.finish()
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
        if !self.kinds.is_empty() {
            check_len("kinds", self.kinds.len(), n)?;
        }
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

pub mod codec;
mod edit;

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
