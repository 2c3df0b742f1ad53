//! Test guest: an output that is unreachable (answers `retry`) until a file
//! named `open` exists in its granted directory; then it appends the `count`
//! field of every metric, one per line, to `delivered.txt` there.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use graft_sdk::{Batch, FieldRef, FromConfig, Output, PluginError, WriteError};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    dir: String,
}

struct Gated {
    dir: PathBuf,
}

impl FromConfig for Gated {
    type Config = Config;

    fn from_config(config: Config) -> Result<Self, PluginError> {
        Ok(Gated {
            dir: PathBuf::from(config.dir),
        })
    }
}

impl Output for Gated {
    fn write(&mut self, batch: Batch) -> Result<(), WriteError> {
        if !self.dir.join("open").exists() {
            return Err(WriteError::Retry("gate closed".into()));
        }
        let mut out = String::new();
        for m in batch.iter() {
            if let Some(FieldRef::Uint(n)) = m.field("count") {
                out.push_str(&format!("{n}\n"));
            }
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("delivered.txt"))
            .and_then(|mut f| f.write_all(out.as_bytes()))
            .map_err(|e| WriteError::Retry(e.to_string()))
    }
}

graft_sdk::export_output!(Gated);
