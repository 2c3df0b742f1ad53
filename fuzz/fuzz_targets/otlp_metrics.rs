//! An OTLP metrics export (protobuf or JSON) from arbitrary bytes: decoded,
//! mapped into graft metrics with both schemas, converted back to OTLP,
//! without panicking and with every data point accounted for.
//!
//! `cargo fuzz run otlp_metrics` (nightly, or `RUSTC_BOOTSTRAP=1` on
//! stable). The same entry point replays `corpus/otlp_metrics` and
//! `regressions/otlp_metrics` in `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::otlp_metrics(data));
