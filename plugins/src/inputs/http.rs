//! `inputs.http`: fetches each of `urls` at every interval and reads the
//! body in its `data_format` (influx, json, ...; see
//! [`crate::format::ParserConfig`]), as Telegraf's input does; every
//! metric without a `url` tag gets one with the URL as written.
//!
//! URLs are fetched concurrently (at most 16 at once). A URL that fails
//! (refused, timed out, a status not in `success_status_codes`, a body
//! over `max_body_size`, or a body that would take the bodies of this
//! gather's URLs together over 64 MiB or `max_body_size`, whichever is
//! larger) loses only its own metrics this time, is counted,
//! and is logged when it starts failing and when it recovers; a bad line
//! costs only that line (counted in `parse_errors`, the first one logged
//! until a clean body). Counters: `requests`, `request_errors`,
//! `timeouts`, `body_size_limit_hits`.

mod config;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Result;
use async_trait::async_trait;
use futures_util::StreamExt;
use graft_api::counters::Counters;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, BatchBuilder, PluginError};
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, HOST};

use super::http_client::fetch::{self, Budget, FetchError};
use super::http_client::{self, Health, Stats};
use crate::builtin::{self, Builtin, Deprecated};
pub use config::{Config, Settings};

/// URLs fetched at once.
const MAX_CONCURRENT: usize = 16;

/// Bytes of body all URLs may hold together in one gather (or
/// `max_body_size`, when larger).
const GATHER_BODY_BUDGET: u64 = 64 * 1024 * 1024;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Http>(table)
}

impl Builtin for Http {
    const NAME: &'static str = "http";
    type Config = Config;
    type Plugin = dyn Input;
    const DEPRECATED: &'static [Deprecated] = &[Deprecated {
        key: "bearer_token",
        instead: Some("token_file"),
        ignored: false,
        note: "deprecated in 1.28.0, use token_file; graft still reads the file",
    }];

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Http::new(&config)?))
    }
}

/// The input.
pub struct Http {
    settings: Settings,
    clients: Vec<reqwest::Client>,
    health: Health,
    /// Per URL: whether its last body had bad lines (logged once).
    bad_lines: Vec<bool>,
    stats: Stats,
    sink: Option<MetricSink>,
}

/// Why a URL gave nothing.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("token_file: reading {path}: {error}")]
    TokenFile { path: String, error: std::io::Error },
    #[error("answered HTTP {status}, not one of success_status_codes {expected:?}")]
    Status { status: u16, expected: Vec<u16> },
}

impl Http {
    /// Resolve the config and build the clients (reads the TLS files).
    pub fn new(config: &Config) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        let clients = http_client::clients(&settings.client, &settings.endpoints)?;
        let local = Arc::new(Counters::default());
        let n = settings.endpoints.len();
        Ok(Self {
            health: Health::new(n),
            bad_lines: vec![false; n],
            settings,
            clients,
            stats: Stats::new(|name| local.counter(name)),
            sink: None,
        })
    }

    async fn fetch_one(&self, i: usize, budget: &Budget) -> Result<Vec<u8>, Failure> {
        let s = &self.settings;
        let client = &self.clients[i];
        let mut b = client.request(s.method.clone(), s.endpoints[i].url.clone());
        if let Some((body, gzip)) = &s.body {
            b = b.body(body.clone());
            if *gzip {
                b = b.header(CONTENT_ENCODING, "gzip");
            }
        }
        if let Some(token) = &s.token {
            b = b.header(AUTHORIZATION, format!("Bearer {token}"));
        } else if let Some(path) = &s.token_file {
            let token =
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|error| Failure::TokenFile {
                        path: path.clone(),
                        error,
                    })?;
            b = b.header(
                AUTHORIZATION,
                format!("Bearer {}", token.trim_end_matches('\n')),
            );
        }
        if let Some((user, password)) = &s.basic {
            b = b.basic_auth(user, Some(password));
        }
        let mut request = b
            .build()
            .map_err(|e| FetchError::Request(fetch::chain(&e)))?;
        for (k, v) in &s.headers {
            request.headers_mut().append(k.clone(), v.clone());
        }
        if let Some(host) = &s.host {
            request.headers_mut().insert(HOST, host.clone());
        }
        let response =
            fetch::send(client, request, s.client.timeout, s.client.response_timeout).await?;
        let status = response.status().as_u16();
        if !s.success.contains(&status) {
            return Err(Failure::Status {
                status,
                expected: s.success.clone(),
            });
        }
        fetch::read_body(response, s.max_body_size, s.client.timeout, Some(budget))
            .await
            .map_err(|(e, _)| e.into())
    }

    /// Parse URL `i`'s body into `out`, tagging with `url`.
    fn read(&mut self, i: usize, body: &[u8], now: i64, out: &mut BatchBuilder) {
        let url = &self.settings.endpoints[i].shown;
        let mut parsed = BatchBuilder::new();
        let result = self.settings.parser.parse(body, now, &mut parsed);
        if let Some(sink) = &self.sink {
            sink.malformed(result.malformed as u64);
        }
        match (&result.first_error, self.bad_lines[i]) {
            (Some(error), false) => {
                self.bad_lines[i] = true;
                tracing::warn!(
                    url = %url,
                    %error,
                    skipped = result.malformed,
                    "parts of the body skipped, the rest kept (logged again after a clean body)"
                );
            }
            (None, _) => self.bad_lines[i] = false,
            _ => {}
        }
        for m in parsed.finish().iter() {
            if m.tag("url").is_some() {
                out.push(m);
                continue;
            }
            let mut b = out.metric(m.name(), m.timestamp());
            b.kind(m.kind());
            for (k, v) in m.tags() {
                b.tag(k, v);
            }
            b.tag("url", url);
            for (k, v) in m.fields() {
                b.field(k, v);
            }
        }
    }
}

#[async_trait]
impl Input for Http {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let now = crate::inputs::now_ns();
        let budget = Budget::new(GATHER_BODY_BUDGET.max(self.settings.max_body_size));
        let results: Vec<Result<Vec<u8>, Failure>> = {
            let this = &*self;
            let budget = &budget;
            let n = this.settings.endpoints.len();
            futures_util::stream::iter((0..n).map(|i| this.fetch_one(i, budget)))
                .buffered(MAX_CONCURRENT)
                .collect()
                .await
        };
        let mut out = BatchBuilder::new();
        for (i, result) in results.into_iter().enumerate() {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let error = match result {
                Ok(body) => {
                    self.read(i, &body, now, &mut out);
                    None
                }
                Err(e) => {
                    self.stats.request_errors.fetch_add(1, Ordering::Relaxed);
                    match &e {
                        Failure::Fetch(f) if f.is_timeout() => {
                            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                        Failure::Fetch(
                            FetchError::BodyTooLarge { .. } | FetchError::BudgetExhausted { .. },
                        ) => {
                            self.stats
                                .body_size_limit_hits
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                    Some(e)
                }
            };
            let shown = &self.settings.endpoints[i].shown;
            let error = error.as_ref().map(|e| e as &dyn std::fmt::Display);
            self.health.record(i, shown, error);
        }
        Ok(out.finish())
    }

    /// A service input only to keep its counters where `inputs.internal`
    /// reads them; it gathers on the agent's interval.
    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        self.stats = Stats::new(|name| sink.counter(name));
        self.sink = Some(sink);
        Ok(())
    }
}
