//! {{name}}: an output plugin for graft. Logs a line per batch written;
//! replace `write` with delivery to your system (granting the plugin the
//! `permissions` it needs in graft.toml).

use graft_sdk::{Batch, FromConfig, Level, Output, PluginError, WriteError};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Refuse batches larger than this (0: no limit).
    #[serde(default)]
    max_batch: usize,
}

struct Plugin {
    config: Config,
    written: u64,
}

impl FromConfig for Plugin {
    type Config = Config;

    fn from_config(config: Config) -> Result<Self, PluginError> {
        Ok(Plugin { config, written: 0 })
    }
}

impl Output for Plugin {
    fn write(&mut self, batch: Batch) -> Result<(), WriteError> {
        if self.config.max_batch > 0 && batch.len() > self.config.max_batch {
            // Transient: graft keeps the metrics and retries, in smaller batches
            // if metric_batch_size is lowered.
            return Err(WriteError::Retry(format!(
                "{} metrics is more than max_batch = {}",
                batch.len(),
                self.config.max_batch
            )));
        }
        self.written += batch.len() as u64;
        graft_sdk::log!(
            Level::Debug,
            "wrote {} metrics ({} in all)",
            batch.len(),
            self.written
        );
        Ok(())
    }
}

graft_sdk::export_output!(Plugin);
