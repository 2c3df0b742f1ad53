//! Write graft plugins in Rust.
//!
//! A plugin is a type that implements one of [`Input`], [`Processor`],
//! [`Aggregator`] or [`Output`], plus one export macro. Its `config` table
//! from graft's TOML is parsed with serde before the first call: a plugin
//! that derives `Deserialize` is its own configuration; one that keeps other
//! state implements [`FromConfig`] to be built from a config type. Metrics
//! arrive as a columnar [`Batch`] with a row view ([`Batch::iter`]), builders
//! ([`BatchBuilder`]) and cheap symbol-level edits ([`Batch::rename_field`],
//! [`Batch::set_tag`]).
//!
//! ```
//! use graft_sdk::{Batch, PluginError, Processor};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Rename {
//!     from: String,
//!     to: String,
//! }
//!
//! impl Processor for Rename {
//!     fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
//!         batch.rename_field(&self.from, &self.to);
//!         Ok(batch)
//!     }
//! }
//!
//! graft_sdk::export_processor!(Rename);
//! ```
//!
//! A bad config is refused before any call, with the key at fault: an
//! unknown key (``unknown field `form`, expected `from` or `to` ``), a missing
//! one or a value of the wrong type. Exporting a type that is not a plugin
//! of that kind does not compile:
//!
//! ```compile_fail,E0277
//! #[derive(serde::Deserialize)]
//! struct NotAProcessor {}
//!
//! graft_sdk::export_processor!(NotAProcessor);
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
pub use kinds::{Aggregator, FromConfig, Input, Output, Processor};

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
        $crate::__export!(
            $plugin,
            input,
            input_kind,
            __export_graft_plugin_input_0_1_0_cabi,
            "component-type:graft-sdk:input-plugin"
        );
    };
}

/// Export a type implementing [`Processor`] as the plugin's processor.
#[macro_export]
macro_rules! export_processor {
    ($plugin:ty) => {
        $crate::__export!(
            $plugin,
            processor,
            processor_kind,
            __export_graft_plugin_processor_0_1_0_cabi,
            "component-type:graft-sdk:processor-plugin"
        );
    };
}

/// Export a type implementing [`Aggregator`] as the plugin's aggregator.
#[macro_export]
macro_rules! export_aggregator {
    ($plugin:ty) => {
        $crate::__export!(
            $plugin,
            aggregator,
            aggregator_kind,
            __export_graft_plugin_aggregator_0_1_0_cabi,
            "component-type:graft-sdk:aggregator-plugin"
        );
    };
}

/// Export a type implementing [`Output`] as the plugin's output.
#[macro_export]
macro_rules! export_output {
    ($plugin:ty) => {
        $crate::__export!(
            $plugin,
            output,
            output_kind,
            __export_graft_plugin_output_0_1_0_cabi,
            "component-type:graft-sdk:output-plugin"
        );
    };
}

/// What every export macro expands to: a check that the type is a plugin of
/// the kind (reported at the caller), the generated glue of that kind's
/// interface only, and that kind's world as a `component-type` custom
/// section, from which `wasm-component-ld` makes the component's exports.
#[doc(hidden)]
#[macro_export]
macro_rules! __export {
    ($plugin:ty, $interface:ident, $kind:ident, $glue:ident, $section:literal) => {
        const _: () = {
            const _: fn() = $crate::__private::$kind::check::<$plugin>;
            type GraftExport = $crate::__private::Exported<$plugin>;
    $crate::$glue!(GraftExport with_types_in $crate::bindings::$interface);
            #[cfg(target_arch = "wasm32")]
            #[used]
            #[unsafe(link_section = $section)]
            static GRAFT_WORLD: [u8; $crate::__private::$kind::WORLD_LEN] =
                $crate::__private::$kind::WORLD;
        };
    };
}
