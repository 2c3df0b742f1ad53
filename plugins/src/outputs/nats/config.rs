//! The own keys of `[[outputs.nats]]` and its `[outputs.nats.jetstream]`
//! table, named as Telegraf names them, and the stream config built from
//! them.

use std::time::Duration;

use anyhow::{Result, bail};
use async_nats::jetstream::stream;
use serde::Deserialize;

use crate::duration::{Spelling, de_duration};

/// The keys of `[[outputs.nats]]` besides the connection's, TLS and the
/// serializer's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `name` (default none): the client name the server shows.
    #[serde(default)]
    pub name: String,
    /// `subject` (default `"telegraf"`): where every message is published.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// `with_subject_layout` (Telegraf's Go-template subject layout): not
    /// supported yet; refused when set.
    #[serde(default)]
    pub with_subject_layout: Vec<String>,
    /// `use_batch_format` (default false): one message per batch (split
    /// where a message would pass the server's `max_payload`) instead of
    /// one per metric. With `data_format = "graft"` this is what
    /// graft-to-graft traffic wants.
    #[serde(default)]
    pub use_batch_format: bool,
    /// `timeout` (graft's; default 5s): connecting, a core NATS write
    /// (publish and flush), and JetStream API requests.
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `external_stream_config` (Telegraf's older spelling of
    /// `jetstream.disable_stream_creation`).
    #[serde(default)]
    pub external_stream_config: bool,
    /// `[outputs.nats.jetstream]`: publish to a JetStream stream, each
    /// publish acknowledged.
    #[serde(default)]
    pub jetstream: Option<JetStreamConfig>,
}

fn default_subject() -> String {
    "telegraf".into()
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// `[outputs.nats.jetstream]`: Telegraf's mirror of JetStream's stream
/// config, plus how publishes are acknowledged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamConfig {
    /// `name` (required): the stream.
    #[serde(default)]
    pub name: String,
    /// `description` (default none).
    #[serde(default)]
    pub description: Option<String>,
    /// `subjects` (default `[subject]`): the stream's subjects; `subject`
    /// is added unless one of them (wildcards included) takes it.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// `retention`: `limits` (default), `interest` or `workqueue`.
    #[serde(default)]
    pub retention: String,
    /// `max_consumers` (default 0 = unlimited).
    #[serde(default)]
    pub max_consumers: i32,
    /// `max_msgs` (default 0 = unlimited).
    #[serde(default)]
    pub max_msgs: i64,
    /// `max_bytes` (default 0 = unlimited).
    #[serde(default)]
    pub max_bytes: i64,
    /// `discard`: `old` (default) or `new`.
    #[serde(default)]
    pub discard: String,
    /// `discard_new_per_subject` (default false).
    #[serde(default)]
    pub discard_new_per_subject: bool,
    /// `max_age` (default 0 = forever): a duration string (`"24h"`), or as
    /// in Telegraf (a Go duration) an integer of nanoseconds.
    #[serde(default, deserialize_with = "de_go_duration")]
    pub max_age: Duration,
    /// `max_msgs_per_subject` (default 0 = unlimited).
    #[serde(default)]
    pub max_msgs_per_subject: i64,
    /// `max_msg_size` (default 0 = the server's `max_payload`).
    #[serde(default)]
    pub max_msg_size: i32,
    /// `storage`: `file` (default) or `memory`.
    #[serde(default)]
    pub storage: String,
    /// `num_replicas` (also `replicas`; default 1): copies kept in a
    /// cluster, at most 5.
    #[serde(default = "one", alias = "replicas")]
    pub num_replicas: usize,
    /// `no_ack` (default false): the stream acknowledges nothing. Refused:
    /// graft's JetStream publishes wait for acknowledgements.
    #[serde(default)]
    pub no_ack: bool,
    /// `template_owner` (default none).
    #[serde(default)]
    pub template_owner: String,
    /// `duplicate_window` (default 0 = the server's, 2m): how long the
    /// stream remembers message ids. A duration string (`"2m"`), or as in
    /// Telegraf (a Go duration) an integer of nanoseconds
    /// (`120000000000`).
    #[serde(default, deserialize_with = "de_go_duration")]
    pub duplicate_window: Duration,
    /// `placement` (default none): `cluster` and `tags`.
    #[serde(default)]
    pub placement: Option<Placement>,
    /// `sealed` (default false).
    #[serde(default)]
    pub sealed: bool,
    /// `deny_delete` (default false).
    #[serde(default)]
    pub deny_delete: bool,
    /// `deny_purge` (default false).
    #[serde(default)]
    pub deny_purge: bool,
    /// `allow_rollup_hdrs` (default false).
    #[serde(default)]
    pub allow_rollup_hdrs: bool,
    /// `allow_direct` (default true, as Telegraf's).
    #[serde(default = "yes")]
    pub allow_direct: bool,
    /// `mirror_direct` (default false).
    #[serde(default)]
    pub mirror_direct: bool,
    /// `republish` (default none): `src`, `dest`, `headers_only`.
    #[serde(default)]
    pub republish: Option<Republish>,
    /// `compression`: `none` only (stream compression needs nats-server
    /// 2.10).
    #[serde(default)]
    pub compression: String,
    /// `first_seq` (default 0): needs nats-server 2.10; refused when set.
    #[serde(default)]
    pub first_seq: u64,
    /// `mirror`, `sources`, `subject_transform`, `consumer_limits`,
    /// `metadata`: not supported; refused when set.
    #[serde(default)]
    pub mirror: Option<toml::Value>,
    /// See `mirror`.
    #[serde(default)]
    pub sources: Option<toml::Value>,
    /// See `mirror`.
    #[serde(default)]
    pub subject_transform: Option<toml::Value>,
    /// See `mirror`.
    #[serde(default)]
    pub consumer_limits: Option<toml::Value>,
    /// See `mirror`.
    #[serde(default)]
    pub metadata: Option<toml::Value>,
    /// `async_publish` (default false): accepted; graft always publishes
    /// a write's messages at once and then awaits their acknowledgements.
    #[serde(default)]
    pub async_publish: bool,
    /// `async_ack_timeout` (default 5s): how long a publish may wait for
    /// its acknowledgement; past it the write fails and is retried.
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub async_ack_timeout: Duration,
    /// `disable_stream_creation` (default false): the stream must exist;
    /// graft does not create it.
    #[serde(default)]
    pub disable_stream_creation: bool,
    /// `message_id` (graft's): `"content"` (default) sets `Nats-Msg-Id` to
    /// a digest of the subject and body, so that within the stream's
    /// `duplicate_window` a message published again (a retried write) is
    /// stored once; `"none"` sets no id.
    #[serde(default)]
    pub message_id: String,
    /// `max_ack_pending` (graft's; default 4096): publishes awaiting their
    /// acknowledgement at once; a larger write waits for room.
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: usize,
}

/// Largest `jetstream.max_ack_pending`: permits of one semaphore (the
/// client takes them all at once as a `u32`), far below tokio's limit.
pub const MAX_ACK_PENDING: usize = 1 << 20;

fn yes() -> bool {
    true
}

/// A duration key of Telegraf's JetStream table, a Go `time.Duration`
/// there: a string with units as everywhere, but a bare integer is
/// nanoseconds (not seconds as elsewhere), and a float is refused.
fn de_go_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    use serde::de::Error as _;
    match <Spelling as Deserialize>::deserialize(d)? {
        Spelling::Integer(n) => u64::try_from(n)
            .map(Duration::from_nanos)
            .map_err(|_| D::Error::custom(format!("{n} is negative"))),
        Spelling::Float(f) => Err(D::Error::custom(format!(
            "{f}: a bare number is nanoseconds here (a Go duration); write an integer or a string such as \"2m\""
        ))),
        other => other.duration().map_err(D::Error::custom),
    }
}

fn one() -> usize {
    1
}

fn default_max_ack_pending() -> usize {
    4096
}

/// `placement` of a stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// `cluster` (default any).
    #[serde(default)]
    pub cluster: Option<String>,
    /// `tags` (default none).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `republish` of a stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Republish {
    /// `src`: the subjects to republish.
    pub src: String,
    /// `dest`: where to.
    pub dest: String,
    /// `headers_only` (default false).
    #[serde(default)]
    pub headers_only: bool,
}

/// Whether messages carry `Nats-Msg-Id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageId {
    Content,
    None,
}

impl JetStreamConfig {
    /// The stream config to create (subjects completed with `subject`),
    /// and the message id choice. Errors name the key.
    pub fn resolve(&self, subject: &str) -> Result<(stream::Config, MessageId)> {
        if self.name.trim().is_empty() {
            bail!("jetstream.name: the stream's name is required");
        }
        if self.name.contains(['.', '*', '>', ' ', '\t']) {
            bail!(
                "jetstream.name: {:?} may not contain '.', '*', '>' or spaces",
                self.name
            );
        }
        if self.no_ack {
            bail!(
                "jetstream.no_ack: graft waits for the stream's acknowledgement of every publish; remove no_ack"
            );
        }
        if !(1..=5).contains(&self.num_replicas) {
            bail!("jetstream.num_replicas: must be between 1 and 5");
        }
        for (key, set) in [
            ("mirror", self.mirror.is_some()),
            ("sources", self.sources.is_some()),
            ("subject_transform", self.subject_transform.is_some()),
            ("consumer_limits", self.consumer_limits.is_some()),
            ("metadata", self.metadata.is_some()),
            ("first_seq", self.first_seq != 0),
        ] {
            if set {
                bail!(
                    "jetstream.{key}: not supported by graft's NATS output (it needs nats-server 2.10 or is not implemented); configure the stream with the nats CLI and set disable_stream_creation = true"
                );
            }
        }
        if !matches!(self.compression.as_str(), "" | "none") {
            bail!(
                "jetstream.compression: {:?}: stream compression needs nats-server 2.10; use \"none\"",
                self.compression
            );
        }
        let retention = match self.retention.as_str() {
            "" | "limits" => stream::RetentionPolicy::Limits,
            "interest" => stream::RetentionPolicy::Interest,
            "workqueue" => stream::RetentionPolicy::WorkQueue,
            other => bail!(
                "jetstream.retention: {other:?} is not one of \"limits\", \"interest\", \"workqueue\""
            ),
        };
        let discard = match self.discard.as_str() {
            "" | "old" => stream::DiscardPolicy::Old,
            "new" => stream::DiscardPolicy::New,
            other => bail!("jetstream.discard: {other:?} is not \"old\" or \"new\""),
        };
        let storage = match self.storage.as_str() {
            "" | "file" => stream::StorageType::File,
            "memory" => stream::StorageType::Memory,
            other => bail!("jetstream.storage: {other:?} is not \"file\" or \"memory\""),
        };
        let message_id = match self.message_id.as_str() {
            "" | "content" => MessageId::Content,
            "none" => MessageId::None,
            other => bail!("jetstream.message_id: {other:?} is not \"content\" or \"none\""),
        };
        if !(1..=MAX_ACK_PENDING).contains(&self.max_ack_pending) {
            bail!("jetstream.max_ack_pending: must be between 1 and {MAX_ACK_PENDING}");
        }
        if self.async_ack_timeout.is_zero() {
            bail!("jetstream.async_ack_timeout: must be above zero");
        }
        let mut subjects = self.subjects.clone();
        if !subjects.iter().any(|s| subject_matches(s, subject)) {
            subjects.push(subject.to_owned());
        }
        let config = stream::Config {
            name: self.name.clone(),
            description: self.description.clone(),
            subjects,
            retention,
            max_consumers: self.max_consumers,
            max_messages: self.max_msgs,
            max_bytes: self.max_bytes,
            discard,
            discard_new_per_subject: self.discard_new_per_subject,
            max_age: self.max_age,
            max_messages_per_subject: self.max_msgs_per_subject,
            max_message_size: self.max_msg_size,
            storage,
            num_replicas: self.num_replicas,
            template_owner: self.template_owner.clone(),
            duplicate_window: self.duplicate_window,
            placement: self.placement.as_ref().map(|p| stream::Placement {
                cluster: p.cluster.clone(),
                tags: p.tags.clone(),
            }),
            sealed: self.sealed,
            deny_delete: self.deny_delete,
            deny_purge: self.deny_purge,
            allow_rollup: self.allow_rollup_hdrs,
            allow_direct: self.allow_direct,
            mirror_direct: self.mirror_direct,
            republish: self.republish.as_ref().map(|r| stream::Republish {
                source: r.src.clone(),
                destination: r.dest.clone(),
                headers_only: r.headers_only,
            }),
            ..Default::default()
        };
        Ok((config, message_id))
    }
}

/// What the types cannot say about the own keys: a subject that can be
/// published to, and options graft does not implement.
pub fn check(o: &Options) -> Result<()> {
    if o.subject.is_empty()
        || o.subject.contains([' ', '\t', '\r', '\n', '*', '>'])
        || o.subject.split('.').any(str::is_empty)
    {
        bail!(
            "subject: {:?} is not a subject to publish to (tokens separated by '.', no wildcards or spaces)",
            o.subject
        );
    }
    if !o.with_subject_layout.is_empty() {
        bail!(
            "with_subject_layout: subject templates are not supported by graft yet; publish to one subject"
        );
    }
    if o.timeout.is_zero() {
        bail!("timeout: must be above zero");
    }
    if let Some(js) = &o.jetstream {
        js.resolve(&o.subject)?;
    }
    Ok(())
}

/// Whether a stream subject (with `*` and `>` wildcards) takes `subject`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}
