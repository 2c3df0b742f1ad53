//! `INFO` texts turned into metrics: names, tags and types as Telegraf's.

use graft_core::{BatchBuilder, FieldRef};

use super::info;

const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nuptime_in_seconds:120\r\nlru_clock:123\r\n\r\n\
# Clients\r\nconnected_clients:2\r\nmaxclients:10000\r\n\r\n\
# Memory\r\nused_memory:1000\r\nused_memory_human:1K\r\nmem_fragmentation_ratio:3\r\nmem_allocator:jemalloc-5.3.0\r\nused_memory_peak_perc:12.5%\r\n\r\n\
# Persistence\r\nrdb_last_save_time:1000\r\nrdb_last_bgsave_status:ok\r\n\r\n\
# Stats\r\nkeyspace_hits:3\r\nkeyspace_misses:1\r\ninstantaneous_input_kbps:0.50\r\n\r\n\
# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=7379,state=online,offset=45,lag=0\r\nmaster_replid:abc\r\n\r\n\
# CPU\r\nused_cpu_sys:0\r\nused_cpu_user:1.25\r\n\r\n\
# Commandstats\r\ncmdstat_get:calls=3,usec=9,usec_per_call=3.00,rejected_calls=0,failed_calls=1\r\n\r\n\
# Errorstats\r\nerrorstat_ERR:count=37\r\n\r\n\
# Latencystats\r\nlatency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=4.015\r\n\r\n\
# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=500\r\ndb3:keys=5,expires=0,avg_ttl=0\r\n";

#[test]
fn info_becomes_telegrafs_measurements_with_its_types() {
    let mut out = BatchBuilder::new();
    let tags = vec![
        ("server".to_owned(), "h".to_owned()),
        ("port".to_owned(), "1".to_owned()),
    ];
    let o = info::add(INFO, &tags, 1_100_000_000_000, 100, &mut out);
    let b = out.finish();
    assert_eq!(o.metrics, 7);
    assert_eq!(b.len(), 7);
    let redis = b.iter().find(|m| m.name() == "redis").unwrap();
    assert_eq!(redis.tag("replication_role"), Some("master"));
    assert_eq!(redis.tag("server"), Some("h"));
    assert_eq!(redis.field("uptime"), Some(FieldRef::Int(120)));
    assert_eq!(redis.field("clients"), Some(FieldRef::Int(2)));
    assert_eq!(redis.field("redis_version"), Some(FieldRef::Str("7.0.15")));
    // Only lru_clock, uptime and the version from the Server section.
    assert_eq!(redis.field("redis_mode"), None);
    assert_eq!(redis.field("used_memory_human"), None);
    assert_eq!(redis.field("mem_allocator"), None);
    assert_eq!(redis.field("master_replid"), None);
    assert_eq!(redis.field("role"), None);
    // Known float fields stay floats even when the server prints an integer.
    assert_eq!(
        redis.field("mem_fragmentation_ratio"),
        Some(FieldRef::Float(3.0))
    );
    assert_eq!(redis.field("used_cpu_sys"), Some(FieldRef::Float(0.0)));
    assert_eq!(redis.field("used_cpu_user"), Some(FieldRef::Float(1.25)));
    assert_eq!(
        redis.field("used_memory_peak_perc"),
        Some(FieldRef::Float(12.5))
    );
    assert_eq!(redis.field("maxclients"), Some(FieldRef::Int(10000)));
    assert_eq!(
        redis.field("rdb_last_bgsave_status"),
        Some(FieldRef::Str("ok"))
    );
    assert_eq!(
        redis.field("rdb_last_save_time_elapsed"),
        Some(FieldRef::Int(100))
    );
    assert_eq!(redis.field("keyspace_hitrate"), Some(FieldRef::Float(0.75)));
    assert_eq!(
        redis.field("instantaneous_input_kbps"),
        Some(FieldRef::Float(0.5))
    );

    let db0 = b
        .iter()
        .find(|m| m.name() == "redis_keyspace" && m.tag("database") == Some("db0"))
        .unwrap();
    assert_eq!(db0.field("keys"), Some(FieldRef::Int(2)));
    assert_eq!(db0.field("expires"), Some(FieldRef::Int(1)));
    assert_eq!(db0.field("avg_ttl"), Some(FieldRef::Int(500)));
    assert_eq!(db0.tag("replication_role"), Some("master"));
    let get = b.iter().find(|m| m.name() == "redis_cmdstat").unwrap();
    assert_eq!(get.tag("command"), Some("get"));
    assert_eq!(get.field("calls"), Some(FieldRef::Int(3)));
    assert_eq!(get.field("usec_per_call"), Some(FieldRef::Float(3.0)));
    assert_eq!(get.field("failed_calls"), Some(FieldRef::Int(1)));
    let err = b.iter().find(|m| m.name() == "redis_errorstat").unwrap();
    assert_eq!(
        (err.tag("err"), err.field("total")),
        (Some("ERR"), Some(FieldRef::Int(37)))
    );
    let lat = b
        .iter()
        .find(|m| m.name() == "redis_latency_percentiles_usec")
        .unwrap();
    assert_eq!(lat.field("p99.9"), Some(FieldRef::Float(4.015)));
    let rep = b.iter().find(|m| m.name() == "redis_replication").unwrap();
    assert_eq!(rep.tag("replication_role"), Some("slave"));
    assert_eq!(rep.tag("replica_id"), Some("0"));
    assert_eq!(rep.tag("replica_ip"), Some("127.0.0.1"));
    assert_eq!(rep.tag("replica_port"), Some("7379"));
    assert_eq!(rep.tag("state"), Some("online"));
    assert_eq!(rep.field("offset"), Some(FieldRef::Int(45)));
    assert_eq!(rep.field("lag"), Some(FieldRef::Int(0)));
}

#[test]
fn per_section_metrics_stop_at_max_series() {
    let mut text = String::from("# Keyspace\r\n");
    for i in 0..50 {
        text.push_str(&format!("db{i}:keys=1,expires=0,avg_ttl=0\r\n"));
    }
    let mut out = BatchBuilder::new();
    let o = info::add(&text, &[], 0, 10, &mut out);
    assert_eq!((o.metrics, o.series_dropped), (11, 40));
    // Garbage lines cost nothing else.
    let mut out = BatchBuilder::new();
    let o = info::add(
        "#\r\n:::\r\nno colon\r\n# Keyspace\r\ndb0:keys\r\n",
        &[],
        0,
        10,
        &mut out,
    );
    assert_eq!(o.metrics, 1);
}

#[test]
fn a_huge_info_of_unique_and_repeated_keys_stays_bounded_and_fast() {
    let mut text = String::from("# Stats\r\n");
    for i in 0..700_000 {
        text.push_str(&format!("k{i}:1\r\n"));
    }
    for _ in 0..100_000 {
        text.push_str("k1:2\r\n");
    }
    text.push_str("# Keyspace\r\ndb0:keys=1");
    for i in 0..100_000 {
        text.push_str(&format!(",f{i}=1"));
    }
    text.push_str("\r\n");
    let started = std::time::Instant::now();
    let mut out = BatchBuilder::new();
    let o = info::add(&text, &[], 0, 10, &mut out);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let b = out.finish();
    let redis = b.iter().find(|m| m.name() == "redis").unwrap();
    assert_eq!(redis.fields().count(), info::MAX_FIELDS);
    // A repeated key replaces its value.
    assert_eq!(redis.field("k1"), Some(FieldRef::Int(2)));
    let keyspace = b.iter().find(|m| m.name() == "redis_keyspace").unwrap();
    assert_eq!(keyspace.fields().count(), info::MAX_FIELDS);
    // 700000 `k` keys + `keyspace_hitrate` into 2000 slots, and the
    // keyspace line's 100001 fields into 2000.
    assert_eq!(o.fields_dropped, (700_001 - 2000) + (100_001 - 2000));
}
