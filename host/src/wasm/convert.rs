//! Batches to and from the generated WIT types. Columns are moved, not
//! copied; only field values are mapped. Batches coming back from a plugin
//! are checked against the contract before anything else sees them.

use graft_core::batch::BatchParts;
use graft_core::{Batch, BatchError, PluginError, Value, WriteError};

use super::bindings::types;

pub(crate) fn to_wit(batch: Batch) -> types::Batch {
    let p = batch.into_parts();
    types::Batch {
        string_data: p.string_data,
        string_ends: p.string_ends,
        names: p.names,
        timestamps: p.timestamps,
        tag_offsets: p.tag_offsets,
        tag_keys: p.tag_keys,
        tag_values: p.tag_values,
        field_offsets: p.field_offsets,
        field_keys: p.field_keys,
        field_values: p.field_values.into_iter().map(value_to_wit).collect(),
    }
}

/// Bytes a returned batch takes in the host: its string data and columns.
pub(crate) fn wit_size(b: &types::Batch) -> usize {
    b.string_data.len()
        + 4 * (b.string_ends.len()
            + b.names.len()
            + b.tag_offsets.len()
            + b.tag_keys.len()
            + b.tag_values.len()
            + b.field_offsets.len()
            + b.field_keys.len())
        + 8 * b.timestamps.len()
        + std::mem::size_of::<types::FieldValue>() * b.field_values.len()
}

pub(crate) fn from_wit(b: types::Batch) -> Result<Batch, BatchError> {
    Batch::from_parts(BatchParts {
        string_data: b.string_data,
        string_ends: b.string_ends,
        names: b.names,
        timestamps: b.timestamps,
        tag_offsets: b.tag_offsets,
        tag_keys: b.tag_keys,
        tag_values: b.tag_values,
        field_offsets: b.field_offsets,
        field_keys: b.field_keys,
        field_values: b.field_values.into_iter().map(value_from_wit).collect(),
        kinds: Vec::new(),
    })
}

fn value_to_wit(v: Value) -> types::FieldValue {
    match v {
        Value::Float(x) => types::FieldValue::Float(x),
        Value::Int(x) => types::FieldValue::Int(x),
        Value::Uint(x) => types::FieldValue::Uint(x),
        Value::Bool(x) => types::FieldValue::Boolean(x),
        Value::Str(s) => types::FieldValue::Text(s),
    }
}

fn value_from_wit(v: types::FieldValue) -> Value {
    match v {
        types::FieldValue::Float(x) => Value::Float(x),
        types::FieldValue::Int(x) => Value::Int(x),
        types::FieldValue::Uint(x) => Value::Uint(x),
        types::FieldValue::Boolean(x) => Value::Bool(x),
        types::FieldValue::Text(s) => Value::Str(s),
    }
}

pub(crate) fn plugin_error(e: types::PluginError) -> PluginError {
    PluginError {
        message: e.message,
        field: e.field,
    }
}

pub(crate) fn write_error(e: types::WriteError) -> WriteError {
    match e {
        types::WriteError::Retry(m) => WriteError::Retry(m),
        types::WriteError::Reject(m) => WriteError::Reject(m),
        types::WriteError::Partial(p) => WriteError::Partial {
            accepted: p.accepted,
            rejected: p.rejected,
            message: p.message,
        },
    }
}
