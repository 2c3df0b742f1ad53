//! Glue the export macros expand to: keeps the one plugin instance of this
//! component, implements each kind's generated `Guest` trait for any plugin
//! of that kind ([`Exported`]), and holds each kind's encoded world.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use graft_core::{PluginError, WriteError};
use serde::de::DeserializeOwned;

use crate::bindings::{WitBatch, WitError, WitWriteError, aggregator, input, output, processor};
use crate::convert::{batch_from_wit, batch_to_wit, error_to_wit, write_error_to_wit};
use crate::{Aggregator, FromConfig, Input, Output, Processor};

thread_local! {
    static PLUGIN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn with_plugin<P: 'static, R>(f: impl FnOnce(&mut P) -> R) -> Result<R, PluginError> {
    PLUGIN.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut().and_then(|p| p.downcast_mut::<P>()) {
            Some(p) => Ok(f(p)),
            None => Err(PluginError::new("plugin called before a successful init")),
        }
    })
}

/// Parse the JSON config and build the plugin, before any other call.
fn init<P: FromConfig>(config: &str) -> Result<(), WitError> {
    let config = parse_config::<P::Config>(config).map_err(error_to_wit)?;
    let plugin = P::from_config(config).map_err(error_to_wit)?;
    PLUGIN.with(|cell| *cell.borrow_mut() = Some(Box::new(plugin)));
    Ok(())
}

/// Deserialize a config, naming the key at fault on error.
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C, PluginError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        let field = if path != "." {
            Some(path)
        } else {
            // serde names a missing or unknown key only in the message.
            message
                .split('`')
                .nth(1)
                .filter(|_| {
                    message.starts_with("missing field") || message.starts_with("unknown field")
                })
                .map(str::to_owned)
        };
        PluginError { message, field }
    })
}

/// The type an export macro hands to the generated glue: implements the
/// `Guest` trait of `P`'s kind by calling `P`.
pub struct Exported<P>(PhantomData<P>);

impl<P: Input> input::Guest for Exported<P> {
    fn init(config: String) -> Result<(), WitError> {
        init::<P>(&config)
    }

    fn gather() -> Result<WitBatch, WitError> {
        with_plugin::<P, _>(|p| p.gather())
            .and_then(|r| r)
            .map(batch_to_wit)
            .map_err(error_to_wit)
    }
}

impl<P: Processor> processor::Guest for Exported<P> {
    fn init(config: String) -> Result<(), WitError> {
        init::<P>(&config)
    }

    fn process(batch: WitBatch) -> Result<WitBatch, WitError> {
        let batch = batch_from_wit(batch);
        with_plugin::<P, _>(|p| p.process(batch))
            .and_then(|r| r)
            .map(batch_to_wit)
            .map_err(error_to_wit)
    }
}

impl<P: Aggregator> aggregator::Guest for Exported<P> {
    fn init(config: String) -> Result<(), WitError> {
        init::<P>(&config)
    }

    fn add(batch: WitBatch) -> Result<(), WitError> {
        let batch = batch_from_wit(batch);
        with_plugin::<P, _>(|p| p.add(batch))
            .and_then(|r| r)
            .map_err(error_to_wit)
    }

    fn push() -> WitBatch {
        batch_to_wit(with_plugin::<P, _>(|p| p.push()).unwrap_or_default())
    }

    fn reset() {
        // Before init there is nothing to forget.
        let _ = with_plugin::<P, _>(|p| p.reset());
    }
}

impl<P: Output> output::Guest for Exported<P> {
    fn init(config: String) -> Result<(), WitError> {
        init::<P>(&config)
    }

    fn write(batch: WitBatch) -> Result<(), WitWriteError> {
        let batch = batch_from_wit(batch);
        with_plugin::<P, _>(|p| p.write(batch))
            .map_err(|e| WriteError::Retry(e.message))
            .and_then(|r| r)
            .map_err(write_error_to_wit)
    }
}

/// Per kind: its world as `build.rs` encoded it, and a check that a type is
/// a plugin of that kind (the export macro calls it with the author's type,
/// so that misuse is reported at the macro call).
macro_rules! kind {
    ($kind:ident, $trait:ident, $world:literal) => {
        pub mod $kind {
            /// Length of [`WORLD`].
            pub const WORLD_LEN: usize =
                include_bytes!(concat!(env!("OUT_DIR"), "/", $world, ".bin")).len();
            /// The kind's world, encoded as `wasm-component-ld` reads it.
            pub const WORLD: [u8; WORLD_LEN] =
                *include_bytes!(concat!(env!("OUT_DIR"), "/", $world, ".bin"));
            /// Compiles only for a plugin of this kind.
            pub fn check<P: crate::$trait>() {}
        }
    };
}

kind!(input_kind, Input, "input-plugin");
kind!(processor_kind, Processor, "processor-plugin");
kind!(aggregator_kind, Aggregator, "aggregator-plugin");
kind!(output_kind, Output, "output-plugin");

#[cfg(test)]
mod tests;
