//! Reading graft's configuration: Telegraf's TOML shape (`[agent]`,
//! `[global_tags]`, `[[inputs.NAME]]`, ...), from one file or a directory of
//! them, with `${VAR}` / `$VAR` substitution.
//!
//! Reading happens in two stages, as everywhere in graft: this module turns
//! text into [`Config`], whose agent part is resolved (durations, sizes) and
//! whose plugin tables stay opaque [`PluginSection`]s; each plugin parses its
//! own table when it is built. Every error names the file, the section and
//! the key.
//!
//! Layout:
//! - [`agent`]: the `[agent]` table
//! - [`section`]: one `[[kind.NAME]]` table and the options graft applies to
//!   every plugin of a kind
//! - [`env`]: environment substitution
//! - [`duration`]: Telegraf's duration and size spellings

pub mod agent;
pub mod duration;
pub mod env;
pub mod sample;
pub mod section;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use agent::AgentConfig;
pub use section::{PluginSection, SectionKind};

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
}

impl Config {
    /// Read `files`, then every `*.toml` in `dir` (sorted by name).
    pub fn load(files: &[PathBuf], dir: Option<&Path>) -> Result<Self> {
        let mut all: Vec<PathBuf> = files.to_vec();
        if let Some(dir) = dir {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("reading config directory {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect();
            found.sort();
            all.extend(found);
        }
        let mut config = Config::default();
        for file in &all {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            config
                .merge_text(&text, &file.display().to_string())
                .with_context(|| format!("{}", file.display()))?;
            config.files.push(file.clone());
        }
        Ok(config)
    }

    /// Parse one file's text (named `origin` in errors) into this config.
    pub fn merge_text(&mut self, text: &str, origin: &str) -> Result<()> {
        let text = env::substitute(text).context("environment substitution")?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        for (key, value) in table {
            match key.as_str() {
                "agent" => {
                    let t = as_table(value, "agent")?;
                    self.agent.merge(t).context("[agent]")?;
                }
                "global_tags" => {
                    for (k, v) in as_table(value, "global_tags")? {
                        match v {
                            toml::Value::String(s) => {
                                self.global_tags.insert(k, s);
                            }
                            other => bail!(
                                "[global_tags]: `{k}` must be a string, not {}",
                                other.type_str()
                            ),
                        }
                    }
                }
                "inputs" => self.add_sections(SectionKind::Input, value, origin)?,
                "processors" => self.add_sections(SectionKind::Processor, value, origin)?,
                "aggregators" => self.add_sections(SectionKind::Aggregator, value, origin)?,
                "outputs" => self.add_sections(SectionKind::Output, value, origin)?,
                other => bail!(
                    "unknown top-level key `{other}`; expected agent, global_tags, inputs, processors, aggregators or outputs"
                ),
            }
        }
        Ok(())
    }

    fn add_sections(&mut self, kind: SectionKind, value: toml::Value, origin: &str) -> Result<()> {
        let plugins = as_table(value, kind.as_str())?;
        for (name, entries) in plugins {
            let tables = match entries {
                toml::Value::Array(items) => items,
                toml::Value::Table(t) => vec![toml::Value::Table(t)],
                other => bail!(
                    "`{}.{name}` must be a table ([[{}.{name}]]), not {}",
                    kind.as_str(),
                    kind.as_str(),
                    other.type_str()
                ),
            };
            for item in tables {
                let list = self.list_mut(kind);
                let index = list.iter().filter(|s| s.name == name).count();
                let table = as_table(item, &format!("{}.{name}", kind.as_str()))?;
                list.push(PluginSection::new(kind, &name, index, origin, table));
            }
        }
        Ok(())
    }

    fn list_mut(&mut self, kind: SectionKind) -> &mut Vec<PluginSection> {
        match kind {
            SectionKind::Input => &mut self.inputs,
            SectionKind::Processor => &mut self.processors,
            SectionKind::Aggregator => &mut self.aggregators,
            SectionKind::Output => &mut self.outputs,
        }
    }
}

fn as_table(value: toml::Value, what: &str) -> Result<toml::Table> {
    match value {
        toml::Value::Table(t) => Ok(t),
        other => bail!("`{what}` must be a table, not {}", other.type_str()),
    }
}

#[cfg(test)]
mod tests;
