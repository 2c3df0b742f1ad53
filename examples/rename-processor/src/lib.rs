//! Example processor: renames a field and adds tags to every metric. The
//! plugin is its own `config` table.

use std::collections::BTreeMap;

use graft_sdk::{Batch, PluginError, Processor};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    from: String,
    to: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl Processor for Rename {
    fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
        batch.rename_field(&self.from, &self.to);
        for (key, value) in &self.tags {
            batch.set_tag(key, value);
        }
        Ok(batch)
    }
}

graft_sdk::export_processor!(Rename);
