//! What one server's gather reads, query by query, into Telegraf's
//! measurements: `mysql` (global status, slave status, binary logs),
//! `mysql_variables`, `mysql_process_list`/`mysql_info_schema`,
//! `mysql_users`, `mysql_user_stats`, `mysql_innodb`, `mysql_table_schema`
//! (and v1's `info_schema_*`), `mysql_table_schema_version`. The
//! performance schema queries are in [`super::perf`].

use mysql_async::Conn;

use super::convert::{self, Val};
use super::query::{Pending, Rows, each, rows};
use super::threads;
use super::{ServerRun, Settings};

/// `SHOW GLOBAL STATUS` into one `mysql` metric.
pub async fn global_status(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(conn, "SHOW GLOBAL STATUS", s.max_rows).await?;
    run.rows_dropped += r.dropped;
    let mut m = Pending::new("mysql", &run.tag);
    for row in &r.rows {
        let (key, value) = (Rows::text(row, 0), Rows::text(row, 1));
        if s.v2 {
            let key = key.to_lowercase();
            match convert::v2_status(&key, value) {
                Ok(fields) => fields.into_iter().for_each(|(k, v)| m.set(&k, v)),
                Err(e) => run.conversion_error("global status", &key, e),
            }
        } else {
            for (k, v) in convert::v1_status(key, value) {
                m.set(&k, v);
            }
        }
    }
    run.push(m);
    Ok(())
}

/// `SHOW GLOBAL VARIABLES` into one `mysql_variables` metric; every
/// variable whose name holds `version` is also a tag (and a string field).
pub async fn global_variables(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(conn, "SHOW GLOBAL VARIABLES", s.max_rows).await?;
    run.rows_dropped += r.dropped;
    let mut m = Pending::new("mysql_variables", &run.tag);
    for row in &r.rows {
        let key = Rows::text(row, 0).to_lowercase();
        let value = Rows::text(row, 1);
        if key.contains("version") {
            m.set(&key, Val::Str(value.to_owned()));
            m = m.tag(&key, value);
        }
        if s.v2 {
            match convert::v2_variable(&key, value) {
                Ok(fields) => fields.into_iter().for_each(|(k, v)| m.set(&k, v)),
                Err(e) => run.conversion_error("global variable", &key, e),
            }
        } else if let Some(f) = convert::v1(value) {
            m.set(&key, Val::Float(f));
        }
    }
    run.push(m);
    Ok(())
}

/// `SHOW [ALL] SLAVES|REPLICA[S] STATUS`: `slave_<column>` fields of `mysql`
/// (the first channel, or each with a `channel` tag).
pub async fn slave_status(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(conn, s.slave_status_query, s.max_rows).await?;
    run.rows_dropped += r.dropped;
    for row in &r.rows {
        let mut m = Pending::new("mysql", &run.tag);
        for (i, col) in r.cols.iter().enumerate() {
            let name = if s.v2 {
                col.name.to_lowercase()
            } else {
                col.name.clone()
            };
            let value = Rows::text(row, i);
            if s.gather_all_slave_channels
                && (name.eq_ignore_ascii_case("channel_name")
                    || name.eq_ignore_ascii_case("connection_name"))
            {
                m = m.tag("channel", if value.is_empty() { "default" } else { value });
                continue;
            }
            if value.is_empty() {
                continue;
            }
            let parsed = if s.v2 {
                match col.go_type() {
                    "INT" => convert::v2_int(value),
                    "BIGINT" => convert::v2_uint(value),
                    "VARCHAR" => Some(Val::Str(value.to_owned())),
                    _ => convert::v2(value),
                }
            } else {
                convert::v1(value).map(Val::Float)
            };
            match parsed {
                Some(v) => m.set(&format!("slave_{name}"), v),
                None if s.v2 => {
                    run.conversion_error(
                        "slave status",
                        &name,
                        format!("cannot convert {value:?}"),
                    );
                }
                None => {}
            }
        }
        run.push(m);
        if !s.gather_all_slave_channels {
            break;
        }
    }
    Ok(())
}

/// `SHOW BINARY LOGS`: `binary_size_bytes` and `binary_files_count` of
/// `mysql`.
pub async fn binary_logs(conn: &mut Conn, run: &mut ServerRun) -> mysql_async::Result<()> {
    // Summed while streaming, as Telegraf sums every row: nothing is kept,
    // so `max_rows` does not apply.
    let (mut size, mut count) = (0u64, 0u64);
    each(conn, "SHOW BINARY LOGS", |row| {
        size = size.wrapping_add(Rows::text(&row, 1).parse::<u64>().unwrap_or(0));
        count += 1;
    })
    .await?;
    run.push(
        Pending::new("mysql", &run.tag)
            .field("binary_size_bytes", Val::Uint(size))
            .field("binary_files_count", Val::Uint(count)),
    );
    Ok(())
}

/// Thread states from the process list (`threads_<state>`, uint), and
/// connections per user (`mysql_users`).
pub async fn process_list(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(
        conn,
        "SELECT COALESCE(command,''),COALESCE(state,''),count(*) \
         FROM information_schema.processlist WHERE ID != connection_id() \
         GROUP BY command,state ORDER BY null",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += r.dropped;
    let mut counts: Vec<(&str, u64)> = threads::STATES.iter().map(|s| (*s, 0)).collect();
    for row in &r.rows {
        let state = threads::find(Rows::text(row, 0), Rows::text(row, 1));
        let n: u64 = Rows::text(row, 2).parse().unwrap_or(0);
        if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
            slot.1 += n;
        }
    }
    let name = if s.v2 {
        "mysql_process_list"
    } else {
        "mysql_info_schema"
    };
    let mut m = Pending::new(name, &run.tag);
    for (state, n) in counts {
        m.set(
            &format!("threads_{}", state.replace(' ', "_")),
            Val::Uint(n),
        );
    }
    run.push(m);
    let users = rows(
        conn,
        "SELECT user, sum(1) AS connections FROM INFORMATION_SCHEMA.PROCESSLIST GROUP BY user",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += users.dropped;
    for row in &users.rows {
        let n: i64 = Rows::text(row, 1).parse().unwrap_or(0);
        run.push(
            Pending::new("mysql_users", &run.tag)
                .tag("user", Rows::text(row, 0))
                .field("connections", Val::Int(n)),
        );
    }
    Ok(())
}

/// `information_schema.user_statistics` (MariaDB's `userstat`, Percona):
/// `mysql_user_stats` per user, columns as their SQL types.
pub async fn user_statistics(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(
        conn,
        "SELECT * FROM information_schema.user_statistics",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += r.dropped;
    for row in &r.rows {
        let mut m = Pending::new("mysql_user_stats", &run.tag).tag("user", Rows::text(row, 0));
        for (i, col) in r.cols.iter().enumerate().skip(1) {
            let Some(text) = row.get(i).and_then(|c| c.as_deref()) else {
                continue;
            };
            let v = if col.is_float() {
                text.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Val::Float)
            } else if col.is_int() {
                text.parse::<i64>().ok().map(Val::Int)
            } else {
                Some(Val::Str(text.to_owned()))
            };
            if let Some(v) = v {
                m.set(&col.name.to_lowercase(), v);
            }
        }
        run.push(m);
    }
    Ok(())
}

/// Auto-increment columns and their type's maximum.
pub async fn auto_increment(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(
        conn,
        "SELECT table_schema, table_name, column_name, auto_increment, \
           CAST(pow(2, case data_type \
             when 'tinyint'   then 7 \
             when 'smallint'  then 15 \
             when 'mediumint' then 23 \
             when 'int'       then 31 \
             when 'bigint'    then 63 \
             end+(column_type like '% unsigned'))-1 as decimal(19)) as max_int \
         FROM information_schema.tables t \
         JOIN information_schema.columns c USING (table_schema,table_name) \
         WHERE c.extra = 'auto_increment' AND t.auto_increment IS NOT NULL",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += r.dropped;
    let name = if s.v2 {
        "mysql_table_schema"
    } else {
        "mysql_info_schema"
    };
    for row in &r.rows {
        let uint = |i| Val::Uint(Rows::text(row, i).parse().unwrap_or(0));
        run.push(
            Pending::new(name, &run.tag)
                .tag("schema", Rows::text(row, 0))
                .tag("table", Rows::text(row, 1))
                .tag("column", Rows::text(row, 2))
                .field("auto_increment_column", uint(3))
                .field("auto_increment_column_max", uint(4)),
        );
    }
    Ok(())
}

/// Telegraf's `innoDBMetricsQueryMariadb`: MariaDB 10.1 to 10.4 name the
/// column `status`, later ones `ENABLED`; the server picks by its version.
const INNODB_METRICS_MARIADB: &str = r#"EXECUTE IMMEDIATE CONCAT("
    SELECT NAME, COUNT
    FROM information_schema.INNODB_METRICS
    WHERE ", IF(version() REGEXP '10\.[1-4]\\..*',"status='enabled'", "ENABLED=1"), "
")"#;

/// `information_schema.INNODB_METRICS` (enabled counters) into
/// `mysql_innodb`.
pub async fn innodb_metrics(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let sql = if s.mariadb_dialect {
        INNODB_METRICS_MARIADB
    } else {
        "SELECT NAME, COUNT FROM information_schema.INNODB_METRICS WHERE status='enabled'"
    };
    let r = rows(conn, sql, s.max_rows).await?;
    run.rows_dropped += r.dropped;
    let mut m = Pending::new("mysql_innodb", &run.tag);
    for row in &r.rows {
        let key = Rows::text(row, 0).to_lowercase();
        let value = Rows::text(row, 1);
        let v = if s.v2 {
            convert::v2_uint(value)
        } else {
            convert::v1(value).map(Val::Float)
        };
        match v {
            Some(v) => m.set(&key, v),
            None => {
                run.conversion_error("InnoDB metric", &key, format!("cannot convert {value:?}"));
            }
        }
    }
    run.push(m);
    Ok(())
}

/// Table sizes and versions from `information_schema.tables`, for
/// `table_schema_databases` (default: every database but the system ones).
pub async fn table_schema(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let databases = if s.table_schema_databases.is_empty() {
        let r = rows(
            conn,
            "SELECT SCHEMA_NAME FROM information_schema.schemata \
             WHERE SCHEMA_NAME NOT IN ('mysql', 'performance_schema', 'information_schema')",
            s.max_rows,
        )
        .await?;
        run.rows_dropped += r.dropped;
        r.rows
            .iter()
            .map(|row| Rows::text(row, 0).to_owned())
            .collect()
    } else {
        s.table_schema_databases.clone()
    };
    for db in databases {
        let sql = format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ifnull(ENGINE, 'NONE') as ENGINE, \
             ifnull(VERSION, '0') as VERSION, ifnull(ROW_FORMAT, 'NONE') as ROW_FORMAT, \
             ifnull(TABLE_ROWS, '0') as TABLE_ROWS, ifnull(DATA_LENGTH, '0') as DATA_LENGTH, \
             ifnull(INDEX_LENGTH, '0') as INDEX_LENGTH, ifnull(DATA_FREE, '0') as DATA_FREE, \
             ifnull(CREATE_OPTIONS, 'NONE') as CREATE_OPTIONS \
             FROM information_schema.tables WHERE TABLE_SCHEMA = '{}'",
            db.replace('\\', "\\\\").replace('\'', "''")
        );
        let r = rows(conn, &sql, s.max_rows).await?;
        run.rows_dropped += r.dropped;
        for row in &r.rows {
            let base = Pending::new("", &run.tag)
                .tag("schema", Rows::text(row, 0))
                .tag("table", Rows::text(row, 1));
            let f = |i| Val::Float(Rows::float(row, i));
            if s.v2 {
                let mut m = base.clone();
                "mysql_table_schema".clone_into(&mut m.name);
                run.push(
                    m.field("rows", f(6))
                        .field("data_length", f(7))
                        .field("index_length", f(8))
                        .field("data_free", f(9)),
                );
            } else {
                let mut m = base.clone();
                "info_schema_table_rows".clone_into(&mut m.name);
                run.push(m.field("value", f(6)));
                for (component, i) in [("data_length", 7), ("index_length", 8), ("data_free", 9)] {
                    let mut m = base.clone().tag("component", component);
                    m.name = format!("info_schema_table_size_{component}");
                    run.push(m.field("value", f(i)));
                }
            }
            let mut m = base
                .tag("type", Rows::text(row, 2))
                .tag("engine", Rows::text(row, 3))
                .tag("row_format", Rows::text(row, 5))
                .tag("create_options", Rows::text(row, 10));
            if s.v2 {
                "mysql_table_schema_version".clone_into(&mut m.name);
                run.push(m.field("table_version", f(4)));
            } else {
                "info_schema_table_version".clone_into(&mut m.name);
                run.push(m.field("value", f(4)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mariadb_innodb_query_picks_its_column_by_version_as_telegraf() {
        assert!(
            super::INNODB_METRICS_MARIADB.contains(
                r#"IF(version() REGEXP '10\.[1-4]\\..*',"status='enabled'", "ENABLED=1")"#
            )
        );
    }
}
