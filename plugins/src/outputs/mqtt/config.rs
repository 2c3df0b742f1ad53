//! The table of `[[outputs.mqtt]]`, with Telegraf's keys and defaults.

use std::time::Duration;

use serde::Deserialize;

use super::topic;
use crate::config::With;
use crate::duration::de_duration;
use crate::format::SerializerConfig;
use crate::tls::TlsConfig;

/// `[[outputs.mqtt]]`: its own keys, the TLS keys and the data format's.
pub type Config = With<With<Options, TlsConfig>, SerializerConfig>;

/// The keys of `[[outputs.mqtt]]` besides TLS and the data format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `servers` (default `["localhost:1883"]`): `[scheme://]host:port`.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// `protocol` (default `"3.1.1"`; `"5"` is refused).
    #[serde(default)]
    pub protocol: String,
    /// `topic` (default `"telegraf/{{ .Hostname }}/{{ .PluginName }}"`,
    /// or with Telegraf's older `topic_prefix` alone,
    /// `"{{ .TopicPrefix }}/{{ .Hostname }}/{{ .PluginName }}"`).
    #[serde(default)]
    pub topic: Option<String>,
    /// `topic_prefix` (default none): `{{ .TopicPrefix }}` in `topic`.
    #[serde(default)]
    pub topic_prefix: String,
    /// `qos` (default 2).
    #[serde(default = "default_qos")]
    pub qos: u8,
    /// `keep_alive` (default 0 = no pings), in seconds.
    #[serde(default)]
    pub keep_alive: i64,
    /// `username` (default none).
    #[serde(default)]
    pub username: String,
    /// `password` (default none).
    #[serde(default)]
    pub password: String,
    /// `client_id` (default `graft-output-` and random characters).
    #[serde(default)]
    pub client_id: String,
    /// `timeout` (default 5s): connecting, and the longest a write waits
    /// for the broker's next acknowledgement.
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `batch` (default false; deprecated): `layout = "batch"`.
    #[serde(default)]
    pub batch: bool,
    /// `retain` (default false): the broker keeps the last message of
    /// each topic for new subscribers.
    #[serde(default)]
    pub retain: bool,
    /// `persistent_session` (default false): keep the broker's session
    /// across connections (needs `client_id`).
    #[serde(default)]
    pub persistent_session: bool,
    /// `layout` (default `"non-batch"`; `"batch"`, `"field"`).
    #[serde(default)]
    pub layout: String,
    /// `client_trace` (accepted; no effect).
    #[serde(default)]
    pub client_trace: bool,
    /// `homie_device_name` (accepted; `homie-v4` is refused).
    #[serde(default)]
    pub homie_device_name: String,
    /// `homie_node_id` (accepted; `homie-v4` is refused).
    #[serde(default)]
    pub homie_node_id: String,
    /// `[v5]` (accepted; MQTT 5 publish properties do not apply to 3.1.1).
    #[serde(default)]
    pub v5: Option<toml::Table>,
}

fn default_servers() -> Vec<String> {
    vec!["localhost:1883".into()]
}

impl Options {
    /// `topic`, or what Telegraf makes of its absence.
    pub fn topic(&self) -> &str {
        match &self.topic {
            Some(t) => t,
            None if !self.topic_prefix.is_empty() => topic::LEGACY,
            None => topic::DEFAULT,
        }
    }
}

fn default_qos() -> u8 {
    2
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
