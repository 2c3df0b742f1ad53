//! Redis replies and `INFO` texts from arbitrary bytes: read within the
//! reply budget and turned into metrics, without panicking.
//!
//! `cargo fuzz run redis` (nightly, or `RUSTC_BOOTSTRAP=1` on stable). The
//! same entry point replays `corpus/redis` in
//! `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::redis_reply(data));
