//! `inputs.prometheus`: scrapes Prometheus endpoints (`urls`) at every
//! interval, as Telegraf's input does, reading the text format 0.0.4 or
//! OpenMetrics (by the response's `Content-Type`, or
//! `content_type_override`) into metrics with Telegraf's `metric_version`
//! 1 or 2 mapping (see [`crate::prometheus::text::schema`]), each tagged
//! with its target (`url_tag`) and typed (counter, gauge, summary,
//! histogram, untyped).
//!
//! - Targets are scraped concurrently (at most 16 at once); a target that
//!   fails (refused, timed out, not 200, body over `content_length_limit`,
//!   more than `max_samples` samples or `max_decoded_size` bytes once read)
//!   loses only its own scrape. A failure
//!   is logged when a target starts failing and when it recovers, not at
//!   every interval; every failed scrape is counted.
//! - A bad line costs only itself (counted in `parse_errors`, the first
//!   one logged with its line number); the rest of the body is kept.
//! - `bearer_token` (a file, read at every scrape), `bearer_token_string`,
//!   `username`/`password`, `http_headers`, the TLS keys
//!   ([`crate::tls::TlsConfig`]), `timeout` (the whole scrape, default 5s)
//!   and `response_timeout` (until the headers).
//! - Service discovery (Kubernetes, Consul, HTTP) is refused with an error
//!   naming the key; list the targets in `urls`.
//!
//! It runs as a service input (as in Telegraf) so that its counters reach
//! `inputs.internal`: `scrapes`, `scrape_errors`, `samples_read`,
//! `timeouts`, `response_timeouts`, `body_size_limit_hits`,
//! `line_size_limit_hits`, `labels_limit_hits`, `samples_limit_hits`,
//! `decoded_size_limit_hits`.

mod config;
mod scrape;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use async_trait::async_trait;
use futures_util::StreamExt;
use graft_api::counters::Counters;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, BatchBuilder, PluginError};

use crate::builtin::{self, Builtin};
use crate::prometheus::text::{self, schema::Mapping};
pub use config::{Config, DEFAULT_BODY_LIMIT, Settings};
use scrape::{Body, ScrapeError};

/// Targets scraped at once.
const MAX_CONCURRENT_SCRAPES: usize = 16;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Prometheus>(table)
}

impl Builtin for Prometheus {
    const NAME: &'static str = "prometheus";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Prometheus::new(&config)?))
    }
}

/// The input.
pub struct Prometheus {
    settings: Settings,
    client: reqwest::Client,
    /// Per target: whether its last scrape failed, whether its last body
    /// had bad lines (each logged once until it recovers).
    state: Vec<(bool, bool)>,
    stats: Stats,
    sink: Option<MetricSink>,
}

/// The input's own counters (`docs/instrumentation.md`).
struct Stats {
    scrapes: Arc<AtomicU64>,
    scrape_errors: Arc<AtomicU64>,
    samples_read: Arc<AtomicU64>,
    timeouts: Arc<AtomicU64>,
    response_timeouts: Arc<AtomicU64>,
    body_size_limit_hits: Arc<AtomicU64>,
    line_size_limit_hits: Arc<AtomicU64>,
    labels_limit_hits: Arc<AtomicU64>,
    samples_limit_hits: Arc<AtomicU64>,
    decoded_size_limit_hits: Arc<AtomicU64>,
}

impl Stats {
    fn new(counter: impl Fn(&'static str) -> Arc<AtomicU64>) -> Self {
        Self {
            scrapes: counter("scrapes"),
            scrape_errors: counter("scrape_errors"),
            samples_read: counter("samples_read"),
            timeouts: counter("timeouts"),
            response_timeouts: counter("response_timeouts"),
            body_size_limit_hits: counter("body_size_limit_hits"),
            line_size_limit_hits: counter("line_size_limit_hits"),
            labels_limit_hits: counter("labels_limit_hits"),
            samples_limit_hits: counter("samples_limit_hits"),
            decoded_size_limit_hits: counter("decoded_size_limit_hits"),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Why a target gave nothing this time.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Scrape(#[from] ScrapeError),
    #[error(transparent)]
    Refused(#[from] text::Refused),
    #[error("reading the body failed: {0}")]
    Reader(String),
}

impl Prometheus {
    /// Resolve the config and build the HTTP client (reads the TLS files);
    /// nothing is requested until the first gather.
    pub fn new(config: &Config) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        let client = scrape::client(&settings, &config.own.shared)?;
        let local = Arc::new(Counters::default());
        Ok(Self {
            state: vec![(false, false); settings.targets.len()],
            settings,
            client,
            stats: Stats::new(|name| local.counter(name)),
            sink: None,
        })
    }

    /// Turn a body into metrics, counting what was skipped.
    fn read(
        &mut self,
        i: usize,
        parsed: Result<text::Exposition, text::Refused>,
        format: text::Format,
        now_ns: i64,
        out: &mut BatchBuilder,
    ) -> Result<usize, Failure> {
        let target = &self.settings.targets[i];
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                add(
                    match e {
                        text::Refused::Samples(_) => &self.stats.samples_limit_hits,
                        text::Refused::DecodedSize(_) => &self.stats.decoded_size_limit_hits,
                    },
                    1,
                );
                return Err(e.into());
            }
        };
        add(&self.stats.samples_read, parsed.samples as u64);
        add(
            &self.stats.line_size_limit_hits,
            parsed.line_size_limit_hits,
        );
        add(&self.stats.labels_limit_hits, parsed.labels_limit_hits);
        if let Some(sink) = &self.sink {
            sink.malformed(parsed.malformed);
        }
        let bad_lines = &mut self.state[i].1;
        match &parsed.first_error {
            Some((line, error)) if !*bad_lines => {
                *bad_lines = true;
                tracing::warn!(
                    url = %target.tag,
                    line,
                    %error,
                    skipped = parsed.malformed,
                    "lines of the body skipped, the rest kept (logged again after a clean scrape)"
                );
            }
            Some(_) => {}
            None => *bad_lines = false,
        }
        let mut tags = Vec::new();
        if !self.settings.url_tag.is_empty() {
            tags.push((self.settings.url_tag.as_str(), target.tag.as_str()));
        }
        let mapping = Mapping {
            version: self.settings.version,
            format,
            ignore_timestamp: self.settings.ignore_timestamp,
            now_ns,
            tags: &tags,
        };
        Ok(mapping.add(&parsed.families, out))
    }

    /// Count and log (on a change of state) the outcome of target `i`.
    fn outcome(&mut self, i: usize, result: &Result<usize, Failure>) {
        let url = &self.settings.targets[i].tag;
        let failing = &mut self.state[i].0;
        match result {
            Ok(metrics) => {
                if *failing {
                    tracing::info!(url = %url, metrics, "target answers again");
                }
                *failing = false;
            }
            Err(error) => {
                add(&self.stats.scrape_errors, 1);
                match error {
                    Failure::Scrape(ScrapeError::Timeout(_)) => add(&self.stats.timeouts, 1),
                    Failure::Scrape(ScrapeError::ResponseTimeout(_)) => {
                        add(&self.stats.response_timeouts, 1);
                    }
                    Failure::Scrape(ScrapeError::BodyTooLarge(_)) => {
                        add(&self.stats.body_size_limit_hits, 1);
                    }
                    _ => {}
                }
                if *failing {
                    tracing::debug!(url = %url, %error, "scrape failed again");
                } else {
                    *failing = true;
                    tracing::warn!(
                        url = %url,
                        %error,
                        "scrape failed; nothing from this target this time, the other targets go on \
                         (further failures are quiet until it recovers)"
                    );
                }
            }
        }
    }
}

#[async_trait]
impl Input for Prometheus {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let now_ns = crate::inputs::now_ns();
        let bodies: Vec<Result<Body, ScrapeError>> = {
            let (client, settings) = (&self.client, &self.settings);
            let scrapes: Vec<_> = settings
                .targets
                .iter()
                .map(|t| scrape::scrape(client, settings, t))
                .collect();
            futures_util::stream::iter(scrapes)
                .buffered(MAX_CONCURRENT_SCRAPES)
                .collect()
                .await
        };
        let mut out = BatchBuilder::new();
        for (i, body) in bodies.into_iter().enumerate() {
            add(&self.stats.scrapes, 1);
            let (result, response) = match body {
                Ok(Body {
                    bytes,
                    format,
                    response_time,
                }) => {
                    let response = Some((response_time, bytes.len()));
                    let limits = self.settings.limits;
                    // Reading a large body is CPU work: off the reactor.
                    let parsed =
                        tokio::task::spawn_blocking(move || text::parse(&bytes, format, &limits))
                            .await;
                    let result = match parsed {
                        Ok(parsed) => self.read(i, parsed, format, now_ns, &mut out),
                        Err(e) => Err(Failure::Reader(e.to_string())),
                    };
                    (result, response)
                }
                Err(e) => (Err(e.into()), None),
            };
            self.outcome(i, &result);
            if self.settings.request_metrics
                && let Some((response_time, length)) = response
            {
                let mut m = out.metric("prometheus_request", now_ns);
                if !self.settings.url_tag.is_empty() {
                    m.tag(&self.settings.url_tag, &self.settings.targets[i].tag);
                }
                m.field("response_time", response_time)
                    .field("content_length", length as i64);
            }
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
