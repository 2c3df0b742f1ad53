//! Test guest: a hostile output plugin. The behaviour lives in
//! `evil-common`; this crate only exports it as `graft:plugin/output`.

// The generated export glue is unsafe code.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "graft:plugin/output-plugin",
        with: {
            "graft:plugin/types@0.1.0": evil_common::types,
            "graft:plugin/host@0.1.0": evil_common::host,
        },
    });

    use super::Evil;
    export!(Evil);
}

use evil_common::types::{Batch, PluginError, WriteError};

struct Evil;

impl bindings::exports::graft::plugin::output::Guest for Evil {
    fn init(config: String) -> Result<(), PluginError> {
        evil_common::init(evil_common::Kind::Output, config)
    }

    fn write(batch: Batch) -> Result<(), WriteError> {
        evil_common::write(batch)
    }
}
