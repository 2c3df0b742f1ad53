//! [`ConfigError`]: what is wrong with a configuration, and where: the file,
//! the section (`[agent]`, `outputs.influxdb[0]`) and the key.
//!
//! It reads as graft's messages always have:
//! `graft.toml: outputs.influxdb[0]: key `timeout`: duration "366d" is too long…`.

use std::fmt;

/// A configuration error at the boundary, naming where it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, as given on the command line (or `(built-in default)`).
    pub file: Option<String>,
    /// `[agent]`, `[global_tags]` or `inputs.mem[0]`.
    pub section: Option<String>,
    /// The key in the section, dotted for nested keys (`limits.memory`).
    pub key: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about no key in particular.
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            file: None,
            section: None,
            key: None,
            message: message.to_string(),
        }
    }

    /// An error about `key`.
    pub fn key(key: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            key: Some(key.into()),
            ..Self::new(message)
        }
    }

    /// A key nobody reads: `expected` lists the keys that are.
    pub fn unknown_key(key: impl Into<String>, expected: &str) -> Self {
        Self::key(key, format!("unknown key (expected {expected})"))
    }

    /// The error in section `section`, unless it already names one.
    pub fn in_section(mut self, section: impl Into<String>) -> Self {
        self.section.get_or_insert_with(|| section.into());
        self
    }

    /// The error in file `file`, unless it already names one.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file.get_or_insert_with(|| file.into());
        self
    }

    /// The error under `parent`: key `memory` becomes `limits.memory`.
    pub fn under(mut self, parent: &str) -> Self {
        self.key = Some(match self.key.take() {
            Some(k) => format!("{parent}.{k}"),
            None => parent.to_owned(),
        });
        self
    }

    /// A serde error from reading a table, with the key it happened at.
    pub fn from_serde(e: serde_path_to_error::Error<toml::de::Error>) -> Self {
        let path = e.path().to_string();
        let message = e.inner().message().trim_end().to_owned();
        // serde names an unknown field itself; the key is then that field.
        if let Some(rest) = message.strip_prefix("unknown field `")
            && let Some((field, expected)) = rest.split_once('`')
        {
            let expected = expected.trim_start_matches(", ");
            let key = match path.as_str() {
                "." | "?" => field.to_owned(),
                p => match p.rsplit_once('.') {
                    Some((parent, _)) => format!("{parent}.{field}"),
                    None if p == field => field.to_owned(),
                    None => format!("{p}.{field}"),
                },
            };
            let message = match closest(field, expected) {
                Some(near) => format!("unknown key (did you mean `{near}`? {expected})"),
                None => format!("unknown key ({expected})"),
            };
            return Self::key(key, message);
        }
        match path.as_str() {
            "." | "?" => Self::new(message),
            _ => Self::key(path, message),
        }
    }
}

/// The known key closest to `key` among the backquoted names of serde's
/// "expected one of `a`, `b`" text, when one is close enough to be a slip
/// of the keyboard or an old spelling.
fn closest<'a>(key: &str, expected: &'a str) -> Option<&'a str> {
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|name| (strsim::jaro_winkler(key, name), name))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if let Some(section) = &self.section {
            write!(f, "{section}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Read `T` from `table`; a bad value names its key.
pub fn from_table<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(ConfigError::from_serde)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        depth: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        size: Option<u32>,
        inner: Option<Inner>,
    }

    fn read(text: &str) -> ConfigError {
        from_table::<Outer>(toml::from_str(text).unwrap()).unwrap_err()
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        let e = read("size = \"big\"");
        assert_eq!(e.key.as_deref(), Some("size"), "{e}");
        let e = read("sise = 1");
        assert_eq!(e.key.as_deref(), Some("sise"), "{e}");
        assert!(e.message.contains("unknown key"), "{e}");
        assert!(e.message.contains("did you mean `size`?"), "{e}");
        let e = read("colour = 1");
        assert!(!e.message.contains("did you mean"), "{e}");
        let e = read("[inner]\ndepht = 1");
        assert_eq!(e.key.as_deref(), Some("inner.depht"), "{e}");
        let e = read("[inner]\ndepth = -1");
        assert_eq!(e.key.as_deref(), Some("inner.depth"), "{e}");
    }

    #[test]
    fn it_reads_file_section_key_message() {
        let e = ConfigError::key("timeout", "too long")
            .in_section("outputs.influxdb[0]")
            .in_file("graft.toml")
            .in_section("ignored");
        assert_eq!(
            e.to_string(),
            "graft.toml: outputs.influxdb[0]: key `timeout`: too long"
        );
        assert_eq!(
            ConfigError::new("bad").under("limits").to_string(),
            "key `limits`: bad"
        );
    }
}
