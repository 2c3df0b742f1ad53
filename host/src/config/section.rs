//! One `[[kind.NAME]]` table, and the options graft itself reads from it for
//! every plugin of that kind (alias, interval, name_override, ...), resolved
//! from the serde tables of [`super::options`]. What is left after those is
//! the plugin's own table, which the plugin parses. Errors name the file,
//! the section and the key.

use std::collections::BTreeMap;
use std::time::Duration;

use super::buffer::{BufferOptions, BufferTable};
use super::error::{ConfigError, from_table};
use super::options::{
    AggregatorTable, CommonTable, DEFAULT_PERIOD, InputTable, ModifiersTable, OptionTable,
    OutputTable, ProcessorTable, take_keys,
};
use crate::filter::MetricFilter;
use crate::kind::Kind;

/// One plugin table as read, not yet interpreted.
#[derive(Clone, Debug)]
pub struct PluginSection {
    pub kind: Kind,
    /// The plugin name: `mem` in `[[inputs.mem]]`.
    pub name: String,
    /// Position among sections of the same kind and name.
    pub index: usize,
    /// The file it came from.
    pub origin: String,
    pub table: toml::Table,
}

impl PluginSection {
    pub fn new(kind: Kind, name: &str, index: usize, origin: &str, table: toml::Table) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            index,
            origin: origin.to_owned(),
            table,
        }
    }

    /// `inputs.mem[0]`: where it is in the config, for errors.
    pub fn location(&self) -> String {
        format!("{}.{}[{}]", self.kind.section(), self.name, self.index)
    }

    /// `file.toml: inputs.mem[0]`, for errors.
    pub fn context(&self) -> String {
        format!("{}: {}", self.origin, self.location())
    }

    /// Take key `key` out of the table.
    pub fn take(&mut self, key: &str) -> Option<toml::Value> {
        self.table.remove(key)
    }
}

/// Options every plugin has.
#[derive(Clone, Debug, Default)]
pub struct CommonOptions {
    /// `alias`: name used in logs and self-metrics.
    pub alias: Option<String>,
    /// `namepass`, `tagdrop`, `fieldinclude`...: which metrics the plugin
    /// sees, and what of them.
    pub filter: MetricFilter,
}

/// Options graft applies to every input.
#[derive(Clone, Debug, Default)]
pub struct InputOptions {
    pub common: CommonOptions,
    /// `interval` (default: the agent's).
    pub interval: Option<Duration>,
    /// `precision` (default: the agent's).
    pub precision: Option<Duration>,
    /// `collection_jitter` (default: the agent's).
    pub collection_jitter: Option<Duration>,
    /// `collection_offset` (default: the agent's).
    pub collection_offset: Option<Duration>,
    pub modifiers: MetricModifiers,
}

/// Renames and tags applied to a plugin's metrics.
#[derive(Clone, Debug, Default)]
pub struct MetricModifiers {
    /// `name_override`: replace the measurement name.
    pub name_override: Option<String>,
    /// `name_prefix`: prepend to the measurement name.
    pub name_prefix: Option<String>,
    /// `name_suffix`: append to the measurement name.
    pub name_suffix: Option<String>,
    /// `[inputs.x.tags]`: tags added when the metric lacks them.
    pub tags: BTreeMap<String, String>,
}

/// Options graft applies to every processor.
#[derive(Clone, Debug, Default)]
pub struct ProcessorOptions {
    pub common: CommonOptions,
    /// `order` (default 0): processors run by ascending order, then file order.
    pub order: i64,
}

/// Options graft applies to every aggregator.
#[derive(Clone, Debug)]
pub struct AggregatorOptions {
    pub common: CommonOptions,
    /// `period` (default `"30s"`): length of each aggregation window.
    pub period: Duration,
    /// `drop_original` (default false): do not pass the originals on.
    pub drop_original: bool,
    pub modifiers: MetricModifiers,
}

/// Options graft applies to every output.
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    pub common: CommonOptions,
    /// `flush_interval` (default: the agent's).
    pub flush_interval: Option<Duration>,
    /// `flush_jitter` (default: the agent's).
    pub flush_jitter: Option<Duration>,
    /// `metric_batch_size` (default: the agent's).
    pub metric_batch_size: Option<usize>,
    /// `metric_buffer_limit` (default: the agent's).
    pub metric_buffer_limit: Option<usize>,
    /// `buffer_strategy`, `buffer_directory` and the disk buffer's keys.
    pub buffer: BufferOptions,
}

impl PluginSection {
    /// `e`, placed in this section and its file.
    ///
    /// The `*_options` methods and [`super::wasm::take`] return errors that
    /// name the key only, since their callers name the section already (as
    /// `anyhow` context); [`super::Config::validate`] places every error.
    pub fn error(&self, e: ConfigError) -> ConfigError {
        e.in_section(self.location()).in_file(&self.origin)
    }

    /// Take the keys of `T` out of the table and read them.
    fn options<T: OptionTable>(&mut self) -> Result<T, ConfigError> {
        from_table(take_keys::<T>(&mut self.table))
    }

    fn common(&mut self) -> Result<CommonOptions, ConfigError> {
        let CommonTable { alias } = self.options()?;
        let filter = MetricFilter::new(self.options()?)?;
        Ok(CommonOptions { alias, filter })
    }

    fn modifiers(&mut self) -> Result<MetricModifiers, ConfigError> {
        let t: ModifiersTable = self.options()?;
        Ok(MetricModifiers {
            name_override: t.name_override,
            name_prefix: t.name_prefix,
            name_suffix: t.name_suffix,
            tags: t.tags.unwrap_or_default(),
        })
    }

    /// Take the options graft applies to inputs ([`InputOptions::take`]).
    pub fn input_options(&mut self) -> Result<InputOptions, ConfigError> {
        InputOptions::take(self)
    }

    /// Take the options graft applies to processors.
    pub fn processor_options(&mut self) -> Result<ProcessorOptions, ConfigError> {
        ProcessorOptions::take(self)
    }

    /// Take the options graft applies to aggregators.
    pub fn aggregator_options(&mut self) -> Result<AggregatorOptions, ConfigError> {
        AggregatorOptions::take(self)
    }

    /// Take the options graft applies to outputs.
    pub fn output_options(&mut self) -> Result<OutputOptions, ConfigError> {
        OutputOptions::take(self)
    }

    /// Take the options graft applies to every plugin of this kind, and
    /// drop them: for checking a section without building it.
    pub fn take_kind_options(&mut self) -> Result<(), ConfigError> {
        match self.kind {
            Kind::Input => InputOptions::take(self).map(drop),
            Kind::Processor => ProcessorOptions::take(self).map(drop),
            Kind::Aggregator => AggregatorOptions::take(self).map(drop),
            Kind::Output => OutputOptions::take(self).map(drop),
        }
    }
}

impl InputOptions {
    /// Take the input options out of `section`; the error names the key.
    pub fn take(section: &mut PluginSection) -> Result<Self, ConfigError> {
        let common = section.common()?;
        let t: InputTable = section.options()?;
        Ok(Self {
            common,
            interval: t.interval.map(|d| d.0),
            precision: t.precision.map(|d| d.0),
            collection_jitter: t.collection_jitter.map(|d| d.0),
            collection_offset: t.collection_offset.map(|d| d.0),
            modifiers: section.modifiers()?,
        })
    }
}

impl ProcessorOptions {
    /// Take the processor options out of `section`; the error names the key.
    pub fn take(section: &mut PluginSection) -> Result<Self, ConfigError> {
        let t: ProcessorTable = section.options()?;
        Ok(Self {
            common: section.common()?,
            order: t.order.unwrap_or(0),
        })
    }
}

impl AggregatorOptions {
    /// Take the aggregator options out of `section`; the error names the key.
    pub fn take(section: &mut PluginSection) -> Result<Self, ConfigError> {
        let common = section.common()?;
        let t: AggregatorTable = section.options()?;
        Ok(Self {
            common,
            period: t.period.map_or(DEFAULT_PERIOD, |d| d.0),
            drop_original: t.drop_original.unwrap_or(false),
            modifiers: section.modifiers()?,
        })
    }
}

impl OutputOptions {
    /// Take the output options out of `section`; the error names the key.
    pub fn take(section: &mut PluginSection) -> Result<Self, ConfigError> {
        let common = section.common()?;
        let t: OutputTable = section.options()?;
        Ok(Self {
            common,
            flush_interval: t.flush_interval.map(|d| d.0),
            flush_jitter: t.flush_jitter.map(|d| d.0),
            metric_batch_size: t.metric_batch_size.map(|c| c.0),
            metric_buffer_limit: t.metric_buffer_limit.map(|c| c.0),
            buffer: section.options::<BufferTable>()?.options()?,
        })
    }
}
