//! graft metrics into OTLP metrics, as Telegraf's `outputs.opentelemetry`
//! makes them (influxdb-observability's `influx2otel`):
//!
//! - The metric's kind says what it is (Gauge, Counter → a monotonic
//!   cumulative Sum, Histogram, Summary); an untyped metric is read from
//!   its fields: `gauge` → Gauge, `counter` → Sum, only `count`, `sum` and
//!   numeric keys → Histogram. Measurement `prometheus` is read with
//!   schema v2 (field = metric name, `le`/`quantile` tags), any other with
//!   v1 (measurement = metric name, `gauge`/`counter` field; for other
//!   fields `<measurement><name_separator><field>`).
//! - What fits no schema (or carries tag `metric_type = "timing"`): each
//!   numeric field is a Gauge `<measurement>_<field>`; strings and
//!   booleans are left out.
//! - Tags: `otel.library.name`/`otel.library.version` name the scope,
//!   resource attributes of the semantic conventions (`service.name`,
//!   `host.name`, ...) and the configured `attributes` go to the resource,
//!   `temporality = "delta"` makes sums and histograms delta, the others
//!   are data point attributes.
//! - graft also reads field `start_time_unix_nano` (what its own
//!   `inputs.opentelemetry` writes) as the data point's start time instead
//!   of a metric of its own.
//!
//! A metric that cannot be converted (a histogram without `count`, a name
//! used with two kinds in one batch) is left out, counted and described.

use std::collections::HashMap;

use graft_core::{Batch, FieldRef, MetricKind, MetricRef};

use super::attributes::{is_resource_attribute, string_attribute};
use super::names::*;
use super::proto::collector::ExportMetricsServiceRequest;
use super::proto::common::{InstrumentationScope, KeyValue};
use super::proto::metrics::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use super::proto::resource::Resource;

/// A batch converted: the request, and the metrics left out.
#[derive(Debug, Default)]
pub struct Converted {
    pub request: ExportMetricsServiceRequest,
    /// Data points in the request.
    pub data_points: u64,
    /// The graft metrics (indices into the batch) that could not be
    /// converted.
    pub skipped: Vec<u32>,
    /// Why the first of them could not.
    pub first_error: Option<String>,
}

/// Convert `batch`; `resource` attributes are added to every resource
/// (a tag of the same key wins), `separator` joins measurement and field.
pub fn convert(batch: &Batch, resource: &[(String, String)], separator: &str) -> Converted {
    let mut c = Converter {
        extra: resource,
        separator,
        ..Default::default()
    };
    let mut skipped = Vec::new();
    let mut first_error = None;
    for m in batch.iter() {
        if let Err(e) = c.add(m) {
            skipped.push(m.index() as u32);
            first_error.get_or_insert_with(|| format!("metric {:?}: {e}", m.name()));
        }
    }
    let data_points = c.finish();
    Converted {
        request: ExportMetricsServiceRequest {
            resource_metrics: c.resources,
        },
        data_points,
        skipped,
        first_error,
    }
}

/// The OTLP types a metric can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Gauge,
    Sum,
    Histogram,
    Summary,
}

/// Where a metric sits in the request: resource, scope, metric.
type At = (usize, usize, usize);

/// A histogram or summary data point: its metric, time and attributes.
type PointKey = (At, u64, Vec<(String, String)>);

/// A number from a field; integers stay integers.
#[derive(Clone, Copy)]
enum Number {
    Double(f64),
    Int(i64),
}

fn number(v: FieldRef<'_>) -> Option<Number> {
    match v {
        FieldRef::Float(f) => Some(Number::Double(f)),
        FieldRef::Int(i) => Some(Number::Int(i)),
        FieldRef::Uint(u) => Some(i64::try_from(u).map_or(Number::Double(u as f64), Number::Int)),
        FieldRef::Bool(_) | FieldRef::Str(_) => None,
    }
}

fn is_start_time(key: &str) -> bool {
    key == START_TIME || key == START_TIME_STATSD
}

/// What a metric's tags say: its data point attributes (sorted, as the
/// key of a data point), and where its metrics go.
struct Split {
    attributes: Vec<(String, String)>,
    resource: Vec<(String, String)>,
    scope: (String, String),
    delta: bool,
}

#[derive(Default)]
struct Converter<'a> {
    extra: &'a [(String, String)],
    separator: &'a str,
    resources: Vec<ResourceMetrics>,
    resource_at: HashMap<Vec<(String, String)>, usize>,
    scope_at: HashMap<(usize, (String, String)), usize>,
    metric_at: HashMap<(usize, usize, String), (usize, Type)>,
    /// Histogram and summary data points by metric, time and attributes
    /// (schema v2 spreads one over several graft metrics).
    point_at: HashMap<PointKey, usize>,
    /// Bucket bounds with their cumulative counts, per histogram point.
    buckets: HashMap<(At, usize), Vec<(f64, u64)>>,
}

impl Converter<'_> {
    fn add(&mut self, m: MetricRef<'_>) -> Result<(), String> {
        let known = if m.tag("metric_type") == Some("timing") {
            false
        } else if m.name() == PROMETHEUS {
            self.add_v2(m)?
        } else {
            self.add_v1(m)?
        };
        if !known {
            self.add_unknown(m)?;
        }
        Ok(())
    }

    fn split(&self, m: MetricRef<'_>) -> Split {
        let mut s = Split {
            attributes: Vec::new(),
            resource: self.extra.to_vec(),
            scope: Default::default(),
            delta: false,
        };
        for (k, v) in m.tags() {
            match k {
                LE | QUANTILE | START_TIME_STATSD => {}
                SCOPE_NAME => s.scope.0 = v.to_owned(),
                SCOPE_VERSION => s.scope.1 = v.to_owned(),
                "temporality" if v == "delta" => s.delta = true,
                k if is_resource_attribute(k) => {
                    s.resource.retain(|(rk, _)| rk != k);
                    s.resource.push((k.to_owned(), v.to_owned()));
                }
                k => s.attributes.push((k.to_owned(), v.to_owned())),
            }
        }
        s.resource.sort();
        s
    }

    /// The metric `name` of type `ty` for these tags, created when new.
    fn lookup(&mut self, name: &str, ty: Type, split: &Split) -> Result<At, String> {
        let r = match self.resource_at.get(&split.resource) {
            Some(r) => *r,
            None => {
                self.resources.push(ResourceMetrics {
                    resource: Some(Resource {
                        attributes: split
                            .resource
                            .iter()
                            .map(|(k, v)| string_attribute(k, v))
                            .collect(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                self.resource_at
                    .insert(split.resource.clone(), self.resources.len() - 1);
                self.resources.len() - 1
            }
        };
        let scopes = &mut self.resources[r].scope_metrics;
        let s = *self
            .scope_at
            .entry((r, split.scope.clone()))
            .or_insert_with(|| {
                scopes.push(ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: split.scope.0.clone(),
                        version: split.scope.1.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                scopes.len() - 1
            });
        let metrics = &mut scopes[s].metrics;
        let temporality = if split.delta {
            AggregationTemporality::Delta
        } else {
            AggregationTemporality::Cumulative
        } as i32;
        let (i, existing) = *self
            .metric_at
            .entry((r, s, name.to_owned()))
            .or_insert_with(|| {
                let data = match ty {
                    Type::Gauge => Data::Gauge(Gauge::default()),
                    Type::Sum => Data::Sum(Sum {
                        is_monotonic: true,
                        aggregation_temporality: temporality,
                        ..Default::default()
                    }),
                    Type::Histogram => Data::Histogram(Histogram {
                        aggregation_temporality: temporality,
                        ..Default::default()
                    }),
                    Type::Summary => Data::Summary(Summary::default()),
                };
                metrics.push(Metric {
                    name: name.to_owned(),
                    data: Some(data),
                    ..Default::default()
                });
                (metrics.len() - 1, ty)
            });
        if existing != ty {
            return Err(format!(
                "metric {name:?} is a {existing:?} already in this batch, not a {ty:?}"
            ));
        }
        Ok((r, s, i))
    }

    fn metric(&mut self, at: At) -> &mut Metric {
        &mut self.resources[at.0].scope_metrics[at.1].metrics[at.2]
    }

    /// A gauge or sum point.
    fn number(
        &mut self,
        name: &str,
        ty: Type,
        m: MetricRef<'_>,
        split: &Split,
        value: Number,
    ) -> Result<(), String> {
        let at = self.lookup(name, ty, split)?;
        let point = NumberDataPoint {
            attributes: attributes(&split.attributes),
            start_time_unix_nano: start_time(m),
            time_unix_nano: time(m),
            value: Some(match value {
                Number::Double(f) => number_data_point::Value::AsDouble(f),
                Number::Int(i) => number_data_point::Value::AsInt(i),
            }),
            ..Default::default()
        };
        match &mut self.metric(at).data {
            Some(Data::Gauge(g)) => g.data_points.push(point),
            Some(Data::Sum(s)) => s.data_points.push(point),
            _ => unreachable!("lookup checked the type"),
        }
        Ok(())
    }

    /// The histogram or summary point of `name` at `m`'s time and tags,
    /// created when new.
    fn composite(
        &mut self,
        name: &str,
        ty: Type,
        m: MetricRef<'_>,
        split: &Split,
    ) -> Result<(At, usize), String> {
        let at = self.lookup(name, ty, split)?;
        let key = (at, time(m), split.attributes.clone());
        if let Some(p) = self.point_at.get(&key) {
            return Ok((at, *p));
        }
        let (attributes, start, t) = (attributes(&split.attributes), start_time(m), time(m));
        let p = match &mut self.metric(at).data {
            Some(Data::Histogram(h)) => {
                h.data_points.push(HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: t,
                    ..Default::default()
                });
                h.data_points.len() - 1
            }
            Some(Data::Summary(s)) => {
                s.data_points.push(SummaryDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: t,
                    ..Default::default()
                });
                s.data_points.len() - 1
            }
            _ => unreachable!("lookup checked the type"),
        };
        self.point_at.insert(key, p);
        Ok((at, p))
    }

    fn histogram_point(&mut self, at: (At, usize)) -> &mut HistogramDataPoint {
        match &mut self.metric(at.0).data {
            Some(Data::Histogram(h)) => &mut h.data_points[at.1],
            _ => unreachable!("lookup checked the type"),
        }
    }

    fn summary_point(&mut self, at: (At, usize)) -> &mut SummaryDataPoint {
        match &mut self.metric(at.0).data {
            Some(Data::Summary(s)) => &mut s.data_points[at.1],
            _ => unreachable!("lookup checked the type"),
        }
    }

    /// Every field a number as its own gauge `<measurement>_<field>`.
    fn add_unknown(&mut self, m: MetricRef<'_>) -> Result<(), String> {
        let split = self.split(m);
        for (k, v) in m.fields() {
            if is_start_time(k) {
                continue;
            }
            if let Some(n) = number(v) {
                let name = format!("{}{}{k}", m.name(), self.separator);
                self.number(&name, Type::Gauge, m, &split, n)?;
            }
        }
        Ok(())
    }
}

mod schemas;

fn attributes(tags: &[(String, String)]) -> Vec<KeyValue> {
    tags.iter().map(|(k, v)| string_attribute(k, v)).collect()
}

fn time(m: MetricRef<'_>) -> u64 {
    u64::try_from(m.timestamp()).unwrap_or(0)
}

fn start_time(m: MetricRef<'_>) -> u64 {
    match m.field(START_TIME) {
        Some(FieldRef::Int(i)) => u64::try_from(i).unwrap_or(0),
        Some(FieldRef::Uint(u)) => u,
        _ => 0,
    }
}

impl Converter<'_> {
    /// Put every histogram's buckets in order, per bucket, with the `+Inf`
    /// bucket last; count the data points.
    fn finish(&mut self) -> u64 {
        for ((at, p), mut pairs) in std::mem::take(&mut self.buckets) {
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let point = self.histogram_point((at, p));
            let cumulative = pairs.windows(2).all(|w| w[0].1 <= w[1].1);
            let mut counts: Vec<u64> = pairs.iter().map(|p| p.1).collect();
            if cumulative {
                for i in (1..counts.len()).rev() {
                    counts[i] -= counts[i - 1];
                }
            }
            let mut bounds: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            if bounds.last().is_some_and(|b| *b == f64::INFINITY) {
                bounds.pop();
            } else {
                let total: u64 = counts.iter().fold(0u64, |a, c| a.saturating_add(*c));
                counts.push(point.count.checked_sub(total).unwrap_or(point.count));
            }
            point.bucket_counts = counts;
            point.explicit_bounds = bounds;
        }
        let mut n = 0;
        for rm in &self.resources {
            for sm in &rm.scope_metrics {
                n += super::to_graft::data_points_of(&sm.metrics);
            }
        }
        n
    }
}

/// A numeric field, or an error naming it.
fn required(m: MetricRef<'_>, key: &str) -> Result<f64, String> {
    match m.field(key).and_then(number) {
        Some(Number::Double(f)) => Ok(f),
        Some(Number::Int(i)) => Ok(i as f64),
        None => Err(format!("field {key:?} is missing or not a number")),
    }
}

/// Read `kind` as influx2otel's value types (Untyped = infer).
fn typed(kind: MetricKind) -> Option<Type> {
    match kind {
        MetricKind::Untyped => None,
        MetricKind::Gauge => Some(Type::Gauge),
        MetricKind::Counter => Some(Type::Sum),
        MetricKind::Histogram => Some(Type::Histogram),
        MetricKind::Summary => Some(Type::Summary),
    }
}

/// A histogram's count: a count is a whole number of observations.
fn count_of(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

/// A quantile's value at `q`.
fn quantile(q: f64, value: f64) -> ValueAtQuantile {
    ValueAtQuantile { quantile: q, value }
}
