//! What graft does to a plugin's metrics on their way out of it:
//! name_override, name_prefix, name_suffix, the plugin's `tags` and the
//! global tags (each only where the metric lacks the key), and timestamp
//! rounding to the precision.

use std::collections::BTreeMap;
use std::time::Duration;

use graft_core::Batch;

use crate::config::section::MetricModifiers;

/// Apply a plugin's modifiers and the global tags to `batch`.
pub fn apply(
    batch: &mut Batch,
    m: &MetricModifiers,
    global_tags: &BTreeMap<String, String>,
    precision: Duration,
) {
    if batch.is_empty() {
        return;
    }
    if m.name_override.is_some() || m.name_prefix.is_some() || m.name_suffix.is_some() {
        batch.map_names(|name| {
            let base = m.name_override.as_deref().unwrap_or(name);
            format!(
                "{}{base}{}",
                m.name_prefix.as_deref().unwrap_or(""),
                m.name_suffix.as_deref().unwrap_or("")
            )
        });
    }
    for (k, v) in &m.tags {
        batch.set_tag_if_absent(k, v);
    }
    for (k, v) in global_tags {
        batch.set_tag_if_absent(k, v);
    }
    batch.round_timestamps(precision.as_nanos().min(i64::MAX as u128) as i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    #[test]
    fn metric_tags_beat_plugin_tags_beat_global_tags() {
        let mut b = BatchBuilder::new();
        b.metric("cpu", 1_400_000_000)
            .tag("a", "metric")
            .field("x", 1.0);
        let mut batch = b.finish();
        let m = MetricModifiers {
            name_prefix: Some("p_".into()),
            tags: [("a".into(), "plugin".into()), ("b".into(), "plugin".into())].into(),
            ..Default::default()
        };
        let global = [("b".into(), "global".into()), ("c".into(), "global".into())].into();
        apply(&mut batch, &m, &global, Duration::from_secs(1));
        let m = batch.get(0);
        assert_eq!(m.name(), "p_cpu");
        assert_eq!(
            m.tags().collect::<Vec<_>>(),
            [("a", "metric"), ("b", "plugin"), ("c", "global")]
        );
        assert_eq!(m.timestamp(), 1_000_000_000);
    }
}
