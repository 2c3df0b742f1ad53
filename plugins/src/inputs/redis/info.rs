//! Redis's `INFO ALL` text as Telegraf turns it into metrics: `redis`
//! (one per server, types from Telegraf's table of known fields, the rest
//! as they parse), `redis_keyspace`, `redis_cmdstat`,
//! `redis_latency_percentiles_usec`, `redis_replication` and
//! `redis_errorstat`.

use std::collections::HashMap;

use graft_core::{BatchBuilder, FieldRef};

/// A field's type in Telegraf's table of known `redis` fields.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    Int,
    Float,
    Str,
}

/// Telegraf's `redisFieldTypes`: fields it always reports with this type.
pub fn known(name: &str) -> Option<Kind> {
    use Kind::{Float, Int, Str};
    Some(match name {
        "allocator_frag_bytes"
        | "allocator_frag_ratio"
        | "allocator_rss_ratio"
        | "expired_stale_perc"
        | "instantaneous_input_kbps"
        | "instantaneous_output_kbps"
        | "mem_fragmentation_ratio"
        | "rss_overhead_ratio"
        | "used_cpu_sys"
        | "used_cpu_sys_children"
        | "used_cpu_user"
        | "used_cpu_user_children"
        | "used_memory_dataset_perc"
        | "used_memory_peak_perc" => Float,
        "aof_last_bgrewrite_status"
        | "aof_last_write_status"
        | "maxmemory_policy"
        | "rdb_last_bgsave_status"
        | "redis_version" => Str,
        "active_defrag_hits"
        | "active_defrag_key_hits"
        | "active_defrag_key_misses"
        | "active_defrag_misses"
        | "active_defrag_running"
        | "allocator_active"
        | "allocator_allocated"
        | "allocator_resident"
        | "allocator_rss_bytes"
        | "aof_current_rewrite_time_sec"
        | "aof_enabled"
        | "aof_last_cow_size"
        | "aof_last_rewrite_time_sec"
        | "aof_rewrite_in_progress"
        | "aof_rewrite_scheduled"
        | "blocked_clients"
        | "client_recent_max_input_buffer"
        | "client_recent_max_output_buffer"
        | "clients"
        | "clients_in_timeout_table"
        | "cluster_enabled"
        | "connected_slaves"
        | "evicted_keys"
        | "expire_cycle_cpu_milliseconds"
        | "expired_keys"
        | "expired_time_cap_reached_count"
        | "instantaneous_ops_per_sec"
        | "io_threaded_reads_processed"
        | "io_threaded_writes_processed"
        | "keyspace_hits"
        | "keyspace_misses"
        | "latest_fork_usec"
        | "lazyfree_pending_objects"
        | "loading"
        | "lru_clock"
        | "master_repl_offset"
        | "maxmemory"
        | "mem_aof_buffer"
        | "mem_clients_normal"
        | "mem_clients_slaves"
        | "mem_fragmentation_bytes"
        | "mem_not_counted_for_evict"
        | "mem_replication_backlog"
        | "migrate_cached_sockets"
        | "module_fork_in_progress"
        | "module_fork_last_cow_size"
        | "number_of_cached_scripts"
        | "pubsub_channels"
        | "pubsub_patterns"
        | "rdb_bgsave_in_progress"
        | "rdb_changes_since_last_save"
        | "rdb_current_bgsave_time_sec"
        | "rdb_last_bgsave_time_sec"
        | "rdb_last_cow_size"
        | "rdb_last_save_time"
        | "rdb_last_save_time_elapsed"
        | "rejected_connections"
        | "repl_backlog_active"
        | "repl_backlog_first_byte_offset"
        | "repl_backlog_histlen"
        | "repl_backlog_size"
        | "rss_overhead_bytes"
        | "second_repl_offset"
        | "slave_expires_tracked_keys"
        | "sync_full"
        | "sync_partial_err"
        | "sync_partial_ok"
        | "total_commands_processed"
        | "total_connections_received"
        | "total_net_input_bytes"
        | "total_net_output_bytes"
        | "total_reads_processed"
        | "total_system_memory"
        | "total_writes_processed"
        | "tracking_clients"
        | "tracking_total_items"
        | "tracking_total_keys"
        | "tracking_total_prefixes"
        | "unexpected_error_replies"
        | "uptime"
        | "used_memory"
        | "used_memory_dataset"
        | "used_memory_lua"
        | "used_memory_overhead"
        | "used_memory_peak"
        | "used_memory_rss"
        | "used_memory_scripts"
        | "used_memory_startup" => Int,
        _ => return None,
    })
}

/// A parsed value of the `redis` measurement.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Value {
    /// As Telegraf parses an INFO value: an integer, else a float, else a
    /// string.
    fn parse(text: &str) -> Self {
        if let Ok(i) = text.parse::<i64>() {
            Value::Int(i)
        } else if let Some(f) = go_float(text) {
            Value::Float(f)
        } else {
            Value::Str(text.to_owned())
        }
    }

    /// Converted to Telegraf's type for a known field (its `coerceType`).
    fn coerce(self, kind: Kind) -> Self {
        match (self, kind) {
            (Value::Int(i), Kind::Float) => Value::Float(i as f64),
            (Value::Int(i), Kind::Str) => Value::Str(i.to_string()),
            (Value::Float(f), Kind::Int) => Value::Int(f as i64),
            (Value::Float(f), Kind::Str) => Value::Str(format!("{f:.6}")),
            (Value::Str(s), Kind::Int) => Value::Int(s.parse().unwrap_or(0)),
            (Value::Str(s), Kind::Float) => Value::Float(go_float(&s).unwrap_or(0.0)),
            (v, _) => v,
        }
    }

    fn field(&self) -> Option<FieldRef<'_>> {
        match self {
            Value::Int(i) => Some(FieldRef::Int(*i)),
            Value::Float(f) if f.is_finite() => Some(FieldRef::Float(*f)),
            Value::Float(_) => None,
            Value::Str(s) => Some(FieldRef::Str(s)),
        }
    }
}

/// A float as Go's `ParseFloat` reads one (finite values only here).
fn go_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// What became of one INFO text.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Metrics added.
    pub metrics: usize,
    /// Per-section metrics past `max_series`, not added.
    pub series_dropped: usize,
    /// Fields past [`MAX_FIELDS`] of one metric, not added.
    pub fields_dropped: usize,
}

/// At most this many fields in one metric (Redis 7's `redis` metric has
/// about 250): a hostile `INFO` of unique keys stays bounded.
pub(crate) const MAX_FIELDS: usize = 2000;

/// The `redis` metric's fields in the order first seen, indexed by name so
/// that a later line with the same name replaces the value in O(1).
#[derive(Default)]
struct Fields {
    list: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Fields {
    /// Set `key`; false when it is new and the metric is full.
    fn set(&mut self, key: &str, value: Value) -> bool {
        if let Some(&i) = self.index.get(key) {
            self.list[i].1 = value;
            return true;
        }
        if self.list.len() >= MAX_FIELDS {
            return false;
        }
        self.index.insert(key.to_owned(), self.list.len());
        self.list.push((key.to_owned(), value));
        true
    }
}

/// Add the metrics of `info` to `out`, tagged with `tags` (and
/// `replication_role` once the Replication section names it). At most
/// `max_series` metrics of the per-database, per-command, per-error and
/// per-replica measurements, and at most [`MAX_FIELDS`] fields in each.
pub(crate) fn add(
    info: &str,
    tags: &[(String, String)],
    now_ns: i64,
    max_series: usize,
    out: &mut BatchBuilder,
) -> Outcome {
    let mut tags: Vec<(String, String)> = tags.to_vec();
    let mut fields = Fields::default();
    let mut outcome = Outcome::default();
    let (mut hits, mut misses) = (0i64, 0i64);
    let mut section = "";
    let mut series = 0usize;
    for line in info.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if line.len() > 2 {
                section = rest.get(1..).unwrap_or("");
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if section == "Server"
            && !matches!(name, "lru_clock" | "uptime_in_seconds" | "redis_version")
        {
            continue;
        }
        if name.starts_with("master_replid") || name == "mem_allocator" || name.ends_with("_human")
        {
            continue;
        }
        let renamed = match name {
            "uptime_in_seconds" => Some("uptime"),
            "connected_clients" => Some("clients"),
            "role" => Some("replication_role"),
            _ => None,
        };
        let value = value.trim();
        let sub = match (renamed, section) {
            (Some(_), _) => None,
            (None, "Keyspace") => Some(keyspace(name, value)),
            (None, "Commandstats") => Some(cmdstat(name, value)),
            (None, "Latencystats") => Some(latency(name, value)),
            (None, "Replication") if is_replica_line(name) => Some(replica(name, value)),
            (None, "Errorstats") => Some(errorstat(name, value)),
            _ => None,
        };
        if let Some(sub) = sub {
            let Some((measurement, extra_tags, mut sub_fields)) = sub else {
                continue;
            };
            if sub_fields.len() > MAX_FIELDS {
                outcome.fields_dropped += sub_fields.len() - MAX_FIELDS;
                sub_fields.truncate(MAX_FIELDS);
            }
            if sub_fields.is_empty() {
                continue;
            }
            if series >= max_series {
                outcome.series_dropped += 1;
                continue;
            }
            series += 1;
            let mut m = out.metric(measurement, now_ns);
            for (k, v) in &tags {
                if !extra_tags.iter().any(|(ek, _)| ek == k) {
                    m.tag(k, v);
                }
            }
            for (k, v) in &extra_tags {
                m.tag(k, v);
            }
            for (k, v) in &sub_fields {
                if let Some(f) = v.field() {
                    m.field(k, f);
                }
            }
            outcome.metrics += 1;
            continue;
        }
        let metric = renamed.unwrap_or(name);
        let value = Value::parse(value.strip_suffix('%').unwrap_or(value));
        match &value {
            Value::Int(i) => match name {
                "keyspace_hits" => hits = *i,
                "keyspace_misses" => misses = *i,
                "rdb_last_save_time" => {
                    let elapsed = Value::Int(now_ns / 1_000_000_000 - i);
                    if !fields.set("rdb_last_save_time_elapsed", elapsed) {
                        outcome.fields_dropped += 1;
                    }
                }
                _ => {}
            },
            Value::Str(s) if name == "role" => {
                set_tag(&mut tags, "replication_role", s);
                continue;
            }
            _ => {}
        }
        if !fields.set(metric, value) {
            outcome.fields_dropped += 1;
        }
    }
    let hitrate = if hits != 0 || misses != 0 {
        hits as f64 / (hits + misses) as f64
    } else {
        0.0
    };
    if !fields.set("keyspace_hitrate", Value::Float(hitrate)) {
        outcome.fields_dropped += 1;
    }
    let mut m = out.metric("redis", now_ns);
    for (k, v) in &tags {
        m.tag(k, v);
    }
    for (k, v) in &fields.list {
        let v = match known(k) {
            Some(kind) => v.clone().coerce(kind),
            None => v.clone(),
        };
        if let Some(f) = v.field() {
            m.field(k, f);
        }
    }
    outcome.metrics += 1;
    outcome
}

fn set_tag(tags: &mut Vec<(String, String)>, key: &str, value: &str) {
    match tags.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => value.clone_into(&mut slot.1),
        None => tags.push((key.to_owned(), value.to_owned())),
    }
}

/// A per-section metric: its name, its own tags, its fields (`None`: the
/// line is not one of its kind).
type Sub = Option<(&'static str, Vec<(String, String)>, Vec<(String, Value)>)>;

/// `slave0`, `slave12`: Telegraf's `^slave\d+`.
fn is_replica_line(name: &str) -> bool {
    name.strip_prefix("slave")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// `key=value` pairs of a line.
fn pairs(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split(',').filter_map(|p| {
        let mut kv = p.split('=');
        match (kv.next(), kv.next(), kv.next()) {
            (Some(k), Some(v), None) => Some((k, v)),
            _ => None,
        }
    })
}

/// `db0:keys=2,expires=0,avg_ttl=0`
fn keyspace(name: &str, line: &str) -> Sub {
    if !line.contains("keys=") {
        return None;
    }
    let fields = pairs(line)
        .filter_map(|(k, v)| Some((k.to_owned(), Value::Int(v.parse().ok()?))))
        .collect();
    Some((
        "redis_keyspace",
        vec![("database".into(), name.into())],
        fields,
    ))
}

/// `cmdstat_get:calls=3,usec=9,usec_per_call=3.00,rejected_calls=0,failed_calls=0`
fn cmdstat(name: &str, line: &str) -> Sub {
    let command = name.strip_prefix("cmdstat")?;
    let command = command.strip_prefix('_').unwrap_or(command);
    let fields = pairs(line)
        .filter_map(|(k, v)| match k {
            "calls" | "usec" | "rejected_calls" | "failed_calls" => {
                Some((k.to_owned(), Value::Int(v.parse().ok()?)))
            }
            "usec_per_call" => Some((k.to_owned(), Value::Float(go_float(v)?))),
            _ => None,
        })
        .collect();
    Some((
        "redis_cmdstat",
        vec![("command".into(), command.into())],
        fields,
    ))
}

/// `latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=4.015`
fn latency(name: &str, line: &str) -> Sub {
    let rest = name.strip_prefix("latency_percentiles_usec")?;
    let command = rest.strip_prefix('_').unwrap_or(rest);
    let fields = pairs(line)
        .filter_map(|(k, v)| match k {
            "p50" | "p99" | "p99.9" => Some((k.to_owned(), Value::Float(go_float(v)?))),
            _ => None,
        })
        .collect();
    Some((
        "redis_latency_percentiles_usec",
        vec![("command".into(), command.into())],
        fields,
    ))
}

/// `slave0:ip=127.0.0.1,port=7379,state=online,offset=4556468,lag=0`
fn replica(name: &str, line: &str) -> Sub {
    let id = name.trim_start_matches(['s', 'l', 'a', 'v', 'e']);
    let mut tags = vec![
        ("replica_id".to_owned(), id.to_owned()),
        ("replication_role".to_owned(), "slave".to_owned()),
    ];
    let mut fields = Vec::new();
    for (k, v) in pairs(line) {
        match k {
            "ip" => tags.push(("replica_ip".into(), v.into())),
            "port" => tags.push(("replica_port".into(), v.into())),
            "state" => tags.push(("state".into(), v.into())),
            _ => {
                if let Ok(i) = v.parse() {
                    fields.push((k.to_owned(), Value::Int(i)));
                }
            }
        }
    }
    Some(("redis_replication", tags, fields))
}

/// `errorstat_ERR:count=37`
fn errorstat(name: &str, line: &str) -> Sub {
    let err = name.strip_prefix("errorstat_").unwrap_or(name);
    let total: i64 = line.split('=').nth(1)?.parse().ok()?;
    Some((
        "redis_errorstat",
        vec![("err".into(), err.into())],
        vec![("total".into(), Value::Int(total))],
    ))
}
