//! Telegraf's own sample configs of `inputs.linux_sysctl_fs`,
//! `inputs.interrupts` and the collectd parser's `inputs.socket_listener`
//! (copied verbatim under `tests/configs/telegraf/`) pass `graft config
//! check`; `graft test` gathers the two system inputs with Telegraf's
//! names, the interrupts sample's `tagdrop` on `irq` applied.

use std::path::PathBuf;
use std::process::Command;

use graft_test_support::{graft, workspace_root};

fn sample(name: &str) -> PathBuf {
    workspace_root().join(format!("tests/configs/telegraf/{name}.conf"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("running graft");
    assert!(
        out.status.success(),
        "graft failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn telegraf_samples_pass_config_check() {
    for name in ["linux_sysctl_fs", "interrupts", "socket_listener_collectd"] {
        let out = run(graft()
            .args(["config", "check", "--config"])
            .arg(sample(name)));
        assert!(out.contains("1 inputs"), "{name}: {out}");
    }
}

#[test]
fn telegraf_samples_gather_with_telegrafs_names() {
    let out = run(graft()
        .args(["test", "--config"])
        .arg(sample("linux_sysctl_fs")));
    let line = out
        .lines()
        .find(|l| l.starts_with("linux_sysctl_fs,") || l.starts_with("linux_sysctl_fs "))
        .unwrap_or_else(|| panic!("no linux_sysctl_fs line: {out}"));
    let file_max = std::fs::read_to_string("/proc/sys/fs/file-nr").unwrap();
    let file_max = file_max.split_whitespace().nth(2).unwrap();
    // Unsigned fields written as Telegraf's file output writes them
    // without `influx_uint_support`: `44222i`.
    assert!(line.contains(&format!("file-max={file_max}i")), "{line}");
    assert!(
        line.contains("inode-nr=") && line.contains("dentry-age-limit="),
        "{line}"
    );

    // The sample's commented tagdrop, switched on, with cpu_as_tag.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sample("interrupts"))
        .unwrap()
        .replace("# cpu_as_tag = false", "cpu_as_tag = true")
        .replace(
            "# [inputs.interrupts.tagdrop]",
            "[inputs.interrupts.tagdrop]",
        )
        .replace("#   irq = [", "  irq = [");
    let config = dir.path().join("interrupts.conf");
    std::fs::write(&config, text).unwrap();
    let out = run(graft().args(["test", "--config"]).arg(&config));
    let soft: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("soft_interrupts,"))
        .collect();
    assert!(!soft.is_empty(), "{out}");
    assert!(out.lines().any(|l| l.starts_with("interrupts,")), "{out}");
    assert!(
        soft.iter()
            .all(|l| l.contains(",cpu=cpu") && l.contains(" count=") && l.contains("i ")),
        "{soft:?}"
    );
    assert!(
        !out.contains("irq=NET_RX") && !out.contains("irq=TASKLET"),
        "tagdrop not applied: {out}"
    );
    assert!(out.contains("irq=TIMER"), "{out}");
}
