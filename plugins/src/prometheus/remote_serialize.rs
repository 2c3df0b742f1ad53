//! The `prometheusremotewrite` serializer, as Telegraf's
//! `serializers/prometheusremotewrite`: each numeric field of a metric
//! becomes a sample of the series named by [`naming::metric_name`] and
//! labelled by the metric's tags; histograms and summaries (by the metric's
//! kind) are reassembled into `_bucket{le}`, `_sum`, `_count` and
//! `{quantile}` series. A whole batch is one `WriteRequest`, snappy
//! compressed.
//!
//! Differences from Telegraf, on purpose: series keep the order in which
//! the batch first names them (Telegraf's order is a Go map's), so the same
//! batch always gives the same bytes; a series named twice gets its
//! samples in time order with the later value winning on a tie, as
//! Telegraf's accumulation does.

use std::collections::HashMap;

use graft_core::{Batch, FieldRef, MetricKind, MetricRef};
use prost::Message;

use super::naming;
use super::remote::{self, Label, Sample, TimeSeries, WriteRequest};

/// The serializer's options (`prometheus_*` keys of the output's table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `prometheus_sort_metrics`: series sorted by their labels.
    pub sort_metrics: bool,
    /// `prometheus_string_as_label`: string fields become labels.
    pub string_as_label: bool,
}

/// What serializing a batch gave.
#[derive(Debug, Default)]
pub struct Serialized {
    /// The snappy-compressed `WriteRequest`.
    pub body: Vec<u8>,
    /// Series in the request.
    pub series: usize,
    /// Samples in the request.
    pub samples: usize,
    /// Metrics none of whose fields gave a sample.
    pub metrics_left_out: usize,
    /// Fields that gave no sample (strings, histogram fields without `le`,
    /// names with nothing valid left, ...).
    pub skipped_fields: usize,
    /// Why the last of them was skipped, for the log.
    pub last_error: Option<String>,
}

/// The series of one request being assembled.
#[derive(Default)]
struct Series {
    order: Vec<TimeSeries>,
    index: HashMap<Vec<Label>, usize>,
    skipped: usize,
    last_error: Option<String>,
}

impl Series {
    fn skip(&mut self, why: String) {
        self.skipped += 1;
        self.last_error = Some(why);
    }

    /// Add a sample to series `name{labels, extra}`; a series seen before
    /// keeps its samples in time order, the later value winning a tie.
    fn add(&mut self, name: &str, labels: &[Label], extra: Option<Label>, sample: Sample) {
        let key = series_labels(name, labels, extra);
        if let Some(&i) = self.index.get(&key) {
            let samples = &mut self.order[i].samples;
            match samples.last_mut() {
                Some(last) if sample.timestamp < last.timestamp => self.skip(format!(
                    "sample of {name:?} is older than the one before it in the batch"
                )),
                Some(last) if sample.timestamp == last.timestamp => *last = sample,
                _ => samples.push(sample),
            }
            return;
        }
        self.index.insert(key.clone(), self.order.len());
        self.order.push(TimeSeries {
            labels: key,
            samples: vec![sample],
        });
    }

    /// Add series `name{labels, extra}` with `sample` unless it exists.
    fn init(&mut self, name: &str, labels: &[Label], extra: Option<Label>, sample: Sample) {
        if !self
            .index
            .contains_key(&series_labels(name, labels, extra.clone()))
        {
            self.add(name, labels, extra, sample);
        }
    }
}

/// `labels` with `extra` and `__name__`, sorted by name (Prometheus's TSDB
/// wants them so).
fn series_labels(name: &str, labels: &[Label], extra: Option<Label>) -> Vec<Label> {
    let mut all = Vec::with_capacity(labels.len() + 2);
    all.extend_from_slice(labels);
    all.extend(extra);
    all.push(label("__name__", name));
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// Serialize `batch` as one snappy-compressed `WriteRequest`.
pub fn serialize(batch: &Batch, options: Options) -> Serialized {
    let mut series = Series::default();
    let mut labels = Vec::new();
    let mut metrics_left_out = 0;
    for m in batch.iter() {
        common_labels(m, options, &mut labels);
        let timestamp = m.timestamp().div_euclid(1_000_000);
        let skipped = series.skipped;
        for (key, value) in m.fields() {
            add_field(&mut series, m, key, value, &labels, timestamp);
        }
        if series.skipped - skipped == m.fields().len() {
            metrics_left_out += 1;
        }
    }
    let mut timeseries = series.order;
    if options.sort_metrics {
        // Telegraf's order: fewer labels first, then label by label.
        timeseries.sort_by(|a, b| {
            a.labels
                .len()
                .cmp(&b.labels.len())
                .then_with(|| a.labels.cmp(&b.labels))
        });
    }
    let samples = timeseries.iter().map(|s| s.samples.len()).sum();
    let request = WriteRequest {
        timeseries,
        metadata: Vec::new(),
    };
    Serialized {
        body: remote::compress(&request.encode_to_vec()),
        series: request.timeseries.len(),
        samples,
        metrics_left_out,
        skipped_fields: series.skipped,
        last_error: series.last_error,
    }
}

/// The labels every series of `m` shares: its tags (without `le` for a
/// histogram, `quantile` for a summary, and without empty values), then
/// with `string_as_label` its string fields whose name no tag took.
fn common_labels(m: MetricRef<'_>, options: Options, out: &mut Vec<Label>) {
    out.clear();
    let kind = m.kind();
    for (k, v) in m.tags() {
        let special = match kind {
            MetricKind::Histogram => k == "le",
            MetricKind::Summary => k == "quantile",
            _ => false,
        };
        if special || v.is_empty() {
            continue;
        }
        if let Some(name) = naming::sanitize_label_name(k) {
            out.push(label(&name, v));
        }
    }
    if !options.string_as_label {
        return;
    }
    for (k, v) in m.fields() {
        let FieldRef::Str(s) = v else { continue };
        let Some(name) = naming::sanitize_label_name(k) else {
            continue;
        };
        if !out.iter().any(|l| l.name == name) {
            out.push(label(&name, s));
        }
    }
}

fn add_field(
    series: &mut Series,
    m: MetricRef<'_>,
    key: &str,
    value: FieldRef<'_>,
    labels: &[Label],
    timestamp: i64,
) {
    let kind = m.kind();
    let raw = naming::metric_name(m.name(), key, kind);
    let Some(name) = naming::sanitize_metric_name(&raw) else {
        series.skip(format!("metric name {raw:?} has no valid character"));
        return;
    };
    let sample = |value: f64| Sample { value, timestamp };
    let bad = |series: &mut Series| series.skip(format!("{name:?}: bad sample value {value:?}"));
    match kind {
        MetricKind::Histogram => {
            if key.ends_with("_bucket") {
                let zero = sample(0.0);
                series.init(&format!("{name}_sum"), labels, None, zero);
                series.init(&format!("{name}_count"), labels, None, zero);
                let inf = Some(label("le", "+Inf"));
                series.init(&format!("{name}_bucket"), labels, inf, zero);
                let Some(le) = m.tag("le") else {
                    return series.skip(format!("{name:?}: no `le` tag"));
                };
                let Ok(bound) = le.parse::<f64>() else {
                    return series.skip(format!("{name:?}: `le` {le:?} is not a number"));
                };
                let Some(count) = naming::sample_count(value) else {
                    return bad(series);
                };
                let le = Some(label("le", &go_float(bound)));
                series.add(&format!("{name}_bucket"), labels, le, sample(count as f64));
            } else if key.ends_with("_sum") {
                let Some(sum) = naming::sample_sum(value) else {
                    return bad(series);
                };
                series.add(&format!("{name}_sum"), labels, None, sample(sum));
            } else if key.ends_with("_count") {
                let Some(count) = naming::sample_count(value) else {
                    return bad(series);
                };
                let inf = Some(label("le", "+Inf"));
                series.add(&format!("{name}_bucket"), labels, inf, sample(count as f64));
                series.add(&format!("{name}_count"), labels, None, sample(count as f64));
            } else {
                series.skip(format!(
                    "{name:?}: histogram field {key:?} has no `_bucket`, `_sum` or `_count` suffix"
                ));
            }
        }
        MetricKind::Summary => {
            if key.ends_with("_sum") {
                let Some(sum) = naming::sample_sum(value) else {
                    return bad(series);
                };
                series.add(&format!("{name}_sum"), labels, None, sample(sum));
            } else if key.ends_with("_count") {
                let Some(count) = naming::sample_count(value) else {
                    return bad(series);
                };
                series.add(&format!("{name}_count"), labels, None, sample(count as f64));
            } else {
                let Some(q) = m.tag("quantile") else {
                    return series.skip(format!("{name:?}: no `quantile` tag"));
                };
                let Ok(q) = q.parse::<f64>() else {
                    return series.skip(format!("{name:?}: `quantile` {q:?} is not a number"));
                };
                let Some(v) = naming::sample_value(value) else {
                    return bad(series);
                };
                let quantile = Some(label("quantile", &go_float(q)));
                series.add(&name, labels, quantile, sample(v));
            }
        }
        _ => match naming::sample_value(value) {
            Some(v) => series.add(&name, labels, None, sample(v)),
            // String fields give no sample (they may be labels instead).
            None => bad(series),
        },
    }
}

/// A float as Go's `fmt.Sprint` writes it (`%g` with the shortest digits:
/// `0.5`, `1`, `100000`, `1e+06`, `2.5e-05`, `+Inf`), which is how Telegraf writes
/// `le` and `quantile` label values.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest digits: "-1.2345e6". Go's shortest
    // `%g` uses an exponent below 1e-4 and from 1e6 on (`eprec = 6`).
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        return go_exponent(mantissa, exp);
    }
    format!("{f}")
}

fn go_exponent(mantissa: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
#[path = "remote_serialize_tests.rs"]
mod tests;
