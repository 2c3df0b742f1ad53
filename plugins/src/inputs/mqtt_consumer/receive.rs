//! The consumer's side of the connection: drives rumqttc's event loop,
//! connects again with backoff when the broker goes away (moving on to the
//! next of `servers`), subscribes, and hands each message on once it holds
//! one of the `max_undelivered_messages` permits. Without a permit it
//! reads nothing more, so the broker (and TCP) hold the rest. rumqttc
//! sends no ping meanwhile either: a wait longer than 1.5 × `keepalive`
//! makes the broker drop the connection; the consumer connects again and
//! the broker sends the unacknowledged messages again (duplicates, nothing
//! lost, with a persistent session).
//!
//! Acknowledgements come back to this task and are handed to rumqttc only
//! here, between polls, and only for a message of the connection that is
//! up: a connection that fails does so inside a poll, which drops the
//! acknowledgements still queued, so none is ever written on a later
//! connection (where the broker may have given its packet id to another
//! message).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graft_api::MetricSink;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Outgoing, Packet, Publish, QoS,
    SubscribeReasonCode,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

use super::Counters;
use crate::backoff::Backoff;
use crate::mqtt::{Broker, Session};

/// A message on its way to the outputs.
pub struct Message {
    /// The PUBLISH as it came (topic and payload).
    pub publish: Publish,
    /// What acknowledges it (QoS 1 and 2).
    pub ack: Option<AckToken>,
    /// Its place among the `max_undelivered_messages`.
    pub permit: OwnedSemaphorePermit,
}

/// Enough of a QoS 1/2 message to acknowledge it on the connection it
/// came on.
#[derive(Debug, Clone, Copy)]
pub struct AckToken {
    pub pkid: u16,
    pub qos: QoS,
    /// The connection (counted from 1) it came on.
    pub connection: u64,
}

impl AckToken {
    fn publish(self) -> Publish {
        let mut p = Publish::new("", self.qos, Vec::new());
        p.pkid = self.pkid;
        p
    }
}

/// Limits already logged on this connection (each once per connection).
#[derive(Default)]
struct Logged {
    topic_size: bool,
    message_size: bool,
    undelivered: bool,
}

/// How often a connection lost to a message over `max_message_size` is
/// logged, at most (with a persistent session the broker sends it again
/// on every connection).
const OVERSIZE_LOG_EVERY: Duration = Duration::from_secs(60);

/// What the receiving task owns.
pub struct Receiver {
    pub events: EventLoop,
    pub client: AsyncClient,
    pub brokers: Vec<Broker>,
    pub session: Session,
    pub filters: Vec<String>,
    pub qos: QoS,
    pub permits: Arc<Semaphore>,
    /// `max_undelivered_messages`: the permits there are.
    pub permits_total: usize,
    pub tx: mpsc::Sender<Message>,
    /// Connections made so far; the current one's number.
    pub connection: Arc<AtomicU64>,
    pub counters: Arc<Counters>,
    pub sink: MetricSink,
    pub max_topic_size: usize,
    pub max_message_size: usize,
    pub stop: watch::Receiver<bool>,
    /// Why the consumer is not connected, while it is not (what `gather`
    /// reports).
    pub down: Arc<Mutex<Option<String>>>,
    /// Asked when messages were not delivered: connect again, so that the
    /// broker sends them again (and frees their places in its window).
    pub redeliver: Arc<Notify>,
    /// Messages to acknowledge, from the delivery side.
    pub acks: mpsc::UnboundedReceiver<AckToken>,
}

impl Receiver {
    /// Run until stopped; then say DISCONNECT.
    pub async fn run(mut self) {
        let mut backoff = Backoff::exponential(Duration::from_millis(250), Duration::from_secs(30));
        let mut current = 0;
        let mut logged = Logged::default();
        // Whether a connection is up (between its CONNACK and its failure).
        let mut up = false;
        // Connections lost to an oversized message: when last logged, and
        // how many since.
        let mut oversize_logged: Option<Instant> = None;
        let mut oversize_since = 0u64;
        loop {
            let event = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => break,
                () = self.redeliver.notified() => {
                    tracing::info!(
                        broker = %self.brokers[current],
                        "connecting again so that the broker sends the undelivered messages again"
                    );
                    self.events.clean();
                    up = false;
                    continue;
                }
                Some(token) = self.acks.recv() => Err(token),
                e = self.events.poll() => Ok(e),
            };
            let event = match event {
                Ok(e) => e,
                Err(token) => {
                    self.ack(token, up);
                    continue;
                }
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff.succeed();
                    logged = Logged::default();
                    up = true;
                    self.set_down(None);
                    if self.connection.fetch_add(1, Ordering::AcqRel) > 0 {
                        self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::info!(
                        broker = %self.brokers[current],
                        session_present = ack.session_present,
                        "connected to the MQTT broker"
                    );
                    if self.session.clean_session || !ack.session_present {
                        let filters = self
                            .filters
                            .iter()
                            .map(|f| rumqttc::SubscribeFilter::new(f.clone(), self.qos));
                        if let Err(e) = self.client.subscribe_many(filters).await {
                            tracing::error!(error = %e, "cannot subscribe");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(s))) => {
                    if s.return_codes.contains(&SubscribeReasonCode::Failure) {
                        tracing::error!(
                            topics = ?self.filters,
                            "the broker refused a subscription (not allowed, or a bad filter)"
                        );
                    } else {
                        tracing::info!(topics = ?self.filters, "subscribed to MQTT topics");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if !self.take(p, &mut logged).await {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    up = false;
                    let wait = backoff.fail();
                    self.set_down(Some(format!("{}: {e}", self.brokers[current])));
                    if matches!(
                        &e,
                        ConnectionError::MqttState(rumqttc::StateError::Deserialization(
                            rumqttc::Error::PayloadSizeLimitExceeded(_)
                        ))
                    ) {
                        self.counters
                            .message_size_limit_hits
                            .fetch_add(1, Ordering::Relaxed);
                        self.sink.malformed(1);
                        oversize_since += 1;
                        if oversize_logged.is_none_or(|t| t.elapsed() >= OVERSIZE_LOG_EVERY) {
                            tracing::warn!(
                                broker = %self.brokers[current],
                                max_message_size = self.max_message_size,
                                retry_in_ms = wait.as_millis() as u64,
                                connections_lost = oversize_since,
                                "a message is larger than max_message_size; the connection is dropped \
                                 (logged at most once a minute)"
                            );
                            oversize_logged = Some(Instant::now());
                            oversize_since = 0;
                        }
                    } else {
                        tracing::warn!(
                            broker = %self.brokers[current],
                            error = %e,
                            retry_in_ms = wait.as_millis() as u64,
                            "MQTT connection failed; connecting again"
                        );
                    }
                    current = (current + 1) % self.brokers.len();
                    if let Ok(o) = self.session.options(&self.brokers[current]) {
                        self.events.mqtt_options = o;
                    }
                    tokio::select! {
                        _ = self.stop.wait_for(|s| *s) => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        self.disconnect().await;
    }

    fn set_down(&self, why: Option<String>) {
        *self.down.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// Count a message and pass it on; false once stopping.
    async fn take(&mut self, p: Publish, logged: &mut Logged) -> bool {
        let c = &self.counters;
        c.messages_received.fetch_add(1, Ordering::Relaxed);
        if p.dup {
            c.messages_redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let ack = (p.qos != QoS::AtMostOnce).then_some(AckToken {
            pkid: p.pkid,
            qos: p.qos,
            connection: self.connection.load(Ordering::Acquire),
        });
        if p.topic.len() > self.max_topic_size {
            c.topic_size_limit_hits.fetch_add(1, Ordering::Relaxed);
            self.sink.malformed(1);
            if !std::mem::replace(&mut logged.topic_size, true) {
                tracing::warn!(
                    topic_bytes = p.topic.len(),
                    max_topic_size = self.max_topic_size,
                    "a message's topic is longer than max_topic_size; it is skipped and acknowledged"
                );
            }
            if let Some(a) = ack {
                self.ack(a, true);
            }
            return true;
        }
        if p.payload.len() > self.max_message_size {
            c.message_size_limit_hits.fetch_add(1, Ordering::Relaxed);
            self.sink.malformed(1);
            if !std::mem::replace(&mut logged.message_size, true) {
                tracing::warn!(
                    payload_bytes = p.payload.len(),
                    max_message_size = self.max_message_size,
                    "a message is larger than max_message_size; it is skipped and acknowledged"
                );
            }
            if let Some(a) = ack {
                self.ack(a, true);
            }
            return true;
        }
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                c.undelivered_messages_limit_hits
                    .fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(&mut logged.undelivered, true) {
                    tracing::info!(
                        max_undelivered_messages = self.permits_total,
                        "max_undelivered_messages reached; reading waits until the outputs deliver"
                    );
                }
                tokio::select! {
                    p = self.permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return false,
                    },
                    _ = self.stop.wait_for(|s| *s) => return false,
                }
            }
        };
        let message = Message {
            publish: p,
            ack,
            permit,
        };
        self.tx.send(message).await.is_ok()
    }

    /// Hand an acknowledgement to rumqttc if its message came on the
    /// connection that is up; else drop it (the broker sends the message
    /// again, and the packet id may now be another message's). Queued
    /// here, between polls, it is either written on this connection or
    /// dropped by rumqttc when this connection fails.
    fn ack(&self, token: AckToken, up: bool) {
        if !up || token.connection != self.connection.load(Ordering::Acquire) {
            tracing::debug!(
                pkid = token.pkid,
                "acknowledgement of a message from a connection that is gone dropped"
            );
            return;
        }
        match self.client.try_ack(&token.publish()) {
            Ok(()) => {
                self.counters.messages_acked.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(
                pkid = token.pkid,
                error = %e,
                "acknowledgement not queued; the broker sends the message again"
            ),
        }
    }

    /// Say DISCONNECT and let it reach the broker (at most a second).
    async fn disconnect(&mut self) {
        if self.client.try_disconnect().is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match self.events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}
