//! Running one query with a bound on its rows, and the metrics a server's
//! gather builds before they go into the batch.

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

use super::convert::Val;

/// A metric as a server's gather builds it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, Val)>,
}

impl Pending {
    /// A metric tagged `server`.
    pub fn new(name: impl Into<String>, server: &str) -> Self {
        Self {
            name: name.into(),
            tags: vec![("server".to_owned(), server.to_owned())],
            fields: Vec::new(),
        }
    }

    /// Add or replace a tag.
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        match self.tags.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => v.clone_into(&mut slot.1),
            None => self.tags.push((k.to_owned(), v.to_owned())),
        }
        self
    }

    /// Add or replace a field.
    pub fn set(&mut self, k: &str, v: Val) {
        match self.fields.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => self.fields.push((k.to_owned(), v)),
        }
    }

    /// With a field.
    pub fn field(mut self, k: &str, v: Val) -> Self {
        self.set(k, v);
        self
    }
}

/// A result column: its name and type.
#[derive(Debug, Clone)]
pub struct Col {
    pub name: String,
    pub kind: ColumnType,
    pub unsigned: bool,
}

impl Col {
    /// The Go driver's `DatabaseTypeName` of the few types Telegraf looks
    /// at: `INT`, `BIGINT`, `VARCHAR`, else `""` (its `UNSIGNED INT` and
    /// `UNSIGNED BIGINT` included, which Telegraf parses as any value).
    pub fn go_type(&self) -> &'static str {
        match self.kind {
            ColumnType::MYSQL_TYPE_LONG if !self.unsigned => "INT",
            ColumnType::MYSQL_TYPE_LONGLONG if !self.unsigned => "BIGINT",
            ColumnType::MYSQL_TYPE_VAR_STRING | ColumnType::MYSQL_TYPE_VARCHAR => "VARCHAR",
            _ => "",
        }
    }

    /// Whether the column holds floating or decimal numbers.
    pub fn is_float(&self) -> bool {
        matches!(
            self.kind,
            ColumnType::MYSQL_TYPE_FLOAT
                | ColumnType::MYSQL_TYPE_DOUBLE
                | ColumnType::MYSQL_TYPE_DECIMAL
                | ColumnType::MYSQL_TYPE_NEWDECIMAL
        )
    }

    /// Whether the column holds integers.
    pub fn is_int(&self) -> bool {
        matches!(
            self.kind,
            ColumnType::MYSQL_TYPE_TINY
                | ColumnType::MYSQL_TYPE_SHORT
                | ColumnType::MYSQL_TYPE_LONG
                | ColumnType::MYSQL_TYPE_INT24
                | ColumnType::MYSQL_TYPE_LONGLONG
        )
    }
}

/// A query's rows as text (`None`: NULL), at most `max_rows` of them.
#[derive(Debug, Default)]
pub struct Rows {
    pub cols: Vec<Col>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows past `max_rows` or [`MAX_RESULT_BYTES`], read and dropped.
    pub dropped: usize,
    /// The text of the kept rows, in bytes.
    bytes: usize,
}

/// At most this many bytes of text kept of one query's rows (graft's
/// bound beside `max_rows`); the rows after it are dropped and counted.
pub const MAX_RESULT_BYTES: usize = 16 << 20;

impl Rows {
    /// Keep `row` if fewer than `max_rows` rows and `max_bytes` bytes are
    /// kept; otherwise count it dropped.
    fn take(&mut self, row: Vec<Option<String>>, max_rows: usize, max_bytes: usize) {
        if self.rows.len() >= max_rows || self.bytes >= max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += row.iter().flatten().map(String::len).sum::<usize>();
        self.rows.push(row);
    }

    /// Cell `i` of `row` as a float (NULL or text: 0, as Go's scan into a
    /// float of a NULL-free column would have failed; Telegraf's queries
    /// wrap such columns in `ifnull`).
    pub fn float(row: &[Option<String>], i: usize) -> f64 {
        row.get(i)
            .and_then(|c| c.as_deref())
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|f| f.is_finite())
            .unwrap_or(0.0)
    }

    /// Cell `i` as text (NULL: empty).
    pub fn text(row: &[Option<String>], i: usize) -> &str {
        row.get(i).and_then(|c| c.as_deref()).unwrap_or("")
    }
}

/// Run `sql` (text protocol); keep at most `max_rows` rows.
pub async fn rows(conn: &mut Conn, sql: &str, max_rows: usize) -> mysql_async::Result<Rows> {
    let mut result = conn.query_iter(sql).await?;
    let cols = result
        .columns_ref()
        .iter()
        .map(|c| Col {
            name: c.name_str().into_owned(),
            kind: c.column_type(),
            unsigned: c.flags().contains(ColumnFlags::UNSIGNED_FLAG),
        })
        .collect();
    let mut out = Rows {
        cols,
        ..Rows::default()
    };
    result
        .for_each(|row| {
            let row = row.unwrap().into_iter().map(text).collect();
            out.take(row, max_rows, MAX_RESULT_BYTES);
        })
        .await?;
    Ok(out)
}

/// Run `sql` (text protocol) and hand every row to `f`, keeping none.
pub async fn each(
    conn: &mut Conn,
    sql: &str,
    mut f: impl FnMut(Vec<Option<String>>),
) -> mysql_async::Result<()> {
    let mut result = conn.query_iter(sql).await?;
    result
        .for_each(|row| f(row.unwrap().into_iter().map(text).collect()))
        .await
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(f) => Some(f.to_string()),
        Value::Date(..) | Value::Time(..) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_integer_columns_have_no_go_type() {
        let col = |kind, unsigned| Col {
            name: String::new(),
            kind,
            unsigned,
        };
        assert_eq!(col(ColumnType::MYSQL_TYPE_LONG, false).go_type(), "INT");
        assert_eq!(
            col(ColumnType::MYSQL_TYPE_LONGLONG, false).go_type(),
            "BIGINT"
        );
        assert_eq!(col(ColumnType::MYSQL_TYPE_LONG, true).go_type(), "");
        assert_eq!(col(ColumnType::MYSQL_TYPE_LONGLONG, true).go_type(), "");
    }

    #[test]
    fn rows_stop_at_max_rows_or_at_the_byte_budget() {
        let row = |n: usize| vec![Some("x".repeat(n)), None];
        let mut r = Rows::default();
        for _ in 0..5 {
            r.take(row(1), 3, 100);
        }
        assert_eq!((r.rows.len(), r.dropped), (3, 2));
        let mut r = Rows::default();
        for _ in 0..5 {
            r.take(row(40), 100, 100);
        }
        // 40 + 40 + 40: the third passes the budget, the rest are dropped.
        assert_eq!((r.rows.len(), r.dropped), (3, 2));
    }
}
