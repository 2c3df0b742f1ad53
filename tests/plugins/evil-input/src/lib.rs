//! Test guest: a hostile input plugin. The behaviour lives in `evil-common`;
//! this crate only exports it as `graft:plugin/input`.

// The generated export glue is unsafe code.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "graft:plugin/input-plugin",
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

impl bindings::exports::graft::plugin::input::Guest for Evil {
    fn init(config: String) -> Result<(), PluginError> {
        evil_common::init(evil_common::Kind::Input, config)
    }

    fn gather() -> Result<Batch, PluginError> {
        evil_common::gather()
    }
}
