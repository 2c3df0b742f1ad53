//! One `[[kind.NAME]]` table, and the options graft itself reads from it for
//! every plugin of that kind (alias, interval, name_override, ...). What is
//! left after those is the plugin's own table, which the plugin parses.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::agent::{boolean, count, positive, string};
use super::duration::parse_duration_value;
use crate::filter::MetricFilter;

/// The four section kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Input,
    Processor,
    Aggregator,
    Output,
}

impl SectionKind {
    /// `inputs`, `processors`, `aggregators`, `outputs`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SectionKind::Input => "inputs",
            SectionKind::Processor => "processors",
            SectionKind::Aggregator => "aggregators",
            SectionKind::Output => "outputs",
        }
    }
}

/// One plugin table as read, not yet interpreted.
#[derive(Clone, Debug)]
pub struct PluginSection {
    pub kind: SectionKind,
    /// The plugin name: `mem` in `[[inputs.mem]]`.
    pub name: String,
    /// Position among sections of the same kind and name.
    pub index: usize,
    /// The file it came from.
    pub origin: String,
    pub table: toml::Table,
}

impl PluginSection {
    pub fn new(
        kind: SectionKind,
        name: &str,
        index: usize,
        origin: &str,
        table: toml::Table,
    ) -> Self {
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
        format!("{}.{}[{}]", self.kind.as_str(), self.name, self.index)
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
}

impl PluginSection {
    fn duration(&mut self, key: &str) -> Result<Option<Duration>> {
        self.take(key)
            .map(|v| parse_duration_value(&v).with_context(|| format!("key `{key}`")))
            .transpose()
    }

    fn string(&mut self, key: &str) -> Result<Option<String>> {
        self.take(key)
            .map(|v| string(&v).with_context(|| format!("key `{key}`")))
            .transpose()
    }

    fn common(&mut self) -> Result<CommonOptions> {
        Ok(CommonOptions {
            alias: self.string("alias")?,
            filter: MetricFilter::take(&mut self.table)?,
        })
    }

    fn modifiers(&mut self) -> Result<MetricModifiers> {
        let mut m = MetricModifiers {
            name_override: self.string("name_override")?,
            name_prefix: self.string("name_prefix")?,
            name_suffix: self.string("name_suffix")?,
            tags: BTreeMap::new(),
        };
        if let Some(v) = self.take("tags") {
            let toml::Value::Table(t) = v else {
                bail!("key `tags`: expected a table of strings");
            };
            for (k, v) in t {
                let v = string(&v).with_context(|| format!("key `tags.{k}`"))?;
                m.tags.insert(k, v);
            }
        }
        Ok(m)
    }

    /// Take the options graft applies to inputs.
    pub fn input_options(&mut self) -> Result<InputOptions> {
        Ok(InputOptions {
            common: self.common()?,
            interval: self
                .duration("interval")?
                .map(|d| positive(d, "interval"))
                .transpose()?,
            precision: self.duration("precision")?,
            collection_jitter: self.duration("collection_jitter")?,
            collection_offset: self.duration("collection_offset")?,
            modifiers: self.modifiers()?,
        })
    }

    /// Take the options graft applies to processors.
    pub fn processor_options(&mut self) -> Result<ProcessorOptions> {
        let order = match self.take("order") {
            None => 0,
            Some(v) => v
                .as_integer()
                .ok_or_else(|| anyhow::anyhow!("key `order`: expected a whole number"))?,
        };
        Ok(ProcessorOptions {
            common: self.common()?,
            order,
        })
    }

    /// Take the options graft applies to aggregators.
    pub fn aggregator_options(&mut self) -> Result<AggregatorOptions> {
        Ok(AggregatorOptions {
            common: self.common()?,
            period: positive(
                self.duration("period")?.unwrap_or(Duration::from_secs(30)),
                "period",
            )?,
            drop_original: self
                .take("drop_original")
                .map(|v| boolean(&v).context("key `drop_original`"))
                .transpose()?
                .unwrap_or(false),
            modifiers: self.modifiers()?,
        })
    }

    /// Take the options graft applies to outputs.
    pub fn output_options(&mut self) -> Result<OutputOptions> {
        let size = |s: &mut Self, key: &str| {
            s.take(key)
                .map(|v| count(&v).with_context(|| format!("key `{key}`")))
                .transpose()
        };
        Ok(OutputOptions {
            common: self.common()?,
            flush_interval: self
                .duration("flush_interval")?
                .map(|d| positive(d, "flush_interval"))
                .transpose()?,
            flush_jitter: self.duration("flush_jitter")?,
            metric_batch_size: size(self, "metric_batch_size")?,
            metric_buffer_limit: size(self, "metric_buffer_limit")?,
        })
    }
}
