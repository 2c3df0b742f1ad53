//! Running WebAssembly plugins.
//!
//! One [`WasmRuntime`] per agent holds the wasmtime `Engine`, the linker,
//! compiled components (one compile per distinct `.wasm`, cached on disk by
//! wasmtime across runs) and the epoch ticker that enforces call deadlines.
//! [`WasmRuntime::load`] compiles a file and checks which contract it targets;
//! [`instance::WasmInstance`] is one sandboxed, limited instance of it, with
//! its own `Store`, that poisons itself on a fault and is re-created from its
//! `InstancePre`; [`adapters`] make instances look like any other plugin.
//!
//! Layout:
//! - [`bindings`]: the one `bindgen!` of the WIT contract
//! - [`contract`]: which world and version a component targets
//! - [`instance`]: one instance: store, limits, calls, faults, restarts
//! - [`state`]: what a store holds: WASI context, limits, the host API
//! - [`console`]: guest stdout/stderr into graft's log
//! - [`permissions`]: what a plugin may touch, from its config
//! - [`convert`]: batches to and from the WIT types
//! - [`adapters`]: WASM instances behind the plugin traits

pub mod adapters;
pub mod bindings;
mod console;
pub mod contract;
mod convert;
pub mod instance;
pub mod permissions;
mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

pub use contract::{ACCEPTED_VERSIONS, Contract, PluginKind};
pub use instance::{Limits, PluginSpec, WasmInstance};
pub use permissions::Permissions;
use state::HostState;

/// How often the epoch advances; deadlines are counted in these ticks.
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
    pre: InstancePre<HostState>,
    /// Keeps deadlines enforced for as long as the plugin can be called.
    _ticker: Arc<EpochTicker>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("contract", &self.contract)
            .finish()
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own,
/// which is what makes call deadlines fire. It runs until the runtime and
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

/// The wasmtime engine, linker and compiled components of one agent.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<HostState>,
    compiled: Mutex<HashMap<[u8; 32], Component>>,
    ticker: Arc<EpochTicker>,
}

impl WasmRuntime {
    /// Build the engine and start the epoch ticker.
    pub fn new(options: &RuntimeOptions) -> Result<Arc<Self>> {
        let mut config = Config::new();
        config.epoch_interruption(true);
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
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from)?;
        bindings::HostBindings::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(anyhow::Error::from)?;

        let ticker = Arc::new(EpochTicker::start(&engine)?);
        Ok(Arc::new(Self {
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
            ticker,
        }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compile (or reuse) the component at `path`, check its contract and
    /// prepare it for instantiation.
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let component = {
            let cached = self
                .compiled
                .lock()
                .expect("compile cache lock")
                .get(&digest)
                .cloned();
            match cached {
                Some(c) => c,
                None => {
                    let c = Component::new(&self.engine, &bytes)
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!("{} is not a valid WebAssembly component", path.display())
                        })?;
                    self.compiled
                        .lock()
                        .expect("compile cache lock")
                        .insert(digest, c.clone());
                    c
                }
            }
        };
        let contract = contract::inspect(&self.engine, &component)
            .with_context(|| format!("{}", path.display()))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
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
            pre,
            _ticker: self.ticker.clone(),
        })
    }
}

fn cache(dir: &Path) -> Result<Cache> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut config = CacheConfig::new();
    config.with_directory(dir.join("wasmtime"));
    Cache::new(config).map_err(anyhow::Error::from)
}
