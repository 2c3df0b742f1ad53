//! One sandboxed instance of a WASM plugin: its own `Store`, its limits
//! (memory cap, per-call deadline, optional fuel, largest returned batch),
//! its grants. Every call, `init` included, runs under the call's timer
//! (see [`super::call`]), so it ends by `call_timeout` wherever the guest
//! is. A fault (trap, deadline, memory, fuel, a broken batch) poisons the
//! instance; the next call re-creates it from the `InstancePre` and calls
//! `init` again, after a backoff that doubles with every consecutive fault.
//! Every fault and restart is counted in the plugin's [`PluginStats`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::{Fault, FaultKind};
use graft_core::PluginError;
use graft_plugins::backoff::Backoff;
use wasmtime::{Store, UpdateDeadline};

use super::LoadedPlugin;
use super::call::{self, Export, Exports, Init};
use super::console::Console;
use super::permissions::Permissions;
use super::sandbox::{Denials, HttpHooks};
use super::state::{HostState, Limiter};
use crate::stats::PluginStats;

/// Resource limits of one plugin instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Longest a single call may run.
    pub call_timeout: Duration,
    /// Fuel (roughly, WebAssembly instructions) a single call may use; for
    /// deterministic runs. Off by default: metering costs speed.
    pub fuel: Option<u64>,
    /// Largest batch a call may return, in bytes of its columns.
    pub max_return_bytes: usize,
    /// Replace the instance with a fresh one, between two calls, once its
    /// linear memory has grown past this many bytes. For runtimes that never
    /// give memory back (componentize-js does not collect garbage while it
    /// runs); the plugin's state is lost, as after a fault. Off by default.
    pub recycle_memory: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(10),
            fuel: None,
            max_return_bytes: 64 << 20,
            recycle_memory: None,
        }
    }
}

/// Everything needed to (re)create an instance besides the code.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    /// Name for logs and metrics (`processors.wasm[0]` or the alias).
    pub name: Arc<str>,
    /// The plugin's own `config` table as JSON.
    pub config_json: String,
    pub permissions: Permissions,
    pub limits: Limits,
    /// Where faults, restarts, refusals and suppressed log lines are counted.
    pub stats: Arc<PluginStats>,
}

impl PluginSpec {
    /// A spec with default limits, no grants and counters of its own (for
    /// running a plugin alone).
    pub fn new(name: &str, config_json: &str) -> Self {
        Self {
            name: name.into(),
            config_json: config_json.to_owned(),
            permissions: Permissions::default(),
            limits: Limits::default(),
            stats: Arc::default(),
        }
    }
}

/// Why an instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `init` returned an error: the configuration is wrong.
    #[error("init rejected its configuration: {0}")]
    Init(PluginError),
    /// The instance could not be created, or trapped in `init`.
    #[error(transparent)]
    Fault(Fault),
}

struct Live {
    store: Store<HostState>,
    exports: Exports,
}

/// Backoff before re-creating a faulted instance: 100 ms, doubling with
/// each consecutive fault, at most 30 s.
fn restart_backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(100), Duration::from_secs(30))
}

/// One plugin instance that survives its own faults.
pub struct WasmInstance {
    plugin: LoadedPlugin,
    spec: PluginSpec,
    live: Option<Live>,
    /// Consecutive faults, and when the instance may be re-created.
    backoff: Backoff,
    faults: u64,
    memory_peak: usize,
    last_fuel: Option<u64>,
}

impl WasmInstance {
    /// Create the first instance and initialise it with the config.
    pub fn start(plugin: LoadedPlugin, spec: PluginSpec) -> Result<Self, StartError> {
        let mut inst = Self::idle(plugin, spec);
        inst.live = Some(inst.instantiate()?);
        Ok(inst)
    }

    /// No instance yet.
    fn idle(plugin: LoadedPlugin, spec: PluginSpec) -> Self {
        Self {
            plugin,
            spec,
            live: None,
            backoff: restart_backoff(),
            faults: 0,
            memory_peak: 0,
            last_fuel: None,
        }
    }

    /// Like [`Self::start`], but a fault in `init` (a trap, a deadline, a
    /// memory cap) does not stop the start: the instance begins poisoned and
    /// is re-created with backoff on later calls, like after any fault. An
    /// error `init` returns on purpose (a bad config) still fails.
    pub fn start_or_recover(plugin: LoadedPlugin, spec: PluginSpec) -> Result<Self, StartError> {
        let mut inst = Self::idle(plugin, spec);
        match inst.instantiate() {
            Ok(live) => inst.live = Some(live),
            Err(StartError::Fault(f)) => {
                inst.spec.stats.fault(f.kind);
                inst.poison(&f);
            }
            Err(e) => return Err(e),
        }
        Ok(inst)
    }

    /// The plugin's name.
    pub fn name(&self) -> &Arc<str> {
        &self.spec.name
    }

    /// The compiled plugin this instance runs.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// Faults since the start.
    pub fn faults(&self) -> u64 {
        self.faults
    }

    /// The instance's limits.
    pub fn limits(&self) -> &Limits {
        &self.spec.limits
    }

    /// The counters this instance reports to.
    pub fn stats(&self) -> &Arc<PluginStats> {
        &self.spec.stats
    }

    /// Fuel the last call used, when the plugin runs with `limits.fuel`.
    pub fn last_fuel(&self) -> Option<u64> {
        self.last_fuel
    }

    /// Largest linear memory any instance reached, in bytes.
    pub fn memory_peak(&self) -> usize {
        let live = self
            .live
            .as_ref()
            .map_or(0, |l| l.store.data().limiter.memory_peak);
        self.memory_peak.max(live)
    }

    fn instantiate(&self) -> Result<Live, StartError> {
        let start_fault = |what: &str, e: wasmtime::Error| Fault {
            kind: FaultKind::Start,
            message: format!("{what}: {e:#}"),
        };
        let name = &self.spec.name;
        let console = Console::new(name.clone(), self.spec.stats.clone());
        let denials = Arc::new(Denials::new(name.clone(), self.spec.stats.clone()));
        let wasi = self
            .spec
            .permissions
            .wasi_ctx(&console, self.plugin.empty_root.path(), &denials)
            .map_err(|e| {
                StartError::Fault(Fault {
                    kind: FaultKind::Start,
                    message: format!("{e:#}"),
                })
            })?;
        let limiter = Limiter::new(self.spec.limits.memory_bytes);
        let hooks = HttpHooks {
            grants: self.spec.permissions.http.clone(),
            denials,
        };
        let state = HostState::new(
            name.clone(),
            wasi,
            limiter,
            console,
            hooks,
            self.spec.stats.clone(),
        );
        let mut store = Store::new(self.plugin.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // At every epoch tick the guest yields, so that the call's timer can
        // fire; past the deadline it traps, should the timer be late.
        store.epoch_deadline_callback(|ctx| {
            Ok(if Instant::now() >= ctx.data().call_deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let limit = self.arm(&mut store);

        // Instantiating and `init` share one call's time.
        let pre = &self.plugin.pre;
        let kind = self.plugin.contract.kind;
        let config = &self.spec.config_json;
        let started = call::timed(limit, async {
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| Failed::Start(start_fault("instantiating", e)))?;
            let exports = Exports::load(kind, pre, &mut store, &instance)
                .map_err(|e| Failed::Start(start_fault("reading the plugin's exports", e)))?;
            match Init(config).call(&exports, &mut store).await {
                Ok(Ok(())) => Ok(exports),
                Ok(Err(e)) => Err(Failed::Rejected(PluginError {
                    message: e.message,
                    field: e.field,
                })),
                Err(e) => Err(Failed::Trap(e)),
            }
        });
        match started {
            Ok(Ok(exports)) => Ok(Live { store, exports }),
            Ok(Err(Failed::Start(f))) => Err(StartError::Fault(f)),
            Ok(Err(Failed::Rejected(e))) => Err(StartError::Init(e)),
            Ok(Err(Failed::Trap(e))) => Err(StartError::Fault(classify(&mut store, &e))),
            Err(call::Elapsed) => Err(StartError::Fault(past_deadline(&mut store, limit))),
        }
    }

    /// A call's worth of fuel, when the plugin is metered.
    fn fuel_budget(&self) -> Option<u64> {
        self.plugin
            .metered
            .then(|| self.spec.limits.fuel.unwrap_or(u64::MAX))
    }

    /// Prepare `store` for one call: its deadline, its fuel, a clean memory
    /// flag. Returns the call's time limit.
    fn arm(&self, store: &mut Store<HostState>) -> Duration {
        let limit = self.spec.limits.call_timeout;
        let state = store.data_mut();
        let now = Instant::now();
        // A limit too far to count in is as good as none.
        state.call_deadline = now
            .checked_add(limit)
            .unwrap_or_else(|| now + Duration::from_secs(1 << 32));
        state.limiter.memory_denied = false;
        store.set_epoch_deadline(1);
        if let Some(fuel) = self.fuel_budget() {
            // Only fails on an engine that does not meter, which `metered` rules out.
            let _ = store.set_fuel(fuel);
        }
        limit
    }

    /// Call an export. A fault (a trap, the deadline, a limit) poisons the
    /// instance; the next call re-creates it (after the backoff).
    pub(crate) fn call<E: Export>(&mut self, export: E) -> Result<E::Output, Fault> {
        if self.live.is_none() {
            self.restart()?;
        }
        let mut live = self.live.take().expect("instance is live");
        let limit = self.arm(&mut live.store);
        let result = call::timed(limit, export.call(&live.exports, &mut live.store));
        if let Some(fuel) = self.fuel_budget() {
            self.last_fuel = live.store.get_fuel().ok().map(|left| fuel - left);
        }
        let fault = match result {
            Ok(Ok(r)) => {
                self.live = Some(live);
                self.backoff.succeed();
                // An aggregator's period lives in the instance: it is
                // recycled only after `reset` (see the adapter).
                if self.plugin.contract.kind != crate::kind::Kind::Aggregator {
                    self.recycle_if_grown();
                }
                return Ok(r);
            }
            Ok(Err(e)) => classify(&mut live.store, &e),
            Err(call::Elapsed) => past_deadline(&mut live.store, limit),
        };
        self.live = Some(live);
        self.poison(&fault);
        Err(fault)
    }

    fn restart(&mut self) -> Result<(), Fault> {
        // Only a fault sets a retry time; without one, the instance was
        // dropped by `recycle_memory`.
        let after_fault = self.backoff.is_waiting();
        if let Some(left) = self.backoff.remaining() {
            return Err(Fault {
                kind: FaultKind::Restarting,
                message: format!("instance is restarting after a fault; next attempt in {left:?}"),
            });
        }
        match self.instantiate() {
            Ok(live) => {
                if after_fault {
                    PluginStats::add(&self.spec.stats.restarts, 1);
                    tracing::info!(plugin = %self.spec.name, "plugin instance re-created");
                }
                self.live = Some(live);
                self.backoff.release();
                Ok(())
            }
            Err(e) => {
                let fault = match e {
                    StartError::Fault(f) => f,
                    StartError::Init(e) => Fault {
                        kind: FaultKind::Start,
                        message: format!("init failed on restart: {e}"),
                    },
                };
                self.poison(&fault);
                Err(fault)
            }
        }
    }

    /// Past `limits.recycle_memory`, drop the instance (not a fault); the
    /// next call starts a fresh one at once.
    pub fn recycle_if_grown(&mut self) {
        let Some(most) = self.spec.limits.recycle_memory else {
            return;
        };
        let grown = self
            .live
            .as_ref()
            .is_some_and(|l| l.store.data().limiter.memory_peak > most);
        if grown && let Some(live) = self.live.take() {
            self.memory_peak = self.memory_peak.max(live.store.data().limiter.memory_peak);
            PluginStats::add(&self.spec.stats.recycles, 1);
            tracing::debug!(plugin = %self.spec.name, "instance recycled: memory past limits.recycle_memory");
        }
    }

    /// Discard the instance after a fault found outside the call (a broken
    /// batch it returned): the next call starts a fresh one.
    pub fn fault(&mut self, fault: &Fault) {
        self.poison(fault);
    }

    fn poison(&mut self, fault: &Fault) {
        if let Some(live) = self.live.take() {
            self.memory_peak = self.memory_peak.max(live.store.data().limiter.memory_peak);
        }
        self.faults += 1;
        let backoff = self.backoff.fail();
        tracing::warn!(plugin = %self.spec.name, kind = fault.kind.as_str(), retry_in = ?backoff,
            "plugin instance faulted and was discarded: {}", fault.message);
    }
}

/// Name a failed call's fault.
fn classify(store: &mut Store<HostState>, e: &wasmtime::Error) -> Fault {
    let state = store.data_mut();
    let tail = state.console.take_tail();
    let trap = e.downcast_ref::<wasmtime::Trap>();
    let kind = if trap == Some(&wasmtime::Trap::Interrupt) {
        FaultKind::Deadline
    } else if trap == Some(&wasmtime::Trap::OutOfFuel) {
        FaultKind::Fuel
    } else if state.limiter.memory_denied {
        FaultKind::Memory
    } else {
        FaultKind::Trap
    };
    let exit = e.downcast_ref::<wasmtime_wasi::I32Exit>();
    let mut message = match kind {
        FaultKind::Deadline => "call ran past its deadline (limits.call_timeout)".to_owned(),
        FaultKind::Trap if exit.is_some() => {
            format!(
                "plugin called exit({}) inside a call",
                exit.map_or(0, |x| x.0)
            )
        }
        FaultKind::Fuel => "call used up its fuel (limits.fuel)".to_owned(),
        FaultKind::Memory => format!(
            "memory would grow past its cap of {} bytes",
            state.limiter.memory_cap
        ),
        _ => format!("{e:#}"),
    };
    with_tail(&mut message, &tail);
    Fault { kind, message }
}

/// The fault of a call its timer took back.
fn past_deadline(store: &mut Store<HostState>, limit: Duration) -> Fault {
    let mut message =
        format!("call ran past its deadline of {limit:?} (limits.call_timeout) and was abandoned");
    with_tail(&mut message, &store.data_mut().console.take_tail());
    Fault {
        kind: FaultKind::Deadline,
        message,
    }
}

/// Add what the plugin printed last to a fault's message.
fn with_tail(message: &mut String, tail: &str) {
    if !tail.is_empty() {
        message.push_str("; plugin output: ");
        message.push_str(tail);
    }
}

/// How a start failed, before the store is free to be inspected.
enum Failed {
    Start(Fault),
    Rejected(PluginError),
    Trap(wasmtime::Error),
}
