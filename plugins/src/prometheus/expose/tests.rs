//! Unit tests of the collection: Telegraf's prometheus_client cases for
//! both metric versions, written out as Telegraf writes them, and the
//! helpers the other test modules share.

use std::time::{Duration, Instant};

use graft_core::{BatchBuilder, FieldRef, MetricKind};

use super::render::Format;
use super::*;

pub(super) fn options(version: Version) -> Options {
    Options {
        version,
        string_as_label: true,
        export_timestamp: false,
        expiration: Some(Duration::from_secs(60)),
        max_series: 1000,
        types: TypeMappings::default(),
    }
}

pub(super) type Tags<'a> = &'a [(&'a str, &'a str)];
pub(super) type Fields<'a> = &'a [(&'a str, FieldRef<'a>)];

/// A batch of one metric.
pub(super) fn metric(
    name: &str,
    kind: MetricKind,
    tags: Tags<'_>,
    fields: Fields<'_>,
    ts: i64,
) -> Batch {
    let mut b = BatchBuilder::new();
    {
        let mut m = b.metric(name, ts);
        m.kind(kind);
        for (k, v) in tags {
            m.tag(k, v);
        }
        for (k, v) in fields {
            m.field(k, *v);
        }
    }
    b.finish()
}

pub(super) fn text(c: &Collection) -> String {
    let mut out = String::new();
    c.render(Format::Text, &mut out);
    out
}

/// What `options` expose after the batches, in the text format.
pub(super) fn expose(options: Options, batches: &[Batch]) -> String {
    let mut c = Collection::new(options);
    let now = Instant::now();
    for b in batches {
        c.add(b, now);
    }
    text(&c)
}

pub(super) fn f(v: f64) -> FieldRef<'static> {
    FieldRef::Float(v)
}

const HOST: Tags<'static> = &[("host", "example.org")];

#[test]
fn untyped_counter_and_gauge_in_both_versions() {
    use MetricKind::{Counter, Gauge, Untyped};
    for version in [Version::V1, Version::V2] {
        for (kind, name) in [(Untyped, "untyped"), (Counter, "counter"), (Gauge, "gauge")] {
            let got = expose(
                options(version),
                &[metric("cpu", kind, HOST, &[("time_idle", f(42.0))], 0)],
            );
            assert_eq!(
                got,
                format!(
                    "# HELP cpu_time_idle Telegraf collected metric\n# TYPE cpu_time_idle {name}\ncpu_time_idle{{host=\"example.org\"}} 42\n"
                ),
                "{version:?} {kind}"
            );
        }
    }
}

#[test]
fn version_1_names_value_counter_and_gauge_fields_after_the_measurement() {
    let cases = [
        (MetricKind::Untyped, "value", "untyped"),
        (MetricKind::Counter, "counter", "counter"),
        (MetricKind::Gauge, "gauge", "gauge"),
    ];
    for (kind, field, type_name) in cases {
        let got = expose(
            options(Version::V1),
            &[metric("cpu_time_idle", kind, HOST, &[(field, f(42.0))], 0)],
        );
        assert!(
            got.contains(&format!(
                "# TYPE cpu_time_idle {type_name}\ncpu_time_idle{{host=\"example.org\"}} 42\n"
            )),
            "{got}"
        );
    }
    // Version 2 keeps the field: `prometheus` is the measurement it drops.
    let got = expose(
        options(Version::V2),
        &[metric(
            "prometheus",
            MetricKind::Counter,
            HOST,
            &[("http_requests_total", f(7.0))],
            0,
        )],
    );
    assert!(
        got.contains("http_requests_total{host=\"example.org\"} 7\n"),
        "{got}"
    );
}

#[test]
fn export_timestamp_writes_milliseconds() {
    let mut o = options(Version::V2);
    o.export_timestamp = true;
    let got = expose(
        o,
        &[metric(
            "cpu",
            MetricKind::Counter,
            HOST,
            &[("time_idle", f(42.0))],
            1_257_894_000_000_000_000,
        )],
    );
    assert!(
        got.ends_with("cpu_time_idle{host=\"example.org\"} 42 1257894000000\n"),
        "{got}"
    );
}

#[test]
fn strings_are_labels_or_dropped_and_names_are_sanitized() {
    let fields: Fields<'_> = &[
        ("time_idle", f(42.0)),
        ("host:name", FieldRef::Str("example.org")),
    ];
    for version in [Version::V1, Version::V2] {
        let got = expose(
            options(version),
            &[metric("cpu", MetricKind::Untyped, &[], fields, 0)],
        );
        assert!(
            got.contains("cpu_time_idle{host_name=\"example.org\"} 42\n"),
            "{got}"
        );
        let mut o = options(version);
        o.string_as_label = false;
        let got = expose(o, &[metric("cpu", MetricKind::Untyped, &[], fields, 0)]);
        assert!(got.ends_with("\ncpu_time_idle 42\n"), "{got}");
    }
    // A tag wins over a string field of its name; invalid characters
    // become `_`; a leading digit is dropped.
    let got = expose(
        options(Version::V2),
        &[metric(
            "disk-io.1",
            MetricKind::Untyped,
            &[("host", "a"), ("dev.name", "sda"), ("0zone", "z")],
            &[("read bytes", f(1.0)), ("host", FieldRef::Str("b"))],
            0,
        )],
    );
    assert!(
        got.contains("disk_io_1_read_bytes{dev_name=\"sda\",host=\"a\",zone=\"z\"} 1\n"),
        "{got}"
    );
    // Nothing valid left: no family.
    let got = expose(
        options(Version::V2),
        &[metric("+", MetricKind::Untyped, &[], &[("-", f(1.0))], 0)],
    );
    assert_eq!(got, "");
}

#[test]
fn booleans_are_one_and_zero_in_version_2_and_skipped_in_version_1() {
    let fields: Fields<'_> = &[
        ("up", FieldRef::Bool(true)),
        ("down", FieldRef::Bool(false)),
    ];
    let got = expose(
        options(Version::V2),
        &[metric("svc", MetricKind::Untyped, &[], fields, 0)],
    );
    assert!(
        got.contains("svc_up 1\n") && got.contains("svc_down 0\n"),
        "{got}"
    );
    let got = expose(
        options(Version::V1),
        &[metric("svc", MetricKind::Untyped, &[], fields, 0)],
    );
    assert_eq!(got, "");
}

#[test]
fn label_values_are_escaped() {
    let got = expose(
        options(Version::V2),
        &[metric(
            "m",
            MetricKind::Gauge,
            &[("path", "C:\\dir \"x\"\nnext")],
            &[("v", f(1.0))],
            0,
        )],
    );
    assert!(
        got.contains("m_v{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n"),
        "{got}"
    );
}

#[test]
fn version_1_histogram_and_summary_from_one_metric() {
    let i = FieldRef::Int;
    let hist: Fields<'_> = &[
        ("sum", i(53423)),
        ("0.05", i(24054)),
        ("0.1", i(33444)),
        ("0.2", i(100392)),
        ("0.5", i(129389)),
        ("1", i(133988)),
        ("+Inf", i(144320)),
        ("count", i(144320)),
    ];
    let got = expose(
        options(Version::V1),
        &[metric(
            "http_request_duration_seconds",
            MetricKind::Histogram,
            &[],
            hist,
            0,
        )],
    );
    assert_eq!(
        got,
        "# HELP http_request_duration_seconds Telegraf collected metric
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.05\"} 24054
http_request_duration_seconds_bucket{le=\"0.1\"} 33444
http_request_duration_seconds_bucket{le=\"0.2\"} 100392
http_request_duration_seconds_bucket{le=\"0.5\"} 129389
http_request_duration_seconds_bucket{le=\"1\"} 133988
http_request_duration_seconds_bucket{le=\"+Inf\"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
"
    );
    let summary: Fields<'_> = &[
        ("0.01", i(3102)),
        ("0.05", i(3272)),
        ("0.5", i(4773)),
        ("0.9", i(9001)),
        ("0.99", i(76656)),
        ("count", i(2693)),
        ("sum", i(17560473)),
    ];
    let got = expose(
        options(Version::V1),
        &[metric(
            "rpc_duration_seconds",
            MetricKind::Summary,
            &[],
            summary,
            0,
        )],
    );
    assert_eq!(
        got,
        "# HELP rpc_duration_seconds Telegraf collected metric
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.01\"} 3102
rpc_duration_seconds{quantile=\"0.05\"} 3272
rpc_duration_seconds{quantile=\"0.5\"} 4773
rpc_duration_seconds{quantile=\"0.9\"} 9001
rpc_duration_seconds{quantile=\"0.99\"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"
    );
}

/// The metrics `inputs.prometheus` (metric_version 2) makes of a histogram.
pub(super) fn v2_histogram(ts: i64, scale: u64) -> Vec<Batch> {
    let tags = |le| vec![("code", "200"), ("le", le)];
    let mut out: Vec<Batch> = [("0.1", 10), ("0.5", 20), ("+Inf", 30)]
        .into_iter()
        .map(|(le, n)| {
            metric(
                "prometheus",
                MetricKind::Histogram,
                &tags(le),
                &[("http_seconds_bucket", FieldRef::Uint(n * scale))],
                ts,
            )
        })
        .collect();
    out.push(metric(
        "prometheus",
        MetricKind::Histogram,
        &[("code", "200")],
        &[
            ("http_seconds_sum", f(12.5)),
            ("http_seconds_count", FieldRef::Uint(30 * scale)),
        ],
        ts,
    ));
    out
}

#[test]
fn version_2_histogram_pieces_make_one_series_and_newer_ones_replace_them() {
    let expected = |n: [u64; 3]| {
        format!(
            "# HELP http_seconds Telegraf collected metric
# TYPE http_seconds histogram
http_seconds_bucket{{code=\"200\",le=\"0.1\"}} {}
http_seconds_bucket{{code=\"200\",le=\"0.5\"}} {}
http_seconds_bucket{{code=\"200\",le=\"+Inf\"}} {}
http_seconds_sum{{code=\"200\"}} 12.5
http_seconds_count{{code=\"200\"}} {}
",
            n[0], n[1], n[2], n[2]
        )
    };
    let mut c = Collection::new(options(Version::V2));
    let now = Instant::now();
    for b in v2_histogram(1_000, 1) {
        c.add(&b, now);
    }
    assert_eq!(text(&c), expected([10, 20, 30]));
    assert_eq!(c.len(), 1);
    for b in v2_histogram(2_000, 2) {
        c.add(&b, now);
    }
    assert_eq!(text(&c), expected([20, 40, 60]));
    // Older pieces are skipped.
    for b in v2_histogram(1_500, 5) {
        c.add(&b, now);
    }
    assert_eq!(text(&c), expected([20, 40, 60]));
}

#[test]
fn version_2_summary_without_quantiles_and_missing_inf_bucket() {
    let got = expose(
        options(Version::V2),
        &[metric(
            "prometheus",
            MetricKind::Summary,
            &[],
            &[
                ("rpc_duration_seconds_sum", f(1.7560473e7)),
                ("rpc_duration_seconds_count", FieldRef::Int(2693)),
            ],
            0,
        )],
    );
    assert_eq!(
        got,
        "# HELP rpc_duration_seconds Telegraf collected metric
# TYPE rpc_duration_seconds summary
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"
    );
    // A histogram without a `+Inf` bucket gets one holding the count.
    let batches = [
        metric(
            "h",
            MetricKind::Histogram,
            &[("le", "1")],
            &[("x_bucket", FieldRef::Int(3))],
            0,
        ),
        metric(
            "h",
            MetricKind::Histogram,
            &[],
            &[("x_count", FieldRef::Int(4)), ("x_sum", f(2.0))],
            0,
        ),
    ];
    let got = expose(options(Version::V2), &batches);
    assert!(
        got.contains("h_x_bucket{le=\"1\"} 3\nh_x_bucket{le=\"+Inf\"} 4\nh_x_sum 2\nh_x_count 4\n"),
        "{got}"
    );
}

#[test]
fn metric_types_force_counters_and_gauges_by_name() {
    let mut o = options(Version::V2);
    o.types = TypeMappings::new(&["cpu_time_*".into()], &["mem_*".into()]).unwrap();
    let got = expose(
        o,
        &[
            metric(
                "cpu",
                MetricKind::Untyped,
                HOST,
                &[("time_idle", f(1.0))],
                0,
            ),
            metric("mem", MetricKind::Counter, HOST, &[("used", f(1.0))], 0),
        ],
    );
    assert!(
        got.contains("# TYPE cpu_time_idle counter\n") && got.contains("# TYPE mem_used gauge\n"),
        "{got}"
    );
    assert!(
        TypeMappings::new(&["[".into()], &[])
            .unwrap_err()
            .to_string()
            .contains("metric_types.counter")
    );
}

#[test]
fn output_is_sorted_by_family_then_labels() {
    let batches: Vec<Batch> = ["cpu3", "cpu1", "cpu-total", "cpu2"]
        .iter()
        .map(|cpu| {
            metric(
                "cpu",
                MetricKind::Gauge,
                &[("cpu", cpu)],
                &[("usage_user", f(1.0)), ("usage_idle", f(2.0))],
                0,
            )
        })
        .collect();
    let got = expose(options(Version::V2), &batches);
    let lines: Vec<&str> = got.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "cpu_usage_idle{cpu=\"cpu-total\"} 2",
            "cpu_usage_idle{cpu=\"cpu1\"} 2",
            "cpu_usage_idle{cpu=\"cpu2\"} 2",
            "cpu_usage_idle{cpu=\"cpu3\"} 2",
            "cpu_usage_user{cpu=\"cpu-total\"} 1",
            "cpu_usage_user{cpu=\"cpu1\"} 1",
            "cpu_usage_user{cpu=\"cpu2\"} 1",
            "cpu_usage_user{cpu=\"cpu3\"} 1",
        ]
    );
}

#[test]
fn version_1_writes_every_label_of_the_family() {
    let batches = [
        metric("m", MetricKind::Gauge, &[("a", "1")], &[("v", f(1.0))], 0),
        metric("m", MetricKind::Gauge, &[("b", "2")], &[("v", f(2.0))], 0),
    ];
    let got = expose(options(Version::V1), &batches);
    assert!(
        got.ends_with("m_v{a=\"\",b=\"2\"} 2\nm_v{a=\"1\",b=\"\"} 1\n"),
        "{got}"
    );
}
