//! `inputs.nats_consumer`: metrics from NATS subjects, with Telegraf's
//! options, and from JetStream through a durable consumer that a pool of
//! graft agents shares.
//!
//! - Core NATS: `subjects` (default `["telegraf"]`, none when
//!   `jetstream_subjects` is set) are subscribed through `queue_group`
//!   (each message to one agent of the group). Core NATS keeps nothing: what is
//!   published while no agent listens, or dropped by the server for a slow
//!   subscriber, is lost. Messages read wait for the pipeline in a queue
//!   of at most `pending_message_limit` messages and `pending_bytes_limit`
//!   bytes; past either a message is dropped and counted
//!   (`pending_limit_hits`), as Telegraf's slow consumer.
//! - JetStream: `jetstream_subjects` are read from their stream through the
//!   durable pull consumer `jetstream_durable` (default `queue_group`),
//!   created when missing with explicit acknowledgement (an existing one
//!   must read the same subject with explicit acknowledgements, else
//!   nothing is read from it and every gather is an error naming
//!   `jetstream_durable`),
//!   `jetstream_ack_wait` and `max_ack_pending = jetstream_max_ack_pending`
//!   (default 10 × `max_undelivered_messages`: the pool's bound, larger
//!   than one agent's).
//!   Every agent with that name pulls from the same consumer, so each
//!   message goes to one of them, and a message an agent took and did not
//!   acknowledge (it died, or stopped before its outputs wrote the
//!   metrics) is delivered again to another after the ack wait. A stream
//!   not created yet, or a cluster without quorum, is retried in the
//!   background (logged at most every 10 s): a pool may start before its
//!   stream exists and rides out a node's death.
//! - Servers that cannot be reached at the start do not stop the agent:
//!   the input connects in the background (backoff up to 10 s), and each
//!   gather while it is not connected is an error (counted in `errors`).
//! - A message is acknowledged only once every output has written its
//!   metrics or holds them in a disk buffer ([`MetricSink::send_acked`]);
//!   progress is signalled while that takes time, and a message whose
//!   metrics were lost is nak'd for redelivery: at-least-once, duplicates
//!   only after a failure. Progress stops after `jetstream_max_hold`
//!   (default 3 × `jetstream_ack_wait`): the message is then nak'd, and
//!   another agent of the pool takes it, so that an agent whose outputs
//!   are down does not starve the pool (its metrics may still be written
//!   later by that agent: a duplicate).
//! - At most `max_undelivered_messages` messages are out (read, not yet
//!   delivered); at that bound reading pauses, which pushes back on the
//!   server instead of growing memory.
//! - A message larger than `max_message_size`, or that gives no metric
//!   but could not be read, is counted, logged (at most every 10 s with a
//!   count) and terminated, so that a poison message does not loop. Bad
//!   lines among good ones cost only themselves.
//! - Stop: reading stops, deliveries in flight get 5 s to settle, and the
//!   messages of what is still out are nak'd so that another agent takes
//!   them at once (a message whose nak is lost is delivered again after
//!   the ack wait).

mod config;
mod consume;
mod jetstream;
mod pending;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::consumer;
use async_trait::async_trait;
use futures_util::StreamExt;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::builtin::{self, Builtin};
use crate::config::With;
use crate::format::{Parser, ParserConfig};
use crate::nats::ConnectionConfig;
use crate::tls::TlsConfig;
use config::DeliverFrom;
pub use config::Options;
use consume::{Counters, Incoming, Reader};

/// `[[inputs.nats_consumer]]`: its own keys, the connection's, TLS and the
/// parser's.
pub type Config = With<With<With<Options, ConnectionConfig>, TlsConfig>, ParserConfig>;

/// How long `stop` lets deliveries in flight settle.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<NatsConsumer>(table)
}

impl Builtin for NatsConsumer {
    const NAME: &'static str = "nats_consumer";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        config.own.own.own.check()?;
        config.own.own.shared.validate()?;
        config.own.shared.validate()?;
        config.shared.validate()
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Self::validate(&config)?;
        let With {
            own:
                With {
                    own:
                        With {
                            own: options,
                            shared: connection,
                        },
                    shared: tls,
                },
            shared: format,
        } = config;
        Ok(Box::new(NatsConsumer {
            deliver_from: options.check()?,
            parser: Some(format.build(Self::NAME)?),
            options,
            connection,
            tls,
            running: None,
        }))
    }
}

/// The `nats_consumer` input.
pub struct NatsConsumer {
    options: Options,
    deliver_from: DeliverFrom,
    connection: ConnectionConfig,
    tls: TlsConfig,
    parser: Option<Parser>,
    running: Option<Running>,
}

struct Running {
    stop: watch::Sender<bool>,
    readers: JoinSet<()>,
    reader: Arc<Reader>,
    link: Arc<Link>,
}

/// The connection as the reading task keeps it: why it is down, or the
/// client once connected.
#[derive(Default)]
struct Link {
    down: std::sync::Mutex<Option<String>>,
    /// Why reading cannot go on at all (a durable consumer of another
    /// subject): every gather is this error.
    fatal: Arc<std::sync::Mutex<Option<String>>>,
    client: std::sync::Mutex<Option<async_nats::Client>>,
}

impl Link {
    fn set_down(&self, why: Option<String>) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    fn client(&self) -> Option<async_nats::Client> {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What connecting and reading need, apart from the input.
#[derive(Clone)]
struct Plan {
    options: Options,
    deliver_from: DeliverFrom,
    connection: ConnectionConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl NatsConsumer {
    fn open(&mut self, sink: MetricSink) -> Result<Running> {
        let parser = self.parser.take().context("the input was started twice")?;
        let o = &self.options;
        let plan = Plan {
            options: o.clone(),
            deliver_from: self.deliver_from,
            connection: self.connection.clone(),
            tls: self.tls.client_config()?,
        };
        let reader = Arc::new(Reader {
            counters: Counters::of(&sink),
            sink,
            parser,
            subject_tag: o.subject_tag.clone().filter(|t| !t.is_empty()),
            max_message_size: AtomicUsize::new(usize::MAX),
            permits: Arc::new(Semaphore::new(o.max_undelivered_messages)),
            progress_every: o.jetstream_ack_wait / 2,
            max_hold: o.max_hold(),
            held_too_long: Default::default(),
            deliveries: Default::default(),
            unreadable: Default::default(),
            too_large: Default::default(),
            lost: Default::default(),
            give_up: watch::channel(false).0,
        });
        let (stop, stopped) = watch::channel(false);
        // Down only once an attempt failed: a gather while the first
        // connection is being made is not an error.
        let link = Arc::new(Link::default());
        let mut readers = JoinSet::new();
        readers.spawn(
            plan.run(reader.clone(), stopped, link.clone())
                .in_current_span(),
        );
        Ok(Running {
            stop,
            readers,
            reader,
            link,
        })
    }
}

impl Plan {
    /// Connect (again and again, with a backoff, while the servers cannot
    /// be reached), then read until stopped.
    async fn run(self, reader: Arc<Reader>, mut stop: watch::Receiver<bool>, link: Arc<Link>) {
        let mut backoff = Backoff::exponential(Duration::from_millis(500), Duration::from_secs(10));
        let gate = consume::Gate::default();
        while !*stop.borrow() {
            let mut sources = JoinSet::new();
            match self.open(&reader, &stop, &mut sources, &link).await {
                Ok(client) => {
                    link.set_down(None);
                    *link.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
                    while sources.join_next().await.is_some() {}
                    return;
                }
                Err(e) => {
                    sources.abort_all();
                    let why = format!("{e:#}");
                    if let Some(n) = gate.hit() {
                        tracing::warn!(error = %why, attempts_since_last_log = n, "cannot read from NATS; trying again");
                    }
                    link.set_down(Some(why));
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(backoff.fail()) => {}
            }
        }
    }

    /// Connect, subscribe to the core subjects and start reading every
    /// JetStream subject into `sources`.
    async fn open(
        &self,
        reader: &Arc<Reader>,
        stopped: &watch::Receiver<bool>,
        sources: &mut JoinSet<()>,
        link: &Link,
    ) -> Result<async_nats::Client> {
        let o = &self.options;
        let pending = o.pending_message_limit;
        let client = self
            .connection
            .connect("", self.tls.clone(), |c| c.subscription_capacity(pending))
            .await?;
        let max_payload = client.server_info().max_payload.max(1);
        let max_message_size = match usize::try_from(o.max_message_size) {
            Ok(0) | Err(_) => max_payload,
            Ok(n) => n.min(max_payload),
        };
        reader
            .max_message_size
            .store(max_message_size, std::sync::atomic::Ordering::Relaxed);
        let core = o.core_subjects();
        if !core.is_empty() {
            let mut subs = Vec::new();
            for s in &core {
                let sub = if o.queue_group.is_empty() {
                    client.subscribe(s.clone()).await
                } else {
                    client
                        .queue_subscribe(s.clone(), o.queue_group.clone())
                        .await
                }
                .with_context(|| format!("subjects: subscribing to {s:?}"))?;
                subs.push(sub);
            }
            let messages = futures_util::stream::select_all(subs).map(|m| Incoming {
                subject: m.subject.to_string(),
                payload: m.payload,
                acker: None,
                delivered: 1,
            });
            let messages = pending::bounded(
                messages,
                pending::Limits {
                    messages: o.pending_message_limit,
                    bytes: usize::try_from(o.pending_bytes_limit).unwrap_or(usize::MAX),
                    hits: reader.counters.pending_limit_hits.clone(),
                },
            );
            let (reader, mut stopped) = (reader.clone(), stopped.clone());
            sources
                .spawn(async move { reader.run(messages, &mut stopped).await }.in_current_span());
            tracing::info!(subjects = ?core, queue_group = %o.queue_group, "reading from NATS");
        }
        // JetStream API requests (finding the stream, creating the
        // consumer) are retried: a short timeout gets past a request lost
        // while the cluster elects a leader.
        let js = async_nats::jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(3))
            .build(client.clone());
        let many = o.jetstream_subjects.len() > 1;
        for (i, subject) in o.jetstream_subjects.iter().enumerate() {
            let durable = if many {
                format!("{}-{i}", o.durable())
            } else {
                o.durable().to_owned()
            };
            let source = jetstream::Source {
                js: js.clone(),
                subject: subject.clone(),
                stream: o.jetstream_stream.clone(),
                config: self.consumer_config(subject, durable),
                // At most half the bound per pull request (and no more
                // than there is room for): the server serves waiting
                // requests in turn, so smaller requests spread a stream
                // over the pool.
                batch: (o.max_undelivered_messages / 2).clamp(1, 500),
                fatal: link.fatal.clone(),
            };
            sources.spawn(
                source
                    .run(reader.clone(), stopped.clone())
                    .in_current_span(),
            );
        }
        Ok(client)
    }

    /// The durable consumer `durable` of `subject`, as created when
    /// missing.
    fn consumer_config(&self, subject: &str, durable: String) -> consumer::pull::Config {
        let o = &self.options;
        consumer::pull::Config {
            durable_name: Some(durable),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: o.jetstream_ack_wait,
            max_deliver: o.jetstream_max_deliver,
            filter_subject: subject.to_owned(),
            max_ack_pending: o.pool_max_ack_pending(),
            deliver_policy: match self.deliver_from {
                DeliverFrom::All => consumer::DeliverPolicy::All,
                DeliverFrom::New => consumer::DeliverPolicy::New,
            },
            ..Default::default()
        }
    }
}

/// Wall-clock now in nanoseconds: the time of metrics that carry none.
fn now_ns() -> i64 {
    super::now_ns()
}

#[async_trait]
impl Input for NatsConsumer {
    /// An error (counted in `errors`) while the servers cannot be reached.
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let Some(running) = &self.running else {
            return Ok(Batch::new());
        };
        let down = running
            .link
            .down
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(why) = down {
            return Err(PluginError::new(format!("not connected to NATS: {why}")).into());
        }
        let fatal = running
            .link
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(why) = fatal {
            return Err(PluginError::new(why).into());
        }
        match running.link.client().map(|c| c.connection_state()) {
            Some(async_nats::connection::State::Connected) | None => Ok(Batch::new()),
            Some(_) => Err(PluginError::new("disconnected from NATS; reconnecting").into()),
        }
    }

    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let running = self
            .open(sink)
            .map_err(|e| PluginError::new(format!("{e:#}")))?;
        self.running = Some(running);
        Ok(())
    }

    async fn stop(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        let _ = running.stop.send(true);
        while running.readers.join_next().await.is_some() {}
        running.reader.drain(STOP_GRACE).await;
        if let Some(client) = running.link.client() {
            let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
        }
    }
}

#[cfg(test)]
mod tests;
