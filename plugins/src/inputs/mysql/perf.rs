//! The `performance_schema` queries of Telegraf's MySQL input, each into
//! `mysql_perf_schema` (or `mysql_perf_acc_event`) with its tags; counts
//! and times are floats, times in seconds (picoseconds / 1e12), as
//! Telegraf reports them.

use mysql_async::Conn;

use super::convert::Val;
use super::query::{Pending, Rows, rows};
use super::{ServerRun, Settings};

const PICO: f64 = 1e12;

/// Table I/O waits per table.
pub async fn table_io_waits(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(
        conn,
        "SELECT OBJECT_SCHEMA, OBJECT_NAME, COUNT_FETCH, COUNT_INSERT, COUNT_UPDATE, COUNT_DELETE, \
         SUM_TIMER_FETCH, SUM_TIMER_INSERT, SUM_TIMER_UPDATE, SUM_TIMER_DELETE \
         FROM performance_schema.table_io_waits_summary_by_table \
         WHERE OBJECT_SCHEMA NOT IN ('mysql', 'performance_schema')",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += r.dropped;
    for row in &r.rows {
        let f = |i| Val::Float(Rows::float(row, i));
        let t = |i| Val::Float(Rows::float(row, i) / PICO);
        let mut m = Pending::new("mysql_perf_schema", &run.tag)
            .tag("schema", Rows::text(row, 0))
            .tag("name", Rows::text(row, 1));
        for (k, op) in ["fetch", "insert", "update", "delete"].iter().enumerate() {
            m.set(&format!("table_io_waits_total_{op}"), f(2 + k));
            m.set(&format!("table_io_waits_seconds_total_{op}"), t(6 + k));
        }
        run.push(m);
    }
    Ok(())
}

/// Index I/O waits per index (writes only for `index=NONE`).
pub async fn index_io_waits(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(
        conn,
        "SELECT OBJECT_SCHEMA, OBJECT_NAME, ifnull(INDEX_NAME, 'NONE') as INDEX_NAME, \
         COUNT_FETCH, COUNT_INSERT, COUNT_UPDATE, COUNT_DELETE, \
         SUM_TIMER_FETCH, SUM_TIMER_INSERT, SUM_TIMER_UPDATE, SUM_TIMER_DELETE \
         FROM performance_schema.table_io_waits_summary_by_index_usage \
         WHERE OBJECT_SCHEMA NOT IN ('mysql', 'performance_schema')",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += r.dropped;
    for row in &r.rows {
        let f = |i| Val::Float(Rows::float(row, i));
        let t = |i| Val::Float(Rows::float(row, i) / PICO);
        let index = Rows::text(row, 2);
        let mut m = Pending::new("mysql_perf_schema", &run.tag)
            .tag("schema", Rows::text(row, 0))
            .tag("name", Rows::text(row, 1))
            .tag("index", index)
            .field("index_io_waits_total_fetch", f(3))
            .field("index_io_waits_seconds_total_fetch", t(7));
        if index == "NONE" {
            for (k, op) in ["insert", "update", "delete"].iter().enumerate() {
                m.set(&format!("index_io_waits_total_{op}"), f(4 + k));
                m.set(&format!("index_io_waits_seconds_total_{op}"), t(8 + k));
            }
        }
        run.push(m);
    }
    Ok(())
}

/// Table lock waits: four metrics per table, told apart by `perf_query`.
pub async fn table_lock_waits(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let exists = rows(
        conn,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = 'performance_schema' AND table_name = 'table_lock_waits_summary_by_table'",
        1,
    )
    .await?;
    if exists.rows.is_empty() {
        return Ok(());
    }
    const SQL: [&str; 8] = [
        "read_normal",
        "read_with_shared_locks",
        "read_high_priority",
        "read_no_insert",
        "write_allow_write",
        "write_concurrent_insert",
        "write_low_priority",
        "write_normal",
    ];
    let r = rows(
        conn,
        "SELECT OBJECT_SCHEMA, OBJECT_NAME, \
         COUNT_READ_NORMAL, COUNT_READ_WITH_SHARED_LOCKS, COUNT_READ_HIGH_PRIORITY, COUNT_READ_NO_INSERT, \
         COUNT_WRITE_ALLOW_WRITE, COUNT_WRITE_CONCURRENT_INSERT, COUNT_WRITE_LOW_PRIORITY, COUNT_WRITE_NORMAL, \
         COUNT_READ_EXTERNAL, COUNT_WRITE_EXTERNAL, \
         SUM_TIMER_READ_NORMAL, SUM_TIMER_READ_WITH_SHARED_LOCKS, SUM_TIMER_READ_HIGH_PRIORITY, SUM_TIMER_READ_NO_INSERT, \
         SUM_TIMER_WRITE_ALLOW_WRITE, SUM_TIMER_WRITE_CONCURRENT_INSERT, SUM_TIMER_WRITE_LOW_PRIORITY, SUM_TIMER_WRITE_NORMAL, \
         SUM_TIMER_READ_EXTERNAL, SUM_TIMER_WRITE_EXTERNAL \
         FROM performance_schema.table_lock_waits_summary_by_table \
         WHERE OBJECT_SCHEMA NOT IN ('mysql', 'performance_schema', 'information_schema')",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += r.dropped;
    for row in &r.rows {
        let base = Pending::new("mysql_perf_schema", &run.tag)
            .tag("schema", Rows::text(row, 0))
            .tag("table", Rows::text(row, 1));
        for (query, first, scale) in [
            ("sql_lock_waits_total", 2, 1.0),
            ("sql_lock_waits_seconds_total", 12, PICO),
        ] {
            let mut m = base.clone().tag("perf_query", query);
            for (k, name) in SQL.iter().enumerate() {
                m.set(name, Val::Float(Rows::float(row, first + k) / scale));
            }
            run.push(m);
        }
        for (query, first, scale) in [
            ("external_lock_waits_total", 10, 1.0),
            ("external_lock_waits_seconds_total", 20, PICO),
        ] {
            run.push(
                base.clone()
                    .tag("perf_query", query)
                    .field("read", Val::Float(Rows::float(row, first) / scale))
                    .field("write", Val::Float(Rows::float(row, first + 1) / scale)),
            );
        }
    }
    Ok(())
}

/// Wait events, globally per event name.
pub async fn event_waits(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(
        conn,
        "SELECT EVENT_NAME, COUNT_STAR, SUM_TIMER_WAIT \
         FROM performance_schema.events_waits_summary_global_by_event_name",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += r.dropped;
    for row in &r.rows {
        run.push(
            Pending::new("mysql_perf_schema", &run.tag)
                .tag("event_name", Rows::text(row, 0))
                .field("events_waits_total", Val::Float(Rows::float(row, 1)))
                .field(
                    "events_waits_seconds_total",
                    Val::Float(Rows::float(row, 2) / PICO),
                ),
        );
    }
    Ok(())
}

/// File events per event name, as `mode=misc|read|write`. (Telegraf
/// reports the write count as the `misc` mode's `file_events_total`; so
/// does graft, for dashboards' sake.)
pub async fn file_events(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let r = rows(
        conn,
        "SELECT EVENT_NAME, COUNT_READ, SUM_TIMER_READ, SUM_NUMBER_OF_BYTES_READ, \
         COUNT_WRITE, SUM_TIMER_WRITE, SUM_NUMBER_OF_BYTES_WRITE, COUNT_MISC, SUM_TIMER_MISC \
         FROM performance_schema.file_summary_by_event_name",
        s.max_rows,
    )
    .await?;
    run.rows_dropped += r.dropped;
    for row in &r.rows {
        let f = |i| Val::Float(Rows::float(row, i));
        let t = |i| Val::Float(Rows::float(row, i) / PICO);
        let base =
            Pending::new("mysql_perf_schema", &run.tag).tag("event_name", Rows::text(row, 0));
        run.push(
            base.clone()
                .tag("mode", "misc")
                .field("file_events_total", f(4))
                .field("file_events_seconds_total", t(8)),
        );
        run.push(
            base.clone()
                .tag("mode", "read")
                .field("file_events_total", f(1))
                .field("file_events_seconds_total", t(2))
                .field("file_events_bytes_totals", f(3)),
        );
        run.push(
            base.tag("mode", "write")
                .field("file_events_total", f(4))
                .field("file_events_seconds_total", t(5))
                .field("file_events_bytes_totals", f(6)),
        );
    }
    Ok(())
}

/// Statement digests (the slowest `perf_events_statements_limit` seen
/// within `perf_events_statements_time_limit` seconds).
pub async fn events_statements(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    let sql = format!(
        "SELECT ifnull(SCHEMA_NAME, 'NONE') as SCHEMA_NAME, DIGEST, LEFT(DIGEST_TEXT, {}) as DIGEST_TEXT, \
         COUNT_STAR, SUM_TIMER_WAIT, SUM_ERRORS, SUM_WARNINGS, SUM_ROWS_AFFECTED, SUM_ROWS_SENT, \
         SUM_ROWS_EXAMINED, SUM_CREATED_TMP_DISK_TABLES, SUM_CREATED_TMP_TABLES, \
         SUM_SORT_MERGE_PASSES, SUM_SORT_ROWS, SUM_NO_INDEX_USED \
         FROM performance_schema.events_statements_summary_by_digest \
         WHERE SCHEMA_NAME NOT IN ('mysql', 'performance_schema', 'information_schema') \
         AND last_seen > DATE_SUB(NOW(), INTERVAL {} SECOND) \
         ORDER BY SUM_TIMER_WAIT DESC LIMIT {}",
        s.perf_digest_text_limit, s.perf_time_limit, s.perf_limit
    );
    let r = rows(conn, &sql, s.max_rows).await?;
    run.rows_dropped += r.dropped;
    const FIELDS: [&str; 12] = [
        "events_statements_total",
        "events_statements_seconds_total",
        "events_statements_errors_total",
        "events_statements_warnings_total",
        "events_statements_rows_affected_total",
        "events_statements_rows_sent_total",
        "events_statements_rows_examined_total",
        "events_statements_tmp_tables_total",
        "events_statements_tmp_disk_tables_total",
        "events_statements_sort_merge_passes_total",
        "events_statements_sort_rows_total",
        "events_statements_no_index_used_total",
    ];
    // Columns in the query's order, as Telegraf scans them (its
    // `tmp_tables_total` holds SUM_CREATED_TMP_DISK_TABLES and the other way
    // round; kept so that graft's numbers match Telegraf's).
    for row in &r.rows {
        let mut m = Pending::new("mysql_perf_schema", &run.tag)
            .tag("schema", Rows::text(row, 0))
            .tag("digest", Rows::text(row, 1))
            .tag("digest_text", Rows::text(row, 2));
        for (k, name) in FIELDS.iter().enumerate() {
            let v = Rows::float(row, 3 + k);
            m.set(name, Val::Float(if k == 1 { v / PICO } else { v }));
        }
        run.push(m);
    }
    Ok(())
}

/// Statement summaries per account and event (`mysql_perf_acc_event`),
/// only `perf_summary_events` when set.
pub async fn sum_per_account_per_event(
    conn: &mut Conn,
    s: &Settings,
    run: &mut ServerRun,
) -> mysql_async::Result<()> {
    const FIELDS: [&str; 24] = [
        "count_star",
        "sum_timer_wait",
        "min_timer_wait",
        "avg_timer_wait",
        "max_timer_wait",
        "sum_lock_time",
        "sum_errors",
        "sum_warnings",
        "sum_rows_affected",
        "sum_rows_sent",
        "sum_rows_examined",
        "sum_created_tmp_disk_tables",
        "sum_created_tmp_tables",
        "sum_select_full_join",
        "sum_select_full_range_join",
        "sum_select_range",
        "sum_select_range_check",
        "sum_select_scan",
        "sum_sort_merge_passes",
        "sum_sort_range",
        "sum_sort_rows",
        "sum_sort_scan",
        "sum_no_index_used",
        "sum_no_good_index_used",
    ];
    let mut sql = format!(
        "SELECT coalesce(user, 'unknown'), coalesce(host, 'unknown'), coalesce(event_name, 'unknown'), {} \
         FROM performance_schema.events_statements_summary_by_account_by_event_name",
        FIELDS.join(", ")
    );
    if !s.perf_summary_events.is_empty() {
        let quoted: Vec<String> = s
            .perf_summary_events
            .iter()
            .map(|e| format!("'{}'", e.replace('\\', "\\\\").replace('\'', "''")))
            .collect();
        sql.push_str(&format!(" WHERE EVENT_NAME IN ({})", quoted.join(", ")));
    }
    let r = rows(conn, &sql, s.max_rows).await?;
    run.rows_dropped += r.dropped;
    for row in &r.rows {
        let mut m = Pending::new("mysql_perf_acc_event", &run.tag)
            .tag("src_user", &Rows::text(row, 0).to_lowercase())
            .tag("src_host", &Rows::text(row, 1).to_lowercase())
            .tag("event", Rows::text(row, 2));
        for (k, name) in FIELDS.iter().enumerate() {
            m.set(name, Val::Float(Rows::float(row, 3 + k)));
        }
        run.push(m);
    }
    Ok(())
}
