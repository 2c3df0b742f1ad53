//! Unit tests of the written formats: OpenMetrics, the choice by `Accept`
//! header, and numbers as Go's client writes them.

use std::time::Instant;

use graft_core::{FieldRef, MetricKind};

use super::render::{Format, go_float, openmetrics_float};
use super::tests::{f, metric, options, v2_histogram};
use super::*;

#[test]
fn openmetrics_counters_end_in_total_and_times_are_seconds() {
    let mut o = options(Version::V2);
    o.export_timestamp = true;
    let mut c = Collection::new(o);
    let now = Instant::now();
    c.add(
        &metric(
            "statsd",
            MetricKind::Counter,
            &[],
            &[("hits", FieldRef::Int(3))],
            1_500_000_000,
        ),
        now,
    );
    c.add(
        &metric(
            "net",
            MetricKind::Counter,
            &[],
            &[("bytes_total", FieldRef::Int(1))],
            0,
        ),
        now,
    );
    c.add(
        &metric("cpu", MetricKind::Untyped, &[], &[("idle", f(0.5))], 0),
        now,
    );
    for b in v2_histogram(0, 1) {
        c.add(&b, now);
    }
    let mut out = String::new();
    c.render(Format::OpenMetrics, &mut out);
    assert!(
        out.contains("# TYPE cpu_idle unknown\ncpu_idle 0.5 0.000\n"),
        "{out}"
    );
    assert!(
        out.contains("# TYPE net_bytes counter\nnet_bytes_total 1.0 0.000\n"),
        "{out}"
    );
    assert!(
        out.contains("# TYPE statsd_hits counter\nstatsd_hits_total 3.0 1.500\n"),
        "{out}"
    );
    assert!(
        out.contains("http_seconds_bucket{code=\"200\",le=\"0.1\"} 10 0.000\n"),
        "{out}"
    );
    assert!(
        out.contains("http_seconds_bucket{code=\"200\",le=\"+Inf\"} 30 0.000\n"),
        "{out}"
    );
}

#[test]
fn accept_headers_choose_the_format() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::negotiate(Some(prometheus), false), Format::Text);
    assert_eq!(
        Format::negotiate(Some(prometheus), true),
        Format::OpenMetrics
    );
    let only = "application/openmetrics-text; version=1.0.0";
    assert_eq!(Format::negotiate(Some(only), false), Format::OpenMetrics);
    assert_eq!(Format::negotiate(Some("text/plain"), true), Format::Text);
    assert_eq!(Format::negotiate(None, true), Format::Text);
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0"), true),
        Format::Text
    );
}

#[test]
fn floats_are_written_as_go_writes_them() {
    let cases = [
        (42.0, "42"),
        (0.05, "0.05"),
        (144320.0, "144320"),
        (1e6, "1e+06"),
        (1.7560473e7, "1.7560473e+07"),
        (-2.5, "-2.5"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (123456.789, "123456.789"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (1.8446744073709552e19, "1.8446744073709552e+19"),
    ];
    for (v, s) in cases {
        assert_eq!(go_float(v), s, "{v}");
    }
    assert_eq!(openmetrics_float(1.0), "1.0");
    assert_eq!(openmetrics_float(1e6), "1e+06");
    assert_eq!(openmetrics_float(0.5), "0.5");
}
