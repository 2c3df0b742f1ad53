//! collectd's types.db: one type per line, `name ds:TYPE:min:max, ...`,
//! giving the data source names (and kinds) of a value list of that type.
//! Lines that cannot be read are skipped, as collectd and Telegraf do.

use std::collections::HashMap;

/// The kind of a data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsKind {
    Counter,
    Gauge,
    Derive,
    Absolute,
}

/// One data source of a type.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSource {
    pub name: String,
    pub kind: DsKind,
}

/// Types by name.
#[derive(Debug, Clone, Default)]
pub struct TypesDb {
    types: HashMap<String, Vec<DataSource>>,
}

impl TypesDb {
    /// Read a types.db text.
    pub fn parse(text: &str) -> Self {
        let types = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(parse_line)
            .collect();
        Self { types }
    }

    /// Add `other`'s types, replacing those of the same name.
    pub fn merge(&mut self, other: TypesDb) {
        self.types.extend(other.types);
    }

    /// The data sources of `type_`.
    pub fn get(&self, type_: &str) -> Option<&[DataSource]> {
        self.types.get(type_).map(Vec::as_slice)
    }

    /// Number of types.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether no type was read.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

fn parse_line(line: &str) -> Option<(String, Vec<DataSource>)> {
    let mut words = line.split_whitespace();
    let name = words.next()?;
    let sources = words
        .map(|w| {
            let w = w.trim_end_matches(',');
            let mut f = w.split(':');
            let (Some(name), Some(kind), Some(min), Some(max), None) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                return None;
            };
            let kind = match kind {
                "COUNTER" => DsKind::Counter,
                "GAUGE" => DsKind::Gauge,
                "DERIVE" => DsKind::Derive,
                "ABSOLUTE" => DsKind::Absolute,
                _ => return None,
            };
            let bound = |b: &str| b == "U" || b.parse::<f64>().is_ok();
            (!name.is_empty() && bound(min) && bound(max)).then(|| DataSource {
                name: name.to_owned(),
                kind,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    (!sources.is_empty()).then(|| (name.to_owned(), sources))
}
