//! The formats against Telegraf's documented shapes, and round trips.

use graft_core::{Batch, BatchBuilder, FieldRef};

use super::*;

fn serializer(text: &str) -> Serializer {
    crate::config::parse::<SerializerConfig>(toml::from_str(text).unwrap())
        .unwrap()
        .build()
        .unwrap()
}

fn parser(text: &str) -> Parser {
    crate::config::parse::<ParserConfig>(toml::from_str(text).unwrap())
        .unwrap()
        .build("mqtt_consumer")
        .unwrap()
}

fn sample() -> Batch {
    let mut b = BatchBuilder::new();
    b.metric("docker", 1_458_229_140_123_456_789)
        .tag("host", "raynor")
        .field("field_2", 4i64)
        .field("field_1", 30.0)
        .field("note", "a \"quoted\"\nline")
        .field("ok", true)
        .field("big", u64::MAX);
    b.metric("cpu", 1_458_229_141_000_000_000)
        .tag("cpu", "cpu0")
        .field("usage", 0.5);
    b.finish()
}

fn lines(batch: &Batch) -> Vec<String> {
    let mut out = Vec::new();
    lineproto::Serializer::new(lineproto::SerializerOptions {
        uint_support: true,
        ..Default::default()
    })
    .write_batch(batch, &mut out);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

use graft_core::lineproto;

#[test]
fn json_has_telegrafs_shape() {
    let s = serializer("data_format = \"json\"");
    let batch = sample();
    let mut out = Vec::new();
    s.metric(batch.get(1), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"fields\":{\"usage\":0.5},\"name\":\"cpu\",\"tags\":{\"cpu\":\"cpu0\"},\"timestamp\":1458229141}\n"
    );
    let mut out = Vec::new();
    s.metric(batch.get(0), &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["fields"]["field_1"], 30.0);
    assert_eq!(v["fields"]["field_2"], 4);
    assert_eq!(v["fields"]["big"], u64::MAX);
    assert_eq!(v["fields"]["note"], "a \"quoted\"\nline");
    assert_eq!(v["fields"]["ok"], true);
    assert_eq!(v["tags"]["host"], "raynor");
    // Keys in Go's order: sorted.
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("{\"fields\":{\"big\":"), "{text}");
    assert!(text.contains("\"field_1\":30,"), "{text}");

    let mut out = Vec::new();
    assert_eq!(s.batch(&batch, &mut out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["metrics"].as_array().unwrap().len(), 2);
}

#[test]
fn json_timestamps_follow_units_and_format() {
    let batch = sample();
    let ts = |text: &str| {
        let mut out = Vec::new();
        serializer(text).metric(batch.get(0), &mut out).unwrap();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()["timestamp"].clone()
    };
    assert_eq!(
        ts("data_format = \"json\"\njson_timestamp_units = \"1ms\""),
        1_458_229_140_123i64
    );
    // Truncated to a power of ten, as Telegraf does.
    assert_eq!(
        ts("data_format = \"json\"\njson_timestamp_units = \"25ms\""),
        145_822_914_012_i64
    );
    assert_eq!(
        ts(
            "data_format = \"json\"\njson_timestamp_format = \"2006-01-02T15:04:05.999999999Z07:00\""
        ),
        "2016-03-17T15:39:00.123456789Z"
    );
    let e = crate::config::parse::<SerializerConfig>(
        toml::from_str("data_format = \"json\"\njson_timestamp_format = \"Jan 2\"").unwrap(),
    )
    .unwrap()
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("json_timestamp_format"), "{e}");
}

#[test]
fn influx_and_graft_round_trip_through_the_parser() {
    let batch = sample();
    for format in ["influx", "graft"] {
        let s = serializer(&format!(
            "data_format = \"{format}\"\ninflux_uint_support = true"
        ));
        let p = parser(&format!("data_format = \"{format}\""));
        // A whole batch as one body.
        let mut body = Vec::new();
        assert_eq!(s.batch(&batch, &mut body), 0);
        let mut out = BatchBuilder::new();
        let parsed = p.parse(&body, 0, &mut out);
        assert_eq!((parsed.metrics, parsed.malformed), (2, 0), "{format}");
        assert_eq!(lines(&out.finish()), lines(&batch), "{format}");
        // One metric a body.
        let mut out = BatchBuilder::new();
        for m in batch.iter() {
            let mut body = Vec::new();
            s.metric(m, &mut body).unwrap();
            assert_eq!(p.parse(&body, 0, &mut out).metrics, 1, "{format}");
        }
        assert_eq!(lines(&out.finish()), lines(&batch), "{format}");
    }
}

#[test]
fn a_bad_body_is_counted_and_costs_only_itself() {
    let p = parser("");
    let mut out = BatchBuilder::new();
    let parsed = p.parse(
        b"cpu value=1 1\nnot line protocol\ncpu value=2 2\n",
        0,
        &mut out,
    );
    assert_eq!((parsed.metrics, parsed.malformed), (2, 1));
    assert!(parsed.first_error.unwrap().contains("line 2"));

    let p = parser("data_format = \"graft\"");
    for body in [&b"cpu value=1"[..], b"GRF1\x01\xff\xff\xff\xff", b""] {
        let parsed = p.parse(body, 0, &mut out);
        assert_eq!((parsed.metrics, parsed.malformed), (0, 1), "{body:?}");
    }
    let p = parser("data_format = \"json\"");
    let parsed = p.parse(b"{\"a\": 1", 0, &mut out);
    assert_eq!((parsed.metrics, parsed.malformed), (0, 1));
    assert_eq!(out.len(), 2, "the good lines stay");
}

#[test]
fn json_parser_reads_telegrafs_examples() {
    // "Name, Tags, and String Fields" of Telegraf's json parser README.
    let p = parser(
        "data_format = \"json\"\njson_name_key = \"name\"\ntag_keys = [\"my_tag_1\"]\n\
         json_string_fields = [\"b_my_field\"]",
    );
    let mut out = BatchBuilder::new();
    let body = br#"{"a": 5, "b": {"c": 6, "my_field": "description"}, "my_tag_1": "foo", "name": "my_json", "ignored": "x", "flag": true}"#;
    assert_eq!(p.parse(body, 7, &mut out).metrics, 1);
    let batch = out.finish();
    let m = batch.get(0);
    assert_eq!((m.name(), m.timestamp()), ("my_json", 7));
    assert_eq!(m.tag("my_tag_1"), Some("foo"));
    assert_eq!(m.field("a"), Some(FieldRef::Float(5.0)));
    assert_eq!(m.field("b_c"), Some(FieldRef::Float(6.0)));
    assert_eq!(m.field("b_my_field"), Some(FieldRef::Str("description")));
    assert_eq!(m.field("ignored"), None);
    assert_eq!(m.field("flag"), None);

    // "Query": an array picked out of the document, tags by glob.
    let p = parser(
        "data_format = \"json\"\ntag_keys = [\"fir*\"]\njson_string_fields = [\"last\"]\n\
         json_query = \"obj.friends\"",
    );
    let body = br#"{"obj": {"age": 37, "friends": [
        {"first": "Dale", "last": "Murphy", "age": 44},
        {"first": "Roger", "last": "Craig", "age": 68}]}}"#;
    let mut out = BatchBuilder::new();
    assert_eq!(p.parse(body, 0, &mut out).metrics, 2);
    let batch = out.finish();
    assert_eq!(batch.get(1).name(), "mqtt_consumer");
    assert_eq!(batch.get(1).tag("first"), Some("Roger"));
    assert_eq!(batch.get(1).field("last"), Some(FieldRef::Str("Craig")));
    assert_eq!(batch.get(1).field("age"), Some(FieldRef::Float(68.0)));
}

#[test]
fn json_parser_reads_times() {
    let p = parser("data_format = \"json\"\njson_time_key = \"t\"\njson_time_format = \"unix_ms\"");
    let mut out = BatchBuilder::new();
    assert_eq!(
        p.parse(
            br#"[{"t": 1458229140123, "v": 1}, {"t": "1458229140124", "v": 2}]"#,
            0,
            &mut out
        )
        .metrics,
        2
    );
    let batch = out.finish();
    assert_eq!(batch.get(0).timestamp(), 1_458_229_140_123_000_000);
    assert_eq!(batch.get(1).timestamp(), 1_458_229_140_124_000_000);

    let p = parser(
        "data_format = \"json\"\njson_time_key = \"b_time\"\n\
         json_time_format = \"2006-01-02T15:04:05Z07:00\"",
    );
    let mut out = BatchBuilder::new();
    assert_eq!(
        p.parse(
            br#"{"a": 5, "b": {"time": "2006-01-04T15:04:00Z"}}"#,
            0,
            &mut out
        )
        .metrics,
        1
    );
    assert_eq!(out.finish().get(0).timestamp(), 1_136_387_040_000_000_000);

    // A missing time costs the document; json_strict = false, only the
    // object without one.
    let mut out = BatchBuilder::new();
    let parsed = p.parse(
        br#"[{"a": 1, "b": {"time": "2006-01-04T15:04:00Z"}}, {"a": 2}]"#,
        0,
        &mut out,
    );
    assert_eq!((parsed.metrics, parsed.malformed), (0, 1));
    let p = parser(
        "data_format = \"json\"\njson_time_key = \"b_time\"\njson_strict = false\n\
         json_time_format = \"2006-01-02T15:04:05Z07:00\"",
    );
    let parsed = p.parse(
        br#"[{"a": 1, "b": {"time": "2006-01-04T15:04:00Z"}}, {"a": 2}]"#,
        0,
        &mut out,
    );
    assert_eq!((parsed.metrics, parsed.malformed), (1, 0));
}

#[test]
fn config_errors_name_the_key() {
    let error = |text: &str| {
        let config: anyhow::Result<ParserConfig> =
            crate::config::parse(toml::from_str(text).unwrap());
        format!("{:#}", config.and_then(|c| c.validate()).unwrap_err())
    };
    assert!(error("data_format = \"xml\"").contains("data_format"));
    assert!(error("data_format = \"json\"\njson_query = \"a.#.b\"").contains("json_query"));
    assert!(error("data_format = \"json\"\ntag_keys = [\"a[\"]").contains("tag_keys"));
    assert!(error("data_format = \"json\"\njson_time_key = \"t\"").contains("json_time_format"));
    assert!(error("influx_timestamp_precision = \"2s\"").contains("influx_timestamp_precision"));
    assert!(error("json_bogus = 1").contains("json_bogus"));
}

#[test]
fn with_splits_a_table_between_its_parts() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Own {
        servers: Vec<String>,
    }
    type Config =
        crate::config::With<crate::config::With<Own, crate::tls::TlsConfig>, SerializerConfig>;
    let c: Config = crate::config::parse(
        toml::from_str("servers = [\"x\"]\ndata_format = \"json\"\ntls_enable = true").unwrap(),
    )
    .unwrap();
    assert_eq!(c.own.own.servers, ["x"]);
    assert!(c.own.shared.tls_enable);
    assert_eq!(c.shared.data_format, DataFormat::Json);
    let e = crate::config::parse::<Config>(toml::from_str("servers = []\nbogus = 1").unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
}

#[test]
fn a_long_key_over_many_values_is_refused_not_multiplied() {
    // 64 KiB of key over 20 000 values would flatten to 1.3 GB of keys.
    let key = "k".repeat(64 * 1024);
    let values: Vec<String> = (0..20_000).map(|i| format!("\"a{i}\":1")).collect();
    let body = format!("{{\"{key}\":{{{}}}}}", values.join(","));
    let p = parser("data_format = \"json\"");
    let mut out = BatchBuilder::new();
    let parsed = p.parse(body.as_bytes(), 0, &mut out);
    assert_eq!((parsed.metrics, parsed.malformed), (0, 1));
    assert!(parsed.first_error.unwrap().contains("many times"));
    // Empty objects cost their path too.
    let empties: Vec<String> = (0..20_000).map(|i| format!("\"a{i}\":{{}}")).collect();
    let body = format!("{{\"{key}\":{{{}}},\"v\":1}}", empties.join(","));
    assert_eq!(p.parse(body.as_bytes(), 0, &mut out).malformed, 1);
    // An ordinary nested document is far within the budget.
    let values: Vec<String> = (0..2_000)
        .map(|i| format!("\"field_{i}\":{{\"x\":{i}}}"))
        .collect();
    let body = format!("{{\"outer\":{{{}}}}}", values.join(","));
    assert_eq!(p.parse(body.as_bytes(), 0, &mut out).metrics, 1);
}

#[test]
fn remote_write_round_trips_through_serializer_and_parser() {
    let s = serializer("data_format = \"prometheusremotewrite\"\nprometheus_sort_metrics = true");
    assert_eq!(s.format(), DataFormat::PrometheusRemoteWrite);
    let mut body = Vec::new();
    // The string field gives no sample; the metric keeps its others.
    assert_eq!(s.batch(&sample(), &mut body), 0);
    for (version, expect) in [
        (
            2,
            "prometheus_remote_write,cpu=cpu0 cpu_usage=0.5 1458229141000000000",
        ),
        (1, "cpu_usage,cpu=cpu0 value=0.5 1458229141000000000"),
    ] {
        let p = parser(&format!(
            "data_format = \"prometheusremotewrite\"\nprometheus_metric_version = {version}"
        ));
        let mut out = BatchBuilder::new();
        let parsed = p.parse(&body, 0, &mut out);
        assert_eq!((parsed.metrics, parsed.malformed), (5, 0), "{parsed:?}");
        let text = lines(&out.finish());
        assert!(text.iter().any(|l| l == expect), "{text:?}");
        // Times are milliseconds on the wire.
        assert!(
            text.iter().any(|l| l.ends_with(" 1458229140123000000")),
            "{text:?}"
        );
    }
    let mut one = Vec::new();
    let only_text = {
        let mut b = BatchBuilder::new();
        b.metric("m", 1).field("s", "text");
        b.finish()
    };
    assert!(matches!(
        s.metric(only_text.get(0), &mut one),
        Err(FormatError::NoSamples { .. })
    ));
    assert_eq!(s.batch(&only_text, &mut one), 1);
}

#[test]
fn remote_write_garbage_costs_its_body_and_versions_are_checked() {
    let p = parser("data_format = \"prometheusremotewrite\"");
    let mut out = BatchBuilder::new();
    let parsed = p.parse(b"\x0a\xff\xff\xff\x0f", 0, &mut out);
    assert_eq!((parsed.metrics, parsed.malformed), (0, 1));
    assert!(parsed.first_error.unwrap().contains("remote write"));
    let e = crate::config::parse::<ParserConfig>(
        toml::from_str("data_format = \"prometheusremotewrite\"\nprometheus_metric_version = 3")
            .unwrap(),
    )
    .unwrap()
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("prometheus_metric_version"), "{e}");
}
