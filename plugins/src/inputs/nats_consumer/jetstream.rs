//! The JetStream side of the input: the stream that takes a subject, the
//! durable pull consumer on it (created when missing), and pulling from
//! it for as long as the input runs. A stream not created yet, a cluster
//! without quorum, a pull that breaks: each is logged (at most every
//! 10 s) and tried again with a backoff, so that a pool of agents can
//! start before its stream exists and ride out a node's death.

use std::sync::Arc;
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

    /// Pull from `consumer` until stopped or until pulling fails.
    async fn pull(
        &self,
        consumer: &consumer::PullConsumer,
        reader: &Arc<Reader>,
        stop: &mut watch::Receiver<bool>,
        errors: &Gate,
    ) {
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.batch)
            // A pull whose server died is noticed within two heartbeats.
            .expires(Duration::from_secs(5))
            .heartbeat(Duration::from_secs(1))
            .messages()
            .await;
        let messages = match messages {
            Ok(m) => m,
            Err(e) => {
                if let Some(n) = errors.hit() {
                    tracing::warn!(error = %e, errors_since_last_log = n, "cannot pull from JetStream; trying again");
                }
                return;
            }
        };
        let messages = messages.filter_map(|m| {
            let m = match m {
                Ok(m) => Some(incoming(m)),
                Err(e) => {
                    if let Some(n) = errors.hit() {
                        tracing::warn!(error = %e, errors_since_last_log = n, "pulling from JetStream failed; going on");
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
