//! `outputs.http`: metrics in any `data_format` (influx, json, graft,
//! prometheusremotewrite) sent to one URL, with Telegraf's keys.
//!
//! - One request per batch (`use_batch_format = true`, the default), or
//!   one per metric. With `data_format = "prometheusremotewrite"` a batch
//!   is one snappy-compressed `WriteRequest` (at most `metric_batch_size`
//!   metrics, 1000 by default) and the request carries
//!   `Content-Type: application/x-protobuf`, `Content-Encoding: snappy`
//!   and `X-Prometheus-Remote-Write-Version: 0.1.0` unless `headers` say
//!   otherwise.
//! - Answers, following Prometheus's remote write rules where Telegraf
//!   retries everything: 2xx written; 413 sends the batch again in halves,
//!   a single metric refused with 413 is rejected; 5xx, 408, 429 and
//!   network errors keep the metrics for the next flush; 401, 403 and 404
//!   keep them too (a credential or a path to fix, or a receiver not
//!   enabled yet); any other 4xx (a 400 for bad series) rejects them:
//!   counted in `metrics_rejected`, logged, never retried forever. A code
//!   in `non_retryable_statuscodes` always rejects, as in Telegraf.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::{Batch, PluginError, WriteError};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};

use crate::builtin::{self, Builtin};
use crate::config::With;
use crate::duration::de_duration;
use crate::format::{DataFormat, Serializer, SerializerConfig};
use crate::http::{ClientConfig, ContentEncoding, WithHttpClient};
use crate::outputs::influx_http::error_chain;

/// The keys of `[[outputs.http]]` besides the HTTP client's and the
/// serializer's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `url` (default `"http://127.0.0.1:8080/telegraf"`).
    #[serde(default = "default_url")]
    pub url: String,
    /// `method` (default `"POST"`): `POST`, `PUT` or `PATCH`.
    #[serde(default = "default_method")]
    pub method: String,
    /// `username`, `password` (default none): HTTP basic authentication.
    #[serde(default)]
    pub username: String,
    /// `password`: with `username`.
    #[serde(default)]
    pub password: String,
    /// `headers` (default none): headers of every request; they win over
    /// graft's own (`Content-Type`, ...). `Host` sets the request's host.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `use_batch_format` (default true): one request per batch; false,
    /// one per metric.
    #[serde(default = "yes")]
    pub use_batch_format: bool,
    /// `non_retryable_statuscodes` (default none): statuses whose metrics
    /// are rejected (dropped and counted) instead of kept.
    #[serde(default)]
    pub non_retryable_statuscodes: Vec<u16>,
    /// `http_proxy_url` (default none): as `http_proxy`.
    #[serde(default)]
    pub http_proxy_url: Option<String>,
    /// `use_system_proxy` (default false): accepted; set `http_proxy_url`.
    #[serde(default)]
    pub use_system_proxy: bool,
    /// `idle_conn_timeout`, `max_idle_conn`, `max_idle_conn_per_host`,
    /// `response_timeout`: accepted; graft's client keeps idle connections
    /// 90 s and `timeout` bounds each whole request.
    #[serde(default, deserialize_with = "de_duration")]
    pub idle_conn_timeout: Duration,
    /// See `idle_conn_timeout`.
    #[serde(default)]
    pub max_idle_conn: usize,
    /// See `idle_conn_timeout`.
    #[serde(default)]
    pub max_idle_conn_per_host: usize,
    /// See `idle_conn_timeout`.
    #[serde(default, deserialize_with = "de_duration")]
    pub response_timeout: Duration,
}

fn default_url() -> String {
    "http://127.0.0.1:8080/telegraf".into()
}

fn default_method() -> String {
    "POST".into()
}

fn yes() -> bool {
    true
}

/// Telegraf's keys graft does not implement: refused by name rather than
/// accepted and ignored, since each changes who the server thinks we are.
const UNSUPPORTED: &[&str] = &[
    "google_application_credentials",
    "aws_service",
    "region",
    "access_key",
    "secret_key",
    "token",
    "role_arn",
    "profile",
    "client_id",
    "client_secret",
    "token_url",
    "cookie_auth_url",
    "local_address",
];

/// `[[outputs.http]]`: its own keys, the HTTP client's and the
/// serializer's. `content_encoding` defaults to `"identity"` here, as in
/// Telegraf's `outputs.http`.
#[derive(Debug, Clone)]
pub struct Config(pub With<WithHttpClient<Options>, SerializerConfig>);

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        if let Some(key) = UNSUPPORTED.iter().find(|k| table.contains_key(**k)) {
            return Err(serde::de::Error::custom(format!(
                "key `{key}`: not supported by graft's outputs.http (use username/password or headers)"
            )));
        }
        table
            .entry("content_encoding")
            .or_insert_with(|| "identity".into());
        With::deserialize(toml::Value::Table(table))
            .map(Config)
            .map_err(serde::de::Error::custom)
    }
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<Http>(table)
}

impl Builtin for Http {
    const NAME: &'static str = "http";
    type Config = Config;
    type Plugin = dyn Output;

    fn validate(config: &Config) -> Result<()> {
        let (own, client, format) = (&config.0.own.own, &config.0.own.shared, &config.0.shared);
        client.validate()?;
        format.validate()?;
        let url = reqwest::Url::parse(&own.url)
            .map_err(|e| anyhow::anyhow!("url: {:?} is not a URL: {e}", own.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("url: {:?} is not an http:// or https:// URL", own.url);
        }
        method(&own.method)?;
        headers(&own.headers)?;
        if own.username.is_empty() && !own.password.is_empty() {
            bail!("password: set username too");
        }
        if format.data_format == DataFormat::PrometheusRemoteWrite
            && client.content_encoding == ContentEncoding::Gzip
        {
            bail!(
                "content_encoding: remote write bodies are snappy-compressed already; leave content_encoding unset or \"identity\""
            );
        }
        Ok(())
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Ok(Box::new(Http::new(config)?))
    }
}

fn method(m: &str) -> Result<reqwest::Method> {
    match m.to_ascii_uppercase().as_str() {
        "" | "POST" => Ok(reqwest::Method::POST),
        "PUT" => Ok(reqwest::Method::PUT),
        "PATCH" => Ok(reqwest::Method::PATCH),
        other => bail!("method: {other:?} is not one of \"POST\", \"PUT\", \"PATCH\""),
    }
}

fn headers(map: &BTreeMap<String, String>) -> Result<HeaderMap> {
    let mut out = HeaderMap::new();
    for (k, v) in map {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| anyhow::anyhow!("headers: {k:?} is not a header name"))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| anyhow::anyhow!("headers: the value of {k:?} is not valid"))?;
        out.insert(name, value);
    }
    Ok(out)
}

/// The `http` output.
pub struct Http {
    client: reqwest::Client,
    url: String,
    method: reqwest::Method,
    headers: HeaderMap,
    basic: Option<(String, String)>,
    encoding: ContentEncoding,
    serializer: Serializer,
    batch_format: bool,
    non_retryable: Vec<u16>,
}

/// How the server answered one request.
enum Reply {
    Written,
    TooLarge,
    Keep(String),
    Reject(String),
}

impl Http {
    /// Check the config and build the HTTP client (TLS files are read).
    pub fn new(config: Config) -> Result<Self> {
        <Self as Builtin>::validate(&config)?;
        let With {
            own: With { own, shared },
            shared: format,
        } = config.0;
        let mut client = shared;
        if client.http_proxy.is_none() {
            client.http_proxy = own.http_proxy_url.clone();
        }
        let serializer = format.build()?;
        let mut base = default_headers(serializer.format());
        // The user's headers win over graft's.
        for (k, v) in headers(&own.headers)? {
            if let Some(k) = k {
                base.insert(k, v);
            }
        }
        Ok(Self {
            client: ClientConfig::client(&client)?,
            url: own.url,
            method: method(&own.method)?,
            headers: base,
            basic: (!own.username.is_empty()).then_some((own.username, own.password)),
            encoding: client.content_encoding,
            serializer,
            batch_format: own.use_batch_format,
            non_retryable: own.non_retryable_statuscodes,
        })
    }

    async fn post(&self, body: Vec<u8>) -> Reply {
        let (body, encoding) = self.encoding.encode(body);
        let mut request = self
            .client
            .request(self.method.clone(), &self.url)
            .headers(self.headers.clone());
        if let Some(e) = encoding {
            request = request.header(CONTENT_ENCODING, e);
        }
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => return Reply::Keep(error_chain(&e)),
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Reply::Written;
        }
        let text = response.text().await.unwrap_or_default();
        let mut cut = text.trim().len().min(1024);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let message = format!("{} answered {status}: {}", self.url, &text.trim()[..cut]);
        classify(status, &self.non_retryable, message)
    }

    /// Send `rows` of `batch` (all of it with the batch format), halving
    /// on 413; indices of what was written and rejected go to `tally`.
    async fn send(&self, batch: &Batch, tally: &mut Tally) {
        let mut pending = Vec::new();
        pending.push(0..batch.len());
        while let Some(rows) = pending.pop() {
            let part = batch.slice(rows.clone());
            let mut body = Vec::new();
            let left_out = self.serializer.batch(&part, &mut body);
            if left_out > 0 {
                tracing::debug!(
                    metrics = left_out,
                    "metrics with nothing this data format can carry were left out"
                );
            }
            match self.post(body).await {
                Reply::Written => tally.accepted.extend(rows.map(|i| i as u32)),
                Reply::TooLarge if rows.len() > 1 => {
                    let mid = rows.start + rows.len() / 2;
                    tracing::debug!(
                        metrics = rows.len(),
                        "request too large for the server; sending it again in two halves"
                    );
                    pending.push(mid..rows.end);
                    pending.push(rows.start..mid);
                }
                Reply::TooLarge => {
                    tally.reject(
                        rows,
                        format!("{}: a single metric is too large (413)", self.url),
                    );
                }
                Reply::Reject(m) => tally.reject(rows, m),
                Reply::Keep(m) => {
                    tally.message.get_or_insert(m);
                    return;
                }
            }
        }
    }
}

/// What one status means (see the module's documentation).
fn classify(status: u16, non_retryable: &[u16], message: String) -> Reply {
    match status {
        s if non_retryable.contains(&s) => Reply::Reject(message),
        413 => Reply::TooLarge,
        401 | 403 | 404 | 408 | 429 => Reply::Keep(message),
        400..=499 => Reply::Reject(message),
        _ => Reply::Keep(message),
    }
}

/// graft's headers for a format; `headers` may replace them.
fn default_headers(format: DataFormat) -> HeaderMap {
    let mut h = HeaderMap::new();
    let content_type = match format {
        DataFormat::PrometheusRemoteWrite => {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            h.insert(
                "X-Prometheus-Remote-Write-Version",
                HeaderValue::from_static("0.1.0"),
            );
            "application/x-protobuf"
        }
        DataFormat::Json => "application/json",
        DataFormat::Graft | DataFormat::Collectd => "application/octet-stream",
        DataFormat::Influx | DataFormat::Graphite => "text/plain; charset=utf-8",
    };
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h
}

/// What became of a batch's metrics.
#[derive(Default)]
struct Tally {
    accepted: Vec<u32>,
    rejected: Vec<u32>,
    message: Option<String>,
}

impl Tally {
    fn reject(&mut self, rows: std::ops::Range<usize>, message: String) {
        tracing::warn!(
            metrics = rows.len(),
            error = %message,
            "metrics rejected by the server and dropped"
        );
        self.rejected.extend(rows.map(|i| i as u32));
        self.message.get_or_insert(message);
    }

    fn into_result(self, total: usize) -> Result<(), CallError<WriteError>> {
        let message = self.message.unwrap_or_default();
        let err = if self.accepted.len() == total {
            return Ok(());
        } else if self.rejected.len() == total {
            WriteError::Reject(message)
        } else if self.accepted.is_empty() && self.rejected.is_empty() {
            WriteError::Retry(message)
        } else {
            WriteError::Partial {
                accepted: self.accepted,
                rejected: self.rejected,
                message,
            }
        };
        Err(CallError::Returned(err))
    }
}

#[async_trait]
impl Output for Http {
    /// Whether the server answers at all (any HTTP status); nothing is
    /// written.
    async fn probe(&mut self) -> Result<(), PluginError> {
        match self.client.head(&self.url).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(PluginError::new(format!(
                "{}: {}",
                self.url,
                error_chain(&e)
            ))),
        }
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        let mut tally = Tally::default();
        if self.batch_format {
            self.send(batch, &mut tally).await;
        } else {
            for i in 0..batch.len() {
                let mut body = Vec::new();
                if let Err(e) = self.serializer.metric(batch.get(i), &mut body) {
                    tracing::debug!(error = %e, "metric left out: nothing to send");
                    tally.accepted.push(i as u32);
                    continue;
                }
                match self.post(body).await {
                    Reply::Written => tally.accepted.push(i as u32),
                    Reply::TooLarge => tally.reject(i..i + 1, format!("{}: 413", self.url)),
                    Reply::Reject(m) => tally.reject(i..i + 1, m),
                    Reply::Keep(m) => {
                        tally.message.get_or_insert(m);
                        break;
                    }
                }
            }
        }
        tally.into_result(batch.len())
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
