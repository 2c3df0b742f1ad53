//! The InfluxDB listener's request-body path from arbitrary bytes: gzip or
//! plain, lines, batch and the error answer (see
//! `fuzz/common/listener_body.rs`, which the corpus test shares).
//!
//! `cargo fuzz run listener_body` (nightly, or `RUSTC_BOOTSTRAP=1`).

#![no_main]

#[path = "../common/listener_body.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
