//! `[[topic_parsing]]`: Telegraf's way of taking a metric's name, tags and
//! fields from the elements of the topic it came on.
//!
//! `topic` says which topics a rule applies to (`+` matches one element,
//! one `#` any number, anything else itself); `measurement`, `tags` and
//! `fields` are paths of as many elements, where `_` (or nothing) skips an
//! element and a name takes it (`_/_/host` makes the third element the
//! `host` tag). After a `#`, elements count from the end of the topic. A
//! topic that a rule does not match leaves the metric as it is.

use anyhow::{Result, bail};

use super::config::TopicParsing;

/// Where an element sits: from the start, or (after a `#`) from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Start(usize),
    End(usize),
}

impl At {
    fn get<'t>(self, parts: &[&'t str]) -> &'t str {
        match self {
            At::Start(i) => parts[i],
            At::End(i) => parts[parts.len() - i],
        }
    }
}

/// A field's type from `[types]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Int,
    Uint,
    Float,
    Text,
}

/// A value taken from a topic for a field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'t> {
    Int(i64),
    Uint(u64),
    Float(f64),
    Text(&'t str),
}

/// What a matching topic sets on its metrics.
#[derive(Debug, Default, PartialEq)]
pub struct Extracted<'t> {
    pub name: Option<&'t str>,
    pub tags: Vec<(&'t str, &'t str)>,
    pub fields: Vec<(&'t str, FieldValue<'t>)>,
}

/// One parsed rule.
#[derive(Debug, Clone)]
pub struct Rule {
    fixed: Vec<(String, At)>,
    variable: bool,
    min_len: usize,
    measurement: Option<At>,
    tags: Vec<(String, At)>,
    fields: Vec<(String, At, Type)>,
}

/// Elements of a path (`measurement`, `tags`, `fields`) that take a name,
/// and how many elements the path spans.
fn named(key: &str, path: &str) -> Result<(Vec<(String, At)>, usize)> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut after_hash = false;
    let mut len = 0;
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        match *p {
            "_" | "" => len += 1,
            "#" if after_hash => bail!("topic_parsing.{key}: {path:?} has more than one #"),
            "#" => after_hash = true,
            name => {
                let at = if after_hash {
                    At::End(parts.len() - i)
                } else {
                    At::Start(i)
                };
                out.push((name.to_owned(), at));
                len += 1;
            }
        }
    }
    Ok((out, len))
}

impl Rule {
    /// Read one `[[topic_parsing]]`; errors name the key.
    pub fn new(c: &TopicParsing) -> Result<Self> {
        if c.topic.is_empty() {
            bail!("topic_parsing.topic: is required");
        }
        let parts: Vec<&str> = c.topic.split('/').collect();
        let (mut fixed, mut variable, mut min_len) = (Vec::new(), false, 0);
        for (i, p) in parts.iter().enumerate() {
            match *p {
                "+" => min_len += 1,
                "#" if variable => bail!("topic_parsing.topic: {:?} has more than one #", c.topic),
                "#" => variable = true,
                text => {
                    let at = if variable {
                        At::End(parts.len() - i)
                    } else {
                        At::Start(i)
                    };
                    fixed.push((text.to_owned(), at));
                    min_len += 1;
                }
            }
        }
        let (measurement, m_len) = named("measurement", &c.measurement)?;
        if measurement.len() > 1 {
            bail!(
                "topic_parsing.measurement: {:?} names more than one element",
                c.measurement
            );
        }
        let (tags, t_len) = named("tags", &c.tags)?;
        let (fields, f_len) = named("fields", &c.fields)?;
        for (key, path, len) in [
            ("measurement", &c.measurement, m_len),
            ("tags", &c.tags, t_len),
            ("fields", &c.fields, f_len),
        ] {
            if !variable && !path.is_empty() && len != min_len {
                bail!(
                    "topic_parsing.{key}: {path:?} has {len} elements, the topic {:?} has {min_len}",
                    c.topic
                );
            }
        }
        let mut typed = Vec::new();
        for (name, at) in fields {
            let t = match c.types.get(&name).map(String::as_str) {
                None => Type::Text,
                Some("int") => Type::Int,
                Some("uint") => Type::Uint,
                Some("float") => Type::Float,
                Some(other) => bail!(
                    "topic_parsing.types: {name} = {other:?}: use \"int\", \"uint\" or \"float\""
                ),
            };
            typed.push((name, at, t));
        }
        Ok(Self {
            fixed,
            variable,
            min_len: min_len.max(m_len).max(t_len).max(f_len),
            measurement: measurement.first().map(|(_, at)| *at),
            tags,
            fields: typed,
        })
    }

    /// What `topic` gives, or `None` when the rule does not match it. A
    /// typed field that does not read as its type is an error.
    pub fn apply<'t>(&'t self, topic: &'t str) -> Result<Option<Extracted<'t>>, String> {
        let parts: Vec<&str> = topic.split('/').collect();
        let fits = if self.variable {
            parts.len() >= self.min_len
        } else {
            parts.len() == self.min_len
        };
        if !fits || self.fixed.iter().any(|(t, at)| at.get(&parts) != t) {
            return Ok(None);
        }
        let mut out = Extracted {
            name: self.measurement.map(|at| at.get(&parts)),
            tags: self
                .tags
                .iter()
                .map(|(k, at)| (k.as_str(), at.get(&parts)))
                .collect(),
            fields: Vec::with_capacity(self.fields.len()),
        };
        for (k, at, t) in &self.fields {
            let raw = at.get(&parts);
            let bad = |t: &str| format!("topic element {raw:?} of field {k:?} is not {t}");
            let v = match t {
                Type::Text => FieldValue::Text(raw),
                Type::Int => FieldValue::Int(raw.parse().map_err(|_| bad("an int"))?),
                Type::Uint => FieldValue::Uint(raw.parse().map_err(|_| bad("a uint"))?),
                Type::Float => FieldValue::Float(raw.parse().map_err(|_| bad("a float"))?),
            };
            out.fields.push((k.as_str(), v));
        }
        Ok(Some(out))
    }
}

/// Every rule of `[[topic_parsing]]`, each applied in turn (a later one
/// wins where two set the same thing).
pub fn rules(list: &[TopicParsing]) -> Result<Vec<Rule>> {
    list.iter().map(Rule::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(topic: &str, measurement: &str, tags: &str, fields: &str) -> Result<Rule> {
        Rule::new(&TopicParsing {
            topic: topic.into(),
            measurement: measurement.into(),
            tags: tags.into(),
            fields: fields.into(),
            types: [("temp".to_owned(), "float".to_owned())].into(),
        })
    }

    #[test]
    fn elements_become_name_tags_and_typed_fields() {
        let r = rule("sensors/+/+/temperature", "_/_/name/_", "_/site/_/_", "").unwrap();
        let e = r
            .apply("sensors/plant1/boiler/temperature")
            .unwrap()
            .unwrap();
        assert_eq!(e.name, Some("boiler"));
        assert_eq!(e.tags, [("site", "plant1")]);
        let r = rule("t/+/+", "", "_/host/_", "_/_/temp").unwrap();
        let e = r.apply("t/h1/21.5").unwrap().unwrap();
        assert_eq!(e.fields, [("temp", FieldValue::Float(21.5))]);
        assert!(r.apply("t/h1/warm").unwrap_err().contains("temp"));
    }

    #[test]
    fn a_topic_that_does_not_match_is_left_alone() {
        let r = rule("sensors/+/temperature", "_/name/_", "", "").unwrap();
        assert_eq!(r.apply("sensors/a/humidity").unwrap(), None);
        assert_eq!(r.apply("sensors/a/temperature/x").unwrap(), None);
        assert_eq!(r.apply("other/a/temperature").unwrap(), None);
    }

    #[test]
    fn a_hash_counts_the_rest_from_the_end() {
        let r = rule("devices/#/value", "", "_/#/kind/_", "").unwrap();
        let e = r.apply("devices/a/b/meter/value").unwrap().unwrap();
        assert_eq!(e.tags, [("kind", "meter")]);
        assert_eq!(r.apply("devices").unwrap(), None);
    }

    #[test]
    fn bad_rules_name_the_key() {
        for (r, key) in [
            (rule("a/+", "_/x/_", "", ""), "topic_parsing.measurement"),
            (rule("a/+", "x/y", "", ""), "topic_parsing.measurement"),
            (rule("a/+", "", "_/_/_", ""), "topic_parsing.tags"),
            (rule("a/#/#", "", "", ""), "topic_parsing.topic"),
            (rule("", "", "", ""), "topic_parsing.topic"),
        ] {
            let e = r.unwrap_err().to_string();
            assert!(e.starts_with(key), "{e}");
        }
        let bad_type = Rule::new(&TopicParsing {
            topic: "a/+".into(),
            fields: "_/v".into(),
            types: [("v".to_owned(), "bool".to_owned())].into(),
            ..Default::default()
        });
        assert!(
            bad_type
                .unwrap_err()
                .to_string()
                .contains("topic_parsing.types")
        );
    }
}
