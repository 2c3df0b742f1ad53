//! Entry points for the fuzz targets in `fuzz/` and for the ordinary test
//! that replays their corpora (`plugins/tests/fuzz_corpus_network.rs`):
//! each takes arbitrary bytes down the same path a peer's bytes take, and
//! panics only when an invariant breaks.

use graft_core::BatchBuilder;

use crate::graphite::pickle::{self, PickleLimits, Value};
use crate::graphite::{self, Templates};
use crate::inputs::statsd::Statsd;
use crate::listener::{Framed, LineFramer};

/// Graphite plaintext: bytes framed into lines of at most 64 bytes (small,
/// so the fuzzer reaches the limit), each parsed with and without
/// templates. Every metric read has a finite value.
pub fn graphite_plaintext(data: &[u8]) {
    let templates = [
        Templates::new(&[], ".").expect("no templates"),
        Templates::new(
            &[
                "servers.* .host.measurement.field".into(),
                "measurement.field*".into(),
            ],
            ".",
        )
        .expect("valid templates"),
    ];
    for t in &templates {
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
