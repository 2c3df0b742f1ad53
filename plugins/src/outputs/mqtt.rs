//! `outputs.mqtt`: metrics published to an MQTT 3.1.1 broker (mosquitto,
//! EMQX, HiveMQ, ...), with Telegraf's options, topic templates, layouts
//! and data formats, so that Telegraf's `inputs.mqtt_consumer` (or graft's)
//! reads them.
//!
//! - `servers`: tried in turn; the output sticks to the one that took the
//!   last write. `protocol = "5"` is refused (graft speaks 3.1.1).
//! - `topic` (see [`topic`]), `layout` (see [`layout`]), `data_format` and
//!   the serializer keys (see [`crate::format`]), `qos` (Telegraf's default
//!   2), `retain`.
//! - A write returns only once the broker finished every publish of the
//!   batch (QoS 1: PUBACK; 2: PUBCOMP; 0: written to the socket). A broker
//!   that finishes nothing for `timeout`, or a connection that fails,
//!   fails the write: the host keeps the batch and writes it again (a
//!   retry may publish some messages twice; never none).
//! - `persistent_session` (needs `client_id`), `keep_alive` (seconds; 0,
//!   Telegraf's default, sends no pings), `username`/`password`, the TLS
//!   keys (see [`crate::tls`]).
//! - Accepted without effect: `client_trace`, the `[v5]` table (MQTT 5
//!   publish properties, which Telegraf too ignores with protocol 3.1.1),
//!   `homie_device_name`/`homie_node_id` (for the refused `homie-v4`
//!   layout).

mod config;
mod layout;
mod link;
pub mod topic;

use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::{Batch, PluginError, WriteError};

use crate::builtin::{self, Builtin};
use crate::config::With;
use crate::format::Serializer;
use crate::mqtt::{self, Broker, Session};
use crate::tls::TlsConfig;
pub use config::{Config, Options};
use layout::Layout;
use link::Link;
use topic::Template;

/// Publishes sent and not yet acknowledged, at most.
const INFLIGHT: u16 = 500;

/// The host name for `{{ .Hostname }}`, as the agent reads it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<Mqtt>(table)
}

impl Builtin for Mqtt {
    const NAME: &'static str = "mqtt";
    type Config = Config;
    type Plugin = dyn Output;

    fn validate(config: &Config) -> Result<()> {
        check(config, "host").map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Ok(Box::new(Mqtt::new(config)?))
    }
}

/// What the types cannot say; returns the topic template and layout.
fn check(config: &Config, hostname: &str) -> Result<(Template, Layout)> {
    let o = &config.own.own;
    let tls = &config.own.shared;
    mqtt::protocol(&o.protocol)?;
    mqtt::qos(o.qos)?;
    mqtt::keep_alive_seconds("keep_alive", o.keep_alive)?;
    mqtt::parse_servers(&o.servers, tls.enabled())?;
    tls.validate()?;
    config.shared.validate()?;
    if o.persistent_session && o.client_id.is_empty() {
        bail!("persistent_session: needs a client_id, so that the broker finds the session again");
    }
    if o.timeout.is_zero() {
        bail!("timeout: must be above 0");
    }
    let template = Template::parse(o.topic(), &o.topic_prefix, hostname)?;
    let layout = Layout::parse(&o.layout, o.batch)?;
    Ok((template, layout))
}

/// The MQTT output.
pub struct Mqtt {
    brokers: Vec<Broker>,
    session: Session,
    /// The TLS keys, read at `connect`.
    tls: TlsConfig,
    qos: rumqttc::QoS,
    retain: bool,
    timeout: Duration,
    template: Template,
    layout: Layout,
    serializer: Serializer,
    link: Option<Link>,
    /// The broker tried next.
    current: usize,
}

impl Mqtt {
    /// Check the config; nothing is connected until `connect`.
    pub fn new(config: Config) -> Result<Self> {
        let (template, layout) = check(&config, &hostname())?;
        let With {
            own: With {
                own: o,
                shared: tls,
            },
            shared: format,
        } = config;
        Ok(Self {
            brokers: mqtt::parse_servers(&o.servers, tls.enabled())?,
            session: Session {
                client_id: if o.client_id.is_empty() {
                    mqtt::random_client_id("graft-output-")
                } else {
                    o.client_id
                },
                username: o.username,
                password: o.password,
                keep_alive: mqtt::keep_alive_seconds("keep_alive", o.keep_alive)?,
                clean_session: !o.persistent_session,
                max_incoming_size: 64 * 1024,
                inflight: INFLIGHT,
                manual_acks: false,
                tls: None,
            },
            tls,
            qos: mqtt::qos(o.qos)?,
            retain: o.retain,
            timeout: o.timeout,
            template,
            layout,
            serializer: format.build()?,
            link: None,
            current: 0,
        })
    }

    /// The live link, opening one (trying each broker once, from the
    /// current one) when there is none.
    async fn link(&mut self) -> Result<&mut Link, String> {
        if self.link.as_ref().is_some_and(Link::is_dead) {
            self.link = None;
        }
        if self.link.is_none() {
            let mut errors = Vec::new();
            for _ in 0..self.brokers.len() {
                let broker = &self.brokers[self.current];
                let options = self.session.options(broker).map_err(|e| format!("{e:#}"))?;
                match Link::open(options, self.qos, self.retain, self.timeout).await {
                    Ok(link) => {
                        tracing::debug!(broker = %broker, "connected to the MQTT broker");
                        self.link = Some(link);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(broker = %broker, error = %e, "cannot connect to the MQTT broker");
                        errors.push(format!("{broker}: {e}"));
                        self.current = (self.current + 1) % self.brokers.len();
                    }
                }
            }
            if self.link.is_none() {
                return Err(format!(
                    "no MQTT broker took the connection ({})",
                    errors.join("; ")
                ));
            }
        }
        Ok(self.link.as_mut().expect("opened above"))
    }
}

#[async_trait]
impl Output for Mqtt {
    async fn connect(&mut self) -> Result<(), PluginError> {
        let tls = self
            .tls
            .client_config()
            .map_err(|e| PluginError::new(format!("{e:#}")))?;
        self.session.tls = tls;
        for b in &self.brokers {
            self.session
                .options(b)
                .map_err(|e| PluginError::new(format!("{e:#}")))?;
        }
        // A broker that is down now is not a reason to stop the agent:
        // writes connect again and the host keeps the metrics meanwhile.
        if let Err(e) = self.link().await {
            tracing::warn!(error = %e, "no MQTT broker yet; writes will try again");
        }
        Ok(())
    }

    async fn probe(&mut self) -> Result<(), PluginError> {
        self.session.tls = self
            .tls
            .client_config()
            .map_err(|e| PluginError::new(format!("{e:#}")))?;
        self.link().await.map(drop).map_err(PluginError::new)
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        let messages = layout::messages(self.layout, batch, &self.template, &self.serializer);
        if !messages.rejected.is_empty() {
            tracing::warn!(
                rejected = messages.rejected.len(),
                error = messages.first_error.as_deref().unwrap_or(""),
                "metrics cannot be published; they are dropped"
            );
        }
        if !messages.list.is_empty() {
            let timeout = self.timeout;
            let result = match self.link().await {
                Ok(link) => link.send(messages.list, timeout).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.link = None;
                self.current = (self.current + 1) % self.brokers.len();
                return Err(WriteError::Retry(e).into());
            }
        }
        let message = messages.first_error.unwrap_or_default();
        match (messages.accepted.is_empty(), messages.rejected.is_empty()) {
            (_, true) => Ok(()),
            (true, false) => Err(WriteError::Reject(message).into()),
            (false, false) => Err(WriteError::Partial {
                accepted: messages.accepted,
                rejected: messages.rejected,
                message,
            }
            .into()),
        }
    }

    async fn close(&mut self) -> Result<(), CallError<WriteError>> {
        if let Some(link) = self.link.take() {
            link.close(Duration::from_secs(1)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<Config> {
        crate::config::parse(toml::from_str(text).unwrap())
    }

    fn error(text: &str) -> String {
        match config(text) {
            Err(e) => format!("{e:#}"),
            Ok(c) => format!("{:#}", Mqtt::validate(&c).unwrap_err()),
        }
    }

    #[test]
    fn telegraf_options_are_read() {
        let c = config(
            "servers = [\"tcp://127.0.0.1:1883\"]\nqos = 1\nretain = true\nkeep_alive = 30\n\
             client_id = \"edge\"\npersistent_session = true\ntimeout = \"2s\"\nlayout = \"batch\"\n\
             data_format = \"json\"\ntopic = 'm/{{ .Tag \"host\" }}'\nclient_trace = true\n\
             tls_enable = false\n[v5]\ncontent_type = \"text/plain\"",
        )
        .unwrap();
        Mqtt::validate(&c).unwrap();
        let m = Mqtt::new(c).unwrap();
        assert_eq!(m.layout, Layout::Batch);
        assert_eq!(m.qos, rumqttc::QoS::AtLeastOnce);
        assert!(!m.session.clean_session);
        assert_eq!(m.session.client_id, "edge");
        let m = Mqtt::new(config("").unwrap()).unwrap();
        assert_eq!(m.qos, rumqttc::QoS::ExactlyOnce, "Telegraf's default");
        let c = config("topic_prefix = \"old\"").unwrap();
        assert_eq!(c.own.own.topic(), topic::LEGACY, "Telegraf's older outputs");
        let c = config("topic_prefix = \"old\"\ntopic = \"x/y\"").unwrap();
        assert_eq!(c.own.own.topic(), "x/y");
        assert!(m.session.client_id.starts_with("graft-output-"));
        assert_eq!(m.layout, Layout::NonBatch);
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("protocol = \"5\"", "protocol"),
            ("qos = 3", "qos"),
            ("layout = \"homie-v4\"", "layout"),
            ("layout = \"nope\"", "layout"),
            ("batch = true\nlayout = \"field\"", "batch"),
            ("topic = \"a/#\"", "topic"),
            ("persistent_session = true", "persistent_session"),
            ("servers = [\"ws://h:1\"]", "servers"),
            ("keep_alive = -1", "keep_alive"),
            ("tls_cert = \"/x.pem\"", "tls_key"),
            ("data_format = \"xml\"", "data_format"),
            ("topics = [\"a\"]", "topics"),
            ("timeout = \"0s\"", "timeout"),
        ] {
            let e = error(text);
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
