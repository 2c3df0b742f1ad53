//! Generated bindings, one module per world. Plugin authors never use these
//! directly: the export macros do. The shared `types` and `host` interfaces
//! are generated once (with the input world) and reused by the others, so
//! every world speaks the same Rust types.

#![allow(missing_docs)]

pub mod input {
    wit_bindgen::generate!({
        world: "input-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_input_raw",
        default_bindings_module: "graft_sdk::bindings::input",
    });
    pub use export_input_raw as export;
}

pub mod processor {
    wit_bindgen::generate!({
        world: "processor-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_processor_raw",
        default_bindings_module: "graft_sdk::bindings::processor",
        with: {
            "graft:plugin/types@0.1.0": crate::bindings::input::graft::plugin::types,
            "graft:plugin/host@0.1.0": crate::bindings::input::graft::plugin::host,
        },
    });
    pub use export_processor_raw as export;
}

pub mod aggregator {
    wit_bindgen::generate!({
        world: "aggregator-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_aggregator_raw",
        default_bindings_module: "graft_sdk::bindings::aggregator",
        with: {
            "graft:plugin/types@0.1.0": crate::bindings::input::graft::plugin::types,
            "graft:plugin/host@0.1.0": crate::bindings::input::graft::plugin::host,
        },
    });
    pub use export_aggregator_raw as export;
}

pub mod output {
    wit_bindgen::generate!({
        world: "output-plugin",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_output_raw",
        default_bindings_module: "graft_sdk::bindings::output",
        with: {
            "graft:plugin/types@0.1.0": crate::bindings::input::graft::plugin::types,
            "graft:plugin/host@0.1.0": crate::bindings::input::graft::plugin::host,
        },
    });
    pub use export_output_raw as export;
}

pub use input::graft::plugin::host as wit_host;
pub use input::graft::plugin::types::{
    Batch as WitBatch, FieldValue as WitFieldValue, PartialWrite as WitPartialWrite,
    PluginError as WitError, WriteError as WitWriteError,
};
