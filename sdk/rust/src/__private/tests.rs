//! The glue run natively: config parsing before the first call, both ways of
//! building a plugin, and calls through the generated `Guest` traits.

use serde::Deserialize;

use super::*;
use crate::bindings::processor::Guest as _;
use crate::convert::{batch_from_wit, batch_to_wit};
use crate::{Batch, BatchBuilder, FieldRef};

/// A plugin that is its own config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    from: String,
    to: String,
}

impl Processor for Rename {
    fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
        batch.rename_field(&self.from, &self.to);
        Ok(batch)
    }
}

/// A plugin built from a config type, keeping state besides it.
struct Counting {
    tag: String,
    calls: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountingConfig {
    tag: String,
}

impl FromConfig for Counting {
    type Config = CountingConfig;
    fn from_config(config: CountingConfig) -> Result<Self, PluginError> {
        if config.tag.is_empty() {
            return Err(PluginError::config("tag", "must not be empty"));
        }
        Ok(Counting {
            tag: config.tag,
            calls: 0,
        })
    }
}

impl Processor for Counting {
    fn process(&mut self, mut batch: Batch) -> Result<Batch, PluginError> {
        self.calls += 1;
        batch.set_tag(&self.tag, &self.calls.to_string());
        Ok(batch)
    }
}

fn one_metric() -> WitBatch {
    let mut b = BatchBuilder::new();
    b.metric("cpu", 1).field("used_percent", 41.5);
    batch_to_wit(b.finish())
}

fn config_error(json: &str) -> PluginError {
    match parse_config::<Rename>(json) {
        Err(e) => e,
        Ok(_) => panic!("{json} was accepted"),
    }
}

#[test]
fn a_self_config_plugin_refuses_unknown_missing_and_mistyped_keys_by_name() {
    let unknown = config_error(r#"{"from": "a", "to": "b", "form": "c"}"#);
    assert_eq!(unknown.field.as_deref(), Some("form"));
    assert!(
        unknown.message.starts_with("unknown field `form`"),
        "{unknown}"
    );

    let missing = config_error(r#"{"from": "a"}"#);
    assert_eq!(missing.field.as_deref(), Some("to"));
    assert_eq!(missing.message, "missing field `to`");

    let mistyped = config_error(r#"{"from": "a", "to": 42}"#);
    assert_eq!(mistyped.field.as_deref(), Some("to"));
    assert!(
        mistyped.message.starts_with("invalid type: integer `42`"),
        "{mistyped}"
    );
}

#[test]
fn a_self_config_plugin_is_its_config_and_runs_after_init() {
    let refused = Exported::<Rename>::init(r#"{"from": "used_percent"}"#.into()).unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("to"));
    let early = Exported::<Rename>::process(one_metric()).unwrap_err();
    assert_eq!(early.message, "plugin called before a successful init");

    Exported::<Rename>::init(r#"{"from": "used_percent", "to": "used_pct"}"#.into()).unwrap();
    let out = batch_from_wit(Exported::<Rename>::process(one_metric()).unwrap());
    assert_eq!(out.get(0).field("used_pct"), Some(FieldRef::Float(41.5)));
    assert_eq!(out.get(0).field("used_percent"), None);
}

#[test]
fn a_plugin_with_state_is_built_by_from_config_which_may_refuse() {
    let refused = Exported::<Counting>::init(r#"{"tag": ""}"#.into()).unwrap_err();
    assert_eq!(refused.field.as_deref(), Some("tag"));
    assert_eq!(refused.message, "must not be empty");
    let unknown = Exported::<Counting>::init(r#"{"tag": "n", "tags": 1}"#.into()).unwrap_err();
    assert_eq!(unknown.field.as_deref(), Some("tags"));

    Exported::<Counting>::init(r#"{"tag": "calls"}"#.into()).unwrap();
    Exported::<Counting>::process(one_metric()).unwrap();
    let out = batch_from_wit(Exported::<Counting>::process(one_metric()).unwrap());
    assert_eq!(out.get(0).tag("calls"), Some("2"));
}
