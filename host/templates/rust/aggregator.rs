//! {{name}}: an aggregator plugin for graft. Counts the metrics of each
//! measurement in a period and emits `<measurement><suffix> count=N`,
//! stamped with the newest timestamp seen.

use std::collections::BTreeMap;

use graft_sdk::{Aggregator, Batch, BatchBuilder, FromConfig, PluginError};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Appended to the measurement name.
    #[serde(default = "default_suffix")]
    suffix: String,
}

fn default_suffix() -> String {
    "_count".into()
}

struct Plugin {
    suffix: String,
    /// Measurement -> (metrics seen, newest timestamp).
    seen: BTreeMap<String, (i64, i64)>,
}

impl FromConfig for Plugin {
    type Config = Config;

    fn from_config(config: Config) -> Result<Self, PluginError> {
        Ok(Plugin {
            suffix: config.suffix,
            seen: BTreeMap::new(),
        })
    }
}

impl Aggregator for Plugin {
    fn add(&mut self, batch: Batch) -> Result<(), PluginError> {
        for m in batch.iter() {
            let entry = self.seen.entry(m.name().to_owned()).or_insert((0, i64::MIN));
            entry.0 += 1;
            entry.1 = entry.1.max(m.timestamp());
        }
        Ok(())
    }

    fn push(&mut self) -> Batch {
        let mut b = BatchBuilder::new();
        for (name, &(count, newest)) in &self.seen {
            b.metric(&format!("{name}{}", self.suffix), newest)
                .field("count", count);
        }
        b.finish()
    }

    fn reset(&mut self) {
        self.seen.clear();
    }
}

graft_sdk::export_aggregator!(Plugin);
