//! `inputs.nginx`: reads nginx's `stub_status` page at each of `urls`
//! (http, https or Telegraf's `http+unix:///path.sock:/path`) into one
//! `nginx` metric per URL, tagged `server` and `port`, with Telegraf's
//! unsigned fields `active`, `accepts`, `handled`, `requests`, `reading`,
//! `writing` and `waiting`.
//!
//! URLs are fetched concurrently (at most 16 at once); one that fails
//! (refused, timed out, not 200, a body over `max_body_size`, a page that
//! is not a stub_status page) loses only its own metric, is counted, and
//! is logged when it starts failing and when it recovers. Counters (see
//! `docs/instrumentation.md`): `requests`, `request_errors`, `timeouts`,
//! `body_size_limit_hits`; pages that do not read count in `parse_errors`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use futures_util::StreamExt;
use graft_api::counters::Counters;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, BatchBuilder, PluginError};
use serde::Deserialize;

use super::http_client::{self, ClientKeys, ClientSettings, Endpoint, FetchError, Health, Stats};
use crate::builtin::{self, Builtin};
use crate::config::With;
use crate::duration::de_size;
use crate::tls::TlsConfig;

/// URLs fetched at once.
const MAX_CONCURRENT: usize = 16;

/// The whole table: own keys, Telegraf's HTTP client keys, TLS keys.
pub type Config = With<With<Own, ClientKeys>, TlsConfig>;

/// The plugin's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Own {
    /// `urls` (required): stub_status pages.
    #[serde(default)]
    pub urls: Vec<String>,
    /// `max_body_size` (graft's, default 64KiB): a larger page is refused.
    #[serde(default = "max_body_size", deserialize_with = "de_size")]
    pub max_body_size: u64,
}

fn max_body_size() -> u64 {
    64 * 1024
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Nginx>(table)
}

impl Builtin for Nginx {
    const NAME: &'static str = "nginx";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Nginx::new(&config)?))
    }
}

/// The table, checked.
struct Settings {
    endpoints: Vec<Endpoint>,
    client: ClientSettings,
    max_body_size: u64,
}

impl Settings {
    fn resolve(config: &Config) -> Result<Self> {
        let own = &config.own.own;
        if own.urls.is_empty() {
            bail!("urls: at least one stub_status URL is required");
        }
        if own.max_body_size == 0 {
            bail!("max_body_size: must be above zero");
        }
        let endpoints = own
            .urls
            .iter()
            .enumerate()
            .map(|(i, u)| Endpoint::parse(u).with_context(|| format!("urls[{i}]: {u:?}")))
            .collect::<Result<_>>()?;
        let mut client = ClientSettings::resolve(&config.own.shared, &config.shared, None)?;
        // Telegraf's nginx waits 5s for the headers when response_timeout
        // is unset or under a second.
        if client
            .response_timeout
            .is_none_or(|d| d < Duration::from_secs(1))
        {
            client.response_timeout = Some(Duration::from_secs(5));
        }
        Ok(Self {
            endpoints,
            client,
            max_body_size: own.max_body_size,
        })
    }
}

/// The input.
pub struct Nginx {
    settings: Settings,
    clients: Vec<reqwest::Client>,
    health: Health,
    stats: Stats,
    sink: Option<MetricSink>,
}

/// Why a URL gave no metric.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("not a stub_status page: {0}")]
    Page(String),
}

impl Nginx {
    /// Resolve the config and build the clients (reads the TLS files).
    pub fn new(config: &Config) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        let clients = http_client::clients(&settings.client, &settings.endpoints)?;
        let local = Arc::new(Counters::default());
        Ok(Self {
            health: Health::new(settings.endpoints.len()),
            settings,
            clients,
            stats: Stats::new(|name| local.counter(name)),
            sink: None,
        })
    }

    async fn fetch_one(&self, i: usize) -> Result<StubStatus, Failure> {
        let s = &self.settings;
        let request = self.clients[i]
            .get(s.endpoints[i].url.clone())
            .build()
            .map_err(|e| FetchError::Request(http_client::fetch::chain(&e)))?;
        let response = http_client::fetch::fetch(
            &self.clients[i],
            request,
            s.client.timeout,
            s.client.response_timeout,
            s.max_body_size,
        )
        .await?;
        if response.status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(response.status.as_u16()).into());
        }
        StubStatus::parse(&String::from_utf8_lossy(&response.body)).map_err(Failure::Page)
    }
}

#[async_trait]
impl Input for Nginx {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let now = crate::inputs::now_ns();
        let results: Vec<Result<StubStatus, Failure>> = {
            let this = &*self;
            futures_util::stream::iter(
                (0..this.settings.endpoints.len()).map(|i| this.fetch_one(i)),
            )
            .buffered(MAX_CONCURRENT)
            .collect()
            .await
        };
        let mut out = BatchBuilder::new();
        for (i, result) in results.into_iter().enumerate() {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let endpoint = &self.settings.endpoints[i];
            match &result {
                Ok(page) => page.add(&mut out, endpoint, now),
                Err(e) => {
                    self.stats.request_errors.fetch_add(1, Ordering::Relaxed);
                    match e {
                        Failure::Fetch(f) if f.is_timeout() => {
                            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                        Failure::Fetch(FetchError::BodyTooLarge { .. }) => {
                            self.stats
                                .body_size_limit_hits
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Failure::Page(_) => {
                            if let Some(sink) = &self.sink {
                                sink.malformed(1);
                            }
                        }
                        Failure::Fetch(_) => {}
                    }
                }
            }
            let error = result.as_ref().err().map(|e| e as &dyn std::fmt::Display);
            self.health.record(i, &endpoint.shown, error);
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

/// The numbers of one stub_status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubStatus {
    pub active: u64,
    pub accepts: u64,
    pub handled: u64,
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

impl StubStatus {
    /// Read a page as nginx (and Tengine, with a fourth number on the
    /// counters' line) writes it:
    ///
    /// ```text
    /// Active connections: 2
    /// server accepts handled requests
    ///  10 10 31
    /// Reading: 0 Writing: 1 Waiting: 1
    /// ```
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let mut next = |what: &str| lines.next().ok_or_else(|| format!("no {what} line"));
        let number = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|_| format!("{what}: {:?} is not a count", cut(s)))
        };
        let active = next("Active connections")?;
        let active = active
            .strip_prefix("Active connections:")
            .ok_or_else(|| format!("{:?} is not `Active connections: N`", cut(active)))?;
        let active = number(active.trim(), "active")?;
        let header = next("server accepts handled requests")?;
        if !header.starts_with("server accepts handled requests") {
            return Err(format!(
                "{:?} is not `server accepts handled requests`",
                cut(header)
            ));
        }
        let counts: Vec<&str> = next("counters")?.split_whitespace().collect();
        let [accepts, handled, requests, ..] = counts[..] else {
            return Err("fewer than three counters".into());
        };
        let rww: Vec<&str> = next("Reading/Writing/Waiting")?
            .split_whitespace()
            .collect();
        let [
            "Reading:",
            reading,
            "Writing:",
            writing,
            "Waiting:",
            waiting,
        ] = rww[..]
        else {
            return Err("no `Reading: N Writing: N Waiting: N` line".into());
        };
        Ok(Self {
            active,
            accepts: number(accepts, "accepts")?,
            handled: number(handled, "handled")?,
            requests: number(requests, "requests")?,
            reading: number(reading, "reading")?,
            writing: number(writing, "writing")?,
            waiting: number(waiting, "waiting")?,
        })
    }

    /// The `nginx` metric, tagged as Telegraf tags it: `server` (the
    /// URL's host) and `port` (its port, else 80 or 443); a tag with no
    /// value (`http+unix` URLs) is left out.
    fn add(&self, out: &mut BatchBuilder, endpoint: &Endpoint, now: i64) {
        let (server, port) = server_and_port(endpoint);
        let mut m = out.metric("nginx", now);
        if !server.is_empty() {
            m.tag("server", &server);
        }
        if !port.is_empty() {
            m.tag("port", &port);
        }
        m.field("active", self.active)
            .field("accepts", self.accepts)
            .field("handled", self.handled)
            .field("requests", self.requests)
            .field("reading", self.reading)
            .field("writing", self.writing)
            .field("waiting", self.waiting);
    }
}

/// A string cut to 40 characters for an error message.
fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Telegraf's `server` and `port` tags of a URL.
fn server_and_port(endpoint: &Endpoint) -> (String, String) {
    if endpoint.unix.is_some() {
        return (String::new(), String::new());
    }
    let url = &endpoint.url;
    let server = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .map(|p| p.to_string())
        .unwrap_or_default();
    (server, port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    const PAGE: &str = "Active connections: 585 \nserver accepts handled requests\n \
                        85340 85340 35085 \nReading: 4 Writing: 135 Waiting: 446 \n";

    #[test]
    fn reads_nginx_and_tengine_pages_and_refuses_others() {
        let s = StubStatus::parse(PAGE).unwrap();
        assert_eq!(
            (s.active, s.accepts, s.handled, s.requests),
            (585, 85340, 85340, 35085)
        );
        assert_eq!((s.reading, s.writing, s.waiting), (4, 135, 446));
        let tengine = "Active connections: 403\nserver accepts handled requests request_time\n \
                       853 8533 3502 1546565864\nReading: 8 Writing: 125 Waiting: 946\n";
        assert_eq!(StubStatus::parse(tengine).unwrap().handled, 8533);
        for bad in [
            "",
            "<html>hello</html>",
            "Active connections: x\n",
            "Active connections: 1\nserver accepts handled requests\n 1 2\n",
            "Active connections: 1\nserver accepts handled requests\n 1 2 -3\nReading: 0 Writing: 0 Waiting: 0",
            "Active connections: 1\nserver accepts handled requests\n 1 2 3\nReading: 0 Writing: 0",
        ] {
            assert!(StubStatus::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Telegraf's README and Go source: measurement `nginx`, tags `server`
    /// and `port`, every field an unsigned integer.
    #[test]
    fn schema_is_telegrafs() {
        let mut out = BatchBuilder::new();
        for url in [
            "http://localhost/status",
            "https://[::1]:8443/s",
            "http+unix:///x.sock:/s",
        ] {
            let e = Endpoint::parse(url).unwrap();
            StubStatus::parse(PAGE).unwrap().add(&mut out, &e, 1);
        }
        let batch = out.finish();
        let metrics: Vec<_> = batch.iter().collect();
        let tags = |i: usize| {
            metrics[i]
                .tags()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(tags(0), ["port=80", "server=localhost"]);
        assert_eq!(tags(1), ["port=8443", "server=::1"]);
        assert!(tags(2).is_empty());
        for m in &metrics {
            assert_eq!(m.name(), "nginx");
            let fields: Vec<(&str, bool)> = m
                .fields()
                .map(|(k, v)| (k, matches!(v, FieldRef::Uint(_))))
                .collect();
            let mut names: Vec<&str> = fields.iter().map(|f| f.0).collect();
            names.sort_unstable();
            assert_eq!(
                names,
                [
                    "accepts", "active", "handled", "reading", "requests", "waiting", "writing"
                ]
            );
            assert!(fields.iter().all(|f| f.1), "{fields:?}");
        }
    }

    #[test]
    fn response_timeout_under_a_second_is_five_seconds_as_in_telegraf() {
        let timeout = |extra: &str| {
            let text = format!("urls = [\"http://localhost/status\"]\n{extra}");
            let config: Config = crate::config::parse(toml::from_str(&text).unwrap()).unwrap();
            Settings::resolve(&config).unwrap().client.response_timeout
        };
        let five = Some(Duration::from_secs(5));
        assert_eq!(timeout(""), five);
        assert_eq!(timeout("response_timeout = \"500ms\""), five);
        assert_eq!(
            timeout("response_timeout = \"2s\""),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = |t: &str| {
            format!(
                "{:#}",
                builtin::validate::<Nginx>(toml::from_str(t).unwrap()).unwrap_err()
            )
        };
        assert!(err("").contains("urls"));
        assert!(err("urls = [\"gopher://x\"]").contains("urls[0]"));
        assert!(err("urls = [\"http://x\"]\nmax_body_size = 0").contains("max_body_size"));
        assert!(err("urls = [\"http://x\"]\nurl = \"x\"").contains("`url`"));
        assert!(err("urls = [\"http://x\"]\nclient_id = \"x\"").contains("client_id"));
        builtin::validate::<Nginx>(
            toml::from_str(
                "urls = [\"http://localhost/server_status\", \
                 \"http+unix:///var/run/nginx.sock:/server_status\"]\nresponse_timeout = \"5s\"",
            )
            .unwrap(),
        )
        .unwrap();
    }
}
