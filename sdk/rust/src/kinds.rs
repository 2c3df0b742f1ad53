//! How a plugin is built from its configuration ([`FromConfig`]), and the
//! four traits a plugin implements, one per plugin kind.

use graft_core::{Batch, PluginError, WriteError};
use serde::de::DeserializeOwned;

/// How graft builds a plugin from its `config` table.
///
/// A type serde can deserialize is its own configuration: derive
/// `serde::Deserialize` for the plugin (with `#[serde(deny_unknown_fields)]`
/// so that a misspelt key is refused) and there is nothing to implement.
/// A plugin that keeps state besides its settings implements this trait
/// instead, naming its configuration type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be built from a graft `config` table",
    label = "a graft plugin must implement `graft_sdk::FromConfig`",
    note = "derive `serde::Deserialize` for `{Self}` (it is then its own config), or implement `graft_sdk::FromConfig` for it"
)]
pub trait FromConfig: Sized + 'static {
    /// The plugin's `config` table, as serde reads it.
    type Config: DeserializeOwned;
    /// Build the plugin from its configuration; an error here (naming the
    /// key at fault with [`PluginError::config`]) refuses the config.
    fn from_config(config: Self::Config) -> Result<Self, PluginError>;
}

impl<T: DeserializeOwned + 'static> FromConfig for T {
    type Config = T;
    fn from_config(config: T) -> Result<T, PluginError> {
        Ok(config)
    }
}

/// A plugin that produces metrics each time graft gathers.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a graft input",
    label = "`export_input!` needs a type that implements `graft_sdk::Input`"
)]
pub trait Input: FromConfig {
    /// Collect one round of metrics.
    fn gather(&mut self) -> Result<Batch, PluginError>;
}

/// A plugin that transforms batches.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a graft processor",
    label = "`export_processor!` needs a type that implements `graft_sdk::Processor`"
)]
pub trait Processor: FromConfig {
    /// Transform one batch.
    fn process(&mut self, batch: Batch) -> Result<Batch, PluginError>;
}

/// A plugin that summarises each period's metrics.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a graft aggregator",
    label = "`export_aggregator!` needs a type that implements `graft_sdk::Aggregator`"
)]
pub trait Aggregator: FromConfig {
    /// Take metrics of the current period into account.
    fn add(&mut self, batch: Batch) -> Result<(), PluginError>;
    /// The aggregates of the current period.
    fn push(&mut self) -> Batch;
    /// Forget the current period; graft calls this after every `push`.
    fn reset(&mut self);
}

/// A plugin that delivers metrics.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a graft output",
    label = "`export_output!` needs a type that implements `graft_sdk::Output`"
)]
pub trait Output: FromConfig {
    /// Deliver one batch, or say why not and what graft should do next.
    fn write(&mut self, batch: Batch) -> Result<(), WriteError>;
}
