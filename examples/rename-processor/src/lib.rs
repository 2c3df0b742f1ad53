//! Example processor: renames a field and adds a tag to every metric.

use std::collections::BTreeMap;

use graft_sdk::{Batch, PluginError, Processor};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Field to rename ...
    from: String,
    /// ... to this name.
    to: String,
    /// Tags to set on every metric.
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

struct Rename(Config);

impl Processor for Rename {
    type Config = Config;

    fn init(config: Config) -> Result<Self, PluginError> {
        Ok(Rename(config))
    }

    fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
        batch.rename_field(&self.0.from, &self.0.to);
        for (key, value) in &self.0.tags {
            batch.set_tag(key, value);
        }
        Ok(batch)
    }
}

graft_sdk::export_processor!(Rename);
