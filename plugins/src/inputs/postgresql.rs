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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, PluginError};
use serde::Deserialize;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, Row};

use crate::duration::de_duration;

/// `[[inputs.postgresql]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `address`: `postgres://user@host:port/db?...` or `host=... user=...`
    /// (default `host=localhost sslmode=disable`).
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub outputaddress: String,
    #[serde(default)]
    pub databases: Vec<String>,
    #[serde(default)]
    pub ignored_databases: Vec<String>,
    /// `max_lifetime` (default 0 = forever): reconnect after this long.
    #[serde(default, deserialize_with = "de_duration")]
    pub max_lifetime: Duration,
    /// Accepted for Telegraf configs (graft keeps one connection).
    #[serde(default = "yes")]
    pub prepared_statements: bool,
    #[serde(default)]
    pub max_idle: u32,
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
    #[serde(default)]
    pub min_version: i64,
    /// `max_version`: run only on servers below this version.
    #[serde(default)]
    pub max_version: i64,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    let c: Config = crate::config::parse(table)?;
    Ok(Box::new(Postgresql::new(c)?))
}

/// The address as key=value pairs.
fn address_pairs(address: &str) -> Result<BTreeMap<String, String>> {
    let mut pairs = BTreeMap::new();
    if let Some(rest) = address
        .strip_prefix("postgres://")
        .or_else(|| address.strip_prefix("postgresql://"))
    {
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, hostpart) = match main.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, main),
        };
        if let Some(a) = auth {
            let (u, p) = a.split_once(':').unwrap_or((a, ""));
            pairs.insert("user".into(), u.to_owned());
            if !p.is_empty() {
                pairs.insert("password".into(), p.to_owned());
            }
        }
        let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, Some(p)),
            _ => (hostport, None),
        };
        if !host.is_empty() {
            pairs.insert("host".into(), host.trim_matches(['[', ']']).to_owned());
        }
        if let Some(p) = port {
            pairs.insert("port".into(), p.to_owned());
        }
        if !db.is_empty() {
            pairs.insert("dbname".into(), db.to_owned());
        }
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            pairs.insert(k.to_owned(), v.to_owned());
        }
    } else {
        for word in address.split_whitespace() {
            let Some((k, v)) = word.split_once('=') else {
                bail!("address: {word:?} is not key=value");
            };
            pairs.insert(k.to_owned(), v.trim_matches('\'').to_owned());
        }
    }
    Ok(pairs)
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
        let address = if c.address.is_empty() {
            "host=localhost sslmode=disable".to_owned()
        } else {
            c.address.clone()
        };
        let pairs = address_pairs(&address)?;
        match pairs.get("sslmode").map(String::as_str) {
            None | Some("disable" | "allow" | "prefer") => {}
            Some(other) => bail!(
                "address: sslmode={other} is not supported yet (graft connects without TLS); use sslmode=disable or prefer"
            ),
        }
        let server = if c.outputaddress.is_empty() {
            pairs
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "password" | "sslcert" | "sslkey" | "sslmode" | "sslrootcert"
                    )
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            c.outputaddress.clone()
        };
        // tokio-postgres takes key=value; TLS is off ("prefer" falls back).
        let connect = pairs
            .iter()
            .filter(|(k, _)| k.as_str() != "sslmode")
            .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
            .collect::<Vec<_>>()
            .join(" ");
        connect
            .parse::<tokio_postgres::Config>()
            .map_err(|e| anyhow::anyhow!("address: {e}"))?;
        let dbname = pairs
            .get("dbname")
            .or_else(|| pairs.get("user"))
            .cloned()
            .unwrap_or_else(|| "postgres".into());
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
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(plugin = "inputs.postgresql", "connection ended: {e}");
                }
            });
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

/// A cell as text, for tags.
fn cell_text(row: &Row, i: usize) -> Option<String> {
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

fn add_fields(m: &mut graft_core::MetricBuilder<'_>, row: &Row, skip: &[&str]) {
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

#[async_trait]
impl Input for Postgresql {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let mut out = BatchBuilder::new();
        let result = tokio::time::timeout(Duration::from_secs(10), self.collect(&mut out)).await;
        let error = match result {
            Ok(Ok(())) => {
                if self.down {
                    tracing::info!(
                        plugin = "inputs.postgresql",
                        "{}: reachable again",
                        self.server
                    );
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
                plugin = "inputs.postgresql",
                "{}: still failing: {error}",
                self.server
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
