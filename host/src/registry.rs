//! The one list of built-in plugins, per kind: section name to a pure
//! `validate` and a `build`. WASM plugins (`[[kind.wasm]]`) are not here;
//! the topology's builder makes them from their section.

use std::sync::Arc;

use anyhow::Result;
use graft_core::{Aggregator, Input, Output, Processor};

use crate::kind::{Kind, WASM};
use crate::stats::StatsRegistry;

/// What a built-in may need from the agent besides its own table.
pub struct BuildContext {
    /// Every plugin's counters (for `inputs.internal`).
    pub stats: Arc<StatsRegistry>,
}

/// One built-in plugin of the kind whose trait object is `P`.
pub struct Entry<P: ?Sized> {
    /// The section name: `cpu` in `[[inputs.cpu]]`.
    pub name: &'static str,
    /// Check the plugin's own table without building anything: no I/O.
    pub validate: fn(toml::Table) -> Result<()>,
    /// Build the plugin from its own table (validated again).
    pub build: fn(toml::Table, &BuildContext) -> Result<Box<P>>,
}

/// An entry for a built-in whose build needs nothing but its table, and
/// whose validation is its build without side effects.
macro_rules! entry {
    ($name:literal, $($build:ident)::+) => {
        Entry {
            name: $name,
            validate: |t| $($build)::+(t).map(drop),
            build: |t, _| $($build)::+(t),
        }
    };
}

/// Built-in inputs, by section name.
pub const INPUTS: &[Entry<dyn Input>] = &[
    entry!("carbon", graft_plugins::inputs::carbon::build),
    entry!("cpu", graft_plugins::inputs::cpu::build),
    entry!("disk", graft_plugins::inputs::disk::build),
    entry!("diskio", graft_plugins::inputs::diskio::build),
    entry!(
        "influxdb_listener",
        graft_plugins::inputs::influxdb_listener::build
    ),
    entry!(
        "influxdb_v2_listener",
        graft_plugins::inputs::influxdb_listener::build_v2
    ),
    Entry {
        name: "internal",
        validate: |t| crate::internal::validate(t).map(drop),
        build: |t, cx| crate::internal::build(t, cx.stats.clone()),
    },
    entry!("kernel", graft_plugins::inputs::kernel::build),
    entry!("mem", graft_plugins::inputs::mem::build),
    entry!("postgresql", graft_plugins::inputs::postgresql::build),
    entry!("processes", graft_plugins::inputs::processes::build),
    entry!(
        "socket_listener",
        graft_plugins::inputs::carbon::build_socket_listener
    ),
    entry!("statsd", graft_plugins::inputs::statsd::build),
    entry!("swap", graft_plugins::inputs::swap::build),
    entry!("system", graft_plugins::inputs::system::build),
];

/// Built-in processors, by section name.
pub const PROCESSORS: &[Entry<dyn Processor>] =
    &[entry!("rename", graft_plugins::processors::rename::build)];

/// Built-in aggregators, by section name (none yet: WASM only).
pub const AGGREGATORS: &[Entry<dyn Aggregator>] = &[];

/// Built-in outputs, by section name.
pub const OUTPUTS: &[Entry<dyn Output>] = &[
    entry!("file", graft_plugins::outputs::file::build),
    entry!("graphite", graft_plugins::outputs::graphite::build),
    entry!("influxdb", graft_plugins::outputs::influxdb::build),
    entry!("influxdb_v2", graft_plugins::outputs::influxdb_v2::build),
];

/// Look an entry up by section name.
pub fn find<'a, P: ?Sized>(list: &'a [Entry<P>], name: &str) -> Option<&'a Entry<P>> {
    list.iter().find(|e| e.name == name)
}

/// Every section name of `kind`, `wasm` last: what `graft plugins` lists
/// and "unknown plugin" errors offer.
pub fn names(kind: Kind) -> Vec<&'static str> {
    fn of<P: ?Sized>(list: &[Entry<P>]) -> Vec<&'static str> {
        list.iter().map(|e| e.name).collect()
    }
    let mut names = match kind {
        Kind::Input => of(INPUTS),
        Kind::Processor => of(PROCESSORS),
        Kind::Aggregator => of(AGGREGATORS),
        Kind::Output => of(OUTPUTS),
    };
    names.push(WASM);
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_per_kind_and_wasm_is_reserved() {
        for kind in Kind::ALL {
            let names = names(kind);
            let unique: HashSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{kind}: a name twice");
            assert_eq!(names.iter().filter(|n| **n == WASM).count(), 1);
        }
    }
}
