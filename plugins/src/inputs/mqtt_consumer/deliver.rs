//! The consumer's delivery side: reads the messages waiting (several at a
//! time, into one batch), adds the topic tag and what `[[topic_parsing]]`
//! takes from the topic, hands the batch to the pipeline with an
//! acknowledgement, and acknowledges the messages to the broker only once
//! the batch is delivered. A message that gives no metric (malformed,
//! empty) is acknowledged at once: it would fail again, and again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use graft_api::{Delivery, MetricSink};
use graft_core::{Batch, BatchBuilder, FieldRef};
use tokio::sync::{Notify, mpsc};

use super::Counters;
use super::receive::{AckToken, Message};
use super::topic::{Extracted, FieldValue, Rule};
use crate::format::Parser;

/// Messages read into one batch at most.
const MESSAGES_PER_BATCH: usize = 1000;

/// How often a stream of bad messages is logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// What the delivery task owns.
pub struct Deliverer {
    pub rx: mpsc::Receiver<Message>,
    pub parser: Parser,
    /// `topic_tag`, unless empty.
    pub topic_tag: Option<String>,
    pub rules: Vec<Rule>,
    pub sink: MetricSink,
    /// Where acknowledgements go: the receiving side writes them, if their
    /// connection is still up.
    pub acks: mpsc::UnboundedSender<AckToken>,
    pub counters: Arc<Counters>,
    pub max_undelivered: usize,
    /// Told when a batch was not delivered, with a persistent session
    /// only: without one the broker sends nothing again, and drops what it
    /// queued for the client when it goes.
    pub redeliver: Option<Arc<Notify>>,
}

/// A batch handed to the pipeline and the messages it came from.
type Waiting = (Delivery, Vec<Message>);

impl Deliverer {
    /// Run until the receiving side is gone and everything it passed on
    /// was handed to the pipeline.
    pub async fn run(mut self) {
        let (tx, rx) = mpsc::channel::<Waiting>(self.max_undelivered.max(1));
        let acker = tokio::spawn(acknowledge(
            rx,
            self.acks.clone(),
            self.counters.clone(),
            self.redeliver.clone(),
        ));
        let mut bad = BadLog::default();
        while let Some(first) = self.rx.recv().await {
            let mut messages = vec![first];
            while messages.len() < MESSAGES_PER_BATCH {
                match self.rx.try_recv() {
                    Ok(m) => messages.push(m),
                    Err(_) => break,
                }
            }
            let now = crate::inputs::now_ns();
            let mut out = BatchBuilder::new();
            let mut carried = Vec::with_capacity(messages.len());
            for m in messages {
                if self.read(&m, now, &mut out, &mut bad) > 0 {
                    carried.push(m);
                } else if let Some(a) = m.ack {
                    drop(m.permit);
                    let _ = self.acks.send(a);
                }
            }
            if carried.is_empty() {
                continue;
            }
            match self.sink.send_acked(out.finish()).await {
                Ok(delivery) => {
                    if tx.send((delivery, carried)).await.is_err() {
                        break;
                    }
                }
                // Shutting down: not acknowledged, so the broker keeps them.
                Err(_) => break,
            }
        }
        // The acknowledging task goes on by itself while deliveries settle.
        drop((tx, acker));
    }

    /// Parse one message into `out`; returns how many metrics it gave.
    fn read(&self, m: &Message, now: i64, out: &mut BatchBuilder, bad: &mut BadLog) -> usize {
        let topic = m.publish.topic.as_str();
        let body = &m.publish.payload[..];
        let (parsed, metrics) = if self.topic_tag.is_none() && self.rules.is_empty() {
            (self.parser.parse(body, now, out), None)
        } else {
            let mut one = BatchBuilder::new();
            let parsed = self.parser.parse(body, now, &mut one);
            (parsed, Some(one.finish()))
        };
        if parsed.malformed > 0 {
            self.sink.malformed(parsed.malformed as u64);
            if parsed.metrics == 0 {
                self.counters
                    .messages_malformed
                    .fetch_add(1, Ordering::Relaxed);
            }
            bad.note(
                topic,
                parsed.malformed,
                parsed.first_error.as_deref().unwrap_or(""),
            );
        }
        let Some(metrics) = metrics.filter(|m| !m.is_empty()) else {
            return parsed.metrics;
        };
        let mut found = Vec::new();
        for rule in &self.rules {
            match rule.apply(topic) {
                Ok(Some(e)) => found.push(e),
                Ok(None) => {}
                Err(e) => {
                    self.sink.malformed(1);
                    self.counters
                        .messages_malformed
                        .fetch_add(1, Ordering::Relaxed);
                    bad.note(topic, 1, &e);
                    return 0;
                }
            }
        }
        copy_with_topic(&metrics, topic, self.topic_tag.as_deref(), &found, out);
        metrics.len()
    }
}

/// Copy `metrics` into `out` with the topic tag and what the rules took
/// from the topic (a later rule wins).
pub(super) fn copy_with_topic(
    metrics: &Batch,
    topic: &str,
    topic_tag: Option<&str>,
    found: &[Extracted<'_>],
    out: &mut BatchBuilder,
) {
    let name = found.iter().rev().find_map(|e| e.name);
    let overridden = |k: &str| found.iter().any(|e| e.fields.iter().any(|(f, _)| *f == k));
    for m in metrics.iter() {
        let mut b = out.metric(name.unwrap_or(m.name()), m.timestamp());
        for (k, v) in m.tags() {
            b.tag(k, v);
        }
        if let Some(t) = topic_tag {
            b.tag(t, topic);
        }
        for (k, v) in found.iter().flat_map(|e| &e.tags) {
            b.tag(k, v);
        }
        for (k, v) in m.fields() {
            if !overridden(k) {
                b.field(k, v);
            }
        }
        let mut set: Vec<&str> = Vec::new();
        for (k, v) in found.iter().rev().flat_map(|e| &e.fields) {
            if set.contains(k) {
                continue;
            }
            set.push(k);
            match v {
                FieldValue::Int(x) => b.field(k, *x),
                FieldValue::Uint(x) => b.field(k, *x),
                FieldValue::Float(x) => b.field(k, *x),
                FieldValue::Text(s) => b.field(k, FieldRef::Str(s)),
            };
        }
    }
}

/// Acknowledge each batch's messages once it is delivered, in the order
/// the batches went out. A batch that was not delivered leaves its
/// messages unacknowledged and, with `persistent_session` (`redeliver`),
/// asks for a new connection: the broker sends them again there, and
/// meanwhile they would hold places in the window of unacknowledged
/// messages it sends a client. Without a persistent session a new
/// connection would only lose what the broker queued.
async fn acknowledge(
    mut rx: mpsc::Receiver<Waiting>,
    acks: mpsc::UnboundedSender<AckToken>,
    counters: Arc<Counters>,
    redeliver: Option<Arc<Notify>>,
) {
    while let Some((delivery, messages)) = rx.recv().await {
        let delivered = delivery.await.is_ok();
        // Free the places first: the reading side may be waiting for one
        // while our acknowledgements wait for it to poll.
        let tokens: Vec<AckToken> = messages.into_iter().filter_map(|m| m.ack).collect();
        if !delivered {
            counters
                .messages_undelivered
                .fetch_add(tokens.len() as u64, Ordering::Relaxed);
            tracing::warn!(
                messages = tokens.len(),
                "metrics of MQTT messages were not delivered; the messages stay unacknowledged"
            );
            if let Some(r) = &redeliver
                && !tokens.is_empty()
            {
                r.notify_one();
            }
            continue;
        }
        for t in tokens {
            let _ = acks.send(t);
        }
    }
}

/// Logs bad messages: the first at once, then at most one line per
/// [`LOG_EVERY`] with how many came since.
#[derive(Default)]
struct BadLog {
    last: Option<Instant>,
    since: usize,
}

impl BadLog {
    fn note(&mut self, topic: &str, bad: usize, error: &str) {
        self.since += bad;
        if self.last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return;
        }
        tracing::warn!(
            topic,
            skipped = self.since,
            error,
            "MQTT message could not be read in full; what could not be read is skipped"
        );
        self.last = Some(Instant::now());
        self.since = 0;
    }
}
