//! `outputs.nats`: metrics as messages on a NATS subject, with Telegraf's
//! options; with `[outputs.nats.jetstream]`, into a JetStream stream with
//! every publish acknowledged.
//!
//! - One message per metric (Telegraf's default), or with
//!   `use_batch_format = true` one message per batch, halved until each
//!   fits in the server's `max_payload`. Bodies are written by the
//!   `data_format` serializer (`influx`, `json`, `graft`).
//! - Core NATS is fire-and-forget: a write publishes, then flushes (one
//!   round trip) so that the server has read every message; a message the
//!   server then drops (no subscriber, a slow consumer) is lost unseen.
//! - JetStream: the stream is created when missing (unless
//!   `disable_stream_creation`), and an existing one must take `subject`.
//!   A write publishes all its messages at once, at most
//!   `jetstream.max_ack_pending` awaiting acknowledgement, and awaits the
//!   acknowledgements together under one deadline for the whole write,
//!   `async_ack_timeout` from its first publish. Metrics whose
//!   publish was not acknowledged are kept by the host for a retry (a
//!   partial write), then buffered: never dropped silently.
//! - Each message carries `Nats-Msg-Id`, a digest of subject and body
//!   (`jetstream.message_id = "content"`), so a message published again
//!   within the stream's `duplicate_window` (a retry after a lost
//!   acknowledgement) is stored once. Two identical bodies within the
//!   window are also stored once, which for line protocol with timestamps
//!   is the same point anyway; set `message_id = "none"` with
//!   `influx_omit_timestamp`.
//! - Servers that cannot be reached at the start do not stop the agent:
//!   the output connects at the next write, and until then each write
//!   fails (counted in `errors`) and the metrics wait in its buffer.
//! - A metric that cannot be serialized, or whose message alone passes
//!   the largest message that can be published (the server's
//!   `max_payload` or the stream's `max_msg_size`, whichever is smaller,
//!   less the `Nats-Msg-Id` header), is rejected (counted by the host in
//!   `metrics_rejected`), never retried; so is a message the server or
//!   stream refuses for its size anyway.

mod config;
mod publish;

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::Subject;
use async_nats::jetstream;
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::{Batch, PluginError, WriteError};

use crate::builtin::{self, Builtin};
use crate::config::With;
use crate::format::{Serializer, SerializerConfig};
use crate::nats::ConnectionConfig;
use crate::tls::TlsConfig;
pub use config::{JetStreamConfig, Options};
use config::{MessageId, check, subject_matches};

/// `[[outputs.nats]]`: its own keys, the connection's, TLS and the
/// serializer's.
pub type Config = With<With<With<Options, ConnectionConfig>, TlsConfig>, SerializerConfig>;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<Nats>(table)
}

impl Builtin for Nats {
    const NAME: &'static str = "nats";
    type Config = Config;
    type Plugin = dyn Output;

    fn validate(config: &Config) -> Result<()> {
        let own = &config.own.own.own;
        check(own)?;
        config.own.own.shared.validate()?;
        config.own.shared.validate()?;
        config.shared.validate()
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Self::validate(&config)?;
        Ok(Box::new(Nats::new(config)?))
    }
}

/// Where a connected output publishes.
enum Target {
    Core,
    JetStream {
        js: Box<jetstream::Context>,
        ids: MessageId,
        window: usize,
        ack_timeout: Duration,
        /// The stream's `max_msg_size`, when it sets one.
        stream_max: Option<usize>,
    },
}

struct Connected {
    client: async_nats::Client,
    target: Target,
}

/// The `nats` output.
pub struct Nats {
    options: Options,
    connection: ConnectionConfig,
    tls: TlsConfig,
    serializer: Serializer,
    subject: Subject,
    conn: Option<Connected>,
}

impl Nats {
    fn new(config: Config) -> Result<Self> {
        let With {
            own:
                With {
                    own:
                        With {
                            own: options,
                            shared: connection,
                        },
                    shared: tls,
                },
            shared: format,
        } = config;
        Ok(Self {
            subject: Subject::from(options.subject.as_str()),
            serializer: format.build()?,
            options,
            connection,
            tls,
            conn: None,
        })
    }

    /// Connect, and find (or, with `create`, make) the stream. A probe
    /// (`create` false) changes nothing on the server.
    async fn open(&self, create: bool) -> Result<Option<Connected>> {
        let tls = self.tls.client_config()?;
        let timeout = self.options.timeout;
        let client = self
            .connection
            .connect(&self.options.name, tls, |o| {
                o.request_timeout(Some(timeout))
            })
            .await?;
        let Some(js_config) = &self.options.jetstream else {
            return Ok(Some(Connected {
                client,
                target: Target::Core,
            }));
        };
        let (stream_config, ids) = js_config.resolve(&self.options.subject)?;
        let js = jetstream::ContextBuilder::new()
            .timeout(js_config.async_ack_timeout)
            .max_ack_inflight(js_config.max_ack_pending)
            .build(client.clone());
        let keep = js_config.disable_stream_creation || self.options.external_stream_config;
        let name = stream_config.name.clone();
        let mut stream = match js.get_stream(&name).await {
            Ok(s) => s,
            Err(e) if keep => {
                return Err(e).with_context(|| {
                    format!("jetstream.name: stream {name:?} is not there and disable_stream_creation is set")
                });
            }
            // The stream would be created at the start.
            Err(_) if !create => return Ok(None),
            Err(_) => match js.create_stream(stream_config.clone()).await {
                Ok(s) => {
                    tracing::info!(stream = %name, replicas = stream_config.num_replicas, "JetStream stream created");
                    s
                }
                // Another agent may have created it meanwhile.
                Err(e) => js
                    .get_stream(&name)
                    .await
                    .map_err(|_| e)
                    .with_context(|| format!("jetstream: creating stream {name:?}"))?,
            },
        };
        let info = stream
            .info()
            .await
            .with_context(|| format!("jetstream: reading stream {name:?}"))?;
        if !info
            .config
            .subjects
            .iter()
            .any(|s| subject_matches(s, &self.options.subject))
        {
            anyhow::bail!(
                "subject: stream {name:?} takes {:?}, not {:?}",
                info.config.subjects,
                self.options.subject
            );
        }
        Ok(Some(Connected {
            client,
            target: Target::JetStream {
                js: Box::new(js),
                ids,
                window: js_config.max_ack_pending,
                ack_timeout: js_config.async_ack_timeout,
                stream_max: usize::try_from(info.config.max_message_size)
                    .ok()
                    .filter(|n| *n > 0),
            },
        }))
    }
}

#[async_trait]
impl Output for Nats {
    async fn connect(&mut self) -> Result<(), PluginError> {
        match self.open(true).await {
            Ok(conn) => self.conn = conn,
            // Connected again at the next write: the agent starts, the
            // metrics wait in the buffer, each failed write is counted.
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "cannot reach NATS yet; trying again at the next write"
            ),
        }
        Ok(())
    }

    async fn probe(&mut self) -> Result<(), PluginError> {
        self.open(false)
            .await
            .map(drop)
            .map_err(|e| PluginError::new(format!("{e:#}")))
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        if self.conn.is_none() {
            self.conn = self.open(true).await.map_err(|e| {
                CallError::Returned(WriteError::Retry(format!("not connected to NATS: {e:#}")))
            })?;
        }
        let Some(conn) = &self.conn else {
            return Err(CallError::Returned(WriteError::Retry(
                "not connected to NATS".into(),
            )));
        };
        let max_payload = conn.client.server_info().max_payload.max(1);
        let limit = match &conn.target {
            Target::Core => publish::body_limit(max_payload, None, None),
            Target::JetStream {
                ids, stream_max, ..
            } => publish::body_limit(max_payload, *stream_max, Some(*ids)),
        };
        let mut prepared = if self.options.use_batch_format {
            publish::batched(batch, &self.serializer, limit)
        } else {
            publish::per_metric(batch, &self.serializer, limit)
        };
        if let Some(why) = &prepared.first_rejection {
            tracing::warn!(
                rejected = prepared.rejected.len(),
                max_payload,
                limit,
                error = %why,
                "metrics that cannot be published were rejected"
            );
        }
        let (accepted, message) = match &conn.target {
            Target::Core => {
                match publish::core(
                    &conn.client,
                    &self.subject,
                    &prepared.messages,
                    self.options.timeout,
                )
                .await
                {
                    Ok(()) => (
                        prepared
                            .messages
                            .iter()
                            .flat_map(|m| m.rows.clone().map(|r| r as u32))
                            .collect(),
                        prepared.first_rejection.clone().unwrap_or_default(),
                    ),
                    Err(e) => (Vec::new(), e),
                }
            }
            Target::JetStream {
                js,
                ids,
                window,
                ack_timeout,
                ..
            } => {
                let acked = publish::jetstream(
                    js,
                    &self.subject,
                    &prepared.messages,
                    *ids,
                    *window,
                    *ack_timeout,
                )
                .await;
                if acked.duplicates > 0 {
                    tracing::debug!(
                        duplicates = acked.duplicates,
                        "the stream already had some messages (a retry); stored once"
                    );
                }
                if !acked.too_large.is_empty() {
                    tracing::warn!(
                        rejected = acked.too_large.len(),
                        error = acked.first_error.as_deref().unwrap_or(""),
                        "metrics whose messages the stream or server refused for their size were rejected"
                    );
                }
                let message = match acked.first_error {
                    Some(e) => format!(
                        "{} of {} publishes were not acknowledged by the stream: {e}",
                        acked.failed + acked.too_large.len(),
                        prepared.messages.len()
                    ),
                    None => prepared.first_rejection.clone().unwrap_or_default(),
                };
                prepared.rejected.extend(acked.too_large);
                (acked.accepted, message)
            }
        };
        publish::outcome(batch.len(), accepted, prepared.rejected, message)
            .map_err(CallError::Returned)
    }

    async fn close(&mut self) -> Result<(), CallError<WriteError>> {
        if let Some(conn) = self.conn.take() {
            let _ = tokio::time::timeout(self.options.timeout, conn.client.flush()).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
