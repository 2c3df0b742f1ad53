//! Building batches metric by metric, keeping every batch invariant: tags
//! sorted with unique keys (the last value set wins), no NaN or infinite
//! float, at least one field (a metric left without one is not added).

use crate::batch::{Batch, MetricRef};
use crate::kind::MetricKind;
use crate::strings::Sym;
use crate::value::{FieldRef, Value};

/// Builds a [`Batch`].
///
/// ```
/// use graft_core::BatchBuilder;
/// let mut b = BatchBuilder::new();
/// b.metric("cpu", 1_700_000_000_000_000_000)
///     .tag("host", "web-1")
///     .field("usage_idle", 97.5);
/// let batch = b.finish();
/// assert_eq!(batch.get(0).tag("host"), Some("web-1"));
/// ```
#[derive(Debug, Default)]
pub struct BatchBuilder {
    batch: Batch,
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Continue building on an existing batch.
    pub fn from_batch(batch: Batch) -> Self {
        Self { batch }
    }

    /// Number of metrics added so far.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether no metric was added.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Start a metric; it is added when the returned builder is dropped.
    pub fn metric(&mut self, name: &str, timestamp: i64) -> MetricBuilder<'_> {
        let name = self.batch.intern(name);
        MetricBuilder::start(&mut self.batch, name, timestamp)
    }

    /// Copy a metric from another batch.
    pub fn push(&mut self, metric: MetricRef<'_>) {
        let mut m = self.metric(metric.name(), metric.timestamp());
        m.kind(metric.kind());
        for (k, v) in metric.tags() {
            m.tag(k, v);
        }
        for (k, v) in metric.fields() {
            m.field(k, v);
        }
    }

    /// The batch built.
    pub fn finish(self) -> Batch {
        self.batch
    }
}

/// One metric being built; see [`BatchBuilder::metric`].
pub struct MetricBuilder<'a> {
    batch: &'a mut Batch,
    tag_start: usize,
    field_start: usize,
}

impl<'a> MetricBuilder<'a> {
    fn start(batch: &'a mut Batch, name: Sym, timestamp: i64) -> Self {
        batch.names.push(name);
        batch.timestamps.push(timestamp);
        if !batch.kinds.is_empty() {
            batch.kinds.push(MetricKind::Untyped);
        }
        let tag_start = batch.tag_keys.len();
        let field_start = batch.field_keys.len();
        Self {
            batch,
            tag_start,
            field_start,
        }
    }

    /// Set a tag.
    pub fn tag(&mut self, key: &str, value: &str) -> &mut Self {
        let k = self.batch.intern(key);
        let v = self.batch.intern(value);
        self.batch.tag_keys.push(k);
        self.batch.tag_values.push(v);
        self
    }

    /// Add a field. A NaN or infinite float is left out.
    pub fn field<'v>(&mut self, key: &str, value: impl Into<FieldRef<'v>>) -> &mut Self {
        let value = match value.into() {
            FieldRef::Float(x) if !x.is_finite() => return self,
            FieldRef::Float(x) => Value::Float(x),
            FieldRef::Int(x) => Value::Int(x),
            FieldRef::Uint(x) => Value::Uint(x),
            FieldRef::Bool(x) => Value::Bool(x),
            FieldRef::Str(s) => Value::Str(self.batch.intern(s)),
        };
        let k = self.batch.intern(key);
        self.batch.field_keys.push(k);
        self.batch.field_values.push(value);
        self
    }

    /// Set what the metric's values mean over time (untyped by default).
    pub fn kind(&mut self, kind: MetricKind) -> &mut Self {
        if kind != MetricKind::Untyped || !self.batch.kinds.is_empty() {
            self.batch.materialize_kinds();
            if let Some(k) = self.batch.kinds.last_mut() {
                *k = kind;
            }
        }
        self
    }

    /// Change the timestamp.
    pub fn timestamp(&mut self, timestamp: i64) -> &mut Self {
        if let Some(t) = self.batch.timestamps.last_mut() {
            *t = timestamp;
        }
        self
    }

    fn commit(&mut self) {
        let b = &mut *self.batch;
        if b.field_keys.len() == self.field_start {
            b.names.pop();
            b.timestamps.pop();
            b.kinds.truncate(b.names.len());
            b.tag_keys.truncate(self.tag_start);
            b.tag_values.truncate(self.tag_start);
            return;
        }
        sort_tags(b, self.tag_start);
        b.tag_offsets.push(b.tag_keys.len() as u32);
        b.field_offsets.push(b.field_keys.len() as u32);
    }
}

impl Drop for MetricBuilder<'_> {
    fn drop(&mut self) {
        self.commit();
    }
}

/// Sort the tags from `start` on by key; of equal keys the last set wins.
fn sort_tags(b: &mut Batch, start: usize) {
    let keys = &b.tag_keys[start..];
    let sorted = keys
        .windows(2)
        .all(|w| b.strings.get(w[0]) < b.strings.get(w[1]));
    if sorted {
        return;
    }
    let mut pairs: Vec<(usize, Sym, Sym)> = keys
        .iter()
        .zip(&b.tag_values[start..])
        .enumerate()
        .map(|(i, (&k, &v))| (i, k, v))
        .collect();
    let strings = &b.strings;
    // Sort by key, later settings first, then keep the first of each key.
    pairs.sort_by(|x, y| strings.get(x.1).cmp(strings.get(y.1)).then(y.0.cmp(&x.0)));
    pairs.dedup_by(|later, earlier| strings.get(later.1) == strings.get(earlier.1));
    b.tag_keys.truncate(start);
    b.tag_values.truncate(start);
    for (_, k, v) in pairs {
        b.tag_keys.push(k);
        b.tag_values.push(v);
    }
}
