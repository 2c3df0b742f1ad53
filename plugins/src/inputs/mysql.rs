//! `inputs.mysql`: MySQL and MariaDB statistics as Telegraf reports them,
//! with its `metric_version` 1 or 2 names and types (see [`convert`]).
//!
//! - Always `SHOW GLOBAL STATUS` (`mysql`); `SHOW GLOBAL VARIABLES`
//!   (`mysql_variables`) every `interval_slow`; then each `gather_*` the
//!   table switches on: the process list, user statistics, slave/replica
//!   status, auto-increment columns, InnoDB metrics, binary logs, table
//!   schema and the performance schema queries ([`perf`]).
//! - Servers are asked concurrently, each over one kept connection (TCP,
//!   TLS as the DSN's `tls` says, or a Unix socket; one the server closed
//!   is replaced within the same gather). A server that fails
//!   (refused, wrong password, a query error, `timeout`) stops there, as in
//!   Telegraf: what its earlier queries gave is kept, the rest of its
//!   metrics are lost this time, the other servers are not touched. Logged
//!   when it starts failing and when it recovers, counted every time. A
//!   query's rows past `max_rows` (or 16 MiB of text) are dropped and
//!   counted (`rows_limit_hits`), and so are a server's metrics past 50000
//!   in one gather (`metrics_limit_hits`).
//!
//! Its own counters, which `inputs.internal` shows beside the standard ones:
//! `server_gathers`, `server_errors`,
//! `timeouts`, `rows_limit_hits`, `metrics_limit_hits`, `conversion_errors`.

mod config;
pub mod convert;
mod dsn;
mod gather;
mod perf;
mod query;
mod threads;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;
use async_trait::async_trait;
use graft_api::counters::Counters;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, FieldRef};
use mysql_async::{Conn, OptsBuilder, SslOpts};

use crate::builtin::{self, Builtin};
use config::Server;
pub use config::{Config, Settings};
use convert::Val;
use dsn::Tls;
use query::Pending;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Mysql>(table)
}

impl Builtin for Mysql {
    const NAME: &'static str = "mysql";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Mysql::new(&config)?))
    }
}

/// The input.
pub struct Mysql {
    settings: Settings,
    /// Per server: its connection options, kept connection, whether its
    /// last gather failed, and whether it has no user statistics table.
    state: Vec<(OptsBuilder, Option<Conn>, bool, bool)>,
    /// When `SHOW GLOBAL VARIABLES` last ran.
    variables_at: Option<Instant>,
    /// Keys whose value could not be converted, each logged once.
    logged_keys: HashSet<String>,
    stats: Stats,
}

/// The input's own counters (`docs/instrumentation.md`).
struct Stats {
    server_gathers: Arc<AtomicU64>,
    server_errors: Arc<AtomicU64>,
    timeouts: Arc<AtomicU64>,
    rows_limit_hits: Arc<AtomicU64>,
    metrics_limit_hits: Arc<AtomicU64>,
    conversion_errors: Arc<AtomicU64>,
}

impl Stats {
    fn new(counter: impl Fn(&'static str) -> Arc<AtomicU64>) -> Self {
        Self {
            server_gathers: counter("server_gathers"),
            server_errors: counter("server_errors"),
            timeouts: counter("timeouts"),
            rows_limit_hits: counter("rows_limit_hits"),
            metrics_limit_hits: counter("metrics_limit_hits"),
            conversion_errors: counter("conversion_errors"),
        }
    }
}

/// At most this many metrics from one server's gather (graft's bound:
/// `max_rows` bounds each query, not their product, as table schema's
/// databases times tables).
const MAX_METRICS: usize = 50_000;

/// What one server's gather collected.
pub struct ServerRun {
    tag: String,
    metrics: Vec<Pending>,
    rows_dropped: usize,
    /// Metrics past [`MAX_METRICS`], not kept.
    metrics_dropped: usize,
    /// `(what, key, error)` of values that could not be converted.
    conversion_errors: Vec<(&'static str, String, String)>,
}

impl ServerRun {
    fn new(tag: &str) -> Self {
        Self {
            tag: tag.to_owned(),
            metrics: Vec::new(),
            rows_dropped: 0,
            metrics_dropped: 0,
            conversion_errors: Vec::new(),
        }
    }

    fn push(&mut self, m: Pending) {
        if m.fields.is_empty() {
            return;
        }
        if self.metrics.len() >= MAX_METRICS {
            self.metrics_dropped += 1;
            return;
        }
        self.metrics.push(m);
    }

    fn conversion_error(&mut self, what: &'static str, key: &str, error: String) {
        self.conversion_errors.push((what, key.to_owned(), error));
    }
}

/// Why a server gave nothing this time.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Mysql(#[from] mysql_async::Error),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// Connection options for a server, TLS included.
fn options(server: &Server, tls: &crate::tls::TlsConfig) -> OptsBuilder {
    let d = &server.dsn;
    let mut o = OptsBuilder::default()
        .user((!d.user.is_empty()).then(|| d.user.clone()))
        .pass((!d.password.is_empty()).then(|| d.password.clone()))
        .db_name((!d.dbname.is_empty()).then(|| d.dbname.clone()))
        .prefer_socket(false)
        .stmt_cache_size(0);
    if d.net == "unix" {
        o = o.socket(Some(d.addr.clone()));
    } else if let Some((host, port)) = d.host_port() {
        o = o.ip_or_hostname(host).tcp_port(port);
    }
    let ssl = match d.tls {
        Tls::Off => None,
        Tls::Verified => Some(SslOpts::default()),
        Tls::SkipVerify => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        Tls::Custom => {
            let mut s = SslOpts::default()
                .with_danger_accept_invalid_certs(tls.insecure_skip_verify)
                .with_danger_skip_domain_validation(tls.insecure_skip_verify);
            if let Some(ca) = &tls.tls_ca {
                s = s.with_root_certs(vec![ca.clone().into()]);
            }
            if let (Some(cert), Some(key)) = (&tls.tls_cert, &tls.tls_key) {
                s = s.with_client_identity(Some(mysql_async::ClientIdentity::new(
                    cert.clone().into(),
                    key.clone().into(),
                )));
            }
            if let Some(name) = &tls.tls_server_name {
                s = s.with_danger_tls_hostname_override(Some(name.clone()));
            }
            Some(s)
        }
    };
    o.ssl_opts(ssl)
}

impl Mysql {
    /// Resolve the config; nothing is connected until the first gather.
    pub fn new(config: &Config) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        let local = Arc::new(Counters::default());
        Ok(Self {
            state: settings
                .servers
                .iter()
                .map(|s| (options(s, &config.shared), None, false, false))
                .collect(),
            settings,
            variables_at: None,
            logged_keys: HashSet::new(),
            stats: Stats::new(|name| local.counter(name)),
        })
    }

    /// Count and log (on a change of state) the outcome of server `i`.
    fn outcome(&mut self, i: usize, result: &Result<usize, Failure>) {
        let server = &self.settings.servers[i].tag;
        let failing = &mut self.state[i].2;
        self.stats.server_gathers.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(metrics) => {
                if *failing {
                    tracing::info!(server = %server, metrics, "server answers again");
                }
                *failing = false;
            }
            Err(error) => {
                self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                if matches!(error, Failure::Timeout(_)) {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                if *failing {
                    tracing::debug!(server = %server, %error, "server failed again");
                } else {
                    *failing = true;
                    tracing::warn!(
                        server = %server,
                        %error,
                        "gathering the server failed; what it gave before the failure is kept, the other \
                         servers go on (further failures are quiet until it recovers)"
                    );
                }
            }
        }
    }
}

/// Whether `e` says the connection is gone (not that a query failed):
/// I/O and driver errors, and the server's "connection was killed"
/// (1927) and "shutdown in progress" (1053).
fn closed(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        mysql_async::Error::Server(s) => matches!(s.code, 1053 | 1927),
        _ => false,
    }
}

/// Whether `e` is MySQL's answer when `information_schema.user_statistics`
/// does not exist (Telegraf matches the same text).
fn no_such_table(e: &mysql_async::Error) -> bool {
    e.to_string().contains("nknown table 'user_statistics'")
}

/// One server's whole gather into `run`. As Telegraf's `gatherServer`, the
/// first failing query ends it; what the queries before it gave stays in
/// `run`.
async fn collect(
    conn: &mut Option<Conn>,
    opts: &OptsBuilder,
    server: &Server,
    s: &Settings,
    variables: bool,
    run: &mut ServerRun,
    no_user_statistics: &mut bool,
) -> Result<(), Failure> {
    if conn.is_none() {
        let connect = Conn::new(opts.clone());
        let c = tokio::time::timeout(server.dsn.timeout, connect)
            .await
            .map_err(|_| Failure::Timeout(server.dsn.timeout))??;
        *conn = Some(c);
    }
    let c = conn.as_mut().expect("connected above");
    let o = &s.own;
    gather::global_status(c, s, run).await?;
    if o.gather_global_variables && variables {
        gather::global_variables(c, s, run).await?;
    }
    if o.gather_binary_logs {
        gather::binary_logs(c, run).await?;
    }
    if o.gather_process_list {
        gather::process_list(c, s, run).await?;
    }
    if o.gather_user_statistics
        && !*no_user_statistics
        && let Err(e) = gather::user_statistics(c, s, run).await
    {
        // As Telegraf: a server without the table is not asked again.
        *no_user_statistics = no_such_table(&e);
        return Err(e.into());
    }
    if o.gather_slave_status || o.gather_replica_status {
        gather::slave_status(c, s, run).await?;
    }
    if o.gather_info_schema_auto_inc {
        gather::auto_increment(c, s, run).await?;
    }
    if o.gather_innodb_metrics {
        gather::innodb_metrics(c, s, run).await?;
    }
    if o.gather_perf_sum_per_acc_per_event {
        perf::sum_per_account_per_event(c, s, run).await?;
    }
    if o.gather_table_io_waits {
        perf::table_io_waits(c, s, run).await?;
    }
    if o.gather_index_io_waits {
        perf::index_io_waits(c, s, run).await?;
    }
    if o.gather_table_lock_waits {
        perf::table_lock_waits(c, s, run).await?;
    }
    if o.gather_event_waits {
        perf::event_waits(c, s, run).await?;
    }
    if o.gather_file_events_stats {
        perf::file_events(c, s, run).await?;
    }
    if o.gather_perf_events_statements {
        perf::events_statements(c, s, run).await?;
    }
    if o.gather_table_schema {
        gather::table_schema(c, s, run).await?;
    }
    Ok(())
}

#[async_trait]
impl Input for Mysql {
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        self.stats = Stats::new(|name| counters.counter(name));
    }

    async fn gather(&mut self) -> Result<Batch, CallError> {
        let now_ns = crate::inputs::now_ns();
        let slow = self.settings.own.interval_slow;
        let variables = slow >= std::time::Duration::from_secs(1)
            && self.variables_at.is_none_or(|at| at.elapsed() >= slow);
        if variables {
            self.variables_at = Some(Instant::now());
        }
        let settings = &self.settings;
        let runs = self.state.iter_mut().zip(&settings.servers).map(
            |((opts, conn, _, no_user_statistics), server)| async move {
                let mut run = ServerRun::new(&server.tag);
                let attempt = async {
                    let kept = conn.is_some();
                    match collect(
                        conn,
                        opts,
                        server,
                        settings,
                        variables,
                        &mut run,
                        no_user_statistics,
                    )
                    .await
                    {
                        // A kept connection the server closed (a restart,
                        // wait_timeout, KILL): one more try on a new one.
                        Err(Failure::Mysql(e)) if kept && closed(&e) => {
                            *conn = None;
                            run = ServerRun::new(&server.tag);
                            collect(
                                conn,
                                opts,
                                server,
                                settings,
                                variables,
                                &mut run,
                                no_user_statistics,
                            )
                            .await
                        }
                        other => other,
                    }
                };
                let result = tokio::time::timeout(settings.timeout, attempt)
                    .await
                    .unwrap_or(Err(Failure::Timeout(settings.timeout)));
                if result.is_err() {
                    // Possibly mid-result: start afresh next time.
                    *conn = None;
                }
                (run, result)
            },
        );
        let runs = futures_util::future::join_all(runs).await;
        let mut out = BatchBuilder::new();
        for (i, (run, result)) in runs.into_iter().enumerate() {
            // What the queries before a failure gave is kept, as Telegraf
            // keeps what it added to the accumulator.
            let metrics = self.add(run, now_ns, &mut out);
            self.outcome(i, &result.map(|()| metrics));
        }
        Ok(out.finish())
    }
}

impl Mysql {
    /// Put one server's metrics into the batch; count what was dropped.
    fn add(&mut self, run: ServerRun, now_ns: i64, out: &mut BatchBuilder) -> usize {
        if run.rows_dropped > 0 {
            self.stats
                .rows_limit_hits
                .fetch_add(run.rows_dropped as u64, Ordering::Relaxed);
            tracing::warn!(
                server = %run.tag,
                dropped = run.rows_dropped,
                max_rows = self.settings.max_rows,
                "query results longer than max_rows (or 16 MiB of text); the rows past it were dropped"
            );
        }
        if run.metrics_dropped > 0 {
            self.stats
                .metrics_limit_hits
                .fetch_add(run.metrics_dropped as u64, Ordering::Relaxed);
            tracing::warn!(
                server = %run.tag,
                dropped = run.metrics_dropped,
                max_metrics = MAX_METRICS,
                "the server's gather made more metrics than graft keeps of one server; the rest were dropped"
            );
        }
        for (what, key, error) in &run.conversion_errors {
            self.stats.conversion_errors.fetch_add(1, Ordering::Relaxed);
            if self.logged_keys.insert(key.clone()) {
                tracing::warn!(
                    server = %run.tag,
                    what,
                    key = %key,
                    %error,
                    "value not converted; the field is left out (logged once per key)"
                );
            }
        }
        for m in &run.metrics {
            let mut b = out.metric(&m.name, now_ns);
            for (k, v) in &m.tags {
                if !v.is_empty() {
                    b.tag(k, v);
                }
            }
            for (k, v) in &m.fields {
                match v {
                    Val::Int(i) => b.field(k, *i),
                    Val::Uint(u) => b.field(k, FieldRef::Uint(*u)),
                    Val::Float(f) => b.field(k, *f),
                    Val::Str(s) => b.field(k, FieldRef::Str(s)),
                };
            }
        }
        run.metrics.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_servers_metrics_stop_at_max_metrics() {
        let mut run = super::ServerRun::new("s");
        for _ in 0..super::MAX_METRICS + 5 {
            run.push(super::Pending::new("m", "s").field("f", super::Val::Int(1)));
        }
        assert_eq!(run.metrics.len(), super::MAX_METRICS);
        assert_eq!(run.metrics_dropped, 5);
    }

    #[test]
    fn a_missing_user_statistics_table_is_recognised() {
        let error = |message: &str| {
            mysql_async::Error::Server(mysql_async::ServerError {
                code: 1109,
                message: message.to_owned(),
                state: "42S02".to_owned(),
            })
        };
        assert!(super::no_such_table(&error(
            "Unknown table 'user_statistics' in information_schema"
        )));
        assert!(!super::no_such_table(&error("Access denied")));
    }
}
