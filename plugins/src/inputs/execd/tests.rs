use std::sync::Arc;
use std::time::Duration;

use graft_api::counters::Counters;
use graft_api::sink::Received;
use graft_api::{Input, MetricSink};
use tokio::sync::mpsc;

use super::*;

struct Harness {
    execd: Execd,
    rx: mpsc::Receiver<Received>,
    counters: Arc<Counters>,
    sink: MetricSink,
}

async fn started(text: &str) -> Harness {
    let config = crate::config::parse::<Config>(toml::from_str(text).unwrap()).unwrap();
    let mut execd = Execd::new(&config).unwrap();
    let counters = Arc::new(Counters::default());
    let (sink, rx) = MetricSink::channel(64, Arc::new(|| 0));
    let sink = sink.with_counters(counters.clone());
    execd.start(sink.clone()).await.unwrap();
    Harness {
        execd,
        rx,
        counters,
        sink,
    }
}

impl Harness {
    /// The next `n` metrics, as `name field=value`.
    async fn take(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            let received = tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {out:?} came"))
                .expect("the sink is open");
            for m in received.batch.iter() {
                let fields: Vec<String> = m.fields().map(|(k, v)| format!("{k}={v:?}")).collect();
                out.push(format!("{} {}", m.name(), fields.join(",")));
            }
        }
        out
    }

    fn count(&self, name: &str) -> u64 {
        self.counters
            .snapshot()
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    async fn pid(&self) -> u32 {
        for _ in 0..200 {
            if let Some(pid) = self.execd.pid() {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the program never ran");
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

#[tokio::test]
async fn reads_lines_as_printed_and_ends_the_program_at_stop() {
    let mut h = started(
        r#"command = ["sh", "-c", "for i in 1 2 3; do echo \"seq n=${i}i\"; done; sleep 300 & wait"]"#,
    )
    .await;
    assert_eq!(
        h.take(3).await,
        ["seq n=Int(1)", "seq n=Int(2)", "seq n=Int(3)"]
    );
    let pid = h.pid().await;
    h.execd.stop().await;
    assert!(!alive(pid), "the program outlived stop");
}

#[tokio::test]
async fn a_program_killed_from_outside_is_restarted_and_counted() {
    let mut h = started(
        r#"
        command = ["sh", "-c", "echo \"run pid=$$i\"; exec sleep 300"]
        restart_delay = "100ms"
        "#,
    )
    .await;
    let first = h.take(1).await;
    let pid = h.pid().await;
    assert_eq!(first, [format!("run pid=Int({pid})")]);
    crate::child::signal_one(pid, rustix::process::Signal::KILL).unwrap();
    let second = h.take(1).await;
    assert_ne!(second, first, "a new process runs");
    assert_eq!(h.count("restarts"), 1);
    h.execd.stop().await;
}

#[tokio::test]
async fn stdin_mode_writes_a_newline_at_every_gather() {
    let mut h = started(
        r#"
        command = ["sh", "-c", "n=0; while read x; do n=$((n+1)); echo \"tick n=${n}i\"; done"]
        signal = "STDIN"
        "#,
    )
    .await;
    h.pid().await;
    for _ in 0..3 {
        assert!(h.execd.gather().await.unwrap().is_empty());
    }
    assert_eq!(
        h.take(3).await,
        ["tick n=Int(1)", "tick n=Int(2)", "tick n=Int(3)"]
    );
    h.execd.stop().await;
}

#[tokio::test]
async fn sighup_mode_signals_the_program_at_every_gather() {
    let mut h = started(
        r#"
        command = ["sh", "-c", "trap 'echo hup v=1i' HUP; echo ready v=1i; while :; do sleep 0.05; done"]
        signal = "SIGHUP"
        "#,
    )
    .await;
    assert_eq!(h.take(1).await, ["ready v=Int(1)"]);
    h.execd.gather().await.unwrap();
    assert_eq!(h.take(1).await, ["hup v=Int(1)"]);
    h.execd.stop().await;
}

#[tokio::test]
async fn long_and_bad_lines_cost_only_themselves() {
    let long = "x".repeat(100);
    let mut h = started(&format!(
        r#"
        command = ["sh", "-c", "printf 'a v=1\n{long} v=1\nnot line protocol\nb v=2\n'; sleep 300"]
        buffer_size = 32
        "#
    ))
    .await;
    assert_eq!(h.take(2).await, ["a v=Float(1.0)", "b v=Float(2.0)"]);
    assert_eq!(h.count("line_size_limit_hits"), 1);
    assert_eq!(h.sink.malformed_count(), 1);
    h.execd.stop().await;
}

#[tokio::test]
async fn stop_on_error_leaves_a_failed_program_stopped() {
    let h = started(
        r#"
        command = ["sh", "-c", "echo 'E! it broke' >&2; exit 3"]
        restart_delay = "10ms"
        stop_on_error = true
        "#,
    )
    .await;
    let (_, task) = h.execd.task.as_ref().unwrap();
    for _ in 0..500 {
        if task.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(task.is_finished());
    assert_eq!(h.count("restarts"), 0);
}

#[tokio::test]
async fn a_flood_on_stderr_is_logged_at_a_bounded_rate() {
    let mut h = started(
        r#"command = ["sh", "-c", "i=0; while [ $i -lt 300 ]; do echo noise >&2; i=$((i+1)); done; echo done v=1i; sleep 300"]"#,
    )
    .await;
    h.take(1).await;
    for _ in 0..500 {
        if h.count("log_suppressed") == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.count("log_suppressed"), 200);
    h.execd.stop().await;
}

#[test]
fn config_errors_name_the_key() {
    let error = |text: &str| {
        let table = toml::from_str(text).unwrap();
        format!(
            "{:#}",
            crate::builtin::validate::<Execd>(table).unwrap_err()
        )
    };
    assert!(error("").contains("command"));
    assert!(
        error(
            r#"command = ["x"]
signal = "SIGKILL""#
        )
        .contains("signal")
    );
    assert!(
        error(
            r#"command = ["x"]
buffer_size = 8"#
        )
        .contains("buffer_size")
    );
    assert!(
        error(
            r#"command = ["x"]
environment = ["X"]"#
        )
        .contains("environment[0]")
    );
    assert!(
        error(
            r#"command = ["x"]
typo = 1"#
        )
        .contains("typo")
    );
}

#[tokio::test]
async fn telegrafs_stdin_example_counts_at_every_gather() {
    // plugins/inputs/execd/examples/count.sh, verbatim.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("count.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\n## Example in bash using STDIN signaling\n\ncounter=0\n\nwhile read -r _; do\n    echo \"counter_bash count=${counter}\"\n    counter=$((counter+1))\ndone\n\ntrap \"echo terminate 1>&2\" EXIT\n",
    )
    .unwrap();
    let mut h = started(&format!(
        "command = [\"sh\", \"{}\"]\nsignal = \"STDIN\"",
        script.display()
    ))
    .await;
    h.pid().await;
    h.execd.gather().await.unwrap();
    h.execd.gather().await.unwrap();
    assert_eq!(
        h.take(2).await,
        [
            "counter_bash count=Float(0.0)",
            "counter_bash count=Float(1.0)"
        ]
    );
    h.execd.stop().await;
}

#[tokio::test]
async fn stop_returns_when_a_descendant_left_the_group_holding_stdout() {
    let mut h =
        started(r#"command = ["sh", "-c", "echo 'seq n=1i'; setsid sleep 20 & sleep 300"]"#).await;
    assert_eq!(h.take(1).await, ["seq n=Int(1)"]);
    tokio::time::timeout(Duration::from_secs(10), h.execd.stop())
        .await
        .expect("stop waited on a descendant's stdout");
}
