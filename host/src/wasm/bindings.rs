//! The host's bindings of the WIT contract: one `bindgen!` over a world that
//! exports every plugin kind; each plugin uses the part for its own kind.

wasmtime::component::bindgen!({
    world: "host-bindings",
    path: "../wit",
});

pub use exports::graft::plugin::{aggregator, input, output, processor};
pub use graft::plugin::host as host_api;
pub use graft::plugin::types;
