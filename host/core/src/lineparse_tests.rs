use super::*;
use crate::lineproto::{Serializer, SerializerOptions};
use crate::{Batch, FieldRef};

fn parse(text: &str) -> (Batch, Vec<ParseError>) {
    let mut b = BatchBuilder::new();
    let errors = parse_into(text, Precision::Nanoseconds, 42, &mut b);
    (b.finish(), errors)
}

fn ok(text: &str) -> Batch {
    let (b, errors) = parse(text);
    assert!(errors.is_empty(), "{errors:?}");
    b
}

#[test]
fn plain_line_with_every_type() {
    let b = ok("cpu,host=a,dc=x f=1.5,i=-3i,u=7u,b=true,s=\"hi\" 1600000000000000000\n");
    let m = b.get(0);
    assert_eq!(m.name(), "cpu");
    assert_eq!(m.tags().collect::<Vec<_>>(), [("dc", "x"), ("host", "a")]);
    assert_eq!(m.field("f"), Some(FieldRef::Float(1.5)));
    assert_eq!(m.field("i"), Some(FieldRef::Int(-3)));
    assert_eq!(m.field("u"), Some(FieldRef::Uint(7)));
    assert_eq!(m.field("b"), Some(FieldRef::Bool(true)));
    assert_eq!(m.field("s"), Some(FieldRef::Str("hi")));
    assert_eq!(m.timestamp(), 1_600_000_000_000_000_000);
}

#[test]
fn floats_booleans_and_default_time() {
    let b = ok(
        "m a=1.,b=.5,c=-1.5e3,d=1E-2,e=3 \nm t1=t,t2=T,t3=true,t4=True,t5=TRUE,f1=f,f2=F,f3=false,f4=False,f5=FALSE",
    );
    let m = b.get(0);
    assert_eq!(m.field("a"), Some(FieldRef::Float(1.0)));
    assert_eq!(m.field("b"), Some(FieldRef::Float(0.5)));
    assert_eq!(m.field("c"), Some(FieldRef::Float(-1500.0)));
    assert_eq!(m.field("d"), Some(FieldRef::Float(0.01)));
    assert_eq!(m.timestamp(), 42, "no timestamp: the default");
    let n = b.get(1);
    assert_eq!(
        n.fields()
            .filter(|(_, v)| *v == FieldRef::Bool(true))
            .count(),
        5
    );
    assert_eq!(
        n.fields()
            .filter(|(_, v)| *v == FieldRef::Bool(false))
            .count(),
        5
    );
}

#[test]
fn escapes_in_every_part() {
    let b = ok(
        r#"we\ ird\,name,k\ e\,y\==v\ a\,l\=ue f\ i\,e\=ld="str \"quoted\" back\\slash, and \n kept",x=1i 5"#,
    );
    let m = b.get(0);
    assert_eq!(m.name(), "we ird,name");
    assert_eq!(m.tags().collect::<Vec<_>>(), [("k e,y=", "v a,l=ue")]);
    assert_eq!(
        m.field("f i,e=ld"),
        Some(FieldRef::Str(r#"str "quoted" back\slash, and \n kept"#))
    );
}

#[test]
fn comments_blank_lines_crlf_and_newline_in_string() {
    let b = ok("# a comment\r\n\r\n  m x=1i 1\r\nm s=\"two\nlines\" 2\n\tm y=2i 3\n");
    assert_eq!(b.len(), 3);
    assert_eq!(b.get(1).field("s"), Some(FieldRef::Str("two\nlines")));
    assert_eq!(b.get(2).timestamp(), 3);
}

#[test]
fn precision_scales_timestamps() {
    let mut b = BatchBuilder::new();
    assert!(parse_into("m x=1i 1700000000", Precision::Seconds, 0, &mut b).is_empty());
    assert_eq!(b.finish().get(0).timestamp(), 1_700_000_000_000_000_000);
    let mut b = BatchBuilder::new();
    let e = parse_into("m x=1i 9223372036854775807", Precision::Seconds, 0, &mut b);
    assert_eq!(e[0].reason, "timestamp out of range");
    assert_eq!(Precision::from_param("ms"), Some(Precision::Milliseconds));
    assert_eq!(Precision::from_param("h"), Some(Precision::Hours));
    assert_eq!(Precision::from_param("d"), None);
}

#[test]
fn duplicate_fields_last_wins_duplicate_tags_rejected() {
    let b = ok("m x=1i,x=2i");
    assert_eq!(
        b.get(0).fields().collect::<Vec<_>>(),
        [("x", FieldRef::Int(2))]
    );
    let (_, e) = parse("m,a=1,a=2 x=1i");
    assert_eq!(e[0].reason, "duplicate tag key");
}

#[test]
fn bad_lines_are_reported_with_their_number_and_the_rest_kept() {
    let text = "good x=1i 1\n\
                bad\n\
                m x=NaN\n\
                m x=inf\n\
                m x=1i trailing\n\
                m,t=v\\ x=1i\n\
                m x=\"open\n\
                m x=99999999999999999999i\n\
                m x=-1u\n\
                m,t= x=1\n\
                ,t=v x=1\n\
                m x=\n\
                also_good y=2 2\n";
    let (b, errors) = parse(text);
    assert_eq!(b.len(), 2, "{errors:?}");
    assert_eq!(b.get(1).name(), "also_good");
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "{errors:?}");
    assert!(errors.iter().all(|e| !e.reason.is_empty()));
}

#[test]
fn serializer_output_parses_back_equal() {
    let mut b = BatchBuilder::new();
    b.metric("we ird,name=x\"", 5)
        .tag("k e,y=", "v a,l=ue\"")
        .tag("ü", "東京")
        .field("f i,e=ld", "str \"quoted\" back\\slash, tab")
        .field("i", -7i64)
        .field("u", 18_446_744_073_709_551_615u64)
        .field("x", 0.1)
        .field("b", false);
    b.metric("plain", -1).field("v", 1e300);
    let original = b.finish();
    let mut text = Vec::new();
    let serializer = Serializer::new(SerializerOptions {
        uint_support: true,
        ..Default::default()
    });
    assert!(serializer.write_batch(&original, &mut text).is_empty());
    let parsed = ok(std::str::from_utf8(&text).unwrap());
    let rows = |b: &Batch| b.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>();
    assert_eq!(rows(&parsed), rows(&original));
}

#[test]
fn quotes_in_names_keys_and_tags_are_plain_characters() {
    let b = ok("m\"x,t\"k=v\"a f\"k=1i,s=\"a b\\\"\" 5\nn\"\" x=\"two\nlines\" 6\n");
    assert_eq!(b.len(), 2);
    let m = b.get(0);
    assert_eq!(m.name(), "m\"x");
    assert_eq!(m.tag("t\"k"), Some("v\"a"));
    assert_eq!(m.field("f\"k"), Some(FieldRef::Int(1)));
    assert_eq!(m.field("s"), Some(FieldRef::Str("a b\"")));
    assert_eq!(b.get(1).name(), "n\"\"");
    assert_eq!(b.get(1).field("x"), Some(FieldRef::Str("two\nlines")));
}

mod properties {
    use super::*;
    use crate::BatchBuilder;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Names, keys and tag values line protocol can carry: any text made of
    /// these pieces (a backslash only before a letter, where it is literal;
    /// no control characters, which it cannot carry).
    fn name() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "a", "Z", "0", "_", " ", ",", "=", "\"", "é", "東京", "\\x", "#", "'", "-", ".",
        ]);
        prop::collection::vec(piece, 1..8).prop_map(|v| v.concat())
    }

    #[derive(Debug, Clone)]
    enum V {
        F(f64),
        I(i64),
        U(u64),
        B(bool),
        S(String),
    }

    fn value() -> impl Strategy<Value = V> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(V::F),
            any::<i64>().prop_map(V::I),
            any::<u64>().prop_map(V::U),
            any::<bool>().prop_map(V::B),
            // Strings may hold anything, newlines and quotes included.
            "(?s).{0,20}".prop_map(V::S),
        ]
    }

    type Metric = (String, BTreeMap<String, String>, BTreeMap<String, V>, i64);

    fn metric() -> impl Strategy<Value = Metric> {
        (
            name().prop_filter("not a comment", |n| !n.starts_with('#')),
            prop::collection::btree_map(name(), name(), 0..4),
            prop::collection::btree_map(name(), value(), 1..5),
            any::<i64>(),
        )
    }

    fn build(metrics: &[Metric]) -> Batch {
        let mut b = BatchBuilder::new();
        for (n, tags, fields, ts) in metrics {
            let mut m = b.metric(n, *ts);
            for (k, v) in tags {
                m.tag(k, v);
            }
            for (k, v) in fields {
                match v {
                    V::F(x) => m.field(k, *x),
                    V::I(x) => m.field(k, *x),
                    V::U(x) => m.field(k, *x),
                    V::B(x) => m.field(k, *x),
                    V::S(x) => m.field(k, FieldRef::Str(x)),
                };
            }
        }
        b.finish()
    }

    fn rows(b: &Batch) -> Vec<String> {
        b.iter().map(|m| format!("{m:?}")).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Serialize then parse gives back the same metrics.
        #[test]
        fn serializer_then_parser_round_trips(metrics in prop::collection::vec(metric(), 1..6)) {
            let original = build(&metrics);
            let serializer = Serializer::new(SerializerOptions {
                uint_support: true,
                ..Default::default()
            });
            let mut text = Vec::new();
            prop_assert!(serializer.write_batch(&original, &mut text).is_empty());
            let text = String::from_utf8(text).unwrap();
            let (parsed, errors) = parse(&text);
            prop_assert!(errors.is_empty(), "{errors:?} in {text}");
            prop_assert_eq!(rows(&parsed), rows(&original), "{}", text);
        }

        /// Whatever the input, the parser does not panic, and every metric
        /// it reads serializes and parses back to itself, except where a
        /// name, key or tag value has a backslash at its end or before `\`,
        /// `,`, `=` or a space: like Telegraf's, the serializer does not
        /// escape backslashes (InfluxDB 1.x would keep `\\` as two
        /// characters), so those cannot be written unambiguously.
        #[test]
        fn arbitrary_text_never_panics_and_what_parses_is_stable(text in "(?s)[a-z0-9 ,=\"\\\\#.\\n\\r\\t-]{0,120}") {
            let (first, _) = parse(&text);
            let serializer = Serializer::new(SerializerOptions {
                uint_support: true,
                ..Default::default()
            });
            for m in first.iter() {
                let ends = |s: &str| {
                    s.ends_with('\\')
                        || ["\\\\", "\\,", "\\=", "\\ "].iter().any(|p| s.contains(p))
                };
                if ends(m.name())
                    || m.tags().any(|(k, v)| ends(k) || ends(v))
                    || m.fields().any(|(k, _)| ends(k))
                {
                    continue;
                }
                let mut out = Vec::new();
                prop_assert!(serializer.write_metric(m, &mut out).is_ok());
                let (second, errors) = parse(std::str::from_utf8(&out).unwrap());
                prop_assert!(errors.is_empty(), "{errors:?}");
                prop_assert_eq!(rows(&second), vec![format!("{m:?}")]);
            }
        }
    }
}
