//! What a plugin reports on purpose: a [`PluginError`] from any call, and a
//! [`WriteError`] from an output saying what the host should do next.
//!
//! These are plain data shared by the host, built-in plugins and WASM guests.
//! The traits the host calls, and faults (a trap is not something a plugin
//! returns), live in the host-side `graft-api` crate.

/// An error a plugin reports on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct PluginError {
    /// What went wrong.
    pub message: String,
    /// The configuration key at fault, when the error is about configuration.
    pub field: Option<String>,
}

impl PluginError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }

    /// An error about configuration key `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

/// Why an output could not write a batch, and what the host does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Transient: keep the whole batch and write it again later.
    #[error("retry later: {0}")]
    Retry(String),
    /// The metrics will never be accepted: count and drop them.
    #[error("rejected: {0}")]
    Reject(String),
    /// Some metrics (indices into the batch) were accepted, some rejected;
    /// the rest are kept and written again.
    #[error("partially written: {message}")]
    Partial {
        accepted: Vec<u32>,
        rejected: Vec<u32>,
        message: String,
    },
}
