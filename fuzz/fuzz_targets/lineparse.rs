//! Line protocol from arbitrary bytes: the parser never panics, and what
//! it reads serializes and parses back to itself (see
//! `fuzz/common/lineparse.rs`, which the corpus test shares).
//!
//! `cargo fuzz run lineparse` (nightly, or `RUSTC_BOOTSTRAP=1` on stable).

#![no_main]

#[path = "../common/lineparse.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
