//! `processors.rename`: Telegraf's rename processor. Each
//! `[[processors.rename.replace]]` names one measurement, tag key or field
//! key and its `dest`; the replacements apply in order, so a later one sees
//! what an earlier one renamed. Where a metric already has a tag or field
//! named `dest`, the renamed one replaces it. Works on the batch's symbols:
//! a rename touches one string, not every metric.

use anyhow::{Result, bail};
use graft_core::{Batch, CallError, Processor};
use serde::Deserialize;

use crate::builtin::{self, Builtin};

/// `[[processors.rename]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `replace` (default none): the renames, in order.
    #[serde(default)]
    pub replace: Vec<Replace>,
}

/// `[[processors.rename.replace]]`: exactly one of `measurement`, `tag`,
/// `field`, and `dest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replace {
    /// `measurement`: rename metrics of this name.
    #[serde(default)]
    pub measurement: Option<String>,
    /// `tag`: rename this tag key.
    #[serde(default)]
    pub tag: Option<String>,
    /// `field`: rename this field key.
    #[serde(default)]
    pub field: Option<String>,
    /// `dest`: the new name.
    pub dest: String,
}

/// One resolved rename.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Measurement { from: String, to: String },
    Tag { from: String, to: String },
    Field { from: String, to: String },
}

/// The `rename` processor.
#[derive(Debug)]
pub struct Rename {
    rules: Vec<Rule>,
}

impl Rename {
    /// Check the replacements and build the processor.
    pub fn new(config: Config) -> Result<Self> {
        let mut rules = Vec::with_capacity(config.replace.len());
        for (i, r) in config.replace.into_iter().enumerate() {
            if r.dest.is_empty() {
                bail!("replace[{i}]: `dest` is empty");
            }
            let to = r.dest;
            let rule = match (r.measurement, r.tag, r.field) {
                (Some(from), None, None) => Rule::Measurement { from, to },
                (None, Some(from), None) => Rule::Tag { from, to },
                (None, None, Some(from)) => Rule::Field { from, to },
                _ => bail!("replace[{i}]: set exactly one of `measurement`, `tag` and `field`"),
            };
            rules.push(rule);
        }
        Ok(Self { rules })
    }
}

/// Build `processors.rename` from its table.
pub fn build(table: toml::Table) -> Result<Box<dyn Processor>> {
    builtin::build::<Rename>(table)
}

impl Builtin for Rename {
    const NAME: &'static str = "rename";
    type Config = Config;
    type Plugin = dyn Processor;

    fn validate(config: &Config) -> Result<()> {
        Rename::new(config.clone()).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Processor>> {
        Ok(Box::new(Rename::new(config)?))
    }
}

impl Processor for Rename {
    fn process(&mut self, batch: &mut Batch) -> Result<(), CallError> {
        for rule in &self.rules {
            match rule {
                Rule::Measurement { from, to } => batch.rename_measurement(from, to),
                Rule::Tag { from, to } => batch.rename_tag(from, to),
                Rule::Field { from, to } => batch.rename_field(from, to),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::{BatchBuilder, FieldRef};

    fn rename(toml_text: &str) -> Result<Rename> {
        Rename::new(crate::config::parse(toml::from_str(toml_text)?)?)
    }

    fn sample() -> Batch {
        let mut b = BatchBuilder::new();
        b.metric("network_interface_throughput", 1)
            .tag("hostname", "web1")
            .tag("interface", "eth0")
            .field("lower", 1.0)
            .field("upper", 9.0);
        b.metric("cpu", 2)
            .tag("host", "old")
            .tag("hostname", "web2")
            .field("usage_idle", 97.0);
        b.finish()
    }

    #[test]
    fn renames_measurements_tags_and_fields_in_order() {
        let mut p = rename(
            r#"
            [[replace]]
              measurement = "network_interface_throughput"
              dest = "throughput"
            [[replace]]
              tag = "hostname"
              dest = "host"
            [[replace]]
              field = "lower"
              dest = "min"
            [[replace]]
              field = "min"
              dest = "minimum"
            "#,
        )
        .unwrap();
        let mut batch = sample();
        p.process(&mut batch).unwrap();
        let m = batch.get(0);
        assert_eq!(m.name(), "throughput");
        assert_eq!(
            m.tags().collect::<Vec<_>>(),
            [("host", "web1"), ("interface", "eth0")]
        );
        // The second field rename sees the first one's result.
        assert_eq!(
            m.fields().collect::<Vec<_>>(),
            [
                ("minimum", FieldRef::Float(1.0)),
                ("upper", FieldRef::Float(9.0))
            ]
        );
        // The renamed tag replaces a tag already named `dest`.
        let m = batch.get(1);
        assert_eq!(m.name(), "cpu");
        assert_eq!(m.tags().collect::<Vec<_>>(), [("host", "web2")]);
        Batch::from_parts(batch.into_parts()).unwrap();
    }

    #[test]
    fn leaves_metrics_without_the_names_alone() {
        let mut p = rename("[[replace]]\nfield = \"absent\"\ndest = \"x\"").unwrap();
        let mut batch = sample();
        p.process(&mut batch).unwrap();
        assert_eq!(
            format!("{:?}", batch.iter().collect::<Vec<_>>()),
            format!("{:?}", sample().iter().collect::<Vec<_>>())
        );
        let mut none = rename("").unwrap();
        none.process(&mut batch).unwrap();
    }

    #[test]
    fn bad_replacements_are_errors_that_name_them() {
        let err = |t: &str| format!("{:#}", rename(t).unwrap_err());
        assert!(err("[[replace]]\ndest = \"x\"").contains("replace[0]: set exactly one of"));
        assert!(
            err("[[replace]]\nfield = \"a\"\ndest = \"b\"\n[[replace]]\ntag = \"a\"\nfield = \"b\"\ndest = \"c\"")
                .contains("replace[1]: set exactly one of")
        );
        assert!(
            err("[[replace]]\nfield = \"a\"\ndest = \"\"").contains("replace[0]: `dest` is empty")
        );
        assert!(err("[[replace]]\nfield = \"a\"").contains("dest"));
        assert!(err("[[replace]]\nfield = \"a\"\ndest = \"b\"\nto = \"c\"").contains("to"));
        assert!(err("order2 = 1").contains("order2"));
    }
}
