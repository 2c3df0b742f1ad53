//! `[[inputs.mysql]]`'s table with Telegraf's keys (plus graft's limits),
//! and its resolved form: each server's DSN parsed, the queries chosen.
//! Resolving reads no file and opens nothing.

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::dsn::Dsn;
use crate::config::With;
use crate::duration::de_duration;
use crate::tls::TlsConfig;

/// The whole table: the plugin's own keys and the TLS keys (used for
/// servers whose DSN says `tls=custom`).
pub type Config = With<Own, TlsConfig>;

fn yes() -> bool {
    true
}
fn digest_text_limit() -> i64 {
    120
}
fn statements_limit() -> i64 {
    250
}
fn statements_time_limit() -> i64 {
    86400
}
fn timeout() -> Duration {
    Duration::from_secs(10)
}
fn max_rows() -> usize {
    10_000
}

/// The plugin's own keys (Telegraf's, with its defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Own {
    /// `servers` (default `[""]`: `127.0.0.1:3306` without a user): Go
    /// driver DSNs, `user:pass@tcp(host:port)/?tls=false`,
    /// `user@unix(/path/mysql.sock)/`.
    #[serde(default)]
    pub servers: Vec<String>,
    /// `metric_version` (default 1; 2 is what current dashboards read).
    #[serde(default)]
    pub metric_version: i64,
    /// `perf_events_statements_digest_text_limit` (default 120).
    #[serde(default = "digest_text_limit")]
    pub perf_events_statements_digest_text_limit: i64,
    /// `perf_events_statements_limit` (default 250).
    #[serde(default = "statements_limit")]
    pub perf_events_statements_limit: i64,
    /// `perf_events_statements_time_limit` (default 86400 seconds).
    #[serde(default = "statements_time_limit")]
    pub perf_events_statements_time_limit: i64,
    /// `table_schema_databases` (default: all but the system databases).
    #[serde(default)]
    pub table_schema_databases: Vec<String>,
    #[serde(default)]
    pub gather_table_schema: bool,
    #[serde(default)]
    pub gather_process_list: bool,
    #[serde(default)]
    pub gather_user_statistics: bool,
    #[serde(default)]
    pub gather_info_schema_auto_inc: bool,
    #[serde(default)]
    pub gather_innodb_metrics: bool,
    #[serde(default)]
    pub gather_all_slave_channels: bool,
    #[serde(default)]
    pub gather_slave_status: bool,
    #[serde(default)]
    pub gather_replica_status: bool,
    #[serde(default)]
    pub mariadb_dialect: bool,
    #[serde(default)]
    pub gather_binary_logs: bool,
    /// `gather_global_variables` (default true): read only every
    /// `interval_slow`, as Telegraf does (never while it is unset).
    #[serde(default = "yes")]
    pub gather_global_variables: bool,
    #[serde(default)]
    pub gather_table_io_waits: bool,
    #[serde(default)]
    pub gather_table_lock_waits: bool,
    #[serde(default)]
    pub gather_index_io_waits: bool,
    #[serde(default)]
    pub gather_event_waits: bool,
    #[serde(default)]
    pub gather_file_events_stats: bool,
    #[serde(default)]
    pub gather_perf_events_statements: bool,
    #[serde(default)]
    pub gather_perf_sum_per_acc_per_event: bool,
    /// `perf_summary_events` (default: all events).
    #[serde(default)]
    pub perf_summary_events: Vec<String>,
    /// `interval_slow` (default unset): how often `SHOW GLOBAL VARIABLES`
    /// runs; at least 1s, else never.
    #[serde(default, deserialize_with = "de_duration")]
    pub interval_slow: Duration,
    /// `timeout` (graft's, default `"10s"`): one server's whole gather.
    #[serde(default = "timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `max_rows` (graft's, default 10000): rows kept of one query's
    /// result; the rest are read and dropped, and counted.
    #[serde(default = "max_rows")]
    pub max_rows: usize,
}

/// One server to ask.
#[derive(Debug, Clone)]
pub struct Server {
    pub dsn: Dsn,
    /// The `server` tag (and how logs name it).
    pub tag: String,
}

/// Everything a gather needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub servers: Vec<Server>,
    pub v2: bool,
    pub slave_status_query: &'static str,
    pub own: Own,
    pub timeout: Duration,
    pub max_rows: usize,
    pub perf_digest_text_limit: i64,
    pub perf_limit: i64,
    pub perf_time_limit: i64,
    pub perf_summary_events: Vec<String>,
    pub table_schema_databases: Vec<String>,
    pub gather_all_slave_channels: bool,
    pub mariadb_dialect: bool,
}

impl Settings {
    /// Check and resolve the table. Pure.
    pub fn resolve(config: &Config) -> Result<Self> {
        let own = &config.own;
        config.shared.validate()?;
        let dsns = if own.servers.is_empty() {
            vec![String::new()]
        } else {
            own.servers.clone()
        };
        let servers = dsns
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let dsn = Dsn::parse(s).map_err(|e| anyhow::anyhow!("servers[{i}]: {e}"))?;
                Ok(Server {
                    tag: dsn.server_tag().to_owned(),
                    dsn,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !matches!(own.metric_version, 0..=2) {
            bail!("metric_version: {} (1 or 2)", own.metric_version);
        }
        if own.timeout.is_zero() {
            bail!("timeout: must be more than 0");
        }
        if own.max_rows == 0 {
            bail!("max_rows: must be at least 1");
        }
        for (key, v) in [
            (
                "perf_events_statements_digest_text_limit",
                own.perf_events_statements_digest_text_limit,
            ),
            (
                "perf_events_statements_limit",
                own.perf_events_statements_limit,
            ),
            (
                "perf_events_statements_time_limit",
                own.perf_events_statements_time_limit,
            ),
        ] {
            if v < 0 {
                bail!("{key}: must not be negative");
            }
        }
        let slave_status_query = match (own.mariadb_dialect, own.gather_replica_status) {
            (true, true) => "SHOW ALL REPLICAS STATUS",
            (true, false) => "SHOW ALL SLAVES STATUS",
            (false, true) => "SHOW REPLICA STATUS",
            (false, false) => "SHOW SLAVE STATUS",
        };
        Ok(Self {
            servers,
            v2: own.metric_version >= 2,
            slave_status_query,
            timeout: own.timeout,
            max_rows: own.max_rows,
            perf_digest_text_limit: own.perf_events_statements_digest_text_limit,
            perf_limit: own.perf_events_statements_limit,
            perf_time_limit: own.perf_events_statements_time_limit,
            perf_summary_events: own.perf_summary_events.clone(),
            table_schema_databases: own.table_schema_databases.clone(),
            gather_all_slave_channels: own.gather_all_slave_channels,
            mariadb_dialect: own.mariadb_dialect,
            own: own.clone(),
        })
    }
}
