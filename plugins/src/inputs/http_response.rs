//! `inputs.http_response`: requests each of `urls` at every interval and
//! reports how it answered, as Telegraf's input does: one `http_response`
//! metric per URL tagged `server`, `method`, `status_code` (when there was
//! a response) and `result`, with `response_time` (float seconds),
//! `http_response_code`, `content_length`, `response_string_match`,
//! `response_status_code_match`, `result_type` and `result_code` (see
//! [`Outcome`] for the result values and codes).
//!
//! URLs are requested concurrently (at most 16 at once), each on a new
//! connection as in Telegraf. A body is read up to
//! `response_body_max_size` and no further (a longer one is a
//! `body_read_error`). A URL that cannot be reached is still a metric
//! (`connection_failed`, `timeout`, `dns_error`), counted, and logged when
//! it starts failing and when it recovers. Counters: `requests`,
//! `request_errors`, `timeouts`, `body_size_limit_hits`.

mod config;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use async_trait::async_trait;
use futures_util::StreamExt;
use graft_api::counters::Counters;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, BatchBuilder, PluginError};
use reqwest::header::{AUTHORIZATION, HOST, HeaderValue, USER_AGENT};

use super::http_client::fetch::{self, FetchError};
use super::http_client::{Endpoint, Health, Stats, interface};
use crate::builtin::{self, Builtin, Deprecated};
pub use config::{Config, DEFAULT_BODY_MAX, Settings};

/// URLs requested at once.
const MAX_CONCURRENT: usize = 16;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<HttpResponse>(table)
}

impl Builtin for HttpResponse {
    const NAME: &'static str = "http_response";
    type Config = Config;
    type Plugin = dyn Input;
    const DEPRECATED: &'static [Deprecated] = &[
        Deprecated {
            key: "address",
            instead: Some("urls"),
            ignored: false,
            note: "deprecated in 1.12.0, use urls; graft still requests it as one more URL",
        },
        Deprecated {
            key: "bearer_token",
            instead: Some("token"),
            ignored: false,
            note: "deprecated in 1.39.0, use token; graft still reads the file",
        },
    ];

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(HttpResponse::new(&config)?))
    }
}

/// How one request ended: Telegraf's `result` tag and `result_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success = 0,
    ResponseStringMismatch = 1,
    BodyReadError = 2,
    ConnectionFailed = 3,
    Timeout = 4,
    DnsError = 5,
    ResponseStatusCodeMismatch = 6,
}

impl Outcome {
    /// The `result` tag and `result_type` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ResponseStringMismatch => "response_string_mismatch",
            Self::BodyReadError => "body_read_error",
            Self::ConnectionFailed => "connection_failed",
            Self::Timeout => "timeout",
            Self::DnsError => "dns_error",
            Self::ResponseStatusCodeMismatch => "response_status_code_mismatch",
        }
    }
}

impl Outcome {
    /// The result of a request that got no response headers.
    fn unanswered(e: &FetchError) -> Self {
        match e {
            FetchError::Dns(_) => Self::DnsError,
            e if e.is_timeout() => Self::Timeout,
            _ => Self::ConnectionFailed,
        }
    }
}

/// The input.
pub struct HttpResponse {
    settings: Settings,
    /// `clients[i]` requests URL `i`.
    clients: Vec<reqwest::Client>,
    health: Health,
    stats: Stats,
}

/// What one request gave, before it becomes a metric.
#[derive(Debug, Default)]
struct Report {
    outcome: Option<Outcome>,
    /// A failure worth a log line (network, body, token file).
    error: Option<String>,
    status: Option<u16>,
    response_time: Option<f64>,
    content_length: Option<i64>,
    string_match: Option<i64>,
    status_match: Option<i64>,
    body_field: Option<String>,
    header_tags: Vec<(String, String)>,
    body_too_large: bool,
    /// A time limit ended it (before or after the headers).
    timed_out: bool,
}

impl HttpResponse {
    /// Resolve the config and build the client (reads the TLS files).
    pub fn new(config: &Config) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        let clients = Self::clients(&settings)?;
        let local = Arc::new(Counters::default());
        Ok(Self {
            health: Health::new(settings.endpoints.len()),
            settings,
            clients,
            stats: Stats::new(|name| local.counter(name)),
        })
    }

    /// One client per URL: all the same, or with `interface`, the one
    /// connecting from the interface's address of the URL's family (as
    /// Telegraf: the interface's addresses are read once, here).
    fn clients(settings: &Settings) -> Result<Vec<reqwest::Client>> {
        let Some(name) = &settings.interface else {
            let client = settings.client.client(None)?;
            return Ok(vec![client; settings.endpoints.len()]);
        };
        let mut built: Vec<(std::net::IpAddr, reqwest::Client)> = Vec::new();
        let mut clients = Vec::new();
        for endpoint in &settings.endpoints {
            let from = interface::local_address_for(name, &endpoint.url)
                .with_context(|| format!("interface: {}", endpoint.shown))?;
            let client = match built.iter().find(|(a, _)| *a == from) {
                Some((_, c)) => c.clone(),
                None => {
                    let mut client = settings.client.clone();
                    client.local_address = Some(from);
                    let client = client.client(None)?;
                    built.push((from, client.clone()));
                    client
                }
            };
            clients.push(client);
        }
        Ok(clients)
    }

    /// The request to URL `i`, with the token file read now.
    async fn request(&self, i: usize) -> Result<reqwest::Request, String> {
        let s = &self.settings;
        let endpoint = &s.endpoints[i];
        let mut b = self.clients[i].request(s.method.clone(), endpoint.url.clone());
        if let Some(body) = &s.body {
            b = b.body(body.clone());
        }
        if let Some(token) = &s.token {
            b = b.header(AUTHORIZATION, format!("Bearer {token}"));
        } else if let Some(path) = &s.token_file {
            let token = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("bearer_token: reading {path}: {e}"))?;
            b = b.header(
                AUTHORIZATION,
                format!("Bearer {}", token.trim_end_matches('\n')),
            );
        }
        if let Some((user, password)) = &s.basic {
            b = b.basic_auth(user, Some(password));
        }
        let mut request = b.build().map_err(|e| fetch::chain(&e))?;
        let headers = request.headers_mut();
        for (k, v) in &s.headers {
            headers.append(k.clone(), v.clone());
        }
        if let Some(host) = &s.host {
            let value = HeaderValue::from_str(host).map_err(|e| e.to_string())?;
            headers.insert(HOST, value);
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(
                USER_AGENT,
                HeaderValue::from_static(concat!("graft/", env!("CARGO_PKG_VERSION"))),
            );
        }
        Ok(request)
    }

    async fn check(&self, i: usize) -> Report {
        let s = &self.settings;
        let mut report = Report::default();
        let request = match self.request(i).await {
            Ok(r) => r,
            Err(e) => {
                // As Telegraf: no metric, an error.
                report.error = Some(e);
                return report;
            }
        };
        let started = std::time::Instant::now();
        let response = match fetch::send(&self.clients[i], request, s.client.timeout, None).await {
            Ok(r) => r,
            Err(e) => {
                report.outcome = Some(Outcome::unanswered(&e));
                report.error = Some(e.to_string());
                return report;
            }
        };
        report.response_time = Some(started.elapsed().as_secs_f64());
        let status = response.status();
        report.status = Some(status.as_u16());
        for (header, tag) in &s.header_tags {
            if let Some(v) = response.headers().get(header) {
                report.header_tags.push((
                    tag.clone(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                ));
            }
        }
        let body = match fetch::read_body(response, s.body_max, s.client.timeout, None).await {
            Ok(body) => body,
            Err((e, read)) => {
                report.body_too_large = matches!(e, FetchError::BodyTooLarge { .. });
                report.timed_out = e.is_timeout();
                report.outcome = Some(Outcome::BodyReadError);
                report.content_length = Some(read as i64);
                report.string_match = s.string_match.as_ref().map(|_| 0);
                report.error = Some(format!("reading the body: {e}"));
                return report;
            }
        };
        if let Some(field) = &s.body_field {
            match std::str::from_utf8(&body) {
                Ok(text) => report.body_field = Some(text.to_owned()),
                Err(_) => {
                    report.outcome = Some(Outcome::BodyReadError);
                    report.content_length = Some(body.len() as i64);
                    report.string_match = s.string_match.as_ref().map(|_| 0);
                    report.error = Some(format!("the body is not UTF-8, so not in `{field}`"));
                    return report;
                }
            }
        }
        report.content_length = Some(body.len() as i64);
        let mut outcome = Outcome::Success;
        if let Some(re) = &s.string_match {
            let matched = re.is_match(&body);
            report.string_match = Some(i64::from(matched));
            if !matched {
                outcome = Outcome::ResponseStringMismatch;
            }
        }
        if let Some(code) = s.status_code {
            let matched = status.as_u16() == code;
            report.status_match = Some(i64::from(matched));
            if !matched {
                outcome = Outcome::ResponseStatusCodeMismatch;
            }
        }
        report.outcome = Some(outcome);
        report
    }

    fn add(&self, out: &mut BatchBuilder, endpoint: &Endpoint, r: &Report, now: i64) {
        let Some(outcome) = r.outcome else { return };
        let status = r.status.map(|s| s.to_string());
        let mut m = out.metric("http_response", now);
        m.tag("server", &endpoint.shown)
            .tag("method", self.settings.method.as_str())
            .tag("result", outcome.name());
        if let Some(status) = &status {
            m.tag("status_code", status);
        }
        for (k, v) in &r.header_tags {
            m.tag(k, v);
        }
        if let Some(t) = r.response_time {
            m.field("response_time", t);
        }
        if let Some(code) = r.status {
            m.field("http_response_code", i64::from(code));
        }
        if let Some(n) = r.content_length {
            m.field("content_length", n);
        }
        if let Some(v) = r.string_match {
            m.field("response_string_match", v);
        }
        if let Some(v) = r.status_match {
            m.field("response_status_code_match", v);
        }
        if let (Some(field), Some(body)) = (&self.settings.body_field, &r.body_field) {
            m.field(field, body.as_str());
        }
        m.field("result_type", outcome.name())
            .field("result_code", outcome as i64);
    }
}

#[async_trait]
impl Input for HttpResponse {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let now = crate::inputs::now_ns();
        let reports: Vec<Report> = {
            let this = &*self;
            let n = this.settings.endpoints.len();
            futures_util::stream::iter((0..n).map(|i| this.check(i)))
                .buffered(MAX_CONCURRENT)
                .collect()
                .await
        };
        let mut out = BatchBuilder::new();
        for (i, report) in reports.iter().enumerate() {
            let endpoint = &self.settings.endpoints[i];
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            if matches!(
                report.outcome,
                None | Some(Outcome::ConnectionFailed | Outcome::Timeout | Outcome::DnsError)
            ) {
                self.stats.request_errors.fetch_add(1, Ordering::Relaxed);
            }
            if report.outcome == Some(Outcome::Timeout) || report.timed_out {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            if report.body_too_large {
                self.stats
                    .body_size_limit_hits
                    .fetch_add(1, Ordering::Relaxed);
            }
            let error = report.error.as_ref().map(|e| e as &dyn std::fmt::Display);
            self.health.record(i, &endpoint.shown, error);
            self.add(&mut out, endpoint, report, now);
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn unanswered_requests_are_dns_errors_timeouts_or_failed_connections() {
        let dns = FetchError::Dns("dns error: no such name".into());
        assert_eq!(Outcome::unanswered(&dns), Outcome::DnsError);
        assert_eq!(
            (Outcome::DnsError.name(), Outcome::DnsError as i64),
            ("dns_error", 5)
        );
        let late = FetchError::ResponseTimeout(Duration::from_secs(1));
        assert_eq!(Outcome::unanswered(&late), Outcome::Timeout);
        let late = FetchError::Timeout(Duration::from_secs(1));
        assert_eq!(Outcome::unanswered(&late), Outcome::Timeout);
        let refused = FetchError::Connect("connection refused".into());
        assert_eq!(Outcome::unanswered(&refused), Outcome::ConnectionFailed);
    }

    #[test]
    fn a_dns_error_is_a_metric_without_a_response() {
        let config: Config = crate::config::parse(
            toml::from_str("urls = [\"http://graft-test.invalid/\"]").unwrap(),
        )
        .unwrap();
        let plugin = HttpResponse::new(&config).unwrap();
        let report = Report {
            outcome: Some(Outcome::unanswered(&FetchError::Dns("no such name".into()))),
            ..Report::default()
        };
        let mut out = BatchBuilder::new();
        plugin.add(&mut out, &plugin.settings.endpoints[0], &report, 1);
        let batch = out.finish();
        let m = batch.iter().next().unwrap();
        assert_eq!(m.tag("result"), Some("dns_error"));
        assert_eq!(m.tag("status_code"), None);
        assert_eq!(m.field("result_code"), Some(graft_core::FieldRef::Int(5)));
        assert_eq!(
            m.field("result_type"),
            Some(graft_core::FieldRef::Str("dns_error"))
        );
        assert!(m.field("http_response_code").is_none() && m.field("response_time").is_none());
    }
}
