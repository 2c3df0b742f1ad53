//! `inputs.net`, `netstat`, `nstat` and `procstat` through the real
//! binary: Telegraf's own sample configs pass `graft config check` and
//! `graft test` unchanged, and limit hits reach `inputs.internal`.

use std::process::Command;
use std::time::Duration;

use graft_test_support::{graft, sigterm, wait_with_timeout, workspace_root};

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running graft");
    assert!(
        out.status.success(),
        "graft failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn sample(plugin: &str) -> std::path::PathBuf {
    workspace_root().join(format!("tests/configs/telegraf/{plugin}.conf"))
}

/// Whether this host has an interface that is up and not loopback.
fn has_up_interface() -> bool {
    std::fs::read_dir("/sys/class/net").unwrap().any(|e| {
        let flags = std::fs::read_to_string(e.unwrap().path().join("flags")).unwrap();
        let flags = u64::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
        flags & 1 != 0 && flags & 8 == 0
    })
}

#[test]
fn telegraf_sample_configs_pass_config_check_and_graft_test() {
    for plugin in ["net", "netstat", "nstat", "procstat"] {
        let out = stdout_of(
            graft()
                .args(["config", "check", "--config"])
                .arg(sample(plugin)),
        );
        assert!(
            out.contains("1 inputs, 0 processors, 0 aggregators, 0 outputs"),
            "{plugin}: {out}"
        );
    }
    let test = |plugin: &str| stdout_of(graft().args(["test", "--config"]).arg(sample(plugin)));

    let out = test("net");
    if has_up_interface() {
        let line = out
            .lines()
            .find(|l| l.starts_with("net,") && !l.contains("interface=all"))
            .unwrap_or_else(|| panic!("{out}"));
        // The protocol counters come by default, as the issue asks.
        assert!(
            out.lines().any(|l| l.starts_with("net,")
                && l.contains("interface=all")
                && l.contains("tcp_activeopens=")),
            "{out}"
        );
        assert!(
            line.contains("bytes_recv=") && line.contains("speed="),
            "{line}"
        );
        assert!(!out.contains("interface=lo"), "{out}");
    }

    let out = test("netstat");
    let line = out
        .lines()
        .find(|l| l.starts_with("netstat,") || l.starts_with("netstat "))
        .unwrap_or_else(|| panic!("{out}"));
    for f in [
        "tcp_established=",
        "tcp_listen=",
        "tcp_none=",
        "udp_socket=",
    ] {
        assert!(line.contains(f), "{f}: {line}");
    }

    let out = test("nstat");
    for name in ["netstat", "snmp"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("nstat,") && l.contains(&format!("name={name}"))),
            "{name}: {out}"
        );
    }
    assert!(out.contains("TcpActiveOpens="), "{out}");

    // The sample watches /var/run/nginx.pid: a lookup error when it is not
    // there, which does not fail the gather.
    let out = test("procstat");
    let lookup = out
        .lines()
        .find(|l| l.starts_with("procstat_lookup,"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(lookup.contains("pid_finder=pgrep"), "{lookup}");
    if !std::path::Path::new("/var/run/nginx.pid").exists() {
        assert!(
            lookup.contains("result=lookup_error") && lookup.contains("result_code=1i"),
            "{lookup}"
        );
    }
}

#[test]
fn net_limit_hits_and_bad_lines_reach_inputs_internal() {
    let dir = tempfile::tempdir().unwrap();
    let proc = dir.path().join("proc");
    std::fs::create_dir_all(proc.join("net")).unwrap();
    let mut dev = String::from("Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n");
    for i in 0..10 {
        dev.push_str(&format!("veth{i}: {}\n", vec!["1"; 16].join(" ")));
    }
    dev.push_str("broken line\n");
    std::fs::write(proc.join("net/dev"), dev).unwrap();
    let out = dir.path().join("out.lp");
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
  interval = "200ms"
  round_interval = false
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.net]]
  interfaces = ["veth*"]
  max_interfaces = 3
[[inputs.internal]]
[[outputs.file]]
  files = ["{}"]
"#,
            out.display()
        ),
    )
    .unwrap();
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .env("HOST_PROC", &proc)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    sigterm(&child);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(20)).success());
    let text = std::fs::read_to_string(&out).unwrap();
    let net: Vec<&str> = text.lines().filter(|l| l.starts_with("net,")).collect();
    let gathers = net.len() / 3;
    assert!(gathers >= 2 && net.len().is_multiple_of(3), "{text}");
    let mut names: Vec<&str> = net
        .iter()
        .map(|l| l.split([',', ' ']).nth(1).unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names,
        ["interface=veth0", "interface=veth1", "interface=veth2"]
    );
    let internal = text
        .lines()
        .rfind(|l| l.starts_with("internal_gather,input=net "))
        .unwrap_or_else(|| panic!("{text}"));
    let field = |k: &str| -> i64 {
        let v = internal
            .split([' ', ','])
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap();
        v.trim_end_matches('i').parse().unwrap()
    };
    // 7 interfaces and 1 line skipped at every gather counted so far.
    let hits = field("interfaces_limit_hits");
    assert!(hits >= 7 && hits % 7 == 0, "{internal}");
    assert_eq!(field("malformed_lines"), hits / 7, "{internal}");
}
