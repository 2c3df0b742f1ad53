//! Prometheus scrape bodies from arbitrary bytes, read as the text format
//! and as OpenMetrics within limits and mapped in both metric versions,
//! without panicking and costing at most the line (or, past the sample
//! limit, the body).
//!
//! `cargo fuzz run prometheus_text` (nightly, or `RUSTC_BOOTSTRAP=1` on
//! stable). The same entry point replays `corpus/prometheus_text` and
//! `regressions/prometheus_text` in `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::prometheus_text(data));
