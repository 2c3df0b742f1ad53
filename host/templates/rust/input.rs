//! {{name}}: an input plugin for graft. Every gather emits one metric with a
//! counter and a float.

use graft_sdk::{Batch, BatchBuilder, FromConfig, Input, PluginError};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Measurement name.
    #[serde(default = "default_measurement")]
    measurement: String,
    /// Added to the float field at every gather.
    #[serde(default = "default_step")]
    step: f64,
}

fn default_measurement() -> String {
    "{{name}}".into()
}

fn default_step() -> f64 {
    0.5
}

struct Plugin {
    config: Config,
    count: i64,
}

impl FromConfig for Plugin {
    type Config = Config;

    fn from_config(config: Config) -> Result<Self, PluginError> {
        if config.measurement.is_empty() {
            return Err(PluginError::config("measurement", "must not be empty"));
        }
        Ok(Plugin { config, count: 0 })
    }
}

impl Input for Plugin {
    fn gather(&mut self) -> Result<Batch, PluginError> {
        let mut b = BatchBuilder::new();
        b.metric(&self.config.measurement, graft_sdk::now())
            .tag("source", "{{name}}")
            .field("count", self.count)
            .field("value", self.count as f64 * self.config.step);
        self.count += 1;
        Ok(b.finish())
    }
}

graft_sdk::export_input!(Plugin);
