//! A result row's cells with their SQL types: integers as int, floating
//! and numeric as float, text as string, bool; NULLs, timestamps and
//! `stats_reset` skipped.

use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

/// A cell as text, for tags.
pub(super) fn cell_text(row: &Row, i: usize) -> Option<String> {
    match cell(row, i)? {
        Cell::Int(v) => Some(v.to_string()),
        Cell::Float(v) => Some(v.to_string()),
        Cell::Bool(v) => Some(v.to_string()),
        Cell::Text(v) => Some(v),
    }
}

enum Cell {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// PostgreSQL's binary NUMERIC, as a float.
struct Numeric(f64);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if raw.len() < 8 {
            return Err("short numeric".into());
        }
        let word = |i: usize| i16::from_be_bytes([raw[i], raw[i + 1]]);
        let (ndigits, weight, sign) = (
            word(0) as usize,
            word(2),
            u16::from_be_bytes([raw[4], raw[5]]),
        );
        if sign == 0xC000 {
            return Ok(Numeric(f64::NAN));
        }
        let mut v = 0f64;
        for k in 0..ndigits {
            let at = 8 + 2 * k;
            if at + 1 >= raw.len() {
                return Err("short numeric".into());
            }
            v += f64::from(word(at)) * 10000f64.powi(i32::from(weight) - k as i32);
        }
        Ok(Numeric(if sign == 0x4000 { -v } else { v }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

fn cell(row: &Row, i: usize) -> Option<Cell> {
    let ty = row.columns()[i].type_().clone();
    Some(match ty {
        Type::INT2 => Cell::Int(i64::from(row.try_get::<_, Option<i16>>(i).ok()??)),
        Type::INT4 => Cell::Int(i64::from(row.try_get::<_, Option<i32>>(i).ok()??)),
        Type::INT8 => Cell::Int(row.try_get::<_, Option<i64>>(i).ok()??),
        Type::OID => Cell::Int(i64::from(row.try_get::<_, Option<u32>>(i).ok()??)),
        Type::FLOAT4 => Cell::Float(f64::from(row.try_get::<_, Option<f32>>(i).ok()??)),
        Type::FLOAT8 => Cell::Float(row.try_get::<_, Option<f64>>(i).ok()??),
        Type::NUMERIC => Cell::Float(row.try_get::<_, Option<Numeric>>(i).ok()??.0),
        Type::BOOL => Cell::Bool(row.try_get::<_, Option<bool>>(i).ok()??),
        Type::TEXT | Type::NAME | Type::VARCHAR | Type::BPCHAR | Type::CHAR => {
            Cell::Text(row.try_get::<_, Option<String>>(i).ok()??)
        }
        _ => return None, // timestamps, intervals, arrays...: skipped as Telegraf does
    })
}

pub(super) fn add_fields(m: &mut graft_core::MetricBuilder<'_>, row: &Row, skip: &[&str]) {
    for (i, col) in row.columns().iter().enumerate() {
        let name = col.name();
        if name == "stats_reset" || skip.contains(&name) {
            continue;
        }
        match cell(row, i) {
            Some(Cell::Int(v)) => m.field(name, v),
            Some(Cell::Float(v)) => m.field(name, v),
            Some(Cell::Bool(v)) => m.field(name, v),
            Some(Cell::Text(v)) => m.field(name, graft_core::FieldRef::Str(&v)),
            None => m,
        };
    }
}
