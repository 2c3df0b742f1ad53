//! `outputs.influxdb`: InfluxDB 1.x's `/write` API, with Telegraf's options.
//!
//! Every URL is tried in turn (from a random one) until one answers. What
//! the answer means for the metrics: 204 written; a partial write or lines
//! the server could not parse are counted as rejected and dropped, the rest
//! written; other 4xx answers reject the request's metrics; 401/403 (wrong
//! credentials or rights), a missing database with `skip_database_creation`,
//! 5xx answers and network errors keep the metrics for the next flush, with
//! the output's backoff. The database is created at connect time and when a
//! write finds it missing, unless `skip_database_creation`.

mod v1;

use std::collections::HashSet;
use std::sync::Mutex;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::lineproto::{Serializer, SerializerOptions};
use graft_core::{Batch, PluginError, WriteError};
use serde::Deserialize;

use super::influx_http::{Endpoint, Writer};
use crate::builtin::{self, Builtin, Deprecated};
use crate::http::WithHttpClient;
use v1::V1;

/// `[[outputs.influxdb]]`: its own keys and the HTTP client's
/// ([`crate::http::ClientConfig`]).
pub type Config = WithHttpClient<Options>;

/// The keys of `[[outputs.influxdb]]` besides the HTTP client's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `urls` (default `["http://localhost:8086"]`).
    #[serde(default)]
    pub urls: Vec<String>,
    /// `url`: Telegraf's older single-URL spelling.
    #[serde(default)]
    pub url: Option<String>,
    /// `database` (default `"telegraf"`).
    #[serde(default = "default_database")]
    pub database: String,
    /// `database_tag`: a tag whose value names the metric's database.
    #[serde(default)]
    pub database_tag: String,
    /// `exclude_database_tag`: leave that tag out of what is written.
    #[serde(default)]
    pub exclude_database_tag: bool,
    /// `retention_policy` (default: the database's default).
    #[serde(default)]
    pub retention_policy: String,
    /// `retention_policy_tag`, `exclude_retention_policy_tag`.
    #[serde(default)]
    pub retention_policy_tag: String,
    /// `exclude_retention_policy_tag` (default false): leave that tag out of
    /// what is written.
    #[serde(default)]
    pub exclude_retention_policy_tag: bool,
    /// `write_consistency`: any, one, quorum, all (clusters only).
    #[serde(default)]
    pub write_consistency: String,
    /// `username`, `password`: HTTP basic authentication.
    #[serde(default)]
    pub username: String,
    /// `password` (default none): with `username`.
    #[serde(default)]
    pub password: String,
    /// `skip_database_creation` (default false).
    #[serde(default)]
    pub skip_database_creation: bool,
    /// `influx_uint_support`, `influx_omit_timestamp` (default false).
    #[serde(default)]
    pub influx_uint_support: bool,
    /// `influx_omit_timestamp` (default false): let the server stamp the time.
    #[serde(default)]
    pub influx_omit_timestamp: bool,
}

fn default_database() -> String {
    "telegraf".into()
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<InfluxDb>(table)
}

impl Builtin for InfluxDb {
    const NAME: &'static str = "influxdb";
    type Config = Config;
    type Plugin = dyn Output;
    const DEPRECATED: &'static [Deprecated] = &[
        Deprecated {
            key: "url",
            instead: Some("urls"),
            ignored: false,
            note: "deprecated in Telegraf 0.1.9; still read as one more URL",
        },
        Deprecated {
            key: "precision",
            instead: None,
            ignored: true,
            note: "deprecated in Telegraf 1.2.0: timestamps are written in nanoseconds",
        },
    ];

    fn validate(config: &Config) -> Result<()> {
        config.shared.validate()?;
        let c = &config.own;
        for u in c.urls.iter().chain(&c.url) {
            match u.split_once("://").map(|(s, _)| s) {
                Some("http" | "https") => {}
                Some("udp" | "udp4" | "udp6" | "unix") => {
                    bail!("urls: {u:?}: only http:// and https:// are supported so far")
                }
                _ => bail!("urls: {u:?} is not an http:// or https:// URL"),
            }
        }
        if c.database.is_empty() && c.database_tag.is_empty() {
            bail!("database: must not be empty");
        }
        match c.write_consistency.as_str() {
            "" | "any" | "one" | "quorum" | "all" => Ok(()),
            other => bail!("write_consistency: {other:?} is not one of any, one, quorum, all"),
        }
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Ok(Box::new(InfluxDb::new(config)?))
    }
}

/// The `influxdb` output.
pub struct InfluxDb {
    writer: Writer<V1>,
    database: String,
    database_tag: String,
    retention_policy: String,
    retention_policy_tag: String,
    skip_database_creation: bool,
}

/// `target` strings carry database and retention policy, `db\nrp`.
const SEP: char = '\n';

impl InfluxDb {
    /// Check the config and build the HTTP client.
    pub fn new(config: Config) -> Result<Self> {
        <Self as Builtin>::validate(&config)?;
        let client = config.shared.client()?;
        let encoding = config.shared.content_encoding;
        let mut config = config.own;
        if let Some(url) = config.url.take() {
            config.urls.push(url);
        }
        if config.urls.is_empty() {
            config.urls.push("http://localhost:8086".into());
        }
        let mut exclude_tags = Vec::new();
        if config.exclude_database_tag && !config.database_tag.is_empty() {
            exclude_tags.push(config.database_tag.clone());
        }
        if config.exclude_retention_policy_tag && !config.retention_policy_tag.is_empty() {
            exclude_tags.push(config.retention_policy_tag.clone());
        }
        let serializer = Serializer::new(SerializerOptions {
            uint_support: config.influx_uint_support,
            omit_timestamp: config.influx_omit_timestamp,
            exclude_tags,
            ..SerializerOptions::default()
        });
        let endpoint = V1 {
            consistency: match config.write_consistency.as_str() {
                "" | "one" => None,
                c => Some(c.to_owned()),
            },
            username: config.username.clone(),
            password: config.password.clone(),
            skip_database_creation: config.skip_database_creation,
            created: Mutex::new(HashSet::new()),
        };
        Ok(Self {
            writer: Writer::new(client, config.urls, encoding, serializer, endpoint),
            database: config.database,
            database_tag: config.database_tag,
            retention_policy: config.retention_policy,
            retention_policy_tag: config.retention_policy_tag,
            skip_database_creation: config.skip_database_creation,
        })
    }
}

#[async_trait]
impl Output for InfluxDb {
    async fn connect(&mut self) -> Result<(), PluginError> {
        // Like Telegraf: an unreachable server does not stop the agent; the
        // database is created when a write finds it missing.
        if self.skip_database_creation || self.database.is_empty() {
            return Ok(());
        }
        let target = format!("{}{SEP}", self.database);
        for url in &self.writer.urls {
            if self
                .writer
                .endpoint
                .create_target(&self.writer.client, url, &target)
                .await
            {
                break;
            }
        }
        Ok(())
    }

    async fn probe(&mut self) -> Result<(), PluginError> {
        super::influx_http::ping_all(&self.writer.client, &self.writer.urls).await
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        let (db, db_tag) = (&self.database, &self.database_tag);
        let (rp, rp_tag) = (&self.retention_policy, &self.retention_policy_tag);
        self.writer
            .write(batch, |m| {
                let db = (!db_tag.is_empty())
                    .then(|| m.tag(db_tag))
                    .flatten()
                    .unwrap_or(db);
                let rp = (!rp_tag.is_empty())
                    .then(|| m.tag(rp_tag))
                    .flatten()
                    .unwrap_or(rp);
                format!("{db}{SEP}{rp}")
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_errors_name_the_key() {
        let err = |s: &str| build(toml::from_str(s).unwrap()).err().unwrap().to_string();
        assert!(err("urls = [\"udp://localhost:8089\"]").contains("urls"));
        assert!(err("write_consistency = \"some\"").contains("write_consistency"));
        assert!(err("content_encoding = \"br\"").contains("content_encoding"));
        assert!(err("timeout = \"5 parsecs\"").contains("timeout"));
        assert!(err("databse = \"x\"").contains("databse"));
    }
}
