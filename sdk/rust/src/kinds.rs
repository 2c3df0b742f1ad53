//! The four traits a plugin implements, one per plugin kind.

use graft_core::{Batch, PluginError, WriteError};
use serde::de::DeserializeOwned;

/// A plugin that produces metrics each time graft gathers.
pub trait Input: Sized + 'static {
    /// The plugin's `config` table.
    type Config: DeserializeOwned;
    /// Build the plugin from its configuration.
    fn init(config: Self::Config) -> Result<Self, PluginError>;
    /// Collect one round of metrics.
    fn gather(&mut self) -> Result<Batch, PluginError>;
}

/// A plugin that transforms batches.
pub trait Processor: Sized + 'static {
    /// The plugin's `config` table.
    type Config: DeserializeOwned;
    /// Build the plugin from its configuration.
    fn init(config: Self::Config) -> Result<Self, PluginError>;
    /// Transform one batch.
    fn process(&mut self, batch: Batch) -> Result<Batch, PluginError>;
}

/// A plugin that summarises each period's metrics.
pub trait Aggregator: Sized + 'static {
    /// The plugin's `config` table.
    type Config: DeserializeOwned;
    /// Build the plugin from its configuration.
    fn init(config: Self::Config) -> Result<Self, PluginError>;
    /// Take metrics of the current period into account.
    fn add(&mut self, batch: Batch) -> Result<(), PluginError>;
    /// The aggregates of the current period.
    fn push(&mut self) -> Batch;
    /// Forget the current period; graft calls this after every `push`.
    fn reset(&mut self);
}

/// A plugin that delivers metrics.
pub trait Output: Sized + 'static {
    /// The plugin's `config` table.
    type Config: DeserializeOwned;
    /// Build the plugin from its configuration.
    fn init(config: Self::Config) -> Result<Self, PluginError>;
    /// Deliver one batch, or say why not and what graft should do next.
    fn write(&mut self, batch: Batch) -> Result<(), WriteError>;
}
