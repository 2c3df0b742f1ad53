//! The `graft` binary end to end: the examples as their configs document
//! them, the default run, `graft config`, and shutdown on SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use graft_test_support::{graft, sigterm, stop, wait_with_timeout, wasm_dir, workspace_root};

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

fn example(name: &str) -> std::path::PathBuf {
    workspace_root()
        .join("examples")
        .join(name)
        .join("graft.toml")
}

/// `key=value` pairs of a line-protocol field set.
fn fields(line: &str) -> Vec<(String, String)> {
    let set = line.split(' ').nth(1).expect("a field set");
    set.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// A temporary directory with `graft.toml` holding `text`, in which `OUT`
/// stands for the path of `out.lp` beside it.
fn setup(text: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let config = dir.path().join("graft.toml");
    std::fs::write(&config, text.replace("OUT", &out.display().to_string())).unwrap();
    (dir, config, out)
}

#[test]
fn graft_test_shows_builtin_and_wasm_input_through_wasm_processor() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        r#"
[agent]
  hostname = "box-1"
[[inputs.mem]]
[[inputs.wasm]]
  path = "${GRAFT_WASM_DIR}/example_sine_input.wasm"
[[processors.wasm]]
  path = "${GRAFT_WASM_DIR}/example_rename_processor.wasm"
  [processors.wasm.config]
    from = "used_percent"
    to = "used_pct"
    [processors.wasm.config.tags]
      region = "ap-northeast"
[[outputs.file]]
"#,
    )
    .unwrap();
    let out = stdout_of(graft().args(["test", "--config"]).arg(&config));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let mem = lines
        .iter()
        .find(|l| l.starts_with("mem,"))
        .expect("a mem line");
    assert!(
        mem.starts_with("mem,host=box-1,region=ap-northeast "),
        "{mem}"
    );
    let f = fields(mem);
    assert!(
        f.iter()
            .any(|(k, v)| k == "used_pct" && v.parse::<f64>().is_ok()),
        "{mem}"
    );
    assert!(!f.iter().any(|(k, _)| k == "used_percent"), "{mem}");
    assert_eq!(f.len(), 34, "every other mem field is still there: {mem}");
    let sine = lines
        .iter()
        .find(|l| l.starts_with("sine,"))
        .expect("a sine line");
    assert!(
        sine.starts_with(
            "sine,host=box-1,plugin=inputs.wasm,region=ap-northeast count=0i,value=0 "
        ),
        "{sine}"
    );
}

#[test]
fn rename_example_runs_as_documented() {
    let out = stdout_of(
        graft()
            .args(["test", "--config"])
            .arg(example("rename-processor")),
    );
    assert!(out.starts_with("mem,region=ap-northeast "), "{out}");
    assert!(out.contains(",used_pct="), "{out}");
}

#[test]
fn sine_and_stats_examples_run_as_documented() {
    let out = stdout_of(
        graft()
            .args(["test", "--config"])
            .arg(example("sine-input")),
    );
    assert!(
        out.starts_with("sine,plugin=inputs.wasm::wave count=0i,value=0 "),
        "{out}"
    );
    let out = stdout_of(
        graft()
            .args(["test", "--config"])
            .arg(example("stats-aggregator")),
    );
    assert!(
        out.starts_with(
            "sine,plugin=inputs.wasm value_count=1i,value_max=0,value_mean=0,value_min=0 "
        ),
        "{out}"
    );
}

#[test]
fn jsonl_output_writes_only_into_its_granted_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = graft()
        .args(["run", "--once", "--config"])
        .arg(example("jsonl-output"))
        .env("GRAFT_JSONL_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["name"], "mem");
    assert!(lines[0]["fields"]["total"].as_u64().unwrap() > 0);
    assert!(lines[0]["fields"]["used_percent"].as_f64().is_some());

    // The same plugin pointed at a directory it was not granted fails at init.
    let other = tempfile::tempdir().unwrap();
    let config = other.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            "[[inputs.mem]]\n[[outputs.wasm]]\n  path = \"{}/example_jsonl_output.wasm\"\n  [outputs.wasm.config]\n    dir = \"{}\"\n",
            wasm_dir().display(),
            other.path().display()
        ),
    )
    .unwrap();
    let out = graft()
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("outputs.wasm[0]") && err.contains("config.dir") && err.contains("granted"),
        "{err}"
    );
    assert!(!other.path().join("metrics.jsonl").exists());
}

#[test]
fn sigterm_stops_inputs_drains_and_flushes_then_exits_zero() {
    let (_dir, config, out_file) = setup(
        r#"
[agent]
  interval = "100ms"
  round_interval = false
  flush_interval = "1h"
  omit_hostname = true
[[inputs.wasm]]
  path = "${GRAFT_WASM_DIR}/example_sine_input.wasm"
[[processors.wasm]]
  path = "${GRAFT_WASM_DIR}/example_rename_processor.wasm"
  [processors.wasm.config]
    from = "count"
    to = "seq"
[[outputs.file]]
  files = ["OUT"]
"#,
    );
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !out_file.exists() || std::fs::read_to_string(&out_file).unwrap().is_empty(),
        "nothing is written before the (hour-long) flush interval"
    );
    let (status, stderr) = stop(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}: {stderr}");
    let text = std::fs::read_to_string(&out_file).unwrap();
    let seqs: Vec<i64> = text
        .lines()
        .map(|l| {
            let f = fields(l);
            let seq = &f.iter().find(|(k, _)| k == "seq").expect("renamed field").1;
            seq.trim_end_matches('i').parse().unwrap()
        })
        .collect();
    assert!(seqs.len() >= 5, "only {} metrics: {text}", seqs.len());
    assert_eq!(
        seqs,
        (0..seqs.len() as i64).collect::<Vec<_>>(),
        "every gathered metric, once, in order"
    );
}

#[test]
fn output_selectors_drop_per_output() {
    let dir = tempfile::tempdir().unwrap();
    let (all, some) = (dir.path().join("all.lp"), dir.path().join("some.lp"));
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
  omit_hostname = true
[[inputs.mem]]
[[inputs.wasm]]
  path = "${{GRAFT_WASM_DIR}}/example_sine_input.wasm"
[[outputs.file]]
  files = ["{}"]
[[outputs.file]]
  files = ["{}"]
  namedrop = ["mem"]
  fieldinclude = ["value"]
"#,
            all.display(),
            some.display()
        ),
    )
    .unwrap();
    stdout_of(graft().args(["run", "--once", "--config"]).arg(&config));
    let all = std::fs::read_to_string(all).unwrap();
    let some = std::fs::read_to_string(some).unwrap();
    assert_eq!(all.lines().count(), 2, "{all}");
    assert_eq!(some.lines().count(), 1, "{some}");
    assert!(
        some.starts_with("sine,plugin=inputs.wasm value=0 "),
        "{some}"
    );
}

/// `name,tags field=...` lines of `measurement` whose tag `key` is `value`.
fn last_line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .rfind(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in {text}"))
}

fn int_field(line: &str, key: &str) -> i64 {
    let f = fields(line);
    let v = &f
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .1;
    v.trim_end_matches('i').parse().unwrap()
}

#[test]
fn internal_input_counts_what_moved() {
    let (_dir, config, out_file) = setup(
        r#"
[agent]
  interval = "200ms"
  round_interval = false
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.mem]]
[[inputs.internal]]
[[outputs.file]]
  files = ["OUT"]
  metric_buffer_limit = 5000
"#,
    );
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    sigterm(&child);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(20)).success());
    let text = std::fs::read_to_string(&out_file).unwrap();
    let lines = text.lines().count() as i64;

    let write = last_line(&text, "internal_write,output=file ");
    let written = int_field(write, "metrics_written");
    assert!(
        written > 0 && written < lines,
        "written {written} before the last flush of {lines}"
    );
    assert_eq!(int_field(write, "buffer_limit"), 5000);
    assert_eq!(int_field(write, "metrics_dropped"), 0);
    assert_eq!(int_field(write, "errors"), 0);

    let gather_mem = last_line(&text, "internal_gather,input=mem ");
    let gather_internal = last_line(&text, "internal_gather,input=internal ");
    let agent = last_line(&text, "internal_agent,");
    // One sample: the agent's total is the sum over inputs, and mem gathered
    // one metric per round.
    assert_eq!(
        int_field(agent, "metrics_gathered"),
        int_field(gather_mem, "metrics_gathered") + int_field(gather_internal, "metrics_gathered")
    );
    let mem_lines = text.lines().filter(|l| l.starts_with("mem ")).count() as i64;
    assert!(int_field(gather_mem, "metrics_gathered") >= 3);
    assert!(int_field(gather_mem, "metrics_gathered") <= mem_lines);
    assert!(last_line(&text, "internal_memstats ").contains("rss_bytes="));
}

#[test]
fn telegraf_system_config_runs_unchanged() {
    let config = workspace_root().join("tests/configs/telegraf-system.conf");
    let out = stdout_of(graft().args(["config", "check", "--config"]).arg(&config));
    assert!(
        out.contains("8 inputs, 0 processors, 0 aggregators, 1 outputs"),
        "{out}"
    );
    let out = stdout_of(graft().args(["test", "--config"]).arg(&config));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // cpu needs two samples for usage, so a single gather has none (as in Telegraf).
    for name in [
        "disk",
        "diskio",
        "kernel",
        "mem",
        "processes",
        "swap",
        "system",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name},")) || l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line in\n{out}"));
        assert!(line.contains(&format!("host={}", host.trim())), "{line}");
        assert!(
            line.contains("dc=us-east-1") && line.contains("rack=1a"),
            "{line}"
        );
        let ts: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(
            ts % 1_000_000_000,
            0,
            "timestamps rounded to the second: {line}"
        );
    }
    let out = stdout_of(graft().args(["run", "--once", "--config"]).arg(&config));
    assert!(out.lines().any(|l| l.starts_with("mem,")), "{out}");
}

#[test]
fn unreachable_output_drops_oldest_counts_them_and_delivers_the_rest() {
    const LIMIT: usize = 20;
    let (dir, config, internal_file) = setup(&format!(
        r#"
[agent]
  interval = "100ms"
  round_interval = false
  flush_interval = "300ms"
  omit_hostname = true
[[inputs.wasm]]
  path = "${{GRAFT_WASM_DIR}}/example_sine_input.wasm"
[[inputs.internal]]
[[outputs.wasm]]
  alias = "gated"
  namepass = ["sine"]
  metric_buffer_limit = {LIMIT}
  metric_batch_size = 5
  path = "${{GRAFT_WASM_DIR}}/test_gated_output.wasm"
  [outputs.wasm.config]
    dir = "GATE"
  [outputs.wasm.permissions]
    write_dirs = ["GATE"]
[[outputs.file]]
  namepass = ["internal_write"]
  files = ["OUT"]
"#
    ));
    let gate_dir = dir.path().join("gate");
    std::fs::create_dir(&gate_dir).unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("GATE", &gate_dir.display().to_string());
    std::fs::write(&config, text).unwrap();

    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .spawn()
        .unwrap();
    // Down at 10 metrics/s until the buffer has overflowed by at least 5
    // (waiting on graft's own count, not a fixed time: a loaded machine
    // gathers late).
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&internal_file).unwrap_or_default();
        let dropped = text
            .lines()
            .rfind(|l| l.starts_with("internal_write,alias=gated,output=wasm "))
            .map_or(0, |l| int_field(l, "metrics_dropped"));
        if dropped >= 5 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the buffer never overflowed: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!gate_dir.join("delivered.txt").exists());
    std::fs::write(gate_dir.join("open"), "").unwrap();
    // The output retries with backoff; once it delivers, the buffer drains
    // and no more is dropped. Let a few internal samples see that.
    let start = Instant::now();
    while !gate_dir.join("delivered.txt").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "output never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1200));
    sigterm(&child);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(20)).success());

    let delivered: Vec<u64> = std::fs::read_to_string(gate_dir.join("delivered.txt"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let mut sorted = delivered.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, delivered, "delivered in order, each once");
    let last = *delivered.last().unwrap();
    let missing: Vec<u64> = (0..=last)
        .filter(|n| delivered.binary_search(n).is_err())
        .collect();
    assert!(
        missing.len() >= 5,
        "the buffer overflowed while the output was down: {missing:?}"
    );
    // Drops are the oldest: every missing metric is older than the window
    // the buffer could hold.
    let first = delivered[0];
    assert!(
        *missing.last().unwrap() < first + LIMIT as u64,
        "missing {missing:?}, first delivered {first}"
    );
    // Everything after the overflow window got through.
    assert!(delivered.len() as u64 >= last + 1 - missing.len() as u64);

    let internal = std::fs::read_to_string(&internal_file).unwrap();
    let write = last_line(&internal, "internal_write,alias=gated,output=wasm ");
    assert_eq!(
        int_field(write, "metrics_dropped"),
        missing.len() as i64,
        "counted exactly: {write}"
    );
    assert!(int_field(write, "errors") >= 1);
    assert_eq!(int_field(write, "buffer_limit"), LIMIT as i64);
}

#[test]
fn config_directory_and_environment_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let conf_d = dir.path().join("telegraf.d");
    std::fs::create_dir(&conf_d).unwrap();
    std::fs::write(
        dir.path().join("main.toml"),
        "[global_tags]\n  env = \"$GRAFT_TEST_ENV\"\n[agent]\n  omit_hostname = true\n",
    )
    .unwrap();
    std::fs::write(
        conf_d.join("10-sine.toml"),
        "[[inputs.wasm]]\n  path = \"${GRAFT_WASM_DIR}/example_sine_input.wasm\"\n  [inputs.wasm.config]\n    name = \"${GRAFT_TEST_NAME:-fallback}\"\n",
    )
    .unwrap();
    std::fs::write(
        conf_d.join("20-more.toml"),
        "[[inputs.wasm]]\n  path = \"${GRAFT_WASM_DIR}/example_sine_input.wasm\"\n",
    )
    .unwrap();
    std::fs::write(conf_d.join("ignored.conf"), "this is not read").unwrap();
    let out = stdout_of(
        graft()
            .args(["test", "--config"])
            .arg(dir.path().join("main.toml"))
            .arg("--config-directory")
            .arg(&conf_d)
            .env("GRAFT_TEST_ENV", "staging"),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("fallback,env=staging,plugin=inputs.wasm "),
        "{out}"
    );
    assert!(
        lines[1].starts_with("sine,env=staging,plugin=inputs.wasm "),
        "{out}"
    );
}

#[test]
fn default_run_needs_no_server_and_prints_memory_metrics() {
    let mut child = graft()
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The default gathers every 10 s, aligned; wait for one gather.
    std::thread::sleep(Duration::from_millis(10_500));
    sigterm(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(20));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success());
    let line = out
        .lines()
        .find(|l| l.starts_with("mem,host="))
        .unwrap_or_else(|| panic!("no mem line in {out:?}"));
    assert!(
        line.contains(" total=") || line.contains(",total="),
        "{line}"
    );
}

#[test]
fn sample_config_is_valid() {
    let sample = stdout_of(graft().arg("config"));
    assert!(sample.contains("[[inputs.mem]]") && sample.contains("[agent]"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.toml");
    std::fs::write(&path, &sample).unwrap();
    let out = stdout_of(graft().args(["config", "check", "--config"]).arg(&path));
    assert!(out.contains("configuration OK"), "{out}");
}

#[test]
fn config_check_compiles_and_inits_wasm_plugins() {
    let out = graft()
        .args(["config", "check", "--config"])
        .arg(workspace_root().join("tests/scenarios/bad-plugin-config/graft.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.to"));
    let out = stdout_of(
        graft()
            .args(["config", "check", "--config"])
            .arg(example("stats-aggregator")),
    );
    assert!(
        out.contains("1 inputs, 0 processors, 1 aggregators, 1 outputs"),
        "{out}"
    );
}
