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
