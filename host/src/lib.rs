//! graft: a metrics agent in the line of Telegraf whose plugins — inputs,
//! processors, aggregators, outputs — can be sandboxed WebAssembly
//! components as well as native Rust.
//!
//! A configuration in Telegraf's TOML shape ([`config`]) becomes a running
//! [`topology::Topology`]: each section is validated and built, the same
//! way for every [`kind`] — built-in plugins from the [`registry`], WASM
//! plugins compiled and instantiated by the [`wasm`] runtime — and started
//! as a stage of the [`pipeline`]: inputs on their schedules, the processor
//! chain, aggregators, and one buffered writer per output, counting
//! everything in [`stats`]. Start-up and every reload take the same path:
//! the difference between what runs and the configuration.
//!
//! Layout:
//! - [`cli`]: the `graft` command line
//! - [`config`]: reading and resolving configuration files
//! - [`filter`]: Telegraf's selectors and modifiers (namepass, tagpass, fieldinclude, ...)
//! - [`internal`]: `inputs.internal`, the agent's own metrics
//! - [`registry`]: the list of built-in plugins
//! - [`kind`]: the four plugin kinds (a leaf module)
//! - [`topology`]: what runs; start-up, reload and shutdown as one path
//! - [`pipeline`]: the running stages around each plugin; output buffers
//! - [`durable`]: the disk buffer, a write-ahead log per output
//! - [`shutdown`]: stopping in bounded time
//! - [`wasm`]: the wasmtime host: engine, instances, limits, permissions
//! - [`stats`]: self-metrics of every plugin

pub mod cli;
pub mod config;
pub mod conformance;
pub mod durable;
pub mod filter;
pub mod internal;
pub mod kind;
pub mod pipeline;
pub mod registry;
pub mod scaffold;
pub mod shutdown;
pub mod stats;
pub mod topology;
pub mod wasm;
pub mod watch;
