//! What a WASM plugin may touch, granted in its config section under
//! `permissions`. Nothing is granted by default: no files, no environment,
//! no network.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::console::Console;

/// A plugin's grants.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// `read_dirs = ["/etc/app"]` (default none): directories the plugin may
    /// read, seen inside the plugin at the same path.
    #[serde(default)]
    pub read_dirs: Vec<PathBuf>,
    /// `write_dirs = ["/var/lib/app"]` (default none): directories the plugin
    /// may read and write, at the same path.
    #[serde(default)]
    pub write_dirs: Vec<PathBuf>,
    /// `env = ["HOSTNAME"]` (default none): environment variables the plugin
    /// may read; the others do not exist for it.
    #[serde(default)]
    pub env: Vec<String>,
}

impl Permissions {
    /// Check the grants without side effects: every directory exists.
    pub fn validate(&self) -> Result<()> {
        for (key, dirs) in [
            ("read_dirs", &self.read_dirs),
            ("write_dirs", &self.write_dirs),
        ] {
            for (i, dir) in dirs.iter().enumerate() {
                if !dir.is_absolute() {
                    bail!(
                        "permissions.{key}[{i}]: {} is not an absolute path",
                        dir.display()
                    );
                }
                if !dir.is_dir() {
                    bail!(
                        "permissions.{key}[{i}]: {} is not a directory",
                        dir.display()
                    );
                }
            }
        }
        Ok(())
    }

    /// A WASI context that grants exactly this.
    pub(crate) fn wasi_ctx(&self, console: &Console) -> Result<WasiCtx> {
        let mut b = WasiCtxBuilder::new();
        b.stdout(console.clone()).stderr(console.clone());
        for dir in &self.read_dirs {
            let guest = dir.to_string_lossy();
            b.preopened_dir(dir, &guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("granting read access to {}", dir.display()))?;
        }
        for dir in &self.write_dirs {
            let guest = dir.to_string_lossy();
            b.preopened_dir(dir, &guest, FsPerms::ReadWrite)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("granting write access to {}", dir.display()))?;
        }
        for name in &self.env {
            if let Ok(value) = std::env::var(name) {
                b.env(name, value);
            }
        }
        Ok(b.build())
    }
}
