//! Reading messages into the pipeline: messages taken together while more
//! are ready (one batch for many small messages), each taken only with a
//! permit of `max_undelivered_messages`, parsed, handed on with
//! [`MetricSink::send_acked`], and acknowledged on JetStream once the
//! batch is delivered (progress signalled meanwhile), nak'd if it was
//! lost. Unreadable messages are counted and terminated.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::AckKind;
use async_nats::jetstream::message::Acker;
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use graft_api::{Delivery, MetricSink};
use graft_core::BatchBuilder;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::format::Parser;

/// Messages taken into one batch at most.
const GROUP_MESSAGES: usize = 1000;
/// Metrics of one batch, past which no more messages are added.
const GROUP_METRICS: usize = 10_000;

/// A message as read: where it came from, its body, and how to answer it
/// (JetStream only).
pub struct Incoming {
    pub subject: String,
    pub payload: Bytes,
    pub acker: Option<Acker>,
    /// JetStream's delivery count (1 for the first delivery and for core
    /// NATS).
    pub delivered: i64,
}

/// The input's own counters (names in `docs/instrumentation.md`).
pub struct Counters {
    pub received: Arc<AtomicU64>,
    pub redelivered: Arc<AtomicU64>,
    pub acked: Arc<AtomicU64>,
    pub nacked: Arc<AtomicU64>,
    pub terminated: Arc<AtomicU64>,
    pub malformed: Arc<AtomicU64>,
    pub ack_errors: Arc<AtomicU64>,
    pub message_size_limit_hits: Arc<AtomicU64>,
    pub undelivered_messages_limit_hits: Arc<AtomicU64>,
    pub hold_limit_hits: Arc<AtomicU64>,
    pub pending_limit_hits: Arc<AtomicU64>,
}

impl Counters {
    pub fn of(sink: &MetricSink) -> Self {
        Self {
            received: sink.counter("messages_received"),
            redelivered: sink.counter("messages_redelivered"),
            acked: sink.counter("messages_acked"),
            nacked: sink.counter("messages_nacked"),
            terminated: sink.counter("messages_terminated"),
            malformed: sink.counter("messages_malformed"),
            ack_errors: sink.counter("ack_errors"),
            message_size_limit_hits: sink.counter("message_size_limit_hits"),
            undelivered_messages_limit_hits: sink.counter("undelivered_messages_limit_hits"),
            hold_limit_hits: sink.counter("hold_limit_hits"),
            pending_limit_hits: sink.counter("pending_limit_hits"),
        }
    }
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// Logs a kind of event at most every 10 s, with how many happened since.
#[derive(Default)]
pub struct Gate {
    last: std::sync::Mutex<Option<Instant>>,
    since: AtomicU64,
}

impl Gate {
    /// Count one event; `Some(n)` (events since the last line) when it
    /// should be logged now.
    pub fn hit(&self) -> Option<u64> {
        let n = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            return None;
        }
        *last = Some(Instant::now());
        self.since.store(0, Ordering::Relaxed);
        Some(n)
    }
}

/// What every reading loop shares.
pub struct Reader {
    pub sink: MetricSink,
    pub parser: Parser,
    pub subject_tag: Option<String>,
    /// Bytes a message may have: `max_message_size`, or the server's
    /// `max_payload` once connected.
    pub max_message_size: AtomicUsize,
    /// One permit per message read and not yet delivered.
    pub permits: Arc<Semaphore>,
    pub counters: Counters,
    /// How often progress is signalled for a message still being written.
    pub progress_every: Duration,
    /// How long messages are held (progress signalled) before they are
    /// nak'd for another agent of the pool.
    pub max_hold: Duration,
    pub held_too_long: Gate,
    pub deliveries: Mutex<JoinSet<()>>,
    pub unreadable: Gate,
    pub too_large: Gate,
    pub lost: Gate,
    /// Set when stopping past the grace: deliveries still out are given up
    /// (their messages nak'd).
    pub give_up: watch::Sender<bool>,
}

impl Reader {
    /// Read `messages` until it ends or `stop` is set.
    pub async fn run(
        self: &Arc<Self>,
        mut messages: impl Stream<Item = Incoming> + Unpin,
        stop: &mut watch::Receiver<bool>,
    ) {
        loop {
            let Some(permit) = self.permit(stop).await else {
                return;
            };
            let first = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                m = messages.next() => match m {
                    Some(m) => m,
                    None => return,
                },
            };
            let mut group = Group::new(permit);
            self.add(&mut group, first).await;
            while group.messages < GROUP_MESSAGES && group.builder.len() < GROUP_METRICS {
                let Ok(p) = self.permits.clone().try_acquire_owned() else {
                    break;
                };
                match messages.next().now_or_never() {
                    Some(Some(m)) => {
                        group.permit.merge(p);
                        self.add(&mut group, m).await;
                    }
                    Some(None) => {
                        self.send(group).await;
                        return;
                    }
                    None => break,
                }
            }
            self.send(group).await;
        }
    }

    /// A permit for one more message; waits (counted once per wait) while
    /// `max_undelivered_messages` are out. `None` when stopping.
    async fn permit(&self, stop: &mut watch::Receiver<bool>) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Some(p);
        }
        add(&self.counters.undelivered_messages_limit_hits, 1);
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => None,
            p = self.permits.clone().acquire_owned() => p.ok(),
        }
    }

    /// Parse one message into the group; answer at once a message that
    /// gives no metric.
    async fn add(&self, group: &mut Group, m: Incoming) {
        add(&self.counters.received, 1);
        if m.delivered > 1 {
            add(&self.counters.redelivered, 1);
        }
        group.messages += 1;
        let max_message_size = self.max_message_size.load(Ordering::Relaxed);
        if m.payload.len() > max_message_size {
            add(&self.counters.message_size_limit_hits, 1);
            self.sink.malformed(1);
            if let Some(n) = self.too_large.hit() {
                tracing::warn!(
                    subject = %m.subject,
                    bytes = m.payload.len(),
                    max_message_size,
                    skipped_since_last_log = n,
                    "message larger than max_message_size skipped (terminated on JetStream, not redelivered)"
                );
            }
            self.answer(m.acker, AckKind::Term).await;
            return;
        }
        let before = group.builder.len();
        let parsed = match &self.subject_tag {
            None => self
                .parser
                .parse(&m.payload, super::now_ns(), &mut group.builder),
            Some(tag) => {
                let mut one = BatchBuilder::new();
                let parsed = self.parser.parse(&m.payload, super::now_ns(), &mut one);
                let mut one = one.finish();
                one.set_tag(tag, &m.subject);
                for metric in one.iter() {
                    group.builder.push(metric);
                }
                parsed
            }
        };
        if parsed.malformed > 0 {
            self.sink.malformed(parsed.malformed as u64);
        }
        let unreadable = group.builder.len() == before && parsed.malformed > 0;
        if (unreadable || parsed.malformed > 0)
            && let Some(n) = self.unreadable.hit()
        {
            tracing::warn!(
                subject = %m.subject,
                bytes = m.payload.len(),
                metrics = parsed.metrics,
                malformed = parsed.malformed,
                error = parsed.first_error.as_deref().unwrap_or(""),
                messages_since_last_log = n,
                "message could not be read in full; what could not be read is skipped"
            );
        }
        if unreadable {
            add(&self.counters.malformed, 1);
            self.answer(m.acker, AckKind::Term).await;
        } else if group.builder.len() == before {
            // Nothing in it (an empty body): done with.
            self.answer(m.acker, AckKind::Ack).await;
        } else if let Some(a) = m.acker {
            group.ackers.push(a);
        }
    }

    /// Hand a group's metrics on; its messages are answered once they are
    /// delivered, by a task of their own.
    async fn send(self: &Arc<Self>, group: Group) {
        let Group {
            builder,
            ackers,
            permit,
            ..
        } = group;
        if builder.is_empty() {
            return;
        }
        let Ok(delivery) = self.sink.send_acked(builder.finish()).await else {
            // The pipeline is gone: let the server deliver them again.
            self.answer_all(&ackers, AckKind::Nak(None)).await;
            return;
        };
        let reader = self.clone();
        let task = async move {
            let settled = reader.settle(delivery, &ackers).await;
            if settled == Settled::Delivered {
                reader.answer_all(&ackers, AckKind::Ack).await;
            } else if settled == Settled::Lost {
                if let Some(n) = reader.lost.hit() {
                    tracing::warn!(
                        messages = ackers.len(),
                        batches_since_last_log = n,
                        "metrics not delivered (an output dropped them, or graft is stopping); their messages are nak'd for redelivery"
                    );
                }
                reader.answer_all(&ackers, AckKind::Nak(None)).await;
            }
            drop(permit);
        };
        let mut tasks = self.deliveries.lock().await;
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task.in_current_span());
    }

    /// Wait for a delivery, telling the server the messages are still
    /// being worked on meanwhile, for at most `max_hold`: then they are
    /// nak'd for another agent, and the delivery (holding its permits, so
    /// that this agent reads no more meanwhile) is awaited unanswered.
    async fn settle(&self, delivery: Delivery, ackers: &[Acker]) -> Settled {
        tokio::pin!(delivery);
        let mut give_up = self.give_up.subscribe();
        let gave_up = async move {
            let _ = give_up.wait_for(|g| *g).await;
        };
        tokio::pin!(gave_up);
        let held_since = Instant::now();
        let mut released = false;
        loop {
            tokio::select! {
                r = &mut delivery => {
                    return match (released, r.is_ok()) {
                        (true, _) => Settled::Released,
                        (false, true) => Settled::Delivered,
                        (false, false) => Settled::Lost,
                    };
                }
                () = &mut gave_up => {
                    return if released { Settled::Released } else { Settled::Lost };
                }
                () = tokio::time::sleep(self.progress_every), if !released && !ackers.is_empty() => {
                    if held_since.elapsed() < self.max_hold {
                        for a in ackers {
                            let _ = a.ack_with(AckKind::Progress).await;
                        }
                        continue;
                    }
                    released = true;
                    add(&self.counters.hold_limit_hits, ackers.len());
                    if let Some(n) = self.held_too_long.hit() {
                        tracing::warn!(
                            messages = ackers.len(),
                            held_for = ?held_since.elapsed(),
                            max_hold = ?self.max_hold,
                            batches_since_last_log = n,
                            "metrics not written within jetstream_max_hold; their messages are nak'd for another agent of the pool"
                        );
                    }
                    self.answer_all(ackers, AckKind::Nak(None)).await;
                }
            }
        }
    }

    async fn answer(&self, acker: Option<Acker>, kind: AckKind) {
        if let Some(a) = acker {
            self.answer_all(std::slice::from_ref(&a), kind).await;
        }
    }

    async fn answer_all(&self, ackers: &[Acker], kind: AckKind) {
        if ackers.is_empty() {
            return;
        }
        let counter = match kind {
            AckKind::Ack => &self.counters.acked,
            AckKind::Nak(_) => &self.counters.nacked,
            _ => &self.counters.terminated,
        };
        let mut failed = 0;
        for a in ackers {
            if a.ack_with(kind).await.is_err() {
                failed += 1;
            }
        }
        add(counter, ackers.len() - failed);
        if failed > 0 {
            add(&self.counters.ack_errors, failed);
            tracing::warn!(
                failed,
                answer = ?kind,
                "answering JetStream failed; the server will deliver those messages again after ack wait"
            );
        }
    }

    /// Let deliveries in flight settle for at most `grace`; the messages
    /// of those still out are then nak'd, so that another agent takes them
    /// at once (their metrics sit in a memory buffer that the outputs'
    /// last flush may still write: a duplicate then).
    pub async fn drain(&self, grace: Duration) {
        let mut tasks = self.deliveries.lock().await;
        let all = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_ok() {
            return;
        }
        tracing::warn!(
            batches = tasks.len(),
            "stopping with metrics not yet written; their messages are nak'd for another agent to take"
        );
        let _ = self.give_up.send(true);
        let all = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(2), all)
            .await
            .is_err()
        {
            tracing::warn!(
                batches = tasks.len(),
                "some messages could not be nak'd in time; they are delivered again after the ack wait"
            );
        }
    }
}

/// How a delivery ended for its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Written: acknowledge them.
    Delivered,
    /// Lost, or given up at stop: nak them.
    Lost,
    /// Already nak'd past `max_hold`: nothing more to say.
    Released,
}

/// Messages taken together.
struct Group {
    builder: BatchBuilder,
    ackers: Vec<Acker>,
    permit: OwnedSemaphorePermit,
    messages: usize,
}

impl Group {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        Self {
            builder: BatchBuilder::new(),
            ackers: Vec::new(),
            permit,
            messages: 0,
        }
    }
}
