//! Durations and sizes as Telegraf spells them, shared with the built-in
//! plugins, which parse their own tables.

pub use graft_core::units::*;
