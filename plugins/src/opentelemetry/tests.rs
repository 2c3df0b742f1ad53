//! The mapping both ways on requests built from the official types: every
//! point type in both schemas, the points that cannot be mapped, and
//! graft's metrics read back into the OTLP they came from.

use graft_core::lineproto::{Serializer, SerializerOptions};
use graft_core::{Batch, BatchBuilder};

use super::attributes::string_attribute;
use super::proto::collector::ExportMetricsServiceRequest;
use super::proto::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use super::proto::metrics::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, metric::Data, number_data_point::Value, summary_data_point::ValueAtQuantile,
};
use super::proto::resource::Resource;
use super::{Schema, from_graft, to_graft};

const T: u64 = 1_700_000_000_000_000_000;
const START: u64 = 1_699_999_990_000_000_000;

fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| string_attribute(k, v)).collect()
}

fn number(value: Value, attributes: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs(attributes),
        start_time_unix_nano: START,
        time_unix_nano: T,
        value: Some(value),
        ..Default::default()
    }
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn histogram_point() -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attrs(&[("route", "/a")]),
        start_time_unix_nano: START,
        time_unix_nano: T,
        count: 6,
        sum: Some(9.5),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![0.5, 2.0],
        min: Some(0.25),
        max: Some(4.0),
        ..Default::default()
    }
}

/// A request with one metric of every type, from a resource with a
/// service name and an int attribute, and a named scope.
fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    let int = KeyValue {
        key: "pid".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(42)),
        }),
        ..Default::default()
    };
    let mut resource = attrs(&[("service.name", "shop")]);
    resource.push(int);
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "meter".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn every_type() -> Vec<Metric> {
    let sum = |monotonic, temporality: AggregationTemporality, v| Sum {
        data_points: vec![number(v, &[("k", "v")])],
        aggregation_temporality: temporality as i32,
        is_monotonic: monotonic,
    };
    vec![
        metric(
            "temp",
            Data::Gauge(Gauge {
                data_points: vec![number(Value::AsDouble(21.5), &[("room", "a")])],
            }),
        ),
        metric(
            "requests",
            Data::Sum(sum(
                true,
                AggregationTemporality::Cumulative,
                Value::AsInt(7),
            )),
        ),
        metric(
            "queue",
            Data::Sum(sum(
                false,
                AggregationTemporality::Cumulative,
                Value::AsInt(-3),
            )),
        ),
        metric(
            "sent",
            Data::Sum(sum(
                true,
                AggregationTemporality::Delta,
                Value::AsDouble(2.0),
            )),
        ),
        metric(
            "latency",
            Data::Histogram(Histogram {
                data_points: vec![histogram_point()],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        ),
        metric(
            "rpc",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: T,
                    count: 4,
                    sum: 10.0,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 2.0,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 4.5,
                        },
                    ],
                    ..Default::default()
                }],
            }),
        ),
    ]
}

fn lines(batch: &Batch) -> Vec<String> {
    let mut out = Vec::new();
    let errors = Serializer::new(SerializerOptions::default()).write_batch(batch, &mut out);
    assert!(errors.is_empty(), "{errors:?}");
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn map(request: &ExportMetricsServiceRequest, schema: Schema) -> (Batch, to_graft::Outcome) {
    let mut b = BatchBuilder::new();
    let outcome = to_graft::map_request(request, schema, &mut b);
    (b.finish(), outcome)
}

const TAGS: &str = "otel.library.name=meter,otel.library.version=1.2,pid=42";

#[test]
fn schema_v1_maps_every_point_type_as_telegraf() {
    let (batch, outcome) = map(&request(every_type()), Schema::PrometheusV1);
    assert_eq!(outcome.accepted, 6);
    assert_eq!(outcome.rejected, 0);
    let s = START;
    let expected = [
        format!("temp,{TAGS},room=a,service.name=shop start_time_unix_nano={s}i,gauge=21.5 {T}"),
        format!("requests,k=v,{TAGS},service.name=shop start_time_unix_nano={s}i,counter=7i {T}"),
        format!("queue,k=v,{TAGS},service.name=shop start_time_unix_nano={s}i,gauge=-3i {T}"),
        format!("sent,k=v,{TAGS},service.name=shop start_time_unix_nano={s}i,gauge=2 {T}"),
        format!(
            "latency,{TAGS},route=/a,service.name=shop start_time_unix_nano={s}i,count=6,sum=9.5,min=0.25,max=4,0.5=1,2=3,+Inf=6 {T}"
        ),
        format!("rpc,{TAGS},service.name=shop count=4,sum=10,0.5=2,0.99=4.5 {T}"),
    ];
    assert_eq!(lines(&batch), expected);
}

#[test]
fn schema_v2_maps_every_point_type_as_telegraf() {
    let (batch, outcome) = map(&request(every_type()), Schema::PrometheusV2);
    assert_eq!((outcome.accepted, outcome.rejected), (6, 0));
    let s = START;
    let h = "prometheus,le=";
    let b = "otel.library.name=meter,otel.library.version=1.2,pid=42,route=/a,service.name=shop";
    let expected = [
        format!(
            "prometheus,{TAGS},room=a,service.name=shop start_time_unix_nano={s}i,temp=21.5 {T}"
        ),
        format!(
            "prometheus,k=v,{TAGS},service.name=shop start_time_unix_nano={s}i,requests=7i {T}"
        ),
        format!("prometheus,k=v,{TAGS},service.name=shop start_time_unix_nano={s}i,queue=-3i {T}"),
        format!("prometheus,k=v,{TAGS},service.name=shop start_time_unix_nano={s}i,sent=2 {T}"),
        format!(
            "prometheus,{TAGS},route=/a,service.name=shop start_time_unix_nano={s}i,latency_count=6,latency_sum=9.5,latency_min=0.25,latency_max=4 {T}"
        ),
        format!("{h}0.5,{b} latency_bucket=1 {T}"),
        format!("{h}2,{b} latency_bucket=3 {T}"),
        format!("{h}+Inf,{b} latency_bucket=6 {T}"),
        format!("prometheus,{TAGS},service.name=shop rpc_count=4,rpc_sum=10 {T}"),
        format!("prometheus,{TAGS},quantile=0.5,service.name=shop rpc=2 {T}"),
        format!("prometheus,{TAGS},quantile=0.99,service.name=shop rpc=4.5 {T}"),
    ];
    assert_eq!(lines(&batch), expected);
}

#[test]
fn a_point_that_cannot_be_mapped_costs_only_itself() {
    let mut no_time = number(Value::AsDouble(1.0), &[]);
    no_time.time_unix_nano = 0;
    let mut bad_buckets = histogram_point();
    bad_buckets.bucket_counts = vec![1, 2, 3, 4, 5];
    let exponential = ExponentialHistogram {
        data_points: vec![ExponentialHistogramDataPoint::default(); 2],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    };
    let mut no_value = number(Value::AsInt(1), &[]);
    no_value.value = None;
    let metrics = vec![
        metric(
            "ok",
            Data::Gauge(Gauge {
                data_points: vec![
                    no_time,
                    number(Value::AsDouble(f64::NAN), &[]),
                    number(Value::AsDouble(5.0), &[]),
                    no_value,
                ],
            }),
        ),
        metric(
            "h",
            Data::Histogram(Histogram {
                data_points: vec![bad_buckets],
                aggregation_temporality: 2,
            }),
        ),
        metric("exp", Data::ExponentialHistogram(exponential)),
        metric(
            "",
            Data::Gauge(Gauge {
                data_points: vec![number(Value::AsInt(1), &[])],
            }),
        ),
    ];
    let request = request(metrics);
    assert_eq!(to_graft::data_points(&request), 8);
    let (batch, outcome) = map(&request, Schema::PrometheusV1);
    assert_eq!((outcome.accepted, outcome.rejected), (1, 7));
    let why = outcome.first_error.unwrap();
    assert!(
        why.contains("\"ok\"") && why.contains("without a timestamp"),
        "{why}"
    );
    assert_eq!(batch.len(), 1);
    assert_eq!(
        batch.get(0).field("gauge"),
        Some(graft_core::FieldRef::Float(5.0))
    );
}

/// OTLP → graft → OTLP gives the same metrics back (names, types, values,
/// buckets, attributes, resource, scope, times) in either schema.
#[test]
fn graft_metrics_convert_back_to_the_otlp_they_came_from() {
    for schema in [Schema::PrometheusV1, Schema::PrometheusV2] {
        let original = request(every_type());
        let (batch, _) = map(&original, schema);
        let back = from_graft::convert(&batch, &[], "_");
        assert!(
            back.skipped.is_empty(),
            "{schema:?}: {:?}",
            back.first_error
        );
        assert_eq!(back.data_points, 6, "{schema:?}");
        let rm = &back.request.resource_metrics;
        assert_eq!(rm.len(), 1, "{schema:?}: one resource");
        let resource = &rm[0].resource.as_ref().unwrap().attributes;
        assert_eq!(resource, &attrs(&[("service.name", "shop")]), "{schema:?}");
        let scope = &rm[0].scope_metrics[0];
        let s = scope.scope.as_ref().unwrap();
        assert_eq!((s.name.as_str(), s.version.as_str()), ("meter", "1.2"));
        let by_name = |n: &str| scope.metrics.iter().find(|m| m.name == n).unwrap();
        let Some(Data::Gauge(g)) = &by_name("temp").data else {
            panic!("{schema:?}: temp is a gauge")
        };
        let p = &g.data_points[0];
        assert_eq!(p.value, Some(Value::AsDouble(21.5)));
        assert_eq!((p.time_unix_nano, p.start_time_unix_nano), (T, START));
        assert_eq!(p.attributes, attrs(&[("pid", "42"), ("room", "a")]));
        let Some(Data::Sum(sum)) = &by_name("requests").data else {
            panic!("{schema:?}: requests is a sum")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        assert_eq!(sum.data_points[0].value, Some(Value::AsInt(7)));
        let Some(Data::Histogram(h)) = &by_name("latency").data else {
            panic!("{schema:?}: latency is a histogram")
        };
        let p = &h.data_points[0];
        assert_eq!(
            (p.count, p.sum, p.min, p.max),
            (6, Some(9.5), Some(0.25), Some(4.0))
        );
        assert_eq!(p.explicit_bounds, [0.5, 2.0]);
        assert_eq!(p.bucket_counts, [1, 2, 3]);
        let rpc = by_name("rpc");
        let p = match &rpc.data {
            Some(Data::Summary(s)) => &s.data_points[0],
            other => panic!("{schema:?}: rpc is a summary, got {other:?}"),
        };
        assert_eq!((p.count, p.sum), (4, 10.0));
        let q: Vec<(f64, f64)> = p
            .quantile_values
            .iter()
            .map(|q| (q.quantile, q.value))
            .collect();
        assert_eq!(q, [(0.5, 2.0), (0.99, 4.5)]);
    }
}

#[test]
fn kinds_follow_the_point_types() {
    use graft_core::MetricKind::*;
    let (v1, _) = map(&request(every_type()), Schema::PrometheusV1);
    let kinds: Vec<_> = v1.iter().map(|m| m.kind()).collect();
    assert_eq!(kinds, [Gauge, Counter, Gauge, Gauge, Histogram, Summary]);
    let (v2, _) = map(&request(every_type()), Schema::PrometheusV2);
    let kinds: Vec<_> = v2.iter().map(|m| m.kind()).collect();
    assert_eq!(
        kinds,
        [
            Gauge, Counter, Gauge, Gauge, Histogram, Histogram, Histogram, Histogram, Summary,
            Summary, Summary
        ]
    );
}

fn parse(text: &str) -> Batch {
    let mut b = BatchBuilder::new();
    let mut p = graft_core::lineparse::BodyParser::new(text.as_bytes(), Default::default());
    while !p.parse_some(usize::MAX, &mut b) {}
    assert!(p.into_errors().is_empty());
    b.finish()
}

/// Untyped metrics (line protocol, WASM plugins) are read from their
/// fields as influx2otel reads them; tags are split between resource,
/// scope and data point.
#[test]
fn untyped_metrics_are_read_from_their_fields() {
    let batch = parse(concat!(
        "cpu,host.name=h1,cpu=cpu0 usage_idle=97.5,usage_user=2i,state=\"up\",ok=true 10\n",
        "mem,otel.library.name=lib gauge=5i 10\n",
        "hits,temporality=delta counter=3 10\n",
        "lat count=3,sum=1.5,0.1=1,1=3 10\n",
        "prometheus,le=1 x_bucket=2 10\n",
        "prometheus,le=+Inf x_bucket=5 10\n",
        "prometheus x_count=5,x_sum=7 10\n",
        "prometheus,job=a up=1 10\n",
    ));
    let resource = [("service.name".to_owned(), "agent".to_owned())];
    let c = from_graft::convert(&batch, &resource, ".");
    assert_eq!(
        (c.skipped.len(), c.data_points),
        (0, 7),
        "{:?}",
        c.first_error
    );
    let mut seen = Vec::new();
    for rm in &c.request.resource_metrics {
        let r: Vec<_> = rm
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .map(|a| a.key.clone())
            .collect();
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let ty = match &m.data {
                    Some(Data::Gauge(_)) => "gauge",
                    Some(Data::Sum(s)) if s.aggregation_temporality == 1 => "delta sum",
                    Some(Data::Sum(_)) => "sum",
                    Some(Data::Histogram(_)) => "histogram",
                    _ => "other",
                };
                let scope = sm.scope.as_ref().unwrap().name.clone();
                seen.push(format!("{} {ty} {scope} {}", m.name, r.join("+")));
            }
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "cpu.usage_idle gauge  host.name+service.name",
            "cpu.usage_user gauge  host.name+service.name",
            "hits delta sum  service.name",
            "lat histogram  service.name",
            "mem gauge lib service.name",
            "up gauge  service.name",
            "x histogram  service.name",
        ]
    );
    let x = c
        .request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics);
    let x = x.filter_map(|m| match &m.data {
        Some(Data::Histogram(h)) => Some((m.name.clone(), h.data_points[0].clone())),
        _ => None,
    });
    for (name, p) in x {
        match name.as_str() {
            "x" => assert_eq!(
                (p.count, p.explicit_bounds, p.bucket_counts),
                (5, vec![1.0], vec![2, 3])
            ),
            _ => assert_eq!(
                (p.count, p.explicit_bounds, p.bucket_counts),
                (3, vec![0.1, 1.0], vec![1, 2, 0])
            ),
        }
    }
}

#[test]
fn a_metric_that_cannot_be_converted_costs_only_itself() {
    let mut b = BatchBuilder::new();
    b.metric("h", 10)
        .kind(graft_core::MetricKind::Histogram)
        .field("sum", 1.0);
    b.metric("g", 10)
        .kind(graft_core::MetricKind::Gauge)
        .field("gauge", 1.0);
    b.metric("g", 11)
        .kind(graft_core::MetricKind::Counter)
        .field("counter", 2.0);
    b.metric("g", 12)
        .kind(graft_core::MetricKind::Gauge)
        .field("gauge", 3.0);
    let c = from_graft::convert(&b.finish(), &[], "_");
    assert_eq!((c.skipped, c.data_points), (vec![0, 2], 2));
    let why = c.first_error.unwrap();
    assert!(why.contains("\"h\"") && why.contains("count"), "{why}");
}

#[test]
fn a_point_over_max_attributes_is_rejected_and_the_request_cost_counted() {
    // The resource carries 2 attributes: the points carry 3 and 4.
    let points = vec![
        number(Value::AsInt(1), &[("a", "1")]),
        number(Value::AsInt(2), &[("a", "1"), ("b", "2")]),
    ];
    let req = request(vec![metric(
        "m",
        Data::Gauge(Gauge {
            data_points: points,
        }),
    )]);
    let mut b = BatchBuilder::new();
    let outcome = to_graft::map_request_with(&req, Schema::PrometheusV1, 3, &mut b);
    assert_eq!((outcome.accepted, outcome.rejected), (1, 1));
    assert!(
        outcome.first_error.unwrap().contains("max_attributes (3)"),
        "the reason names the key"
    );
    assert_eq!(b.finish().len(), 1);
    assert_eq!(to_graft::tags_in(&req, 3), 3);
    assert_eq!(to_graft::tags_in(&req, 256), 7);
}
