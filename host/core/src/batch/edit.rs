//! Whole-batch edits: renames, tags, selection, appends and slices, each
//! on the string symbols and offset columns, keeping every invariant.

use std::ops::Range;

use super::{Batch, MetricRef};
use crate::strings::Sym;
use crate::value::Value;

impl Batch {
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
            if !self.kinds.is_empty() {
                out.kinds.push(self.kinds[i]);
            }
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
        let typed = !self.kinds.is_empty() || !other.kinds.is_empty();
        if typed {
            self.materialize_kinds();
        }
        for i in rows {
            let name = map(self, other.names[i]);
            self.names.push(name);
            self.timestamps.push(other.timestamps[i]);
            if typed {
                self.kinds.push(other.kind_at(i));
            }
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
