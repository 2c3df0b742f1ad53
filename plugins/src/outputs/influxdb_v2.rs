//! `outputs.influxdb_v2`: InfluxDB 2.x's `/api/v2/write` API (also served by
//! InfluxDB 1.8+, InfluxDB 3 and graft's own listener), with Telegraf's
//! options and answers: 2xx written; 413 splits the request in halves until
//! it fits; 429 and 502/503/504 keep the metrics and wait `Retry-After` (at
//! most 10 min; an unreadable one counts as 10 s), or a backoff growing with
//! each throttle (n²/40 s, at most 60 s), whichever is longer; 401/403 keep
//! the metrics (fix the token and they go out); other 4xx reject; other 5xx
//! and network errors keep them for the next flush.

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::lineproto::{Serializer, SerializerOptions};
use graft_core::{Batch, PluginError, WriteError};
use serde::Deserialize;

use super::influx_http::{Endpoint, Reply, Writer};
use crate::builtin::{self, Builtin};
use crate::http::{self, WithHttpClient};

/// `[[outputs.influxdb_v2]]`: its own keys and the HTTP client's
/// ([`crate::http::ClientConfig`]).
pub type Config = WithHttpClient<Options>;

/// The keys of `[[outputs.influxdb_v2]]` besides the HTTP client's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `urls` (default `["http://localhost:8086"]`).
    #[serde(default)]
    pub urls: Vec<String>,
    /// `token`: sent as `Authorization: Token <token>`.
    #[serde(default)]
    pub token: String,
    /// `organization`, `bucket`.
    #[serde(default)]
    pub organization: String,
    /// `bucket` (required unless `bucket_tag`): where metrics go.
    #[serde(default)]
    pub bucket: String,
    /// `bucket_tag`, `exclude_bucket_tag`: route by a tag's value.
    #[serde(default)]
    pub bucket_tag: String,
    /// `exclude_bucket_tag` (default false): leave that tag out of what is
    /// written.
    #[serde(default)]
    pub exclude_bucket_tag: bool,
    /// `influx_uint_support`, `influx_omit_timestamp` (default false).
    #[serde(default)]
    pub influx_uint_support: bool,
    /// `influx_omit_timestamp` (default false): let the server stamp the time.
    #[serde(default)]
    pub influx_omit_timestamp: bool,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<InfluxDbV2>(table)
}

impl Builtin for InfluxDbV2 {
    const NAME: &'static str = "influxdb_v2";
    type Config = Config;
    type Plugin = dyn Output;

    fn validate(config: &Config) -> Result<()> {
        config.shared.validate()?;
        for u in &config.own.urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!("urls: {u:?} is not an http:// or https:// URL");
            }
        }
        if config.own.bucket.is_empty() && config.own.bucket_tag.is_empty() {
            bail!("bucket: set a bucket (or bucket_tag)");
        }
        Ok(())
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Ok(Box::new(InfluxDbV2::new(config)?))
    }
}

/// The `influxdb_v2` output.
pub struct InfluxDbV2 {
    writer: Writer<V2>,
    bucket: String,
    bucket_tag: String,
}

impl InfluxDbV2 {
    /// Check the config and build the HTTP client.
    pub fn new(config: Config) -> Result<Self> {
        <Self as Builtin>::validate(&config)?;
        let client = config.shared.client()?;
        let encoding = config.shared.content_encoding;
        let mut config = config.own;
        if config.urls.is_empty() {
            config.urls.push("http://localhost:8086".into());
        }
        let serializer = Serializer::new(SerializerOptions {
            uint_support: config.influx_uint_support,
            omit_timestamp: config.influx_omit_timestamp,
            exclude_tags: if config.exclude_bucket_tag && !config.bucket_tag.is_empty() {
                vec![config.bucket_tag.clone()]
            } else {
                Vec::new()
            },
            ..SerializerOptions::default()
        });
        let endpoint = V2 {
            token: config.token,
            organization: config.organization,
        };
        Ok(Self {
            writer: Writer::new(client, config.urls, encoding, serializer, endpoint),
            bucket: config.bucket,
            bucket_tag: config.bucket_tag,
        })
    }
}

#[async_trait]
impl Output for InfluxDbV2 {
    async fn probe(&mut self) -> Result<(), PluginError> {
        super::influx_http::ping_all(&self.writer.client, &self.writer.urls).await
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        let (bucket, tag) = (&self.bucket, &self.bucket_tag);
        self.writer
            .write(batch, |m| {
                (!tag.is_empty())
                    .then(|| m.tag(tag))
                    .flatten()
                    .unwrap_or(bucket)
                    .to_owned()
            })
            .await
    }
}

/// InfluxDB 2.x's write API.
struct V2 {
    token: String,
    organization: String,
}

impl Endpoint for V2 {
    fn request(
        &self,
        client: &reqwest::Client,
        url: &str,
        bucket: &str,
        body: Vec<u8>,
        encoding: Option<&'static str>,
    ) -> reqwest::RequestBuilder {
        let mut r = client
            .post(format!("{}/api/v2/write", url.trim_end_matches('/')))
            .query(&[("org", self.organization.as_str()), ("bucket", bucket)])
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body);
        if let Some(e) = encoding {
            r = r.header("Content-Encoding", e);
        }
        if !self.token.is_empty() {
            r = r.header("Authorization", format!("Token {}", self.token));
        }
        r
    }

    fn classify(&self, status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> Reply {
        let message = http::server_error(headers, body);
        match status {
            200..=299 => Reply::Written,
            413 => Reply::TooLarge,
            429 | 502 | 503 | 504 => Reply::Throttle {
                message: format!("{status}: {message}"),
                retry_after: http::retry_after(headers),
            },
            401 | 403 => Reply::Unavailable(format!(
                "{status}: {message}; check the token and its write permission on the bucket (metrics are kept)"
            )),
            404 => Reply::NotFound(format!("404: {message}; check organization and bucket")),
            400..=499 => Reply::Reject(format!("{status}: {message}")),
            _ => Reply::Unavailable(format!("{status}: {message}")),
        }
    }
}
