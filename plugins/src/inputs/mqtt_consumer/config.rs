//! The table of `[[inputs.mqtt_consumer]]`, with Telegraf's keys and
//! defaults, and graft's limits.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::With;
use crate::duration::{de_duration, de_size};
use crate::format::ParserConfig;
use crate::tls::TlsConfig;

/// `[[inputs.mqtt_consumer]]`: its own keys, the TLS keys and the parser's.
pub type Config = With<With<Options, TlsConfig>, ParserConfig>;

/// The keys of `[[inputs.mqtt_consumer]]` besides TLS and the data format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `servers` (default `["tcp://127.0.0.1:1883"]`): brokers tried in
    /// turn.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// `topics` (required): topic filters to subscribe to (`+`, `#`).
    #[serde(default)]
    pub topics: Vec<String>,
    /// `topic_tag` (default `"topic"`): the tag that gets the message's
    /// topic; `""` adds none.
    #[serde(default = "default_topic_tag")]
    pub topic_tag: String,
    /// `qos` (default 0); 2 is taken as 1 (subscribed at QoS 1).
    #[serde(default)]
    pub qos: u8,
    /// `connection_timeout` (default 30s, at least 1s): connecting, and
    /// writing to the broker.
    #[serde(default = "thirty_seconds", deserialize_with = "de_duration")]
    pub connection_timeout: Duration,
    /// `max_undelivered_messages` (default 1000, 1 to 1 000 000): messages
    /// read and not yet delivered by the outputs; at the bound, graft reads
    /// no more.
    #[serde(default = "default_max_undelivered")]
    pub max_undelivered_messages: usize,
    /// `persistent_session` (default false): the broker keeps the session
    /// (subscriptions, unacknowledged and missed QoS 1/2 messages) across
    /// connections; needs `client_id`.
    #[serde(default)]
    pub persistent_session: bool,
    /// `client_id` (default `graft-consumer-` and random characters).
    #[serde(default)]
    pub client_id: String,
    /// `username` (default none).
    #[serde(default)]
    pub username: String,
    /// `password` (default none).
    #[serde(default)]
    pub password: String,
    /// `keepalive` (default 60), in seconds; 0 sends no pings.
    #[serde(default = "default_keepalive")]
    pub keepalive: i64,
    /// `ping_timeout` (accepted; a missing ping answer is noticed at the
    /// next keep-alive).
    #[serde(default, deserialize_with = "de_duration")]
    pub ping_timeout: Duration,
    /// `client_trace` (accepted; no effect).
    #[serde(default)]
    pub client_trace: bool,
    /// `max_message_size` (graft's; default 1MiB): of a message's payload.
    /// A larger one is skipped and acknowledged, unless its packet is also
    /// larger than this plus `max_topic_size`: that ends the connection
    /// (MQTT cannot skip a message unread).
    #[serde(default = "default_max_message", deserialize_with = "de_size")]
    pub max_message_size: u64,
    /// `max_topic_size` (graft's; default 1KiB): a message on a longer
    /// topic is skipped and acknowledged.
    #[serde(default = "default_max_topic", deserialize_with = "de_size")]
    pub max_topic_size: u64,
    /// `[[topic_parsing]]` (default none).
    #[serde(default)]
    pub topic_parsing: Vec<TopicParsing>,
}

/// One `[[inputs.mqtt_consumer.topic_parsing]]`: measurement, tags and
/// fields taken from the elements of topics that match `topic`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicParsing {
    /// `topic`: the topics this applies to (`+` one element, `#` any).
    #[serde(default)]
    pub topic: String,
    /// `measurement`: `_/name/_`: the element that names the metric.
    #[serde(default)]
    pub measurement: String,
    /// `tags`: `_/_/host`: elements that become tags, by name.
    #[serde(default)]
    pub tags: String,
    /// `fields`: `_/temp/_`: elements that become fields, by name.
    #[serde(default)]
    pub fields: String,
    /// `[types]`: a field's type (`int`, `uint`, `float`; else a string).
    #[serde(default)]
    pub types: BTreeMap<String, String>,
}

fn default_servers() -> Vec<String> {
    vec!["tcp://127.0.0.1:1883".into()]
}

fn default_topic_tag() -> String {
    "topic".into()
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn default_max_undelivered() -> usize {
    1000
}

fn default_keepalive() -> i64 {
    60
}

fn default_max_message() -> u64 {
    1024 * 1024
}

fn default_max_topic() -> u64 {
    1024
}
