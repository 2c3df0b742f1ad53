//! Example output: appends every metric as one JSON line to a file in a
//! directory that graft grants the plugin (`permissions.write_dirs`).

use std::fs::{File, OpenOptions};
use std::io::Write;

use graft_sdk::{Batch, FieldRef, FromConfig, Output, PluginError, WriteError};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Directory to write into; it must be granted in `permissions.write_dirs`.
    dir: String,
    /// File name inside `dir`.
    #[serde(default = "default_file")]
    file: String,
}

fn default_file() -> String {
    "metrics.jsonl".into()
}

struct JsonLines {
    file: File,
}

impl FromConfig for JsonLines {
    type Config = Config;

    fn from_config(config: Config) -> Result<Self, PluginError> {
        let path = format!("{}/{}", config.dir.trim_end_matches('/'), config.file);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                PluginError::config(
                    "dir",
                    format!("cannot open {path}: {e} (is the directory granted?)"),
                )
            })?;
        Ok(JsonLines { file })
    }
}

impl Output for JsonLines {
    fn write(&mut self, batch: Batch) -> Result<(), WriteError> {
        let mut out = String::new();
        for m in batch.iter() {
            let tags: serde_json::Map<String, serde_json::Value> =
                m.tags().map(|(k, v)| (k.to_owned(), v.into())).collect();
            let fields: serde_json::Map<String, serde_json::Value> = m
                .fields()
                .map(|(k, v)| {
                    let v = match v {
                        FieldRef::Float(x) => x.into(),
                        FieldRef::Int(x) => x.into(),
                        FieldRef::Uint(x) => x.into(),
                        FieldRef::Bool(x) => x.into(),
                        FieldRef::Str(s) => s.into(),
                    };
                    (k.to_owned(), v)
                })
                .collect();
            let line = serde_json::json!({
                "name": m.name(),
                "tags": tags,
                "fields": fields,
                "timestamp": m.timestamp(),
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        self.file
            .write_all(out.as_bytes())
            .map_err(|e| WriteError::Retry(e.to_string()))
    }
}

graft_sdk::export_output!(JsonLines);
