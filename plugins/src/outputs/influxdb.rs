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

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::lineproto::{Serializer, SerializerOptions};
use graft_core::{Batch, PluginError, WriteError};
use serde::Deserialize;

use super::influx_http::{Endpoint, Reply, Writer, error_chain};
use crate::duration::de_duration;
use crate::http::{self, ClientOptions, ContentEncoding, TlsOptions};

/// `[[outputs.influxdb]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
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
    #[serde(default)]
    pub exclude_retention_policy_tag: bool,
    /// `write_consistency`: any, one, quorum, all (clusters only).
    #[serde(default)]
    pub write_consistency: String,
    /// `timeout` (default 5s).
    #[serde(default = "default_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `username`, `password`: HTTP basic authentication.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// `user_agent` (default `graft/<version>`).
    #[serde(default = "http::default_user_agent")]
    pub user_agent: String,
    /// `http_headers`: extra headers on every request.
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    /// `http_proxy`.
    #[serde(default)]
    pub http_proxy: Option<String>,
    /// `content_encoding` (default `"gzip"`, or `"identity"`).
    #[serde(default)]
    pub content_encoding: String,
    /// `skip_database_creation` (default false).
    #[serde(default)]
    pub skip_database_creation: bool,
    /// `influx_uint_support`, `influx_omit_timestamp` (default false).
    #[serde(default)]
    pub influx_uint_support: bool,
    #[serde(default)]
    pub influx_omit_timestamp: bool,
    /// TLS: `tls_ca`, `tls_cert`, `tls_key`, `insecure_skip_verify`.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn default_database() -> String {
    "telegraf".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    let config: Config = crate::config::parse(table)?;
    Ok(Box::new(InfluxDb::new(config)?))
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
    pub fn new(mut config: Config) -> Result<Self> {
        if let Some(url) = config.url.take() {
            config.urls.push(url);
        }
        if config.urls.is_empty() {
            config.urls.push("http://localhost:8086".into());
        }
        for u in &config.urls {
            match u.split_once("://").map(|(s, _)| s) {
                Some("http" | "https") => {}
                Some("udp" | "udp4" | "udp6" | "unix") => {
                    bail!("urls: {u:?}: only http:// and https:// are supported so far")
                }
                _ => bail!("urls: {u:?} is not an http:// or https:// URL"),
            }
        }
        if config.database.is_empty() && config.database_tag.is_empty() {
            bail!("database: must not be empty");
        }
        match config.write_consistency.as_str() {
            "" | "any" | "one" | "quorum" | "all" => {}
            other => bail!("write_consistency: {other:?} is not one of any, one, quorum, all"),
        }
        let encoding = ContentEncoding::parse(&config.content_encoding)?;
        let client = http::client(&ClientOptions {
            timeout: config.timeout,
            user_agent: config.user_agent.clone(),
            headers: config.http_headers.clone(),
            http_proxy: config.http_proxy.clone(),
            tls: TlsOptions {
                ca: config.tls_ca.clone(),
                cert: config.tls_cert.clone(),
                key: config.tls_key.clone(),
                insecure_skip_verify: config.insecure_skip_verify,
            },
        })?;
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
            writer: Writer::new(
                client,
                config.urls,
                encoding,
                serializer,
                endpoint,
                "outputs.influxdb",
            ),
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

/// InfluxDB 1.x's write API.
struct V1 {
    consistency: Option<String>,
    username: String,
    password: String,
    skip_database_creation: bool,
    /// Databases created (or found) at `url\ndb`.
    created: Mutex<HashSet<String>>,
}

impl V1 {
    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.username.is_empty() && self.password.is_empty() {
            r
        } else {
            r.basic_auth(&self.username, Some(&self.password))
        }
    }
}

fn split_target(target: &str) -> (&str, &str) {
    target.split_once(SEP).unwrap_or((target, ""))
}

/// `"name"` with `"` and `\` escaped, for InfluxQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Endpoint for V1 {
    fn request(
        &self,
        client: &reqwest::Client,
        url: &str,
        target: &str,
        body: Vec<u8>,
        encoding: Option<&'static str>,
    ) -> reqwest::RequestBuilder {
        let (db, rp) = split_target(target);
        let mut query = vec![("db", db)];
        if !rp.is_empty() {
            query.push(("rp", rp));
        }
        if let Some(c) = &self.consistency {
            query.push(("consistency", c));
        }
        let mut r = client
            .post(format!("{}/write", url.trim_end_matches('/')))
            .query(&query)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body);
        if let Some(e) = encoding {
            r = r.header("Content-Encoding", e);
        }
        self.auth(r)
    }

    fn classify(&self, status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> Reply {
        let message = http::server_error(headers, body);
        match status {
            200..=299 => Reply::Written,
            413 => Reply::TooLarge,
            401 => Reply::Unavailable(format!(
                "401 unauthorized: {message}; check username and password (metrics are kept)"
            )),
            403 => Reply::Unavailable(format!(
                "403 forbidden: {message}; the user may not write to this database (metrics are kept)"
            )),
            _ if message.contains("database not found") => Reply::NotFound(format!(
                "{status}: {message}{}",
                if self.skip_database_creation {
                    " (skip_database_creation is set: create it, or unset that option)"
                } else {
                    ""
                }
            )),
            400 if message.contains("partial write") || message.contains("unable to parse") => {
                Reply::Partial {
                    bad_lines: unparsable_lines(&message),
                    dropped: dropped_count(&message),
                    message,
                }
            }
            404 => Reply::Unavailable(format!(
                "404 not found: {message}; is this URL an InfluxDB 1.x server? (metrics are kept)"
            )),
            503 | 429 => Reply::Throttle {
                message: format!("{status}: {message}"),
                retry_after: http::retry_after(headers),
            },
            400..=499 => Reply::Reject(format!("{status}: {message}")),
            _ => Reply::Unavailable(format!("{status}: {message}")),
        }
    }

    async fn create_target(&self, client: &reqwest::Client, url: &str, target: &str) -> bool {
        let (db, _) = split_target(target);
        if self.skip_database_creation {
            return false;
        }
        let key = format!("{url}\n{db}");
        if self
            .created
            .lock()
            .map(|c| c.contains(&key))
            .unwrap_or(false)
        {
            // Created before and missing again: someone dropped it; create
            // it again below.
            tracing::info!(
                plugin = "outputs.influxdb",
                "database {db:?} is missing at {url} again"
            );
        }
        let q = format!("CREATE DATABASE {}", quote_ident(db));
        let r = self.auth(
            client
                .post(format!("{}/query", url.trim_end_matches('/')))
                .query(&[("q", q.as_str())]),
        );
        match r.send().await {
            Ok(resp) if resp.status().is_success() => {
                let text = resp.text().await.unwrap_or_default();
                if text.contains("\"error\"") {
                    tracing::warn!(
                        plugin = "outputs.influxdb",
                        "{url}: creating database {db:?}: {}",
                        http::server_error(&Default::default(), &text)
                    );
                    return false;
                }
                if let Ok(mut c) = self.created.lock() {
                    c.insert(key);
                }
                tracing::info!(
                    plugin = "outputs.influxdb",
                    "database {db:?} created (or already there) at {url}"
                );
                true
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let text = resp.text().await.unwrap_or_default();
                tracing::warn!(
                    plugin = "outputs.influxdb",
                    "{url}: creating database {db:?}: {status}: {}{}",
                    http::server_error(&headers, &text),
                    if status == 401 || status == 403 {
                        "; the user needs admin rights to create it, or set skip_database_creation = true"
                    } else {
                        ""
                    }
                );
                false
            }
            Err(e) => {
                tracing::warn!(
                    plugin = "outputs.influxdb",
                    "{url}: creating database {db:?}: {}",
                    error_chain(&e)
                );
                false
            }
        }
    }
}

/// The lines InfluxDB 1.x quotes in `unable to parse '<line>': <reason>`.
fn unparsable_lines(message: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find("unable to parse '") {
        rest = &rest[at + "unable to parse '".len()..];
        // The line ends at the last `': ` before the next report.
        let next = rest.find("unable to parse '").unwrap_or(rest.len());
        if let Some(end) = rest[..next].rfind("': ") {
            lines.push(rest[..end].to_owned());
        }
        rest = &rest[next..];
    }
    lines
}

/// The `dropped=N` count of a partial write.
fn dropped_count(message: &str) -> usize {
    message
        .rfind("dropped=")
        .map(|at| &message[at + "dropped=".len()..])
        .and_then(|s| {
            s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())]
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_influxdb_partial_write_messages() {
        let m = "partial write: unable to parse 'bad line 1': invalid field format\nunable to parse 'x,a=\\'b\\' y=': missing fields dropped=0";
        assert_eq!(unparsable_lines(m), vec!["bad line 1", "x,a=\\'b\\' y="]);
        assert_eq!(dropped_count(m), 0);
        let m = "partial write: field type conflict: input field \"v\" on measurement \"m\" is type float, already exists as type integer dropped=3";
        assert!(unparsable_lines(m).is_empty());
        assert_eq!(dropped_count(m), 3);
    }

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
