//! Telegraf's metric selectors and modifiers, applied by the host to every
//! plugin so that WASM plugins get them for free.
//!
//! Selection: `namepass` → `namedrop` → `tagpass` (a metric passes when any
//! listed tag matches any of its patterns) → `tagdrop`. Modification:
//! `fieldinclude` / `fieldexclude` (old names `fieldpass` / `fielddrop`),
//! then `taginclude` / `tagexclude`; a metric left without fields is
//! dropped. Patterns are globs (`*`, `?`, `[abc]`, `{a,b}`);
//! `namepass_separator` / `namedrop_separator` make `*` stop at those
//! characters.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use graft_core::{Batch, MetricRef};
use serde::Deserialize;

use crate::config::error::{ConfigError, from_table};
use crate::config::options::{OptionTable, take_keys};

/// A list of glob patterns.
#[derive(Clone, Debug)]
pub struct Patterns {
    set: GlobSet,
    separators: Vec<char>,
    source: Vec<String>,
}

impl Patterns {
    /// Compile `patterns`; with `separators`, `*` and `?` do not match them.
    pub fn new(patterns: &[String], separators: &str) -> Result<Self> {
        let separators: Vec<char> = separators.chars().collect();
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let p = Self::map_separators(p, &separators);
            let glob = GlobBuilder::new(&p)
                .literal_separator(!separators.is_empty())
                .backslash_escape(true)
                .build()
                .with_context(|| format!("invalid pattern {p:?}"))?;
            b.add(glob);
        }
        Ok(Self {
            set: b.build()?,
            separators,
            source: patterns.to_vec(),
        })
    }

    fn map_separators(s: &str, separators: &[char]) -> String {
        if separators.is_empty() {
            return s.to_owned();
        }
        s.chars()
            .map(|c| if separators.contains(&c) { '/' } else { c })
            .collect()
    }

    /// Whether `s` matches any pattern.
    pub fn matches(&self, s: &str) -> bool {
        if self.separators.is_empty() {
            self.set.is_match(s)
        } else {
            self.set.is_match(Self::map_separators(s, &self.separators))
        }
    }

    /// The patterns as written.
    pub fn source(&self) -> &[String] {
        &self.source
    }
}

/// Which metrics a plugin sees and what of them.
#[derive(Clone, Debug, Default)]
pub struct MetricFilter {
    namepass: Option<Patterns>,
    namedrop: Option<Patterns>,
    tagpass: Vec<(String, Patterns)>,
    tagdrop: Vec<(String, Patterns)>,
    fieldinclude: Option<Patterns>,
    fieldexclude: Option<Patterns>,
    taginclude: Option<Patterns>,
    tagexclude: Option<Patterns>,
}

/// The keys [`MetricFilter::take`] reads from a section.
pub const KEYS: &[&str] = &[
    "namepass",
    "namepass_separator",
    "namedrop",
    "namedrop_separator",
    "tagpass",
    "tagdrop",
    "fieldinclude",
    "fieldexclude",
    "fieldpass",
    "fielddrop",
    "taginclude",
    "tagexclude",
];

/// The selector and modifier keys of a section, as written. Every pattern
/// list defaults to none (no selection, no change).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterTable {
    /// `namepass`: only metrics whose name matches pass.
    pub namepass: Option<Vec<String>>,
    /// `namepass_separator` (default `""`): characters `*` does not cross in
    /// `namepass`.
    pub namepass_separator: Option<String>,
    /// `namedrop`: metrics whose name matches are dropped.
    pub namedrop: Option<Vec<String>>,
    /// `namedrop_separator` (default `""`): as `namepass_separator`.
    pub namedrop_separator: Option<String>,
    /// `[tagpass]`: tag = [patterns]; a metric passes when any matches.
    pub tagpass: Option<BTreeMap<String, Vec<String>>>,
    /// `[tagdrop]`: tag = [patterns]; a metric is dropped when any matches.
    pub tagdrop: Option<BTreeMap<String, Vec<String>>>,
    /// `fieldinclude`: only matching fields are kept.
    pub fieldinclude: Option<Vec<String>>,
    /// `fieldexclude`: matching fields are removed.
    pub fieldexclude: Option<Vec<String>>,
    /// `fieldpass`: the old name of `fieldinclude`.
    pub fieldpass: Option<Vec<String>>,
    /// `fielddrop`: the old name of `fieldexclude`.
    pub fielddrop: Option<Vec<String>>,
    /// `taginclude`: only matching tags are kept.
    pub taginclude: Option<Vec<String>>,
    /// `tagexclude`: matching tags are removed.
    pub tagexclude: Option<Vec<String>>,
}

impl OptionTable for FilterTable {
    const KEYS: &'static [&'static str] = KEYS;
}

fn compile(
    list: Option<Vec<String>>,
    key: &str,
    sep: &str,
) -> Result<Option<Patterns>, ConfigError> {
    list.map(|l| Patterns::new(&l, sep).map_err(|e| ConfigError::key(key, format!("{e:#}"))))
        .transpose()
}

fn compile_tags(
    rules: Option<BTreeMap<String, Vec<String>>>,
    key: &str,
) -> Result<Vec<(String, Patterns)>, ConfigError> {
    rules
        .unwrap_or_default()
        .into_iter()
        .map(|(tag, list)| {
            let p = Patterns::new(&list, "")
                .map_err(|e| ConfigError::key(format!("{key}.{tag}"), format!("{e:#}")))?;
            Ok((tag, p))
        })
        .collect()
}

impl MetricFilter {
    /// Take the selector and modifier keys out of a plugin table.
    pub fn take(table: &mut toml::Table) -> Result<Self, ConfigError> {
        Self::new(from_table(take_keys::<FilterTable>(table))?)
    }

    /// Compile the patterns of `t`.
    pub fn new(t: FilterTable) -> Result<Self, ConfigError> {
        if t.fieldinclude.is_some() && t.fieldpass.is_some() {
            return Err(ConfigError::key(
                "fieldpass",
                "`fieldpass` is the old name of `fieldinclude`; use only one",
            ));
        }
        if t.fieldexclude.is_some() && t.fielddrop.is_some() {
            return Err(ConfigError::key(
                "fielddrop",
                "`fielddrop` is the old name of `fieldexclude`; use only one",
            ));
        }
        let namepass_separator = t.namepass_separator.unwrap_or_default();
        let namedrop_separator = t.namedrop_separator.unwrap_or_default();
        Ok(Self {
            namepass: compile(t.namepass, "namepass", &namepass_separator)?,
            namedrop: compile(t.namedrop, "namedrop", &namedrop_separator)?,
            tagpass: compile_tags(t.tagpass, "tagpass")?,
            tagdrop: compile_tags(t.tagdrop, "tagdrop")?,
            fieldinclude: compile(t.fieldinclude.or(t.fieldpass), "fieldinclude", "")?,
            fieldexclude: compile(t.fieldexclude.or(t.fielddrop), "fieldexclude", "")?,
            taginclude: compile(t.taginclude, "taginclude", "")?,
            tagexclude: compile(t.tagexclude, "tagexclude", "")?,
        })
    }

    /// Whether any selector is set.
    pub fn selects(&self) -> bool {
        self.namepass.is_some()
            || self.namedrop.is_some()
            || !self.tagpass.is_empty()
            || !self.tagdrop.is_empty()
    }

    /// Whether any modifier is set.
    pub fn modifies(&self) -> bool {
        self.fieldinclude.is_some()
            || self.fieldexclude.is_some()
            || self.taginclude.is_some()
            || self.tagexclude.is_some()
    }

    /// Whether a metric passes the selectors.
    pub fn select(&self, m: MetricRef<'_>) -> bool {
        let name = m.name();
        if self.namepass.as_ref().is_some_and(|p| !p.matches(name)) {
            return false;
        }
        if self.namedrop.as_ref().is_some_and(|p| p.matches(name)) {
            return false;
        }
        let tag_hit = |rules: &[(String, Patterns)]| {
            rules
                .iter()
                .any(|(key, p)| m.tag(key).is_some_and(|v| p.matches(v)))
        };
        if !self.tagpass.is_empty() && !tag_hit(&self.tagpass) {
            return false;
        }
        if !self.tagdrop.is_empty() && tag_hit(&self.tagdrop) {
            return false;
        }
        true
    }

    /// Keep the metrics that pass the selectors; returns how many were removed.
    pub fn select_batch(&self, batch: &mut Batch) -> usize {
        if !self.selects() {
            return 0;
        }
        let before = batch.len();
        batch.retain(|m| self.select(m));
        before - batch.len()
    }

    /// Apply the field and tag modifiers; returns how many metrics were left
    /// without fields and removed.
    pub fn modify_batch(&self, batch: &mut Batch) -> usize {
        let mut removed = 0;
        if self.fieldinclude.is_some() || self.fieldexclude.is_some() {
            removed = batch.retain_fields(|k| {
                self.fieldinclude.as_ref().is_none_or(|p| p.matches(k))
                    && !self.fieldexclude.as_ref().is_some_and(|p| p.matches(k))
            });
        }
        if self.taginclude.is_some() || self.tagexclude.is_some() {
            batch.retain_tags(|k| {
                self.taginclude.as_ref().is_none_or(|p| p.matches(k))
                    && !self.tagexclude.as_ref().is_some_and(|p| p.matches(k))
            });
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    fn filter(toml: &str) -> MetricFilter {
        let mut t: toml::Table = toml::from_str(toml).unwrap();
        let f = MetricFilter::take(&mut t).unwrap();
        assert!(t.is_empty(), "left over: {t:?}");
        f
    }

    fn batch() -> Batch {
        let mut b = BatchBuilder::new();
        b.metric("cpu", 1)
            .tag("cpu", "cpu0")
            .tag("host", "a")
            .field("usage_user", 1.0)
            .field("usage_idle", 2.0);
        b.metric("cpu", 2)
            .tag("cpu", "cpu-total")
            .tag("host", "a")
            .field("usage_user", 3.0);
        b.metric("disk.sda.io", 3)
            .tag("host", "b")
            .field("reads", 5i64);
        b.metric("mem", 4).tag("host", "b").field("used", 7u64);
        b.finish()
    }

    fn names(b: &Batch) -> Vec<String> {
        b.iter()
            .map(|m| format!("{}@{}", m.name(), m.timestamp()))
            .collect()
    }

    #[test]
    fn name_selectors_with_globs_and_separators() {
        let mut b = batch();
        filter(r#"namepass = ["c?u", "m*"]"#).select_batch(&mut b);
        assert_eq!(names(&b), ["cpu@1", "cpu@2", "mem@4"]);

        let mut b = batch();
        filter(r#"namedrop = ["{cpu,mem}"]"#).select_batch(&mut b);
        assert_eq!(names(&b), ["disk.sda.io@3"]);

        let mut b = batch();
        filter("namepass = [\"disk.*\"]\nnamepass_separator = \".\"").select_batch(&mut b);
        assert!(b.is_empty(), "with a separator, * stops at dots");
        let mut b = batch();
        filter("namepass = [\"disk.*.*\"]\nnamepass_separator = \".\"").select_batch(&mut b);
        assert_eq!(names(&b), ["disk.sda.io@3"]);
    }

    #[test]
    fn tag_selectors() {
        let mut b = batch();
        filter("[tagpass]\ncpu = [\"cpu-total\"]\nhost = [\"b\"]").select_batch(&mut b);
        assert_eq!(
            names(&b),
            ["cpu@2", "disk.sda.io@3", "mem@4"],
            "any listed tag matching passes"
        );

        let mut b = batch();
        filter("[tagdrop]\ncpu = [\"cpu[0-9]\"]").select_batch(&mut b);
        assert_eq!(names(&b), ["cpu@2", "disk.sda.io@3", "mem@4"]);
    }

    #[test]
    fn field_and_tag_modifiers_drop_emptied_metrics() {
        let mut b = batch();
        let removed = filter(r#"fieldinclude = ["usage_*"]"#).modify_batch(&mut b);
        assert_eq!(removed, 2);
        assert_eq!(names(&b), ["cpu@1", "cpu@2"]);

        let mut b = batch();
        filter("fielddrop = [\"usage_idle\"]\ntagexclude = [\"host\"]").modify_batch(&mut b);
        assert_eq!(b.get(0).fields().count(), 1);
        assert!(b.iter().all(|m| m.tag("host").is_none()));

        let mut b = batch();
        filter(r#"taginclude = ["cpu"]"#).modify_batch(&mut b);
        assert_eq!(b.get(0).tags().collect::<Vec<_>>(), [("cpu", "cpu0")]);
        assert_eq!(b.get(3).tags().count(), 0);
    }

    #[test]
    fn bad_patterns_and_types_are_named() {
        let mut t: toml::Table = toml::from_str(r#"namepass = "cpu""#).unwrap();
        assert!(format!("{:#}", MetricFilter::take(&mut t).unwrap_err()).contains("`namepass`"));
        let mut t: toml::Table = toml::from_str(r#"fieldinclude = ["[unclosed"]"#).unwrap();
        assert!(
            format!("{:#}", MetricFilter::take(&mut t).unwrap_err()).contains("`fieldinclude`")
        );
    }
}
