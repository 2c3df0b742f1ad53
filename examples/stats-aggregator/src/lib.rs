//! Example aggregator: min, max, mean and count of every numeric field, per
//! series, over each period (Telegraf's `basicstats` naming: `usage_min`...).

use std::collections::BTreeMap;

use graft_sdk::{Aggregator, Batch, BatchBuilder, FromConfig, PluginError};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Only these fields (all numeric fields when empty).
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Clone, Copy)]
struct Stats {
    min: f64,
    max: f64,
    sum: f64,
    count: u64,
}

/// Series key: name and tags, sorted, so the output order is stable.
type Series = (String, Vec<(String, String)>);

struct BasicStats {
    config: Config,
    series: BTreeMap<Series, (i64, BTreeMap<String, Stats>)>,
}

impl FromConfig for BasicStats {
    type Config = Config;

    fn from_config(config: Config) -> Result<Self, PluginError> {
        Ok(BasicStats {
            config,
            series: BTreeMap::new(),
        })
    }
}

impl Aggregator for BasicStats {
    fn add(&mut self, batch: Batch) -> Result<(), PluginError> {
        for m in batch.iter() {
            let key = (
                m.name().to_owned(),
                m.tags()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            );
            let (last, fields) = self.series.entry(key).or_default();
            *last = (*last).max(m.timestamp());
            for (name, value) in m.fields() {
                let wanted =
                    self.config.fields.is_empty() || self.config.fields.iter().any(|f| f == name);
                let Some(x) = value.as_f64().filter(|_| wanted) else {
                    continue;
                };
                let s = fields.entry(name.to_owned()).or_insert(Stats {
                    min: x,
                    max: x,
                    sum: 0.0,
                    count: 0,
                });
                s.min = s.min.min(x);
                s.max = s.max.max(x);
                s.sum += x;
                s.count += 1;
            }
        }
        Ok(())
    }

    fn push(&mut self) -> Batch {
        let mut b = BatchBuilder::new();
        for ((name, tags), (timestamp, fields)) in &self.series {
            let mut m = b.metric(name, *timestamp);
            for (k, v) in tags {
                m.tag(k, v);
            }
            for (field, s) in fields {
                m.field(&format!("{field}_min"), s.min)
                    .field(&format!("{field}_max"), s.max)
                    .field(&format!("{field}_mean"), s.sum / s.count as f64)
                    .field(&format!("{field}_count"), s.count);
            }
        }
        b.finish()
    }

    fn reset(&mut self) {
        self.series.clear();
    }
}

graft_sdk::export_aggregator!(BasicStats);
