//! A `[[kind.wasm]]` section, read by [`crate::config::wasm`]: this is the
//! pipeline's view of it, with `on_error` as the processor stage's type.

use std::path::PathBuf;

use super::chain::OnError;
use crate::config::ConfigError;
use crate::config::PluginSection;
pub use crate::config::wasm::resolve;
use crate::config::wasm::{self, OnErrorSetting};
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

/// Read a WASM section; every key left over is an error. Whether
/// `on_error` is allowed follows the section's own kind (the second
/// argument, kept for callers, is not read).
pub fn parse(section: &mut PluginSection, _is_processor: bool) -> Result<WasmSection, ConfigError> {
    let w = wasm::take(section)?;
    Ok(WasmSection {
        path: w.path,
        config_json: w.config_json,
        permissions: w.permissions,
        limits: w.limits,
        on_error: match w.on_error {
            OnErrorSetting::Pass => OnError::Pass,
            OnErrorSetting::Drop => OnError::Drop,
        },
    })
}
