//! Prometheus remote write bodies (snappy or plain protobuf) from arbitrary
//! bytes, read as `inputs.http_listener_v2` with `data_format =
//! "prometheusremotewrite"` reads them, without panicking, within the
//! limits, and written back as a request.
//!
//! `cargo fuzz run remote_write` (nightly, or `RUSTC_BOOTSTRAP=1` on
//! stable). The same entry point replays `corpus/remote_write` and
//! `regressions/remote_write` in `plugins/tests/fuzz_corpus_network.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| graft_plugins::fuzzing::remote_write(data));
