//! Reading graft's configuration: Telegraf's TOML shape (`[agent]`,
//! `[global_tags]`, `[[inputs.NAME]]`, ...), from one file or a directory of
//! them, with `${VAR}` / `$VAR` substitution.
//!
//! Reading happens in two stages, as everywhere in graft: this module turns
//! text into [`Config`], whose agent part is resolved (durations, sizes) and
//! whose plugin tables stay opaque [`PluginSection`]s; the options graft
//! applies to every plugin are taken out of them as typed values, and each
//! plugin parses the rest of its own table when it is built. Every error
//! names the file, the section and the key.
//!
//! Layout:
//! - [`agent`]: the `[agent]` table
//! - [`section`]: one `[[kind.NAME]]` table and the options graft applies to
//!   every plugin of a kind
//! - [`options`]: the serde tables of those options, as written
//! - [`wasm`]: a `[[kind.wasm]]` section's own keys
//! - [`error`]: [`ConfigError`], naming file, section and key
//! - [`values`]: checked values (counts, positive durations)
//! - [`env`]: environment substitution
//! - [`duration`]: Telegraf's duration and size spellings
//!
//! [`Config::validate`] checks everything graft itself reads, without
//! building a plugin.

pub mod agent;
pub mod buffer;
pub mod duration;
pub mod env;
pub mod error;
pub mod options;
pub mod sample;
pub mod section;
mod validate;
pub mod values;
pub mod wasm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

pub use agent::AgentConfig;
pub use error::ConfigError;
pub use section::PluginSection;

use crate::kind::Kind;

/// A whole configuration, as read.
#[derive(Debug, Default)]
pub struct Config {
    /// The files it was read from.
    pub files: Vec<PathBuf>,
    pub agent: AgentConfig,
    pub global_tags: BTreeMap<String, String>,
    pub inputs: Vec<PluginSection>,
    pub processors: Vec<PluginSection>,
    pub aggregators: Vec<PluginSection>,
    pub outputs: Vec<PluginSection>,
    /// What the config sets that graft ignores or reads in an old way
    /// (keys Telegraf retired or deprecated), each naming file, section and
    /// key; logged as it is read.
    pub warnings: Vec<ConfigError>,
}

impl Config {
    /// Read `files`, then every `*.toml` in `dir` (sorted by name). An error
    /// is a [`ConfigError`] naming the file, the section and the key.
    pub fn load(files: &[PathBuf], dir: Option<&Path>) -> Result<Self> {
        Ok(Self::read(files, dir)?)
    }

    /// [`Config::load`], with the error typed.
    pub fn read(files: &[PathBuf], dir: Option<&Path>) -> Result<Self, ConfigError> {
        let mut all: Vec<PathBuf> = files.to_vec();
        if let Some(dir) = dir {
            let listing = std::fs::read_dir(dir).map_err(|e| {
                ConfigError::new(format!("reading config directory {}: {e}", dir.display()))
            })?;
            let mut found: Vec<PathBuf> = listing
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect();
            found.sort();
            all.extend(found);
        }
        let mut config = Config::default();
        for file in &all {
            let origin = file.display().to_string();
            let text = std::fs::read_to_string(file)
                .map_err(|e| ConfigError::new(format!("reading {origin}: {e}")))?;
            config.merge(&text, &origin)?;
            config.files.push(file.clone());
        }
        Ok(config)
    }

    /// Parse one file's text (named `origin` in errors) into this config. An
    /// error is a [`ConfigError`].
    pub fn merge_text(&mut self, text: &str, origin: &str) -> Result<()> {
        Ok(self.merge(text, origin)?)
    }

    /// [`Config::merge_text`], with the error typed.
    pub fn merge(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        self.merge_in_file(text, origin)
            .map_err(|e| e.in_file(origin))
    }

    fn merge_in_file(&mut self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let text = env::substitute(text)
            .map_err(|e| ConfigError::new(format!("environment substitution: {e:#}")))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| ConfigError::new(e.to_string().trim_end()))?;
        for (key, value) in table {
            match key.as_str() {
                "agent" => {
                    let t = as_table(value, "agent").map_err(|e| e.in_section("[agent]"))?;
                    let warnings = self.agent.merge(t).map_err(|e| e.in_section("[agent]"))?;
                    for w in warnings {
                        self.warn(w.in_section("[agent]").in_file(origin));
                    }
                }
                "global_tags" => {
                    let section = |e: ConfigError| e.in_section("[global_tags]");
                    let t = as_table(value, "global_tags").map_err(section)?;
                    let tags: BTreeMap<String, String> = error::from_table(t).map_err(section)?;
                    self.global_tags.extend(tags);
                }
                other => match Kind::from_section(other) {
                    Some(kind) => self.add_sections(kind, value, origin)?,
                    None => {
                        return Err(ConfigError::new(format!(
                            "unknown top-level key `{other}`; expected agent, global_tags, inputs, processors, aggregators or outputs"
                        )));
                    }
                },
            }
        }
        Ok(())
    }

    fn add_sections(
        &mut self,
        kind: Kind,
        value: toml::Value,
        origin: &str,
    ) -> Result<(), ConfigError> {
        let plugins = as_table(value, kind.section())?;
        for (name, entries) in plugins {
            let tables = match entries {
                toml::Value::Array(items) => items,
                toml::Value::Table(t) => vec![toml::Value::Table(t)],
                other => {
                    return Err(ConfigError::new(format!(
                        "`{}.{name}` must be a table ([[{}.{name}]]), not {}",
                        kind.section(),
                        kind.section(),
                        other.type_str()
                    )));
                }
            };
            for item in tables {
                let index = self
                    .list_mut(kind)
                    .iter()
                    .filter(|s| s.name == name)
                    .count();
                let mut table = as_table(item, &format!("{}.{name}", kind.section()))?;
                let section = format!("{}.{name}[{index}]", kind.section());
                for d in crate::registry::deprecated(kind, &name) {
                    let present = if d.ignored {
                        table.remove(d.key).is_some()
                    } else {
                        table.contains_key(d.key)
                    };
                    if present {
                        let what = if d.ignored { "ignored" } else { "deprecated" };
                        let message = match d.instead {
                            Some(k) => format!("{what} ({}); use `{k}` instead", d.note),
                            None => format!("{what} ({})", d.note),
                        };
                        let w = ConfigError::key(d.key, message);
                        self.warn(w.in_section(section.clone()).in_file(origin));
                    }
                }
                self.list_mut(kind)
                    .push(PluginSection::new(kind, &name, index, origin, table));
            }
        }
        Ok(())
    }

    /// Log `warning` and keep it.
    fn warn(&mut self, warning: ConfigError) {
        tracing::warn!(
            file = warning.file.as_deref().unwrap_or(""),
            section = warning.section.as_deref().unwrap_or(""),
            key = warning.key.as_deref().unwrap_or(""),
            "{warning}"
        );
        self.warnings.push(warning);
    }

    fn list_mut(&mut self, kind: Kind) -> &mut Vec<PluginSection> {
        match kind {
            Kind::Input => &mut self.inputs,
            Kind::Processor => &mut self.processors,
            Kind::Aggregator => &mut self.aggregators,
            Kind::Output => &mut self.outputs,
        }
    }
}

fn as_table(value: toml::Value, what: &str) -> Result<toml::Table, ConfigError> {
    match value {
        toml::Value::Table(t) => Ok(t),
        other => Err(ConfigError::new(format!(
            "`{what}` must be a table, not {}",
            other.type_str()
        ))),
    }
}

#[cfg(test)]
mod tests;
