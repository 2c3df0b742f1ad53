//! Moving batches between the generated WIT types and graft's [`Batch`]:
//! whole columns are moved, only the field values are mapped.

use graft_core::batch::BatchParts;
use graft_core::{Batch, PluginError, Value, WriteError};

use crate::bindings::{WitBatch, WitError, WitFieldValue, WitPartialWrite, WitWriteError};

/// A batch from the host, which checked it before sending it.
pub(crate) fn batch_from_wit(b: WitBatch) -> Batch {
    let parts = BatchParts {
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
    };
    Batch::from_trusted_parts(parts)
}

pub(crate) fn batch_to_wit(b: Batch) -> WitBatch {
    let p = b.into_parts();
    WitBatch {
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

fn value_from_wit(v: WitFieldValue) -> Value {
    match v {
        WitFieldValue::Float(x) => Value::Float(x),
        WitFieldValue::Int(x) => Value::Int(x),
        WitFieldValue::Uint(x) => Value::Uint(x),
        WitFieldValue::Boolean(x) => Value::Bool(x),
        WitFieldValue::Text(s) => Value::Str(s),
    }
}

fn value_to_wit(v: Value) -> WitFieldValue {
    match v {
        Value::Float(x) => WitFieldValue::Float(x),
        Value::Int(x) => WitFieldValue::Int(x),
        Value::Uint(x) => WitFieldValue::Uint(x),
        Value::Bool(x) => WitFieldValue::Boolean(x),
        Value::Str(s) => WitFieldValue::Text(s),
    }
}

pub(crate) fn error_to_wit(e: PluginError) -> WitError {
    WitError {
        message: e.message,
        field: e.field,
    }
}

pub(crate) fn write_error_to_wit(e: WriteError) -> WitWriteError {
    match e {
        WriteError::Retry(m) => WitWriteError::Retry(m),
        WriteError::Reject(m) => WitWriteError::Reject(m),
        WriteError::Partial {
            accepted,
            rejected,
            message,
        } => WitWriteError::Partial(WitPartialWrite {
            accepted,
            rejected,
            message,
        }),
    }
}
