//! The running stages of the pipeline, each plugin with what graft does
//! around it: inputs on their schedules → the processor chain →
//! aggregators and outputs, each output with its own buffer.
//!
//! ```text
//! inputs (tokio tasks) ─► channel ─► processor chain (thread) ─┬─► aggregators (threads) ─┐
//!                                                               └─────────────────────────┴─► fan-out ─► output buffers ─► outputs (tokio tasks)
//! ```
//!
//! These modules know nothing of configuration files or reloads: the
//! [`crate::topology`] builds the stages from a configuration, starts,
//! swaps and stops them.
//!
//! Layout:
//! - [`input`]: a running input and its schedule
//! - [`chain`]: the processor chain on its thread
//! - [`aggregate`]: a running aggregator on its thread, and its queue
//! - [`fanout`]: every batch to every output's buffer
//! - [`output`]: a running output writing its buffer
//! - [`buffer`]: an output's buffer
//! - [`modify`]: renames and tags applied to a plugin's metrics
//! - [`wasm_section`]: the keys of a `[[kind.wasm]]` section

pub mod aggregate;
pub mod buffer;
pub mod chain;
pub mod fanout;
pub mod input;
pub mod modify;
pub mod output;
pub mod wasm_section;

use anyhow::{Result, anyhow};
use tokio::sync::watch;

/// Batches that may wait between the inputs and the processor chain, and
/// in each aggregator's queue.
pub const CHAIN_QUEUE: usize = 64;

/// Resolves once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Run blocking work (WASM calls, thread joins) off the reactor.
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("worker failed: {e}"))
}
