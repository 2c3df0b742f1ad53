//! Running WebAssembly plugins.
//!
//! One [`WasmRuntime`] per agent holds the wasmtime `Engine` (with async
//! support: every call can be taken back), the linker with the async WASI
//! and wasi:http bindings, compiled components (one compile per distinct
//! `.wasm`, cached on disk by wasmtime across runs) and the epoch ticker
//! that makes a busy guest yield to its call's timer.
//! [`WasmRuntime::load`] compiles a file and checks which contract it targets;
//! [`instance::WasmInstance`] is one sandboxed, limited instance of it, with
//! its own `Store`, that poisons itself on a fault and is re-created from its
//! `InstancePre`; [`adapters`] make instances look like any other plugin.
//!
//! Layout:
//! - [`bindings`]: the one `bindgen!` of the WIT contract
//! - [`call`]: one call under its timer; the exports and their arguments
//! - [`contract`]: which world and version a component targets
//! - [`instance`]: one instance: store, limits, calls, faults, restarts
//! - [`state`]: what a store holds: WASI context, limits, the host API
//! - [`console`]: guest stdout/stderr into graft's log
//! - [`permissions`]: what a plugin may touch, from its config
//! - [`sandbox`]: where attempts past the grants are refused and reported
//! - [`convert`]: batches to and from the WIT types
//! - [`adapters`]: WASM instances behind the plugin traits

pub mod adapters;
pub mod bindings;
mod call;
mod console;
pub mod contract;
mod convert;
mod denials;
mod http_guard;
pub mod instance;
pub mod permissions;
pub mod sandbox;
mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

pub use call::end_calls_by;
pub use contract::{ACCEPTED_VERSIONS, Contract};
pub use instance::{Limits, PluginSpec, WasmInstance};
pub use permissions::Permissions;
use sandbox::EmptyRoot;
use state::HostState;

/// How often the epoch advances: a guest running its own code yields to
/// its call's timer this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Options for the runtime as a whole.
#[derive(Clone, Debug, Default)]
pub struct RuntimeOptions {
    /// Where compiled code is cached across runs; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeOptions {
    /// The default cache: `$GRAFT_CACHE_DIR`, else `$XDG_CACHE_HOME/graft`,
    /// else `~/.cache/graft`.
    pub fn with_default_cache() -> Self {
        let dir = std::env::var_os("GRAFT_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("graft")))
            .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/graft")));
        Self { cache_dir: dir }
    }
}

/// A compiled plugin, ready to be instantiated any number of times.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The file it came from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes.
    pub digest: [u8; 32],
    /// Which world and contract version it targets.
    pub contract: Contract,
    /// Whether it was compiled for fuel metering (`limits.fuel`).
    pub metered: bool,
    pre: InstancePre<HostState>,
    /// Keeps this code in the runtime's compile cache while the plugin lives.
    _code: Arc<Component>,
    pub(crate) empty_root: Arc<EmptyRoot>,
    /// Keeps deadlines enforced for as long as the plugin can be called.
    _ticker: Arc<EpochTicker>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("contract", &self.contract)
            .field("metered", &self.metered)
            .finish()
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own,
/// which is what makes a busy guest yield to its call's timer. It runs until the runtime and
/// every plugin loaded from it are gone.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, engine) = (stop.clone(), engine.clone());
        std::thread::Builder::new()
            .name("graft-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .context("starting the epoch ticker thread")?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An engine with its linker and deadline ticker. Fuel metering is an
/// engine setting that slows every call, so plugins with `limits.fuel` get
/// an engine of their own.
struct EngineSet {
    engine: Engine,
    linker: Linker<HostState>,
    ticker: Arc<EpochTicker>,
}

impl EngineSet {
    fn new(options: &RuntimeOptions, metered: bool) -> Result<Self> {
        let mut config = Config::new();
        // Calls run on a fiber, so that they can wait and be taken back;
        // the component model's own concurrency (WASI 0.3) is not used,
        // and leaving it off keeps a call as cheap as a synchronous one.
        config.concurrency_support(false);
        config.epoch_interruption(true);
        config.consume_fuel(metered);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        if let Some(dir) = &options.cache_dir {
            match cache(dir) {
                Ok(cache) => {
                    config.cache(Some(cache));
                }
                Err(e) => tracing::warn!(dir = %dir.display(), error = %format!("{e:#}"),
                    "compiled-code cache unavailable; plugins are compiled on every start"),
            }
        }
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)?;
        sandbox::guard_filesystem(&mut linker)?;
        bindings::HostBindings::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(anyhow::Error::from)?;
        let ticker = Arc::new(EpochTicker::start(&engine)?);
        Ok(Self {
            engine,
            linker,
            ticker,
        })
    }
}

/// Compiled code by (digest, metered), held weakly: the loaded plugins own it.
type CompileCache = HashMap<([u8; 32], bool), Weak<Component>>;

/// The wasmtime engines, linkers and compiled components of one agent.
pub struct WasmRuntime {
    options: RuntimeOptions,
    plain: EngineSet,
    metered: Mutex<Option<Arc<EngineSet>>>,
    /// Compiled code by (digest, metered), for as long as a loaded plugin
    /// holds it: code no plugin uses any more is forgotten.
    compiled: Mutex<CompileCache>,
    empty_root: Arc<EmptyRoot>,
}

impl WasmRuntime {
    /// Build the engine and start the epoch ticker.
    pub fn new(options: &RuntimeOptions) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            options: options.clone(),
            plain: EngineSet::new(options, false)?,
            metered: Mutex::new(None),
            compiled: Mutex::new(HashMap::new()),
            empty_root: Arc::new(EmptyRoot::new()?),
        }))
    }

    /// How many compiled components the runtime holds (those a loaded
    /// plugin still uses).
    pub fn cached_components(&self) -> usize {
        let mut compiled = self.compiled.lock().expect("compile cache lock");
        compiled.retain(|_, c| c.strong_count() > 0);
        compiled.len()
    }

    /// The engine of unmetered plugins.
    pub fn engine(&self) -> &Engine {
        &self.plain.engine
    }

    /// Compile (or reuse) the component at `path`, check its contract and
    /// prepare it for instantiation.
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin> {
        self.load_with(path, false)
    }

    /// [`Self::load`], compiled for fuel metering when `metered`.
    pub fn load_with(&self, path: &Path, metered: bool) -> Result<LoadedPlugin> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.load_bytes(path, &bytes, metered)
    }

    /// [`Self::load_with`] from bytes already read.
    pub fn load_bytes(&self, path: &Path, bytes: &[u8], metered: bool) -> Result<LoadedPlugin> {
        let set = if metered {
            let mut slot = self.metered.lock().expect("metered engine lock");
            match &*slot {
                Some(set) => set.clone(),
                None => {
                    let set = Arc::new(
                        EngineSet::new(&self.options, true)
                            .context("starting the fuel-metered engine")?,
                    );
                    *slot = Some(set.clone());
                    set
                }
            }
        } else {
            return self.prepare(&self.plain, path, bytes, false);
        };
        self.prepare(&set, path, bytes, true)
    }

    fn prepare(
        &self,
        set: &EngineSet,
        path: &Path,
        bytes: &[u8],
        metered: bool,
    ) -> Result<LoadedPlugin> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let key = (digest, metered);
        let cached = self
            .compiled
            .lock()
            .expect("compile cache lock")
            .get(&key)
            .and_then(Weak::upgrade);
        let code = match cached {
            Some(c) => c,
            None => {
                let c = Arc::new(
                    Component::new(&set.engine, bytes)
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!("{} is not a valid WebAssembly component", path.display())
                        })?,
                );
                let mut compiled = self.compiled.lock().expect("compile cache lock");
                compiled.retain(|_, c| c.strong_count() > 0);
                compiled.insert(key, Arc::downgrade(&c));
                c
            }
        };
        let component: &Component = &code;
        let contract = contract::inspect(&set.engine, component)
            .with_context(|| format!("{}", path.display()))?;
        let pre = set
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} imports something graft does not provide",
                    path.display()
                )
            })?;
        Ok(LoadedPlugin {
            path: path.to_owned(),
            digest,
            contract,
            metered,
            pre,
            _code: code,
            empty_root: self.empty_root.clone(),
            _ticker: set.ticker.clone(),
        })
    }
}

fn cache(dir: &Path) -> Result<Cache> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut config = CacheConfig::new();
    config.with_directory(dir.join("wasmtime"));
    Cache::new(config).map_err(anyhow::Error::from)
}
