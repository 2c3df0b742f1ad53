//! `inputs.redis`: Redis's `INFO ALL` as Telegraf reports it, plus values
//! read with `[[inputs.redis.commands]]`.
//!
//! - Measurements `redis`, `redis_keyspace`, `redis_cmdstat`,
//!   `redis_latency_percentiles_usec`, `redis_replication`,
//!   `redis_errorstat` (see [`info`]) and `redis_commands`, tagged
//!   `server`+`port` (`port` only when the URL names one, as Telegraf;
//!   or `socket`) and `replication_role`.
//! - Servers are asked concurrently, each over one kept connection (TCP,
//!   TLS with the TLS keys, or a Unix socket; one the server closed is
//!   replaced within the same gather). A server that fails (refused,
//!   wrong password, `timeout`, a reply over `max_reply_size`) loses only its
//!   own metrics: its failure is logged when it starts and when it ends, and
//!   counted every time; the other servers land. A failing command (an
//!   error or nil reply) costs only `redis_commands`, as in Telegraf.
//!
//! Its own counters, which `inputs.internal` shows beside the standard ones:
//! `server_gathers`, `server_errors`,
//! `timeouts`, `reply_size_limit_hits`, `series_limit_hits`,
//! `fields_limit_hits` (INFO fields past 2000 in one metric).

mod config;
mod info;
mod resp;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use async_trait::async_trait;
use graft_api::counters::Counters;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, FieldRef};

use crate::builtin::{self, Builtin};
use config::{Command, ReplyType, Server};
pub use config::{Config, Settings};
pub use info::{Kind, known};
use resp::{Conn, Reply, RespError};

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Redis>(table)
}

impl Builtin for Redis {
    const NAME: &'static str = "redis";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Redis::new(&config)?))
    }
}

/// The input.
pub struct Redis {
    settings: Settings,
    tls: Option<Arc<rustls::ClientConfig>>,
    server_name: Option<String>,
    /// Per server: its kept connection, and whether its last gather failed.
    state: Vec<(Option<Conn>, bool)>,
    stats: Stats,
}

/// The input's own counters (`docs/instrumentation.md`).
struct Stats {
    server_gathers: Arc<AtomicU64>,
    server_errors: Arc<AtomicU64>,
    timeouts: Arc<AtomicU64>,
    reply_size_limit_hits: Arc<AtomicU64>,
    series_limit_hits: Arc<AtomicU64>,
    fields_limit_hits: Arc<AtomicU64>,
}

impl Stats {
    fn new(counter: impl Fn(&'static str) -> Arc<AtomicU64>) -> Self {
        Self {
            server_gathers: counter("server_gathers"),
            server_errors: counter("server_errors"),
            timeouts: counter("timeouts"),
            reply_size_limit_hits: counter("reply_size_limit_hits"),
            series_limit_hits: counter("series_limit_hits"),
            fields_limit_hits: counter("fields_limit_hits"),
        }
    }
}

/// Why a server gave nothing this time.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Resp(#[from] RespError),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("INFO: {0}")]
    Info(&'static str),
    #[error("command {field:?}: {error}")]
    Command { field: String, error: String },
}

/// What one server answered: its INFO, and the commands' values or why
/// they are missing (as in Telegraf, a failing command costs only the
/// `redis_commands` metric).
struct Answer {
    info: String,
    commands: Result<Vec<(String, CommandValue)>, Failure>,
}

enum CommandValue {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Redis {
    /// Resolve the config and read the TLS files; nothing is connected
    /// until the first gather.
    pub fn new(config: &Config) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        let tls = config.shared.client_config()?;
        let local = Arc::new(Counters::default());
        Ok(Self {
            state: settings.servers.iter().map(|_| (None, false)).collect(),
            settings,
            tls,
            server_name: config.shared.tls_server_name.clone(),
            stats: Stats::new(|name| local.counter(name)),
        })
    }

    /// Count and log (on a change of state) the outcome of server `i`.
    fn outcome(&mut self, i: usize, result: &Result<usize, Failure>) {
        let server = &self.settings.servers[i].name;
        let failing = &mut self.state[i].1;
        self.stats.server_gathers.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(metrics) => {
                if *failing {
                    tracing::info!(server = %server, metrics, "server answers again");
                }
                *failing = false;
            }
            Err(error) => {
                self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                match error {
                    Failure::Timeout(_) => {
                        self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    Failure::Resp(RespError::TooLarge(_)) => {
                        self.stats
                            .reply_size_limit_hits
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
                if *failing {
                    tracing::debug!(server = %server, %error, "server failed again");
                } else {
                    *failing = true;
                    tracing::warn!(
                        server = %server,
                        %error,
                        "gathering the server failed; what it answered before the failure is kept, the \
                         other servers go on (further failures are quiet until it recovers)"
                    );
                }
            }
        }
    }
}

/// Connect if needed, authenticate, read INFO ALL and the commands.
async fn ask(
    conn: &mut Option<Conn>,
    server: &Server,
    commands: &[Command],
    tls: Option<&Arc<rustls::ClientConfig>>,
    server_name: Option<&str>,
    max: usize,
) -> Result<Answer, Failure> {
    if conn.is_none() {
        let mut c = Conn::connect(&server.endpoint, tls, server_name).await?;
        if !server.password.is_empty() {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if !server.username.is_empty() {
                args.push(server.username.as_bytes());
            }
            args.push(server.password.as_bytes());
            c.command(&args, max).await?;
        }
        *conn = Some(c);
    }
    let c = conn.as_mut().expect("connected above");
    let info = match c.command(&[b"INFO", b"ALL"], max).await? {
        Reply::Bulk(Some(text)) => String::from_utf8_lossy(&text).into_owned(),
        _ => return Err(Failure::Info("the reply is not a bulk string")),
    };
    let commands = values(c, commands, max).await;
    if matches!(commands, Err(Failure::Resp(_))) {
        // The connection may be mid-reply: start afresh next time.
        *conn = None;
    }
    Ok(Answer { info, commands })
}

/// The `[[commands]]` values, in order; the first failure ends them.
async fn values(
    c: &mut Conn,
    commands: &[Command],
    max: usize,
) -> Result<Vec<(String, CommandValue)>, Failure> {
    let mut values = Vec::with_capacity(commands.len());
    for cmd in commands {
        let args: Vec<&[u8]> = cmd.args.iter().map(Vec::as_slice).collect();
        let failed = |error: String| Failure::Command {
            field: cmd.field.clone(),
            error,
        };
        let reply = match c.command(&args, max).await {
            Ok(reply) => reply,
            Err(RespError::Server(e)) => return Err(failed(e)),
            Err(e) => return Err(e.into()),
        };
        values.push((cmd.field.clone(), convert(reply, cmd.kind).map_err(failed)?));
    }
    Ok(values)
}

/// A command's reply as its configured type, as go-redis converts it.
fn convert(reply: Reply, kind: ReplyType) -> Result<CommandValue, String> {
    let text = match reply {
        Reply::Int(i) => {
            return Ok(match kind {
                ReplyType::Integer => CommandValue::Int(i),
                ReplyType::Float => CommandValue::Float(i as f64),
                ReplyType::String => CommandValue::Str(i.to_string()),
            });
        }
        Reply::Status(s) => s,
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        Reply::Bulk(None) | Reply::Array(None) => return Err("redis: nil".into()),
        Reply::Array(Some(_)) => return Err("unexpected type=array".into()),
    };
    match kind {
        ReplyType::String => Ok(CommandValue::Str(text)),
        ReplyType::Integer => text
            .parse()
            .map(CommandValue::Int)
            .map_err(|_| format!("{text:?} is not an integer")),
        ReplyType::Float => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(CommandValue::Float)
            .ok_or_else(|| format!("{text:?} is not a finite float")),
    }
}

#[async_trait]
impl Input for Redis {
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        self.stats = Stats::new(|name| counters.counter(name));
    }

    async fn gather(&mut self) -> Result<Batch, CallError> {
        let now_ns = crate::inputs::now_ns();
        let settings = &self.settings;
        let (tls, name) = (self.tls.as_ref(), self.server_name.as_deref());
        let asks =
            self.state
                .iter_mut()
                .zip(&settings.servers)
                .map(|((conn, _), server)| async move {
                    let max = settings.max_reply_size;
                    let attempt = async {
                        let kept = conn.is_some();
                        let first = ask(conn, server, &settings.commands, tls, name, max).await;
                        match first {
                            // A kept connection the server closed (a restart,
                            // its idle timeout): one more try on a new one.
                            Err(Failure::Resp(RespError::Io(_))) if kept => {
                                *conn = None;
                                ask(conn, server, &settings.commands, tls, name, max).await
                            }
                            other => other,
                        }
                    };
                    let asked = tokio::time::timeout(settings.timeout, attempt)
                        .await
                        .unwrap_or(Err(Failure::Timeout(settings.timeout)));
                    if asked.is_err() {
                        // The connection may be mid-reply: start afresh next time.
                        *conn = None;
                    }
                    asked
                });
        let answers = futures_util::future::join_all(asks).await;
        let mut out = BatchBuilder::new();
        for (i, answer) in answers.into_iter().enumerate() {
            let result = answer.and_then(|a| {
                let server = &self.settings.servers[i];
                let o = info::add(
                    &a.info,
                    &server.tags,
                    now_ns,
                    self.settings.max_series,
                    &mut out,
                );
                self.stats
                    .series_limit_hits
                    .fetch_add(o.series_dropped as u64, Ordering::Relaxed);
                if o.series_dropped > 0 {
                    tracing::warn!(
                        server = %server.name,
                        dropped = o.series_dropped,
                        max_series = self.settings.max_series,
                        "more per-database/command/error metrics than max_series; the rest dropped"
                    );
                }
                self.stats
                    .fields_limit_hits
                    .fetch_add(o.fields_dropped as u64, Ordering::Relaxed);
                if o.fields_dropped > 0 {
                    tracing::warn!(
                        server = %server.name,
                        dropped = o.fields_dropped,
                        max_fields = info::MAX_FIELDS,
                        "INFO lines past the fields a metric may hold; the rest dropped"
                    );
                }
                // INFO's metrics are in `out` already: a failed command
                // costs only `redis_commands`.
                let commands = a.commands?;
                let mut metrics = o.metrics;
                if !commands.is_empty() {
                    let mut m = out.metric("redis_commands", now_ns);
                    for (k, v) in &server.tags {
                        m.tag(k, v);
                    }
                    for (field, value) in &commands {
                        match value {
                            CommandValue::Int(v) => m.field(field, *v),
                            CommandValue::Float(v) => m.field(field, *v),
                            CommandValue::Str(v) => m.field(field, FieldRef::Str(v)),
                        };
                    }
                    metrics += 1;
                }
                Ok(metrics)
            });
            self.outcome(i, &result);
        }
        Ok(out.finish())
    }
}

#[cfg(test)]
mod tests;

/// The fuzz target's path (`crate::fuzzing::redis_reply`): `data` read as
/// one reply with a 4 KiB budget, then as an `INFO` text with at most 16
/// per-section metrics. Panics only when an invariant breaks.
pub(crate) fn fuzz_reply(data: &[u8]) {
    use std::future::Future;
    let mut reader = data;
    let mut budget = 4096;
    let read = resp::read_reply(&mut reader, &mut budget, 0, 4096);
    let mut read = std::pin::pin!(read);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // A byte slice never waits: one poll finishes the read.
    let std::task::Poll::Ready(reply) = read.as_mut().poll(&mut cx) else {
        panic!("reading from a byte slice waited");
    };
    if let Ok(Reply::Bulk(Some(b))) = &reply {
        assert!(b.len() <= 4096);
    }
    let mut out = BatchBuilder::new();
    let o = info::add(&String::from_utf8_lossy(data), &[], 0, 16, &mut out);
    assert!(o.metrics <= 17);
    let batch = out.finish();
    assert_eq!(batch.len(), o.metrics);
    for m in batch.iter() {
        for (_, v) in m.fields() {
            if let FieldRef::Float(f) = v {
                assert!(f.is_finite());
            }
        }
    }
}
