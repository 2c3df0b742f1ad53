//! How a call into a plugin fails, in two ways the types keep apart: the
//! plugin *returned* an error ([`CallError::Returned`]: counted, the batch is
//! handled per policy) or the plugin *faulted* ([`CallError::Fault`]: a trap,
//! a deadline, a memory cap or a broken contract; the instance is poisoned
//! and replaced).

use graft_core::{PluginError, WriteError};

/// What kind of fault poisoned a plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The plugin trapped (a panic, `unreachable`, a stack overflow...).
    Trap,
    /// The call ran past its deadline.
    Deadline,
    /// The plugin tried to grow its memory past its cap.
    Memory,
    /// The call used up its fuel (`limits.fuel`).
    Fuel,
    /// The plugin returned data that breaks the contract.
    Contract,
    /// The instance could not be created or initialised.
    Start,
    /// No call was made: the instance is waiting out its backoff after a
    /// fault. Not a fault of its own.
    Restarting,
}

impl FaultKind {
    /// Name used in logs and self-metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::Deadline => "deadline",
            FaultKind::Memory => "memory",
            FaultKind::Fuel => "fuel",
            FaultKind::Contract => "contract",
            FaultKind::Start => "start",
            FaultKind::Restarting => "restarting",
        }
    }
}

/// A plugin fault: the instance is no longer trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} fault: {message}", kind.as_str())]
pub struct Fault {
    pub kind: FaultKind,
    pub message: String,
}

/// How a plugin call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E = PluginError> {
    /// The plugin returned an error.
    #[error(transparent)]
    Returned(E),
    /// The plugin faulted.
    #[error(transparent)]
    Fault(Fault),
}

impl<E> From<Fault> for CallError<E> {
    fn from(f: Fault) -> Self {
        CallError::Fault(f)
    }
}

impl From<PluginError> for CallError<PluginError> {
    fn from(e: PluginError) -> Self {
        CallError::Returned(e)
    }
}

impl From<WriteError> for CallError<WriteError> {
    fn from(e: WriteError) -> Self {
        CallError::Returned(e)
    }
}
