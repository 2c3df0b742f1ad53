//! Encoded batches (the disk buffer's records) from arbitrary bytes: the
//! decoder never panics, and what decodes re-encodes to the same bytes (see
//! `fuzz/common/batch_codec.rs`, which the corpus test shares).
//!
//! `cargo fuzz run batch_codec` (nightly, or `RUSTC_BOOTSTRAP=1` on stable).

#![no_main]

#[path = "../common/batch_codec.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
