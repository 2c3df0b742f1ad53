//! The JetStream side of the input: the stream that takes a subject, the
//! durable pull consumer on it (created when missing), and pulling from
//! it for as long as the input runs. A stream not created yet, a cluster
//! without quorum, a pull that breaks: each is logged (at most every
//! 10 s) and tried again with a backoff, so that a pool of agents can
//! start before its stream exists and ride out a node's death.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::consume::{Gate, Incoming, Reader};
use crate::backoff::Backoff;

/// One subject read through one durable consumer.
pub struct Source {
    pub js: jetstream::Context,
    pub subject: String,
    /// The stream; empty: the one that takes `subject`.
    pub stream: String,
    /// The durable consumer, as created when missing.
    pub config: consumer::pull::Config,
    /// Messages asked for per pull request.
    pub batch: usize,
    /// Where a durable consumer that cannot be used (made for another
    /// subject) is reported: every gather is then an error.
    pub fatal: Arc<std::sync::Mutex<Option<String>>>,
}

impl Source {
    /// The durable consumer, created when missing.
    async fn consumer(&self) -> Result<consumer::PullConsumer> {
        let stream_name = if self.stream.is_empty() {
            self.js
                .stream_by_subject(self.subject.clone())
                .await
                .with_context(|| format!("no stream takes {:?}", self.subject))?
        } else {
            self.stream.clone()
        };
        let stream = self
            .js
            .get_stream(&stream_name)
            .await
            .with_context(|| format!("reading stream {stream_name:?}"))?;
        let name = self.config.durable_name.clone().unwrap_or_default();
        stream
            .get_or_create_consumer(&name, self.config.clone())
            .await
            .with_context(|| format!("consumer {name:?} of stream {stream_name:?}"))
    }

    /// An existing durable consumer must read what ours would: the same
    /// filter subject and explicit acknowledgements. Other differences
    /// (ack wait, max ack pending) are the pool's and only logged.
    fn same_as_ours(&self, consumer: &consumer::PullConsumer) -> Result<(), String> {
        let theirs = &consumer.cached_info().config;
        let name = theirs.durable_name.as_deref().unwrap_or_default();
        if theirs.filter_subject != self.config.filter_subject {
            return Err(format!(
                "jetstream_durable: the existing consumer {name:?} reads {:?}, not {:?}; name another durable consumer (or delete that one)",
                theirs.filter_subject, self.config.filter_subject
            ));
        }
        if theirs.ack_policy != consumer::AckPolicy::Explicit {
            return Err(format!(
                "jetstream_durable: the existing consumer {name:?} has ack policy {:?}, not explicit; name another durable consumer (or delete that one)",
                theirs.ack_policy
            ));
        }
        if theirs.ack_wait != self.config.ack_wait
            || theirs.max_ack_pending != self.config.max_ack_pending
        {
            tracing::warn!(
                durable = %name,
                ack_wait = ?theirs.ack_wait,
                max_ack_pending = theirs.max_ack_pending,
                "the existing durable consumer's ack wait or max ack pending differ from this agent's config; the consumer's apply"
            );
        }
        Ok(())
    }

    /// Read until `stop`: open the consumer, pull from it, and open it
    /// again whenever that fails.
    pub async fn run(self, reader: Arc<Reader>, mut stop: watch::Receiver<bool>) {
        let errors = Gate::default();
        let mut backoff = Backoff::exponential(Duration::from_millis(500), Duration::from_secs(5));
        let durable = self.config.durable_name.clone().unwrap_or_default();
        while !*stop.borrow() {
            match self.consumer().await {
                Err(e) => {
                    if let Some(n) = errors.hit() {
                        tracing::warn!(
                            subject = %self.subject,
                            durable = %durable,
                            error = format!("{e:#}"),
                            errors_since_last_log = n,
                            "cannot read from JetStream yet; trying again"
                        );
                    }
                }
                Ok(consumer) => {
                    if let Err(why) = self.same_as_ours(&consumer) {
                        tracing::error!(subject = %self.subject, durable = %durable, error = %why, "not reading from JetStream");
                        *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                        return;
                    }
                    tracing::info!(subject = %self.subject, durable = %durable, "reading from JetStream");
                    backoff.succeed();
                    self.pull(&consumer, &reader, &mut stop, &errors).await;
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(backoff.fail()) => {}
            }
        }
    }

    /// Pull from `consumer` until stopped or until pulling fails. Each
    /// pull request asks for no more messages than this agent has room
    /// for (`max_undelivered_messages` less what is out), so the server
    /// hands this agent only what it can take at once and leaves the
    /// rest of the pool's `max_ack_pending` to the other agents.
    async fn pull(
        &self,
        consumer: &consumer::PullConsumer,
        reader: &Arc<Reader>,
        stop: &mut watch::Receiver<bool>,
        errors: &Gate,
    ) {
        // Set when a pull failed: reading stops, and the consumer is
        // opened again after a backoff.
        let failed = Arc::new(AtomicBool::new(false));
        let state = (consumer.clone(), reader.clone(), failed.clone(), self.batch);
        let requests = futures_util::stream::unfold(state, |state| async move {
            let (consumer, reader, failed, batch) = &state;
            if failed.load(Ordering::Relaxed) {
                return None;
            }
            // The reader holds one permit while it waits for a message.
            let room = (reader.permits.available_permits() + 1).min(*batch);
            let pulled = consumer
                .batch()
                .max_messages(room)
                // A pull whose server died ends a few seconds after this.
                .expires(Duration::from_secs(5))
                .heartbeat(Duration::from_secs(1))
                .messages()
                .await
                .map_err(|e| format!("cannot pull from JetStream: {e}"));
            Some((pulled, state))
        });
        let messages = requests
            .flat_map(|pulled| match pulled {
                Ok(batch) => batch
                    .map(|m| m.map_err(|e| format!("pulling from JetStream failed: {e}")))
                    .left_stream(),
                Err(e) => futures_util::stream::once(std::future::ready(Err(e))).right_stream(),
            })
            .filter_map(|m| {
                let m = match m {
                    Ok(m) => Some(incoming(m)),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        if let Some(n) = errors.hit() {
                            tracing::warn!(error = %e, errors_since_last_log = n, "reading from JetStream failed; trying again");
                        }
                        None
                    }
                };
                std::future::ready(m)
            });
        reader.run(Box::pin(messages), stop).await;
    }
}

fn incoming(m: jetstream::Message) -> Incoming {
    let delivered = m.info().map_or(1, |i| i.delivered);
    let (m, acker) = m.split();
    Incoming {
        subject: m.subject.to_string(),
        payload: m.payload,
        acker: Some(acker),
        delivered,
    }
}
