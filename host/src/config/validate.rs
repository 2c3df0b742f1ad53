//! [`Config::validate`]: check everything graft itself reads from a
//! configuration (`[agent]`, `[global_tags]`, the options of every section,
//! every WASM section's own keys) without building a plugin, compiling a
//! component or touching the network. Each plugin's own keys are the
//! registry's to check.

use std::path::PathBuf;

use super::buffer::{BufferSpec, same_dir};
use super::{Config, ConfigError, PluginSection, wasm};

impl Config {
    /// The first thing wrong with this configuration, if any; see
    /// [`Config::problems`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Everything wrong with this configuration that graft can tell
    /// without building a plugin: at most one error per section, in file
    /// order (agent first, then inputs, processors, aggregators, outputs).
    pub fn problems(&self) -> Vec<ConfigError> {
        let mut found = Vec::new();
        if let Err(e) = self.agent.check() {
            found.push(e.in_section("[agent]").in_file(self.file_name()));
        }
        let sections = self
            .inputs
            .iter()
            .chain(&self.processors)
            .chain(&self.aggregators)
            .chain(&self.outputs);
        for section in sections {
            if let Err(e) = check_section(section) {
                found.push(e);
            }
        }
        found.extend(self.buffer_problems());
        found
    }

    /// Each disk-buffered output needs a directory, and its own one: two
    /// outputs sharing a log would each write half of it.
    fn buffer_problems(&self) -> Vec<ConfigError> {
        let mut found = Vec::new();
        let mut dirs: Vec<(PathBuf, String)> = Vec::new();
        for section in &self.outputs {
            let Ok(options) = section.clone().output_options() else {
                continue; // reported by check_section
            };
            let resolved = options.buffer.resolve(
                &self.agent.buffer,
                &section.location(),
                options.common.alias.as_deref(),
            );
            match resolved {
                Ok(BufferSpec::Disk(d)) => {
                    if let Some((_, other)) = dirs.iter().find(|(dir, _)| same_dir(dir, &d.dir)) {
                        found.push(section.error(ConfigError::key(
                            "buffer_directory",
                            format!(
                                "{} is already the disk buffer of {other}; give each output its own alias or directory",
                                d.dir.display()
                            ),
                        )));
                    } else {
                        dirs.push((d.dir, section.location()));
                    }
                }
                Ok(BufferSpec::Memory) => {}
                Err(e) => found.push(section.error(e)),
            }
        }
        found
    }

    /// The file errors about the whole config name: the first one read.
    fn file_name(&self) -> String {
        self.files
            .first()
            .map_or_else(|| "(configuration)".to_owned(), |f| f.display().to_string())
    }
}

/// Take the options of `section`'s kind from a copy of it, and for a WASM
/// section its own keys too.
fn check_section(section: &PluginSection) -> Result<(), ConfigError> {
    let mut s = section.clone();
    let checked = s.take_kind_options().and_then(|()| {
        if s.name == wasm::NAME {
            wasm::take(&mut s)?;
        }
        Ok(())
    });
    checked.map_err(|e| section.error(e))
}
