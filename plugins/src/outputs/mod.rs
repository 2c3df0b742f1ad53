//! Built-in outputs.

pub mod file;
