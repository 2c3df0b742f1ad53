//! `inputs.interrupts` against the kernel's own files read in the same
//! test, Telegraf's schema in both shapes, and the parser on the lines
//! Telegraf's tests use.

use std::collections::HashMap;

use graft_core::FieldRef;

use super::*;

fn proc_input(cpu_as_tag: bool) -> Interrupts {
    Interrupts::new(
        &Config { cpu_as_tag },
        "/proc/interrupts".into(),
        "/proc/softirqs".into(),
    )
}

fn counts(path: &str) -> HashMap<String, Vec<i64>> {
    parse(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.cpus))
        .collect()
}

fn int(v: Option<FieldRef<'_>>) -> i64 {
    match v {
        Some(FieldRef::Int(n)) => n,
        other => panic!("not an int: {other:?}"),
    }
}

#[test]
fn fields_per_cpu_lie_between_two_reads_of_proc() {
    let before = [counts("/proc/interrupts"), counts("/proc/softirqs")];
    let (b, error) = proc_input(false).sample(1);
    let after = [counts("/proc/interrupts"), counts("/proc/softirqs")];
    assert!(error.is_none(), "{error:?}");
    let mut seen = [0, 0];
    for m in b.iter() {
        let file = match m.name() {
            "interrupts" => 0,
            "soft_interrupts" => 1,
            other => panic!("measurement {other}"),
        };
        seen[file] += 1;
        let irq = m.tag("irq").unwrap();
        let (lo, hi) = (&before[file][irq], &after[file][irq]);
        let mut total = 0;
        for (cpu, (lo, hi)) in lo.iter().zip(hi).enumerate() {
            let v = int(m.field(&format!("CPU{cpu}")));
            assert!(lo <= &v && &v <= hi, "{irq} CPU{cpu}: {lo} <= {v} <= {hi}");
            total += v;
        }
        assert_eq!(int(m.field("total")), total, "{irq}");
    }
    assert_eq!(seen, [before[0].len(), before[1].len()]);
}

#[test]
fn schema_is_telegrafs_in_both_shapes() {
    let ncpu = std::fs::read_to_string("/proc/softirqs")
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .count();
    let (b, _) = proc_input(false).sample(1);
    for m in b.iter() {
        let mut want: Vec<String> = (0..ncpu).map(|c| format!("CPU{c}")).collect();
        want.push("total".into());
        let got: Vec<&str> = m.fields().map(|(k, _)| k).collect();
        // A line with fewer columns (ERR, MIS) has fewer CPU fields.
        assert!(got.len() <= want.len() && got.contains(&"total"), "{got:?}");
        assert!(got.iter().all(|k| want.iter().any(|w| w == k)), "{got:?}");
        assert!(m.fields().all(|(_, v)| matches!(v, FieldRef::Int(_))));
        assert!(
            m.tags()
                .all(|(k, _)| ["irq", "type", "device"].contains(&k))
        );
        assert!(m.tag("cpu").is_none());
    }
    let soft = b
        .iter()
        .find(|m| m.name() == "soft_interrupts" && m.tag("irq") == Some("NET_RX"));
    assert!(soft.is_some_and(|m| m.tag("type").is_none() && m.tag("device").is_none()));
    let (tagged, _) = proc_input(true).sample(1);
    assert!(tagged.len() >= b.len());
    for m in tagged.iter() {
        let fields: Vec<_> = m.fields().collect();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].0, "count");
        assert!(matches!(fields[0].1, FieldRef::Int(_)));
        let cpu = m.tag("cpu").unwrap();
        let n: usize = cpu.strip_prefix("cpu").unwrap().parse().unwrap();
        assert!(n < ncpu);
        assert!(m.tag("irq").is_some());
    }
}

#[test]
fn parses_types_and_devices_as_telegraf() {
    let text = "           CPU0       CPU1       \n  0:        134          0   IO-APIC-edge      timer\n  1:          7          3   IO-APIC-edge      i8042\nNMI:          0          0   Non-maskable interrupts\nLOC:    2338608    687177   Local timer interrupts\nMIS:          0\nERR:          0\n 30:   12  x  PCI-MSI  bad line\n";
    let irqs = parse(text).unwrap();
    let got: Vec<(&str, &str, &str, &[i64])> = irqs
        .iter()
        .map(|i| {
            (
                i.id.as_str(),
                i.type_.as_str(),
                i.device.as_str(),
                i.cpus.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("0", "IO-APIC-edge", "timer", &[134, 0][..]),
            ("1", "IO-APIC-edge", "i8042", &[7, 3][..]),
            ("NMI", "Non-maskable interrupts", "", &[0, 0][..]),
            (
                "LOC",
                "Local timer interrupts",
                "",
                &[2_338_608, 687_177][..]
            ),
            ("MIS", "", "", &[0][..]),
            ("ERR", "", "", &[0][..]),
        ]
    );
    assert!(parse("garbage\n 0: 1\n").is_err());
}

#[test]
fn one_missing_file_keeps_the_other() {
    let input = Interrupts::new(
        &Config::default(),
        "/nonexistent/interrupts".into(),
        "/proc/softirqs".into(),
    );
    let (b, error) = input.sample(1);
    assert!(!b.is_empty() && b.iter().all(|m| m.name() == "soft_interrupts"));
    assert!(format!("{:#}", error.unwrap()).contains("/nonexistent/interrupts"));
}

#[test]
fn total_of_huge_counts_saturates_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("interrupts");
    let max = i64::MAX;
    std::fs::write(&path, format!("CPU0 CPU1\n0: {max} {max} IO-APIC timer\n")).unwrap();
    let input = Interrupts::new(&Config::default(), path, dir.path().join("none"));
    let (b, _) = input.sample(1);
    let m = b.iter().find(|m| m.name() == "interrupts").unwrap();
    assert_eq!(int(m.field("total")), i64::MAX);
}
