//! StatsD lines from arbitrary bytes, DogStatsD extensions on: parsed,
//! aggregated and emitted as a gather would, without panicking.
//!
//! `cargo fuzz run statsd` (nightly, or `RUSTC_BOOTSTRAP=1` on stable). The
//! same entry point replays `corpus/statsd` and `regressions/statsd` in
//! `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::statsd_lines(data));
