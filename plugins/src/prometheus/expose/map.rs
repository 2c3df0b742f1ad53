//! From one graft metric to the sample updates it makes, by Telegraf's
//! rules.
//!
//! `metric_version = 2` (Telegraf's prometheus serializer): each numeric
//! or boolean field is the family `measurement_field` (see
//! [`naming::metric_name`]) with the tags as labels; string fields are
//! labels with `string_as_label`, else dropped. A histogram's metric
//! carries `_bucket` fields with an `le` tag, `_sum` and `_count` fields; a
//! summary's carries quantile values with a `quantile` tag, `_sum` and
//! `_count`: the pieces of one series, merged as they come.
//!
//! `metric_version = 1` (Telegraf's v1 collector): a histogram or summary
//! is one metric, the family named after the measurement, whose fields are
//! the bounds (`"0.5"`, `"+Inf"`), `sum` and `count`; other metrics give a
//! family per numeric field (booleans are skipped), named
//! `measurement_field`, or `measurement` alone for a field `value` (and
//! `counter`, `gauge` of a counter or gauge), which is how
//! `inputs.prometheus` with `metric_version = 1` writes them. Series are
//! told apart by their tags: a string field's label follows its latest
//! value.

use graft_core::{FieldRef, MetricKind, MetricRef};

use super::{Dist, Labels, Options, Sample, Version};
use crate::prometheus::naming::{
    self, metric_name, sample_count, sample_sum, sample_value, sanitize_label_name,
    sanitize_metric_name,
};

/// One sample update: to the series `key` of family `family`.
#[derive(Debug, PartialEq)]
pub struct Update {
    pub family: String,
    pub kind: MetricKind,
    pub key: Labels,
    /// The series' labels when they are not its key.
    pub labels: Option<Labels>,
    pub change: Change,
}

/// What an update sets.
#[derive(Debug, PartialEq)]
pub enum Change {
    Scalar(f64),
    Bucket(f64, u64),
    Quantile(f64, f64),
    Sum(f64),
    Count(u64),
    /// A whole histogram or summary (version 1).
    Whole(Sample),
}

impl Change {
    /// The value of a new series of `kind`.
    pub fn start(self, kind: MetricKind) -> Sample {
        let mut sample = match (&self, kind) {
            (Change::Scalar(v), _) => return Sample::Scalar(*v),
            (Change::Whole(s), _) => return s.clone(),
            (_, MetricKind::Summary) => Sample::Summary(Dist::default()),
            _ => Sample::Histogram(Dist::default()),
        };
        self.apply(&mut sample);
        sample
    }

    /// Set this piece of `sample`.
    pub fn apply(self, sample: &mut Sample) {
        match (self, sample) {
            (Change::Scalar(v), s) => *s = Sample::Scalar(v),
            (Change::Whole(w), s) => *s = w,
            (Change::Bucket(b, c), Sample::Histogram(d)) => d.merge(b, c),
            (Change::Quantile(q, v), Sample::Summary(d)) => d.merge(q, v),
            (Change::Sum(v), Sample::Histogram(d)) => d.sum = v,
            (Change::Sum(v), Sample::Summary(d)) => d.sum = v,
            (Change::Count(c), Sample::Histogram(d)) => d.count = c,
            (Change::Count(c), Sample::Summary(d)) => d.count = c,
            // A piece of the other kind: the family's kind decides (it is
            // the same as the metric's, so this does not happen).
            (_, _) => {}
        }
    }
}

/// The updates `m` makes, appended to `out`.
pub fn updates(options: &Options, m: MetricRef<'_>, out: &mut Vec<Update>) {
    match options.version {
        Version::V2 => v2(options, m, out),
        Version::V1 => v1(options, m, out),
    }
}

/// Sorted, with the first of names that sanitise alike.
fn finish(mut labels: Labels) -> Labels {
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    labels.dedup_by(|b, a| a.0 == b.0);
    labels
}

/// The tags as labels, but `skip`.
fn tag_labels(m: MetricRef<'_>, skip: Option<&str>) -> Labels {
    let labels = m
        .tags()
        .filter(|(k, _)| Some(*k) != skip)
        .filter_map(|(k, v)| Some((sanitize_label_name(k)?.into_owned(), v.to_owned())))
        .collect();
    finish(labels)
}

/// The string fields as labels, those of a name a tag has left out.
fn string_labels(m: MetricRef<'_>, labels: &Labels) -> Labels {
    m.fields()
        .filter_map(|(k, v)| match v {
            FieldRef::Str(s) => Some((sanitize_label_name(k)?.into_owned(), s.to_owned())),
            _ => None,
        })
        .filter(|(k, _)| labels.iter().all(|(l, _)| l != k))
        .collect()
}

fn v2(options: &Options, m: MetricRef<'_>, out: &mut Vec<Update>) {
    let kind = m.kind();
    let skip = match kind {
        MetricKind::Histogram => Some("le"),
        MetricKind::Summary => Some("quantile"),
        _ => None,
    };
    let mut labels = tag_labels(m, skip);
    if options.string_as_label {
        let strings = string_labels(m, &labels);
        if !strings.is_empty() {
            labels.extend(strings);
            labels = finish(labels);
        }
    }
    let bound = |tag: &str| {
        m.tag(tag)
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|b| !b.is_nan())
    };
    for (key, value) in m.fields() {
        let Some(name) =
            sanitize_metric_name(&metric_name(m.name(), key, kind)).map(|n| n.into_owned())
        else {
            continue;
        };
        let change = match kind {
            MetricKind::Counter | MetricKind::Gauge | MetricKind::Untyped => {
                sample_value(value).map(Change::Scalar)
            }
            MetricKind::Histogram => {
                if key.ends_with("_bucket") {
                    bound("le").and_then(|b| Some(Change::Bucket(b, sample_count(value)?)))
                } else if key.ends_with("_sum") {
                    sample_sum(value).map(Change::Sum)
                } else if key.ends_with("_count") {
                    sample_count(value).map(Change::Count)
                } else {
                    None
                }
            }
            MetricKind::Summary => {
                if key.ends_with("_sum") {
                    sample_sum(value).map(Change::Sum)
                } else if key.ends_with("_count") {
                    sample_count(value).map(Change::Count)
                } else {
                    bound("quantile").and_then(|q| Some(Change::Quantile(q, sample_value(value)?)))
                }
            }
        };
        let Some(change) = change else { continue };
        out.push(Update {
            kind: options.types.kind(&name, kind),
            family: name,
            key: labels.clone(),
            labels: None,
            change,
        });
    }
}

/// A number, not a boolean or string (version 1 skips those).
fn number(v: FieldRef<'_>) -> Option<f64> {
    match v {
        FieldRef::Bool(_) | FieldRef::Str(_) => None,
        v => naming::sample_value(v),
    }
}

fn v1(options: &Options, m: MetricRef<'_>, out: &mut Vec<Update>) {
    let kind = m.kind();
    let key = tag_labels(m, None);
    let labels = if options.string_as_label {
        // A string field's label takes the place of a tag of that name.
        let strings: Labels = m
            .fields()
            .filter_map(|(k, v)| match v {
                FieldRef::Str(s) => Some((sanitize_label_name(k)?.into_owned(), s.to_owned())),
                _ => None,
            })
            .collect();
        (!strings.is_empty()).then(|| {
            let mut all: Labels = key
                .iter()
                .filter(|(k, _)| strings.iter().all(|(s, _)| s != k))
                .cloned()
                .collect();
            all.extend(strings);
            finish(all)
        })
    } else {
        None
    };
    if matches!(kind, MetricKind::Histogram | MetricKind::Summary) {
        let Some(name) = sanitize_metric_name(m.name()) else {
            return;
        };
        let (mut sum, mut count, mut points) = (0.0, 0u64, Vec::new());
        for (k, v) in m.fields() {
            let Some(v) = number(v) else { continue };
            match k {
                "sum" => sum = v,
                "count" => count = v.max(0.0) as u64,
                k => match k.parse::<f64>() {
                    Ok(b) if !b.is_nan() => points.push((b, v)),
                    _ => {}
                },
            }
        }
        let sample = if kind == MetricKind::Histogram {
            Sample::Histogram(Dist {
                points: points
                    .into_iter()
                    .map(|(b, v)| (b, v.max(0.0) as u64))
                    .collect(),
                count,
                sum,
            })
        } else {
            Sample::Summary(Dist { points, count, sum })
        };
        out.push(Update {
            family: name.into_owned(),
            kind,
            key,
            labels,
            change: Change::Whole(sample),
        });
        return;
    }
    for (field, value) in m.fields() {
        let Some(v) = number(value) else { continue };
        let alone = field == "value"
            || (kind == MetricKind::Counter && field == "counter")
            || (kind == MetricKind::Gauge && field == "gauge");
        let full = if alone {
            m.name().to_owned()
        } else {
            format!("{}_{field}", m.name())
        };
        let Some(name) = sanitize_metric_name(&full).map(|n| n.into_owned()) else {
            continue;
        };
        out.push(Update {
            kind: options.types.kind(&name, kind),
            family: name,
            key: key.clone(),
            labels: labels.clone(),
            change: Change::Scalar(v),
        });
    }
}
