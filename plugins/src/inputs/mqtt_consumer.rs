//! `inputs.mqtt_consumer`: metrics read from MQTT 3.1.1 topics, with
//! Telegraf's options, in any of graft's data formats, acknowledged to the
//! broker only once delivered.
//!
//! - `servers` (tried in turn), `topics` (filters with `+`/`#`), `qos`,
//!   `persistent_session` (needs `client_id`), `username`/`password`, the
//!   TLS keys (see [`crate::tls`]), `data_format` and the parser keys (see
//!   [`crate::format`]), `topic_tag`, `[[topic_parsing]]` (see [`topic`]).
//! - QoS 1 (and 2, see below): a message is acknowledged (PUBACK, rumqttc's
//!   manual acknowledgements) only once every output has written its
//!   metrics or holds them in a disk buffer. A message whose metrics were
//!   lost stays unacknowledged; with a persistent session the consumer
//!   connects again so that the broker sends it again (without one, the
//!   broker would send nothing again and drop what it queued, so the
//!   consumer stays connected and the message is lost). At-least-once: a message whose metrics were
//!   delivered but not yet acknowledged when the connection or graft went
//!   away comes again (counted in `messages_redelivered`).
//!   `qos = 2` is taken as 1 (the subscription asks for QoS 1, so the
//!   broker sends QoS 2 messages at QoS 1): rumqttc forgets an incoming
//!   QoS 2 message awaiting its PUBREL when a connection drops, and ends
//!   the next connection of a persistent session when the broker sends
//!   that PUBREL again, over and over (rumqtt issue #664). The consumer is
//!   at-least-once end to end either way, never exactly-once.
//! - At most `max_undelivered_messages` messages are read and not yet
//!   delivered; at the bound graft reads no more, and the broker keeps the
//!   rest. Brokers also cap the unacknowledged messages they send one
//!   client (mosquitto's `max_inflight_messages`, 20 by default), and an
//!   acknowledgement waits for the outputs' flush: at QoS 1, one metric per
//!   message, raise that cap or publish with `layout = "batch"`.
//! - The broker going away: connect again after 250 ms doubling to 30 s,
//!   moving on to the next server; subscribe again unless the broker kept
//!   the session.
//! - Limits (counted, see `docs/instrumentation.md`): `max_message_size`
//!   (of the payload: a larger one is skipped and acknowledged while its
//!   packet fits a payload of `max_message_size` on a topic of
//!   `max_topic_size`; a larger packet cannot be skipped unread, so it
//!   costs the connection, logged at most once a minute), `max_topic_size` (the message is skipped and
//!   acknowledged). A message that cannot be parsed is counted, logged
//!   and acknowledged, so it cannot come back forever.
//! - Accepted without effect: `ping_timeout` (a missing ping answer is
//!   noticed at the next keep-alive), `client_trace`.

mod config;
mod deliver;
mod receive;
pub mod topic;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::builtin::{self, Builtin};
use crate::config::With;
use crate::mqtt::{self, Session};
pub use config::{Config, Options, TopicParsing};

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Consumer>(table)
}

impl Builtin for Consumer {
    const NAME: &'static str = "mqtt_consumer";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        check(config)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Consumer::new(config)?))
    }
}

/// The most `max_undelivered_messages` may be: it sizes a semaphore and a
/// channel, which panic far above it (and a broker hands a client at most
/// 65 535 unacknowledged messages anyway).
const MAX_UNDELIVERED_MESSAGES: usize = 1_000_000;

/// What the types cannot say.
fn check(config: &Config) -> Result<()> {
    let o = &config.own.own;
    let tls = &config.own.shared;
    if o.topics.is_empty() {
        bail!("topics: at least one topic filter is needed");
    }
    for t in &o.topics {
        if !rumqttc::valid_filter(t) {
            bail!("topics: {t:?} is not a topic filter");
        }
    }
    mqtt::qos(o.qos)?;
    mqtt::keep_alive_seconds("keepalive", o.keepalive)?;
    mqtt::parse_servers(&o.servers, tls.enabled())?;
    tls.validate()?;
    config.shared.validate()?;
    if o.persistent_session && o.client_id.is_empty() {
        bail!("persistent_session: needs a client_id, so that the broker finds the session again");
    }
    if o.connection_timeout < Duration::from_secs(1) {
        bail!("connection_timeout: must be at least 1s");
    }
    if !(1..=MAX_UNDELIVERED_MESSAGES).contains(&o.max_undelivered_messages) {
        bail!(
            "max_undelivered_messages: {} is out of range; must be between 1 and {MAX_UNDELIVERED_MESSAGES}",
            o.max_undelivered_messages
        );
    }
    if o.max_message_size == 0 || o.max_message_size > mqtt::MAX_PACKET_SIZE as u64 {
        bail!("max_message_size: must be between 1 byte and 256MiB");
    }
    if o.max_topic_size == 0 {
        bail!("max_topic_size: must be at least 1 byte");
    }
    topic::rules(&o.topic_parsing)?;
    Ok(())
}

/// The QoS the consumer subscribes with: QoS 2 is taken as 1 (logged
/// once): rumqttc forgets incoming QoS 2 state on a reconnect, then ends
/// every new connection of a persistent session when the broker sends the
/// PUBREL again (rumqtt issue #664). QoS 1 keeps the same at-least-once
/// promise, since acknowledgements wait for delivery.
fn subscription_qos(configured: QoS) -> QoS {
    if configured != QoS::ExactlyOnce {
        return configured;
    }
    tracing::warn!(
        qos = 2,
        subscribed_qos = 1,
        "qos = 2 is taken as 1 (at-least-once, as QoS 2 would be here): the MQTT client \
         cannot resume QoS 2 messages across reconnects of a persistent session"
    );
    QoS::AtLeastOnce
}

/// The largest PUBLISH read: a payload of `max_message_size` on a topic of
/// `max_topic_size` (with the topic's length and the packet id), so that a
/// message the broker admits under a payload limit equal to
/// `max_message_size` is read; a larger payload within it is skipped and
/// acknowledged. Only a larger packet costs the connection.
fn packet_limit(max_message_size: u64, max_topic_size: u64) -> usize {
    let topic = max_topic_size.min(mqtt::MAX_TOPIC_SIZE as u64);
    (max_message_size + topic + 4).min(mqtt::MAX_PACKET_SIZE as u64) as usize
}

/// The consumer's own counters (names in `docs/instrumentation.md`).
pub struct Counters {
    pub messages_received: Arc<AtomicU64>,
    pub messages_acked: Arc<AtomicU64>,
    pub messages_malformed: Arc<AtomicU64>,
    pub messages_redelivered: Arc<AtomicU64>,
    pub messages_undelivered: Arc<AtomicU64>,
    pub reconnects: Arc<AtomicU64>,
    pub message_size_limit_hits: Arc<AtomicU64>,
    pub topic_size_limit_hits: Arc<AtomicU64>,
    pub undelivered_messages_limit_hits: Arc<AtomicU64>,
}

impl Counters {
    fn of(sink: &MetricSink) -> Self {
        Self {
            messages_received: sink.counter("messages_received"),
            messages_acked: sink.counter("messages_acked"),
            messages_malformed: sink.counter("messages_malformed"),
            messages_redelivered: sink.counter("messages_redelivered"),
            messages_undelivered: sink.counter("messages_undelivered"),
            reconnects: sink.counter("reconnects"),
            message_size_limit_hits: sink.counter("message_size_limit_hits"),
            topic_size_limit_hits: sink.counter("topic_size_limit_hits"),
            undelivered_messages_limit_hits: sink.counter("undelivered_messages_limit_hits"),
        }
    }
}

/// The MQTT consumer.
pub struct Consumer {
    config: Option<Config>,
    /// Why it is not connected, while it is not.
    down: Arc<Mutex<Option<String>>>,
    stop: Option<watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Consumer {
    /// Check the config; nothing is connected until `start`.
    pub fn new(config: Config) -> Result<Self> {
        check(&config)?;
        Ok(Self {
            config: Some(config),
            down: Arc::default(),
            stop: None,
            tasks: Vec::new(),
        })
    }
}

/// Requests (acknowledgements, mostly) queued for the event loop. The
/// event loop takes one request per turn and may read ten messages in
/// another, so acknowledgements can queue up; they must never wait for
/// room, or the reading side (waiting for a place that an acknowledgement
/// would free) and the event loop would wait for each other. Packet ids
/// are 16 bits, so a session never has more unacknowledged messages.
const REQUEST_CAPACITY: usize = 65_536 + 64;

/// How long `stop` lets the tasks hand over what they hold.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[async_trait]
impl Input for Consumer {
    /// Nothing to gather (messages go to the sink as they come); an error
    /// while no broker is connected, so that `errors` counts the time.
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match down {
            Some(why) => {
                Err(PluginError::new(format!("not connected to an MQTT broker: {why}")).into())
            }
            None => Ok(Batch::new()),
        }
    }

    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let config = self
            .config
            .take()
            .ok_or_else(|| PluginError::new("the consumer was started twice"))?;
        let failed = |e: anyhow::Error| PluginError::new(format!("{e:#}"));
        let With {
            own: With {
                own: o,
                shared: tls,
            },
            shared: format,
        } = config;
        let brokers = mqtt::parse_servers(&o.servers, tls.enabled()).map_err(failed)?;
        let session = Session {
            client_id: if o.client_id.is_empty() {
                mqtt::random_client_id("graft-consumer-")
            } else {
                o.client_id.clone()
            },
            username: o.username.clone(),
            password: o.password.clone(),
            keep_alive: mqtt::keep_alive_seconds("keepalive", o.keepalive).map_err(failed)?,
            clean_session: !o.persistent_session,
            max_incoming_size: packet_limit(o.max_message_size, o.max_topic_size),
            inflight: 100,
            manual_acks: true,
            tls: tls.client_config().map_err(failed)?,
        };
        let options = session.options(&brokers[0]).map_err(failed)?;
        let max_undelivered = o.max_undelivered_messages;
        let (client, mut events) = AsyncClient::new(options, REQUEST_CAPACITY);
        let mut network = events.network_options();
        network.set_connection_timeout(o.connection_timeout.as_secs());
        events.set_network_options(network);

        let counters = Arc::new(Counters::of(&sink));
        let connection = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel(max_undelivered);
        let (stop_tx, stop_rx) = watch::channel(false);
        let redeliver = Arc::new(Notify::new());
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let receiver = receive::Receiver {
            events,
            client,
            brokers,
            session,
            filters: o.topics.clone(),
            qos: subscription_qos(mqtt::qos(o.qos).map_err(failed)?),
            permits: Arc::new(Semaphore::new(max_undelivered)),
            permits_total: max_undelivered,
            tx,
            connection,
            counters: counters.clone(),
            sink: sink.clone(),
            max_topic_size: o.max_topic_size as usize,
            max_message_size: o.max_message_size as usize,
            stop: stop_rx,
            down: self.down.clone(),
            redeliver: redeliver.clone(),
            acks: acks_rx,
        };
        let deliverer = deliver::Deliverer {
            rx,
            parser: format.build("mqtt_consumer").map_err(failed)?,
            topic_tag: (!o.topic_tag.is_empty()).then_some(o.topic_tag),
            rules: topic::rules(&o.topic_parsing).map_err(failed)?,
            sink,
            acks: acks_tx,
            counters,
            max_undelivered,
            redeliver: o.persistent_session.then_some(redeliver),
        };
        self.tasks = vec![
            tokio::spawn(receiver.run().in_current_span()),
            tokio::spawn(deliverer.run().in_current_span()),
        ];
        self.stop = Some(stop_tx);
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(STOP_GRACE, task).await;
        }
    }
}

#[cfg(test)]
mod tests;
