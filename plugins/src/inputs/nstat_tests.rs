//! Tests of `inputs.nstat` against the kernel's files read around the
//! gather, and against crafted files.

use std::collections::HashMap;

use graft_core::FieldRef;

use super::*;

/// Values that go down as well as up: compared for presence only.
const GAUGES: [&str; 1] = ["TcpCurrEstab"];

fn kernel(file: &str) -> HashMap<String, i64> {
    let text = std::fs::read_to_string(format!("/proc/net/{file}")).unwrap();
    let t = if file == "snmp6" {
        parse_pairs(&text, true)
    } else {
        parse_paired(&text, true)
    };
    assert_eq!(t.malformed, 0, "{file}");
    t.fields.into_iter().collect()
}

fn loopback_connection() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let _s = l.accept().unwrap();
}

#[test]
fn values_lie_between_two_readings_of_each_file() {
    let mut nstat = Nstat::new(&Config {
        dump_zeros: true,
        ..Config::default()
    })
    .unwrap();
    loopback_connection();
    let files: Vec<&str> = ["netstat", "snmp", "snmp6"]
        .into_iter()
        .filter(|f| std::path::Path::new(&format!("/proc/net/{f}")).exists())
        .collect();
    let before: Vec<_> = files.iter().map(|f| kernel(f)).collect();
    let batch = nstat.sample(1).unwrap();
    loopback_connection();
    let after: Vec<_> = files.iter().map(|f| kernel(f)).collect();
    assert_eq!(batch.len(), files.len());
    for (i, file) in files.iter().enumerate() {
        let m = batch.iter().find(|m| m.tag("name") == Some(file)).unwrap();
        assert_eq!(m.name(), "nstat");
        assert_eq!(m.fields().count(), before[i].len(), "{file}");
        for (k, b) in &before[i] {
            let Some(FieldRef::Int(v)) = m.field(k) else {
                panic!("{file} {k}: {:?}", m.field(k))
            };
            if GAUGES.contains(&k.as_str()) {
                continue;
            }
            let a = after[i][k];
            assert!(
                b.min(&a) <= &v && &v <= b.max(&a),
                "{file} {k}: {b} {v} {a}"
            );
        }
    }
    let snmp = batch
        .iter()
        .find(|m| m.tag("name") == Some("snmp"))
        .unwrap();
    for k in ["IpForwarding", "TcpActiveOpens", "UdpInDatagrams"] {
        assert!(snmp.field(k).is_some(), "{k}");
    }
    assert_eq!(nstat.skipped(), (0, 0));
}

#[test]
fn zeros_are_left_out_unless_dump_zeros() {
    // The kernel's files: a metric per file, none of its fields zero, and
    // values that are never zero (the default TTL) present.
    let mut nstat = Nstat::new(&Config::default()).unwrap();
    let batch = nstat.sample(1).unwrap();
    let snmp = batch
        .iter()
        .find(|m| m.tag("name") == Some("snmp"))
        .unwrap();
    assert!(matches!(snmp.field("IpDefaultTTL"), Some(FieldRef::Int(v)) if v > 0));
    assert!(batch.iter().any(|m| m.tag("name") == Some("netstat")));
    for m in batch.iter() {
        assert!(m.fields().count() > 0, "{:?}", m.tag("name"));
        assert!(m.fields().all(|(_, v)| v != FieldRef::Int(0)));
    }
    // Crafted files: the zero counters appear only with dump_zeros.
    let zero_keys = ["TcpExtSyncookiesSent", "Ip6InHdrErrors"];
    for dump_zeros in [false, true] {
        let (_dir, config) = crafted();
        let mut nstat = Nstat::new(&Config {
            dump_zeros,
            ..config
        })
        .unwrap();
        let b = nstat.sample(1).unwrap();
        let field = |k: &str| b.iter().find_map(|m| m.field(k));
        assert_eq!(field("TcpExtEmbryonicRsts"), Some(FieldRef::Int(5)));
        assert_eq!(field("Ip6InReceives"), Some(FieldRef::Int(7)));
        for k in zero_keys {
            let expected = dump_zeros.then_some(FieldRef::Int(0));
            assert_eq!(field(k), expected, "{k} with dump_zeros = {dump_zeros}");
        }
    }
}

fn crafted() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    std::fs::write(
        p("netstat"),
        "TcpExt: SyncookiesSent EmbryonicRsts\nTcpExt: 0 5\nIpExt: InNoRoutes\nIpExt: x\nMptcpExt: A B\nMptcpExt: 1\n",
    )
    .unwrap();
    std::fs::write(p("snmp"), "Ip: Forwarding DefaultTTL\nIp: 1 64\n").unwrap();
    std::fs::write(
        p("snmp6"),
        "Ip6InReceives  7\nIp6InHdrErrors 0\nbroken line here\n",
    )
    .unwrap();
    let config = Config {
        proc_net_netstat: p("netstat"),
        proc_net_snmp: p("snmp"),
        proc_net_snmp6: p("snmp6"),
        ..Config::default()
    };
    (dir, config)
}

#[test]
fn crafted_files_give_named_fields_and_bad_parts_are_counted() {
    let (_dir, config) = crafted();
    let mut nstat = Nstat::new(&Config {
        dump_zeros: true,
        ..config
    })
    .unwrap();
    let b = nstat.sample(1).unwrap();
    let get = |name: &str| b.iter().find(|m| m.tag("name") == Some(name)).unwrap();
    let netstat = get("netstat");
    assert_eq!(
        netstat.field("TcpExtSyncookiesSent"),
        Some(FieldRef::Int(0))
    );
    assert_eq!(netstat.field("TcpExtEmbryonicRsts"), Some(FieldRef::Int(5)));
    assert_eq!(netstat.fields().count(), 2);
    assert_eq!(get("snmp").field("IpDefaultTTL"), Some(FieldRef::Int(64)));
    assert_eq!(get("snmp6").field("Ip6InReceives"), Some(FieldRef::Int(7)));
    assert_eq!(get("snmp6").field("Ip6InHdrErrors"), Some(FieldRef::Int(0)));
    // "x", the MptcpExt pair of unequal length, the broken snmp6 line.
    assert_eq!(nstat.skipped(), (3, 0));
}

#[test]
fn max_fields_bounds_each_file_and_snmp6_may_be_missing() {
    let (dir, config) = crafted();
    std::fs::remove_file(dir.path().join("snmp6")).unwrap();
    let mut nstat = Nstat::new(&Config {
        dump_zeros: true,
        max_fields: 1,
        ..config
    })
    .unwrap();
    let b = nstat.sample(1).unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.iter().all(|m| m.fields().count() == 1));
    // netstat: 2 fields, snmp: 2 fields, one over each.
    assert_eq!(nstat.skipped().1, 2);
}

#[test]
fn a_missing_snmp_file_is_an_error_naming_it() {
    let (dir, config) = crafted();
    std::fs::remove_file(dir.path().join("snmp")).unwrap();
    let err = Nstat::new(&config).unwrap().sample(1).err().unwrap();
    assert!(format!("{err:#}").contains("snmp"), "{err:#}");
}
