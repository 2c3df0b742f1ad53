//! Values of MySQL's text protocol turned into fields as Telegraf turns
//! them: `metric_version = 1` (`v1.ParseValue`: everything a float,
//! `Yes`/`ON` 1, `No`/`OFF` 0; global status through the prefix table as
//! ints) and `metric_version = 2` (`v2.ConvertGlobalStatus`,
//! `ConvertGlobalVariables`: ints, uints, floats, booleans as 1/0, strings
//! kept, per-key converters).

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

/// Telegraf's v1 `ParseValue`: a float, or `None` for text.
pub fn v1(value: &str) -> Option<f64> {
    match value {
        "Yes" | "ON" => Some(1.0),
        "No" | "OFF" => Some(0.0),
        _ => go_float(value),
    }
}

fn go_float(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Telegraf's v2 `ParseValue`.
pub fn v2(value: &str) -> Option<Val> {
    if value.eq_ignore_ascii_case("YES") || value == "ON" {
        return Some(Val::Int(1));
    }
    if value.eq_ignore_ascii_case("NO") || value == "OFF" {
        return Some(Val::Int(0));
    }
    if let Ok(i) = value.parse::<i64>() {
        return Some(Val::Int(i));
    }
    if let Ok(u) = value.parse::<u64>() {
        return Some(Val::Uint(u));
    }
    if let Some(f) = go_float(value) {
        return Some(Val::Float(f));
    }
    (!value.is_empty()).then(|| Val::Str(value.to_owned()))
}

/// `v2.ParseInt` (out of range: the nearest bound, as Go returns it).
pub fn v2_int(value: &str) -> Option<Val> {
    if let Ok(i) = value.parse::<i64>() {
        return Some(Val::Int(i));
    }
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| {
        Val::Int(if value.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        })
    })
}

/// `v2.ParseUint`.
pub fn v2_uint(value: &str) -> Option<Val> {
    value.parse::<u64>().ok().map(Val::Uint)
}

/// A global status value, v2: fields to add (a key may become several).
pub fn v2_status(key: &str, value: &str) -> Result<Vec<(String, Val)>, String> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let one = |v: Option<Val>| {
        v.map(|v| vec![(key.to_owned(), v)])
            .ok_or_else(|| format!("cannot convert {value:?}"))
    };
    match key {
        "innodb_available_undo_logs"
        | "innodb_buffer_pool_pages_misc"
        | "innodb_data_pending_fsyncs"
        | "ssl_ctx_verify_depth"
        | "ssl_verify_depth"
        | "wsrep_local_index" => one(v2_uint(value)),
        "wsrep_apply_oooe"
        | "wsrep_apply_oool"
        | "wsrep_apply_window"
        | "wsrep_cert_deps_distance"
        | "wsrep_cert_interval"
        | "wsrep_commit_oooe"
        | "wsrep_commit_oool"
        | "wsrep_commit_window"
        | "wsrep_flow_control_paused"
        | "wsrep_local_recv_queue_avg"
        | "wsrep_local_send_queue_avg" => one(go_float(value).map(Val::Float)),
        "wsrep_evs_repl_latency" => {
            let parts: Vec<&str> = value.split('/').collect();
            if parts.len() != 5 {
                return Err(format!("{} values, expected 5", parts.len()));
            }
            ["min", "avg", "max", "stdev", "sample_size"]
                .iter()
                .zip(parts)
                .map(|(k, v)| {
                    go_float(v)
                        .map(|f| (format!("{key}_{k}"), Val::Float(f)))
                        .ok_or_else(|| format!("{k}: cannot convert {v:?}"))
                })
                .collect()
        }
        _ => one(v2(value)),
    }
}

/// A global variable, v2.
pub fn v2_variable(key: &str, value: &str) -> Result<Vec<(String, Val)>, String> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let one = |v: Val| Ok(vec![(key.to_owned(), v)]);
    match key {
        "delay_key_write"
        | "enforce_gtid_consistency"
        | "event_scheduler"
        | "session_track_gtids"
        | "session_track_transaction_info"
        | "ssl_fips_mode"
        | "use_secondary_engine"
        | "transaction_write_set_extraction"
        | "slave_skip_errors" => one(Val::Str(value.to_owned())),
        "have_openssl" | "have_ssl" | "have_symlink" => one(Val::Int(i64::from(
            value.eq_ignore_ascii_case("YES") || value.eq_ignore_ascii_case("ON"),
        ))),
        "gtid_mode" => match value {
            "OFF" | "OFF_PERMISSIVE" => one(Val::Int(0)),
            "ON" | "ON_PERMISSIVE" => one(Val::Int(1)),
            _ => Err(format!("unrecognized gtid_mode: {value:?}")),
        },
        "wsrep_provider_options" => provider_options(key, value),
        _ => v2(value)
            .map(|v| vec![(key.to_owned(), v)])
            .ok_or_else(|| format!("cannot convert {value:?}")),
    }
}

/// `gcache.size = 128M;...` → `wsrep_provider_options_gcache_size`.
fn provider_options(key: &str, value: &str) -> Result<Vec<(String, Val)>, String> {
    let mut out = Vec::new();
    for setting in value.trim().split(';') {
        let Some((k, data)) = setting.split_once('=') else {
            if setting.is_empty() {
                continue;
            }
            return Err(format!("invalid key-value pair for {setting:?}"));
        };
        let (k, data) = (k.trim(), data.trim());
        if data.is_empty() || k != "gcache.size" {
            continue;
        }
        let (number, factor) = match data.as_bytes()[data.len() - 1].to_ascii_uppercase() {
            b'K' => (&data[..data.len() - 1], 1u64 << 10),
            b'M' => (&data[..data.len() - 1], 1 << 20),
            b'G' => (&data[..data.len() - 1], 1 << 30),
            b'T' => (&data[..data.len() - 1], 1 << 40),
            b'P' => (&data[..data.len() - 1], 1 << 50),
            b'E' => (&data[..data.len() - 1], 1 << 60),
            _ => (data, 1),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("failed to parse value {data:?}"))?;
        out.push((
            format!("{key}_gcache_size"),
            Val::Uint(n.wrapping_mul(factor)),
        ));
    }
    Ok(out)
}

/// Telegraf's v1 table of global status prefixes: `Com_` becomes
/// `commands_`, and so on. Keys matching none (except the few below) are
/// not reported in v1.
pub const V1_PREFIXES: &[(&str, &str)] = &[
    ("Aborted_", "aborted_"),
    ("Bytes_", "bytes_"),
    ("Com_", "commands_"),
    ("Created_", "created_"),
    ("Handler_", "handler_"),
    ("Innodb_", "innodb_"),
    ("Key_", "key_"),
    ("Open_", "open_"),
    ("Opened_", "opened_"),
    ("Qcache_", "qcache_"),
    ("Table_", "table_"),
    ("Tokudb_", "tokudb_"),
    ("Threads_", "threads_"),
    ("Access_", "access_"),
    ("Aria__", "aria_"),
    ("Binlog__", "binlog_"),
    ("Busy_", "busy_"),
    ("Connection_", "connection_"),
    ("Delayed_", "delayed_"),
    ("Empty_", "empty_"),
    ("Executed_", "executed_"),
    ("Feature_", "feature_"),
    ("Flush_", "flush_"),
    ("Last_", "last_"),
    ("Master_", "master_"),
    ("Max_", "max_"),
    ("Memory_", "memory_"),
    ("Not_", "not_"),
    ("Performance_", "performance_"),
    ("Prepared_", "prepared_"),
    ("Rows_", "rows_"),
    ("Rpl_", "rpl_"),
    ("Select_", "select_"),
    ("Slave_", "slave_"),
    ("Slow_", "slow_"),
    ("Sort_", "sort_"),
    ("Subquery_", "subquery_"),
    ("Tc_", "tc_"),
    ("Threadpool_", "threadpool_"),
    ("wsrep_", "wsrep_"),
    ("Uptime_", "uptime_"),
];

/// A global status value, v1: the prefix table (ints; `ON`/`true` 1,
/// `OFF`/`false` 0, anything else 0), then `Queries`, `Questions`,
/// `Slow_queries`, `Connections`, `Syncs`, `Uptime` as ints.
pub fn v1_status(key: &str, value: &str) -> Vec<(String, Val)> {
    let mut out = Vec::new();
    for (on_server, in_export) in V1_PREFIXES {
        if let Some(rest) = key.strip_prefix(on_server) {
            let i = match value {
                "ON" | "true" => 1,
                "OFF" | "false" => 0,
                v => v.parse::<i64>().unwrap_or(0),
            };
            out.push((format!("{in_export}{rest}"), Val::Int(i)));
        }
    }
    if out.is_empty() {
        let name = match key {
            "Queries" => "queries",
            "Questions" => "questions",
            "Slow_queries" => "slow_queries",
            "Connections" => "connections",
            "Syncs" => "syncs",
            "Uptime" => "uptime",
            _ => return out,
        };
        if let Ok(i) = value.parse::<i64>() {
            out.push((name.to_owned(), Val::Int(i)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_as_telegraf_converts_them() {
        assert_eq!(v2("ON"), Some(Val::Int(1)));
        assert_eq!(v2("yes"), Some(Val::Int(1)));
        assert_eq!(v2("OFF"), Some(Val::Int(0)));
        assert_eq!(v2("-5"), Some(Val::Int(-5)));
        assert_eq!(v2("18446744073709551615"), Some(Val::Uint(u64::MAX)));
        assert_eq!(v2("0.25"), Some(Val::Float(0.25)));
        assert_eq!(v2("InnoDB"), Some(Val::Str("InnoDB".into())));
        assert_eq!(v2(""), None);
        assert_eq!(v1("Yes"), Some(1.0));
        assert_eq!(v1("12"), Some(12.0));
        assert_eq!(v1("abc"), None);
        assert_eq!(v2_int("99999999999999999999"), Some(Val::Int(i64::MAX)));
        assert_eq!(v2_uint("-1"), None);
        assert_eq!(
            v2_status("innodb_data_pending_fsyncs", "3").unwrap(),
            [("innodb_data_pending_fsyncs".into(), Val::Uint(3))]
        );
        let lat = v2_status("wsrep_evs_repl_latency", "0.1/0.2/0.3/0.4/5").unwrap();
        assert_eq!(
            lat[4],
            ("wsrep_evs_repl_latency_sample_size".into(), Val::Float(5.0))
        );
        assert_eq!(
            v2_variable("have_ssl", "DISABLED").unwrap()[0].1,
            Val::Int(0)
        );
        assert_eq!(
            v2_variable("event_scheduler", "OFF").unwrap()[0].1,
            Val::Str("OFF".into())
        );
        assert_eq!(
            v2_variable("wsrep_provider_options", "a=b; gcache.size = 128M; c=d").unwrap(),
            [(
                "wsrep_provider_options_gcache_size".into(),
                Val::Uint(128 << 20)
            )]
        );
        assert!(v2_variable("gtid_mode", "MAYBE").is_err());
        assert_eq!(
            v1_status("Com_insert", "7"),
            [("commands_insert".into(), Val::Int(7))]
        );
        assert_eq!(v1_status("Uptime", "9"), [("uptime".into(), Val::Int(9))]);
        assert_eq!(v1_status("Ssl_cipher", "x"), []);
        assert_eq!(
            v1_status("Threads_connected", "x"),
            [("threads_connected".into(), Val::Int(0))]
        );
    }
}
