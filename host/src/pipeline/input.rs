//! A running input: gathers on its schedule (interval, round_interval,
//! collection_jitter, collection_offset), applies its modifiers and the
//! global tags, and sends the batch to the processors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use graft_api::{CallError, Input, MetricSink, Received};
use graft_core::{Batch, PluginError};
use rand::Rng;
use tokio::sync::{mpsc, watch};

use super::chain::ChainMsg;
use super::stopped;
use crate::config::section::MetricModifiers;
use crate::filter::MetricFilter;
use crate::stats::{PluginId, PluginStats};

/// When and how an input gathers.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub interval: Duration,
    pub round_interval: bool,
    pub jitter: Duration,
    pub offset: Duration,
}

impl Schedule {
    /// How long from now until the next gather (before jitter).
    fn until_next(&self, first: bool) -> Duration {
        if !self.round_interval {
            return if first { self.offset } else { self.interval };
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let interval = self.interval.as_nanos().max(1);
        let offset = self.offset.as_nanos() % interval;
        let next = (now.saturating_sub(offset) / interval + 1) * interval + offset;
        Duration::from_nanos((next - now) as u64)
    }
}

/// One input and what graft does around it.
pub struct RunningInput {
    pub id: PluginId,
    pub plugin: Box<dyn Input>,
    pub schedule: Schedule,
    pub precision: Duration,
    pub modifiers: MetricModifiers,
    pub filter: MetricFilter,
    pub global_tags: Arc<BTreeMap<String, String>>,
    pub stats: Arc<PluginStats>,
    /// What a started service input has received, not yet passed on.
    pub service: Option<mpsc::Receiver<Received>>,
    /// The task running the input is under it: log lines carry the
    /// plugin's section and alias.
    pub span: tracing::Span,
}

/// Batches a service input may hand over before it waits.
const SERVICE_QUEUE: usize = 64;

impl RunningInput {
    /// Gather once; errors are counted and logged, never fatal.
    pub async fn gather_once(&mut self) -> Option<Batch> {
        let started = Instant::now();
        let result = self.plugin.gather().await;
        PluginStats::add(
            &self.stats.call_time_ns,
            started.elapsed().as_nanos() as u64,
        );
        match result {
            Ok(batch) => self.finish(batch),
            Err(CallError::Returned(e)) => {
                PluginStats::add(&self.stats.errors, 1);
                tracing::error!(error = %e, "gather failed; next attempt at the next interval");
                None
            }
            Err(CallError::Fault(f)) => {
                PluginStats::add(&self.stats.errors, 1);
                self.stats.fault(f.kind);
                tracing::error!(error = %f, "gather failed; the instance restarts for the next interval");
                None
            }
        }
    }

    /// Select, rename, tag and round a batch the plugin produced, and count
    /// it; `None` when nothing is left.
    fn finish(&self, batch: Batch) -> Option<Batch> {
        Finish::of(self).apply(batch)
    }

    /// Start a service input (bind its sockets); other inputs need nothing.
    /// `undelivered` reads how many metrics wait in the outputs' buffers.
    pub async fn start(
        &mut self,
        undelivered: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<(), PluginError> {
        if !self.plugin.is_service() {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel(SERVICE_QUEUE);
        self.plugin
            .start(
                MetricSink::new(tx, undelivered, self.stats.parse_errors.clone())
                    .with_counters(self.stats.counters.clone()),
            )
            .await?;
        self.service = Some(rx);
        Ok(())
    }

    /// Gather on schedule, and pass on what a service input receives, until
    /// `stop` turns true or the pipeline closes. Returns the input, stopped,
    /// so that a reload that fails can start it again.
    /// With `once`, an input that gathers gathers once and returns (a
    /// service input, never started, returns at once).
    pub async fn run(
        mut self,
        tx: mpsc::Sender<ChainMsg>,
        mut stop: watch::Receiver<bool>,
        once: bool,
    ) -> Self {
        if once {
            if !self.plugin.is_service()
                && let Some(batch) = self.gather_once().await
            {
                let _ = tx.send(ChainMsg::Batch(batch, None)).await;
            }
            return self;
        }
        let mut service = self.service.take();
        let mut first = true;
        loop {
            let mut wait = self.schedule.until_next(first);
            if !self.schedule.jitter.is_zero() {
                let j = rand::rng().random_range(0..self.schedule.jitter.as_nanos().max(1) as u64);
                wait += Duration::from_nanos(j);
            }
            first = false;
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            loop {
                let received = async {
                    match service.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    // Stop first: an input stopped before it ran (a reload
                    // undone) must not gather.
                    biased;
                    _ = stopped(&mut stop) => {
                        self.shut_down(service, &tx).await;
                        return self;
                    }
                    _ = &mut sleep => break,
                    received = received => match received {
                        Some(received) => {
                            if !Finish::of(&self).pass_on(received, &tx).await {
                                if let Some(rx) = service {
                                    fail_waiting(rx);
                                }
                                return self;
                            }
                        }
                        None => service = None,
                    },
                }
            }
            if let Some(batch) = self.gather_once().await
                && tx.send(ChainMsg::Batch(batch, None)).await.is_err()
            {
                return self;
            }
        }
    }

    /// Stop a service input and pass on everything it accepted. What it
    /// receives while stopping (requests in flight finishing) is passed on
    /// as it arrives: a sender waiting for its acknowledgement gets it
    /// before the listener's grace runs out.
    async fn shut_down(
        &mut self,
        service: Option<mpsc::Receiver<Received>>,
        tx: &mpsc::Sender<ChainMsg>,
    ) {
        let Some(mut rx) = service else {
            return;
        };
        let finish = Finish {
            filter: &self.filter,
            modifiers: &self.modifiers,
            global_tags: &self.global_tags,
            precision: self.precision,
            stats: &self.stats,
        };
        let stop = self.plugin.stop();
        tokio::pin!(stop);
        let mut open = true;
        loop {
            tokio::select! {
                () = &mut stop => break,
                received = rx.recv(), if open => match received {
                    Some(r) => {
                        if !finish.pass_on(r, tx).await {
                            return fail_waiting(rx);
                        }
                    }
                    None => open = false,
                },
            }
        }
        while let Ok(r) = rx.try_recv() {
            if !finish.pass_on(r, tx).await {
                return fail_waiting(rx);
            }
        }
    }
}

/// What an input does to each batch before the chain: its selectors,
/// renames, tags and rounding; borrowed apart from the plugin so that a
/// stopping plugin's last batches go on while it stops.
struct Finish<'a> {
    filter: &'a MetricFilter,
    modifiers: &'a MetricModifiers,
    global_tags: &'a BTreeMap<String, String>,
    precision: Duration,
    stats: &'a PluginStats,
}

impl<'a> Finish<'a> {
    fn of(input: &'a RunningInput) -> Self {
        Self {
            filter: &input.filter,
            modifiers: &input.modifiers,
            global_tags: &input.global_tags,
            precision: input.precision,
            stats: &input.stats,
        }
    }

    /// `None` when nothing is left.
    fn apply(&self, mut batch: Batch) -> Option<Batch> {
        if batch.is_empty() {
            return None;
        }
        // Telegraf's order: select on the plugin's own metrics, then rename
        // and tag, then drop fields and tags.
        self.filter.select_batch(&mut batch);
        super::modify::apply(&mut batch, self.modifiers, self.global_tags, self.precision);
        self.filter.modify_batch(&mut batch);
        PluginStats::add(&self.stats.metrics_gathered, batch.len() as u64);
        (!batch.is_empty()).then_some(batch)
    }

    /// Hand what a service input received to the chain; false when the
    /// chain is gone (its acknowledgement then fails: nothing will write
    /// it). A batch the input's selectors empty is settled as delivered.
    async fn pass_on(&self, received: Received, tx: &mpsc::Sender<ChainMsg>) -> bool {
        let Received { batch, ack } = received;
        let Some(batch) = self.apply(batch) else {
            return true;
        };
        match tx.send(ChainMsg::Batch(batch, ack)).await {
            Ok(()) => true,
            Err(mpsc::error::SendError(msg)) => {
                if let ChainMsg::Batch(_, Some(ack)) = msg {
                    ack.fail();
                }
                false
            }
        }
    }
}

/// The pipeline is gone: what still waits will never be written.
fn fail_waiting(mut rx: mpsc::Receiver<Received>) {
    rx.close();
    while let Ok(r) = rx.try_recv() {
        if let Some(ack) = r.ack {
            ack.fail();
        }
    }
}
