//! A `[[kind.wasm]]` section: `path` to the component, the plugin's own
//! `config` table (handed to `init` as JSON), its `permissions`, its
//! `limits`, and for processors `on_error`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::chain::OnError;
use crate::config::PluginSection;
use crate::config::agent::string;
use crate::config::duration::{parse_duration_value, parse_size_value};
use crate::wasm::{Limits, Permissions};

/// What a WASM section says, besides the options common to its kind.
#[derive(Debug)]
pub struct WasmSection {
    /// `path`: the `.wasm` component; relative to the config file.
    pub path: PathBuf,
    /// `config`: the plugin's own table, as JSON.
    pub config_json: String,
    /// `permissions`: what the plugin may touch (default: nothing).
    pub permissions: Permissions,
    /// `limits`: `memory` (default `"256MiB"`), `call_timeout` (default
    /// `"10s"`), `fuel` (per call; default off), `max_return` (largest batch a
    /// call may return; default `"64MiB"`), `recycle_memory` (replace the
    /// instance between calls once its memory passes this; default off).
    pub limits: Limits,
    /// `on_error` (processors; default `"pass"`): `"pass"` or `"drop"` the
    /// batch the plugin failed on.
    pub on_error: OnError,
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

/// Read a WASM section; every key left over is an error.
pub fn parse(section: &mut PluginSection, is_processor: bool) -> Result<WasmSection> {
    let path = match section.take("path") {
        Some(v) => PathBuf::from(string(&v).context("key `path`")?),
        None => bail!("key `path` is required: the .wasm file of the plugin"),
    };
    let path = resolve(section, &path);
    let config_json = match section.take("config") {
        None => "{}".to_owned(),
        Some(toml::Value::Table(t)) => serde_json::to_string(&t).context("key `config`")?,
        Some(other) => bail!("key `config`: expected a table, found {}", other.type_str()),
    };
    let permissions = match section.take("permissions") {
        None => Permissions::default(),
        Some(v) => {
            let p: Permissions = v.try_into().map_err(|e: toml::de::Error| {
                anyhow::anyhow!("key `permissions`: {}", e.to_string().trim_end())
            })?;
            p.validate()?;
            p
        }
    };
    let mut limits = Limits::default();
    if let Some(v) = section.take("limits") {
        let toml::Value::Table(t) = v else {
            bail!("key `limits`: expected a table");
        };
        for (k, v) in t {
            match k.as_str() {
                "memory" => {
                    limits.memory_bytes =
                        parse_size_value(&v).context("key `limits.memory`")? as usize;
                }
                "call_timeout" => {
                    limits.call_timeout =
                        parse_duration_value(&v).context("key `limits.call_timeout`")?;
                }
                "fuel" => match v.as_integer() {
                    Some(n) if n > 0 => limits.fuel = Some(n as u64),
                    _ => bail!("key `limits.fuel`: expected a positive integer, found {v}"),
                },
                "max_return" => {
                    limits.max_return_bytes =
                        parse_size_value(&v).context("key `limits.max_return`")? as usize;
                }
                "recycle_memory" => {
                    limits.recycle_memory =
                        Some(parse_size_value(&v).context("key `limits.recycle_memory`")? as usize);
                }
                other => bail!(
                    "unknown key `limits.{other}` (expected memory, call_timeout, fuel, max_return, recycle_memory)"
                ),
            }
        }
    }
    let on_error = match section.take("on_error") {
        None => OnError::Pass,
        Some(_) if !is_processor => bail!("key `on_error` applies to processors only"),
        Some(v) => match string(&v).context("key `on_error`")?.as_str() {
            "pass" => OnError::Pass,
            "drop" => OnError::Drop,
            other => bail!("key `on_error`: {other:?} is not \"pass\" or \"drop\""),
        },
    };
    if let Some(key) = section.table.keys().next() {
        bail!("unknown key `{key}` (a WASM plugin's own settings go under `config`)");
    }
    Ok(WasmSection {
        path,
        config_json,
        permissions,
        limits,
        on_error,
    })
}
