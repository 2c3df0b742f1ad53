//! What every built-in plugin offers the host's registry: its own table as
//! a serde type, a pure [`Builtin::validate`] (no I/O: nothing opened,
//! bound, resolved or read), and [`Builtin::build`]. `graft config check`
//! runs both; `graft run` runs both, then the kind's start (`connect`,
//! `start`).

use anyhow::Result;
use serde::de::DeserializeOwned;

/// A built-in plugin of one kind.
pub trait Builtin {
    /// The section name: `cpu` in `[[inputs.cpu]]`.
    const NAME: &'static str;
    /// The plugin's own table as read (unknown keys refused, named defaults).
    type Config: DeserializeOwned;
    /// What it builds: `dyn Input`, `dyn Processor` or `dyn Output`.
    type Plugin: ?Sized;

    /// Keys of this plugin's table that Telegraf deprecated, renamed or
    /// dropped. The host warns about each one a config sets, naming the
    /// file, the section, the key and its replacement, then passes the
    /// table on (without the key when [`Deprecated::ignored`]).
    const DEPRECATED: &'static [Deprecated] = &[];

    /// Checks beyond what the types enforce (ranges, combinations of keys).
    /// Pure: the same answer on any machine.
    fn validate(config: &Self::Config) -> Result<()> {
        let _ = config;
        Ok(())
    }

    /// The plugin, from a validated config. May read local state (a
    /// template file, `/proc`), never the network: connections open in the
    /// kind's own start (`Output::connect`, `Input::start`).
    fn build(config: Self::Config) -> Result<Box<Self::Plugin>>;
}

/// A key Telegraf deprecated or dropped in a plugin's table. Configs that
/// set it still run: the host logs a warning that names the file, the
/// section and the key, with `instead` when there is one.
#[derive(Debug, Clone, Copy)]
pub struct Deprecated {
    /// The key as written: `address` in `[[inputs.http_response]]`.
    pub key: &'static str,
    /// The key that replaces it, if any: `urls`.
    pub instead: Option<&'static str>,
    /// True when the key has no effect (Telegraf ignores it too): the host
    /// removes it before the plugin's table is read, so the plugin's
    /// config type need not know it. False when the plugin still reads it.
    pub ignored: bool,
    /// Since when and why, as Telegraf's changelog says: "deprecated in
    /// 1.12.0, use urls".
    pub note: &'static str,
}

/// Parse and validate a table for `B`, without building.
pub fn validate<B: Builtin>(table: toml::Table) -> Result<B::Config> {
    let config: B::Config = crate::config::parse(table)?;
    B::validate(&config)?;
    Ok(config)
}

/// Parse, validate and build.
pub fn build<B: Builtin>(table: toml::Table) -> Result<Box<B::Plugin>> {
    B::build(validate::<B>(table)?)
}
