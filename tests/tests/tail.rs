//! `inputs.tail` in a real agent: a writer appends numbered lines while
//! the file is rotated by rename and by copytruncate; the agent is
//! stopped, more lines are appended, and it is started again. Every
//! number lands exactly once overall.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use graft_test_support::programs::{seq_counts, wait_for};
use graft_test_support::{graft, sigterm, wait_with_timeout};

fn start(dir: &Path, out: &str) -> Child {
    let config = dir.join(format!("{out}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.tail]]
  files = ["{dir}/app.log"]
  initial_read_offset = "saved-or-beginning"
[[outputs.file]]
  files = ["{dir}/{out}"]
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    graft()
        .args(["run", "--config"])
        .arg(&config)
        .env("STATE_DIRECTORY", dir.join("state"))
        .env("GRAFT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{out}.log"))).unwrap())
        .spawn()
        .expect("starting graft")
}

fn append(path: &Path, range: std::ops::Range<i64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in range {
        writeln!(f, "seq n={i}i").unwrap();
    }
}

#[test]
fn rotation_and_restart_lose_and_double_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let mut agent = start(dir.path(), "out1.lp");
    std::thread::sleep(Duration::from_secs(2));
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for i in 0..2000i64 {
        writeln!(f, "seq n={i}i").unwrap();
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        if i == 699 {
            std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
            f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
        }
        if i == 1399 {
            std::thread::sleep(Duration::from_millis(500));
            std::fs::copy(&log, dir.path().join("app.log.2")).unwrap();
            f.set_len(0).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let out1 = dir.path().join("out1.lp");
    wait_for("2000 lines", Duration::from_secs(30), || {
        seq_counts(&out1, "seq", "n").len() == 2000
    });
    sigterm(&agent);
    assert!(wait_with_timeout(&mut agent, Duration::from_secs(15)).success());

    append(&log, 2000..2500);
    let mut agent = start(dir.path(), "out2.lp");
    let out2 = dir.path().join("out2.lp");
    wait_for("500 more lines", Duration::from_secs(30), || {
        seq_counts(&out2, "seq", "n").len() >= 500
    });
    std::thread::sleep(Duration::from_secs(1));
    sigterm(&agent);
    assert!(wait_with_timeout(&mut agent, Duration::from_secs(15)).success());

    let mut counts = seq_counts(&out1, "seq", "n");
    for (n, c) in seq_counts(&out2, "seq", "n") {
        *counts.entry(n).or_default() += c;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    let missing: Vec<_> = (0..2500).filter(|n| !counts.contains_key(n)).collect();
    assert!(
        doubled.is_empty() && missing.is_empty(),
        "doubled {doubled:?}, missing {missing:?}"
    );
    assert_eq!(counts.len(), 2500);
}
