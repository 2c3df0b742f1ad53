//! `inputs.exec` in a real agent: a command that hangs past its timeout,
//! one that prints 100 MB, one that exits non-zero and one that prints bad
//! lines among good ones run beside a good command at every interval; the
//! good metrics keep landing, each failure is counted in
//! `internal_gather`, graft's memory stays bounded, and no process is left
//! behind.

use std::time::Duration;

use graft_test_support::graft_agent::{Agent, internal_gather};
use graft_test_support::programs::{children, gone, status_kb, wait_for};

#[test]
fn hang_flood_failure_and_bad_lines_cost_only_their_command() {
    let mut agent = Agent::start(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.exec]]
  commands = [
    ["sh", "-c", "sleep 300 & echo $! >> {dir}/sleepers; wait"],
    ["sh", "-c", "head -c 100000000 /dev/zero | tr '\\0' 'x'"],
    ["sh", "-c", "echo 'failed value=1i'; echo 'no such thing' >&2; exit 2"],
    ["printf", "good value=1i\nthis is not line protocol\nalso_good value=2i\n"],
  ]
  timeout = "1500ms"
  data_format = "influx"
[[inputs.internal]]
[[outputs.file]]
  files = ["{dir}/out.lp"]
"#,
    );
    let pid = agent.pid().expect("graft's pid");
    let counters = || internal_gather(&agent.path("out.lp"), "exec");
    wait_for("three rounds counted", Duration::from_secs(40), || {
        counters().is_some_and(|g| g.int("timeouts").unwrap_or(0) >= 3)
    });
    let g = counters().unwrap();
    let timeouts = g.int("timeouts").unwrap();
    assert!(
        g.int("output_size_limit_hits").unwrap() >= timeouts - 1,
        "{g:?}"
    );
    // Each round: the hang, the flood and the exit 2.
    assert!(
        g.int("command_failures").unwrap() >= 3 * (timeouts - 1),
        "{g:?}"
    );
    assert!(g.int("parse_errors").unwrap() >= timeouts - 1, "{g:?}");

    let points = agent.points("out.lp");
    let good = points.iter().filter(|p| p.name == "good").count();
    let also = points.iter().filter(|p| p.name == "also_good").count();
    assert!(good >= 2 && good == also, "good {good}, also_good {also}");
    assert!(
        !points.iter().any(|p| p.name == "failed"),
        "a failed command's output was kept"
    );

    let peak = status_kb(pid, "VmHWM");
    assert!(peak < 200 << 10, "graft's peak RSS was {peak} KiB");

    // Every sleeper but the one of the round running now is gone; graft
    // keeps no zombie (at most the commands of the running round).
    let sleepers = std::fs::read_to_string(agent.path("sleepers")).unwrap();
    let sleepers: Vec<u32> = sleepers
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(sleepers.len() >= 3, "{sleepers:?}");
    for s in &sleepers[..sleepers.len() - 1] {
        assert!(gone(*s), "sleep {s} survived its timeout");
    }
    let zombies: Vec<u32> = children(pid).into_iter().filter(|c| gone(*c)).collect();
    assert!(zombies.len() <= 4, "zombies left: {zombies:?}");

    assert!(agent.stop(Duration::from_secs(15)).success());
    // The round in flight at the stop is killed too.
    let sleepers = std::fs::read_to_string(agent.path("sleepers")).unwrap();
    let last: u32 = sleepers.split_whitespace().last().unwrap().parse().unwrap();
    wait_for(
        "the last sleeper killed at stop",
        Duration::from_secs(5),
        || gone(last),
    );
    let log = agent.log();
    assert!(
        log.contains("no such thing"),
        "the first stderr line is logged:\n{log}"
    );
}
