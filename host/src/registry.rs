//! The one list of built-in plugins: section name to constructor. WASM
//! plugins (`[[kind.wasm]]`) are not here; the pipeline builder handles them.

use std::sync::Arc;

use anyhow::Result;
use graft_api::{Input, Output, Processor};

use crate::stats::StatsRegistry;

/// What a built-in may need from the agent besides its own table.
pub struct BuildContext {
    /// Every plugin's counters (for `inputs.internal`).
    pub stats: Arc<StatsRegistry>,
}

/// Builds an input from its own config table.
pub type InputCtor = fn(toml::Table, &BuildContext) -> Result<Box<dyn Input>>;
/// Builds a processor from its own config table.
pub type ProcessorCtor = fn(toml::Table) -> Result<Box<dyn Processor>>;
/// Builds an output from its own config table.
pub type OutputCtor = fn(toml::Table) -> Result<Box<dyn Output>>;

/// Built-in inputs, by section name.
pub const INPUTS: &[(&str, InputCtor)] = &[
    ("carbon", |t, _| graft_plugins::inputs::carbon::build(t)),
    ("cpu", |t, _| graft_plugins::inputs::cpu::build(t)),
    ("disk", |t, _| graft_plugins::inputs::disk::build(t)),
    ("diskio", |t, _| graft_plugins::inputs::diskio::build(t)),
    ("influxdb_listener", |t, _| {
        graft_plugins::inputs::influxdb_listener::build(t)
    }),
    ("influxdb_v2_listener", |t, _| {
        graft_plugins::inputs::influxdb_listener::build_v2(t)
    }),
    ("internal", |t, cx| {
        crate::internal::build(t, cx.stats.clone())
    }),
    ("kernel", |t, _| graft_plugins::inputs::kernel::build(t)),
    ("mem", |t, _| graft_plugins::inputs::mem::build(t)),
    ("postgresql", |t, _| {
        graft_plugins::inputs::postgresql::build(t)
    }),
    ("processes", |t, _| {
        graft_plugins::inputs::processes::build(t)
    }),
    ("socket_listener", |t, _| {
        graft_plugins::inputs::carbon::build_socket_listener(t)
    }),
    ("statsd", |t, _| graft_plugins::inputs::statsd::build(t)),
    ("swap", |t, _| graft_plugins::inputs::swap::build(t)),
    ("system", |t, _| graft_plugins::inputs::system::build(t)),
];

/// Built-in processors, by section name.
pub const PROCESSORS: &[(&str, ProcessorCtor)] =
    &[("rename", graft_plugins::processors::rename::build)];

/// Built-in outputs, by section name.
pub const OUTPUTS: &[(&str, OutputCtor)] = &[
    ("file", graft_plugins::outputs::file::build),
    ("graphite", graft_plugins::outputs::graphite::build),
    ("influxdb", graft_plugins::outputs::influxdb::build),
    ("influxdb_v2", graft_plugins::outputs::influxdb_v2::build),
];

/// The section name reserved for WASM plugins of every kind.
pub const WASM: &str = "wasm";

/// Look a constructor up by name.
pub fn find<T: Copy>(list: &[(&str, T)], name: &str) -> Option<T> {
    list.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// Names in a list, for "did you mean" messages.
pub fn names<T>(list: &[(&str, T)]) -> String {
    let mut names: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
    names.push(WASM);
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_wasm_is_reserved() {
        let mut seen = HashSet::new();
        for name in INPUTS
            .iter()
            .map(|(n, _)| n)
            .chain(PROCESSORS.iter().map(|(n, _)| n))
            .chain(OUTPUTS.iter().map(|(n, _)| n))
        {
            assert_ne!(*name, WASM);
            assert!(seen.insert(("any", *name)) || OUTPUTS.iter().any(|(n, _)| n == name));
        }
        let inputs: HashSet<_> = INPUTS.iter().map(|(n, _)| n).collect();
        assert_eq!(inputs.len(), INPUTS.len());
        let outputs: HashSet<_> = OUTPUTS.iter().map(|(n, _)| n).collect();
        assert_eq!(outputs.len(), OUTPUTS.len());
        let processors: HashSet<_> = PROCESSORS.iter().map(|(n, _)| n).collect();
        assert_eq!(processors.len(), PROCESSORS.len());
    }
}
