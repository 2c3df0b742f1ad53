//! Tests of the remote write parser's two shapes and its skips.

use graft_core::{BatchBuilder, FieldRef};
use prost::Message;

use super::*;
use crate::prometheus::remote::{Label, Sample, WriteRequest};

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.into(),
        value: value.into(),
    }
}

fn request() -> WriteRequest {
    WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: vec![
                    label("__name__", "go_gc_duration_seconds"),
                    label("instance", "localhost:9090"),
                    label("job", "prometheus"),
                    label("quantile", "0.99"),
                ],
                samples: vec![
                    Sample {
                        value: 4.63,
                        timestamp: 1_614_889_298_859,
                    },
                    Sample {
                        value: f64::NAN,
                        timestamp: 1_614_889_298_860,
                    },
                    Sample {
                        value: 5.0,
                        timestamp: 0,
                    },
                ],
            },
            // No metric name: skipped and counted.
            TimeSeries {
                labels: vec![label("job", "x")],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1,
                }],
            },
            TimeSeries {
                labels: vec![label("__name__", "late"), label("empty", "")],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: i64::MAX / 1000,
                }],
            },
        ],
        metadata: vec![],
    }
}

fn read(version: u8, body: &[u8]) -> (graft_core::Batch, Report) {
    let options = ParseOptions {
        metric_version: version,
        ..ParseOptions::default()
    };
    let mut out = BatchBuilder::new();
    let report = parse_any(body, &options, 42, &mut out).unwrap();
    (out.finish(), report)
}

#[test]
fn version_2_names_the_field_after_the_metric() {
    let (batch, report) = read(2, &request().encode_to_vec());
    assert_eq!(report.metrics, 2);
    assert_eq!(report.series, 3);
    assert_eq!(report.bad_series, 2, "{report:?}");
    let m = batch.get(0);
    assert_eq!(m.name(), "prometheus_remote_write");
    assert_eq!(
        m.tags().collect::<Vec<_>>(),
        [
            ("instance", "localhost:9090"),
            ("job", "prometheus"),
            ("quantile", "0.99")
        ]
    );
    assert_eq!(
        m.field("go_gc_duration_seconds"),
        Some(FieldRef::Float(4.63))
    );
    assert_eq!(m.timestamp(), 1_614_889_298_859_000_000);
    // The NaN (a staleness marker) is skipped; no timestamp means now.
    assert_eq!(batch.get(1).timestamp(), 42);
    assert_eq!(batch.len(), 2);
}

#[test]
fn version_1_names_the_measurement_after_the_metric() {
    let (batch, report) = read(1, &request().encode_to_vec());
    assert_eq!(report.metrics, 2);
    let m = batch.get(0);
    assert_eq!(m.name(), "go_gc_duration_seconds");
    assert_eq!(m.field("value"), Some(FieldRef::Float(4.63)));
    assert_eq!(m.tag("quantile"), Some("0.99"));
}

#[test]
fn a_snappy_body_is_read_too_within_its_limit() {
    let body = crate::prometheus::remote::compress(&request().encode_to_vec());
    let (batch, report) = read(2, &body);
    assert_eq!((batch.len(), report.bad_series), (2, 2));
    let small = ParseOptions {
        max_decompressed_bytes: 10,
        ..ParseOptions::default()
    };
    let err = parse_any(&body, &small, 0, &mut BatchBuilder::new()).unwrap_err();
    assert!(matches!(err, RemoteError::TooLarge { .. }), "{err}");
    assert!(parse_any(b"\xff\xff\xff", &small, 0, &mut BatchBuilder::new()).is_err());
}

#[test]
fn a_wide_series_with_a_million_empty_samples_is_refused_before_building() {
    // One series of 255 labels and a million empty samples (`0x12 0x00`,
    // two bytes each): a 2 MB body that would be 1M metrics x 255 tags.
    let labels = (0..254)
        .map(|i| label(&format!("l{i:03}"), "v"))
        .chain([label("__name__", "wide")])
        .collect();
    let mut series = TimeSeries {
        labels,
        samples: vec![],
    }
    .encode_to_vec();
    for _ in 0..1_000_000 {
        series.extend_from_slice(&[0x12, 0x00]);
    }
    let mut body = vec![0x0a];
    prost::encoding::encode_varint(series.len() as u64, &mut body);
    body.extend_from_slice(&series);
    let mut out = BatchBuilder::new();
    let err = parse(&body, &ParseOptions::default(), 1, &mut out).unwrap_err();
    assert!(
        matches!(err, RemoteError::TooManySamples { cells, .. } if cells == 256_000_000),
        "{err}"
    );
    assert_eq!(out.len(), 0);
    // The same series with a few samples is read.
    let mut small = TimeSeries::decode(&series[..]).unwrap();
    small.samples.truncate(3);
    let body = WriteRequest {
        timeseries: vec![small],
        metadata: vec![],
    }
    .encode_to_vec();
    let report = parse(&body, &ParseOptions::default(), 1, &mut out).unwrap();
    assert_eq!((report.metrics, report.bad_series), (3, 0));
}
