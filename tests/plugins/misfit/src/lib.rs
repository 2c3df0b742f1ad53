//! Test guest: a processor that breaks the conformance kit's rules on
//! purpose, so that `graft plugin test` can be shown to catch each.
//!
//! - Any config that is not a JSON object makes `init` panic (a trap where
//!   an error was due).
//! - `{"mode": "nondeterministic"}` tags every metric with the wall clock.
//! - `{"mode": "leak"}` keeps a copy of everything it is given.
//! - Otherwise it passes batches through.

use graft_sdk::{Batch, FromConfig, PluginError, Processor};

enum Mode {
    Pass,
    Nondeterministic,
    Leak(Vec<String>),
}

struct Misfit(Mode);

impl FromConfig for Misfit {
    type Config = serde_json::Value;

    fn from_config(config: serde_json::Value) -> Result<Self, PluginError> {
        // Deliberately careless: a config of another shape traps.
        let object = config.as_object().expect("config must be an object");
        let mode = match object.get("mode").and_then(|m| m.as_str()) {
            Some("nondeterministic") => Mode::Nondeterministic,
            Some("leak") => Mode::Leak(Vec::new()),
            _ => Mode::Pass,
        };
        Ok(Misfit(mode))
    }
}

impl Processor for Misfit {
    fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
        match &mut self.0 {
            Mode::Pass => {}
            Mode::Nondeterministic => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                batch.set_tag("seen_at", &now.to_string());
            }
            Mode::Leak(kept) => {
                for i in 0..batch.len() {
                    kept.push(format!("{}:{}", batch.get(i).name(), kept.len()));
                }
            }
        }
        Ok(batch)
    }
}

graft_sdk::export_processor!(Misfit);
