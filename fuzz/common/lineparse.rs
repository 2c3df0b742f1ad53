//! The check behind the `lineparse` fuzz target, shared with the corpus
//! test (`host/core/tests/fuzz_corpus.rs`): line protocol from arbitrary
//! bytes never panics, and every metric it reads serializes and parses back
//! to itself, except where a name, key or tag value holds what line
//! protocol cannot carry (a newline, a backslash at its end; a measurement
//! or field key starting with a tab or NUL, which InfluxDB 1.x skips).

use graft_core::BatchBuilder;
use graft_core::lineparse::{ParseOptions, parse_bytes_into};
use graft_core::lineproto::{Serializer, SerializerOptions};

/// Whether `s` can be written as a name, key or tag value.
fn carried(s: &str, first: bool) -> bool {
    let lost = s.contains('\n') || s.ends_with('\\') || (first && s.starts_with(['\t', '\0']));
    !lost
}

/// Parse `data`; write back what was read; read it again: equal.
pub fn check(data: &[u8]) {
    let mut b = BatchBuilder::new();
    let errors = parse_bytes_into(data, &ParseOptions::default(), &mut b);
    for e in &errors {
        assert!(
            e.span.start <= e.span.end && e.span.end <= data.len(),
            "{e:?}"
        );
    }
    let batch = b.finish();
    let serializer = Serializer::new(SerializerOptions {
        uint_support: true,
        ..SerializerOptions::default()
    });
    for m in batch.iter() {
        if !carried(m.name(), true)
            || m.tags()
                .any(|(k, v)| !carried(k, false) || !carried(v, false))
            || m.fields().any(|(k, _)| !carried(k, true))
        {
            continue;
        }
        let mut out = Vec::new();
        serializer
            .write_metric(m, &mut out)
            .expect("a parsed metric serializes");
        let mut again = BatchBuilder::new();
        let errors = parse_bytes_into(&out, &ParseOptions::default(), &mut again);
        assert!(
            errors.is_empty(),
            "{errors:?}: {}",
            String::from_utf8_lossy(&out)
        );
        let again = again.finish();
        assert_eq!(format!("{:?}", again.get(0)), format!("{m:?}"));
    }
}
