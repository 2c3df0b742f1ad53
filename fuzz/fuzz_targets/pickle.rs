//! Carbon pickle frames from arbitrary bytes: the decoder never panics,
//! never recurses, and stays within its limits (default and tiny).
//!
//! `cargo fuzz run pickle` (nightly, or `RUSTC_BOOTSTRAP=1` on stable). The
//! same entry point replays `corpus/pickle` and `regressions/pickle` in
//! `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::pickle_frame(data));
