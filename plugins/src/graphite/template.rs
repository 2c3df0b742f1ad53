//! Telegraf's graphite templates: turning a dotted path such as
//! `servers.web01.cpu.idle` into a measurement, tags and a field.
//!
//! A template spec is `[filter] template [tag=value,...]`:
//! - the filter is a dotted glob (`servers.*`); the template used for a
//!   path is the one whose filter matches the most leading parts, literal
//!   parts counting before wildcards, the first configured among equals;
//!   a spec without a filter is the default (otherwise `measurement*`);
//! - the template names each part: `measurement`, `field`, a tag key, or
//!   nothing (`..` skips a part); `measurement*` and `field*` take the rest;
//!   several parts of one kind are joined with the separator;
//! - the extra tags are added unless the path sets them.
//!
//! With no measurement found, the whole path is the measurement; with no
//! field, the field is `value`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use globset::{Glob, GlobMatcher};

/// One parsed spec.
#[derive(Debug, Clone)]
struct Template {
    filter: Vec<GlobMatcher>,
    /// How many filter parts are free of wildcards (specificity).
    literal: usize,
    parts: Vec<String>,
    tags: Vec<(String, String)>,
}

/// The templates of one plugin.
#[derive(Debug, Clone)]
pub struct Templates {
    templates: Vec<Template>,
    default: Template,
    separator: String,
}

/// What a path turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub measurement: String,
    pub field: Option<String>,
    pub tags: BTreeMap<String, String>,
}

fn parse_template(spec: &str, filter: Option<&str>, tags: Option<&str>) -> Result<Template> {
    let parts: Vec<String> = spec.split('.').map(str::to_owned).collect();
    let mut seen_star = None;
    for p in &parts {
        if p == "measurement*" || p == "field*" {
            if let Some(other) = seen_star
                && other != p
            {
                bail!("template {spec:?}: `measurement*` and `field*` cannot be combined");
            }
            seen_star = Some(p);
        }
    }
    let (filter, literal) = match filter {
        Some(f) => {
            let mut globs = Vec::new();
            let mut literal = 0;
            for part in f.split('.') {
                if !part.contains(['*', '?', '[']) {
                    literal += 1;
                }
                globs.push(
                    Glob::new(part)
                        .map_err(|e| anyhow::anyhow!("template filter {f:?}: {e}"))?
                        .compile_matcher(),
                );
            }
            (globs, literal)
        }
        None => (Vec::new(), 0),
    };
    let tags = match tags {
        Some(t) => t
            .split(',')
            .map(|kv| {
                kv.split_once('=')
                    .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| anyhow::anyhow!("template tags {t:?}: expected key=value,..."))
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    Ok(Template {
        filter,
        literal,
        parts,
        tags,
    })
}

impl Templates {
    /// Parse specs; `separator` joins parts of one kind.
    pub fn new(specs: &[String], separator: &str) -> Result<Self> {
        let mut templates = Vec::new();
        let mut default = None;
        for (i, spec) in specs.iter().enumerate() {
            let words: Vec<&str> = spec.split_whitespace().collect();
            let t = match words.as_slice() {
                [t] => parse_template(t, None, None)?,
                [a, b] if b.contains('=') => parse_template(a, None, Some(b))?,
                [f, t] => parse_template(t, Some(f), None)?,
                [f, t, tags] => parse_template(t, Some(f), Some(tags))?,
                _ => bail!("templates[{i}]: {spec:?} is not `[filter] template [tags]`"),
            };
            if t.filter.is_empty() {
                if default.is_some() {
                    bail!("templates[{i}]: {spec:?}: only one template may have no filter");
                }
                default = Some(t);
            } else {
                templates.push(t);
            }
        }
        Ok(Self {
            templates,
            default: match default {
                Some(d) => d,
                None => parse_template("measurement*", None, None)?,
            },
            separator: separator.to_owned(),
        })
    }

    /// True when every path maps to itself (no template but the default
    /// `measurement*`): callers can skip [`Templates::apply`].
    pub fn is_identity(&self) -> bool {
        self.templates.is_empty()
            && self.default.tags.is_empty()
            && self.default.parts.len() == 1
            && self.default.parts[0] == "measurement*"
    }

    fn choose(&self, parts: &[&str]) -> &Template {
        let mut best: Option<(&Template, (usize, usize))> = None;
        for t in &self.templates {
            if t.filter.len() > parts.len()
                || !t.filter.iter().zip(parts).all(|(g, p)| g.is_match(p))
            {
                continue;
            }
            let score = (t.filter.len(), t.literal);
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((t, score));
            }
        }
        best.map_or(&self.default, |(t, _)| t)
    }

    /// Apply the matching template to `path`.
    pub fn apply(&self, path: &str) -> Applied {
        let parts: Vec<&str> = path.split('.').collect();
        let t = self.choose(&parts);
        let mut measurement: Vec<&str> = Vec::new();
        let mut field: Vec<&str> = Vec::new();
        let mut tag_parts: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (i, name) in t.parts.iter().enumerate() {
            let Some(&part) = parts.get(i) else { break };
            match name.as_str() {
                "" => {}
                "measurement" => measurement.push(part),
                "measurement*" => {
                    measurement.extend(&parts[i..]);
                    break;
                }
                "field" => field.push(part),
                "field*" => {
                    field.extend(&parts[i..]);
                    break;
                }
                tag => tag_parts.entry(tag).or_default().push(part),
            }
        }
        let mut tags: BTreeMap<String, String> = t.tags.iter().cloned().collect();
        for (k, v) in tag_parts {
            tags.insert(k.to_owned(), v.join(&self.separator));
        }
        let measurement = if measurement.is_empty() {
            path.to_owned()
        } else {
            measurement.join(&self.separator)
        };
        Applied {
            measurement,
            field: (!field.is_empty()).then(|| field.join(&self.separator)),
            tags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(specs: &[&str], sep: &str) -> Templates {
        Templates::new(
            &specs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            sep,
        )
        .unwrap()
    }

    #[test]
    fn telegraf_template_examples() {
        let tm = t(
            &[
                "servers.* .host.measurement.field",
                "measurement.measurement.field* region=us",
            ],
            "_",
        );
        let a = tm.apply("servers.localhost.cpu.idle");
        assert_eq!(a.measurement, "cpu");
        assert_eq!(a.field.as_deref(), Some("idle"));
        assert_eq!(
            a.tags,
            BTreeMap::from([("host".into(), "localhost".into())])
        );
        let a = tm.apply("cpu.load.one.min");
        assert_eq!(a.measurement, "cpu_load");
        assert_eq!(a.field.as_deref(), Some("one_min"));
        assert_eq!(a.tags["region"], "us");
    }

    #[test]
    fn default_is_measurement_star_and_the_most_specific_filter_wins() {
        let tm = t(&[], ".");
        let a = tm.apply("a.b.c");
        assert_eq!((a.measurement.as_str(), a.field), ("a.b.c", None));
        let tm = t(
            &[
                "*.* .measurement",
                "stats.* ..measurement",
                "stats.timers .measurement.field*",
            ],
            ".",
        );
        assert_eq!(tm.apply("stats.gauges.x").measurement, "x");
        let a = tm.apply("stats.timers.lat.p99");
        assert_eq!(a.measurement, "timers");
        assert_eq!(a.field.as_deref(), Some("lat.p99"));
        assert_eq!(tm.apply("other.thing").measurement, "thing");
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            vec!["a b c d"],
            vec!["measurement*.field*"],
            vec!["x", "y"],
            vec!["f t k"],
        ] {
            let specs: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(Templates::new(&specs, ".").is_err(), "{bad:?}");
        }
    }
}
