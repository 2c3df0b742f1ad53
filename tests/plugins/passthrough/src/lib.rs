//! Test guest: returns every batch unchanged (the cost floor of a WASM stage).

use graft_sdk::{Batch, FromConfig, PluginError, Processor};

struct Passthrough;

impl FromConfig for Passthrough {
    type Config = serde::de::IgnoredAny;

    fn from_config(_: serde::de::IgnoredAny) -> Result<Self, PluginError> {
        Ok(Passthrough)
    }
}

impl Processor for Passthrough {
    fn process(&mut self, batch: Batch) -> Result<Batch, PluginError> {
        Ok(batch)
    }
}

graft_sdk::export_processor!(Passthrough);
