//! Durations and sizes as Telegraf spells them: moved to [`graft_core::units`], re-exported here so plugin code keeps its paths.
pub use graft_core::units::*;
