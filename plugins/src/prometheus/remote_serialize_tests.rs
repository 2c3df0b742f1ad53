//! Tests of the remote write serializer: names, labels, kinds, order.

use graft_core::{Batch, BatchBuilder, MetricKind};
use prost::Message;

use super::*;
use crate::prometheus::remote::{WriteRequest, decompress};

fn decode(s: &Serialized) -> WriteRequest {
    WriteRequest::decode(decompress(&s.body, 1 << 24).unwrap().as_slice()).unwrap()
}

/// Each series as `name{k="v",...} value@ms` lines, for reading at a glance.
fn lines(req: &WriteRequest) -> Vec<String> {
    req.timeseries
        .iter()
        .flat_map(|ts| {
            let labels: Vec<String> = ts
                .labels
                .iter()
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            ts.samples
                .iter()
                .map(move |s| format!("{} {}@{}", labels.join(","), s.value, s.timestamp))
        })
        .collect()
}

const T: i64 = 1_700_000_000_123_456_789;

fn batch(build: impl FnOnce(&mut BatchBuilder)) -> Batch {
    let mut b = BatchBuilder::new();
    build(&mut b);
    b.finish()
}

#[test]
fn fields_become_series_named_measurement_field_with_tags_as_labels() {
    let b = batch(|b| {
        b.metric("cpu", T)
            .tag("cpu", "cpu-total")
            .tag("host", "a")
            .tag("empty", "")
            .field("usage_idle", 97.5)
            .field("busy", true)
            .field("state", "ok")
            .field("count", 3i64);
        b.metric("prometheus", T).field("up", 1u64);
    });
    let s = serialize(&b, Options::default());
    assert_eq!(
        lines(&decode(&s)),
        [
            r#"__name__="cpu_usage_idle",cpu="cpu-total",host="a" 97.5@1700000000123"#,
            r#"__name__="cpu_busy",cpu="cpu-total",host="a" 1@1700000000123"#,
            r#"__name__="cpu_count",cpu="cpu-total",host="a" 3@1700000000123"#,
            r#"__name__="up" 1@1700000000123"#,
        ]
    );
    assert_eq!((s.series, s.samples, s.skipped_fields), (4, 4, 1));
}

#[test]
fn strings_become_labels_when_asked_and_names_are_sanitized() {
    let b = batch(|b| {
        b.metric("disk io", T)
            .tag("dev-name", "sda")
            .field("state", "ok")
            .field("dev-name", "from field")
            .field("reads.total", 5.0);
    });
    let options = Options {
        string_as_label: true,
        ..Options::default()
    };
    assert_eq!(
        lines(&decode(&serialize(&b, options))),
        [r#"__name__="disk_io_reads_total",dev_name="sda",state="ok" 5@1700000000123"#]
    );
}

#[test]
fn a_series_named_twice_keeps_its_samples_in_time_order() {
    let b = batch(|b| {
        b.metric("m", T).field("v", 1.0);
        b.metric("m", T + 1_000_000).field("v", 2.0);
        b.metric("m", T + 1_000_000).field("v", 3.0);
        b.metric("m", T - 5_000_000).field("v", 4.0);
    });
    let s = serialize(&b, Options::default());
    assert_eq!(
        lines(&decode(&s)),
        [
            r#"__name__="m_v" 1@1700000000123"#,
            r#"__name__="m_v" 3@1700000000124"#
        ]
    );
    assert_eq!(s.skipped_fields, 1, "the older sample is dropped");
}

#[test]
fn histograms_are_reassembled_as_buckets_sum_and_count() {
    let b = batch(|b| {
        for (le, n) in [("0.5", 2u64), ("1", 5), ("1000000", 6)] {
            b.metric("http", T)
                .kind(MetricKind::Histogram)
                .tag("le", le)
                .tag("path", "/")
                .field("latency_bucket", n);
        }
        b.metric("http", T)
            .kind(MetricKind::Histogram)
            .tag("path", "/")
            .field("latency_sum", 3.25)
            .field("latency_count", 7u64);
    });
    let s = serialize(&b, Options::default());
    assert_eq!(
        lines(&decode(&s)),
        [
            r#"__name__="http_latency_sum",path="/" 3.25@1700000000123"#,
            r#"__name__="http_latency_count",path="/" 7@1700000000123"#,
            r#"__name__="http_latency_bucket",le="+Inf",path="/" 7@1700000000123"#,
            r#"__name__="http_latency_bucket",le="0.5",path="/" 2@1700000000123"#,
            r#"__name__="http_latency_bucket",le="1",path="/" 5@1700000000123"#,
            r#"__name__="http_latency_bucket",le="1e+06",path="/" 6@1700000000123"#,
        ]
    );
}

#[test]
fn summaries_keep_quantiles_as_labels() {
    let b = batch(|b| {
        b.metric("rpc", T)
            .kind(MetricKind::Summary)
            .tag("quantile", "0.99")
            .field("duration", 0.25);
        b.metric("rpc", T)
            .kind(MetricKind::Summary)
            .field("duration_sum", 10.0)
            .field("duration_count", 40u64)
            .field("duration", 1.0);
    });
    let s = serialize(&b, Options::default());
    assert_eq!(
        lines(&decode(&s)),
        [
            r#"__name__="rpc_duration",quantile="0.99" 0.25@1700000000123"#,
            r#"__name__="rpc_duration_sum" 10@1700000000123"#,
            r#"__name__="rpc_duration_count" 40@1700000000123"#,
        ]
    );
    assert_eq!(s.skipped_fields, 1, "a quantile field without its tag");
}

#[test]
fn sorting_orders_series_by_label_count_then_labels() {
    let b = batch(|b| {
        b.metric("b", T).tag("x", "1").field("v", 1.0);
        b.metric("a", T).tag("x", "2").field("v", 1.0);
        b.metric("c", T).field("v", 1.0);
    });
    let sorted = Options {
        sort_metrics: true,
        ..Options::default()
    };
    let names: Vec<String> = decode(&serialize(&b, sorted))
        .timeseries
        .iter()
        .map(|ts| ts.labels[0].value.clone())
        .collect();
    assert_eq!(names, ["c_v", "a_v", "b_v"]);
    // The same batch always gives the same bytes.
    assert_eq!(
        serialize(&b, Options::default()).body,
        serialize(&b, Options::default()).body
    );
}

#[test]
fn floats_are_written_as_go_writes_them() {
    for (f, text) in [
        (0.5, "0.5"),
        (1.0, "1"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.000025, "2.5e-05"),
        (-3.0, "-3"),
        (f64::INFINITY, "+Inf"),
    ] {
        assert_eq!(go_float(f), text);
    }
}
