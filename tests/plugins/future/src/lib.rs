//! Test guest: a processor built against `graft:plugin@0.9.0`, a contract
//! version this graft does not run, so that graft can be shown to refuse it
//! with a clear message. Only what such a plugin needs of the contract is
//! declared here.

// The generated export glue is unsafe code.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        inline: r"
            package graft:plugin@0.9.0;

            interface types {
                type sym = u32;
                variant field-value { float(f64), int(s64), uint(u64), boolean(bool), text(sym) }
                record batch {
                    string-data: string,
                    string-ends: list<u32>,
                    names: list<sym>,
                    timestamps: list<s64>,
                    tag-offsets: list<u32>,
                    tag-keys: list<sym>,
                    tag-values: list<sym>,
                    field-offsets: list<u32>,
                    field-keys: list<sym>,
                    field-values: list<field-value>,
                }
                record plugin-error { message: string, field: option<string> }
            }

            interface processor {
                use types.{batch, plugin-error};
                init: func(config: string) -> result<_, plugin-error>;
                process: func(batch: batch) -> result<batch, plugin-error>;
            }

            world processor-plugin {
                export processor;
            }
        ",
        world: "processor-plugin",
    });

    use super::Future;
    export!(Future);
}

use bindings::exports::graft::plugin::processor::{Batch, Guest, PluginError};

struct Future;

impl Guest for Future {
    fn init(_config: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn process(batch: Batch) -> Result<Batch, PluginError> {
        Ok(batch)
    }
}
