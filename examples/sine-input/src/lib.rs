//! Example input: a sine wave and a counter, one metric per gather.

use graft_sdk::{Batch, BatchBuilder, FromConfig, Input, PluginError};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Measurement name.
    #[serde(default = "default_name")]
    name: String,
    /// Peak value of the wave.
    #[serde(default = "default_amplitude")]
    amplitude: f64,
    /// Gathers per full period of the wave.
    #[serde(default = "default_period")]
    period: u32,
}

fn default_name() -> String {
    "sine".into()
}
fn default_amplitude() -> f64 {
    1.0
}
fn default_period() -> u32 {
    60
}

struct Sine {
    config: Config,
    count: u64,
}

impl FromConfig for Sine {
    type Config = Config;

    fn from_config(config: Config) -> Result<Self, PluginError> {
        if config.period == 0 {
            return Err(PluginError::config("period", "must be at least 1"));
        }
        Ok(Sine { config, count: 0 })
    }
}

impl Input for Sine {
    fn gather(&mut self) -> Result<Batch, PluginError> {
        let phase =
            (self.count % u64::from(self.config.period)) as f64 / f64::from(self.config.period);
        let mut b = BatchBuilder::new();
        b.metric(&self.config.name, graft_sdk::now())
            .tag("plugin", &graft_sdk::plugin_name())
            .field(
                "value",
                self.config.amplitude * (phase * std::f64::consts::TAU).sin(),
            )
            .field("count", self.count);
        self.count += 1;
        Ok(b.finish())
    }
}

graft_sdk::export_input!(Sine);
