//! `topic`: Telegraf's topic template (`telegraf/{{ .Hostname }}/{{
//! .PluginName }}`), read once and rendered per metric.
//!
//! The placeholders are those Telegraf documents for MQTT topics:
//! `{{ .TopicPrefix }}` (`topic_prefix`), `{{ .Hostname }}`, `{{
//! .PluginName }}` (the metric's name) and `{{ .Tag "key" }}` (a tag's
//! value). Go template functions (Sprig) are not offered; a template that
//! uses one is refused. As in Telegraf, empty path elements are dropped (a
//! missing tag removes its element), and a template whose fixed text holds
//! `+` or `#` is refused.

use anyhow::{Result, bail};
use graft_core::MetricRef;

use crate::mqtt::MAX_TOPIC_SIZE;

/// Telegraf's default `topic`.
pub const DEFAULT: &str = "telegraf/{{ .Hostname }}/{{ .PluginName }}";

/// The topic of Telegraf's older outputs, which had only `topic_prefix`.
pub const LEGACY: &str = "{{ .TopicPrefix }}/{{ .Hostname }}/{{ .PluginName }}";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(String),
    Name,
    Tag(String),
}

/// A parsed `topic`.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a metric has no topic to go to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("the topic is empty")]
    Empty,
    #[error("the topic {0:?} holds a wildcard (+ or #) or a NUL")]
    Forbidden(String),
    #[error("the topic is {0} bytes long; MQTT allows 65535")]
    TooLong(usize),
}

impl Template {
    /// Read `text`; `prefix` and `hostname` are fixed for the plugin's
    /// life. An empty template is the metric's name, as in Telegraf.
    pub fn parse(text: &str, prefix: &str, hostname: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self {
                parts: vec![Part::Name],
            });
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            push_text(&mut parts, &rest[..open])?;
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                bail!("topic: {text:?}: a \"{{{{\" is not closed");
            };
            parts.push(action(after[..close].trim(), prefix, hostname, text)?);
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            bail!("topic: {text:?}: a \"}}}}\" was not opened");
        }
        push_text(&mut parts, rest)?;
        Ok(Self { parts })
    }

    /// The topic of metric `m`: the template rendered, empty path elements
    /// dropped.
    pub fn render(&self, m: MetricRef<'_>, out: &mut String) -> Result<(), TopicError> {
        out.clear();
        let mut raw = String::with_capacity(64);
        for p in &self.parts {
            match p {
                Part::Text(t) | Part::Value(t) => raw.push_str(t),
                Part::Name => raw.push_str(m.name()),
                Part::Tag(k) => raw.push_str(m.tag(k).unwrap_or("")),
            }
        }
        for segment in raw.split('/').filter(|s| !s.is_empty()) {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(segment);
        }
        if out.is_empty() {
            return Err(TopicError::Empty);
        }
        if out.contains(['+', '#', '\0']) {
            return Err(TopicError::Forbidden(out.clone()));
        }
        if out.len() > MAX_TOPIC_SIZE {
            return Err(TopicError::TooLong(out.len()));
        }
        Ok(())
    }

    /// Whether every metric goes to the same topic (no name or tag in it).
    pub fn is_fixed(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, Part::Text(_) | Part::Value(_)))
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) -> Result<()> {
    if let Some(c) = text.chars().find(|c| matches!(c, '+' | '#')) {
        bail!("topic: found forbidden character {c} in the topic name {text:?}");
    }
    if !text.is_empty() {
        parts.push(Part::Text(text.to_owned()));
    }
    Ok(())
}

fn action(inner: &str, prefix: &str, hostname: &str, text: &str) -> Result<Part> {
    let inner = inner.trim_start_matches('-').trim_end_matches('-').trim();
    Ok(match inner {
        ".TopicPrefix" => Part::Value(prefix.to_owned()),
        ".Hostname" => Part::Value(hostname.to_owned()),
        ".PluginName" => Part::Name,
        _ => match inner.strip_prefix(".Tag") {
            Some(arg) if arg.starts_with([' ', '\t']) => Part::Tag(quoted(arg.trim(), text)?),
            _ => bail!(
                "topic: {text:?}: {{{{ {inner} }}}} is not supported; use .TopicPrefix, .Hostname, .PluginName or .Tag \"key\""
            ),
        },
    })
}

/// A Go string literal: `"key"` (with `\"` and `\\`) or `` `key` ``.
fn quoted(arg: &str, text: &str) -> Result<String> {
    if let Some(raw) = arg.strip_prefix('`').and_then(|a| a.strip_suffix('`')) {
        return Ok(raw.to_owned());
    }
    let bad = || anyhow::anyhow!("topic: {text:?}: .Tag takes one quoted tag key, not {arg}");
    let body = arg
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .ok_or_else(bad)?;
    let mut key = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => key.push(chars.next().ok_or_else(bad)?),
            '"' => return Err(bad()),
            c => key.push(c),
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use graft_core::BatchBuilder;

    use super::*;

    fn render(template: &str, tags: &[(&str, &str)]) -> Result<String, TopicError> {
        let t = Template::parse(template, "prefix", "web01").unwrap();
        let mut b = BatchBuilder::new();
        {
            let mut m = b.metric("mem", 1);
            for (k, v) in tags {
                m.tag(k, v);
            }
            m.field("used", 1.0);
        }
        let batch = b.finish();
        let mut out = String::new();
        t.render(batch.get(0), &mut out).map(|()| out)
    }

    #[test]
    fn telegraf_placeholders_render() {
        assert_eq!(render(DEFAULT, &[]).unwrap(), "telegraf/web01/mem");
        assert_eq!(
            render(
                "{{ .TopicPrefix }}/{{ .Tag \"tag1\" }}",
                &[("tag1", "value1")]
            )
            .unwrap(),
            "prefix/value1"
        );
        assert_eq!(
            render("a/{{.Tag `k`}}/{{-.PluginName-}}", &[("k", "v")]).unwrap(),
            "a/v/mem"
        );
        assert_eq!(render("this/is/a/topic", &[]).unwrap(), "this/is/a/topic");
        assert_eq!(render("", &[]).unwrap(), "mem", "empty: the metric name");
    }

    #[test]
    fn missing_tags_and_empty_elements_are_dropped() {
        assert_eq!(
            render("{{ .TopicPrefix }}/{{ .Tag \"not-a-tag\" }}", &[]).unwrap(),
            "prefix"
        );
        assert_eq!(
            render("double//slashes//are//ignored", &[]).unwrap(),
            "double/slashes/are/ignored"
        );
    }

    #[test]
    fn bad_templates_are_refused_naming_the_key() {
        for bad in [
            "this/is/#/invalid",
            "this/is/+/invalid",
            "a/{{ .Hostname",
            "a/{{ upper .Hostname }}",
            "a/{{ .Tag }}",
            "a/{{ .Tag key }}",
            "a/}}",
        ] {
            let e = Template::parse(bad, "", "h").unwrap_err().to_string();
            assert!(e.starts_with("topic:"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_tag_value_cannot_make_a_wildcard() {
        assert!(matches!(
            render("t/{{ .Tag \"k\" }}", &[("k", "a+b")]),
            Err(TopicError::Forbidden(_))
        ));
        assert_eq!(
            render("{{ .Tag \"k\" }}", &[]),
            Err(TopicError::Empty),
            "nothing left"
        );
        let long = "x".repeat(70_000);
        assert!(matches!(
            render("{{ .Tag \"k\" }}", &[("k", &long)]),
            Err(TopicError::TooLong(70_000))
        ));
    }
}
