//! Built-in inputs.

pub mod mem;
