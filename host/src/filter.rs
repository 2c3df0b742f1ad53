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

use anyhow::{Context, Result, bail};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use graft_core::{Batch, MetricRef};

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

fn strings(v: toml::Value, key: &str) -> Result<Vec<String>> {
    let toml::Value::Array(items) = v else {
        bail!("key `{key}`: expected a list of patterns");
    };
    items
        .into_iter()
        .map(|i| match i {
            toml::Value::String(s) => Ok(s),
            other => bail!(
                "key `{key}`: patterns are strings, found {}",
                other.type_str()
            ),
        })
        .collect()
}

fn tag_patterns(v: toml::Value, key: &str) -> Result<Vec<(String, Patterns)>> {
    let toml::Value::Table(t) = v else {
        bail!("key `{key}`: expected a table of tag = [patterns]");
    };
    t.into_iter()
        .map(|(tag, v)| {
            let list = strings(v, &format!("{key}.{tag}"))?;
            Ok((
                tag,
                Patterns::new(&list, "").with_context(|| format!("key `{key}`"))?,
            ))
        })
        .collect()
}

impl MetricFilter {
    /// Take the selector and modifier keys out of a plugin table.
    pub fn take(table: &mut toml::Table) -> Result<Self> {
        let mut take_list = |key: &str| table.remove(key).map(|v| strings(v, key)).transpose();
        let namepass = take_list("namepass")?;
        let namedrop = take_list("namedrop")?;
        let fieldinclude = take_list("fieldinclude")?;
        let fieldexclude = take_list("fieldexclude")?;
        let fieldpass = take_list("fieldpass")?;
        let fielddrop = take_list("fielddrop")?;
        let taginclude = take_list("taginclude")?;
        let tagexclude = take_list("tagexclude")?;
        let mut sep = |key: &str| -> Result<String> {
            match table.remove(key) {
                None => Ok(String::new()),
                Some(toml::Value::String(s)) => Ok(s),
                Some(other) => bail!("key `{key}`: expected a string, found {}", other.type_str()),
            }
        };
        let namepass_separator = sep("namepass_separator")?;
        let namedrop_separator = sep("namedrop_separator")?;
        let tagpass = table
            .remove("tagpass")
            .map(|v| tag_patterns(v, "tagpass"))
            .transpose()?;
        let tagdrop = table
            .remove("tagdrop")
            .map(|v| tag_patterns(v, "tagdrop"))
            .transpose()?;
        if fieldinclude.is_some() && fieldpass.is_some() {
            bail!("key `fieldpass` is the old name of `fieldinclude`; use only one");
        }
        if fieldexclude.is_some() && fielddrop.is_some() {
            bail!("key `fielddrop` is the old name of `fieldexclude`; use only one");
        }
        let compile = |list: Option<Vec<String>>, key: &str, sep: &str| {
            list.map(|l| Patterns::new(&l, sep).with_context(|| format!("key `{key}`")))
                .transpose()
        };
        Ok(Self {
            namepass: compile(namepass, "namepass", &namepass_separator)?,
            namedrop: compile(namedrop, "namedrop", &namedrop_separator)?,
            tagpass: tagpass.unwrap_or_default(),
            tagdrop: tagdrop.unwrap_or_default(),
            fieldinclude: compile(fieldinclude.or(fieldpass), "fieldinclude", "")?,
            fieldexclude: compile(fieldexclude.or(fielddrop), "fieldexclude", "")?,
            taginclude: compile(taginclude, "taginclude", "")?,
            tagexclude: compile(tagexclude, "tagexclude", "")?,
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
