//! The parser and both metric versions against Telegraf's own parser test
//! cases (`plugins/parsers/prometheus/testcases`, `plugins/parsers/openmetrics`)
//! and the exposition formats' documented examples.

use graft_core::{BatchBuilder, FieldRef, MetricKind};

use super::schema::{Mapping, MetricVersion, format_g};
use super::{Format, Limits, LineError, Refused, parse};

const NOW: i64 = 1_700_000_000_000_000_000;

/// Each metric as `name,tag=v,... field=v,... kind [timestamp]` (fields
/// sorted; the timestamp only when it is not the scrape's).
fn render(body: &str, format: Format, version: MetricVersion) -> Vec<String> {
    let parsed = parse(body.as_bytes(), format, &Limits::default()).expect("within limits");
    assert_eq!(parsed.malformed, 0, "{:?}", parsed.first_error);
    let mut out = BatchBuilder::new();
    let mapping = Mapping {
        version,
        format,
        ignore_timestamp: false,
        now_ns: NOW,
        tags: &[],
    };
    let n = mapping.add(&parsed.families, &mut out);
    let batch = out.finish();
    assert_eq!(n, batch.len());
    batch
        .iter()
        .map(|m| {
            let mut line = m.name().to_owned();
            for (k, v) in m.tags() {
                line.push_str(&format!(",{k}={v}"));
            }
            let mut fields: Vec<String> = m
                .fields()
                .map(|(k, v)| match v {
                    FieldRef::Float(x) => format!("{k}={x}"),
                    FieldRef::Uint(x) => format!("{k}={x}u"),
                    FieldRef::Bool(x) => format!("{k}={x}"),
                    other => format!("{k}={other:?}"),
                })
                .collect();
            fields.sort();
            line.push_str(&format!(" {} {}", fields.join(","), m.kind()));
            if m.timestamp() != NOW {
                line.push_str(&format!(" {}", m.timestamp()));
            }
            line
        })
        .collect()
}

const HISTOGRAM: &str = r#"# HELP apiserver_request_latencies Response latency distribution in microseconds for each verb, resource and client.
# TYPE apiserver_request_latencies histogram
apiserver_request_latencies_bucket{resource="bindings",verb="POST",le="125000"} 1994
apiserver_request_latencies_bucket{resource="bindings",verb="POST",le="250000"} 1997
apiserver_request_latencies_bucket{resource="bindings",verb="POST",le="500000"} 2000
apiserver_request_latencies_bucket{resource="bindings",verb="POST",le="1e+06"} 2005
apiserver_request_latencies_bucket{resource="bindings",verb="POST",le="+Inf"} 2025
apiserver_request_latencies_sum{resource="bindings",verb="POST"} 1.02726334e+08
apiserver_request_latencies_count{resource="bindings",verb="POST"} 2025
"#;

#[test]
fn histogram_v1_is_one_metric_with_a_field_per_bound() {
    assert_eq!(
        render(HISTOGRAM, Format::Text, MetricVersion::V1),
        ["apiserver_request_latencies,resource=bindings,verb=POST \
          +Inf=2025,125000=1994,1e+06=2005,250000=1997,500000=2000,count=2025,sum=102726334 histogram"]
    );
}

#[test]
fn histogram_v2_is_a_metric_per_bucket_tagged_le() {
    let p = "prometheus,resource=bindings,verb=POST";
    let b = "prometheus,le=";
    assert_eq!(
        render(HISTOGRAM, Format::Text, MetricVersion::V2),
        [
            format!(
                "{p} apiserver_request_latencies_count=2025,apiserver_request_latencies_sum=102726334 histogram"
            ),
            format!(
                "{b}125000,resource=bindings,verb=POST apiserver_request_latencies_bucket=1994 histogram"
            ),
            format!(
                "{b}250000,resource=bindings,verb=POST apiserver_request_latencies_bucket=1997 histogram"
            ),
            format!(
                "{b}500000,resource=bindings,verb=POST apiserver_request_latencies_bucket=2000 histogram"
            ),
            format!(
                "{b}1e+06,resource=bindings,verb=POST apiserver_request_latencies_bucket=2005 histogram"
            ),
            format!(
                "{b}+Inf,resource=bindings,verb=POST apiserver_request_latencies_bucket=2025 histogram"
            ),
        ]
    );
}

#[test]
fn histogram_v2_without_an_infinite_bucket_gets_one_from_the_count() {
    let body = "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_sum 2.5\nh_count 7\n";
    assert_eq!(
        render(body, Format::Text, MetricVersion::V2),
        [
            "prometheus h_count=7,h_sum=2.5 histogram",
            "prometheus,le=1 h_bucket=3 histogram",
            "prometheus,le=+Inf h_bucket=7 histogram",
        ]
    );
}

const SUMMARY: &str = r#"# HELP http_request_duration_microseconds The HTTP request latencies in microseconds.
# TYPE http_request_duration_microseconds summary
http_request_duration_microseconds{handler="prometheus",quantile="0.5"} 552048.506
http_request_duration_microseconds{handler="prometheus",quantile="0.9"} 5.876804288e+06
http_request_duration_microseconds{handler="prometheus",quantile="0.99"} NaN
http_request_duration_microseconds_sum{handler="prometheus"} 1.8909097205e+07
http_request_duration_microseconds_count{handler="prometheus"} 9
"#;

#[test]
fn summary_in_both_versions() {
    assert_eq!(
        render(SUMMARY, Format::Text, MetricVersion::V1),
        ["http_request_duration_microseconds,handler=prometheus \
          0.5=552048.506,0.9=5876804.288,count=9,sum=18909097.205 summary"]
    );
    assert_eq!(
        render(SUMMARY, Format::Text, MetricVersion::V2),
        [
            "prometheus,handler=prometheus http_request_duration_microseconds_count=9,\
             http_request_duration_microseconds_sum=18909097.205 summary",
            "prometheus,handler=prometheus,quantile=0.5 http_request_duration_microseconds=552048.506 summary",
            "prometheus,handler=prometheus,quantile=0.9 http_request_duration_microseconds=5876804.288 summary",
        ]
    );
}

#[test]
fn counters_gauges_and_untyped_with_their_kind_and_timestamps() {
    let body = "# TYPE test_counter counter\n\
                test_counter{label=\"test\"} 1 1601830800000\n\
                # HELP go_goroutines Number of goroutines.\n\
                # TYPE go_goroutines gauge\n\
                go_goroutines 15\n\
                no_metadata{a=\"\"} 2 0\n\
                # TYPE u untyped\n\
                u +Inf\n";
    assert_eq!(
        render(body, Format::Text, MetricVersion::V1),
        [
            "test_counter,label=test counter=1 counter 1601830800000000000",
            "go_goroutines gauge=15 gauge",
            "no_metadata value=2 untyped",
        ]
    );
    assert_eq!(
        render(body, Format::Text, MetricVersion::V2),
        [
            "prometheus,label=test test_counter=1 counter 1601830800000000000",
            "prometheus go_goroutines=15 gauge",
            "prometheus no_metadata=2 untyped",
        ]
    );
}

#[test]
fn sum_and_count_without_a_typed_family_are_families_of_their_own() {
    let body = "rpc_sum 3\nrpc_count 2\n# TYPE g gauge\ng_sum 1\n";
    assert_eq!(
        render(body, Format::Text, MetricVersion::V1),
        [
            "rpc_sum value=3 untyped",
            "rpc_count value=2 untyped",
            "g_sum value=1 untyped"
        ]
    );
}

#[test]
fn samples_of_a_family_may_come_apart_and_series_group_by_labels() {
    let body = "# TYPE s summary\n\
                s{a=\"1\",quantile=\"0.5\"} 1\n\
                s{a=\"2\",quantile=\"0.5\"} 2\n\
                other 9\n\
                s_count{a=\"2\"} 4\n\
                s_count{a=\"1\"} 3\n";
    assert_eq!(
        render(body, Format::Text, MetricVersion::V1),
        [
            "s,a=1 0.5=1,count=3,sum=0 summary",
            "s,a=2 0.5=2,count=4,sum=0 summary",
            "other value=9 untyped",
        ]
    );
}

#[test]
fn labels_are_unescaped_and_an_empty_value_is_no_tag() {
    let body = "m{path=\"C:\\\\x\",q=\"say \\\"hi\\\"\",nl=\"a\\nb\",empty=\"\"} 1\n";
    assert_eq!(
        render(body, Format::Text, MetricVersion::V1),
        ["m,nl=a\nb,path=C:\\x,q=say \"hi\" value=1 untyped"]
    );
}

const OPENMETRICS: &str = r#"# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# TYPE go_goroutines gauge
go_goroutines 69
# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
process_cpu_seconds_total 4.20072246e+06 1605281325.5
process_cpu_seconds_created 1605281000
# TYPE foo histogram
foo_bucket{le="0.1"} 8 # {id="abc"} 0.043
foo_bucket{le="+Inf"} 17
foo_count 17
foo_sum 324789.3
# TYPE gh gaugehistogram
gh_bucket{le="1"} 2
gh_bucket{le="+Inf"} 3
gh_gcount 3
gh_gsum 4
# TYPE build info
build_info{version="1.2"} 1
# TYPE door stateset
door{door="open"} 1
door{door="closed with lock"} 0
# EOF
"#;

#[test]
fn openmetrics_v1() {
    assert_eq!(
        render(OPENMETRICS, Format::OpenMetrics, MetricVersion::V1),
        [
            "acme_http_router_request_seconds,method=GET,path=/api/v1,unit=seconds \
             count=807283,created=1605281325,sum=9036.32 summary",
            "go_goroutines gauge=69 gauge",
            "process_cpu_seconds,unit=seconds counter=4200722.46 counter 1605281325500000000",
            "foo +Inf=17,0.1=8,count=17,sum=324789.3 histogram",
            "gh +Inf=3,1=2,count=3,sum=4 histogram",
            "build,version=1.2 info=1u untyped",
            "door closed_with_lock=false,open=true untyped",
        ]
    );
}

#[test]
fn openmetrics_v2() {
    assert_eq!(
        render(OPENMETRICS, Format::OpenMetrics, MetricVersion::V2),
        [
            "openmetric,method=GET,path=/api/v1,unit=seconds \
             acme_http_router_request_seconds_count=807283,\
             acme_http_router_request_seconds_created=1605281325,\
             acme_http_router_request_seconds_sum=9036.32 summary",
            "openmetric go_goroutines=69 gauge",
            "openmetric,unit=seconds process_cpu_seconds=4200722.46 counter 1605281325500000000",
            "openmetric foo_count=17,foo_sum=324789.3 histogram",
            "openmetric,le=0.1 foo_bucket=8 histogram",
            "openmetric,le=+Inf foo_bucket=17 histogram",
            "openmetric gh_count=3,gh_sum=4 histogram",
            "openmetric,le=1 gh_bucket=2 histogram",
            "openmetric,le=+Inf gh_bucket=3 histogram",
            "openmetric,version=1.2 build_info=1u untyped",
            "openmetric door_open=true untyped",
            "openmetric door_closed_with_lock=false untyped",
        ]
    );
}

#[test]
fn ignore_timestamp_and_non_positive_text_timestamps_take_the_scrape_time() {
    let body = "a 1 1601830800000\nb 2 -5\n";
    let parsed = parse(body.as_bytes(), Format::Text, &Limits::default()).unwrap();
    for (ignore, expected) in [
        (false, [1_601_830_800_000_000_000, NOW]),
        (true, [NOW, NOW]),
    ] {
        let mut out = BatchBuilder::new();
        Mapping {
            version: MetricVersion::V1,
            format: Format::Text,
            ignore_timestamp: ignore,
            now_ns: NOW,
            tags: &[("url", "http://x/metrics"), ("a", "wins")],
        }
        .add(&parsed.families, &mut out);
        let batch = out.finish();
        let times: Vec<i64> = batch.iter().map(|m| m.timestamp()).collect();
        assert_eq!(times, expected);
        assert_eq!(batch.get(0).tag("url"), Some("http://x/metrics"));
        assert_eq!(batch.get(0).kind(), MetricKind::Untyped);
    }
}

#[test]
fn a_bad_line_costs_only_itself() {
    let body = "ok_1 1\nbroken{ 2\n# TYPE t nonsense\nok_2 2\n\u{1} 3\n# TYPE h histogram\nh_bucket 3\nh_bucket{le=\"x\"} 3\nok_3 3\n";
    let parsed = parse(body.as_bytes(), Format::Text, &Limits::default()).unwrap();
    assert_eq!(parsed.malformed, 5, "{:?}", parsed.first_error);
    assert_eq!(parsed.first_error.as_ref().unwrap().0, 2);
    let names: Vec<&str> = parsed.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["ok_1", "ok_2", "h", "ok_3"]);
    assert_eq!(parsed.samples, 3);
}

#[test]
fn invalid_utf8_is_a_bad_line() {
    let mut body = b"a 1\nb{x=\"".to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(b"\"} 2\nc 3\n");
    let parsed = parse(&body, Format::Text, &Limits::default()).unwrap();
    assert_eq!(parsed.malformed, 1);
    assert_eq!(parsed.first_error, Some((2, LineError::NotUtf8)));
    assert_eq!(parsed.samples, 2);
}

#[test]
fn limits_cost_the_line_or_the_body() {
    let limits = Limits {
        max_line_size: 25,
        max_labels: 2,
        max_samples: 3,
        max_decoded_size: 1 << 20,
    };
    let body = format!(
        "a 1\n{} 2\nb{{x=\"1\",y=\"2\",z=\"3\"}} 3\nc 4\n",
        "l".repeat(30)
    );
    let parsed = parse(body.as_bytes(), Format::Text, &limits).unwrap();
    assert_eq!(
        (
            parsed.samples,
            parsed.malformed,
            parsed.line_size_limit_hits,
            parsed.labels_limit_hits
        ),
        (2, 2, 1, 1)
    );
    let body = "a 1\nb 2\nc 3\nd 4\n";
    assert_eq!(
        parse(body.as_bytes(), Format::Text, &limits).unwrap_err(),
        Refused::Samples(3)
    );
}

#[test]
fn many_short_labels_are_bounded_by_what_they_take_in_memory() {
    let line = format!(
        "m{{{}}} 1\n",
        (0..100)
            .map(|i| format!("l{i}=\"v\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let body = line.repeat(200);
    let limits = Limits {
        max_decoded_size: 1 << 20,
        ..Limits::default()
    };
    let parsed = parse(body.as_bytes(), Format::Text, &Limits::default()).unwrap();
    // Each label takes far more than its 7 bytes in the body.
    assert!(
        parsed.decoded_size > 10 * body.len(),
        "{}",
        parsed.decoded_size
    );
    assert!(parsed.decoded_size > 1 << 20);
    assert_eq!(
        parse(body.as_bytes(), Format::Text, &limits).unwrap_err(),
        Refused::DecodedSize(1 << 20)
    );
}

#[test]
fn openmetrics_stops_at_eof_and_counts_what_follows() {
    let body = "a 1\n# EOF\nb 2\n";
    let parsed = parse(body.as_bytes(), Format::OpenMetrics, &Limits::default()).unwrap();
    assert_eq!((parsed.samples, parsed.malformed), (1, 1));
    assert_eq!(parsed.first_error, Some((3, LineError::AfterEof)));
    let parsed = parse(b"a 1\n# EOF\n", Format::OpenMetrics, &Limits::default()).unwrap();
    assert_eq!((parsed.samples, parsed.malformed), (1, 0));
}

#[test]
fn late_or_unknown_types_are_bad_lines() {
    let body = "a 1\n# TYPE a counter\n# TYPE b stateset\nb 2\n";
    let parsed = parse(body.as_bytes(), Format::Text, &Limits::default()).unwrap();
    assert_eq!(parsed.malformed, 2);
    assert_eq!(parsed.first_error, Some((2, LineError::LateMetadata)));
}

#[test]
fn content_type_chooses_the_format() {
    assert_eq!(Format::from_content_type(None), Format::Text);
    assert_eq!(
        Format::from_content_type(Some("text/plain; version=0.0.4; charset=utf-8")),
        Format::Text
    );
    assert_eq!(
        Format::from_content_type(Some(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        )),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type(Some("application/vnd.google.protobuf")),
        Format::Text
    );
}

#[test]
fn floats_are_named_as_go_formats_them() {
    for (v, s) in [
        (0.005, "0.005"),
        (0.25, "0.25"),
        (1.0, "1"),
        (10.0, "10"),
        (125000.0, "125000"),
        (1e6, "1e+06"),
        (2.5e6, "2.5e+06"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1.5e-7, "1.5e-07"),
        (1e21, "1e+21"),
        (1e100, "1e+100"),
        (-3.0, "-3"),
        (0.0, "0"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (0.99, "0.99"),
        (999999.0, "999999"),
        (123456.7, "123456.7"),
    ] {
        assert_eq!(format_g(v), s, "{v}");
    }
}

/// Telegraf's `openmetrics/testcases/valid_stateset`.
#[test]
fn a_stateset_is_one_metric_per_series_in_v1_and_one_per_state_in_v2() {
    let body = "# TYPE alarm_system_state stateset\n\
        alarm_system_state{entity=\"ground floor\",alarm_system_state=\"door ok\"} 1.0\n\
        alarm_system_state{entity=\"ground floor\",alarm_system_state=\"window 2 ok\"} 0.0\n\
        alarm_system_state{entity=\"basement\",alarm_system_state=\"window 1 ok\"} 1.0\n\
        # EOF\n";
    assert_eq!(
        render(body, Format::OpenMetrics, MetricVersion::V1),
        [
            "alarm_system_state,entity=ground floor door_ok=true,window_2_ok=false untyped",
            "alarm_system_state,entity=basement window_1_ok=true untyped",
        ]
    );
    assert_eq!(
        render(body, Format::OpenMetrics, MetricVersion::V2),
        [
            "openmetric,entity=ground floor alarm_system_state_door_ok=true untyped",
            "openmetric,entity=ground floor alarm_system_state_window_2_ok=false untyped",
            "openmetric,entity=basement alarm_system_state_window_1_ok=true untyped",
        ]
    );
}

/// What `inputs.prometheus` reads, exposed again by
/// `outputs.prometheus_client`'s collection and read back: the same
/// metrics, kinds included, in both versions (Telegraf's round trip).
#[test]
fn exposed_metrics_read_back_the_same() {
    use crate::prometheus::expose::{
        Collection, Format as Exposed, Options, TypeMappings, Version,
    };
    let body = format!(
        "{HISTOGRAM}{SUMMARY}# TYPE c counter\nc{{a=\"x\"}} 5\n# TYPE g gauge\ng 2.5\nu 7\n"
    );
    for (version, exposed) in [
        (MetricVersion::V1, Version::V1),
        (MetricVersion::V2, Version::V2),
    ] {
        let read = |text: &str| {
            let parsed = parse(text.as_bytes(), Format::Text, &Limits::default()).unwrap();
            assert_eq!(parsed.malformed, 0, "{:?}\n{text}", parsed.first_error);
            let mut out = BatchBuilder::new();
            Mapping {
                version,
                format: Format::Text,
                ignore_timestamp: false,
                now_ns: NOW,
                tags: &[],
            }
            .add(&parsed.families, &mut out);
            out.finish()
        };
        let first = read(&body);
        let mut collection = Collection::new(Options {
            version: exposed,
            string_as_label: true,
            export_timestamp: false,
            expiration: None,
            max_series: 1000,
            types: TypeMappings::default(),
        });
        collection.add(&first, std::time::Instant::now());
        let mut text = String::new();
        collection.render(Exposed::Text, &mut text);
        let again = read(&text);
        let rows = |b: &graft_core::Batch| {
            let mut rows: Vec<String> = b
                .iter()
                .map(|m| {
                    let mut fields: Vec<String> =
                        m.fields().map(|(k, v)| format!("{k}={v:?}")).collect();
                    fields.sort();
                    let tags: Vec<String> = m.tags().map(|(k, v)| format!("{k}={v}")).collect();
                    format!(
                        "{} {} {} {}",
                        m.name(),
                        tags.join(","),
                        fields.join(","),
                        m.kind()
                    )
                })
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(rows(&again), rows(&first), "{version:?}\n{text}");
    }
}
