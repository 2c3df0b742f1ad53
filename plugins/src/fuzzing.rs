//! Entry points for the fuzz targets in `fuzz/` and for the ordinary test
//! that replays their corpora (`plugins/tests/fuzz_corpus_network.rs`):
//! each takes arbitrary bytes down the same path a peer's bytes take, and
//! panics only when an invariant breaks.

use std::sync::OnceLock;

use graft_core::BatchBuilder;

use crate::graphite::pickle::{self, PickleLimits, Value};
use crate::graphite::{self, Templates};
use crate::inputs::statsd::Statsd;
use crate::listener::{Framed, LineFramer};

/// Graphite plaintext: bytes framed into lines of at most 64 bytes (small,
/// so the fuzzer reaches the limit), each parsed with and without
/// templates. Every metric read has a finite value.
pub fn graphite_plaintext(data: &[u8]) {
    static TEMPLATES: OnceLock<[Templates; 2]> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        [
            Templates::new(&[], ".").expect("no templates"),
            Templates::new(
                &[
                    "servers.* .host.measurement.field".into(),
                    "measurement.field*".into(),
                ],
                ".",
            )
            .expect("valid templates"),
        ]
    });
    for t in templates {
        let mut framer = LineFramer::new(64);
        let mut out = BatchBuilder::new();
        let mut each = |f: Framed<'_>| {
            if let Framed::Line(l) = f {
                assert!(l.len() <= 64);
                let text = String::from_utf8_lossy(l);
                let _ = graphite::parse_line(&text, 0, t, &mut out);
            }
        };
        framer.feed(data, &mut each);
        framer.finish(&mut each);
        for m in out.finish().iter() {
            for (_, v) in m.fields() {
                let f = v.as_f64().expect("a graphite value is a number");
                assert!(f.is_finite(), "{m:?}");
            }
        }
    }
}

/// A pickle frame, decoded within the default limits and within tiny
/// ones. What decodes stays within the nesting limit.
pub fn pickle_frame(data: &[u8]) {
    let small = PickleLimits {
        max_depth: 4,
        max_memo_entries: 4,
        max_decoded_size: 4096,
    };
    for limits in [PickleLimits::default(), small] {
        if let Ok(v) = pickle::decode_with(data, &limits) {
            assert!(depth(&v) <= limits.max_depth, "{v:?}");
            let _ = pickle::as_path(&v);
            let _ = pickle::as_f64(&v);
        }
    }
}

/// Nesting depth of a decoded value, without recursion.
fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut todo = vec![(v, 0)];
    while let Some((v, d)) = todo.pop() {
        if let Value::List(items) | Value::Tuple(items) = v {
            max = max.max(d + 1);
            todo.extend(items.iter().map(|i| (i, d + 1)));
        }
    }
    max
}

/// StatsD lines, with the DogStatsD extensions on, aggregated and emitted
/// as a gather would. Every metric emitted has a field.
pub fn statsd_lines(data: &[u8]) {
    let config = toml::from_str(
        "datadog_extensions = true\ndatadog_distributions = true\n\
         max_line_size = 256\npercentiles = [0, 50, 99.9, 100]\n\
         templates = [\"measurement.field\"]",
    )
    .expect("test config");
    let mut statsd = Statsd::new(crate::config::parse(config).expect("config")).expect("statsd");
    statsd.ingest(data);
    let batch = statsd.emit().expect("emit");
    for m in batch.iter() {
        assert!(m.fields().next().is_some(), "{m:?}");
    }
}

/// A message body from a message bus, read in every `data_format` the
/// consumers take (line protocol, JSON with flattening, tags, string fields
/// and times, graft's batch). A body costs at most itself: what is read is
/// counted, and a graft batch read back writes and reads again the same.
pub fn message_body(data: &[u8]) {
    use crate::format::{ParserConfig, SerializerConfig};
    static PARSERS: OnceLock<Vec<crate::format::Parser>> = OnceLock::new();
    let parsers = PARSERS.get_or_init(|| {
        [
            "data_format = \"influx\"\ninflux_max_tags = 4\ninflux_max_fields = 4",
            "data_format = \"json\"",
            "data_format = \"json\"\njson_strict = false\ntag_keys = [\"t*\"]\n\
             json_string_fields = [\"s*\"]\njson_name_key = \"n\"\njson_time_key = \"time\"\n\
             json_time_format = \"unix_ms\"",
            "data_format = \"json\"\njson_query = \"a.0\"\njson_time_key = \"time\"\n\
             json_time_format = \"2006-01-02T15:04:05Z07:00\"",
            "data_format = \"graft\"",
        ]
        .iter()
        .map(|text| {
            crate::config::parse::<ParserConfig>(toml::from_str(text).expect("test config"))
                .and_then(|c| c.build("fuzz"))
                .expect("parser")
        })
        .collect()
    });
    for parser in parsers {
        let mut out = BatchBuilder::new();
        let parsed = parser.parse(data, 0, &mut out);
        assert_eq!(parsed.metrics, out.len());
        assert_eq!(parsed.malformed == 0, parsed.first_error.is_none());
        let batch = out.finish();
        if parser.format() == crate::format::DataFormat::Graft && !batch.is_empty() {
            let serializer = SerializerConfig {
                data_format: crate::format::DataFormat::Graft,
                ..SerializerConfig::default()
            }
            .build()
            .expect("serializer");
            let mut body = Vec::new();
            serializer.batch(&batch, &mut body);
            let mut again = BatchBuilder::new();
            assert_eq!(parser.parse(&body, 0, &mut again).metrics, batch.len());
            assert_eq!(again.finish().len(), batch.len());
        }
    }
}

/// A Prometheus remote write body (snappy or not) read as the
/// `prometheusremotewrite` parser reads it, in both metric versions and
/// within tiny limits: what is read is counted, each metric has one finite
/// field, a body read plain and snappy-compressed gives the same, and what
/// is read serializes into a request that reads back as framed.
pub fn remote_write(data: &[u8]) {
    use crate::prometheus::{remote, remote_parse, remote_serialize};
    for (version, max_labels) in [(1, 4), (2, remote_parse::DEFAULT_MAX_LABELS)] {
        let options = remote_parse::ParseOptions {
            metric_version: version,
            max_labels,
            max_decompressed_bytes: 64 << 10,
        };
        let mut out = BatchBuilder::new();
        let Ok(report) = remote_parse::parse_any(data, &options, 7, &mut out) else {
            continue;
        };
        assert_eq!(report.metrics, out.len());
        assert!(report.labels_limit_hits <= report.bad_series);
        assert_eq!(report.bad_series == 0, report.first_error.is_none());
        let batch = out.finish();
        for m in batch.iter() {
            let fields: Vec<_> = m.fields().collect();
            assert_eq!(fields.len(), 1, "{m:?}");
            assert!(fields[0].1.as_f64().is_some_and(f64::is_finite), "{m:?}");
            assert!(m.tags().len() <= max_labels, "{m:?}");
        }
        if remote::is_framed(data) {
            let mut again = BatchBuilder::new();
            let snappy = remote::compress(data);
            // Unless the snappy bytes happen to read as protobuf too.
            if data.len() <= options.max_decompressed_bytes && !remote::is_framed(&snappy) {
                let r = remote_parse::parse_any(&snappy, &options, 7, &mut again)
                    .expect("a framed body reads the same compressed");
                assert_eq!(
                    (r.metrics, r.bad_series),
                    (report.metrics, report.bad_series)
                );
            }
        }
        let written = remote_serialize::serialize(&batch, remote_serialize::Options::default());
        let plain = remote::decompress(&written.body, usize::MAX).expect("our own snappy");
        assert!(remote::is_framed(&plain));
        let mut series = 0;
        remote::for_each_series(&plain, usize::MAX, |s| {
            assert!(matches!(s, remote::Series::Read(_)), "{s:?}");
            series += 1;
        })
        .expect("our own request");
        assert_eq!(series, written.series);
    }
}

/// A scrape body in both exposition formats, within the default limits and
/// tiny ones, mapped in both metric versions. What is kept stays within
/// the limits, every metric has a finite field, and a skipped line is
/// reported.
pub fn prometheus_text(data: &[u8]) {
    use crate::prometheus::text::schema::{Mapping, MetricVersion};
    use crate::prometheus::text::{self, Format, Limits};
    let small = Limits {
        max_line_size: 64,
        max_labels: 2,
        max_samples: 16,
        max_decoded_size: 4096,
    };
    for format in [Format::Text, Format::OpenMetrics] {
        for limits in [Limits::default(), small] {
            let Ok(parsed) = text::parse(data, format, &limits) else {
                continue;
            };
            assert!(parsed.samples <= limits.max_samples);
            assert!(parsed.decoded_size <= limits.max_decoded_size);
            assert_eq!(parsed.malformed == 0, parsed.first_error.is_none());
            for f in &parsed.families {
                for s in &f.samples {
                    assert!(s.labels.len() <= limits.max_labels, "{s:?}");
                }
            }
            for version in [MetricVersion::V1, MetricVersion::V2] {
                let mut out = BatchBuilder::new();
                let n = Mapping {
                    version,
                    format,
                    ignore_timestamp: false,
                    now_ns: 0,
                    tags: &[("url", "http://127.0.0.1/metrics")],
                }
                .add(&parsed.families, &mut out);
                let batch = out.finish();
                assert_eq!(n, batch.len());
                for m in batch.iter() {
                    assert_eq!(m.tag("url"), Some("http://127.0.0.1/metrics"));
                    assert!(m.fields().next().is_some(), "{m:?}");
                    for (_, v) in m.fields() {
                        assert!(v.as_f64().is_none_or(f64::is_finite), "{m:?}");
                    }
                }
            }
        }
    }
}

/// An OTLP metrics export from arbitrary bytes, as `inputs.opentelemetry`
/// reads one (protobuf, and JSON as OTLP/HTTP takes it), mapped with both
/// schemas and converted back as `outputs.opentelemetry` would. Every data
/// point is either mapped or counted as rejected.
pub fn otlp_metrics(data: &[u8]) {
    use prost::Message as _;

    use crate::opentelemetry::proto::collector::ExportMetricsServiceRequest;
    use crate::opentelemetry::{Schema, from_graft, to_graft};
    let decoded = [
        ExportMetricsServiceRequest::decode(data).ok(),
        serde_json::from_slice::<ExportMetricsServiceRequest>(data).ok(),
    ];
    for request in decoded.into_iter().flatten() {
        let points = to_graft::data_points(&request);
        for schema in [Schema::PrometheusV1, Schema::PrometheusV2] {
            let mut out = BatchBuilder::new();
            let outcome = to_graft::map_request(&request, schema, &mut out);
            assert_eq!(outcome.accepted + outcome.rejected, points);
            assert_eq!(outcome.rejected == 0, outcome.first_error.is_none());
            let batch = out.finish();
            let back = from_graft::convert(&batch, &[], "_");
            assert!(back.skipped.len() <= batch.len());
            assert_eq!(back.skipped.is_empty(), back.first_error.is_none());
            // What was converted encodes and decodes again.
            let bytes = back.request.encode_to_vec();
            let again = ExportMetricsServiceRequest::decode(&bytes[..]).expect("re-decode");
            assert_eq!(to_graft::data_points(&again), back.data_points);
        }
    }
}

/// Redis: bytes read as one RESP reply within a 4 KiB budget (a declared
/// length past it is refused before anything is allocated), then as an
/// `INFO ALL` text into metrics with at most 16 per-section ones. Every
/// float read is finite.
pub fn redis_reply(data: &[u8]) {
    crate::inputs::redis::fuzz_reply(data);
}

/// A collectd packet from arbitrary bytes, read at each security level
/// and in both multi-value shapes, as it is and signed and encrypted with
/// a known password (so the fuzzer reaches the parts inside). What is read
/// is counted, every value is a finite float, and a packet over the size
/// limit yields nothing.
pub fn collectd(data: &[u8]) {
    use crate::collectd::{AuthFile, Decoder, MultiValue, SecurityLevel, TypesDb};
    static DECODERS: OnceLock<Vec<Decoder>> = OnceLock::new();
    let decoders = DECODERS.get_or_init(|| {
        let db = "load shortterm:GAUGE:0:5000, midterm:GAUGE:0:5000, longterm:GAUGE:0:5000\n\
                  if_octets rx:DERIVE:0:U, tx:DERIVE:0:U\ncounter value:COUNTER:U:U\n";
        [
            (SecurityLevel::None, MultiValue::Split, None),
            (SecurityLevel::Sign, MultiValue::Join, Some(db)),
            (SecurityLevel::Encrypt, MultiValue::Split, Some(db)),
        ]
        .into_iter()
        .map(|(level, mv, db)| {
            Decoder::new(
                level,
                mv,
                db.map(TypesDb::parse),
                AuthFile::from_text("fuzz: secret\n"),
            )
        })
        .collect()
    });
    let packet = data.to_vec();
    let signed = wrap(data, |p| p.signed("fuzz", "secret"));
    let encrypted = wrap(data, |p| p.encrypted("fuzz", "secret", [9; 16]));
    for d in decoders {
        for bytes in [&packet, &signed, &encrypted] {
            let mut out = BatchBuilder::new();
            let report = d.decode(bytes, 0, &mut out);
            assert_eq!(report.metrics, out.len());
            // Whatever was dropped says why.
            assert_eq!(
                report.dropped() > 0,
                report.first_error.is_some(),
                "{report:?}"
            );
            if bytes.len() > crate::collectd::MAX_PACKET_SIZE {
                assert_eq!(report.metrics, 0);
            }
            for m in out.finish().iter() {
                for (k, v) in m.fields() {
                    let f = v.as_f64().expect("collectd values are floats");
                    assert!(f.is_finite(), "{k}: {m:?}");
                }
            }
        }
    }
}

/// `data` as the parts of a packet wrapped by `seal` (signed or
/// encrypted), or empty when it does not fit in one part.
fn wrap(data: &[u8], seal: impl Fn(&crate::collectd::encode::Packet) -> Vec<u8>) -> Vec<u8> {
    if data.len() > 60_000 {
        return Vec::new();
    }
    seal(&crate::collectd::encode::Packet::from_bytes(data))
}
