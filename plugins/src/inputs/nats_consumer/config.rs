//! The own keys of `[[inputs.nats_consumer]]`, named as Telegraf names
//! them, plus graft's keys for the durable JetStream consumer a pool of
//! agents shares.

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::duration::{de_duration, de_size};

/// The keys of `[[inputs.nats_consumer]]` besides the connection's, TLS
/// and the parser's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `subjects` (default `["telegraf"]` as in Telegraf, but none when
    /// `jetstream_subjects` is set): core NATS subjects to subscribe to
    /// (wildcards allowed), through `queue_group`.
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
    /// `queue_group` (default `"telegraf_consumers"`): agents in one queue
    /// group share the core subjects' messages; empty: every agent gets
    /// every message.
    #[serde(default = "default_queue_group")]
    pub queue_group: String,
    /// `subject_tag` (default none): keep each message's subject as this
    /// tag.
    #[serde(default)]
    pub subject_tag: Option<String>,
    /// `subject_parsing`: Telegraf's subject templates; refused when set
    /// (not supported yet).
    #[serde(default)]
    pub subject_parsing: Option<toml::Value>,
    /// `jetstream_subjects` (default none): read these subjects from their
    /// JetStream stream through a durable consumer.
    #[serde(default)]
    pub jetstream_subjects: Vec<String>,
    /// `jetstream_stream` (default: the stream that takes the first of
    /// `jetstream_subjects`).
    #[serde(default)]
    pub jetstream_stream: String,
    /// `jetstream_durable` (graft's; default `queue_group`): the durable
    /// consumer's name. Agents with the same name share the stream's
    /// messages, each message going to one of them.
    #[serde(default)]
    pub jetstream_durable: String,
    /// `jetstream_ack_wait` (graft's; default 30s): how long the server
    /// waits for a message's acknowledgement before delivering it again.
    /// graft signals progress while the outputs still work on a message,
    /// so this bounds how soon another agent takes over a dead one's.
    #[serde(default = "thirty_seconds", deserialize_with = "de_duration")]
    pub jetstream_ack_wait: Duration,
    /// `jetstream_max_deliver` (graft's; default 0 = no limit): deliveries
    /// of one message before the server gives up on it.
    #[serde(default)]
    pub jetstream_max_deliver: i64,
    /// `jetstream_deliver_policy` (graft's; default `"all"`): where a new
    /// durable consumer starts, `"all"` (the stream's first message) or
    /// `"new"` (messages from now on).
    #[serde(default)]
    pub jetstream_deliver_policy: String,
    /// `pending_message_limit` (default 65536): messages of the core
    /// subscriptions waiting to be read; past it messages are dropped (a
    /// slow consumer), counted in `pending_limit_hits`.
    #[serde(default = "default_pending_messages")]
    pub pending_message_limit: usize,
    /// `pending_bytes_limit` (default 64 MiB): bytes of the messages of the
    /// core subscriptions waiting to be read; past it messages are dropped,
    /// counted in `pending_limit_hits`.
    #[serde(default = "default_pending_bytes", deserialize_with = "de_size")]
    pub pending_bytes_limit: u64,
    /// `max_undelivered_messages` (default 1000): messages this agent read
    /// but whose metrics are not yet written by the outputs; at the limit
    /// graft stops reading until some are delivered. A bound of this
    /// agent only: the pool's is `jetstream_max_ack_pending`.
    #[serde(default = "default_max_undelivered")]
    pub max_undelivered_messages: usize,
    /// `jetstream_max_ack_pending` (graft's; default 0 = 10 ×
    /// `max_undelivered_messages`): the durable consumer's
    /// `max_ack_pending`, messages unacknowledged across the whole pool.
    /// Larger than one agent's bound, so that one stuck agent cannot hold
    /// every pending message.
    #[serde(default)]
    pub jetstream_max_ack_pending: i64,
    /// `jetstream_max_hold` (graft's; default 0 = 3 ×
    /// `jetstream_ack_wait`): how long this agent keeps a message whose
    /// metrics its outputs have not written yet, signalling progress.
    /// Past it, progress stops and the message is nak'd, so that the
    /// server gives it to another agent of the pool (counted in
    /// `hold_limit_hits`).
    #[serde(default, deserialize_with = "de_duration")]
    pub jetstream_max_hold: Duration,
    /// `max_message_size` (graft's; default 0 = the server's
    /// `max_payload`): a larger message is skipped (and terminated on
    /// JetStream), counted in `message_size_limit_hits`.
    #[serde(default, deserialize_with = "de_size")]
    pub max_message_size: u64,
    /// `metric_buffer`: deprecated in Telegraf, ignored.
    #[serde(default)]
    pub metric_buffer: Option<u64>,
}

/// Largest `max_undelivered_messages`: permits of one semaphore, far
/// below tokio's limit, and more messages than memory should hold.
pub const MAX_UNDELIVERED: usize = 1 << 20;
/// Largest `pending_message_limit`: the client's channel capacity.
pub const MAX_PENDING_MESSAGES: usize = 1 << 24;
/// Largest `jetstream_max_ack_pending`.
pub const MAX_POOL_ACK_PENDING: i64 = 1 << 30;

fn default_queue_group() -> String {
    "telegraf_consumers".into()
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn default_pending_messages() -> usize {
    65536
}

fn default_pending_bytes() -> u64 {
    64 << 20
}

fn default_max_undelivered() -> usize {
    1000
}

/// Where a new durable consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliverFrom {
    All,
    New,
}

impl Options {
    /// What the types cannot say. Pure.
    pub fn check(&self) -> Result<DeliverFrom> {
        if self.subject_parsing.is_some() {
            bail!("subject_parsing: not supported by graft yet; use subject_tag");
        }
        if self.core_subjects().is_empty() && self.jetstream_subjects.is_empty() {
            bail!("subjects and jetstream_subjects: set at least one subject to read");
        }
        for (key, list) in [
            ("subjects", &self.core_subjects()),
            ("jetstream_subjects", &self.jetstream_subjects),
        ] {
            for (i, s) in list.iter().enumerate() {
                if !valid_subject(s) {
                    bail!("{key}[{i}]: {s:?} is not a NATS subject");
                }
            }
        }
        if !(1..=MAX_UNDELIVERED).contains(&self.max_undelivered_messages) {
            bail!("max_undelivered_messages: must be between 1 and {MAX_UNDELIVERED}");
        }
        if !(1..=MAX_PENDING_MESSAGES).contains(&self.pending_message_limit) {
            bail!("pending_message_limit: must be between 1 and {MAX_PENDING_MESSAGES}");
        }
        if self.pending_bytes_limit == 0 {
            bail!("pending_bytes_limit: must be at least 1");
        }
        if !self.jetstream_subjects.is_empty() && self.durable().is_empty() {
            bail!("jetstream_durable: a durable consumer needs a name (or set queue_group)");
        }
        if self.durable().contains(['.', '*', '>', ' ', '\t']) {
            bail!(
                "jetstream_durable: {:?} may not contain '.', '*', '>' or spaces",
                self.durable()
            );
        }
        if self.jetstream_ack_wait < Duration::from_secs(1) {
            bail!("jetstream_ack_wait: must be at least 1s");
        }
        if !(0..=MAX_POOL_ACK_PENDING).contains(&self.jetstream_max_ack_pending) {
            bail!(
                "jetstream_max_ack_pending: must be between 0 (10 × max_undelivered_messages) and {MAX_POOL_ACK_PENDING}"
            );
        }
        if !self.jetstream_max_hold.is_zero() && self.jetstream_max_hold < self.jetstream_ack_wait {
            bail!("jetstream_max_hold: must be at least jetstream_ack_wait (or 0 for 3 × it)");
        }
        if self.jetstream_max_deliver < 0 {
            bail!("jetstream_max_deliver: must be 0 (no limit) or more");
        }
        match self.jetstream_deliver_policy.as_str() {
            "" | "all" => Ok(DeliverFrom::All),
            "new" => Ok(DeliverFrom::New),
            other => bail!("jetstream_deliver_policy: {other:?} is not \"all\" or \"new\""),
        }
    }

    /// The core NATS subjects: `subjects`, or Telegraf's default
    /// `["telegraf"]` when neither `subjects` nor `jetstream_subjects` is
    /// set.
    pub fn core_subjects(&self) -> Vec<String> {
        match &self.subjects {
            Some(s) => s.clone(),
            None if self.jetstream_subjects.is_empty() => vec!["telegraf".into()],
            None => Vec::new(),
        }
    }

    /// The durable consumer's `max_ack_pending` for the whole pool.
    pub fn pool_max_ack_pending(&self) -> i64 {
        match self.jetstream_max_ack_pending {
            0 => i64::try_from(self.max_undelivered_messages)
                .unwrap_or(i64::MAX)
                .saturating_mul(10),
            n => n,
        }
    }

    /// How long a message is held (progress signalled) before it is
    /// released to the pool.
    pub fn max_hold(&self) -> Duration {
        if self.jetstream_max_hold.is_zero() {
            self.jetstream_ack_wait * 3
        } else {
            self.jetstream_max_hold
        }
    }

    /// The durable consumer's name.
    pub fn durable(&self) -> &str {
        if self.jetstream_durable.is_empty() {
            &self.queue_group
        } else {
            &self.jetstream_durable
        }
    }
}

/// Tokens separated by `.`, none empty, no spaces; `*` and `>` only as
/// whole tokens, `>` only last.
fn valid_subject(s: &str) -> bool {
    let tokens: Vec<&str> = s.split('.').collect();
    !s.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| {
            !t.is_empty()
                && !t.contains([' ', '\t', '\r', '\n'])
                && (!t.contains(['*', '>']) || *t == "*" || (*t == ">" && i == tokens.len() - 1))
        })
}

#[cfg(test)]
mod tests {
    use super::valid_subject;

    #[test]
    fn subjects_are_tokens_with_whole_wildcards() {
        for ok in ["telegraf", "metrics.>", "a.*.c", "a.b"] {
            assert!(valid_subject(ok), "{ok}");
        }
        for bad in ["", "a..b", "a.>.c", "a b", "ab*", ".a", "a."] {
            assert!(!valid_subject(bad), "{bad}");
        }
    }
}
