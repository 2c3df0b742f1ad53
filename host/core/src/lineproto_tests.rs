use super::*;
use crate::BatchBuilder;

fn line(build: impl FnOnce(&mut BatchBuilder), options: SerializerOptions) -> String {
    let mut b = BatchBuilder::new();
    build(&mut b);
    let mut out = Vec::new();
    let errors = Serializer::new(options).write_batch(&b.finish(), &mut out);
    assert!(errors.is_empty(), "{errors:?}");
    String::from_utf8(out).unwrap()
}

#[test]
fn plain_metric() {
    let s = line(
        |b| {
            b.metric("cpu", 1_600_000_000_000_000_000)
                .tag("host", "a")
                .field("f", 1.5)
                .field("i", -3i64)
                .field("u", 7u64)
                .field("b", true)
                .field("s", "hi");
        },
        SerializerOptions::default(),
    );
    assert_eq!(
        s,
        "cpu,host=a f=1.5,i=-3i,u=7i,b=true,s=\"hi\" 1600000000000000000\n"
    );
}

#[test]
fn floats_use_shortest_round_trip_decimal_without_exponent() {
    let s = line(
        |b| {
            b.metric("m", 0)
                .field("a", 1.0)
                .field("b", 1e21)
                .field("c", 1e-7)
                .field("d", -0.1);
        },
        SerializerOptions::default(),
    );
    assert_eq!(s, "m a=1,b=1000000000000000000000,c=0.0000001,d=-0.1 0\n");
}

#[test]
fn escaping_matches_telegraf() {
    let s = line(
        |b| {
            b.metric("we ird,name=x\"\\", 5)
                .tag("k e,y=", "v a,l=ue\"")
                .tag("tab", "a\tb\nc")
                .field("f i,e=ld", "str \"quoted\" back\\slash, tab\t")
                .field("x", 1i64);
        },
        SerializerOptions::default(),
    );
    assert_eq!(
        s,
        "we\\ ird\\,name=x\"\\,k\\ e\\,y\\==v\\ a\\,l\\=ue\",tab=a\tb\\nc \
         f\\ i\\,e\\=ld=\"str \\\"quoted\\\" back\\\\slash, tab\t\",x=1i 5\n"
    );
}

#[test]
fn non_ascii_is_written_as_is() {
    let s = line(
        |b| {
            b.metric("温度", 1)
                .tag("場所", "東京 本社")
                .field("値", "ü");
        },
        SerializerOptions::default(),
    );
    assert_eq!(s, "温度,場所=東京\\ 本社 値=\"ü\" 1\n");
}

#[test]
fn trailing_backslash_and_empty_tags_are_dropped() {
    let s = line(
        |b| {
            b.metric("m", 1)
                .tag("a", "v\\\\")
                .tag("empty", "")
                .tag("bs", "\\")
                .field("x", 1i64);
        },
        SerializerOptions::default(),
    );
    assert_eq!(s, "m,a=v x=1i 1\n");
}

#[test]
fn uint_support_and_clamping() {
    let build = |b: &mut BatchBuilder| {
        b.metric("m", 1).field("big", u64::MAX);
    };
    assert_eq!(
        line(build, SerializerOptions::default()),
        "m big=9223372036854775807i 1\n"
    );
    let opts = SerializerOptions {
        uint_support: true,
        ..Default::default()
    };
    assert_eq!(line(build, opts), "m big=18446744073709551615u 1\n");
}

#[test]
fn sorted_fields_and_omitted_timestamp() {
    let opts = SerializerOptions {
        sort_fields: true,
        omit_timestamp: true,
        ..Default::default()
    };
    let s = line(
        |b| {
            b.metric("m", 1).field("z", 1i64).field("a", 2i64);
        },
        opts,
    );
    assert_eq!(s, "m a=2i,z=1i\n");
}

#[test]
fn max_line_bytes_splits_fields_over_lines() {
    let opts = SerializerOptions {
        max_line_bytes: 16,
        ..Default::default()
    };
    let s = line(
        |b| {
            b.metric("m", 1)
                .field("aa", 1i64)
                .field("bb", 2i64)
                .field("cc", 3i64);
        },
        opts,
    );
    assert_eq!(s, "m aa=1i,bb=2i 1\nm cc=3i 1\n");
}

#[test]
fn unwritable_metrics_are_reported_and_skipped() {
    let mut b = BatchBuilder::new();
    b.metric("", 1).field("x", 1i64);
    b.metric("ok", 2).field("x", 1i64);
    b.metric("long_name_here", 3).field("x", 1i64);
    let opts = SerializerOptions {
        max_line_bytes: 16,
        ..Default::default()
    };
    let mut out = Vec::new();
    let errors = Serializer::new(opts).write_batch(&b.finish(), &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), "ok x=1i 2\n");
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0], SerializeError::EmptyName);
    assert!(matches!(errors[1], SerializeError::LineTooLong { .. }));
}
