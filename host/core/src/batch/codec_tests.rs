use super::*;
use crate::BatchBuilder;

fn sample() -> Batch {
    let mut b = BatchBuilder::new();
    b.metric("cpu", -5)
        .tag("host", "a")
        .tag("cpu", "cpu0")
        .field("f", 1.5)
        .field("i", -7i64)
        .field("u", u64::MAX)
        .field("b", true)
        .field("s", "a string ü");
    b.metric("mem", i64::MAX)
        .field("used", 0u64)
        .field("off", false);
    b.metric("cpu", 0)
        .tag("host", "a")
        .tag("empty", "")
        .field("f", -0.0)
        .field("s", "");
    b.finish()
}

fn round_trip(batch: &Batch) -> Batch {
    let mut out = Vec::new();
    encode(batch, &mut out);
    assert_eq!(out.len(), encoded_len(batch));
    decode(&out).expect("decodes what it encoded")
}

fn same(a: &Batch, b: &Batch) -> bool {
    format!("{:?}", a.iter().collect::<Vec<_>>()) == format!("{:?}", b.iter().collect::<Vec<_>>())
}

#[test]
fn every_value_type_tags_and_shared_strings_round_trip() {
    let batch = sample();
    let back = round_trip(&batch);
    assert_eq!(back.clone().into_parts(), batch.clone().into_parts());
    assert!(same(&batch, &back));
    let m = back.get(0);
    assert_eq!(m.field("u"), Some(crate::FieldRef::Uint(u64::MAX)));
    assert_eq!(m.field("s"), Some(crate::FieldRef::Str("a string ü")));
    assert_eq!(back.get(1).tags().count(), 0, "a metric without tags");
    assert_eq!(back.get(2).tag("empty"), Some(""));
    // "cpu", "host", "a", "f" and "s" are stored once.
    assert_eq!(back.strings().len(), batch.strings().len());
}

#[test]
fn empty_and_large_batches_round_trip() {
    assert_eq!(round_trip(&Batch::new()).len(), 0);
    let mut b = BatchBuilder::new();
    for i in 0..20_000i64 {
        b.metric("m", i)
            .tag("host", &format!("h{}", i % 7))
            .field("seq", i)
            .field("v", i as f64 / 3.0);
    }
    let batch = b.finish();
    let back = round_trip(&batch);
    assert_eq!(back.len(), 20_000);
    assert_eq!(back.into_parts(), batch.into_parts());
}

#[test]
fn every_truncation_is_an_error() {
    let mut out = Vec::new();
    encode(&sample(), &mut out);
    for len in 0..out.len() {
        assert!(decode(&out[..len]).is_err(), "{len} of {} bytes", out.len());
    }
    out.push(0);
    assert!(matches!(decode(&out), Err(CodecError::Length { .. })));
}

#[test]
fn every_flipped_bit_is_an_error_or_a_valid_batch() {
    let mut out = Vec::new();
    encode(&sample(), &mut out);
    let mut errors = 0;
    for i in 0..out.len() * 8 {
        let mut bad = out.clone();
        bad[i / 8] ^= 1 << (i % 8);
        match decode(&bad) {
            Ok(b) => assert_eq!(b.len(), 3, "a flip never changes the shape silently"),
            Err(_) => errors += 1,
        }
    }
    // Flips in the header, offsets, symbols and types are caught; flips in
    // payload bits (a float, a character) give another valid batch, which is
    // why the disk buffer checksums each record.
    assert!(errors > out.len(), "{errors} errors");
}

#[test]
fn lying_headers_are_refused_before_allocating() {
    let mut bytes = vec![VERSION];
    for _ in 0..5 {
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    assert!(matches!(
        decode(&bytes),
        Err(CodecError::Length { expected, actual: 21 }) if expected > 1 << 34
    ));
    assert_eq!(
        decode(&[]).unwrap_err(),
        CodecError::Length {
            expected: 21,
            actual: 0
        }
    );
    assert_eq!(
        decode(&[9, 0]).unwrap_err(),
        CodecError::Version { found: 9 }
    );
}

#[test]
fn bad_values_are_named() {
    let mut b = BatchBuilder::new();
    b.metric("m", 1).field("b", true);
    let mut out = Vec::new();
    encode(&b.finish(), &mut out);
    let payload = out.len() - 8;
    let mut bad = out.clone();
    bad[payload] = 2;
    assert_eq!(
        decode(&bad).unwrap_err(),
        CodecError::Bool {
            index: 0,
            payload: 2
        }
    );
    let mut bad = out.clone();
    bad[payload - 1] = 9;
    assert_eq!(
        decode(&bad).unwrap_err(),
        CodecError::FieldType { index: 0, tag: 9 }
    );
    let mut bad = out.clone();
    bad[payload - 1] = 0;
    bad[payload..].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
    assert!(matches!(
        decode(&bad),
        Err(CodecError::Invalid(BatchError::NotFinite { .. }))
    ));
    let msg = decode(&out[..5]).unwrap_err().to_string();
    assert!(msg.contains("21 bytes"), "{msg}");
}

#[test]
fn kinds_round_trip_and_untyped_batches_keep_version_1() {
    use crate::{BatchBuilder, MetricKind};
    let mut b = BatchBuilder::new();
    b.metric("plain", 1).field("v", 1.0);
    let untyped = b.finish();
    let mut bytes = Vec::new();
    encode(&untyped, &mut bytes);
    assert_eq!(bytes[0], 1, "an untyped batch is written as version 1");
    assert_eq!(bytes.len(), encoded_len(&untyped));

    let mut b = BatchBuilder::from_batch(untyped);
    b.metric("requests", 2)
        .kind(MetricKind::Counter)
        .field("total", 5u64);
    b.metric("temp", 3).kind(MetricKind::Gauge).field("c", 21.5);
    let typed = b.finish();
    let mut bytes = Vec::new();
    encode(&typed, &mut bytes);
    assert_eq!(bytes[0], VERSION);
    assert_eq!(bytes.len(), encoded_len(&typed));
    let back = decode(&bytes).unwrap();
    let kinds: Vec<MetricKind> = back.iter().map(|m| m.kind()).collect();
    assert_eq!(
        kinds,
        [MetricKind::Untyped, MetricKind::Counter, MetricKind::Gauge]
    );

    let last = bytes.len() - 1;
    bytes[last] = 9;
    assert_eq!(
        decode(&bytes).unwrap_err(),
        CodecError::Kind { index: 2, tag: 9 }
    );
}
