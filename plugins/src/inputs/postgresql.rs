//! `inputs.postgresql`: PostgreSQL's statistics views as Telegraf reports
//! them, plus custom queries (what Telegraf's `postgresql_extensible` does).
//!
//! Each gather reads `pg_stat_database` (one metric per database, tag `db`;
//! the shared-objects row of PG 12+ is `db=postgres_global`) and
//! `pg_stat_bgwriter` (tag `db=postgres_global`; on PG 17+ the checkpoint
//! columns moved to `pg_stat_checkpointer` and are read from there under
//! their old names, so dashboards keep working). Columns become fields with
//! their SQL types (integers → int, floating and numeric → float, text →
//! string, bool); NULLs, timestamps and `stats_reset` are skipped. The
//! `server` tag is the address without password and TLS settings, or
//! `outputaddress`.
//!
//! A server that is down or refuses: the first failed gather is an error
//! (logged and counted); later failures of the same outage are quiet; the
//! recovery is logged. Each gather tries to connect again.

mod address;
mod row;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_core::{Batch, BatchBuilder, CallError, Input, PluginError};
use serde::Deserialize;
use tokio_postgres::{Client, NoTls};
use tracing::Instrument;

use crate::builtin::{self, Builtin};
use crate::duration::de_duration;
use address::Address;
use row::{add_fields, cell_text};

/// `[[inputs.postgresql]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `address`: `postgres://user@host:port/db?...` or `host=... user=...`
    /// (default `host=localhost sslmode=disable`).
    #[serde(default)]
    pub address: String,
    /// `outputaddress` (default: the address without secrets): the `server`
    /// tag.
    #[serde(default)]
    pub outputaddress: String,
    /// `databases` (default: all): only these databases of `pg_stat_database`.
    #[serde(default)]
    pub databases: Vec<String>,
    /// `ignored_databases` (default none): every database but these (not with
    /// `databases`).
    #[serde(default)]
    pub ignored_databases: Vec<String>,
    /// `max_lifetime` (default 0 = forever): reconnect after this long.
    #[serde(default, deserialize_with = "de_duration")]
    pub max_lifetime: Duration,
    /// Accepted for Telegraf configs (graft keeps one connection).
    #[serde(default = "yes")]
    pub prepared_statements: bool,
    /// `max_idle` (default 0): accepted for Telegraf configs, without effect.
    #[serde(default)]
    pub max_idle: u32,
    /// `max_open` (default 0): accepted for Telegraf configs, without effect.
    #[serde(default)]
    pub max_open: u32,
    /// `[[inputs.postgresql.query]]`: custom queries.
    #[serde(default)]
    pub query: Vec<QueryConfig>,
}

fn yes() -> bool {
    true
}

/// `[[inputs.postgresql.query]]`
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// `sqlquery` (required): the query; each row becomes a metric.
    pub sqlquery: String,
    /// `measurement` (default `postgresql`).
    #[serde(default)]
    pub measurement: String,
    /// `tagvalue`: comma-separated columns that become tags.
    #[serde(default)]
    pub tagvalue: String,
    /// `withdbname`: tag each row with the connection's database (`db`).
    #[serde(default)]
    pub withdbname: bool,
    /// `version` / `min_version`: run only on servers at least this version
    /// (`server_version_num / 100`, so 1500 is 15.0, 901 is 9.1).
    #[serde(default)]
    pub version: i64,
    /// `min_version` (default 0): the same as `version`.
    #[serde(default)]
    pub min_version: i64,
    /// `max_version`: run only on servers below this version.
    #[serde(default)]
    pub max_version: i64,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Postgresql>(table)
}

impl Builtin for Postgresql {
    const NAME: &'static str = "postgresql";
    type Config = Config;
    type Plugin = dyn Input;

    /// Everything [`Postgresql::new`] checks; it only parses, never connects.
    fn validate(config: &Config) -> Result<()> {
        Postgresql::new(config.clone()).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Postgresql::new(config)?))
    }
}

/// The PostgreSQL input.
pub struct Postgresql {
    connect: String,
    server: String,
    dbname: String,
    databases: Vec<String>,
    ignored: Vec<String>,
    max_lifetime: Duration,
    queries: Vec<QueryConfig>,
    client: Option<(Client, Instant, i64)>,
    down: bool,
}

impl Postgresql {
    pub fn new(c: Config) -> Result<Self> {
        if !c.databases.is_empty() && !c.ignored_databases.is_empty() {
            bail!("databases and ignored_databases: set one or the other");
        }
        let Address {
            connect,
            server,
            dbname,
        } = address::resolve(&c.address, &c.outputaddress)?;
        for (i, q) in c.query.iter().enumerate() {
            if q.sqlquery.trim().is_empty() {
                bail!("query[{i}].sqlquery: must not be empty");
            }
        }
        Ok(Self {
            connect,
            server,
            dbname,
            databases: c.databases,
            ignored: c.ignored_databases,
            max_lifetime: c.max_lifetime,
            queries: c.query,
            client: None,
            down: false,
        })
    }

    async fn client(&mut self) -> Result<(&Client, i64), tokio_postgres::Error> {
        let stale = match &self.client {
            Some((c, at, _)) => {
                c.is_closed() || (!self.max_lifetime.is_zero() && at.elapsed() > self.max_lifetime)
            }
            None => true,
        };
        if stale {
            self.client = None;
            let (client, connection) = tokio_postgres::connect(&self.connect, NoTls).await?;
            tokio::spawn(
                async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(
                            error = %e,
                            "connection to the server ended; the next gather reconnects"
                        );
                    }
                }
                .in_current_span(),
            );
            let version: i32 = client
                .query_one("SELECT current_setting('server_version_num')::int", &[])
                .await?
                .get(0);
            self.client = Some((client, Instant::now(), i64::from(version)));
        }
        let (c, _, v) = self.client.as_ref().expect("connected above");
        Ok((c, *v))
    }

    async fn collect(&mut self, out: &mut BatchBuilder) -> Result<(), tokio_postgres::Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let server = self.server.clone();
        let dbname = self.dbname.clone();
        let (databases, ignored) = (self.databases.clone(), self.ignored.clone());
        let queries = self.queries.clone();
        let (client, version) = self.client().await?;
        let rows = if !databases.is_empty() {
            client
                .query(
                    "SELECT * FROM pg_stat_database WHERE datname::text = ANY($1)",
                    &[&databases],
                )
                .await?
        } else if !ignored.is_empty() {
            client
                .query(
                    "SELECT * FROM pg_stat_database WHERE datname IS NULL OR NOT (datname::text = ANY($1))",
                    &[&ignored],
                )
                .await?
        } else {
            client.query("SELECT * FROM pg_stat_database", &[]).await?
        };
        for row in &rows {
            let db: Option<String> = row.try_get("datname").ok().flatten();
            let db = db.unwrap_or_else(|| "postgres_global".into());
            let mut m = out.metric("postgresql", now);
            m.tag("server", &server).tag("db", &db);
            add_fields(&mut m, row, &[]);
        }
        let bgwriter = client.query("SELECT * FROM pg_stat_bgwriter", &[]).await?;
        let checkpointer = if version >= 170_000 {
            client
                .query(
                    "SELECT num_timed AS checkpoints_timed, num_requested AS checkpoints_req, \
                     write_time AS checkpoint_write_time, sync_time AS checkpoint_sync_time, \
                     buffers_written AS buffers_checkpoint FROM pg_stat_checkpointer",
                    &[],
                )
                .await?
        } else {
            Vec::new()
        };
        for row in &bgwriter {
            let mut m = out.metric("postgresql", now);
            m.tag("server", &server).tag("db", "postgres_global");
            add_fields(&mut m, row, &[]);
            for c in &checkpointer {
                add_fields(&mut m, c, &[]);
            }
        }
        for q in &queries {
            let min = q.version.max(q.min_version);
            let v = version / 100;
            if (min > 0 && v < min) || (q.max_version > 0 && v >= q.max_version) {
                continue;
            }
            let tag_columns: Vec<&str> = q
                .tagvalue
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let name = if q.measurement.is_empty() {
                "postgresql"
            } else {
                q.measurement.as_str()
            };
            for row in client.query(q.sqlquery.as_str(), &[]).await? {
                let mut m = out.metric(name, now);
                m.tag("server", &server);
                if q.withdbname {
                    m.tag("db", &dbname);
                }
                for col in &tag_columns {
                    if let Some(text) = row
                        .columns()
                        .iter()
                        .position(|c| c.name() == *col)
                        .and_then(|i| cell_text(&row, i))
                    {
                        m.tag(col, &text);
                    }
                }
                add_fields(&mut m, &row, &tag_columns);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Input for Postgresql {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let mut out = BatchBuilder::new();
        let result = tokio::time::timeout(Duration::from_secs(10), self.collect(&mut out)).await;
        let error = match result {
            Ok(Ok(())) => {
                if self.down {
                    tracing::info!(server = %self.server, "server reachable again");
                    self.down = false;
                }
                return Ok(out.finish());
            }
            Ok(Err(e)) => {
                let mut s = e.to_string();
                if let Some(src) = std::error::Error::source(&e) {
                    s = format!("{s}: {src}");
                }
                s
            }
            Err(_) => "timed out after 10s".to_owned(),
        };
        self.client = None;
        if self.down {
            tracing::debug!(
                server = %self.server,
                %error,
                "server still failing; nothing gathered, the next gather tries again"
            );
            return Ok(Batch::new());
        }
        self.down = true;
        Err(CallError::Returned(PluginError::new(format!(
            "{}: {error} (further failures are quiet until it recovers)",
            self.server
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_tag_hides_secrets_and_urls_become_pairs() {
        let p = |a: &str| {
            let c: Config =
                crate::config::parse(toml::from_str(&format!("address = \"{a}\"")).unwrap())
                    .unwrap();
            Postgresql::new(c).unwrap().server
        };
        assert_eq!(
            p(
                "host=localhost user=postgres password=secret sslmode=disable dbname=postgres port=5432"
            ),
            "dbname=postgres host=localhost port=5432 user=postgres"
        );
        assert_eq!(
            p("postgres://me:pw@db.example:6432/app?sslmode=prefer&application_name=graft"),
            "application_name=graft dbname=app host=db.example port=6432 user=me"
        );
        let c: Config = crate::config::parse(
            toml::from_str("address = \"host=x sslmode=verify-full\"").unwrap(),
        )
        .unwrap();
        assert!(
            Postgresql::new(c)
                .err()
                .unwrap()
                .to_string()
                .contains("sslmode")
        );
    }
}
