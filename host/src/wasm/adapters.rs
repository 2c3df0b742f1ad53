//! WASM instances behind graft's plugin traits, so that the pipeline treats
//! them like built-ins. Inputs and outputs run their calls on tokio's
//! blocking pool; processors and aggregators are called from the pipeline's
//! own worker threads. Every call ends by the plugin's `call_timeout` (see
//! [`super::call`]). Everything a plugin returns is checked against the
//! contract; a broken batch is that plugin's fault, never a host panic.

use async_trait::async_trait;
use graft_api::{Aggregator, CallError, Fault, FaultKind, Input, Output, Processor};
use graft_core::{Batch, BatchError, WriteError};

use super::bindings::types;
use super::call::{Add, Gather, Process, Push, Reset, Write};
use super::convert::{from_wit, plugin_error, to_wit, wit_size, write_error};
use super::instance::WasmInstance;

fn contract_fault(e: BatchError) -> Fault {
    Fault {
        kind: FaultKind::Contract,
        message: format!("returned a batch that breaks the contract: {e}"),
    }
}

/// A batch a plugin returned, checked against its size limit and the
/// contract.
fn returned(inst: &WasmInstance, b: types::Batch) -> Result<Batch, Fault> {
    let size = wit_size(&b);
    let max = inst.limits().max_return_bytes;
    if size > max {
        return Err(Fault {
            kind: FaultKind::Contract,
            message: format!(
                "returned a batch of {size} bytes, more than limits.max_return ({max} bytes)"
            ),
        });
    }
    from_wit(b).map_err(contract_fault)
}

/// Run a blocking call on an instance kept in `slot`, off the reactor.
async fn off_reactor<R: Send + 'static>(
    slot: &mut Option<WasmInstance>,
    f: impl FnOnce(&mut WasmInstance) -> R + Send + 'static,
) -> Result<R, Fault> {
    let mut inst = slot.take().ok_or_else(|| Fault {
        kind: FaultKind::Start,
        message: "plugin instance was lost by an earlier failure".into(),
    })?;
    let (inst, r) = tokio::task::spawn_blocking(move || {
        let r = f(&mut inst);
        (inst, r)
    })
    .await
    .map_err(|e| Fault {
        kind: FaultKind::Trap,
        message: format!("host thread running the plugin failed: {e}"),
    })?;
    *slot = Some(inst);
    Ok(r)
}

/// A WASM input.
pub struct WasmInput(Option<WasmInstance>);

impl WasmInput {
    pub fn new(inst: WasmInstance) -> Self {
        Self(Some(inst))
    }
}

/// One `gather` call, on this thread.
pub fn gather_now(inst: &mut WasmInstance) -> Result<Batch, CallError> {
    let out = inst.call(Gather)?;
    match out {
        Ok(b) => returned(inst, b).map_err(CallError::Fault),
        Err(e) => Err(CallError::Returned(plugin_error(e))),
    }
}

#[async_trait]
impl Input for WasmInput {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        off_reactor(&mut self.0, gather_now).await?
    }
}

/// A WASM processor.
pub struct WasmProcessor(WasmInstance);

impl WasmProcessor {
    pub fn new(inst: WasmInstance) -> Self {
        Self(inst)
    }

    /// The instance, for its limits and meters.
    pub fn instance(&self) -> &WasmInstance {
        &self.0
    }
}

impl Processor for WasmProcessor {
    fn process(&mut self, batch: &mut Batch) -> Result<(), CallError> {
        let input = to_wit(std::mem::take(batch));
        let out = self.0.call(Process(&input));
        let result = match out {
            Ok(Ok(b)) => match returned(&self.0, b) {
                Ok(b) => {
                    *batch = b;
                    return Ok(());
                }
                Err(f) => Err(CallError::Fault(f)),
            },
            Ok(Err(e)) => Err(CallError::Returned(plugin_error(e))),
            Err(fault) => Err(CallError::Fault(fault)),
        };
        // Give the caller its batch back, untouched, to pass or drop.
        *batch = from_wit(input).expect("the host's own batch is valid");
        result
    }
}

/// A WASM aggregator.
pub struct WasmAggregator(WasmInstance);

impl WasmAggregator {
    pub fn new(inst: WasmInstance) -> Self {
        Self(inst)
    }

    /// The instance, for its limits and meters.
    pub fn instance(&self) -> &WasmInstance {
        &self.0
    }
}

impl Aggregator for WasmAggregator {
    fn add(&mut self, batch: &Batch) -> Result<(), CallError> {
        let batch = to_wit(batch.clone());
        let out = self.0.call(Add(&batch))?;
        out.map_err(|e| CallError::Returned(plugin_error(e)))
    }

    fn push(&mut self) -> Result<Batch, CallError> {
        let out = self.0.call(Push)?;
        returned(&self.0, out).map_err(CallError::Fault)
    }

    fn reset(&mut self) -> Result<(), CallError> {
        self.0.call(Reset)?;
        self.0.recycle_if_grown();
        Ok(())
    }
}

/// A WASM output.
pub struct WasmOutput(Option<WasmInstance>);

impl WasmOutput {
    pub fn new(inst: WasmInstance) -> Self {
        Self(Some(inst))
    }
}

/// One `write` call, on this thread.
pub fn write_now(inst: &mut WasmInstance, batch: Batch) -> Result<(), CallError<WriteError>> {
    let batch = to_wit(batch);
    let out = inst.call(Write(&batch))?;
    out.map_err(|e| CallError::Returned(write_error(e)))
}

#[async_trait]
impl Output for WasmOutput {
    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        let batch = batch.clone();
        off_reactor(&mut self.0, move |inst| write_now(inst, batch)).await?
    }
}
