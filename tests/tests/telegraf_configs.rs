//! Configs written for Telegraf run under graft unchanged: an old `[agent]`
//! key or a deprecated plugin option is a warning that names the file, the
//! section and the key (and the key to use), and the agent runs; an unknown
//! key in a plugin's own table and an unknown plugin stay errors. Telegraf's
//! own sample config sections of the plugins graft reads
//! (`tests/configs/telegraf/*.conf`, copied verbatim from Telegraf's
//! repository) pass `graft config check` and `graft test`.

use std::path::{Path, PathBuf};
use std::process::Output;

use graft_test_support::graft_agent::points;
use graft_test_support::{graft, workspace_root};

fn run(args: &[&str], config: &Path) -> Output {
    graft()
        .args(args)
        .arg("--config")
        .arg(config)
        .env("GRAFT_LOG", "warn")
        .output()
        .expect("running graft")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A config in the shape of 2017-era guides: `[agent]` keys Telegraf
/// dropped or never read, deprecated plugin options.
const OLD: &str = r#"
[global_tags]
  dc = "eu-1"

[agent]
  interval = "1s"
  round_interval = true
  metric_batch_size = 1000
  metric_buffer_limit = 10000
  collection_jitter = "0s"
  connection_jitter = "1s"
  flush_interval = "1s"
  flush_jitter = "0s"
  flush_buffer_when_full = true
  utc = true
  precision = ""
  debug = false
  quiet = false
  logfile = ""
  hostname = "old-box"
  omit_hostname = false

[[inputs.mem]]

[[inputs.statsd]]
  service_address = "127.0.0.1:0"
  convert_names = false
  parse_data_dog_tags = true
  udp_packet_size = 1500

[[outputs.file]]
  files = ["OUT"]
"#;

#[test]
fn an_old_telegraf_config_runs_and_each_retired_key_is_a_named_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.lp");
    let config = dir.path().join("telegraf.conf");
    std::fs::write(&config, OLD.replace("OUT", &out_file.display().to_string())).unwrap();
    let file = config.display().to_string();

    let check = run(&["config", "check"], &config);
    let said = text(&check);
    assert!(check.status.success(), "{said}");
    for (section, key, hint) in [
        (
            "[agent]",
            "connection_jitter",
            "did you mean `collection_jitter`?",
        ),
        ("[agent]", "flush_buffer_when_full", "ignored"),
        ("[agent]", "utc", "ignored"),
        (
            "inputs.statsd[0]",
            "convert_names",
            "use `metric_separator` instead",
        ),
        (
            "inputs.statsd[0]",
            "parse_data_dog_tags",
            "use `datadog_extensions` instead",
        ),
        ("inputs.statsd[0]", "udp_packet_size", "deprecated"),
    ] {
        let line = said
            .lines()
            .find(|l| l.starts_with("warning: ") && l.contains(&format!("key `{key}`")))
            .unwrap_or_else(|| panic!("no warning for {key}: {said}"));
        assert!(
            line.contains(&file) && line.contains(section) && line.contains(hint),
            "{key}: {line}"
        );
    }

    // The agent runs it: one gather lands in the file, tagged as asked,
    // and the run's log carries the same warnings.
    let once = run(&["run", "--once"], &config);
    let log = text(&once);
    assert!(once.status.success(), "{log}");
    assert!(
        log.contains("connection_jitter") && log.contains(&file),
        "the run's log names the retired key and the file: {log}"
    );
    let got = points(&std::fs::read(&out_file).unwrap());
    let mem = got
        .iter()
        .find(|p| p.name == "mem")
        .unwrap_or_else(|| panic!("no mem metric in {got:?}"));
    assert_eq!(mem.tags.get("host").map(String::as_str), Some("old-box"));
    assert_eq!(mem.tags.get("dc").map(String::as_str), Some("eu-1"));
}

#[test]
fn unknown_plugin_keys_and_plugins_stay_errors_naming_file_section_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for (body, names) in [
        (
            "[[inputs.mem]]\n  colect_extended = true\n",
            ["inputs.mem[0]", "`colect_extended`"],
        ),
        (
            "[[inputs.nosuchplugin]]\n",
            ["inputs.nosuchplugin", "unknown"],
        ),
        (
            "[agent]\n  intervall = \"5s\"\n",
            ["[agent]", "did you mean `interval`?"],
        ),
    ] {
        let config = dir.path().join("bad.conf");
        std::fs::write(
            &config,
            format!("{body}[[outputs.file]]\n  files = [\"stdout\"]\n"),
        )
        .unwrap();
        let out = run(&["config", "check"], &config);
        let said = text(&out);
        assert!(!out.status.success(), "{body} was accepted: {said}");
        assert!(said.contains(&config.display().to_string()), "{said}");
        for n in names {
            assert!(said.contains(n), "{body}: no {n} in {said}");
        }
    }
}

/// The plugins whose Telegraf sample config must be in
/// `tests/configs/telegraf/`: a missing one fails the test, not skips it.
const SAMPLES: &[&str] = &[
    "exec",
    "execd",
    "http",
    "http_response",
    "interrupts",
    "linux_sysctl_fs",
    "mysql",
    "net",
    "netstat",
    "nginx",
    "nstat",
    "procstat",
    "redis",
    "tail",
];

fn samples() -> Vec<PathBuf> {
    let dir = workspace_root().join("tests/configs/telegraf");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

#[test]
fn telegraf_sample_configs_pass_check_and_test_unchanged() {
    let files = samples();
    for name in SAMPLES {
        assert!(
            files
                .iter()
                .any(|f| f.file_stem().is_some_and(|s| s == *name)),
            "no Telegraf sample config for {name} in tests/configs/telegraf"
        );
    }
    for file in &files {
        let check = run(&["config", "check"], file);
        assert!(
            check.status.success(),
            "{}: {}",
            file.display(),
            text(&check)
        );
        // `graft test` gathers once; the servers the samples name are not
        // running here, so a gather may fail, but the command must not.
        let test = run(&["test"], file);
        assert!(test.status.success(), "{}: {}", file.display(), text(&test));
    }
}
