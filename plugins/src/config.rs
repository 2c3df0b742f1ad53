//! Parsing a plugin's own config table into its serde struct.

use anyhow::Result;
use serde::de::DeserializeOwned;

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
