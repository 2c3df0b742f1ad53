//! Parsing a plugin's own config table into its serde struct, and
//! splitting a table whose keys belong to several parts (the plugin's own
//! and shared tables such as TLS, HTTP client or data format keys).

use anyhow::Result;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

/// Deserialize `table` into `T`; the error names the offending key, first
/// (`key `read_timeout`: ...`).
pub fn parse<T: DeserializeOwned>(table: toml::Table) -> Result<T> {
    T::deserialize(toml::Value::Table(table)).map_err(|e| {
        let text = e.to_string();
        let text = text.trim_end();
        // toml names the key on a line of its own at the end: "in `key`".
        match text.rsplit_once("\nin `") {
            Some((message, key)) if key.ends_with('`') && !key[..key.len() - 1].contains('`') => {
                anyhow::anyhow!("key `{key}: {}", message.trim_end())
            }
            _ => anyhow::anyhow!("{text}"),
        }
    })
}

/// A table of keys several plugins share (TLS, a data format, an HTTP
/// client), kept in a plugin's table beside its own keys.
pub trait SharedKeys {
    /// Every key of the shared table.
    const KEYS: &'static [&'static str];
}

/// A plugin's table: its own keys (`T`, which refuses unknown keys) and
/// the shared table `S`, each refused or accepted by its own part.
/// (`#[serde(flatten)]` would lose `deny_unknown_fields`.) Nest it for
/// several shared tables: `With<With<Own, TlsConfig>, SerializerConfig>`.
#[derive(Debug, Clone)]
pub struct With<T, S> {
    /// The plugin's own keys.
    pub own: T,
    /// The keys of [`SharedKeys::KEYS`].
    pub shared: S,
}

impl<'de, T: DeserializeOwned, S: SharedKeys + DeserializeOwned> Deserialize<'de> for With<T, S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut own = toml::Table::deserialize(deserializer)?;
        let mut shared = toml::Table::new();
        for key in S::KEYS {
            if let Some(v) = own.remove(*key) {
                shared.insert((*key).to_owned(), v);
            }
        }
        Ok(Self {
            own: T::deserialize(toml::Value::Table(own)).map_err(D::Error::custom)?,
            shared: S::deserialize(toml::Value::Table(shared)).map_err(D::Error::custom)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Options {
        #[serde(default, deserialize_with = "crate::duration::de_duration")]
        read_timeout: Duration,
        #[serde(default)]
        nested: Nested,
    }

    #[derive(Debug, Default, Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        #[serde(default, deserialize_with = "crate::duration::de_duration")]
        timeout: Duration,
    }

    fn error(text: &str) -> String {
        format!(
            "{:#}",
            super::parse::<Options>(toml::from_str(text).unwrap()).unwrap_err()
        )
    }

    #[test]
    fn errors_name_the_key() {
        let e = error("read_timeout = 1e30");
        assert!(
            e.contains("too long") && e.contains("`read_timeout`"),
            "{e}"
        );
        let e = error("[nested]\ntimeout = \"99999999999999999999999h\"");
        assert!(e.contains("too long") && e.contains("timeout"), "{e}");
        let e = error("typo = 1");
        assert!(e.contains("`typo`"), "{e}");
    }
}
