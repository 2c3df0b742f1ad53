//! The host's bindings of the WIT contract: one `bindgen!` over a world that
//! exports every plugin kind; each plugin uses the part for its own kind.
//! Exports are called asynchronously (so that a call can be taken back, see
//! [`super::call`]); the host API the guest imports is plain, quick code.

wasmtime::component::bindgen!({
    world: "host-bindings",
    path: "../wit",
    exports: { default: async },
});

pub use exports::graft::plugin::{aggregator, input, output, processor};
pub use graft::plugin::host as host_api;
pub use graft::plugin::types;
