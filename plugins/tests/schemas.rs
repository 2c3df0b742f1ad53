//! Every system input emits exactly Telegraf's measurement, tag keys, field
//! names and field types (shared/reference/telegraf.md, section 2), read
//! from this machine's real kernel.

use std::collections::BTreeMap;

use graft_api::Input;
use graft_core::Batch;
use graft_plugins::inputs::{cpu, disk, diskio, kernel, mem, processes, swap, system};

type Schema = BTreeMap<String, &'static str>;

fn gather(input: &mut Box<dyn Input>) -> Batch {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(input.gather())
        .unwrap()
}

/// Field name -> type over every metric named `name`; tag keys per metric.
fn schema(batch: &Batch, name: &str) -> (Schema, Vec<Vec<String>>) {
    let mut fields = Schema::new();
    let mut tags = Vec::new();
    for m in batch.iter().filter(|m| m.name() == name) {
        for (k, v) in m.fields() {
            let previous = fields.insert(k.to_owned(), v.type_name());
            assert!(
                previous.is_none_or(|p| p == v.type_name()),
                "{name}.{k} changes type"
            );
        }
        tags.push(m.tags().map(|(k, _)| k.to_owned()).collect());
    }
    (fields, tags)
}

fn expect(names: &[&str], ty: &'static str) -> Schema {
    names.iter().map(|n| ((*n).to_owned(), ty)).collect()
}

fn build(f: fn(toml::Table) -> anyhow::Result<Box<dyn Input>>, toml: &str) -> Box<dyn Input> {
    f(toml::from_str(toml).unwrap()).unwrap()
}

#[test]
fn cpu() {
    let mut input = build(cpu::build, "collect_cpu_time = true\nreport_active = true");
    gather(&mut input);
    std::thread::sleep(std::time::Duration::from_millis(250));
    let (fields, tags) = schema(&gather(&mut input), "cpu");
    let mut expected = expect(
        &[
            "usage_user",
            "usage_system",
            "usage_idle",
            "usage_nice",
            "usage_iowait",
            "usage_irq",
            "usage_softirq",
            "usage_steal",
            "usage_guest",
            "usage_guest_nice",
            "usage_active",
        ],
        "float",
    );
    expected.extend(expect(
        &[
            "time_user",
            "time_system",
            "time_idle",
            "time_nice",
            "time_iowait",
            "time_irq",
            "time_softirq",
            "time_steal",
            "time_guest",
            "time_guest_nice",
            "time_active",
        ],
        "float",
    ));
    assert_eq!(fields, expected);
    assert!(tags.iter().all(|t| t == &["cpu"]));
}

#[test]
fn mem() {
    let (fields, tags) = schema(&gather(&mut build(mem::build, "")), "mem");
    let mut expected = expect(
        &[
            "total",
            "available",
            "used",
            "active",
            "buffered",
            "cached",
            "commit_limit",
            "committed_as",
            "dirty",
            "free",
            "high_free",
            "high_total",
            "huge_pages_free",
            "huge_page_size",
            "huge_pages_total",
            "inactive",
            "low_free",
            "low_total",
            "mapped",
            "page_tables",
            "shared",
            "slab",
            "sreclaimable",
            "sunreclaim",
            "swap_cached",
            "swap_free",
            "swap_total",
            "vmalloc_chunk",
            "vmalloc_total",
            "vmalloc_used",
            "write_back_tmp",
            "write_back",
        ],
        "uint",
    );
    expected.extend(expect(&["used_percent", "available_percent"], "float"));
    assert_eq!(fields, expected);
    assert_eq!(tags, [Vec::<String>::new()]);
}

#[test]
fn disk() {
    let (fields, tags) = schema(&gather(&mut build(disk::build, "")), "disk");
    let mut expected = expect(
        &[
            "total",
            "free",
            "used",
            "inodes_total",
            "inodes_free",
            "inodes_used",
        ],
        "uint",
    );
    expected.extend(expect(&["used_percent", "inodes_used_percent"], "float"));
    assert_eq!(fields, expected);
    for t in &tags {
        let base: Vec<&str> = t
            .iter()
            .map(String::as_str)
            .filter(|k| *k != "label")
            .collect();
        assert_eq!(base, ["device", "fstype", "mode", "path"]);
    }
}

#[test]
fn diskio() {
    let mut input = build(diskio::build, "");
    gather(&mut input);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (fields, tags) = schema(&gather(&mut input), "diskio");
    let mut expected = expect(
        &[
            "reads",
            "writes",
            "read_bytes",
            "write_bytes",
            "read_time",
            "write_time",
            "io_time",
            "weighted_io_time",
            "iops_in_progress",
            "merged_reads",
            "merged_writes",
        ],
        "uint",
    );
    expected.insert("io_util".into(), "float");
    // io_await and io_svctm appear only for devices that did I/O in between.
    let optional = expect(&["io_await", "io_svctm"], "float");
    let without: Schema = fields
        .into_iter()
        .filter(|(k, _)| !optional.contains_key(k))
        .collect();
    assert_eq!(without, expected);
    assert!(tags.iter().all(|t| t == &["name"]));
}

#[test]
fn kernel() {
    let (fields, tags) = schema(&gather(&mut build(kernel::build, "")), "kernel");
    let mut expected = expect(
        &[
            "boot_time",
            "context_switches",
            "interrupts",
            "processes_forked",
            "entropy_avail",
        ],
        "int",
    );
    if fields.contains_key("disk_pages_in") {
        expected.extend(expect(&["disk_pages_in", "disk_pages_out"], "int"));
    }
    assert_eq!(fields, expected);
    assert_eq!(tags, [Vec::<String>::new()]);
}

#[test]
fn processes() {
    let (mut fields, tags) = schema(&gather(&mut build(processes::build, "")), "processes");
    fields.remove("parked"); // only while a process is parked
    let expected = expect(
        &[
            "running",
            "sleeping",
            "blocked",
            "zombies",
            "dead",
            "stopped",
            "paging",
            "idle",
            "unknown",
            "total",
            "total_threads",
        ],
        "int",
    );
    assert_eq!(fields, expected);
    assert_eq!(tags, [Vec::<String>::new()]);
}

#[test]
fn swap() {
    let (fields, tags) = schema(&gather(&mut build(swap::build, "")), "swap");
    let mut expected = expect(&["total", "free", "used", "in", "out"], "uint");
    expected.insert("used_percent".into(), "float");
    assert_eq!(fields, expected);
    assert_eq!(tags.len(), 2, "a gauge line and a counter line");
}

#[test]
fn system() {
    let (mut fields, tags) = schema(&gather(&mut build(system::build, "")), "system");
    // Only when utmp is readable.
    for k in ["n_users", "n_unique_users"] {
        if let Some(t) = fields.remove(k) {
            assert_eq!(t, "int");
        }
    }
    let mut expected = expect(&["load1", "load5", "load15"], "float");
    expected.extend(expect(&["n_cpus", "n_physical_cpus"], "int"));
    expected.insert("uptime".into(), "uint");
    expected.insert("uptime_format".into(), "string");
    assert_eq!(fields, expected);
    assert_eq!(tags.len(), 3, "gauge, counter and untyped lines");
}
