//! `inputs.execd`: runs one long-lived program and reads metrics from its
//! stdout as it prints them, a line at a time, with the input's
//! `data_format` (influx by default), as Telegraf's input does.
//!
//! - At every interval the program gets what `signal` says: nothing
//!   (`"none"`, the program prints on its own), a newline on its stdin
//!   (`"STDIN"`), or `SIGHUP`/`SIGUSR1`/`SIGUSR2`.
//! - Its stderr goes to graft's log (Telegraf's `E! `/`W! `/`I! `/`D! `
//!   prefixes choose the level), at most 100 lines per 10 s; the others
//!   are counted in `log_suppressed`.
//! - When it exits or is killed from outside it is started again after
//!   `restart_delay`, doubled (up to 5 minutes) while it keeps exiting
//!   within a minute of its start; `stop_on_error` ends it for good after
//!   an exit with an error. Restarts are counted (`restarts`), as are
//!   failed starts (`start_failures`, retried the same way).
//! - A line longer than `buffer_size` is skipped and counted
//!   (`line_size_limit_hits`); a line the parser cannot read is counted in
//!   `parse_errors`; the lines around them are kept.
//! - At stop the program's process group gets SIGTERM, then SIGKILL 5 s
//!   later; what it printed until then is handed on.

mod config;
mod supervise;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};
use rustix::process::Signal as Sig;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::builtin::{self, Builtin};
pub use config::{Config, Options, Settings, Signal};
use supervise::{Running, Stats};

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Execd>(table)
}

impl Builtin for Execd {
    const NAME: &'static str = "execd";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Execd::new(&config)?))
    }
}

/// The input.
pub struct Execd {
    settings: Arc<Settings>,
    running: Arc<Running>,
    task: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Execd {
    /// Resolve the config; the program starts with the input.
    pub fn new(config: &Config) -> Result<Self> {
        Ok(Self {
            settings: Arc::new(Settings::resolve(config)?),
            running: Arc::default(),
            task: None,
        })
    }

    /// The pid of the program running now, if any.
    pub fn pid(&self) -> Option<u32> {
        *self.running.pid.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn failed(message: String) -> CallError {
    CallError::Returned(PluginError::new(message))
}

#[async_trait]
impl Input for Execd {
    /// Signal the program as `signal` says; its metrics come on their own.
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let signal = match self.settings.signal {
            Signal::None => return Ok(Batch::default()),
            Signal::Stdin => {
                let mut stdin = self.running.stdin.lock().await;
                if let Some(pipe) = stdin.as_mut() {
                    let write = tokio::time::timeout(Duration::from_secs(1), pipe.write_all(b"\n"));
                    match write.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            return Err(failed(format!("writing to the program's stdin: {e}")));
                        }
                        Err(_) => return Err(failed("the program's stdin is full (1s)".into())),
                    }
                }
                return Ok(Batch::default());
            }
            Signal::Hup => Sig::HUP,
            Signal::Usr1 => Sig::USR1,
            Signal::Usr2 => Sig::USR2,
        };
        if let Some(pid) = self.pid() {
            crate::child::signal_one(pid, signal)
                .map_err(|e| failed(format!("signalling the program: {e}")))?;
        }
        Ok(Batch::default())
    }

    fn is_service(&self) -> bool {
        true
    }

    /// Start the program (a program that cannot be started is logged and
    /// retried, as after an exit).
    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let stats = Stats::new(|name| sink.counter(name));
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(supervise::supervise(
            self.settings.clone(),
            self.running.clone(),
            sink,
            stats,
            rx,
        ));
        self.task = Some((tx, task));
        Ok(())
    }

    /// End the program: SIGTERM, SIGKILL after the grace period.
    async fn stop(&mut self) {
        if let Some((tx, task)) = self.task.take() {
            let _ = tx.send(true);
            let _ = task.await;
        }
    }
}
