//! collectd network packets from arbitrary bytes: read at each security
//! level, as they are and signed and encrypted with a known password, so
//! the fuzzer reaches the parts inside a signature or an encryption.
//!
//! `cargo fuzz run collectd` (nightly, or `RUSTC_BOOTSTRAP=1` on stable).
//! The same entry point replays `corpus/collectd` and
//! `regressions/collectd` in `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::collectd(data));
