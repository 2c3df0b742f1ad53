//! Message bodies from a message bus (NATS, MQTT) from arbitrary bytes, read
//! in every `data_format` the consumers take, without panicking and costing
//! at most the body.
//!
//! `cargo fuzz run message_body` (nightly, or `RUSTC_BOOTSTRAP=1` on
//! stable). The same entry point replays `corpus/message_body` and
//! `regressions/message_body` in `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::message_body(data));
