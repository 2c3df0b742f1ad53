//! Tests of the remote write messages, snappy bounds and the series walk.

use prost::Message;

use super::*;

fn series(name: &str, value: f64, ms: i64) -> TimeSeries {
    TimeSeries {
        labels: vec![
            Label {
                name: "__name__".into(),
                value: name.into(),
            },
            Label {
                name: "job".into(),
                value: "node".into(),
            },
        ],
        samples: vec![Sample {
            value,
            timestamp: ms,
        }],
    }
}

/// A length-delimited field `tag` holding `bytes`.
fn field(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(tag, WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

fn walk(body: &[u8], max_labels: usize) -> (Vec<TimeSeries>, Vec<String>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for_each_series(body, max_labels, |s| match s {
        Series::Read(ts) => good.push(ts),
        Series::TooManyLabels(n) => bad.push(format!("labels {n}")),
        Series::Malformed(e) => bad.push(e),
    })
    .unwrap();
    (good, bad)
}

#[test]
fn a_request_round_trips_through_snappy_and_the_walk() {
    let request = WriteRequest {
        timeseries: vec![series("up", 1.0, 1_700_000_000_123), series("x", -2.5, 7)],
        metadata: vec![MetricMetadata {
            r#type: metric_type::COUNTER,
            metric_family_name: "x".into(),
            help: "help".into(),
            unit: String::new(),
        }],
    };
    let body = compress(&request.encode_to_vec());
    let plain = decompress(&body, 1 << 20).unwrap();
    assert_eq!(WriteRequest::decode(plain.as_slice()).unwrap(), request);
    let (good, bad) = walk(&plain, 10);
    assert_eq!(good, request.timeseries);
    assert!(bad.is_empty());
    assert_eq!(metadata(&plain).unwrap(), request.metadata);
    assert!(is_framed(&plain));
}

#[test]
fn the_snappy_length_is_checked_before_decompressing() {
    let body = compress(&vec![b'a'; 10_000]);
    assert_eq!(
        decompress(&body, 9_999),
        Err(RemoteError::TooLarge {
            size: 10_000,
            limit: 9_999
        })
    );
    // A header that claims 4 GiB in five bytes is refused at once.
    let mut lie = Vec::new();
    prost::encoding::encode_varint(u32::MAX as u64, &mut lie);
    lie.extend_from_slice(&[0, 1, 2]);
    assert!(matches!(
        decompress(&lie, 32 << 20),
        Err(RemoteError::TooLarge { .. })
    ));
    assert!(matches!(
        decompress(b"\x05not snappy", 100),
        Err(RemoteError::Snappy(_))
    ));
}

#[test]
fn a_broken_series_costs_only_itself() {
    let mut body = field(1, &series("a", 1.0, 1).encode_to_vec());
    // A series whose label claims more bytes than it has.
    body.extend(field(1, &[0x0a, 0x7f, 0x00]));
    body.extend(field(1, &series("b", 2.0, 2).encode_to_vec()));
    let (good, bad) = walk(&body, 10);
    assert_eq!(good.len(), 2, "{bad:?}");
    assert_eq!(bad.len(), 1);
}

#[test]
fn a_series_with_too_many_labels_is_skipped_before_decoding() {
    let mut many = series("a", 1.0, 1);
    for i in 0..20 {
        many.labels.push(Label {
            name: format!("l{i}"),
            value: "v".into(),
        });
    }
    let mut body = field(1, &many.encode_to_vec());
    body.extend(field(1, &series("b", 2.0, 2).encode_to_vec()));
    let (good, bad) = walk(&body, 10);
    assert_eq!(good, vec![series("b", 2.0, 2)]);
    assert_eq!(bad, vec!["labels 22".to_owned()]);
}

#[test]
fn exemplars_and_unknown_fields_are_skipped_native_histograms_are_bad() {
    let mut ts = series("h", 3.0, 3).encode_to_vec();
    ts.extend(field(3, &[0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f])); // an exemplar
    let mut body = field(1, &ts);
    body.extend(field(2, b"reserved"));
    body.extend([0x28, 0x96, 0x01]); // field 5, a varint
    let (good, bad) = walk(&body, 10);
    assert_eq!(good, vec![series("h", 3.0, 3)]);
    assert!(bad.is_empty());
    // A native histogram is not read: the series is bad, not silently
    // taken for its samples.
    ts.extend(field(4, &[0x08, 0x05]));
    let (good, bad) = walk(&field(1, &ts), 10);
    assert!(good.is_empty());
    assert_eq!(bad.len(), 1);
    assert!(bad[0].contains("native histograms"), "{bad:?}");
}

#[test]
fn broken_outer_framing_fails_the_request() {
    let mut body = field(1, &series("a", 1.0, 1).encode_to_vec());
    body.extend([0x0a, 0x50, 0x01]);
    assert!(!is_framed(&body));
    assert!(for_each_series(&body, 10, |_| {}).is_err());
    // A group (wire type 3) is not part of prompb.
    assert!(for_each_series(&[0x0b], 10, |_| {}).is_err());
    assert!(is_framed(&[]));
}
