//! The generated bindings: the SDK's one `generate!`, of the contract's
//! `host-bindings` world (the `host` import and all four kinds' exports), so
//! that every kind speaks the same Rust types. Plugin authors never use
//! these; the export macros do.
//!
//! A plugin exports exactly one kind, so the world's own `export!` macro
//! (which exports all four) is never called: an export macro invokes the
//! generated glue of its kind's interface only, and embeds that kind's world
//! (encoded by `build.rs`) for `wasm-component-ld`.

#![allow(missing_docs)]

wit_bindgen::generate!({
    world: "host-bindings",
    path: "wit",
    pub_export_macro: true,
});

pub use exports::graft::plugin::{aggregator, input, output, processor};
pub use graft::plugin::host as wit_host;
pub use graft::plugin::types::{
    Batch as WitBatch, FieldValue as WitFieldValue, PartialWrite as WitPartialWrite,
    PluginError as WitError, WriteError as WitWriteError,
};
