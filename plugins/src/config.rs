//! Parsing a plugin's own config table into its serde struct.

use anyhow::Result;
use serde::de::DeserializeOwned;

/// Deserialize `table` into `T`; the error names the offending key.
pub fn parse<T: DeserializeOwned>(table: toml::Table) -> Result<T> {
    T::deserialize(toml::Value::Table(table))
        .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
}
