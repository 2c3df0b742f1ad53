//! Tests of `inputs.net` against the kernel's `/proc/net/dev` and
//! `/proc/net/snmp`, and against crafted files.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use graft_core::FieldRef;

use super::*;

const DEV_FIELDS: [&str; 8] = [
    "bytes_sent",
    "bytes_recv",
    "packets_sent",
    "packets_recv",
    "err_in",
    "err_out",
    "drop_in",
    "drop_out",
];

/// `lo` alone, without the `interface=all` metric.
fn lo_config() -> Config {
    Config {
        interfaces: vec!["lo".into()],
        ignore_protocol_stats: true,
        ..Config::default()
    }
}

/// The counters of `lo` in `/proc/net/dev`, by Telegraf's field name.
fn lo_counters() -> HashMap<&'static str, u64> {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap();
    let d = parse_dev(&text)
        .filter_map(Result::ok)
        .find(|d| d.name == "lo")
        .unwrap();
    let v = [
        d.bytes_sent,
        d.bytes_recv,
        d.packets_sent,
        d.packets_recv,
        d.err_in,
        d.err_out,
        d.drop_in,
        d.drop_out,
    ];
    DEV_FIELDS.into_iter().zip(v).collect()
}

/// Loopback traffic: a TCP connection that carries `n` bytes.
fn loopback_traffic(n: usize) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    c.write_all(&vec![7u8; n]).unwrap();
    drop(c);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), n);
}

#[test]
fn lo_counters_lie_between_two_readings_of_proc_net_dev() {
    loopback_traffic(100_000);
    let mut net = Net::new(&lo_config()).unwrap();
    let before = lo_counters();
    let batch = net.sample(1).unwrap();
    loopback_traffic(100_000);
    let after = lo_counters();
    assert!(after["bytes_sent"] >= before["bytes_sent"] + 100_000);
    assert_eq!(batch.len(), 1);
    let m = batch.get(0);
    assert_eq!((m.name(), m.tag("interface")), ("net", Some("lo")));
    assert_eq!(m.kind(), MetricKind::Counter);
    for f in DEV_FIELDS {
        let Some(FieldRef::Uint(v)) = m.field(f) else {
            panic!("{f}: {:?}", m.field(f))
        };
        assert!(
            before[f] <= v && v <= after[f],
            "{f}: {before:?} {v} {after:?}"
        );
    }
    assert!(matches!(m.field("speed"), Some(FieldRef::Int(_))));
}

#[test]
fn default_leaves_out_loopback_and_takes_every_up_interface() {
    let mut net = Net::new(&Config::default()).unwrap();
    let batch = net.sample(1).unwrap();
    let names: Vec<&str> = batch.iter().filter_map(|m| m.tag("interface")).collect();
    assert!(!names.contains(&"lo"), "{names:?}");
    for entry in std::fs::read_dir("/sys/class/net").unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
        let listed = parse_dev(&dev)
            .filter_map(Result::ok)
            .any(|d| d.name == name);
        assert_eq!(
            names.contains(&name.as_str()),
            listed && up_not_loopback(Path::new("/sys"), &name),
            "{name}"
        );
    }
}

/// The `/proc/net/snmp` values by Telegraf's field name.
fn snmp() -> HashMap<String, i64> {
    let (fields, bad) = parse_snmp(&std::fs::read_to_string("/proc/net/snmp").unwrap());
    assert_eq!(bad, 0);
    fields.into_iter().collect()
}

#[test]
fn protocol_stats_by_default_and_not_when_ignore_protocol_stats_is_true() {
    for (table, expected) in [
        ("interfaces = [\"lo\"]", true),
        ("interfaces = [\"lo\"]\nignore_protocol_stats = false", true),
        ("interfaces = [\"lo\"]\nignore_protocol_stats = true", false),
    ] {
        let config: Config = toml::from_str(table).unwrap();
        let mut net = Net::new(&config).unwrap();
        let batch = net.sample(1).unwrap();
        let all = batch.iter().any(|m| m.tag("interface") == Some("all"));
        assert_eq!(all, expected, "{table}");
    }
}

#[test]
fn interface_all_lies_between_two_readings_of_proc_net_snmp() {
    let mut net = Net::new(&Config {
        ignore_protocol_stats: false,
        ..lo_config()
    })
    .unwrap();
    loopback_traffic(10);
    let before = snmp();
    let batch = net.sample(1).unwrap();
    loopback_traffic(10);
    let after = snmp();
    assert!(after["tcp_activeopens"] > before["tcp_activeopens"]);
    let m = batch
        .iter()
        .find(|m| m.tag("interface") == Some("all"))
        .unwrap();
    assert_eq!(m.kind(), MetricKind::Untyped);
    assert_eq!(m.fields().count(), before.len());
    for (k, b) in &before {
        let Some(FieldRef::Int(v)) = m.field(k) else {
            panic!("{k}: {:?}", m.field(k))
        };
        let (lo, hi) = (*b.min(&after[k]), *b.max(&after[k]));
        assert!(lo <= v && v <= hi, "{k}: {b} {v} {}", after[k]);
    }
    for k in [
        "ip_forwarding",
        "icmp_inmsgs",
        "tcp_currestab",
        "udp_indatagrams",
    ] {
        assert!(m.field(k).is_some(), "{k}");
    }
}

/// A fake `HOST_PROC`/`HOST_SYS` pair: `net/dev` and `net/snmp` as given,
/// and for each `(name, flags)` a `class/net/<name>/flags` file.
fn fake(dev: &str, snmp: &str, sys: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (proc, sysd) = (dir.path().join("proc"), dir.path().join("sys"));
    std::fs::create_dir_all(proc.join("net")).unwrap();
    std::fs::write(proc.join("net/dev"), dev).unwrap();
    std::fs::write(proc.join("net/snmp"), snmp).unwrap();
    for (name, flags) in sys {
        let d = sysd.join("class/net").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("flags"), flags).unwrap();
        std::fs::write(d.join("speed"), "1000\n").unwrap();
    }
    (dir, proc, sysd)
}

const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

fn dev_line(name: &str, base: u64) -> String {
    let v: Vec<String> = (0..16).map(|i| (base + i).to_string()).collect();
    format!("{name:>6}: {}\n", v.join(" "))
}

#[test]
fn up_and_loopback_flags_decide_the_default_and_speed_is_read() {
    let dev = format!(
        "{HEADER}{}{}{}{}",
        dev_line("lo", 0),
        dev_line("eth0", 100),
        dev_line("eth1", 200),
        dev_line("gone0", 300)
    );
    let (_d, proc, sys) = fake(
        &dev,
        "",
        &[("lo", "0x9\n"), ("eth0", "0x1003\n"), ("eth1", "0x1002\n")],
    );
    let mut net = Net::with_roots(&Config::default(), proc, sys).unwrap();
    let batch = net.sample(1).unwrap();
    assert_eq!(batch.len(), 1);
    let m = batch.get(0);
    assert_eq!(m.tag("interface"), Some("eth0"));
    assert_eq!(m.field("bytes_recv"), Some(FieldRef::Uint(100)));
    assert_eq!(m.field("packets_recv"), Some(FieldRef::Uint(101)));
    assert_eq!(m.field("err_in"), Some(FieldRef::Uint(102)));
    assert_eq!(m.field("drop_in"), Some(FieldRef::Uint(103)));
    assert_eq!(m.field("bytes_sent"), Some(FieldRef::Uint(108)));
    assert_eq!(m.field("packets_sent"), Some(FieldRef::Uint(109)));
    assert_eq!(m.field("err_out"), Some(FieldRef::Uint(110)));
    assert_eq!(m.field("drop_out"), Some(FieldRef::Uint(111)));
    assert_eq!(m.field("speed"), Some(FieldRef::Int(1000)));
}

#[test]
fn globs_take_named_interfaces_whatever_their_state() {
    let dev = format!(
        "{HEADER}{}{}{}",
        dev_line("lo", 0),
        dev_line("enp0s1", 100),
        dev_line("enp0s3", 200)
    );
    let (_d, proc, sys) = fake(&dev, "", &[]);
    let config = Config {
        interfaces: vec!["enp0s[0-1]".into(), "l?".into()],
        ..Config::default()
    };
    let mut net = Net::with_roots(&config, proc, sys).unwrap();
    let batch = net.sample(1).unwrap();
    let names: Vec<_> = batch.iter().filter_map(|m| m.tag("interface")).collect();
    assert_eq!(names, ["lo", "enp0s1"]);
    // No sysfs entry: speed is -1, as in Telegraf.
    assert_eq!(batch.get(0).field("speed"), Some(FieldRef::Int(-1)));
}

#[test]
fn ten_thousand_interfaces_are_bounded_and_counted_bad_lines_skipped() {
    let mut dev = HEADER.to_string();
    for i in 0..10_000 {
        dev.push_str(&dev_line(&format!("veth{i}"), i));
    }
    dev.push_str("garbage without a colon\n");
    dev.push_str("  bad0: 1 2 three 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
    dev.push_str("short0: 1 2 3\n");
    dev.push_str("we ird,na=me\"x: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
    let (_d, proc, sys) = fake(&dev, "", &[]);
    let config = Config {
        interfaces: vec!["*".into()],
        max_interfaces: 100,
        ..Config::default()
    };
    let mut net = Net::with_roots(&config, proc, sys).unwrap();
    let batch = net.sample(1).unwrap();
    assert_eq!(batch.len(), 100);
    let distinct: std::collections::HashSet<_> =
        batch.iter().filter_map(|m| m.tag("interface")).collect();
    assert_eq!(distinct.len(), 100);
    let hits = net.skipped().interfaces_limit_hits.load(Ordering::Relaxed);
    assert_eq!(hits, 10_000 + 1 - 100);
    assert_eq!(net.skipped().malformed_lines.load(Ordering::Relaxed), 3);

    // With room for all: the weird name is kept as written.
    let config = Config {
        interfaces: vec!["*".into()],
        ..Config::default()
    };
    let (_d, proc, sys) = fake(&dev, "", &[]);
    let mut net = Net::with_roots(&config, proc, sys).unwrap();
    let batch = net.sample(1).unwrap();
    assert_eq!(batch.len(), DEFAULT_MAX_INTERFACES);
    let config = Config {
        interfaces: vec!["we*".into()],
        ..Config::default()
    };
    let (_d, proc, sys) = fake(&dev, "", &[]);
    let batch = Net::with_roots(&config, proc, sys)
        .unwrap()
        .sample(1)
        .unwrap();
    assert_eq!(batch.get(0).tag("interface"), Some("we ird,na=me\"x"));
}

#[test]
fn snmp_lines_that_do_not_pair_up_are_counted() {
    let snmp = "Tcp: RtoAlgorithm MaxConn\nTcp: 1 -1\nUdp: InDatagrams NoPorts\nUdp: 5\nIp: Forwarding\nIcmp: 1\nIcmp: InMsgs\nIcmp: x\n";
    let (fields, bad) = parse_snmp(snmp);
    assert_eq!(
        fields,
        [
            ("tcp_rtoalgorithm".to_string(), 1),
            ("tcp_maxconn".into(), -1)
        ]
    );
    assert_eq!(bad, 3);
}

#[test]
fn bad_globs_and_limits_are_named() {
    let err = Net::new(&Config {
        interfaces: vec!["eth0".into(), "[".into()],
        ..Config::default()
    })
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("interfaces[1]"), "{err:#}");
    let err = Net::new(&Config {
        max_interfaces: 0,
        ..Config::default()
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("max_interfaces"), "{err}");
}

/// Telegraf's `net` fields (README; gopsutil's uint64 counters, int64 speed).
const SCHEMA: [(&str, &str); 9] = [
    ("bytes_sent", "uint"),
    ("bytes_recv", "uint"),
    ("packets_sent", "uint"),
    ("packets_recv", "uint"),
    ("err_in", "uint"),
    ("err_out", "uint"),
    ("drop_in", "uint"),
    ("drop_out", "uint"),
    ("speed", "int"),
];

#[test]
fn schema_matches_telegrafs_names_and_types() {
    let batch = Net::new(&lo_config()).unwrap().sample(1).unwrap();
    let m = batch.get(0);
    let got: Vec<(&str, &str)> = m.fields().map(|(k, v)| (k, v.type_name())).collect();
    assert_eq!(got.len(), SCHEMA.len(), "{got:?}");
    for f in SCHEMA {
        assert!(got.contains(&f), "{f:?}: {got:?}");
    }
    assert_eq!(m.tags().map(|(k, _)| k).collect::<Vec<_>>(), ["interface"]);
}
