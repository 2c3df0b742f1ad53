//! `outputs.file`: metrics as line protocol, written exactly as Telegraf's
//! `influx` serializer writes them, to stdout and/or files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_core::lineproto::{Serializer, SerializerOptions};
use graft_core::{Batch, CallError, Output, PluginError, WriteError};
use serde::Deserialize;

use crate::builtin::{self, Builtin};

/// `[[outputs.file]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `files` (default `["stdout"]`): where to write; `"stdout"` is standard output.
    #[serde(default = "default_files")]
    pub files: Vec<String>,
    /// `data_format` (default `"influx"`): only `influx` for now.
    #[serde(default = "default_format")]
    pub data_format: String,
    /// `use_batch_format` (default false): accepted; line protocol is the same either way.
    #[serde(default)]
    pub use_batch_format: bool,
    /// `influx_sort_fields` (default false).
    #[serde(default)]
    pub influx_sort_fields: bool,
    /// `influx_uint_support` (default false).
    #[serde(default)]
    pub influx_uint_support: bool,
    /// `influx_omit_timestamp` (default false).
    #[serde(default)]
    pub influx_omit_timestamp: bool,
    /// `influx_max_line_bytes` (default 0 = no limit).
    #[serde(default)]
    pub influx_max_line_bytes: usize,
}

fn default_files() -> Vec<String> {
    vec!["stdout".into()]
}

fn default_format() -> String {
    "influx".into()
}

enum Target {
    Stdout,
    File(PathBuf, Option<File>),
}

/// The `file` output.
pub struct FileOutput {
    serializer: Serializer,
    targets: Vec<Target>,
    buf: Vec<u8>,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<FileOutput>(table)
}

impl Builtin for FileOutput {
    const NAME: &'static str = "file";
    type Config = Config;
    type Plugin = dyn Output;

    fn validate(config: &Config) -> Result<()> {
        if config.data_format != "influx" {
            bail!(
                "data_format: {:?} is not supported yet; use \"influx\"",
                config.data_format
            );
        }
        if config.files.is_empty() {
            bail!("files: at least one target is needed (\"stdout\" or a path)");
        }
        Ok(())
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Ok(Box::new(FileOutput::new(config)?))
    }
}

impl FileOutput {
    /// Check the config; files are opened by `connect`.
    pub fn new(config: Config) -> Result<Self> {
        <Self as Builtin>::validate(&config)?;
        let serializer = Serializer::new(SerializerOptions {
            sort_fields: config.influx_sort_fields,
            uint_support: config.influx_uint_support,
            omit_timestamp: config.influx_omit_timestamp,
            max_line_bytes: config.influx_max_line_bytes,
            ..SerializerOptions::default()
        });
        let targets = config
            .files
            .iter()
            .map(|f| match f.as_str() {
                "stdout" => Target::Stdout,
                path => Target::File(PathBuf::from(path), None),
            })
            .collect();
        Ok(Self {
            serializer,
            targets,
            buf: Vec::new(),
        })
    }
}

#[async_trait]
impl Output for FileOutput {
    async fn connect(&mut self) -> Result<(), PluginError> {
        for target in &mut self.targets {
            if let Target::File(path, file) = target {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&*path)
                    .map_err(|e| {
                        PluginError::config("files", format!("cannot open {}: {e}", path.display()))
                    })?;
                *file = Some(f);
            }
        }
        Ok(())
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        self.buf.clear();
        for e in self.serializer.write_batch(batch, &mut self.buf) {
            tracing::debug!(error = %e, "metric left out of the output");
        }
        for target in &mut self.targets {
            let result = match target {
                Target::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&self.buf).and_then(|()| out.flush())
                }
                Target::File(_, Some(f)) => f.write_all(&self.buf),
                Target::File(path, None) => {
                    return Err(CallError::Returned(WriteError::Retry(format!(
                        "{} is not open",
                        path.display()
                    ))));
                }
            };
            result.map_err(|e| CallError::Returned(WriteError::Retry(e.to_string())))?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), CallError<WriteError>> {
        for target in &mut self.targets {
            if let Target::File(_, Some(f)) = target {
                f.sync_data()
                    .map_err(|e| CallError::Returned(WriteError::Retry(e.to_string())))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    #[tokio::test]
    async fn writes_line_protocol_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.lp");
        let mut table = toml::Table::new();
        table.insert(
            "files".into(),
            toml::Value::Array(vec![path.display().to_string().into()]),
        );
        let mut out = build(table).unwrap();
        out.connect().await.unwrap();
        let mut b = BatchBuilder::new();
        b.metric("m", 5).tag("t", "a b").field("x", 1.5);
        out.write(&b.finish()).await.unwrap();
        out.close().await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "m,t=a\\ b x=1.5 5\n"
        );
    }

    #[test]
    fn unknown_keys_and_formats_are_named() {
        let table: toml::Table = toml::from_str("fils = [\"stdout\"]").unwrap();
        let err = build(table).err().unwrap().to_string();
        assert!(err.contains("fils"), "{err}");
        let table: toml::Table = toml::from_str("data_format = \"json\"").unwrap();
        let err = build(table).err().unwrap().to_string();
        assert!(err.contains("data_format"), "{err}");
    }
}
