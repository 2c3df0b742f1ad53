//! The plugin under test, alone: one instance of any kind and the kind's
//! main path run on a batch, plus the batches the generated checks feed it.

use graft_api::{Aggregator, CallError, Processor};
use graft_core::{Batch, BatchBuilder};

use crate::kind::Kind;
use crate::wasm::adapters::{WasmAggregator, WasmProcessor, gather_now, write_now};
use crate::wasm::instance::StartError;
use crate::wasm::{LoadedPlugin, PluginSpec, WasmInstance};

/// A plugin instance and the kind's calls.
pub(super) enum Subject {
    Input(WasmInstance),
    Processor(WasmProcessor),
    Aggregator(WasmAggregator),
    Output(WasmInstance),
}

/// What one exercise of the kind's main path gave.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, one at a time
pub(super) enum Ran {
    /// Metrics out (inputs, processors, aggregators).
    Batch(Batch),
    /// An output took the batch.
    Written,
    /// The plugin returned an error on purpose.
    Error(String),
    /// The plugin faulted (trap, deadline, memory, contract).
    Fault(String),
}

impl Subject {
    pub(super) fn start(plugin: &LoadedPlugin, config: &str) -> Result<Self, StartError> {
        Self::start_capped(plugin, config, None, None)
    }

    /// Start with linear memory capped at `memory` bytes (default limits
    /// otherwise).
    pub(super) fn start_capped(
        plugin: &LoadedPlugin,
        config: &str,
        memory: Option<usize>,
        recycle: Option<usize>,
    ) -> Result<Self, StartError> {
        let mut spec = PluginSpec::new("plugin-test", config);
        if let Some(m) = memory {
            spec.limits.memory_bytes = m;
        }
        spec.limits.recycle_memory = recycle;
        let inst = WasmInstance::start(plugin.clone(), spec)?;
        Ok(match plugin.contract.kind {
            Kind::Input => Subject::Input(inst),
            Kind::Processor => Subject::Processor(WasmProcessor::new(inst)),
            Kind::Aggregator => Subject::Aggregator(WasmAggregator::new(inst)),
            Kind::Output => Subject::Output(inst),
        })
    }

    pub(super) fn instance(&self) -> &WasmInstance {
        match self {
            Subject::Input(i) | Subject::Output(i) => i,
            Subject::Processor(p) => p.instance(),
            Subject::Aggregator(a) => a.instance(),
        }
    }

    /// Run the kind's main path on `input`: process it, gather (input
    /// ignored), add then push and reset, or write it.
    pub(super) fn exercise(&mut self, input: &Batch) -> Ran {
        fn from<E: std::fmt::Display>(e: CallError<E>) -> Ran {
            match e {
                CallError::Returned(e) => Ran::Error(e.to_string()),
                CallError::Fault(f) => Ran::Fault(f.to_string()),
            }
        }
        match self {
            Subject::Input(i) => match gather_now(i) {
                Ok(b) => Ran::Batch(b),
                Err(e) => from(e),
            },
            Subject::Processor(p) => {
                let mut b = input.clone();
                match p.process(&mut b) {
                    Ok(()) => Ran::Batch(b),
                    Err(e) => from(e),
                }
            }
            Subject::Aggregator(a) => {
                if let Err(e) = a.add(input) {
                    return from(e);
                }
                let out = match a.push() {
                    Ok(b) => b,
                    Err(e) => return from(e),
                };
                match a.reset() {
                    Ok(()) => Ran::Batch(out),
                    Err(e) => from(e),
                }
            }
            Subject::Output(i) => match write_now(i, input.clone()) {
                Ok(()) => Ran::Written,
                Err(e) => from(e),
            },
        }
    }
}

/// `n` metrics like a system input's.
pub(super) fn generated(n: usize) -> Batch {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let host = format!("host-{:02}", i % 20);
        b.metric("cpu", 1_700_000_000_000_000_000 + i as i64)
            .tag("cpu", "cpu-total")
            .tag("host", &host)
            .field("usage_idle", 90.5 - (i % 10) as f64)
            .field("usage_user", 5.25)
            .field("count", i as i64);
    }
    b.finish()
}

/// Names, tags and strings well past ASCII.
pub(super) fn unicode() -> Batch {
    let mut b = BatchBuilder::new();
    b.metric("温度 sensor ü", 1_700_000_000_000_000_000)
        .tag("lieu", "Zürich, Gare")
        .tag("部屋", "会議室 🌡")
        .field("值", 21.5)
        .field("note", "naïve \"quoted\" 🙂\nline two");
    b.metric("ascii", 1_700_000_000_000_000_001)
        .tag("k", "v")
        .field("f", 1i64);
    b.finish()
}
