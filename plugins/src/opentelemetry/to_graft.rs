//! OTLP metrics into graft metrics, as Telegraf's `inputs.opentelemetry`
//! writes them (influxdb-observability's `otel2influx`):
//!
//! - tags: the resource's attributes, the scope's name and version
//!   (`otel.library.name`, `otel.library.version`) and attributes, then the
//!   data point's attributes (which win over the others); values as text.
//! - `prometheus-v1`: measurement = the metric's name. A gauge, or a sum
//!   that is not monotonic and cumulative, is field `gauge` (kind Gauge); a
//!   monotonic cumulative sum is field `counter` (kind Counter); a
//!   histogram is fields `count`, `sum`, `min`, `max` and one cumulative
//!   count per bucket bound (`0.5`, ..., `+Inf`); a summary is `count`,
//!   `sum` and one field per quantile (`0.99`).
//! - `prometheus-v2`: measurement `prometheus`, the field named after the
//!   metric; a histogram is `<name>_count`, `_sum`, `_min`, `_max`, then
//!   one metric per bucket with tag `le` and field `<name>_bucket`; a
//!   summary is `<name>_count`, `_sum`, then one metric per quantile with
//!   tag `quantile` and field `<name>`.
//! - Every data point with a start time carries field
//!   `start_time_unix_nano`. Descriptions, units and exemplars are
//!   ignored.
//!
//! Telegraf refuses a whole request for one point it cannot map; graft
//! drops only that point, counts it and says why (OTLP's partial
//! success): a point without a timestamp or a value, a non-finite value,
//! bucket counts that do not fit the bounds, an exponential histogram
//! (Telegraf has no mapping for it), a point with more than
//! `max_attributes` attributes, its resource's and scope's included.

use graft_core::{BatchBuilder, MetricKind};

use super::attributes::value_string;
use super::names::*;
use super::proto::collector::ExportMetricsServiceRequest;
use super::proto::common::KeyValue;
use super::proto::metrics::{
    AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
    metric::Data, number_data_point,
};
use super::{Schema, format_bound};

/// What became of a request's data points.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Data points mapped into metrics.
    pub accepted: u64,
    /// Data points dropped because they cannot be mapped.
    pub rejected: u64,
    /// Why the first rejected point was dropped.
    pub first_error: Option<String>,
}

impl Outcome {
    fn reject(&mut self, n: u64, metric: &str, why: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        if self.first_error.is_none() {
            self.first_error = Some(format!("metric {metric:?}: {}", why()));
        }
    }
}

/// How many data points `request` holds, of every metric type.
pub fn data_points(request: &ExportMetricsServiceRequest) -> u64 {
    let mut n = 0u64;
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            n += data_points_of(&sm.metrics);
        }
    }
    n
}

/// How many data points `metrics` hold.
pub fn data_points_of(metrics: &[Metric]) -> u64 {
    metrics
        .iter()
        .map(|m| points_in(m.data.as_ref()) as u64)
        .sum()
}

fn points_in(data: Option<&Data>) -> usize {
    match data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// `max_attributes`' default: attributes (resource, scope and data
/// point together) one data point may carry.
pub const DEFAULT_MAX_ATTRIBUTES: usize = 256;

/// How many attributes a data point of `rm`/`sm` carries besides its own.
fn base_attributes(
    rm: &super::proto::metrics::ResourceMetrics,
    sm: &super::proto::metrics::ScopeMetrics,
) -> usize {
    rm.resource.as_ref().map_or(0, |r| r.attributes.len())
        + sm.scope.as_ref().map_or(0, |s| s.attributes.len())
}

/// How many tags mapping `request` would write (data points × their
/// attributes, resource and scope ones included), counting no point with
/// more than `max_attributes` (it is rejected): what a request costs.
pub fn tags_in(request: &ExportMetricsServiceRequest, max_attributes: usize) -> u64 {
    let mut n = 0u64;
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            let base = base_attributes(rm, sm);
            for m in &sm.metrics {
                let mut add = |own: usize| {
                    let t = base + own;
                    if t <= max_attributes {
                        n = n.saturating_add(t as u64);
                    }
                };
                match &m.data {
                    None => {}
                    Some(Data::Gauge(g)) => {
                        g.data_points.iter().for_each(|p| add(p.attributes.len()));
                    }
                    Some(Data::Sum(s)) => {
                        s.data_points.iter().for_each(|p| add(p.attributes.len()));
                    }
                    Some(Data::Histogram(h)) => {
                        h.data_points.iter().for_each(|p| add(p.attributes.len()));
                    }
                    Some(Data::ExponentialHistogram(_)) => {}
                    Some(Data::Summary(s)) => {
                        s.data_points.iter().for_each(|p| add(p.attributes.len()));
                    }
                }
            }
        }
    }
    n
}

/// Map every data point of `request` into `out` with `schema`.
pub fn map_request(
    request: &ExportMetricsServiceRequest,
    schema: Schema,
    out: &mut BatchBuilder,
) -> Outcome {
    map_request_with(request, schema, DEFAULT_MAX_ATTRIBUTES, out)
}

/// As [`map_request`]; a data point with more than `max_attributes`
/// attributes (its resource's and scope's included) is rejected.
pub fn map_request_with(
    request: &ExportMetricsServiceRequest,
    schema: Schema,
    max_attributes: usize,
    out: &mut BatchBuilder,
) -> Outcome {
    let mut w = Writer {
        schema,
        out,
        outcome: Outcome::default(),
        base: Vec::new(),
        base_attributes: 0,
        max_attributes,
    };
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            w.base.clear();
            w.base_attributes = base_attributes(rm, sm);
            if let Some(r) = &rm.resource {
                push_attributes(&mut w.base, &r.attributes);
            }
            if let Some(scope) = &sm.scope {
                push_tag(&mut w.base, SCOPE_NAME, scope.name.clone());
                push_tag(&mut w.base, SCOPE_VERSION, scope.version.clone());
                push_attributes(&mut w.base, &scope.attributes);
            }
            for m in &sm.metrics {
                w.metric(m);
            }
        }
    }
    w.outcome
}

fn push_tag(tags: &mut Vec<(String, String)>, key: &str, value: String) {
    // As Telegraf's metrics: no empty keys, no empty values.
    if !key.is_empty() && !value.is_empty() {
        tags.push((key.to_owned(), value));
    }
}

fn push_attributes(tags: &mut Vec<(String, String)>, attributes: &[KeyValue]) {
    for kv in attributes {
        push_tag(tags, &kv.key, value_string(kv.value.as_ref()));
    }
}

/// A data point's tags and timestamp, or why it cannot be mapped.
struct Point {
    tags: Vec<(String, String)>,
    time: i64,
    start: Option<i64>,
}

struct Writer<'a> {
    schema: Schema,
    out: &'a mut BatchBuilder,
    outcome: Outcome,
    /// The tags of the resource and scope being read.
    base: Vec<(String, String)>,
    /// How many attributes the resource and scope being read carry.
    base_attributes: usize,
    max_attributes: usize,
}

impl Writer<'_> {
    fn metric(&mut self, m: &Metric) {
        let name = m.name.as_str();
        let Some(data) = &m.data else { return };
        if name.is_empty() {
            let n = points_in(Some(data));
            self.outcome
                .reject(n as u64, name, || "a metric without a name".into());
            return;
        }
        match data {
            Data::Gauge(g) => {
                for dp in &g.data_points {
                    self.number(name, dp, GAUGE, MetricKind::Gauge);
                }
            }
            Data::Sum(s) => {
                let counter = s.is_monotonic
                    && s.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                let (field, kind) = if counter {
                    (COUNTER, MetricKind::Counter)
                } else {
                    (GAUGE, MetricKind::Gauge)
                };
                for dp in &s.data_points {
                    self.number(name, dp, field, kind);
                }
            }
            Data::Histogram(h) => {
                for dp in &h.data_points {
                    self.histogram(name, dp);
                }
            }
            Data::Summary(s) => {
                for dp in &s.data_points {
                    self.summary(name, dp);
                }
            }
            Data::ExponentialHistogram(h) => {
                self.outcome.reject(h.data_points.len() as u64, name, || {
                    "exponential histograms have no mapping (as in Telegraf); configure the exporter for explicit buckets".into()
                });
            }
        }
    }

    /// The tags and times of a data point.
    fn point(
        &mut self,
        name: &str,
        attributes: &[KeyValue],
        time: u64,
        start: u64,
    ) -> Option<Point> {
        let time = match i64::try_from(time) {
            Ok(0) => {
                self.outcome
                    .reject(1, name, || "a data point without a timestamp".into());
                return None;
            }
            Ok(t) => t,
            Err(_) => {
                self.outcome.reject(1, name, || {
                    format!("timestamp {time} is past the year 2262")
                });
                return None;
            }
        };
        let count = self.base_attributes + attributes.len();
        if count > self.max_attributes {
            let max = self.max_attributes;
            self.outcome.reject(1, name, || {
                format!("{count} attributes (resource and scope ones included), more than max_attributes ({max})")
            });
            return None;
        }
        let mut tags = self.base.clone();
        push_attributes(&mut tags, attributes);
        let start = i64::try_from(start).ok().filter(|s| *s != 0);
        Some(Point { tags, time, start })
    }

    /// Start a metric of `point` called `measurement` (its tags, plus
    /// `extra`), with its start time when `with_start`.
    fn start<'b>(
        out: &'b mut BatchBuilder,
        measurement: &str,
        point: &Point,
        kind: MetricKind,
        extra: Option<(&str, &str)>,
        with_start: bool,
    ) -> graft_core::MetricBuilder<'b> {
        let mut b = out.metric(measurement, point.time);
        b.kind(kind);
        for (k, v) in &point.tags {
            b.tag(k, v);
        }
        if let Some((k, v)) = extra {
            b.tag(k, v);
        }
        if with_start && let Some(s) = point.start {
            b.field(START_TIME, s);
        }
        b
    }

    fn number(&mut self, name: &str, dp: &NumberDataPoint, v1_field: &str, kind: MetricKind) {
        let value = match dp.value {
            None => {
                self.outcome
                    .reject(1, name, || "a data point without a value".into());
                return;
            }
            Some(number_data_point::Value::AsDouble(f)) if !f.is_finite() => {
                self.outcome
                    .reject(1, name, || format!("value {f} is not a finite number"));
                return;
            }
            Some(number_data_point::Value::AsDouble(f)) => graft_core::FieldRef::Float(f),
            Some(number_data_point::Value::AsInt(i)) => graft_core::FieldRef::Int(i),
        };
        let Some(point) = self.point(
            name,
            &dp.attributes,
            dp.time_unix_nano,
            dp.start_time_unix_nano,
        ) else {
            return;
        };
        let (measurement, field) = match self.schema {
            Schema::PrometheusV1 => (name, v1_field),
            Schema::PrometheusV2 => (PROMETHEUS, name),
        };
        Self::start(self.out, measurement, &point, kind, None, true).field(field, value);
        self.outcome.accepted += 1;
    }

    fn histogram(&mut self, name: &str, dp: &HistogramDataPoint) {
        let (counts, bounds) = (&dp.bucket_counts, &dp.explicit_bounds);
        if !counts.is_empty() && counts.len() != bounds.len() && counts.len() != bounds.len() + 1 {
            self.outcome.reject(1, name, || {
                format!(
                    "{} bucket counts do not fit {} explicit bounds",
                    counts.len(),
                    bounds.len()
                )
            });
            return;
        }
        let Some(point) = self.point(
            name,
            &dp.attributes,
            dp.time_unix_nano,
            dp.start_time_unix_nano,
        ) else {
            return;
        };
        let kind = MetricKind::Histogram;
        // Cumulative counts per bound, as Prometheus's `le` buckets.
        let buckets = counts.iter().scan(0u64, |total, c| {
            *total = total.saturating_add(*c);
            Some(*total)
        });
        let bound = |i: usize| {
            bounds
                .get(i)
                .map_or_else(|| INF.to_owned(), |b| format_bound(*b))
        };
        match self.schema {
            Schema::PrometheusV1 => {
                let mut b = Self::start(self.out, name, &point, kind, None, true);
                b.field(COUNT, dp.count as f64);
                optional(&mut b, SUM, dp.sum);
                optional(&mut b, MIN, dp.min);
                optional(&mut b, MAX, dp.max);
                for (i, total) in buckets.enumerate() {
                    b.field(&bound(i), total as f64);
                }
            }
            Schema::PrometheusV2 => {
                {
                    let mut b = Self::start(self.out, PROMETHEUS, &point, kind, None, true);
                    b.field(&format!("{name}_count"), dp.count as f64);
                    optional(&mut b, &format!("{name}_sum"), dp.sum);
                    optional(&mut b, &format!("{name}_min"), dp.min);
                    optional(&mut b, &format!("{name}_max"), dp.max);
                }
                let field = format!("{name}_bucket");
                for (i, total) in buckets.enumerate() {
                    let le = bound(i);
                    Self::start(self.out, PROMETHEUS, &point, kind, Some((LE, &le)), false)
                        .field(&field, total as f64);
                }
            }
        }
        self.outcome.accepted += 1;
    }

    fn summary(&mut self, name: &str, dp: &SummaryDataPoint) {
        let Some(point) = self.point(
            name,
            &dp.attributes,
            dp.time_unix_nano,
            dp.start_time_unix_nano,
        ) else {
            return;
        };
        let kind = MetricKind::Summary;
        match self.schema {
            Schema::PrometheusV1 => {
                let mut b = Self::start(self.out, name, &point, kind, None, true);
                b.field(COUNT, dp.count as f64);
                b.field(SUM, dp.sum);
                for q in &dp.quantile_values {
                    b.field(&format_bound(q.quantile), q.value);
                }
            }
            Schema::PrometheusV2 => {
                Self::start(self.out, PROMETHEUS, &point, kind, None, true)
                    .field(&format!("{name}_count"), dp.count as f64)
                    .field(&format!("{name}_sum"), dp.sum);
                for q in &dp.quantile_values {
                    let quantile = format_bound(q.quantile);
                    Self::start(
                        self.out,
                        PROMETHEUS,
                        &point,
                        kind,
                        Some((QUANTILE, &quantile)),
                        false,
                    )
                    .field(name, q.value);
                }
            }
        }
        self.outcome.accepted += 1;
    }
}

fn optional(b: &mut graft_core::MetricBuilder<'_>, key: &str, v: Option<f64>) {
    if let Some(v) = v {
        b.field(key, v);
    }
}
