//! A `[[kind.wasm]]` section: `path` to the component, the plugin's own
//! `config` table (handed to `init` as JSON), its `permissions`, its
//! `limits`, and for processors `on_error`. [`WasmTable`] is the section as
//! written; [`WasmSettings`] what the runtime is given.

use std::path::{Path, PathBuf};

use graft_core::units::SizeValue;
use serde::Deserialize;

use super::error::{ConfigError, from_table};
use super::section::PluginSection;
use super::values::{PositiveDuration, PositiveInteger};
use crate::kind::Kind;
use crate::wasm::{Limits, Permissions};

/// The plugin name of a WASM section: `[[processors.wasm]]`.
pub const NAME: &str = "wasm";

/// The keys of a WASM section besides the options common to its kind.
const KEYS: &[&str] = &["path", "config", "permissions", "limits", "on_error"];

/// A WASM section's own keys, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmTable {
    /// `path` (required): the `.wasm` component; relative to the config file.
    pub path: Option<String>,
    /// `[kind.wasm.config]` (default empty): the plugin's own table.
    #[serde(default)]
    pub config: toml::Table,
    /// `[kind.wasm.permissions]` (default: nothing granted).
    #[serde(default)]
    pub permissions: Permissions,
    /// `[kind.wasm.limits]` (defaults below).
    #[serde(default)]
    pub limits: LimitsTable,
    /// `on_error` (processors only; default `"pass"`).
    pub on_error: Option<OnErrorSetting>,
}

/// `[kind.wasm.limits]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsTable {
    /// `memory` (default `"256MiB"`): largest linear memory.
    pub memory: Option<SizeValue>,
    /// `call_timeout` (default `"10s"`; above zero): longest one call may run.
    pub call_timeout: Option<PositiveDuration>,
    /// `fuel` (default off): instructions one call may use, roughly.
    pub fuel: Option<PositiveInteger>,
    /// `max_return` (default `"64MiB"`): largest batch a call may return.
    pub max_return: Option<SizeValue>,
    /// `recycle_memory` (default off): replace the instance between calls
    /// once its memory passes this.
    pub recycle_memory: Option<SizeValue>,
}

/// `on_error`: what a processor does with the batch its plugin failed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnErrorSetting {
    /// Pass the batch on unchanged (the default).
    #[default]
    Pass,
    /// Drop it.
    Drop,
}

/// A WASM section, resolved.
#[derive(Clone, Debug)]
pub struct WasmSettings {
    /// The `.wasm` component, relative paths resolved against the file the
    /// section is in. Whether it exists is checked when it is loaded.
    pub path: PathBuf,
    /// The plugin's own `config` table, as JSON.
    pub config_json: String,
    pub permissions: Permissions,
    pub limits: Limits,
    pub on_error: OnErrorSetting,
}

/// `path` as written in `section`: relative paths are relative to the file
/// the section is in.
pub fn resolve(section: &PluginSection, path: &Path) -> PathBuf {
    if path.is_relative() {
        let base = Path::new(&section.origin)
            .parent()
            .unwrap_or(Path::new("."));
        base.join(path)
    } else {
        path.to_owned()
    }
}

/// Take a WASM section's own keys out of `section` (after the options of its
/// kind); every key left over is an error. The error names the key; the
/// caller places it ([`PluginSection::error`]).
pub fn take(section: &mut PluginSection) -> Result<WasmSettings, ConfigError> {
    if let Some(key) = section.table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(ConfigError::key(
            key.as_str(),
            "unknown key (a WASM plugin's own settings go under `config`)",
        ));
    }
    let t: WasmTable = from_table(std::mem::take(&mut section.table))?;
    let Some(path) = t.path else {
        return Err(ConfigError::key(
            "path",
            "required: the .wasm file of the plugin",
        ));
    };
    let path = resolve(section, Path::new(&path));
    let config_json =
        serde_json::to_string(&t.config).map_err(|e| ConfigError::key("config", e))?;
    t.permissions
        .validate()
        .map_err(|e| ConfigError::new(format!("{e:#}")))?;
    if t.on_error.is_some() && section.kind != Kind::Processor {
        return Err(ConfigError::key("on_error", "applies to processors only"));
    }
    Ok(WasmSettings {
        path,
        config_json,
        permissions: t.permissions,
        limits: limits(t.limits),
        on_error: t.on_error.unwrap_or_default(),
    })
}

fn limits(t: LimitsTable) -> Limits {
    let d = Limits::default();
    let bytes = |s: SizeValue| usize::try_from(s.0).unwrap_or(usize::MAX);
    Limits {
        memory_bytes: t.memory.map_or(d.memory_bytes, bytes),
        call_timeout: t.call_timeout.map_or(d.call_timeout, |c| c.0),
        fuel: t.fuel.map(|f| f.0),
        max_return_bytes: t.max_return.map_or(d.max_return_bytes, bytes),
        recycle_memory: t.recycle_memory.map(bytes),
    }
}
