//! graft: a metrics agent in the line of Telegraf whose plugins — inputs,
//! processors, aggregators, outputs — can be sandboxed WebAssembly
//! components as well as native Rust.
//!
//! A configuration in Telegraf's TOML shape ([`config`]) is validated and
//! built into an [`pipeline::Agent`] ([`pipeline::build`]): built-in plugins
//! come from the [`registry`], WASM plugins are compiled and instantiated by
//! the [`wasm`] runtime. The agent then runs its [`pipeline`]: inputs on
//! their schedules, the processor chain, aggregators, and one buffered
//! writer per output, counting everything in [`stats`].
//!
//! Layout:
//! - [`cli`]: the `graft` command line
//! - [`config`]: reading and resolving configuration files
//! - [`filter`]: Telegraf's selectors and modifiers (namepass, tagpass, fieldinclude, ...)
//! - [`internal`]: `inputs.internal`, the agent's own metrics
//! - [`registry`]: the list of built-in plugins
//! - [`pipeline`]: building and running the agent; output buffers
//! - [`shutdown`]: stopping in bounded time
//! - [`wasm`]: the wasmtime host: engine, instances, limits, permissions
//! - [`stats`]: self-metrics of every plugin

pub mod cli;
pub mod config;
pub mod conformance;
pub mod filter;
pub mod internal;
pub mod pipeline;
pub mod registry;
pub mod scaffold;
pub mod shutdown;
pub mod stats;
pub mod wasm;
pub mod watch;
