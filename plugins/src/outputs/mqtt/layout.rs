//! `layout`: how a batch becomes MQTT messages, as Telegraf lays them out.
//! `non-batch` (the default): one message per metric, on its topic;
//! `batch`: one message per topic with all of the batch's metrics for it;
//! `field`: one message per field, on the metric's topic and the field's
//! key, holding only the value as text (`data_format` does not apply).
//! Telegraf's `homie-v4` is refused.
//!
//! A metric that cannot go out (its topic renders empty or with a
//! wildcard, the data format cannot write it, its message would pass
//! MQTT's size limit) is rejected, the others go on.

use std::collections::HashMap;

use anyhow::{Result, bail};
use graft_core::{Batch, BatchBuilder, FieldRef, MetricRef};

use super::topic::Template;
use crate::format::Serializer;
use crate::mqtt::{MAX_PACKET_SIZE, MAX_TOPIC_SIZE};

/// `layout` (and Telegraf's older `batch = true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    NonBatch,
    Batch,
    Field,
}

impl Layout {
    /// From `layout` and the deprecated `batch`.
    pub fn parse(layout: &str, batch: bool) -> Result<Self> {
        let layout = match layout {
            "" if batch => Self::Batch,
            "" | "non-batch" => Self::NonBatch,
            "batch" => Self::Batch,
            "field" => Self::Field,
            "homie-v4" => bail!(
                "layout: \"homie-v4\" is not supported by graft; use \"non-batch\", \"batch\" or \"field\""
            ),
            other => bail!("layout: {other:?} is not \"non-batch\", \"batch\" or \"field\""),
        };
        if batch && layout != Self::Batch {
            bail!("batch: `batch = true` asks for layout \"batch\", but layout is set otherwise");
        }
        Ok(layout)
    }
}

/// The messages of one batch and the fate of its metrics.
#[derive(Debug, Default)]
pub struct Messages {
    /// (topic, payload), in the batch's order.
    pub list: Vec<(String, Vec<u8>)>,
    /// Indices of the metrics these messages carry.
    pub accepted: Vec<u32>,
    /// Indices of the metrics that cannot go out, with the first reason.
    pub rejected: Vec<u32>,
    pub first_error: Option<String>,
}

impl Messages {
    fn reject(&mut self, i: usize, why: impl std::fmt::Display) {
        self.rejected.push(i as u32);
        if self.first_error.is_none() {
            self.first_error = Some(why.to_string());
        }
    }

    /// Add a message unless it passes MQTT's packet size.
    fn push(&mut self, topic: String, payload: Vec<u8>, metrics: &[usize]) {
        // Fixed header (at most 5 bytes), topic length, packet id.
        if topic.len() + payload.len() + 9 > MAX_PACKET_SIZE {
            for &i in metrics {
                self.reject(i, "the message would pass MQTT's 256 MiB packet limit");
            }
            return;
        }
        self.accepted.extend(metrics.iter().map(|&i| i as u32));
        self.list.push((topic, payload));
    }
}

/// Lay `batch` out as messages.
pub fn messages(
    layout: Layout,
    batch: &Batch,
    topic: &Template,
    serializer: &Serializer,
) -> Messages {
    let mut out = Messages::default();
    let mut topics = Vec::with_capacity(batch.len());
    let mut scratch = String::new();
    for m in batch.iter() {
        match topic.render(m, &mut scratch) {
            Ok(()) => topics.push(Some(scratch.clone())),
            Err(e) => {
                out.reject(m.index(), e);
                topics.push(None);
            }
        }
    }
    match layout {
        Layout::NonBatch => {
            for (m, t) in batch.iter().zip(topics) {
                let Some(t) = t else { continue };
                let mut payload = Vec::with_capacity(128);
                match serializer.metric(m, &mut payload) {
                    Ok(()) => out.push(t, payload, &[m.index()]),
                    Err(e) => out.reject(m.index(), e),
                }
            }
        }
        Layout::Batch => by_topic(batch, topics, serializer, &mut out),
        Layout::Field => {
            for (m, t) in batch.iter().zip(topics) {
                let Some(t) = t else { continue };
                fields(m, &t, &mut out);
            }
        }
    }
    out
}

/// `batch`: the metrics of each topic in one message, topics in the order
/// their first metric came.
fn by_topic(batch: &Batch, topics: Vec<Option<String>>, s: &Serializer, out: &mut Messages) {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, t) in topics.into_iter().enumerate() {
        let Some(t) = t else { continue };
        let g = *index.entry(t.clone()).or_insert_with(|| {
            groups.push((t, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    for (topic, mut members) in groups {
        let mut payload = Vec::new();
        if s.batch(&subset(batch, &members), &mut payload) > 0 {
            // Some could not be written: find which, and write the rest.
            let mut one = Vec::new();
            members.retain(|&i| {
                one.clear();
                match s.metric(batch.get(i), &mut one) {
                    Ok(()) => true,
                    Err(e) => {
                        out.reject(i, e);
                        false
                    }
                }
            });
            payload.clear();
            if members.is_empty() {
                continue;
            }
            s.batch(&subset(batch, &members), &mut payload);
        }
        out.push(topic, payload, &members);
    }
}

fn subset(batch: &Batch, members: &[usize]) -> Batch {
    if members.len() == batch.len() {
        return batch.clone();
    }
    let mut b = BatchBuilder::new();
    for &i in members {
        b.push(batch.get(i));
    }
    b.finish()
}

/// `field`: each field on `topic/<field key>`, its value as text.
fn fields(m: MetricRef<'_>, topic: &str, out: &mut Messages) {
    let mut list = Vec::new();
    for (key, value) in m.fields() {
        let t = format!("{topic}/{key}");
        if key.is_empty() || key.contains(['+', '#', '\0']) || t.len() > MAX_TOPIC_SIZE {
            out.reject(
                m.index(),
                format!("field {key:?} cannot be a topic element"),
            );
            return;
        }
        let text = match value {
            FieldRef::Float(x) => x.to_string(),
            FieldRef::Int(x) => x.to_string(),
            FieldRef::Uint(x) => x.to_string(),
            FieldRef::Bool(x) => x.to_string(),
            FieldRef::Str(s) => s.to_owned(),
        };
        list.push((t, text.into_bytes()));
    }
    let n = list.len();
    for (k, (t, payload)) in list.into_iter().enumerate() {
        // The metric counts once, with its last message.
        let carried: &[usize] = if k + 1 == n { &[m.index()] } else { &[] };
        out.push(t, payload, carried);
    }
}

#[cfg(test)]
mod tests {
    use graft_core::FieldRef;

    use super::*;
    use crate::format::SerializerConfig;

    fn serializer(text: &str) -> Serializer {
        crate::config::parse::<SerializerConfig>(toml::from_str(text).unwrap())
            .unwrap()
            .build()
            .unwrap()
    }

    fn batch() -> Batch {
        let mut b = BatchBuilder::new();
        b.metric("cpu", 1_000_000_000)
            .tag("host", "a")
            .field("idle", 90.5)
            .field("n", 3i64);
        b.metric("cpu", 2_000_000_000)
            .tag("host", "b")
            .field("idle", 80.0);
        b.metric("mem", 3_000_000_000)
            .tag("host", "a+b")
            .field("used", 1i64);
        b.metric("mem", 4_000_000_000)
            .tag("host", "c")
            .field("text", FieldRef::Str("x y"));
        b.finish()
    }

    fn template(text: &str) -> Template {
        Template::parse(text, "", "h").unwrap()
    }

    #[test]
    fn non_batch_is_one_message_per_metric_and_a_bad_topic_rejects_only_its_metric() {
        let m = messages(
            Layout::NonBatch,
            &batch(),
            &template("t/{{ .PluginName }}/{{ .Tag \"host\" }}"),
            &serializer(""),
        );
        let topics: Vec<&str> = m.list.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(topics, ["t/cpu/a", "t/cpu/b", "t/mem/c"]);
        assert_eq!(m.list[0].1, b"cpu,host=a idle=90.5,n=3i 1000000000\n");
        assert_eq!(m.accepted, [0, 1, 3]);
        assert_eq!(m.rejected, [2], "its topic would hold a +");
        assert!(m.first_error.unwrap().contains("wildcard"));
    }

    #[test]
    fn batch_is_one_message_per_topic_in_the_order_topics_first_came() {
        let m = messages(
            Layout::Batch,
            &batch(),
            &template("t/{{ .PluginName }}"),
            &serializer("data_format = \"json\""),
        );
        assert_eq!(m.list.len(), 2);
        assert_eq!(m.list[0].0, "t/cpu");
        let v: serde_json::Value = serde_json::from_slice(&m.list[0].1).unwrap();
        assert_eq!(v["metrics"].as_array().unwrap().len(), 2);
        assert_eq!(v["metrics"][1]["tags"]["host"], "b");
        assert_eq!(m.list[1].0, "t/mem");
        let mut accepted = m.accepted.clone();
        accepted.sort_unstable();
        assert_eq!(accepted, [0, 1, 2, 3]);
        assert!(m.rejected.is_empty());
    }

    #[test]
    fn field_is_one_message_per_field_with_the_value_as_text() {
        let m = messages(
            Layout::Field,
            &batch(),
            &template("t/{{ .Tag \"host\" }}"),
            &serializer(""),
        );
        let got: Vec<(&str, &[u8])> = m
            .list
            .iter()
            .map(|(t, p)| (t.as_str(), p.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("t/a/idle", &b"90.5"[..]),
                ("t/a/n", b"3"),
                ("t/b/idle", b"80"),
                ("t/c/text", b"x y"),
            ]
        );
        assert_eq!(m.accepted, [0, 1, 3], "each metric once");
        assert_eq!(m.rejected, [2]);
    }

    #[test]
    fn layouts_are_read_as_telegraf_names_them() {
        assert_eq!(Layout::parse("", false).unwrap(), Layout::NonBatch);
        assert_eq!(Layout::parse("", true).unwrap(), Layout::Batch);
        assert_eq!(Layout::parse("field", false).unwrap(), Layout::Field);
        assert!(
            Layout::parse("homie-v4", false)
                .unwrap_err()
                .to_string()
                .starts_with("layout:")
        );
        assert!(Layout::parse("field", true).is_err());
    }
}
