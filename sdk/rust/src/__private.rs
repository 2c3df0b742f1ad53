//! Glue called by the export macros: keeps the one plugin instance of this
//! component and turns WIT values into SDK values and back.

use std::any::Any;
use std::cell::RefCell;

use graft_core::{PluginError, WriteError};
use serde::de::DeserializeOwned;

use crate::bindings::{WitBatch, WitError, WitWriteError};
use crate::convert::{batch_from_wit, batch_to_wit, error_to_wit, write_error_to_wit};
use crate::{Aggregator, Input, Output, Processor};

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

/// Parse the JSON config and build the plugin with `build`.
pub fn init<P: 'static, C: DeserializeOwned>(
    config: &str,
    build: fn(C) -> Result<P, PluginError>,
) -> Result<(), WitError> {
    let config = parse_config::<C>(config).map_err(error_to_wit)?;
    let plugin = build(config).map_err(error_to_wit)?;
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

pub fn gather<P: Input>() -> Result<WitBatch, WitError> {
    with_plugin::<P, _>(|p| p.gather())
        .and_then(|r| r)
        .map(batch_to_wit)
        .map_err(error_to_wit)
}

pub fn process<P: Processor>(batch: WitBatch) -> Result<WitBatch, WitError> {
    let batch = batch_from_wit(batch);
    with_plugin::<P, _>(|p| p.process(batch))
        .and_then(|r| r)
        .map(batch_to_wit)
        .map_err(error_to_wit)
}

pub fn add<P: Aggregator>(batch: WitBatch) -> Result<(), WitError> {
    let batch = batch_from_wit(batch);
    with_plugin::<P, _>(|p| p.add(batch))
        .and_then(|r| r)
        .map_err(error_to_wit)
}

pub fn push<P: Aggregator>() -> WitBatch {
    batch_to_wit(with_plugin::<P, _>(|p| p.push()).unwrap_or_default())
}

pub fn reset<P: Aggregator>() {
    // Before init there is nothing to forget.
    let _ = with_plugin::<P, _>(|p| p.reset());
}

pub fn write<P: Output>(batch: WitBatch) -> Result<(), WitWriteError> {
    let batch = batch_from_wit(batch);
    with_plugin::<P, _>(|p| p.write(batch))
        .map_err(|e| WriteError::Retry(e.message))
        .and_then(|r| r)
        .map_err(write_error_to_wit)
}
