//! {{name}}: a processor plugin for graft. Sets tags on every metric and,
//! optionally, renames one field.

use std::collections::BTreeMap;

use graft_sdk::{Batch, FromConfig, PluginError, Processor};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Tags to set on every metric.
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// Field to rename ...
    #[serde(default)]
    rename_from: Option<String>,
    /// ... to this name.
    #[serde(default)]
    rename_to: Option<String>,
}

struct Plugin(Config);

impl FromConfig for Plugin {
    type Config = Config;

    fn from_config(config: Config) -> Result<Self, PluginError> {
        if config.rename_from.is_some() != config.rename_to.is_some() {
            return Err(PluginError::config(
                "rename_to",
                "rename_from and rename_to go together",
            ));
        }
        Ok(Plugin(config))
    }
}

impl Processor for Plugin {
    fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
        if let (Some(from), Some(to)) = (&self.0.rename_from, &self.0.rename_to) {
            batch.rename_field(from, to);
        }
        for (key, value) in &self.0.tags {
            batch.set_tag(key, value);
        }
        Ok(batch)
    }
}

graft_sdk::export_processor!(Plugin);
