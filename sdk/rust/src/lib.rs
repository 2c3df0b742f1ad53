//! Write graft plugins in Rust.
//!
//! A plugin is a type that implements one of [`Input`], [`Processor`],
//! [`Aggregator`] or [`Output`], plus one export macro. The configuration
//! table from graft's TOML arrives as your own serde type; metrics arrive as a
//! columnar [`Batch`] with a row view ([`Batch::iter`]), builders
//! ([`BatchBuilder`]) and cheap symbol-level edits ([`Batch::rename_field`],
//! [`Batch::set_tag`]).
//!
//! ```ignore
//! use graft_sdk::{Batch, PluginError, Processor};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { from: String, to: String }
//!
//! struct Rename(Config);
//!
//! impl Processor for Rename {
//!     type Config = Config;
//!     fn init(config: Config) -> Result<Self, PluginError> { Ok(Rename(config)) }
//!     fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
//!         batch.rename_field(&self.0.from, &self.0.to);
//!         Ok(batch)
//!     }
//! }
//!
//! graft_sdk::export_processor!(Rename);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm`
//! file in `target/wasm32-wasip2/release/` is the plugin.
#![deny(missing_docs)]

mod convert;
mod host;
mod kinds;

#[doc(hidden)]
pub mod __private;
#[doc(hidden)]
pub mod bindings;

pub use graft_core::{
    Batch, BatchBuilder, FieldRef, MetricBuilder, MetricRef, PluginError, WriteError,
};
pub use host::{Level, log, now, plugin_name};
pub use kinds::{Aggregator, Input, Output, Processor};

/// Log at a level, `format!`-style: `graft_sdk::log!(Level::Info, "x = {}", x)`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)*) => { $crate::log($level, &::std::format!($($arg)*)) };
}

/// Log at `info`, `format!`-style.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, &::std::format!($($arg)*)) };
}

/// Log at `warn`, `format!`-style.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)*)) };
}

/// Log at `debug`, `format!`-style.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)*)) };
}

/// Export a type implementing [`Input`] as the plugin's input.
#[macro_export]
macro_rules! export_input {
    ($plugin:ty) => {
        const _: () = {
            struct GraftExport;
            impl $crate::bindings::input::exports::graft::plugin::input::Guest for GraftExport {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::bindings::WitError> {
                    $crate::__private::init::<$plugin, _>(&config, <$plugin as $crate::Input>::init)
                }
                fn gather()
                -> ::std::result::Result<$crate::bindings::WitBatch, $crate::bindings::WitError>
                {
                    $crate::__private::gather::<$plugin>()
                }
            }
    $crate::bindings::input::export!(GraftExport with_types_in $crate::bindings::input);
        };
    };
}

/// Export a type implementing [`Processor`] as the plugin's processor.
#[macro_export]
macro_rules! export_processor {
    ($plugin:ty) => {
        const _: () = {
            struct GraftExport;
            impl $crate::bindings::processor::exports::graft::plugin::processor::Guest for GraftExport {
                fn init(config: ::std::string::String) -> ::std::result::Result<(), $crate::bindings::WitError> {
                    $crate::__private::init::<$plugin, _>(&config, <$plugin as $crate::Processor>::init)
                }
                fn process(
                    batch: $crate::bindings::WitBatch,
                ) -> ::std::result::Result<$crate::bindings::WitBatch, $crate::bindings::WitError> {
                    $crate::__private::process::<$plugin>(batch)
                }
            }
            $crate::bindings::processor::export!(GraftExport with_types_in $crate::bindings::processor);
        };
    };
}

/// Export a type implementing [`Aggregator`] as the plugin's aggregator.
#[macro_export]
macro_rules! export_aggregator {
    ($plugin:ty) => {
        const _: () = {
            struct GraftExport;
            impl $crate::bindings::aggregator::exports::graft::plugin::aggregator::Guest for GraftExport {
                fn init(config: ::std::string::String) -> ::std::result::Result<(), $crate::bindings::WitError> {
                    $crate::__private::init::<$plugin, _>(&config, <$plugin as $crate::Aggregator>::init)
                }
                fn add(batch: $crate::bindings::WitBatch) -> ::std::result::Result<(), $crate::bindings::WitError> {
                    $crate::__private::add::<$plugin>(batch)
                }
                fn push() -> $crate::bindings::WitBatch {
                    $crate::__private::push::<$plugin>()
                }
                fn reset() {
                    $crate::__private::reset::<$plugin>()
                }
            }
            $crate::bindings::aggregator::export!(GraftExport with_types_in $crate::bindings::aggregator);
        };
    };
}

/// Export a type implementing [`Output`] as the plugin's output.
#[macro_export]
macro_rules! export_output {
    ($plugin:ty) => {
        const _: () = {
            struct GraftExport;
            impl $crate::bindings::output::exports::graft::plugin::output::Guest for GraftExport {
                fn init(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::bindings::WitError> {
                    $crate::__private::init::<$plugin, _>(
                        &config,
                        <$plugin as $crate::Output>::init,
                    )
                }
                fn write(
                    batch: $crate::bindings::WitBatch,
                ) -> ::std::result::Result<(), $crate::bindings::WitWriteError> {
                    $crate::__private::write::<$plugin>(batch)
                }
            }
    $crate::bindings::output::export!(GraftExport with_types_in $crate::bindings::output);
        };
    };
}
