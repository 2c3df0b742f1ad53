//! Field values: [`Value`] as stored in a batch (strings are symbols) and
//! [`FieldRef`] as read or written by plugin code (strings are `&str`).

use crate::strings::Sym;

/// A field value inside a [`crate::Batch`]; strings live in the string table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(Sym),
}

/// A field value with its string resolved, for reading and building.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldRef<'a> {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(&'a str),
}

impl FieldRef<'_> {
    /// The value as a float, when it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            FieldRef::Float(v) => Some(v),
            FieldRef::Int(v) => Some(v as f64),
            FieldRef::Uint(v) => Some(v as f64),
            FieldRef::Bool(_) | FieldRef::Str(_) => None,
        }
    }

    /// Telegraf's name for the type: `float`, `int`, `uint`, `bool`, `string`.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldRef::Float(_) => "float",
            FieldRef::Int(_) => "int",
            FieldRef::Uint(_) => "uint",
            FieldRef::Bool(_) => "bool",
            FieldRef::Str(_) => "string",
        }
    }
}

impl From<f64> for FieldRef<'_> {
    fn from(v: f64) -> Self {
        FieldRef::Float(v)
    }
}
impl From<i64> for FieldRef<'_> {
    fn from(v: i64) -> Self {
        FieldRef::Int(v)
    }
}
impl From<u64> for FieldRef<'_> {
    fn from(v: u64) -> Self {
        FieldRef::Uint(v)
    }
}
impl From<bool> for FieldRef<'_> {
    fn from(v: bool) -> Self {
        FieldRef::Bool(v)
    }
}
impl<'a> From<&'a str> for FieldRef<'a> {
    fn from(v: &'a str) -> Self {
        FieldRef::Str(v)
    }
}
impl<'a> From<&'a String> for FieldRef<'a> {
    fn from(v: &'a String) -> Self {
        FieldRef::Str(v)
    }
}
