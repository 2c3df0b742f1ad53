//! Test guest: returns every batch unchanged (the cost floor of a WASM stage).

use graft_sdk::{Batch, PluginError, Processor};

struct Passthrough;

impl Processor for Passthrough {
    type Config = serde::de::IgnoredAny;

    fn init(_: serde::de::IgnoredAny) -> Result<Self, PluginError> {
        Ok(Passthrough)
    }

    fn process(&mut self, batch: Batch) -> Result<Batch, PluginError> {
        Ok(batch)
    }
}

graft_sdk::export_processor!(Passthrough);
