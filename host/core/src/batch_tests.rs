use super::*;
use crate::BatchBuilder;

fn sample() -> Batch {
    let mut b = BatchBuilder::new();
    b.metric("cpu", 10)
        .tag("host", "a")
        .tag("cpu", "cpu0")
        .field("usage_user", 1.5)
        .field("usage_idle", 98.5);
    b.metric("mem", 20).tag("host", "b").field("used", 7u64);
    b.metric("cpu", 30)
        .tag("host", "a")
        .tag("cpu", "cpu1")
        .field("usage_user", 2.5)
        .field("label", "x y");
    b.finish()
}

#[test]
fn row_view_reads_what_was_built() {
    let batch = sample();
    assert_eq!(batch.len(), 3);
    let m = batch.get(0);
    assert_eq!(m.name(), "cpu");
    assert_eq!(m.timestamp(), 10);
    assert_eq!(
        m.tags().collect::<Vec<_>>(),
        [("cpu", "cpu0"), ("host", "a")]
    );
    assert_eq!(
        m.fields().collect::<Vec<_>>(),
        [
            ("usage_user", FieldRef::Float(1.5)),
            ("usage_idle", FieldRef::Float(98.5))
        ]
    );
    assert_eq!(batch.get(1).field("used"), Some(FieldRef::Uint(7)));
    assert_eq!(batch.get(2).field("label"), Some(FieldRef::Str("x y")));
    assert_eq!(batch.get(2).tag("missing"), None);
}

#[test]
fn string_table_is_shared_within_a_batch() {
    let batch = sample();
    // cpu, host, a, cpu0, usage_user, usage_idle, mem, b, used, cpu1, label, "x y"
    assert_eq!(batch.strings().len(), 12);
}

#[test]
fn builder_sorts_tags_and_last_value_wins() {
    let mut b = BatchBuilder::new();
    b.metric("m", 0)
        .tag("z", "1")
        .tag("a", "2")
        .tag("z", "3")
        .field("f", 1i64);
    let batch = b.finish();
    assert_eq!(
        batch.get(0).tags().collect::<Vec<_>>(),
        [("a", "2"), ("z", "3")]
    );
}

#[test]
fn builder_drops_non_finite_floats_and_empty_metrics() {
    let mut b = BatchBuilder::new();
    b.metric("m", 0)
        .tag("t", "v")
        .field("nan", f64::NAN)
        .field("inf", f64::INFINITY);
    b.metric("n", 1)
        .field("ok", 1.0)
        .field("bad", f64::NEG_INFINITY);
    let batch = b.finish();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch.get(0).name(), "n");
    assert_eq!(batch.get(0).fields().count(), 1);
    Batch::from_parts(batch.into_parts()).expect("still a valid batch");
}

#[test]
fn parts_round_trip() {
    let batch = sample();
    let parts = batch.into_parts();
    let back = Batch::from_parts(parts.clone()).unwrap();
    assert_eq!(back.into_parts(), parts);
}

#[test]
fn validation_rejects_broken_columns() {
    let good = sample().into_parts();

    let mut p = good.clone();
    p.names[1] = 999;
    assert!(matches!(
        Batch::from_parts(p),
        Err(BatchError::SymbolOutOfRange {
            list: "names",
            index: 1,
            sym: 999,
            ..
        })
    ));

    let mut p = good.clone();
    p.tag_offsets[2] = 0;
    assert!(matches!(
        Batch::from_parts(p),
        Err(BatchError::Offsets {
            list: "tag-offsets",
            ..
        })
    ));

    let mut p = good.clone();
    p.timestamps.pop();
    assert!(matches!(
        Batch::from_parts(p),
        Err(BatchError::Length {
            list: "timestamps",
            ..
        })
    ));

    let mut p = good.clone();
    p.field_values[0] = Value::Float(f64::NAN);
    assert!(matches!(
        Batch::from_parts(p),
        Err(BatchError::NotFinite { index: 0, .. })
    ));

    let mut p = good.clone();
    p.field_values[3] = Value::Str(12345);
    assert!(matches!(
        Batch::from_parts(p),
        Err(BatchError::SymbolOutOfRange {
            list: "field-values",
            ..
        })
    ));

    let mut p = good.clone();
    p.tag_keys.swap(0, 1);
    p.tag_values.swap(0, 1);
    assert!(matches!(
        Batch::from_parts(p),
        Err(BatchError::TagOrder { index: 0, .. })
    ));

    let mut p = good;
    p.field_offsets = vec![0, 2, 2, 5];
    assert!(matches!(
        Batch::from_parts(p),
        Err(BatchError::NoFields { index: 1 })
    ));
}

#[test]
fn rename_field_touches_only_that_key() {
    let mut batch = sample();
    assert_eq!(batch.rename_field("usage_user", "user"), 2);
    assert_eq!(batch.get(0).field("user"), Some(FieldRef::Float(1.5)));
    assert_eq!(batch.get(0).field("usage_user"), None);
    assert_eq!(batch.rename_field("absent", "x"), 0);
}

#[test]
fn rename_field_onto_existing_key_replaces_it() {
    let mut batch = sample();
    batch.rename_field("usage_user", "usage_idle");
    let m = batch.get(0);
    assert_eq!(
        m.fields().collect::<Vec<_>>(),
        [("usage_idle", FieldRef::Float(1.5))]
    );
    // The metric without the renamed key keeps its own.
    assert_eq!(batch.get(1).field("used"), Some(FieldRef::Uint(7)));
    Batch::from_parts(batch.into_parts()).unwrap();
}

#[test]
fn rename_tag_keeps_tags_sorted_and_replaces_the_destination() {
    let mut batch = sample();
    // cpu0/cpu1 metrics: `cpu` moves after `host`; `mem` has no `cpu` tag.
    assert_eq!(batch.rename_tag("cpu", "z_core"), 2);
    assert_eq!(
        batch.get(0).tags().collect::<Vec<_>>(),
        [("host", "a"), ("z_core", "cpu0")]
    );
    assert_eq!(batch.get(1).tags().collect::<Vec<_>>(), [("host", "b")]);
    // Onto an existing key: the renamed value wins, the old one goes.
    assert_eq!(batch.rename_tag("z_core", "host"), 2);
    assert_eq!(batch.get(2).tags().collect::<Vec<_>>(), [("host", "cpu1")]);
    // To the front.
    assert_eq!(batch.rename_tag("host", "a"), 3);
    assert_eq!(batch.get(1).tags().collect::<Vec<_>>(), [("a", "b")]);
    assert_eq!(batch.rename_tag("absent", "x"), 0);
    assert_eq!(batch.rename_tag("a", "a"), 0);
    Batch::from_parts(batch.into_parts()).unwrap();
}

#[test]
fn set_tag_inserts_sorted_and_replaces() {
    let mut batch = sample();
    batch.set_tag("dc", "tyo");
    batch.set_tag("host", "z");
    for m in batch.iter() {
        let keys: Vec<_> = m.tags().map(|(k, _)| k).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(m.tag("dc"), Some("tyo"));
        assert_eq!(m.tag("host"), Some("z"));
    }
    assert_eq!(batch.get(0).tags().count(), 3);
    Batch::from_parts(batch.into_parts()).unwrap();
}

#[test]
fn retain_and_slice_keep_rows_intact() {
    let mut batch = sample();
    let tail = batch.slice(1..3);
    assert_eq!(tail.len(), 2);
    assert_eq!(tail.get(1).field("label"), Some(FieldRef::Str("x y")));
    batch.retain(|m| m.name() == "cpu");
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.get(1).tag("cpu"), Some("cpu1"));
    Batch::from_parts(batch.into_parts()).unwrap();
}

#[test]
fn extend_from_remaps_symbols() {
    let a = sample();
    let mut b = BatchBuilder::new();
    b.metric("other", 5).field("label", "q");
    let mut b = b.finish();
    b.extend_from(&a, 0..3);
    assert_eq!(b.len(), 4);
    assert_eq!(b.get(3).field("label"), Some(FieldRef::Str("x y")));
    assert_eq!(b.get(1).tag("cpu"), Some("cpu0"));
}

#[test]
fn rename_measurement_counts() {
    let mut batch = sample();
    assert_eq!(batch.rename_measurement("cpu", "processor"), 2);
    assert_eq!(batch.get(2).name(), "processor");
}

#[test]
fn set_tag_if_absent_keeps_existing_values_and_order() {
    let mut batch = sample();
    batch.set_tag_if_absent("cpu", "none");
    assert_eq!(batch.get(0).tag("cpu"), Some("cpu0"));
    assert_eq!(batch.get(1).tag("cpu"), Some("none"));
    assert_eq!(batch.get(1).name(), "mem");
    assert_eq!(batch.get(2).tag("cpu"), Some("cpu1"));
    batch.set_tag_if_absent("dc", "x");
    assert!(batch.iter().all(|m| m.tag("dc") == Some("x")));
    Batch::from_parts(batch.into_parts()).unwrap();
}

#[test]
fn map_names_and_round_timestamps() {
    let mut batch = sample();
    batch.map_names(|n| format!("p_{n}"));
    assert_eq!(
        batch.iter().map(|m| m.name()).collect::<Vec<_>>(),
        ["p_cpu", "p_mem", "p_cpu"]
    );
    batch.round_timestamps(20);
    assert_eq!(
        batch.iter().map(|m| m.timestamp()).collect::<Vec<_>>(),
        [20, 20, 40]
    );
}

#[test]
fn retain_fields_and_tags_and_partition() {
    let mut batch = sample();
    let removed = batch.retain_fields(|k| k.starts_with("usage"));
    assert_eq!(removed, 1, "mem had no usage field");
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.get(0).fields().count(), 2);
    assert_eq!(
        batch.get(1).fields().map(|(k, _)| k).collect::<Vec<_>>(),
        ["usage_user"]
    );
    batch.retain_tags(|k| k != "cpu");
    assert!(
        batch
            .iter()
            .all(|m| m.tags().map(|(k, _)| k).collect::<Vec<_>>() == ["host"])
    );
    Batch::from_parts(batch.clone().into_parts()).unwrap();

    let (cpu, rest) = sample().partition(|m| m.name() == "cpu");
    assert_eq!((cpu.len(), rest.len()), (2, 1));
    let mut all = cpu;
    all.append(&rest);
    assert_eq!(
        all.iter().map(|m| m.name()).collect::<Vec<_>>(),
        ["cpu", "cpu", "mem"]
    );
}

#[test]
fn kinds_follow_their_metrics_through_edits() {
    use crate::MetricKind::{Counter, Gauge, Untyped};
    let mut b = BatchBuilder::new();
    b.metric("a", 1).field("v", 1.0);
    b.metric("b", 2).kind(Counter).field("v", 2.0);
    // A metric left without fields is not added, and neither is its kind.
    b.metric("empty", 3).kind(Gauge);
    b.metric("c", 4).kind(Gauge).field("v", 3.0);
    let batch = b.finish();
    let kinds = |b: &Batch| {
        b.iter()
            .map(|m| (m.name().to_owned(), m.kind()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&batch),
        [
            ("a".into(), Untyped),
            ("b".into(), Counter),
            ("c".into(), Gauge)
        ]
    );

    let mut kept = batch.clone();
    kept.retain(|m| m.name() != "b");
    assert_eq!(kinds(&kept), [("a".into(), Untyped), ("c".into(), Gauge)]);

    let (yes, no) = batch.clone().partition(|m| m.name() == "b");
    assert_eq!(kinds(&yes), [("b".into(), Counter)]);
    assert_eq!(kinds(&no), [("a".into(), Untyped), ("c".into(), Gauge)]);

    let mut plain = BatchBuilder::new();
    plain.metric("p", 5).field("v", 0.0);
    let mut joined = plain.finish();
    joined.append(&batch.slice(1..3));
    assert_eq!(
        kinds(&joined),
        [
            ("p".into(), Untyped),
            ("b".into(), Counter),
            ("c".into(), Gauge)
        ]
    );

    let mut copy = BatchBuilder::new();
    for m in batch.iter() {
        copy.push(m);
    }
    assert_eq!(kinds(&copy.finish()), kinds(&batch));

    let parts = batch.clone().into_parts();
    assert_eq!(parts.kinds.len(), 3);
    let mut bad = parts.clone();
    bad.kinds.pop();
    assert!(Batch::from_parts(bad).is_err());
    assert_eq!(kinds(&Batch::from_parts(parts).unwrap()), kinds(&batch));
}
