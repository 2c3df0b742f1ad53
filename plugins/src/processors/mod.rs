//! Built-in processors.

pub mod rename;
