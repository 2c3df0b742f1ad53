//! Metrics as Graphite paths, exactly as Telegraf's graphite serializer
//! writes them: one `path value timestamp` per numeric field, the path from
//! a template (`host.tags.measurement.field` by default; `templates` pick
//! one per measurement glob), dots in tag values turned into `_`, a field
//! named `value` left out of the path, booleans as 1/0, strings and
//! NaN/Inf skipped, and Telegraf's strict sanitizing (`/ @ *` → `-`, `\`
//! dropped, `..` → `.`, anything else outside `[a-zA-Z0-9-:._=\p{L}]` →
//! `_`). With `graphite_tag_support`, paths carry Graphite tags
//! (`name;k=v`), sanitized strictly or in carbon's "compatible" way.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use globset::{Glob, GlobMatcher};
use graft_core::{FieldRef, MetricRef};

/// `graphite_tag_sanitize_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanitizeMode {
    Strict,
    Compatible,
}

/// Serializer settings, named as Telegraf names them.
#[derive(Debug, Clone)]
pub struct Options {
    pub prefix: String,
    pub template: String,
    pub templates: Vec<String>,
    pub tag_support: bool,
    pub sanitize_mode: SanitizeMode,
    pub separator: String,
    /// `graphite_strict_sanitize_regex`: characters to replace with `_`.
    pub strict_regex: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            template: DEFAULT_TEMPLATE.into(),
            templates: Vec::new(),
            tag_support: false,
            sanitize_mode: SanitizeMode::Strict,
            separator: ".".into(),
            strict_regex: None,
        }
    }
}

/// Telegraf's default template.
pub const DEFAULT_TEMPLATE: &str = "host.tags.measurement.field";

/// One line to send: the path, the value as text, the timestamp in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub path: String,
    pub value: f64,
    pub text: String,
    pub timestamp: i64,
}

/// The serializer.
#[derive(Debug)]
pub struct Serializer {
    options: Options,
    templates: Vec<(GlobMatcher, String)>,
    strict: Option<regex::Regex>,
}

impl Serializer {
    pub fn new(mut options: Options) -> Result<Self> {
        let mut templates = Vec::new();
        for (i, t) in options.templates.iter().enumerate() {
            let parts: Vec<&str> = t.split_whitespace().collect();
            match parts.as_slice() {
                [] => bail!("templates[{i}]: empty template"),
                [only] => options.template = (*only).to_owned(),
                [filter, template] => templates.push((
                    Glob::new(filter)
                        .map_err(|e| anyhow::anyhow!("templates[{i}]: {e}"))?
                        .compile_matcher(),
                    (*template).to_owned(),
                )),
                _ => bail!("templates[{i}]: {t:?} is not `[filter] template`"),
            }
        }
        if options.template.is_empty() {
            options.template = DEFAULT_TEMPLATE.into();
        }
        if options.separator.is_empty() {
            options.separator = ".".into();
        }
        let strict = match &options.strict_regex {
            Some(r) if !r.is_empty() => Some(
                regex::Regex::new(r)
                    .map_err(|e| anyhow::anyhow!("graphite_strict_sanitize_regex: {e}"))?,
            ),
            _ => None,
        };
        Ok(Self {
            options,
            templates,
            strict,
        })
    }

    /// The points of one metric.
    pub fn points(&self, m: MetricRef<'_>, out: &mut Vec<Point>) {
        let ts = m.timestamp().div_euclid(1_000_000_000);
        let numeric = m.fields().filter_map(|(k, v)| {
            let (value, text) = match v {
                FieldRef::Str(_) => return None,
                FieldRef::Bool(b) => (f64::from(u8::from(b)), if b { "1" } else { "0" }.to_owned()),
                FieldRef::Int(i) => (i as f64, i.to_string()),
                FieldRef::Uint(u) => (u as f64, u.to_string()),
                FieldRef::Float(f) if !f.is_finite() => return None,
                FieldRef::Float(f) => (f, format_float(f)),
            };
            Some((k, value, text))
        });
        if self.options.tag_support {
            for (field, value, text) in numeric {
                out.push(Point {
                    path: self.tagged_path(m, field),
                    value,
                    text,
                    timestamp: ts,
                });
            }
            return;
        }
        let template = self
            .templates
            .iter()
            .find(|(g, _)| g.is_match(m.name()))
            .map_or(self.options.template.as_str(), |(_, t)| t.as_str());
        let Some(bucket) = bucket(m, template, &self.options.prefix) else {
            return;
        };
        for (field, value, text) in numeric {
            out.push(Point {
                path: self.strict_sanitize(&insert_field(&bucket, field)),
                value,
                text,
                timestamp: ts,
            });
        }
    }

    fn tagged_path(&self, m: MetricRef<'_>, field: &str) -> String {
        let mut tags: Vec<String> = m
            .tags()
            .map(|(k, v)| {
                let k = if k == "name" { "_name" } else { k };
                match self.options.sanitize_mode {
                    SanitizeMode::Compatible => compatible(k, v),
                    SanitizeMode::Strict => self.strict_sanitize(&format!("{k}={v}")),
                }
            })
            .collect();
        tags.sort();
        let sep = &self.options.separator;
        let mut path = String::new();
        if !self.options.prefix.is_empty() {
            path.push_str(&self.options.prefix);
            path.push_str(sep);
        }
        path.push_str(m.name());
        if field != "value" {
            path.push_str(sep);
            path.push_str(field);
        }
        let mut path = self.strict_sanitize(&path);
        for t in tags {
            path.push(';');
            path.push_str(&t);
        }
        path
    }

    fn strict_sanitize(&self, s: &str) -> String {
        let hyphened: String = s
            .chars()
            .filter(|&c| c != '\\')
            .map(|c| if matches!(c, '/' | '@' | '*') { '-' } else { c })
            .collect();
        let dotted = hyphened.replace("..", ".");
        match &self.strict {
            Some(r) => r.replace_all(&dotted, "_").into_owned(),
            None => dotted
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric()
                        || matches!(c, '-' | ':' | '.' | '_' | '=')
                        || c.is_alphabetic()
                    {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest, never an exponent.
pub fn format_float(f: f64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{f}");
    s
}

/// The path of a metric before its field is inserted (`FIELDNAME` marks
/// where), or `None` when the template yields nothing.
fn bucket(m: MetricRef<'_>, template: &str, prefix: &str) -> Option<String> {
    let mut tags: Vec<(&str, &str)> = m.tags().collect();
    let mut out: Vec<String> = Vec::new();
    for part in template.split('.') {
        match part {
            "measurement" => out.push(m.name().to_owned()),
            "tags" => out.push("\u{0}TAGS".into()),
            "field" => out.push("\u{0}FIELDNAME".into()),
            key => {
                if let Some(i) = tags.iter().position(|(k, _)| *k == key) {
                    out.push(tags[i].1.replace('.', "_"));
                    tags.remove(i);
                }
            }
        }
    }
    if let Some(slot) = out.iter_mut().find(|p| *p == "\u{0}TAGS") {
        // Tags are sorted by key already.
        *slot = tags
            .iter()
            .map(|(_, v)| v.replace('.', "_"))
            .collect::<Vec<_>>()
            .join(".");
    }
    if out.is_empty() {
        return None;
    }
    let joined = out.join(".");
    Some(if prefix.is_empty() {
        joined
    } else {
        format!("{prefix}.{joined}")
    })
}

/// Put the field name into the bucket; a field named `value` is left out.
fn insert_field(bucket: &str, field: &str) -> String {
    if field == "value" {
        bucket
            .replace(".\u{0}FIELDNAME", "")
            .replace("\u{0}FIELDNAME.", "")
            .replace("\u{0}FIELDNAME", "")
    } else {
        bucket.replacen("\u{0}FIELDNAME", field, 1)
    }
}

/// Carbon's tag rules: names without `;!^=` (nor other punctuation outside
/// Telegraf's allowed ranges), values without `;`, no leading `~`.
fn compatible(name: &str, value: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            let ok = c == ' '
                || ('"'..=':').contains(&c)
                || c == '<'
                || ('>'..=']').contains(&c)
                || c == '_'
                || ('a'..='~').contains(&c)
                || c.is_alphabetic();
            if ok { c } else { '_' }
        })
        .collect();
    let value: String = value
        .chars()
        .map(|c| {
            let ok = (' '..=':').contains(&c) || ('<'..='~').contains(&c) || c.is_alphabetic();
            if ok { c } else { '_' }
        })
        .collect();
    format!("{name}={}", value.trim_start_matches('~'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    fn paths(opts: Options, build: impl FnOnce(&mut BatchBuilder)) -> Vec<String> {
        let s = Serializer::new(opts).unwrap();
        let mut b = BatchBuilder::new();
        build(&mut b);
        let batch = b.finish();
        let mut out = Vec::new();
        for m in batch.iter() {
            s.points(m, &mut out);
        }
        out.iter()
            .map(|p| format!("{} {} {}", p.path, p.text, p.timestamp))
            .collect()
    }

    #[test]
    fn telegraf_default_template() {
        let p = paths(Options::default(), |b| {
            b.metric("cpu", 1_500_000_000_999_999_999)
                .tag("host", "web.01")
                .tag("cpu", "cpu0")
                .tag("dc", "x/y")
                .field("usage_idle", 91.5)
                .field("value", 3i64)
                .field("ok", true)
                .field("s", FieldRef::Str("skip"));
        });
        assert_eq!(
            p,
            [
                "web_01.cpu0.x-y.cpu.usage_idle 91.5 1500000000",
                "web_01.cpu0.x-y.cpu 3 1500000000",
                "web_01.cpu0.x-y.cpu.ok 1 1500000000",
            ]
        );
    }

    #[test]
    fn templates_prefix_and_tag_support() {
        let opts = Options {
            prefix: "graft".into(),
            templates: vec![
                "cpu tags.measurement.field".into(),
                "host.measurement.field".into(),
            ],
            ..Options::default()
        };
        let p = paths(opts, |b| {
            b.metric("cpu", 0).tag("host", "h").field("x", 1.0);
            b.metric("mem", 0)
                .tag("host", "h")
                .tag("dc", "a")
                .field("used", 2.0);
        });
        assert_eq!(p, ["graft.h.cpu.x 1 0", "graft.h.mem.used 2 0"]);

        let opts = Options {
            tag_support: true,
            ..Options::default()
        };
        let p = paths(opts, |b| {
            b.metric("cpu", 0)
                .tag("name", "x")
                .tag("host", "a b")
                .field("value", 1.0)
                .field("idle", 2.5);
        });
        assert_eq!(
            p,
            [
                "cpu;_name=x;host=a_b 1 0",
                "cpu.idle;_name=x;host=a_b 2.5 0"
            ]
        );
        let opts = Options {
            tag_support: true,
            sanitize_mode: SanitizeMode::Compatible,
            ..Options::default()
        };
        let p = paths(opts, |b| {
            b.metric("cpu", 0).tag("k!", "~v;w").field("idle", 1.0);
        });
        assert_eq!(p, ["cpu.idle;k_=v_w 1 0"]);
    }
}
