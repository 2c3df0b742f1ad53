//! Graphite plaintext from arbitrary bytes: framed into bounded lines and
//! parsed with and without templates; every value read is finite.
//!
//! `cargo fuzz run graphite` (nightly, or `RUSTC_BOOTSTRAP=1` on stable). The
//! same entry point replays `corpus/graphite` and `regressions/graphite` in
//! `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::graphite_plaintext(data));
