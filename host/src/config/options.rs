//! The options graft itself reads from every plugin section, as written:
//! one serde table per group of keys (common to all kinds, the metric
//! modifiers, and one per kind). [`super::section`] takes each group's keys
//! out of the section and resolves them; what is left is the plugin's own.

use std::collections::BTreeMap;
use std::time::Duration;

use graft_core::units::DurationValue;
use serde::Deserialize;

use super::values::{Count, PositiveDuration};

/// `period` of an aggregator when none is given.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30);

/// A table of options read from a plugin section: the keys it owns.
pub trait OptionTable: serde::de::DeserializeOwned {
    /// The keys this table reads; taken out of the section before reading.
    const KEYS: &'static [&'static str];
}

/// Options of every plugin, besides the metric filter
/// ([`crate::filter::FilterTable`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonTable {
    /// `alias` (default none): the name used in logs and self-metrics.
    pub alias: Option<String>,
}

impl OptionTable for CommonTable {
    const KEYS: &'static [&'static str] = &["alias"];
}

/// Renames and tags for the metrics of inputs and aggregators.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModifiersTable {
    /// `name_override` (default none): replace the measurement name.
    pub name_override: Option<String>,
    /// `name_prefix` (default none): prepend to the measurement name.
    pub name_prefix: Option<String>,
    /// `name_suffix` (default none): append to the measurement name.
    pub name_suffix: Option<String>,
    /// `[inputs.x.tags]` (default none): tags added when a metric lacks them.
    pub tags: Option<BTreeMap<String, String>>,
}

impl OptionTable for ModifiersTable {
    const KEYS: &'static [&'static str] = &["name_override", "name_prefix", "name_suffix", "tags"];
}

/// Options of every input.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputTable {
    /// `interval` (default: the agent's; above zero).
    pub interval: Option<PositiveDuration>,
    /// `precision` (default: the agent's).
    pub precision: Option<DurationValue>,
    /// `collection_jitter` (default: the agent's).
    pub collection_jitter: Option<DurationValue>,
    /// `collection_offset` (default: the agent's).
    pub collection_offset: Option<DurationValue>,
}

impl OptionTable for InputTable {
    const KEYS: &'static [&'static str] = &[
        "interval",
        "precision",
        "collection_jitter",
        "collection_offset",
    ];
}

/// Options of every processor.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorTable {
    /// `order` (default 0): processors run by ascending order, then in file
    /// order.
    pub order: Option<i64>,
}

impl OptionTable for ProcessorTable {
    const KEYS: &'static [&'static str] = &["order"];
}

/// Options of every aggregator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatorTable {
    /// `period` (default [`DEFAULT_PERIOD`], 30s; above zero): length of
    /// each aggregation window.
    pub period: Option<PositiveDuration>,
    /// `drop_original` (default false): do not pass the originals on.
    pub drop_original: Option<bool>,
}

impl OptionTable for AggregatorTable {
    const KEYS: &'static [&'static str] = &["period", "drop_original"];
}

/// Options of every output.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputTable {
    /// `flush_interval` (default: the agent's; above zero).
    pub flush_interval: Option<PositiveDuration>,
    /// `flush_jitter` (default: the agent's).
    pub flush_jitter: Option<DurationValue>,
    /// `metric_batch_size` (default: the agent's).
    pub metric_batch_size: Option<Count>,
    /// `metric_buffer_limit` (default: the agent's).
    pub metric_buffer_limit: Option<Count>,
}

impl OptionTable for OutputTable {
    const KEYS: &'static [&'static str] = &[
        "flush_interval",
        "flush_jitter",
        "metric_batch_size",
        "metric_buffer_limit",
    ];
}

/// The keys `T` reads, taken out of `table`.
pub fn take_keys<T: OptionTable>(table: &mut toml::Table) -> toml::Table {
    T::KEYS
        .iter()
        .filter_map(|k| table.remove(*k).map(|v| ((*k).to_owned(), v)))
        .collect()
}
