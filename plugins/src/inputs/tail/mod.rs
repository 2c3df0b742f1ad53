//! `inputs.tail`: follows files (paths or globs, globbed again every
//! second) and parses each line appended with the input's `data_format`,
//! tagging the metrics with the file's path, as Telegraf's input does.
//!
//! - Rotation is followed: a file renamed or deleted is read to its end,
//!   then the new file under the name from its start; a file truncated
//!   (copytruncate) is read again from its start.
//! - Back-pressure: at most `max_undelivered_lines` lines read and not yet
//!   written by the outputs (acknowledged deliveries); at the bound graft
//!   reads no further until the outputs catch up.
//! - Positions (file identity and offset of the last delivered line) are
//!   kept across restarts in [`crate::state`], saved after deliveries are
//!   acknowledged (at most once a second) and at stop. At start a file
//!   whose identity and size allow it resumes there; one rotated while
//!   graft was down is read from its start, after the rest of the old
//!   file (found by its identity beside it).
//! - Limits: `max_line_size` (a longer line is skipped, counted in
//!   `line_size_limit_hits`), `max_files` (`files_limit_hits`); lines the
//!   parser cannot read are `parse_errors`.
//!
//! Layout: [`config`] (the table), [`follow`] (one file), [`multiline`]
//! (joining lines into events), [`run`] (the loop over every file).

mod config;
mod follow;
mod multiline;
mod run;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::builtin::{self, Builtin, Deprecated};
use crate::state::Store;
pub use config::{Config, Options, Settings};

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Tail>(table)
}

impl Builtin for Tail {
    const NAME: &'static str = "tail";
    type Config = Config;
    type Plugin = dyn Input;

    const DEPRECATED: &'static [Deprecated] = &[Deprecated {
        key: "from_beginning",
        instead: Some("initial_read_offset"),
        ignored: false,
        note: "deprecated in 1.34.0: use initial_read_offset = \"beginning\"",
    }];

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Tail::new(&config)?))
    }
}

/// The input.
pub struct Tail {
    settings: Arc<Settings>,
    store: Option<Store>,
    task: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Tail {
    /// Resolve the config; files are opened when the input starts.
    pub fn new(config: &Config) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        let store = if settings.pipe {
            None
        } else {
            let store = Store::new("tail", &settings.state_key);
            if store.is_none() {
                tracing::warn!(
                    "no place for state (no [agent] statefile, $STATE_DIRECTORY, $XDG_STATE_HOME \
                     or $HOME): positions are not kept across restarts"
                );
            }
            store
        };
        Ok(Self {
            settings: Arc::new(settings),
            store,
            task: None,
        })
    }

    /// Keep positions in `store` instead (tests).
    pub fn with_store(mut self, store: Option<Store>) -> Self {
        self.store = store;
        self
    }
}

#[async_trait]
impl Input for Tail {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Ok(Batch::default())
    }

    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let (tx, rx) = watch::channel(false);
        let tailer = run::Tailer::new(self.settings.clone(), self.store.clone(), sink);
        self.task = Some((tx, tokio::spawn(tailer.run(rx))));
        Ok(())
    }

    /// Stop reading; hand on what is held (a last line, an event being
    /// joined), wait a bounded time for the deliveries in flight and save
    /// the positions.
    async fn stop(&mut self) {
        if let Some((tx, task)) = self.task.take() {
            let _ = tx.send(true);
            let _ = task.await;
        }
    }
}
