//! `outputs.opentelemetry`: graft metrics as OTLP metrics, exported to an
//! OpenTelemetry collector or any OTLP receiver, with Telegraf's mapping
//! ([`crate::opentelemetry::from_graft`]: kinds to Gauge, Sum, Histogram
//! and Summary; measurement `prometheus` read as schema v2).
//!
//! - `service_address = "host:port"` exports over OTLP/gRPC (gzip by
//!   default); `"http://..."`/`"https://..."` over OTLP/HTTP, protobuf or
//!   JSON (`encoding_type`), as Telegraf decides it.
//! - A write succeeds only when the receiver answered OK. Transport errors,
//!   gRPC UNAVAILABLE and the like, HTTP 429/5xx are retried (the host
//!   keeps the batch); gRPC INVALID_ARGUMENT and HTTP 400 reject the
//!   batch (counted as `metrics_rejected`). A request too large for the
//!   receiver (HTTP 413, gRPC RESOURCE_EXHAUSTED / OUT_OF_RANGE about the
//!   message size) is sent again in two halves; a single metric too large
//!   is rejected alone.
//! - A metric that cannot be converted is rejected alone (the others are
//!   exported); data points the receiver turns down in a partial success
//!   cannot be told apart from the others: they are logged (at most every
//!   10 s) with the receiver's count and message.

mod config;
mod send;
#[cfg(test)]
mod tests;

use std::time::Instant;

use send::SendError;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::{Batch, PluginError, WriteError};

use crate::builtin::{self, Builtin};
use crate::opentelemetry::from_graft;
pub use config::{Compression, Config, EncodingType};
use send::Transport;

/// Build `outputs.opentelemetry`.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<OpenTelemetry>(table)
}

impl Builtin for OpenTelemetry {
    const NAME: &'static str = "opentelemetry";
    type Config = Config;
    type Plugin = dyn Output;

    fn validate(config: &Config) -> Result<()> {
        check(config)
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Ok(Box::new(OpenTelemetry::new(config)?))
    }
}

/// Whether `service_address` names an OTLP/HTTP endpoint.
fn is_http(address: &str) -> bool {
    address.starts_with("http://") || address.starts_with("https://")
}

/// What the types cannot say. Pure: no file is read.
fn check(c: &Config) -> Result<()> {
    if c.service_address.is_empty() {
        bail!("service_address: empty");
    }
    if c.coralogix.is_some() {
        bail!(
            "coralogix: Telegraf's Coralogix dialect is not supported; set its headers with `headers`"
        );
    }
    if c.use_proxy || c.proxy_url.is_some() {
        bail!("use_proxy/proxy_url: gRPC through a proxy is not supported");
    }
    if c.use_system_proxy {
        bail!(
            "use_system_proxy: graft does not read proxy settings from the environment; set http_proxy_url"
        );
    }
    if c.tls_cert.is_some() != c.tls_key.is_some() {
        bail!("tls_cert and tls_key: set both or neither");
    }
    if is_http(&c.service_address) {
        reqwest::Url::parse(&c.service_address).map_err(|e| {
            anyhow::anyhow!("service_address: {:?} is not a URL: {e}", c.service_address)
        })?;
    } else {
        if c.insecure_skip_verify {
            bail!("insecure_skip_verify: not supported with gRPC; set tls_ca to the server's CA");
        }
        if c.http_proxy_url.is_some() {
            bail!("http_proxy_url: for an http:// or https:// service_address only");
        }
        if c.encoding_type == EncodingType::Json {
            bail!("encoding_type: \"json\" is for an http:// or https:// service_address only");
        }
    }
    send::check_headers(c)?;
    Ok(())
}

/// The exporter.
pub struct OpenTelemetry {
    transport: Transport,
    resource: Vec<(String, String)>,
    separator: String,
    /// When a partial rejection was last logged.
    logged: Option<Instant>,
}

impl OpenTelemetry {
    /// Check the config and read the TLS files; nothing connects until the
    /// first export.
    pub fn new(config: Config) -> Result<Self> {
        check(&config)?;
        let resource = config
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            resource,
            separator: config.name_separator.clone(),
            transport: Transport::new(&config)?,
            logged: None,
        })
    }

    fn may_log(&mut self) -> bool {
        let now = Instant::now();
        let ok = self
            .logged
            .is_none_or(|t| now.duration_since(t).as_secs() >= 10);
        if ok {
            self.logged = Some(now);
        }
        ok
    }
}

#[async_trait]
impl Output for OpenTelemetry {
    async fn probe(&mut self) -> Result<(), PluginError> {
        self.transport.probe().await.map_err(PluginError::new)
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        // Rows still to send; a request the receiver finds too large is
        // sent again in two halves, a single metric too large is rejected.
        let mut pending = Vec::new();
        pending.push(0..batch.len());
        let (mut accepted, mut rejected) = (Vec::<u32>::new(), Vec::<u32>::new());
        let mut message: Option<String> = None;
        let mut first = true;
        while let Some(rows) = pending.pop() {
            let whole = std::mem::take(&mut first);
            let part = batch.slice(rows.clone());
            let converted = from_graft::convert(&part, &self.resource, &self.separator);
            if let Some(why) = &converted.first_error {
                message.get_or_insert_with(|| {
                    format!(
                        "{} metrics cannot be converted to OTLP, the first: {why}",
                        converted.skipped.len()
                    )
                });
            }
            if converted.data_points > 0 {
                match self.transport.export(converted.request).await {
                    Ok(answer) => {
                        if let Some(p) = answer
                            .partial_success
                            .filter(|p| p.rejected_data_points > 0)
                            && self.may_log()
                        {
                            tracing::warn!(
                                rejected_data_points = p.rejected_data_points,
                                message = %p.error_message,
                                "the receiver turned down some data points (logged at most every 10 s)"
                            );
                        }
                    }
                    Err(SendError::TooLarge(m)) if rows.len() > 1 => {
                        tracing::debug!(metrics = rows.len(), reason = %m, "request too large for the receiver; sending it again in two halves");
                        let mid = rows.start + rows.len() / 2;
                        pending.push(mid..rows.end);
                        pending.push(rows.start..mid);
                        continue;
                    }
                    Err(SendError::TooLarge(m)) => {
                        rejected.push(rows.start as u32);
                        message.get_or_insert(format!("a single metric is too large: {m}"));
                        continue;
                    }
                    Err(SendError::Write(e)) if whole => return Err(CallError::Returned(e)),
                    Err(SendError::Write(WriteError::Reject(m))) => {
                        rejected.extend(rows.map(|i| i as u32));
                        message.get_or_insert(m);
                        continue;
                    }
                    Err(SendError::Write(e)) => {
                        if accepted.is_empty() && rejected.is_empty() {
                            return Err(CallError::Returned(e));
                        }
                        // Keep the rest for a retry.
                        message.get_or_insert(e.to_string());
                        break;
                    }
                }
            }
            for i in rows.clone() {
                let row = (i - rows.start) as u32;
                if converted.skipped.binary_search(&row).is_ok() {
                    rejected.push(i as u32);
                } else {
                    accepted.push(i as u32);
                }
            }
        }
        if accepted.len() == batch.len() {
            return Ok(());
        }
        accepted.sort_unstable();
        rejected.sort_unstable();
        Err(CallError::Returned(WriteError::Partial {
            accepted,
            rejected,
            message: message.unwrap_or_default(),
        }))
    }
}
