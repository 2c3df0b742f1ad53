//! `inputs.statsd`: a StatsD server with Telegraf's options and field
//! mapping.
//!
//! Lines `bucket[,tag=v...]:value|type[|@rate][|#tag:v,...]` (several
//! `:value|type` per bucket allowed) arrive over UDP or TCP and are
//! aggregated until the next gather, which emits, with a `metric_type` tag:
//! gauges (`value`, float; `+`/`-` adjust), counters (`value`, int64 unless
//! `float_counters`; the sample rate scales the increment), sets (`value` =
//! distinct members), timings and histograms (`mean`, `median`, `stddev`,
//! `sum`, `upper`, `lower`, `count`, `<p>_percentile`, prefixed with
//! `<field>_` when a template names a field; a sample rate counts a value
//! 1/rate times), and DogStatsD distributions (one metric per value).
//! Bucket names go through the graphite templates with `metric_separator`
//! (default `_`), so `users.current.den001` becomes measurement
//! `users_current_den001`. `delete_*` reset what was emitted; kept entries
//! not updated for `max_ttl` are dropped. Bad lines are counted and skipped.
//!
//! Over TCP, lines longer than `max_line_size` (default 64 KiB; Telegraf
//! has no such limit) are dropped up to their newline and counted
//! (`line_size_limit_hits`), connections beyond `max_tcp_connections` or
//! the process-wide budget are refused and counted, and `read_timeout`
//! closes idle connections; see [`crate::listener`].

mod config;
mod parser;
mod server;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, BatchBuilder, MetricKind, PluginError};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::builtin::{self, Builtin, Deprecated};
use crate::graphite::Templates;
use crate::listener::tcp::{self, TcpServe};
use crate::listener::udp::{Datagrams, MAX_UDP_PAYLOAD};
use crate::listener::{ConnectionBudget, LineFramer, ListenerStats};
pub use config::Config;
use parser::{Parser, State};
use server::Shared;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Statsd>(table)
}

impl Builtin for Statsd {
    const NAME: &'static str = "statsd";
    type Config = Config;
    type Plugin = dyn Input;
    const DEPRECATED: &'static [Deprecated] = &[
        Deprecated {
            key: "parse_data_dog_tags",
            instead: Some("datadog_extensions"),
            ignored: false,
            note: "deprecated in Telegraf 1.10.0; still turns the DogStatsD extensions on",
        },
        Deprecated {
            key: "udp_packet_size",
            instead: None,
            ignored: false,
            note: "deprecated in Telegraf 0.12.1; datagrams up to 64 KiB are read whole",
        },
        Deprecated {
            key: "convert_names",
            instead: Some("metric_separator"),
            ignored: true,
            note: "deprecated in Telegraf 0.12.0 and ignored since",
        },
    ];

    fn validate(config: &Config) -> Result<()> {
        if !matches!(
            config.protocol.as_str(),
            "udp" | "udp4" | "udp6" | "tcp" | "tcp4" | "tcp6"
        ) {
            bail!("protocol: {:?} is not udp or tcp", config.protocol);
        }
        if config
            .percentiles
            .iter()
            .any(|p| !(0.0..=100.0).contains(p))
        {
            bail!("percentiles: each must be between 0 and 100");
        }
        if config.max_line_size == 0 || usize::try_from(config.max_line_size).is_err() {
            bail!("max_line_size: {} is out of range", config.max_line_size);
        }
        Templates::new(&config.templates, &config.metric_separator).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Statsd::new(config)?))
    }
}

/// The StatsD input.
pub struct Statsd {
    config: Config,
    parser: Arc<Parser>,
    state: Arc<Mutex<State>>,
    stop: Option<watch::Sender<bool>>,
    tasks: JoinSet<()>,
    local: Option<std::net::SocketAddr>,
}

impl Statsd {
    pub fn new(mut config: Config) -> Result<Self> {
        <Self as Builtin>::validate(&config)?;
        config.datadog_extensions |= config.parse_data_dog_tags;
        let parser = Parser {
            templates: Templates::new(&config.templates, &config.metric_separator)?,
            datadog: config.datadog_extensions,
            distributions: config.datadog_distributions,
            keep_container: config.datadog_keep_container_tag,
            percentile_limit: config.percentile_limit,
        };
        Ok(Self {
            config,
            parser: Arc::new(parser),
            state: Arc::default(),
            stop: None,
            tasks: JoinSet::new(),
            local: None,
        })
    }

    /// The address bound by `start`.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.local
    }

    fn address(&self) -> String {
        let a = &self.config.service_address;
        if a.starts_with(':') {
            format!("0.0.0.0{a}")
        } else {
            a.clone()
        }
    }

    /// Turn what was aggregated into metrics and reset per `delete_*`
    /// and `max_ttl` (what a gather returns).
    pub fn emit(&mut self) -> Result<Batch, CallError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let c = &self.config;
        let mut b = BatchBuilder::new();
        let Ok(mut st) = self.state.lock() else {
            return Err(CallError::Returned(PluginError::new(
                "statsd state is poisoned",
            )));
        };
        let st = &mut *st;
        for (name, tags, v) in st.distributions.drain(..) {
            let mut m = b.metric(&name, now);
            tags.iter().for_each(|(k, t)| {
                m.tag(k, t);
            });
            m.field("value", v);
        }
        for e in st.timings.values_mut() {
            let mut m = b.metric(&e.name, now);
            e.tags.iter().for_each(|(k, t)| {
                m.tag(k, t);
            });
            for (field, s) in &mut e.fields {
                if s.n == 0 {
                    continue;
                }
                let prefix = if field == "value" {
                    String::new()
                } else {
                    format!("{field}_")
                };
                m.field(&format!("{prefix}mean"), s.mean())
                    .field(&format!("{prefix}median"), s.median())
                    .field(&format!("{prefix}stddev"), s.stddev())
                    .field(&format!("{prefix}sum"), s.sum)
                    .field(&format!("{prefix}upper"), s.upper)
                    .field(&format!("{prefix}lower"), s.lower);
                if c.float_timings {
                    m.field(&format!("{prefix}count"), s.n as f64);
                } else {
                    m.field(&format!("{prefix}count"), s.n as i64);
                }
                for p in &c.percentiles {
                    m.field(&format!("{prefix}{p}_percentile"), s.percentile(*p));
                }
            }
        }
        // Typed as Telegraf's statsd types them (AddGauge, AddCounter);
        // timings and sets stay untyped.
        for e in st.gauges.values() {
            let mut m = b.metric(&e.name, now);
            m.kind(MetricKind::Gauge);
            e.tags.iter().for_each(|(k, t)| {
                m.tag(k, t);
            });
            for (f, v) in &e.fields {
                m.field(f, *v);
            }
        }
        for e in st.counters.values() {
            let mut m = b.metric(&e.name, now);
            m.kind(MetricKind::Counter);
            e.tags.iter().for_each(|(k, t)| {
                m.tag(k, t);
            });
            for (f, v) in &e.fields {
                if c.float_counters {
                    m.field(f, *v);
                } else {
                    m.field(f, *v as i64);
                }
            }
        }
        for e in st.sets.values() {
            let mut m = b.metric(&e.name, now);
            e.tags.iter().for_each(|(k, t)| {
                m.tag(k, t);
            });
            for (f, v) in &e.fields {
                if c.float_sets {
                    m.field(f, v.len() as f64);
                } else {
                    m.field(f, v.len() as i64);
                }
            }
        }
        let fresh = |updated: &Instant| c.max_ttl.is_zero() || updated.elapsed() < c.max_ttl;
        if c.delete_timings {
            st.timings.clear();
        } else {
            st.timings.retain(|_, e| fresh(&e.updated));
        }
        if c.delete_gauges {
            st.gauges.clear();
        } else {
            st.gauges.retain(|_, e| fresh(&e.updated));
        }
        if c.delete_counters {
            st.counters.clear();
        } else {
            st.counters.retain(|_, e| fresh(&e.updated));
        }
        if c.delete_sets {
            st.sets.clear();
        } else {
            st.sets.retain(|_, e| fresh(&e.updated));
        }
        Ok(b.finish())
    }

    /// Read StatsD lines from `bytes` (as one datagram) into the state
    /// that the next gather emits; returns how many lines were bad. The
    /// same path the sockets take, for tests and the fuzz target.
    pub fn ingest(&self, bytes: &[u8]) -> u64 {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut framer = LineFramer::new(self.config.max_line_size as usize);
        let mut bad = 0;
        let mut each = |f: crate::listener::Framed<'_>| match f {
            crate::listener::Framed::Line(l) => {
                bad += u64::from(!parser::ingest_line(&self.parser, l, &mut st));
            }
            crate::listener::Framed::TooLong => bad += 1,
        };
        framer.feed(bytes, &mut each);
        framer.finish(&mut each);
        bad
    }
}
#[async_trait]
impl Input for Statsd {
    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let (tx, rx) = watch::channel(false);
        let addr = self.address();
        let bind = |e: std::io::Error| {
            PluginError::config("service_address", format!("cannot listen on {addr}: {e}"))
        };
        let stats = ListenerStats::for_sink(&sink);
        let shared = Arc::new(Shared {
            parser: self.parser.clone(),
            state: self.state.clone(),
            sink,
            max_line: self.config.max_line_size as usize,
        });
        if self.config.protocol.starts_with("udp") {
            let socket = UdpSocket::bind(&addr).await.map_err(bind)?;
            self.local = socket.local_addr().ok();
            let socket = Datagrams::new(socket, MAX_UDP_PAYLOAD, stats, rx);
            self.tasks
                .spawn(server::udp(socket, shared).in_current_span());
        } else {
            let listener = TcpListener::bind(&addr).await.map_err(bind)?;
            self.local = listener.local_addr().ok();
            let serve = TcpServe {
                limiter: ConnectionBudget::global().limiter(self.config.max_tcp_connections.max(1)),
                read_timeout: self.config.read_timeout,
                stats,
                stop: rx,
            };
            let serve = tcp::serve(listener, serve, move |conn| {
                server::tcp(conn, shared.clone())
            });
            self.tasks.spawn(serve.in_current_span());
        }
        self.stop = Some(tx);
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    }

    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.emit()
    }
}
