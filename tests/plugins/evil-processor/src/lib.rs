//! Test guest: a hostile processor plugin. The behaviour lives in
//! `evil-common`; this crate only exports it as `graft:plugin/processor`.

// The generated export glue is unsafe code.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "graft:plugin/processor-plugin",
        with: {
            "graft:plugin/types@0.1.0": evil_common::types,
            "graft:plugin/host@0.1.0": evil_common::host,
        },
    });

    use super::Evil;
    export!(Evil);
}

use evil_common::types::{Batch, PluginError};

struct Evil;

impl bindings::exports::graft::plugin::processor::Guest for Evil {
    fn init(config: String) -> Result<(), PluginError> {
        evil_common::init(evil_common::Kind::Processor, config)
    }

    fn process(batch: Batch) -> Result<Batch, PluginError> {
        evil_common::process(batch)
    }
}
