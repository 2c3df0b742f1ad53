use std::sync::Arc;
use std::time::Duration;

use graft_api::counters::Counters;
use graft_api::{Input, MetricSink};

use super::*;

fn exec(text: &str) -> (Exec, Arc<Counters>, MetricSink) {
    let config = crate::config::parse::<Config>(toml::from_str(text).unwrap()).unwrap();
    let exec = Exec::new(&config).unwrap();
    let counters = Arc::new(Counters::default());
    let (sink, rx) = MetricSink::channel(8, Arc::new(|| 0));
    std::mem::forget(rx);
    (exec, counters.clone(), sink.with_counters(counters))
}

async fn started(text: &str) -> (Exec, Arc<Counters>, MetricSink) {
    let (mut e, c, s) = exec(text);
    e.start(s.clone()).await.unwrap();
    (e, c, s)
}

fn count(c: &Counters, name: &str) -> u64 {
    c.snapshot()
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| *v)
}

fn rows(batch: &Batch) -> Vec<String> {
    let mut rows: Vec<String> = batch
        .iter()
        .map(|m| {
            let fields: Vec<String> = m.fields().map(|(k, v)| format!("{k}={v:?}")).collect();
            let tags: Vec<String> = m.tags().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} {} {}", m.name(), tags.join(","), fields.join(","))
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn reads_json_by_default_and_every_other_format() {
    let (mut e, _, _) = started(r#"commands = [["echo", "{\"value\": 3, \"ok\": 1}"]]"#).await;
    assert_eq!(
        rows(&e.gather().await.unwrap()),
        ["exec  ok=Float(1.0),value=Float(3.0)"]
    );

    let (mut e, _, _) = started(
        r#"
        commands = ["echo 'cpu,host=a usage=1i'", ["sh", "-c", "echo \"env v=$FOO\""]]
        environment = ["FOO=42"]
        data_format = "influx"
        "#,
    )
    .await;
    assert_eq!(
        rows(&e.gather().await.unwrap()),
        ["cpu host=a usage=Int(1)", "env  v=Float(42.0)"]
    );

    let (mut e, _, _) = started(
        r#"
        command = "printf 'servers.web01.cpu.idle 97 1700000000\n'"
        data_format = "graphite"
        templates = ["servers.* .host.measurement.field"]
        "#,
    )
    .await;
    assert_eq!(
        rows(&e.gather().await.unwrap()),
        ["cpu host=web01 idle=Float(97.0)"]
    );
}

#[tokio::test]
async fn a_wildcard_runs_every_matching_program() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.sh", "b.sh", "c.txt"] {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"script,name={name} arg=$1\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let (mut e, _, _) = started(&format!(
        "commands = [[\"{}/*.sh\", \"7\"]]\ndata_format = \"influx\"",
        dir.path().display()
    ))
    .await;
    assert_eq!(
        rows(&e.gather().await.unwrap()),
        [
            "script name=a.sh arg=Float(7.0)",
            "script name=b.sh arg=Float(7.0)"
        ]
    );
}

#[tokio::test]
async fn a_failing_command_costs_only_itself_unless_ignore_error() {
    let text = r#"
        commands = [["sh", "-c", "echo 'bad v=1'; echo 'it broke' >&2; exit 3"], ["echo", "good v=1"]]
        data_format = "influx"
    "#;
    let (mut e, c, _) = started(text).await;
    assert_eq!(rows(&e.gather().await.unwrap()), ["good  v=Float(1.0)"]);
    assert_eq!(count(&c, "command_failures"), 1);
    let (mut e, c, _) = started(&format!("{text}\nignore_error = true")).await;
    assert_eq!(rows(&e.gather().await.unwrap()).len(), 2);
    assert_eq!(count(&c, "command_failures"), 0);

    let (mut e, c, _) = started(r#"commands = [["/nonexistent/program"]]"#).await;
    assert!(e.gather().await.unwrap().is_empty());
    assert_eq!(count(&c, "command_failures"), 1);
}

fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

#[tokio::test]
async fn a_hanging_command_is_killed_with_its_children_and_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let (mut e, c, _) = started(&format!(
        r#"
        commands = [["sh", "-c", "sleep 300 & echo $$ $! > {}; wait"], ["echo", "fast v=1"]]
        data_format = "influx"
        timeout = "300ms"
        "#,
        pids.display()
    ))
    .await;
    let batch = e.gather().await.unwrap();
    assert_eq!(
        rows(&batch),
        ["fast  v=Float(1.0)"],
        "the other command's metrics are kept"
    );
    assert_eq!(
        (count(&c, "timeouts"), count(&c, "command_failures")),
        (1, 1)
    );
    let text = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<u32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    // The shell was reaped by graft before gather returned.
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pids[0])).exists(),
        "shell left behind"
    );
    // Its child was killed with the group (and reaped by init).
    let start = std::time::Instant::now();
    while !gone(pids[1]) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "sleep {} survived",
            pids[1]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_flood_is_cut_at_the_bound_and_counted() {
    let (mut e, c, _) = started(
        r#"
        commands = [["sh", "-c", "head -c 100000000 /dev/zero | tr '\\0' 'x'"], ["echo", "ok v=1"]]
        data_format = "influx"
        max_output_size = "1MiB"
        "#,
    )
    .await;
    assert_eq!(rows(&e.gather().await.unwrap()), ["ok  v=Float(1.0)"]);
    assert_eq!(count(&c, "output_size_limit_hits"), 1);
}

#[tokio::test]
async fn bad_lines_cost_only_themselves() {
    let (mut e, _, sink) = started(
        r#"
        commands = [["printf", "a v=1\nthis is not a line\nb v=2\nc v=\n"]]
        data_format = "influx"
        "#,
    )
    .await;
    assert_eq!(
        rows(&e.gather().await.unwrap()),
        ["a  v=Float(1.0)", "b  v=Float(2.0)"]
    );
    assert_eq!(sink.malformed_count(), 2);
}

#[test]
fn config_errors_name_the_key() {
    let error = |text: &str| {
        let table = toml::from_str(text).unwrap();
        format!("{:#}", crate::builtin::validate::<Exec>(table).unwrap_err())
    };
    assert!(error(r#"commands = ["echo 'unclosed"]"#).contains("commands[0]"));
    assert!(error(r#"commands = [[]]"#).contains("commands[0]"));
    assert!(error(r#"command = "" "#).contains("command"));
    assert!(error(r#"environment = ["NOEQUALS"]"#).contains("environment[0]"));
    assert!(error(r#"timeout = "0s""#).contains("timeout"));
    assert!(error("commands = [1]").contains("commands"));
    assert!(error("typo = 1").contains("typo"));
    // Telegraf's sample: no commands is accepted (and gathers nothing).
    crate::builtin::validate::<Exec>(toml::from_str("commands = []").unwrap()).unwrap();
}

#[tokio::test]
async fn telegrafs_readme_example_runs_as_documented() {
    // plugins/inputs/exec/README.md: the script and its configuration.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("test.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'example,tag1=a,tag2=b i=42i,j=43i,k=44i'\n",
    )
    .unwrap();
    let (mut e, _, _) = started(&format!(
        "commands = [\"sh {}\"]\ntimeout = \"5s\"\ndata_format = \"influx\"",
        script.display()
    ))
    .await;
    assert_eq!(
        rows(&e.gather().await.unwrap()),
        ["example tag1=a,tag2=b i=Int(42),j=Int(43),k=Int(44)"]
    );
}

#[test]
fn command_lines_split_as_go_shellquote_with_no_comments() {
    let split = |s: &str| super::config::split_words(s).unwrap();
    assert_eq!(split("echo #1 a#b"), ["echo", "#1", "a#b"]);
    assert_eq!(
        split(r#"sh -c 'x y' "a \"b\" \n" c\ d"#),
        ["sh", "-c", "x y", r#"a "b" \n"#, "c d"]
    );
    assert_eq!(split("a ''  b"), ["a", "", "b"]);
    assert_eq!(super::config::split_words("a 'b"), None);
    assert_eq!(super::config::split_words("a \\"), None);
}
