//! One export, whichever listener it came through: bounded in data points
//! and in requests mapped at once, mapped with the configured schema,
//! handed to the pipeline, answered once queued or (durable) once
//! delivered. The points that cannot be mapped are counted and reported
//! back as OTLP's partial success.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use graft_api::MetricSink;
use graft_core::BatchBuilder;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::opentelemetry::Schema;
use crate::opentelemetry::proto::collector::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use crate::opentelemetry::to_graft;

/// Tags one request may write (data points × their attributes): resource
/// attributes are copied to every point, so a small request could
/// otherwise expand into billions of tags.
pub const MAX_TAGS_PER_REQUEST: u64 = 4 << 20;

/// Why an export was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `max_concurrent_requests` requests are being mapped: retry.
    #[error("{0} requests are being received already (max_concurrent_requests); retry later")]
    Busy(usize),
    /// More data points than `max_data_points`: never accepted.
    #[error("the request has {points} data points, more than max_data_points ({max})")]
    TooManyPoints { points: u64, max: u64 },
    /// More tags (data points × their attributes, resource and scope ones
    /// included) than a request may cost: never accepted.
    #[error(
        "the request would write {tags} tags (data points × their attributes, resource and scope ones included), more than {max}; send fewer points or attributes per request"
    )]
    TooManyTags { tags: u64, max: u64 },
    /// The body could not be read.
    #[error("{0}")]
    Malformed(String),
    /// Larger than `max_msg_size`.
    #[error("the request is larger than max_msg_size ({0} bytes)")]
    TooLarge(u64),
    /// (durable) Some metrics were lost on the way, or not settled in time.
    #[error("the metrics were not delivered{0}; retry")]
    Undelivered(&'static str),
    /// The pipeline is shutting down.
    #[error("graft is shutting down")]
    Stopping,
}

/// Counters of the receiving path (names in `docs/instrumentation.md`).
pub struct Counters {
    pub data_points_received: Arc<AtomicU64>,
    pub data_points_rejected: Arc<AtomicU64>,
    pub data_points_limit_hits: Arc<AtomicU64>,
    pub msg_size_limit_hits: Arc<AtomicU64>,
    pub concurrent_requests_limit_hits: Arc<AtomicU64>,
    pub undelivered_requests: Arc<AtomicU64>,
    pub acknowledge_timeouts: Arc<AtomicU64>,
}

impl Counters {
    pub fn for_sink(sink: &MetricSink) -> Self {
        Self {
            data_points_received: sink.counter("data_points_received"),
            data_points_rejected: sink.counter("data_points_rejected"),
            data_points_limit_hits: sink.counter("data_points_limit_hits"),
            msg_size_limit_hits: sink.counter("msg_size_limit_hits"),
            concurrent_requests_limit_hits: sink.counter("concurrent_requests_limit_hits"),
            undelivered_requests: sink.counter("undelivered_requests"),
            acknowledge_timeouts: sink.counter("acknowledge_timeouts"),
        }
    }
}

/// What both listeners share.
pub struct Receiver {
    pub schema: Schema,
    pub max_data_points: u64,
    /// Attributes one data point may carry (resource and scope included).
    pub max_attributes: usize,
    pub max_msg_size: u64,
    /// With `acknowledge = "durable"`: how long an export waits for its
    /// metrics to be settled.
    pub acknowledge: Option<Duration>,
    pub sink: MetricSink,
    pub requests: Arc<Semaphore>,
    pub max_concurrent_requests: usize,
    pub counters: Counters,
    started: Instant,
    /// When a refusal was last logged (seconds since `started`, +1).
    logged_at: AtomicU64,
}

impl Receiver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        schema: Schema,
        max_data_points: u64,
        max_attributes: usize,
        max_msg_size: u64,
        acknowledge: Option<Duration>,
        max_concurrent_requests: usize,
        sink: MetricSink,
    ) -> Self {
        Self {
            schema,
            max_data_points,
            max_attributes,
            max_msg_size,
            acknowledge,
            requests: Arc::new(Semaphore::new(max_concurrent_requests)),
            max_concurrent_requests,
            counters: Counters::for_sink(&sink),
            sink,
            started: Instant::now(),
            logged_at: AtomicU64::new(0),
        }
    }

    /// Whether a warning may be logged now: at most one every 10 s, so a
    /// peer that repeats its mistake does not flood the log.
    pub fn may_log(&self) -> bool {
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.logged_at.load(Ordering::Relaxed);
        (last == 0 || now >= last + 10)
            && self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Count and log a refused request.
    pub fn refused(&self, protocol: &'static str, refusal: &Refusal) {
        let counter = match refusal {
            Refusal::Busy(_) => Some(&self.counters.concurrent_requests_limit_hits),
            Refusal::TooManyPoints { .. } | Refusal::TooManyTags { .. } => {
                Some(&self.counters.data_points_limit_hits)
            }
            Refusal::TooLarge(_) => Some(&self.counters.msg_size_limit_hits),
            Refusal::Undelivered(_) | Refusal::Stopping => {
                Some(&self.counters.undelivered_requests)
            }
            Refusal::Malformed(_) => {
                self.sink.malformed(1);
                None
            }
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if self.may_log() {
            tracing::warn!(protocol, reason = %refusal, "export refused (logged at most every 10 s)");
        }
    }

    /// A slot among the `max_concurrent_requests` requests read and
    /// mapped at once, held until the request is handed on.
    pub fn slot(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        self.requests
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy(self.max_concurrent_requests))
    }

    /// Map `request` (holding `slot`, or taking one), hand it on and say
    /// what to answer.
    pub async fn export(
        &self,
        protocol: &'static str,
        request: ExportMetricsServiceRequest,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<ExportMetricsServiceResponse, Refusal> {
        let result = self.map_and_send(request, slot).await;
        if let Err(refusal) = &result {
            self.refused(protocol, refusal);
        }
        result
    }

    async fn map_and_send(
        &self,
        request: ExportMetricsServiceRequest,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<ExportMetricsServiceResponse, Refusal> {
        let permit = match slot {
            Some(slot) => slot,
            None => self.slot()?,
        };
        let points = to_graft::data_points(&request);
        if points > self.max_data_points {
            return Err(Refusal::TooManyPoints {
                points,
                max: self.max_data_points,
            });
        }
        let tags = to_graft::tags_in(&request, self.max_attributes);
        if tags > MAX_TAGS_PER_REQUEST {
            return Err(Refusal::TooManyTags {
                tags,
                max: MAX_TAGS_PER_REQUEST,
            });
        }
        let mut b = BatchBuilder::new();
        let outcome =
            to_graft::map_request_with(&request, self.schema, self.max_attributes, &mut b);
        drop(request);
        let c = &self.counters;
        c.data_points_received
            .fetch_add(outcome.accepted, Ordering::Relaxed);
        c.data_points_rejected
            .fetch_add(outcome.rejected, Ordering::Relaxed);
        if outcome.rejected > 0 && self.may_log() {
            tracing::warn!(
                rejected = outcome.rejected,
                accepted = outcome.accepted,
                reason = outcome.first_error.as_deref().unwrap_or(""),
                "data points dropped: they cannot be mapped (logged at most every 10 s)"
            );
        }
        let batch = b.finish();
        drop(permit);
        match self.acknowledge {
            None => self.sink.send(batch).await.map_err(|_| Refusal::Stopping)?,
            Some(wait) => {
                let delivery = self
                    .sink
                    .send_acked(batch)
                    .await
                    .map_err(|_| Refusal::Stopping)?;
                match tokio::time::timeout(wait, delivery).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(Refusal::Undelivered("")),
                    Err(_) => {
                        c.acknowledge_timeouts.fetch_add(1, Ordering::Relaxed);
                        return Err(Refusal::Undelivered(" within acknowledge_timeout"));
                    }
                }
            }
        }
        Ok(ExportMetricsServiceResponse {
            partial_success: (outcome.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: outcome.rejected as i64,
                error_message: outcome.first_error.unwrap_or_default(),
            }),
        })
    }
}
