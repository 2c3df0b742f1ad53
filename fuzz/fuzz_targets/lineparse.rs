//! Line protocol from arbitrary bytes: the parser must never panic, and
//! every metric it reads must serialize and parse back to itself, except
//! where a name, key or tag value has a backslash at its end or before
//! `\`, `,`, `=` or a space: like Telegraf's, graft's serializer does not
//! escape backslashes (InfluxDB 1.x would keep `\\` as two characters), so
//! those cannot be written unambiguously.
//!
//! `cargo fuzz run lineparse` (nightly, or `RUSTC_BOOTSTRAP=1` on stable).

#![no_main]

use graft_core::BatchBuilder;
use graft_core::lineparse::{Precision, parse_into};
use graft_core::lineproto::{Serializer, SerializerOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut b = BatchBuilder::new();
    let _errors = parse_into(text, Precision::Nanoseconds, 0, &mut b);
    let batch = b.finish();
    let serializer = Serializer::new(SerializerOptions {
        uint_support: true,
        ..SerializerOptions::default()
    });
    for m in batch.iter() {
        let ends = |s: &str| {
            s.ends_with('\\') || ["\\\\", "\\,", "\\=", "\\ "].iter().any(|p| s.contains(p))
        };
        if ends(m.name())
            || m.tags().any(|(k, v)| ends(k) || ends(v))
            || m.fields().any(|(k, _)| ends(k))
        {
            continue;
        }
        let mut out = Vec::new();
        serializer
            .write_metric(m, &mut out)
            .expect("a parsed metric serializes");
        let mut again = BatchBuilder::new();
        let errors = parse_into(
            std::str::from_utf8(&out).unwrap(),
            Precision::Nanoseconds,
            0,
            &mut again,
        );
        assert!(
            errors.is_empty(),
            "{errors:?}: {}",
            String::from_utf8_lossy(&out)
        );
        let again = again.finish();
        assert_eq!(format!("{:?}", again.get(0)), format!("{m:?}"));
    }
});
